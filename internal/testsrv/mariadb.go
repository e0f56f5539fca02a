package testsrv

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	driver "github.com/go-sql-driver/mysql"
)

// MariaDB is a private MariaDB server on loopback with a temporary data
// directory. It never touches a system server: it has its own port, socket
// and data directory, and is stopped and deleted on cleanup.
type MariaDB struct {
	Addr         string // 127.0.0.1:port
	Socket       string // unix socket path
	RootPassword string

	dir  string
	cmd  *exec.Cmd
	done chan struct{}
	seq  atomic.Int64
}

// MariaDBDatabase is a fresh database with its own user, for one test.
type MariaDBDatabase struct {
	Name     string
	User     string
	Password string
}

// StartMariaDB starts a MariaDB server for tb and stops it when tb ends.
// It skips or fails (see Required) when MariaDB is not installed.
func StartMariaDB(tb testing.TB) *MariaDB {
	tb.Helper()
	if LookPath("mariadbd") == "" || LookPath("mariadb-install-db") == "" {
		Missing(tb, "MariaDB", "apt-get install mariadb-server mariadb-client")
	}
	m, stop, err := StartMariaDBMain()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(stop)
	return m
}

// ErrMariaDBMissing is returned by StartMariaDBMain when the programs are
// not installed; a TestMain decides whether that skips or fails.
var ErrMariaDBMissing = errors.New("MariaDB is not installed (apt-get install mariadb-server mariadb-client)")

// StartMariaDBMain starts a MariaDB server for a package's TestMain. The
// returned function stops it and deletes its data directory.
func StartMariaDBMain() (*MariaDB, func(), error) {
	mariadbd, installDB := LookPath("mariadbd"), LookPath("mariadb-install-db")
	if mariadbd == "" || installDB == "" {
		return nil, nil, ErrMariaDBMissing
	}
	dir, err := os.MkdirTemp("", "sitevault-mariadb-")
	if err != nil {
		return nil, nil, err
	}
	fail := func(err error) (*MariaDB, func(), error) {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	datadir := filepath.Join(dir, "data")
	// A private tmpdir: in the shared /tmp, concurrent bootstraps removed
	// each other's "#sql-temptable-…" files ("Unknown table
	// 'mysql.tmp_user_sys'").
	tmpdir := filepath.Join(dir, "tmp")
	if err := os.Mkdir(tmpdir, 0o700); err != nil {
		return fail(err)
	}
	args := []string{"--no-defaults", "--datadir=" + datadir, "--tmpdir=" + tmpdir,
		"--auth-root-authentication-method=normal", "--skip-test-db"}
	if os.Geteuid() == 0 {
		args = append(args, "--user=root")
	}
	out, err := exec.Command(installDB, args...).CombinedOutput()
	if err != nil {
		return fail(fmt.Errorf("mariadb-install-db: %v\n%s", err, out))
	}
	port, err := mariadbFreePort()
	if err != nil {
		return fail(err)
	}
	m := &MariaDB{
		Addr:         net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		Socket:       filepath.Join(dir, "sock"),
		RootPassword: mariadbRandomHex(12),
		dir:          dir,
		done:         make(chan struct{}),
	}
	sargs := []string{"--no-defaults", "--datadir=" + datadir, "--tmpdir=" + tmpdir, "--socket=" + m.Socket,
		"--port=" + strconv.Itoa(port), "--bind-address=127.0.0.1",
		"--pid-file=" + filepath.Join(dir, "mariadbd.pid"),
		"--skip-log-bin", "--innodb-buffer-pool-size=256M", "--max-allowed-packet=64M",
		"--innodb-flush-log-at-trx-commit=0", "--innodb-log-file-size=128M",
		"--skip-name-resolve", "--character-set-server=utf8mb4", "--collation-server=utf8mb4_unicode_ci",
		"--log-error=" + filepath.Join(dir, "error.log"),
		"--max-connections=200",
	}
	if os.Geteuid() == 0 {
		sargs = append(sargs, "--user=root")
	}
	m.cmd = exec.Command(mariadbd, sargs...)
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := m.cmd.Start(); err != nil {
		return fail(fmt.Errorf("start mariadbd: %w", err))
	}
	go func() { m.cmd.Wait(); close(m.done) }()
	stop := func() {
		if m.cmd.Process != nil {
			m.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-m.done:
			case <-time.After(30 * time.Second):
				m.cmd.Process.Kill()
				<-m.done
			}
		}
		os.RemoveAll(dir)
	}
	// Wait for readiness on the socket as root without a password, then set one.
	deadline := time.Now().Add(60 * time.Second)
	for {
		db, err := m.open("root", "", "")
		if err == nil {
			err = db.Ping()
			if err == nil {
				_, err = db.Exec("ALTER USER 'root'@'localhost' IDENTIFIED BY '" + m.RootPassword + "'")
				db.Close()
				if err != nil {
					stop()
					return nil, nil, fmt.Errorf("set root password: %w", err)
				}
				break
			}
			db.Close()
		}
		select {
		case <-m.done:
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			stop()
			return nil, nil, fmt.Errorf("mariadbd exited during start-up:\n%s", log)
		default:
		}
		if time.Now().After(deadline) {
			stop()
			return nil, nil, fmt.Errorf("mariadbd not ready after 60s: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Root over TCP too (the socket user is root@localhost).
	db, err := m.Root()
	if err == nil {
		_, err = db.Exec("CREATE OR REPLACE USER 'root'@'127.0.0.1' IDENTIFIED BY '" + m.RootPassword + "'")
		if err == nil {
			_, err = db.Exec("GRANT ALL ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION")
		}
		db.Close()
	}
	if err != nil {
		stop()
		return nil, nil, fmt.Errorf("create root over TCP: %w", err)
	}
	return m, stop, nil
}

func (m *MariaDB) open(user, password, dbname string) (*sql.DB, error) {
	cfg := driver.NewConfig()
	cfg.Net = "unix"
	cfg.Addr = m.Socket
	cfg.User = user
	cfg.Passwd = password
	cfg.DBName = dbname
	cfg.MultiStatements = true
	c, err := driver.NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	return sql.OpenDB(c), nil
}

// Root opens a connection pool as root over the socket (multi-statements on).
func (m *MariaDB) Root() (*sql.DB, error) { return m.open("root", m.RootPassword, "") }

// RootDB opens a connection pool as root on database name (multi-statements on).
func (m *MariaDB) RootDB(tb testing.TB, name string) *sql.DB {
	tb.Helper()
	db, err := m.open("root", m.RootPassword, name)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// CreateDatabase creates a fresh database and a user with a random password
// that has all privileges on it (and none elsewhere). Both are dropped when
// tb ends.
func (m *MariaDB) CreateDatabase(tb testing.TB) MariaDBDatabase {
	tb.Helper()
	n := m.seq.Add(1)
	d := MariaDBDatabase{
		Name:     fmt.Sprintf("sv_test_%d", n),
		User:     fmt.Sprintf("sv_user_%d", n),
		Password: mariadbRandomHex(10),
	}
	db, err := m.Root()
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	for _, q := range []string{
		"CREATE DATABASE `" + d.Name + "` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci",
		"CREATE USER '" + d.User + "'@'%' IDENTIFIED BY '" + d.Password + "'",
		"GRANT ALL ON `" + d.Name + "`.* TO '" + d.User + "'@'%'",
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			tb.Fatalf("create database: %v", err)
		}
	}
	tb.Cleanup(func() {
		db, err := m.Root()
		if err != nil {
			return
		}
		defer db.Close()
		db.Exec("DROP DATABASE IF EXISTS `" + d.Name + "`")
		db.Exec("DROP USER IF EXISTS '" + d.User + "'@'%'")
	})
	return d
}

func mariadbFreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func mariadbRandomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// RunWithMariaDB is a package's TestMain body for tests sharing one private
// MariaDB server: it starts the server, hands it to set, runs the tests and
// stops the server. Where MariaDB is not installed and servers are not
// required (see Required), the package's tests are skipped as a whole.
func RunWithMariaDB(m *testing.M, set func(*MariaDB)) int {
	s, stop, err := StartMariaDBMain()
	if err != nil {
		if errors.Is(err, ErrMariaDBMissing) && !Required() {
			fmt.Println("skipping:", err)
			return 0
		}
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer stop()
	set(s)
	return m.Run()
}
