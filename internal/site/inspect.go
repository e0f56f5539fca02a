package site

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"path"
	"strings"
	"sync"
	"time"

	driver "github.com/go-sql-driver/mysql"

	"github.com/sitevault/sitevault/internal/connection"
	"github.com/sitevault/sitevault/internal/sitevault"
	"github.com/sitevault/sitevault/internal/wordpress"
)

// Errors callers branch on. The wrapping error says which setting to check
// (DB_HOST, DB_USER and DB_PASSWORD, DB_NAME); how to change it is the
// caller's to say.
var (
	// ErrDBUnreachable means no connection to the database server could be
	// opened (wrong DB_HOST, server down, socket missing).
	ErrDBUnreachable = errors.New("database server unreachable")
	// ErrDBLogin means the database server refused the user or password.
	ErrDBLogin = errors.New("database refused the login")
	// ErrDBName means the user may log in but not use the database (it
	// does not exist, or the user has no rights on it).
	ErrDBName = errors.New("database not accessible")
)

// Inspection is what the site's files tell.
type Inspection struct {
	WordPress *wordpress.Site
	// Database holds the settings with the catalog's overrides applied.
	// It holds the password: never print it.
	Database wordpress.Database
	// DatabaseErr joins a *wordpress.ValueError for every setting that
	// could be read neither from wp-config.php nor from an override; nil
	// when Database is complete.
	DatabaseErr error
}

// Inspect discovers the WordPress install at the site's root through conn:
// wp-config.php in the root or the folder above, the version, multisite,
// and the database settings (entry's overrides win over wp-config.php).
// It fails with an error wrapping wordpress.ErrNotWordPress or
// wordpress.ErrNoConfig when the folder is not a usable site.
func Inspect(ctx context.Context, conn connection.Connection, entry sitevault.Site) (*Inspection, error) {
	root, err := conn.FS(ctx)
	if err != nil {
		return nil, fmt.Errorf("open the site folder %s: %w", entry.Location(), err)
	}
	defer root.Close()
	opts := wordpress.DiscoverOptions{RootPath: entry.Path}
	if parentDir := path.Dir(entry.Path); parentDir != entry.Path {
		// The folder above may be unreadable; then only the root counts.
		if parent, err := conn.FSAt(ctx, parentDir); err == nil {
			defer parent.Close()
			opts.Parent = parent
		}
	}
	wp, err := wordpress.Discover(ctx, root, opts)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", entry.Location(), err)
	}
	in := &Inspection{WordPress: wp}
	in.Database, in.DatabaseErr = wp.Config.Database(Overrides(entry.DB))
	return in, nil
}

// Overrides turns the catalog's overrides into wordpress's (unset fields
// keep wp-config.php's value).
func Overrides(o sitevault.DBOverrides) wordpress.Overrides {
	var w wordpress.Overrides
	set := func(v string) *string {
		if v == "" {
			return nil
		}
		return &v
	}
	w.DBHost = set(o.Host)
	w.DBName = set(o.Name)
	w.DBUser = set(o.User)
	w.DBPassword = set(o.Password.Reveal())
	w.TablePrefix = set(o.TablePrefix)
	return w
}

// otherSockets are where distributions put the MySQL/MariaDB socket, tried
// after PHP's default when DB_HOST is plain "localhost" (PHP's own default
// socket is set in php.ini, which sitevault does not read).
var otherSockets = []string{"/run/mysqld/mysqld.sock", "/var/lib/mysql/mysql.sock", "/tmp/mysql.sock", "/var/run/mysql/mysql.sock"}

// DBAddrs returns the addresses DB_HOST may mean, in the order to try them.
func DBAddrs(dbHost string) ([]wordpress.DBAddr, error) {
	addr, err := wordpress.ParseDBHost(dbHost, "")
	if err != nil {
		return nil, err
	}
	addrs := []wordpress.DBAddr{addr}
	if addr.Network == "unix" && addr.Address == wordpress.DefaultDBSocket && !strings.Contains(dbHost, ":/") {
		for _, s := range otherSockets {
			addrs = append(addrs, wordpress.DBAddr{Network: "unix", Address: s})
		}
	}
	return addrs, nil
}

// CheckDatabase logs in to the site's database through conn and runs
// SELECT 1. It returns the address that worked, or an error wrapping
// ErrDBUnreachable, ErrDBLogin or ErrDBName. Errors never hold the password.
func CheckDatabase(ctx context.Context, conn connection.Connection, db wordpress.Database) (wordpress.DBAddr, error) {
	addrs, err := DBAddrs(db.Host)
	if err != nil {
		return wordpress.DBAddr{}, fmt.Errorf("%w: DB_HOST %q: %w", ErrDBUnreachable, db.Host, err)
	}
	var first error
	for _, a := range addrs {
		err := ping(ctx, conn, a, db)
		if err == nil {
			return a, nil
		}
		if first == nil {
			first = err
		}
		if !errors.Is(err, ErrDBUnreachable) {
			return a, err // the server answered: no other address is meant
		}
	}
	return addrs[0], first
}

// DBHostFor writes addr back as a DB_HOST value that parses to it, for
// recording the login that worked.
func DBHostFor(a wordpress.DBAddr) string {
	if a.Network == "unix" {
		return "localhost:" + a.Address
	}
	return a.Address
}

func ping(ctx context.Context, conn connection.Connection, a wordpress.DBAddr, db wordpress.Database) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	where := a.Network + ":" + a.Address
	var (
		mu      sync.Mutex
		dialErr error
	)
	dc := driver.NewConfig()
	dc.Net, dc.Addr = a.Network, a.Address
	dc.User, dc.Passwd, dc.DBName = db.User, db.Password, db.Name
	dc.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := conn.Dial(ctx, network, addr)
		if err != nil {
			mu.Lock()
			dialErr = err
			mu.Unlock()
		}
		return c, err
	}
	connector, err := driver.NewConnector(dc)
	if err != nil {
		return fmt.Errorf("database settings: %w", err)
	}
	sqlDB := sql.OpenDB(connector)
	defer sqlDB.Close()
	var one int
	err = sqlDB.QueryRowContext(ctx, "SELECT 1").Scan(&one)
	if err == nil {
		return nil
	}
	mu.Lock()
	derr := dialErr
	mu.Unlock()
	var me *driver.MySQLError
	switch {
	case derr != nil:
		return fmt.Errorf("%w: %s (DB_HOST %q) through %s: %w; check DB_HOST", ErrDBUnreachable, where, db.Host, conn, derr)
	case errors.As(err, &me) && (me.Number == 1045 || me.Number == 1698):
		return fmt.Errorf("%w: the server at %s refused user %q (MySQL error %d); check DB_USER and DB_PASSWORD", ErrDBLogin, where, db.User, me.Number)
	case errors.As(err, &me) && (me.Number == 1044 || me.Number == 1049):
		return fmt.Errorf("%w: user %q cannot use database %q at %s (MySQL error %d: %s); check DB_NAME", ErrDBName, db.User, db.Name, where, me.Number, me.Message)
	case ctx.Err() != nil:
		return fmt.Errorf("%w: %s (DB_HOST %q) did not answer in time", ErrDBUnreachable, where, db.Host)
	}
	return fmt.Errorf("database at %s: %w", where, err)
}
