// Package catalog is the service's own state: the sites sitevault knows
// and their sealed credentials, the jobs (queue and history), the users,
// their sessions and API tokens, settings, and each site's schedule and
// alert state.
//
// The catalog is an index, not the source of truth for restore points (the
// repository is). Its queries are written once; the database is chosen by
// a Dialect: SQLite in the data home for one machine (package
// catalog/sqlite), PostgreSQL for several workers (package
// catalog/postgres). Each dialect's schema evolves through its own
// numbered migrations, recorded in the schema_migrations table.
//
// Secrets (SSH passwords, key passphrases, database passwords, the last
// working database credentials, the SMTP password) are sealed with the
// seal package before they are written, and are sitevault.Secret values in
// memory, which print as "[redacted]". Every process that opens one
// catalog needs the same seal key.
package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/sitevault/sitevault/internal/seal"
	"github.com/sitevault/sitevault/internal/sitevault"
)

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
	// ErrNotFound means no row has the given id (a job, a user, a token).
	ErrNotFound = errors.New("not found")
	// ErrExists means a row with the same unique value exists (a user's email).
	ErrExists = errors.New("already exists")
)

// Dialect is what differs between the databases a catalog lives in. The
// catalog's queries are written once, with ? placeholders, in the SQL both
// SQLite and PostgreSQL understand; times are stored as sortable UTC text
// so that comparisons are the same in both.
type Dialect struct {
	// Name is "sqlite" or "postgres".
	Name string
	// Migrations are the dialect's schema changes, versions 1, 2, 3, ….
	Migrations []Migration
	// Dollar says the driver takes $1, $2 … placeholders (PostgreSQL).
	Dollar bool
	// IsUniqueViolation reports a unique constraint failure.
	IsUniqueViolation func(error) bool
	// LockMigrations runs first in each migration's transaction, so that
	// two processes starting at once apply every migration once (SQLite
	// needs nothing: its transactions take the write lock when they begin).
	LockMigrations func(ctx context.Context, tx *sql.Tx) error
	// SkipLocked ends the query that picks a queued job, so that workers
	// claiming at once pick different jobs without waiting for each other
	// ("FOR UPDATE SKIP LOCKED" on PostgreSQL; SQLite has one writer).
	SkipLocked string
	// IndexedBy names the index a query on the activity log must use,
	// after "FROM activity" (SQLite's "INDEXED BY name": without
	// statistics its planner takes an index that makes the page read and
	// sort every match). Nil where the planner has statistics (PostgreSQL).
	IndexedBy func(index string) string
	// ILike is the operator that matches a LIKE pattern ignoring case:
	// PostgreSQL's ILIKE; SQLite's LIKE ignores case already (ASCII
	// only, as its lower() does), so "LIKE" there, without a lower()
	// call per row.
	ILike string
}

// Migration is one numbered, append-only schema change. Never edit or
// reorder a released migration: add a new one.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// Catalog is an open catalog. It is safe for concurrent use, by several
// processes too.
type Catalog struct {
	db     *sql.DB
	d      Dialect
	sealer *seal.Sealer
	path   string
	// Now is the clock for created/updated times; tests replace it.
	Now func() time.Time
}

// New wraps an open database of dialect d, sealing secrets with sealer,
// and migrates it to the current schema. where names the database in
// messages (a file path, or a URL without its password). The catalog
// closes db when it is closed.
func New(ctx context.Context, db *sql.DB, d Dialect, sealer *seal.Sealer, where string) (*Catalog, error) {
	c := &Catalog{db: db, d: d, sealer: sealer, path: where, Now: time.Now}
	if err := c.migrate(ctx); err != nil {
		return nil, fmt.Errorf("open catalog %s: %w", where, err)
	}
	return c, nil
}

// Dialect returns the catalog's dialect name ("sqlite" or "postgres").
func (c *Catalog) Dialect() string { return c.d.Name }

// indexedBy is the dialect's IndexedBy, or "".
func (c *Catalog) indexedBy(index string) string {
	if c.d.IndexedBy == nil {
		return ""
	}
	return c.d.IndexedBy(index)
}

// q adapts a query written with ? and ?N placeholders to the dialect.
func (c *Catalog) q(query string) string {
	if !c.d.Dollar {
		return query
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] != '?' {
			b.WriteByte(query[i])
			continue
		}
		j := i + 1
		for j < len(query) && query[j] >= '0' && query[j] <= '9' {
			j++
		}
		if j > i+1 {
			b.WriteString("$" + query[i+1:j])
			i = j - 1
			continue
		}
		n++
		b.WriteString("$" + strconv.Itoa(n))
	}
	return b.String()
}

func (c *Catalog) isUnique(err error) bool {
	return err != nil && c.d.IsUniqueViolation != nil && c.d.IsUniqueViolation(err)
}

// Path names the database: a file path, or a URL without its password.
func (c *Catalog) Path() string { return c.path }

// Close closes the database.
func (c *Catalog) Close() error { return c.db.Close() }

// DB is the database, for tests and the dialect packages.
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

// inTx runs fn in a transaction, committed when fn returns nil.
func (c *Catalog) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

func formatOptTime(t *time.Time) string {
	if t == nil || t.IsZero() {
		return ""
	}
	return formatTime(*t)
}

func parseOptTime(s string) *time.Time {
	if s == "" {
		return nil
	}
	t := parseTime(s)
	return &t
}
