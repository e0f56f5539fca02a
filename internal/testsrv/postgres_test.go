package testsrv

import (
	"context"
	"database/sql"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
)

// TestPostgres starts a server, creates two databases and checks, through
// pgx's database/sql driver, that each is its own database on that server
// and that the server runs with the settings StartPostgres promises.
func TestPostgres(t *testing.T) {
	start := time.Now()
	p := StartPostgres(t)
	t.Logf("StartPostgres (initdb + start) took %v, with %s", time.Since(start).Round(time.Millisecond), p.BinDir)

	a, b := p.NewDatabase(t), p.NewDatabase(t)
	if a == b {
		t.Fatalf("NewDatabase returned %s twice", a)
	}
	ctx := context.Background()
	names := map[string]bool{}
	for _, dsn := range []string{a, b} {
		u, err := url.Parse(dsn)
		if err != nil {
			t.Fatal(err)
		}
		if u.Hostname() != "127.0.0.1" || u.Port() == "5432" || u.User.Username() != PostgresUser {
			t.Fatalf("database URL %s: want user %s on 127.0.0.1 on a private port", dsn, PostgresUser)
		}
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var name, user string
		if err := db.QueryRowContext(ctx, "SELECT current_database(), current_user").Scan(&name, &user); err != nil {
			t.Fatalf("query %s: %v\nPostgreSQL log:\n%s", dsn, err, p.Log())
		}
		if "/"+name != u.Path || user != PostgresUser {
			t.Errorf("connected to %s as %s, want %s as %s", name, user, u.Path, PostgresUser)
		}
		names[name] = true

		// A table in one database is not in the other.
		if _, err := db.ExecContext(ctx, "CREATE TABLE sites (id bigint PRIMARY KEY, name text NOT NULL)"); err != nil {
			t.Fatalf("create table in %s: %v", name, err)
		}
		if _, err := db.ExecContext(ctx, "INSERT INTO sites VALUES ($1, $2)", 1, name); err != nil {
			t.Fatalf("insert into %s: %v", name, err)
		}
		var got string
		if err := db.QueryRowContext(ctx, "SELECT string_agg(name, ',') FROM sites").Scan(&got); err != nil || got != name {
			t.Errorf("sites in %s = %q, %v; want only its own row", name, got, err)
		}

		for setting, want := range map[string]string{
			"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off",
			"max_connections": "200", "listen_addresses": "127.0.0.1", "unix_socket_directories": p.Socket,
		} {
			var got string
			if err := db.QueryRowContext(ctx, "SELECT current_setting($1)", setting).Scan(&got); err != nil || got != want {
				t.Errorf("%s = %q, %v; want %q", setting, got, err, want)
			}
		}
	}
	if len(names) != 2 {
		t.Fatalf("two NewDatabase URLs reached %v", names)
	}

	// The socket is in the server's folder, not in /var/run/postgresql.
	if _, err := os.Stat(filepath.Join(p.Socket, ".s.PGSQL."+portOf(t, p.URL))); err != nil {
		t.Errorf("no unix socket in %s: %v", p.Socket, err)
	}

	// A test's database is dropped when the test ends.
	var dropped string
	t.Run("database", func(t *testing.T) {
		u, _ := url.Parse(p.NewDatabase(t))
		dropped = u.Path[1:]
	})
	admin, err := sql.Open("pgx", p.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	var exists bool
	if err := admin.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", dropped).Scan(&exists); err != nil || exists {
		t.Errorf("database %s of a finished test: exists = %v, %v", dropped, exists, err)
	}
	admin.Close()

	// Stop shuts the server down and removes its folder.
	p.Stop()
	if _, err := os.Stat(p.Socket); !os.IsNotExist(err) {
		t.Errorf("after Stop, %s: %v; want it removed", p.Socket, err)
	}
	if c, err := net.DialTimeout("tcp", net.JoinHostPort(p.Host, portOf(t, p.URL)), time.Second); err == nil {
		c.Close()
		t.Errorf("after Stop, the server still accepts connections on %s", p.URL)
	}
}

// TestSharedPostgres checks that SharedPostgres returns one server per test
// binary; TestMain stops it.
func TestSharedPostgres(t *testing.T) {
	p := SharedPostgres(t)
	if q := SharedPostgres(t); q != p {
		t.Fatalf("SharedPostgres started a second server (%s, then %s)", p.URL, q.URL)
	}
	db, err := sql.Open("pgx", p.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.PingContext(context.Background()); err != nil {
		t.Fatalf("ping: %v\nPostgreSQL log:\n%s", err, p.Log())
	}
}

func portOf(t *testing.T, dsn string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	return u.Port()
}
