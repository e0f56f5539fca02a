package mysql

import (
	"slices"
	"strings"
	"testing"
)

// history returns every row of a system-versioned table, history
// included, with its period, as text.
func (e *env) history(table, start, end string) []string {
	e.tb.Helper()
	rows, err := e.root.Query("SELECT CONCAT_WS('|', id, IFNULL(v, 'NULL'), " + start + ", " + end + ") FROM " + table +
		" FOR SYSTEM_TIME ALL ORDER BY id, " + start)
	if err != nil {
		e.tb.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		rows.Scan(&s)
		out = append(out, s)
	}
	return out
}

// TestSystemVersionedTableRoundTrips: a system-versioned table comes back
// with its current and its history rows; a sequence is named as skipped.
func TestSystemVersionedTableRoundTrips(t *testing.T) {
	eachDial(t, testSystemVersionedTableRoundTrips)
}

func testSystemVersionedTableRoundTrips(t *testing.T, mode dialMode) {
	e := newEnvVia(t, mode)
	e.exec("CREATE TABLE wp_sv (id INT PRIMARY KEY, v INT) WITH SYSTEM VERSIONING",
		"INSERT INTO wp_sv SELECT seq, seq FROM seq_1_to_300",
		"UPDATE wp_sv SET v = v + 1 WHERE id <= 100", "DELETE FROM wp_sv WHERE id > 250",
		"CREATE TABLE wp_sv2 (id INT PRIMARY KEY, v VARCHAR(20), rs TIMESTAMP(6) GENERATED ALWAYS AS ROW START, "+
			"re TIMESTAMP(6) GENERATED ALWAYS AS ROW END, PERIOD FOR SYSTEM_TIME(rs, re), KEY v (v)) WITH SYSTEM VERSIONING",
		"INSERT INTO wp_sv2 (id, v) VALUES (1, 'a'), (2, 'b')", "UPDATE wp_sv2 SET v = 'c' WHERE id = 1", "DELETE FROM wp_sv2 WHERE id = 2",
		"CREATE SEQUENCE wp_seq")
	want1, want2 := e.history("wp_sv", "row_start", "row_end"), e.history("wp_sv2", "rs", "re")
	if len(want1) != 400 || len(want2) != 3 {
		t.Fatalf("fixture: %d, %d rows", len(want1), len(want2))
	}
	id, rep := e.backup(BackupOptions{Prefix: "wp_", SegmentSize: 2 << 10})
	notes := map[string]string{}
	for _, tr := range rep.Tables {
		notes[tr.Name] = tr.Note
	}
	if notes["wp_sv"] != NoteVersioned || notes["wp_sv2"] != NoteVersioned {
		t.Errorf("tables %+v, skipped %+v", rep.Tables, rep.Skipped)
	}
	seq := false
	for _, s := range rep.Skipped {
		seq = seq || s.Name == "wp_seq" && strings.Contains(s.Reason, "sequence")
	}
	if !seq {
		t.Errorf("sequence not named as skipped: %+v", rep.Skipped)
	}
	e.exec("UPDATE wp_sv SET v = 0", "DELETE FROM wp_sv2")
	e.restore(id, RestoreOptions{Prefix: "wp_"})
	if got := e.history("wp_sv", "row_start", "row_end"); !slices.Equal(got, want1) {
		t.Errorf("wp_sv: %d rows after restore, want %d (first %v, want %v)", len(got), len(want1), got[:min(3, len(got))], want1[:3])
	}
	if got := e.history("wp_sv2", "rs", "re"); !slices.Equal(got, want2) {
		t.Errorf("wp_sv2: %v after restore, want %v", got, want2)
	}
	// Still versioned: an update adds history.
	e.exec("UPDATE wp_sv SET v = -1 WHERE id = 1")
	if n := e.count("SELECT COUNT(*) FROM wp_sv FOR SYSTEM_TIME ALL"); n != 401 {
		t.Errorf("after an update, %d rows in all system time, want 401", n)
	}
	// Unchanged since the backup: reused.
	e.restore(id, RestoreOptions{Prefix: "wp_"})
	_, rep2 := e.backup(BackupOptions{Prefix: "wp_", SegmentSize: 2 << 10, Previous: &id})
	for _, tr := range rep2.Tables {
		if tr.Written != 0 {
			t.Errorf("unchanged %s written again: %+v", tr.Name, tr)
		}
	}
}
