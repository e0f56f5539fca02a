package site

import (
	"context"
	"errors"
	"net"
	"strconv"
	"testing"

	"github.com/sitevault/sitevault/internal/testsrv"
	"github.com/sitevault/sitevault/internal/wordpress"
)

// TestCheckDatabase logs in to a real MariaDB directly and through the SSH
// tunnel (TCP and the unix socket), and checks that each failure is told
// apart.
func TestCheckDatabase(t *testing.T) {
	m := testsrv.StartMariaDB(t)
	d := m.CreateDatabase(t)
	closed := "127.0.0.1:" + strconv.Itoa(testsrv.FreePort(t))
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			ctx := context.Background()
			conn := openTest(t, kind, t.TempDir())
			good := wordpress.Database{Name: d.Name, User: d.User, Password: d.Password, Host: m.Addr}
			tests := []struct {
				name string
				edit func(*wordpress.Database)
				want error
				addr wordpress.DBAddr
			}{
				{"tcp", func(*wordpress.Database) {}, nil, wordpress.DBAddr{Network: "tcp", Address: m.Addr}},
				{"socket", func(db *wordpress.Database) { db.Host = "localhost:" + m.Socket }, nil, wordpress.DBAddr{Network: "unix", Address: m.Socket}},
				{"wrong password", func(db *wordpress.Database) { db.Password = "wrong" }, ErrDBLogin, wordpress.DBAddr{}},
				{"wrong user", func(db *wordpress.Database) { db.User = "nobody" }, ErrDBLogin, wordpress.DBAddr{}},
				{"wrong database", func(db *wordpress.Database) { db.Name = "nosuchdb" }, ErrDBName, wordpress.DBAddr{}},
				{"closed port", func(db *wordpress.Database) { db.Host = closed }, ErrDBUnreachable, wordpress.DBAddr{}},
				{"missing socket", func(db *wordpress.Database) { db.Host = "localhost:/nonexistent/mysqld.sock" }, ErrDBUnreachable, wordpress.DBAddr{}},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					db := good
					tt.edit(&db)
					addr, err := CheckDatabase(ctx, conn, db)
					if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
						t.Fatalf("CheckDatabase = %v, want %v", err, tt.want)
					}
					if err != nil {
						if db.Password != "" && containsWord(err.Error(), db.Password) {
							t.Errorf("error shows the password: %v", err)
						}
						return
					}
					if addr != tt.addr {
						t.Errorf("address %+v, want %+v", addr, tt.addr)
					}
					if h := DBHostFor(addr); h == "" {
						t.Error("DBHostFor empty")
					} else if back, _ := wordpress.ParseDBHost(h, ""); back != addr {
						t.Errorf("DBHostFor(%+v) = %q parses back to %+v", addr, h, back)
					}
				})
			}
		})
	}
}

func containsWord(s, w string) bool {
	for i := 0; i+len(w) <= len(s); i++ {
		if s[i:i+len(w)] == w {
			return true
		}
	}
	return false
}

func TestDBAddrs(t *testing.T) {
	addrs, err := DBAddrs("localhost")
	if err != nil || len(addrs) < 2 || addrs[0].Address != wordpress.DefaultDBSocket {
		t.Errorf("DBAddrs(localhost) = %v, %v", addrs, err)
	}
	addrs, err = DBAddrs("localhost:/tmp/x.sock")
	if err != nil || len(addrs) != 1 || addrs[0] != (wordpress.DBAddr{Network: "unix", Address: "/tmp/x.sock"}) {
		t.Errorf("DBAddrs(explicit socket) = %v, %v", addrs, err)
	}
	addrs, err = DBAddrs("db.example:3307")
	if err != nil || len(addrs) != 1 || addrs[0] != (wordpress.DBAddr{Network: "tcp", Address: net.JoinHostPort("db.example", "3307")}) {
		t.Errorf("DBAddrs(host:port) = %v, %v", addrs, err)
	}
}
