// Package catalog is the service's own state: the sites sitevault knows and
// their sealed credentials (later also jobs, the activity log and
// notification state).
//
// The catalog is an index, not the source of truth for restore points (the
// repository is). It lives in SQLite (modernc.org/sqlite, no cgo) at
// <data home>/catalog.db in WAL mode with a busy timeout, so the CLI and the
// service can use it at once. Its schema evolves through numbered migrations
// recorded in the schema_migrations table (see migrations.go).
//
// Secrets (sitevault.SSH passwords, key passphrases, database passwords, the last
// working database credentials) are sealed with the seal package under
// <data home>/secret.key before they are written, and are sitevault.Secret values in
// memory, which print as "[redacted]".
package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/sitevault/sitevault/internal/seal"
	"github.com/sitevault/sitevault/internal/sitevault"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// FileName is the catalog database's name inside the data home.
const FileName = "catalog.db"

// busyTimeout is how long a statement waits for another process's write
// lock before it fails with SQLITE_BUSY.
const busyTimeout = 10 * time.Second

// Errors callers branch on.
var (
	// ErrSiteNotFound means no site has the given name.
	ErrSiteNotFound = errors.New("site not found")
	// ErrSiteExists means a site with the given name is already registered.
	ErrSiteExists = errors.New("site already exists")
	// ErrInvalid means a site's settings break a rule; it is
	// sitevault.ErrInvalid, kept here for callers of the catalog.
	ErrInvalid = sitevault.ErrInvalid
	// ErrSchemaTooNew means the catalog was migrated by a newer sitevault.
	ErrSchemaTooNew = errors.New("catalog schema is newer than this sitevault")
)

// Catalog is an open catalog. It is safe for concurrent use.
type Catalog struct {
	db     *sql.DB
	sealer *seal.Sealer
	path   string
	// Now is the clock for created/updated times; tests replace it.
	Now func() time.Time
}

// Open opens (creating if needed) the catalog in the data home home, with
// the seal key in home/secret.key (created on first use), and migrates it
// to the current schema.
func Open(ctx context.Context, home string) (*Catalog, error) {
	sealer, err := seal.OpenKeyFile(filepath.Join(home, seal.KeyFileName))
	if err != nil {
		return nil, fmt.Errorf("open catalog: %w", err)
	}
	return OpenFile(ctx, filepath.Join(home, FileName), sealer)
}

// OpenFile opens (creating if needed) the catalog database at path, sealing
// secrets with sealer, and migrates it to the current schema.
func OpenFile(ctx context.Context, path string, sealer *seal.Sealer) (*Catalog, error) {
	// Create the file ourselves so that it (and the -wal and -shm files,
	// which SQLite gives the database file's mode) is private.
	// One that other users may read is refused, as the key files are.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open catalog: %w", err)
	}
	fi, err := f.Stat()
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("open catalog: %w", err)
	}
	if err := seal.CheckMode(path, fi, "catalog"); err != nil {
		return nil, fmt.Errorf("open catalog: %w", err)
	}
	for _, side := range []string{path + "-wal", path + "-shm"} {
		fi, err := os.Lstat(side)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("open catalog: %w", err)
		}
		if err := seal.CheckMode(side, fi, "catalog journal"); err != nil {
			return nil, fmt.Errorf("open catalog: %w", err)
		}
	}

	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "foreign_keys(1)")
	// Transactions take the write lock when they begin, so two writers
	// wait on the busy timeout instead of failing on lock upgrade.
	q.Set("_txlock", "immediate")
	dsn := (&url.URL{Scheme: "file", OmitHost: true, Path: path, RawQuery: q.Encode()}).String()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open catalog %s: %w", path, err)
	}
	c := &Catalog{db: db, sealer: sealer, path: path, Now: time.Now}
	if err := c.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open catalog %s: %w", path, err)
	}
	return c, nil
}

// Path is the database file's path.
func (c *Catalog) Path() string { return c.path }

// Close closes the database.
func (c *Catalog) Close() error { return c.db.Close() }

// DB gives packages of later issues (jobs, activity log) the database; they
// add their tables as migrations in this package.
func (c *Catalog) DB() *sql.DB { return c.db }

func (c *Catalog) now() time.Time {
	if c.Now != nil {
		return c.Now().UTC()
	}
	return time.Now().UTC()
}

// timeFormat stores times as sortable UTC text.
const timeFormat = "2006-01-02T15:04:05.000000000Z"

func formatTime(t time.Time) string { return t.UTC().Format(timeFormat) }

func parseTime(s string) time.Time {
	t, err := time.Parse(timeFormat, s)
	if err != nil {
		return time.Time{}
	}
	return t
}
