package backup

import "testing"

func TestTableDropWarns(t *testing.T) {
	tests := []struct {
		prev, now int
		want      bool
	}{
		{0, 0, false}, {10, 10, false}, {10, 5, false}, {10, 4, true}, {10, 0, true},
		{1, 0, true}, {2, 1, false}, {3, 1, true}, {10, 20, false},
	}
	for _, tt := range tests {
		if got := TableDropWarns(tt.prev, tt.now); got != tt.want {
			t.Errorf("TableDropWarns(%d, %d) = %v, want %v", tt.prev, tt.now, got, tt.want)
		}
	}
}

func TestSlug(t *testing.T) {
	for in, want := range map[string]string{
		"no prefix": "no-prefix",
		"no primary or unique key over NOT NULL columns": "no-primary-or-unique-key-over-not-null-columns",
		"not a base table (system view)":                 "not-a-base-table",
		"dropped during the backup":                      "dropped-during-the-backup",
	} {
		if got := slug(in); got != want {
			t.Errorf("slug(%q) = %q, want %q", in, got, want)
		}
	}
}
