package wordpress

import (
	"errors"
	"testing"
)

func TestParseDBHost(t *testing.T) {
	tests := []struct {
		name, host, socket string
		want               DBAddr
		err                error
	}{
		{"host", "db.example.com", "", DBAddr{"tcp", "db.example.com:3306"}, nil},
		{"host and port", "db:3307", "", DBAddr{"tcp", "db:3307"}, nil},
		{"IPv4", "127.0.0.1", "", DBAddr{"tcp", "127.0.0.1:3306"}, nil},
		{"IPv4 and port", "10.0.0.5:3310", "", DBAddr{"tcp", "10.0.0.5:3310"}, nil},
		{"localhost is the default socket", "localhost", "", DBAddr{"unix", DefaultDBSocket}, nil},
		{"LOCALHOST any case", "LocalHost", "", DBAddr{"unix", DefaultDBSocket}, nil},
		{"localhost with caller's socket", "localhost", "/tmp/mysql.sock", DBAddr{"unix", "/tmp/mysql.sock"}, nil},
		{"localhost port ignored as mysqli does", "localhost:3307", "", DBAddr{"unix", DefaultDBSocket}, nil},
		{"empty is localhost", "", "", DBAddr{"unix", DefaultDBSocket}, nil},
		{"localhost socket path", "localhost:/run/mysqld/mysqld.sock", "", DBAddr{"unix", "/run/mysqld/mysqld.sock"}, nil},
		{"bare socket path", ":/var/lib/mysql/mysql.sock", "", DBAddr{"unix", "/var/lib/mysql/mysql.sock"}, nil},
		{"socket ignored for remote host", "db:/run/mysqld/mysqld.sock", "", DBAddr{"tcp", "db:3306"}, nil},
		{"host port and socket", "db:3307:/tmp/s.sock", "", DBAddr{"tcp", "db:3307"}, nil},
		{"IPv6 bracketed with port", "[::1]:3307", "", DBAddr{"tcp", "[::1]:3307"}, nil},
		{"IPv6 bracketed", "[::1]", "", DBAddr{"tcp", "[::1]:3306"}, nil},
		{"IPv6 bare", "::1", "", DBAddr{"tcp", "[::1]:3306"}, nil},
		{"IPv6 full with port", "[2001:db8::10]:33060", "", DBAddr{"tcp", "[2001:db8::10]:33060"}, nil},
		{"IPv6 with socket", "[::1]:3307:/tmp/x.sock", "", DBAddr{"tcp", "[::1]:3307"}, nil},
		{"persistent prefix", "p:db:3307", "", DBAddr{"tcp", "db:3307"}, nil},
		{"persistent localhost", "p:localhost", "", DBAddr{"unix", DefaultDBSocket}, nil},
		{"spaces trimmed", " db ", "", DBAddr{"tcp", "db:3306"}, nil},
		{"port zero means default", "db:0", "", DBAddr{"tcp", "db:3306"}, nil},
		{"non-numeric port ignored as WordPress does", "db:abc", "", DBAddr{"tcp", "db:3306"}, nil},
		{"port out of range", "db:70000", "", DBAddr{}, ErrBadDBHost},
		{"IPv6 garbage", "[zz::1]:3306", "", DBAddr{}, ErrBadDBHost},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseDBHost(tt.host, tt.socket)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("err = %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseDBHost(%q): %v", tt.host, err)
			}
			if got != tt.want {
				t.Errorf("ParseDBHost(%q) = %+v, want %+v", tt.host, got, tt.want)
			}
		})
	}
}
