package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/sitevault/sitevault/internal/connection/ssh"
	"github.com/sitevault/sitevault/internal/repository"
	"github.com/sitevault/sitevault/internal/testsrv"
)

var (
	srv *testsrv.MariaDB
	// tunnel is an SSH connection to the package's sshd, through which
	// the viaSSH tests reach srv; nil when sshd is not installed.
	tunnel *ssh.Conn
)

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
	sshd, err := testsrv.StartSSHDMain()
	if err != nil && !errors.Is(err, testsrv.ErrNotInstalled) {
		stop()
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if sshd != nil {
		tunnel, err = ssh.Dial(context.Background(), ssh.Config{
			User: sshd.User, Addr: sshd.Addr, Root: sshd.Dir,
			HostKey: ssh.AuthorizedKey(sshd.HostKey), IdentityFile: sshd.ClientKeyFile,
		})
		if err != nil {
			sshd.Stop()
			stop()
			fmt.Fprintf(os.Stderr, "ssh tunnel: %v\nsshd log:\n%s\n", err, sshd.Log())
			os.Exit(1)
		}
	}
	code := m.Run()
	if tunnel != nil {
		tunnel.Close()
		sshd.Stop()
	}
	stop()
	os.Exit(code)
}

// dialMode is how a test's connections reach the server.
type dialMode string

const (
	direct dialMode = "direct" // TCP to the server
	viaSSH dialMode = "ssh"    // direct-tcpip channels through a real sshd (the remote site's path)
)

// eachDial runs test as a subtest per dial mode: the suite runs once
// directly and once through the SSH tunnel.
func eachDial(t *testing.T, test func(t *testing.T, mode dialMode)) {
	for _, mode := range []dialMode{direct, viaSSH} {
		t.Run(string(mode), func(t *testing.T) { test(t, mode) })
	}
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

func newEnv(tb testing.TB) *env { tb.Helper(); return newEnvVia(tb, direct) }

// newEnvVia returns an env whose Config dials as mode says. Through the
// tunnel, it checks at the end that connections did go through it.
func newEnvVia(tb testing.TB, mode dialMode) *env {
	tb.Helper()
	var dial DialFunc
	if mode == viaSSH {
		if tunnel == nil {
			testsrv.Missing(tb, "OpenSSH server (sshd)", "apt-get install openssh-server")
		}
		var dials atomic.Int64
		dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
			dials.Add(1)
			return tunnel.Dial(ctx, network, addr)
		}
		tb.Cleanup(func() {
			if dials.Load() == 0 {
				tb.Errorf("no connection went through the SSH tunnel")
			}
		})
	}
	d := srv.CreateDatabase(tb)
	return &env{
		tb:   tb,
		db:   d,
		cfg:  Config{Dial: dial, Addr: srv.Addr, User: d.User, Password: d.Password, Database: d.Name},
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

// creates returns SHOW CREATE TABLE of every base table of the database.
func (e *env) creates() map[string]string {
	e.tb.Helper()
	m := map[string]string{}
	for n := range e.checksums() {
		var name, create string
		if err := e.root.QueryRow("SHOW CREATE TABLE "+quoteIdent(n)).Scan(&name, &create); err != nil {
			e.tb.Fatal(err)
		}
		m[n] = create
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
