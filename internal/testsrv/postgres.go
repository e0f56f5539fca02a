package testsrv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// PostgresUser is the superuser of every test PostgreSQL server. It logs in
// without a password: the server trusts connections from loopback and its
// own socket, and listens nowhere else.
const PostgresUser = "sitevault"

// Postgres is a private PostgreSQL server on a loopback port, with its data
// directory, unix socket and log in a temporary folder. It never touches a
// system cluster: it is started from the server binaries directly (no
// pg_ctlcluster), on its own port, and deleted on Stop.
//
// Durability is off (fsync, synchronous_commit, full_page_writes): a crash
// loses the data, which a test server does not keep anyway.
type Postgres struct {
	URL    string // postgres://sitevault@127.0.0.1:PORT/postgres?sslmode=disable
	Host   string // 127.0.0.1
	Port   int    //
	Socket string // the folder holding the unix socket (.s.PGSQL.PORT)
	BinDir string // the folder of the initdb and postgres programs used

	tmp     string
	logFile string
	cmd     *exec.Cmd
	done    chan struct{}
	once    sync.Once
	stopped atomic.Bool
	seq     atomic.Int64
}

// Log returns what the server wrote to its log so far; tests print it when
// a query fails in a way the server may explain.
func (p *Postgres) Log() string {
	b, err := os.ReadFile(p.logFile)
	if err != nil {
		return fmt.Sprintf("(cannot read the PostgreSQL log: %v)", err)
	}
	return string(b)
}

// StartPostgres starts a PostgreSQL server for one test and stops it when
// the test ends. A missing PostgreSQL fails or skips the test (see Missing).
// Tests of a package that all need a server share one with SharedPostgres.
func StartPostgres(tb testing.TB) *Postgres {
	tb.Helper()
	p, err := StartPostgresMain()
	if errors.Is(err, ErrNotInstalled) {
		Missing(tb, "PostgreSQL", "apt-get install postgresql")
	}
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(p.Stop)
	return p
}

// StartPostgresMain starts a PostgreSQL server without a testing.TB, for a
// package's TestMain; the caller must call Stop. It returns an error
// wrapping ErrNotInstalled if the server programs are missing.
//
// PostgreSQL refuses to run as root: as root, initdb and the server run as
// the postgres system user (which Debian's postgresql-common creates), and
// the temporary folder is handed to it.
func StartPostgresMain() (*Postgres, error) {
	bin := postgresBinDir()
	if bin == "" {
		return nil, fmt.Errorf("start PostgreSQL: %w: no initdb and postgres in /usr/lib/postgresql/*/bin or on PATH (apt-get install postgresql, or scripts/deps.sh test)", ErrNotInstalled)
	}
	cred, err := postgresCredential()
	if err != nil {
		return nil, fmt.Errorf("start PostgreSQL: %w", err)
	}
	tmp, err := os.MkdirTemp("", "sitevault-postgres-")
	if err != nil {
		return nil, fmt.Errorf("start PostgreSQL: %w", err)
	}
	p := &Postgres{Host: "127.0.0.1", Socket: tmp, BinDir: bin, tmp: tmp, logFile: filepath.Join(tmp, "postgres.log")}
	fail := func(err error) (*Postgres, error) {
		os.RemoveAll(tmp)
		return nil, fmt.Errorf("start PostgreSQL: %w", err)
	}
	if cred != nil {
		if err := os.Chown(tmp, int(cred.Uid), int(cred.Gid)); err != nil {
			return fail(err)
		}
		if err := reachable(tmp, cred); err != nil {
			return fail(err)
		}
	}

	data := filepath.Join(tmp, "data")
	// --auth=trust writes a pg_hba.conf that trusts the socket and
	// 127.0.0.1/::1 only; the server listens on nothing else.
	initdb := p.command("initdb", "--pgdata="+data, "--username="+PostgresUser, "--auth=trust",
		"--encoding=UTF8", "--locale=C", "--no-sync")
	initdb.SysProcAttr.Credential = cred
	if out, err := initdb.CombinedOutput(); err != nil {
		return fail(fmt.Errorf("initdb: %v\n%s", err, out))
	}

	// The port was free a moment ago; another process may take it before
	// the server binds it, so try a few.
	var lastErr error
	for range 5 {
		port, err := freePort()
		if err != nil {
			return fail(err)
		}
		p.Port = port
		p.URL = p.databaseURL("postgres")
		if lastErr = p.start(data, cred); lastErr == nil {
			return p, nil
		}
	}
	return fail(lastErr)
}

// command prepares one of the server programs with a small environment of
// its own (no PG* variables of the caller, the C locale), run in the
// temporary folder (the caller's may be closed to the postgres user).
func (p *Postgres) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(p.BinDir, name), args...)
	cmd.Env = []string{"PATH=" + p.BinDir + ":/usr/bin:/bin", "LC_ALL=C", "LANG=C", "TZ=UTC"}
	cmd.Dir = p.tmp
	// If the test binary dies (a panic, a -timeout), the server goes too,
	// with a fast shutdown.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGINT}
	return cmd
}

func (p *Postgres) start(data string, cred *syscall.Credential) error {
	log, err := os.OpenFile(p.logFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer log.Close() // the server holds its own copy
	p.cmd = p.command("postgres", "-D", data,
		"-c", "listen_addresses="+p.Host,
		"-c", "port="+strconv.Itoa(p.Port),
		"-c", "unix_socket_directories="+p.Socket,
		"-c", "max_connections=200",
		"-c", "fsync=off",
		"-c", "synchronous_commit=off",
		"-c", "full_page_writes=off",
		"-c", "logging_collector=off",
		"-c", "log_destination=stderr",
	)
	p.cmd.SysProcAttr.Credential = cred
	p.cmd.Stdout = log
	p.cmd.Stderr = log
	if err := p.cmd.Start(); err != nil {
		return fmt.Errorf("run %s: %w", p.cmd.Path, err)
	}
	p.done = make(chan struct{})
	go func() { p.cmd.Wait(); close(p.done) }()

	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			return fmt.Errorf("postgres exited: %v\nPostgreSQL log:\n%s", p.cmd.ProcessState, p.Log())
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err = ping(ctx, p.URL)
		cancel()
		if err == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.kill()
	return fmt.Errorf("postgres did not accept connections on %s within 60s: %v\nPostgreSQL log:\n%s", net.JoinHostPort(p.Host, strconv.Itoa(p.Port)), err, p.Log())
}

func ping(ctx context.Context, dsn string) error {
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer c.Close(context.Background())
	return c.Ping(ctx)
}

// kill shuts the server down fast (SIGINT: clients are disconnected,
// transactions rolled back), and kills it if it has not gone after 10s.
func (p *Postgres) kill() {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// Stop stops the server and removes its data, socket and log.
func (p *Postgres) Stop() {
	p.once.Do(func() {
		p.stopped.Store(true)
		p.kill()
		os.RemoveAll(p.tmp)
	})
}

func (p *Postgres) databaseURL(name string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.User(PostgresUser),
		Host:     net.JoinHostPort(p.Host, strconv.Itoa(p.Port)),
		Path:     "/" + name,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// NewDatabase creates an empty database with a fresh name and returns its
// URL (the superuser's, as URL). The database is dropped when tb ends,
// even if connections to it are still open.
func (p *Postgres) NewDatabase(tb testing.TB) string {
	tb.Helper()
	ctx := context.Background()
	name, err := p.CreateDatabase(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if p.stopped.Load() {
			return // the whole server is gone
		}
		if err := p.exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			tb.Logf("drop test database %s: %v", name, err)
		}
	})
	return p.databaseURL(name)
}

// CreateDatabase creates an empty database with a fresh name and returns
// its name, for TestMain and helpers without a testing.TB. Nothing drops
// it but Stop.
func (p *Postgres) CreateDatabase(ctx context.Context) (string, error) {
	name := fmt.Sprintf("sitevault_test_%d_%s", p.seq.Add(1), randomHex(3))
	if err := p.exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	return name, nil
}

// exec runs one statement as the superuser on the postgres database.
func (p *Postgres) exec(ctx context.Context, sql string) error {
	c, err := pgx.Connect(ctx, p.URL)
	if err != nil {
		return err
	}
	defer c.Close(context.Background())
	_, err = c.Exec(ctx, sql)
	return err
}

// postgresBinDir returns the folder holding initdb and postgres: Debian's
// /usr/lib/postgresql/VERSION/bin of the highest version installed, else
// the folder of initdb on PATH (other systems put the server programs
// there). It returns "" if there is none.
func postgresBinDir() string {
	has := func(dir string) bool {
		for _, name := range []string{"initdb", "postgres"} {
			fi, err := os.Stat(filepath.Join(dir, name))
			if err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
				return false
			}
		}
		return true
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	var best string
	var bestVersion []int
	for _, dir := range dirs {
		v := parseVersion(filepath.Base(filepath.Dir(dir)))
		if v == nil || !has(dir) {
			continue
		}
		if best == "" || slices.Compare(v, bestVersion) > 0 {
			best, bestVersion = dir, v
		}
	}
	if best != "" {
		return best
	}
	if initdb, err := exec.LookPath("initdb"); err == nil && has(filepath.Dir(initdb)) {
		return filepath.Dir(initdb)
	}
	return ""
}

// parseVersion reads a PostgreSQL major version such as "16" or "9.6" as
// numbers, or returns nil.
func parseVersion(s string) []int {
	var v []int
	for part := range strings.SplitSeq(s, ".") {
		n, err := strconv.Atoi(part)
		if err != nil {
			return nil
		}
		v = append(v, n)
	}
	return v
}

// postgresCredential returns the user the server programs run as: nil
// (the current user) unless we are root, which PostgreSQL refuses to run
// as; then the postgres system user.
func postgresCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("PostgreSQL refuses to run as root and there is no postgres user to run it as (%v); install Debian's postgresql package (scripts/deps.sh test), which creates it", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil || uid == 0 {
		return nil, fmt.Errorf("the postgres user (uid %s, gid %s) cannot run PostgreSQL: %v", u.Uid, u.Gid, err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// reachable checks that the user of cred can enter every folder above dir,
// so that initdb gets a clear message instead of "permission denied" when
// TMPDIR is, say, under /root.
func reachable(dir string, cred *syscall.Credential) error {
	for d := filepath.Dir(dir); ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		mode := fi.Mode().Perm()
		switch {
		case !ok, mode&0o001 != 0,
			st.Uid == cred.Uid && mode&0o100 != 0,
			st.Gid == cred.Gid && mode&0o010 != 0:
		default:
			return fmt.Errorf("the postgres user cannot enter %s (mode %v), which holds the temporary folder %s; set TMPDIR to a folder every user can reach, such as /tmp", d, mode, dir)
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}

// sharedPostgres is the server SharedPostgres starts once per test binary.
var sharedPostgres struct {
	once sync.Once
	p    *Postgres
	err  error
}

// SharedPostgres returns the test binary's PostgreSQL server, starting it
// on first use; tests isolate themselves with NewDatabase. A package that
// calls it stops the server in its TestMain with RunWithSharedPostgres. A
// missing PostgreSQL fails or skips tb (see Missing).
func SharedPostgres(tb testing.TB) *Postgres {
	tb.Helper()
	sharedPostgres.once.Do(func() { sharedPostgres.p, sharedPostgres.err = StartPostgresMain() })
	if errors.Is(sharedPostgres.err, ErrNotInstalled) {
		Missing(tb, "PostgreSQL", "apt-get install postgresql")
	}
	if sharedPostgres.err != nil {
		tb.Fatal(sharedPostgres.err)
	}
	return sharedPostgres.p
}

// RunWithSharedPostgres is a package's TestMain body when its tests use
// SharedPostgres: it runs the tests and then stops the server, if a test
// started it.
func RunWithSharedPostgres(m *testing.M) int {
	defer StopSharedPostgres()
	return m.Run()
}

// StopSharedPostgres stops the server SharedPostgres started, if any, for a
// TestMain that does more than RunWithSharedPostgres.
func StopSharedPostgres() {
	// Make a later SharedPostgres fail rather than start a server no one stops.
	sharedPostgres.once.Do(func() { sharedPostgres.err = errors.New("SharedPostgres called after StopSharedPostgres") })
	if sharedPostgres.p != nil {
		sharedPostgres.p.Stop()
	}
}
