package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/sitevault/sitevault/internal/repository"
	"github.com/sitevault/sitevault/internal/testsrv"
)

var srv *testsrv.MariaDB

func TestMain(m *testing.M) {
	s, stop, err := testsrv.StartMariaDBMain()
	if err != nil {
		if errors.Is(err, testsrv.ErrMariaDBMissing) && !testsrv.Required() {
			fmt.Println("skipping: ", err)
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	srv = s
	code := m.Run()
	stop()
	os.Exit(code)
}

// env is one test's database (with its own user), a root pool on it and a
// repository.
type env struct {
	tb   testing.TB
	db   testsrv.MariaDBDatabase
	cfg  Config
	root *sql.DB
	repo *repository.Repository
}

func newEnv(tb testing.TB) *env {
	tb.Helper()
	d := srv.CreateDatabase(tb)
	return &env{
		tb:   tb,
		db:   d,
		cfg:  Config{Addr: srv.Addr, User: d.User, Password: d.Password, Database: d.Name},
		root: srv.RootDB(tb, d.Name),
		repo: repository.TestRepository(tb),
	}
}

// exec runs statements as root, in a session with a permissive sql_mode.
func (e *env) exec(stmts ...string) {
	e.tb.Helper()
	ctx := context.Background()
	c, err := e.root.Conn(ctx)
	if err != nil {
		e.tb.Fatal(err)
	}
	defer c.Close()
	for _, s := range stmts {
		if _, err := c.ExecContext(ctx, s); err != nil {
			e.tb.Fatalf("%.200s: %v", s, err)
		}
	}
}

// checksums returns the server's CHECKSUM TABLE EXTENDED of every base
// table of the database ("" for a missing table).
func (e *env) checksums() map[string]string {
	e.tb.Helper()
	rows, err := e.root.Query("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE'")
	if err != nil {
		e.tb.Fatal(err)
	}
	var names []string
	for rows.Next() {
		var n string
		rows.Scan(&n)
		names = append(names, n)
	}
	rows.Close()
	m := map[string]string{}
	for _, n := range names {
		m[n] = e.checksum(n)
	}
	return m
}

func (e *env) checksum(table string) string {
	e.tb.Helper()
	var name string
	var sum sql.NullString
	if err := e.root.QueryRow("CHECKSUM TABLE "+quoteIdent(table)+" EXTENDED").Scan(&name, &sum); err != nil {
		e.tb.Fatal(err)
	}
	return sum.String
}

func (e *env) count(q string) int64 {
	e.tb.Helper()
	var n int64
	if err := e.root.QueryRow(q).Scan(&n); err != nil {
		e.tb.Fatalf("%s: %v", q, err)
	}
	return n
}

func (e *env) backup(opts BackupOptions) (repository.ID, *BackupReport) {
	e.tb.Helper()
	id, rep, err := Backup(context.Background(), e.cfg, e.repo, opts)
	if err != nil {
		e.tb.Fatalf("backup: %v", err)
	}
	if err := e.repo.Flush(context.Background()); err != nil {
		e.tb.Fatal(err)
	}
	return id, rep
}

func (e *env) restore(id repository.ID, opts RestoreOptions) *RestoreReport {
	e.tb.Helper()
	rep, err := Restore(context.Background(), e.cfg, e.repo, id, opts)
	if err != nil {
		e.tb.Fatalf("restore: %v", err)
	}
	return rep
}

func (e *env) tempTables() []string {
	e.tb.Helper()
	var out []string
	for n := range e.checksums() {
		if strings.HasPrefix(n, tmpPrefix) || strings.HasPrefix(n, oldPrefix) {
			out = append(out, n)
		}
	}
	return out
}

func sameSums(tb testing.TB, want, got map[string]string) {
	tb.Helper()
	for n, w := range want {
		if got[n] != w {
			tb.Errorf("table %s: CHECKSUM TABLE %q, want %q", n, got[n], w)
		}
	}
	for n := range got {
		if _, ok := want[n]; !ok {
			tb.Errorf("unexpected table %s", n)
		}
	}
}
