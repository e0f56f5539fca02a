package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"

	driver "github.com/go-sql-driver/mysql"
)

// DialFunc opens a connection to the database server (a TCP or unix socket,
// or a channel through an SSH tunnel).
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// Config says how to reach a site's database. It holds a password: never
// log or print it; errors built from it never contain the password.
type Config struct {
	// Dial opens connections; nil uses a net.Dialer.
	Dial DialFunc
	// Network is "tcp" (default) or "unix".
	Network string
	// Addr is host:port or a socket path.
	Addr     string
	User     string
	Password string
	Database string
	// Charset is the handshake character set (default utf8mb4). Dumps and
	// restores switch their sessions to binary so that no byte is converted.
	Charset string
}

// Sentinel errors callers branch on.
var (
	// ErrAccessDenied: the server refused the user name or password.
	ErrAccessDenied = errors.New("database access denied: check the database user name and password")
	// ErrDefinitionChanged: a table's definition changed during the backup
	// twice in a row; the backup is abandoned.
	ErrDefinitionChanged = errors.New("table definition changed during the backup, twice")
	// ErrRowTooLarge: a row does not fit in one statement below the
	// server's max_allowed_packet.
	ErrRowTooLarge = errors.New("row larger than the server's max_allowed_packet")
	// ErrNoPrefix: a whole-database restore needs the site's table prefix.
	ErrNoPrefix = errors.New("restore of the whole database needs the site's table prefix")
	// ErrForeignName: the restore point holds a table, view or trigger
	// that is not the site's (its name lacks the site's table prefix, or a
	// trigger is on another table, or a view statement names another
	// view); the restore is refused before it changes anything.
	ErrForeignName = errors.New("restore point holds an object that is not the site's")
	// ErrNotFound: the restore point has no table of that name.
	ErrNotFound = errors.New("no such table in the restore point")
	// ErrChecksumMismatch: a restored table's rows differ from what the
	// backup recorded (checksums); the restore was refused before the swap.
	ErrChecksumMismatch = errors.New("restored rows differ from the backup's checksum")
	// ErrLoadWarning: the server warned while loading rows (a value
	// truncated, converted or replaced); the restore was refused before
	// the swap.
	ErrLoadWarning = errors.New("the server changed a value while loading it")
	// ErrRestoreRunning: another restore of the same site's tables (same
	// database and prefix) is running.
	ErrRestoreRunning = errors.New("another restore of this site's database is running: wait for it to finish")
)

// open returns a connection pool for cfg. It does not connect.
func open(cfg Config) (*sql.DB, error) {
	dc := driver.NewConfig()
	dc.Net = cfg.Network
	if dc.Net == "" {
		dc.Net = "tcp"
	}
	dc.Addr = cfg.Addr
	dc.User = cfg.User
	dc.Passwd = cfg.Password
	dc.DBName = cfg.Database
	dc.MaxAllowedPacket = 0 // ask the server
	dc.ParseTime = false
	charset := cfg.Charset
	if charset == "" {
		charset = "utf8mb4"
	}
	if err := dc.Apply(driver.Charset(charset, "")); err != nil {
		return nil, fmt.Errorf("database charset: %w", err)
	}
	dc.Logger = nopLogger{} // the driver's own log lines add nothing to the returned errors
	if cfg.Dial != nil {
		dc.DialFunc = cfg.Dial
	}
	c, err := driver.NewConnector(dc)
	if err != nil {
		return nil, fmt.Errorf("database configuration: %w", err)
	}
	return sql.OpenDB(c), nil
}

// connect opens a pool and checks that it can log in.
func connect(ctx context.Context, cfg Config) (*sql.DB, error) {
	db, err := open(cfg)
	if err != nil {
		return nil, err
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, connError(cfg, err)
	}
	return db, nil
}

// connError turns a login failure into an error without credentials.
func connError(cfg Config, err error) error {
	var me *driver.MySQLError
	if errors.As(err, &me) && (me.Number == 1045 || me.Number == 1044 || me.Number == 1698) {
		return fmt.Errorf("connect to database %q at %s: %w", cfg.Database, cfg.Addr, ErrAccessDenied)
	}
	return fmt.Errorf("connect to database %q at %s: %w", cfg.Database, cfg.Addr, err)
}

// sessionSQL makes a dump or restore session binary-safe and lossless.
var sessionSQL = []string{
	"SET NAMES binary",
	"SET SESSION time_zone = '+00:00'",
	"SET SESSION sql_mode = 'NO_AUTO_VALUE_ON_ZERO'",
	"SET SESSION group_concat_max_len = 1048576",
}

// session takes one connection from db and prepares it.
func session(ctx context.Context, db *sql.DB, extra ...string) (*sql.Conn, error) {
	c, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	for _, q := range append(append([]string{}, sessionSQL...), extra...) {
		if _, err := c.ExecContext(ctx, q); err != nil {
			c.Close()
			return nil, fmt.Errorf("prepare session (%s): %w", q, err)
		}
	}
	return c, nil
}

// errNumber returns the server error number of err, or 0.
func errNumber(err error) uint16 {
	var me *driver.MySQLError
	if errors.As(err, &me) {
		return me.Number
	}
	return 0
}

// quoteIdent quotes a MySQL identifier.
func quoteIdent(s string) string {
	b := make([]byte, 0, len(s)+2)
	b = append(b, '`')
	for i := 0; i < len(s); i++ {
		if s[i] == '`' {
			b = append(b, '`')
		}
		b = append(b, s[i])
	}
	return string(append(b, '`'))
}

type nopLogger struct{}

func (nopLogger) Print(...any) {}
