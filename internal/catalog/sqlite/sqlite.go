// Package sqlite opens a catalog in an SQLite file (modernc.org/sqlite, no
// cgo): the default, for one machine, at <data home>/catalog.db, in WAL
// mode with a busy timeout so that the CLI and the service use it at once.
package sqlite

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

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/sitevault/sitevault/internal/catalog"
	"github.com/sitevault/sitevault/internal/seal"
)

// FileName is the catalog database's name inside the data home.
const FileName = "catalog.db"

// busyTimeout is how long a statement waits for another process's write
// lock before it fails with SQLITE_BUSY.
const busyTimeout = 10 * time.Second

// Migrations are SQLite's schema changes. Never edit or reorder a
// released one: add a new one.
var Migrations = []catalog.Migration{
	{Version: 1, Name: "sites", SQL: `
CREATE TABLE sites (
	id                   INTEGER PRIMARY KEY,
	name                 TEXT NOT NULL UNIQUE,
	connection           TEXT NOT NULL CHECK (connection IN ('local', 'ssh')),
	path                 TEXT NOT NULL,
	ssh_user             TEXT NOT NULL DEFAULT '',
	ssh_host             TEXT NOT NULL DEFAULT '',
	ssh_port             INTEGER NOT NULL DEFAULT 0,
	ssh_identity_file    TEXT NOT NULL DEFAULT '',
	ssh_host_key         TEXT NOT NULL DEFAULT '', -- authorized_keys format
	ssh_host_key_sha256  TEXT NOT NULL DEFAULT '', -- SHA256:… fingerprint
	ssh_password         TEXT NOT NULL DEFAULT '', -- sealed
	ssh_passphrase       TEXT NOT NULL DEFAULT '', -- sealed
	db_host              TEXT NOT NULL DEFAULT '', -- overrides of wp-config.php
	db_name              TEXT NOT NULL DEFAULT '',
	db_user              TEXT NOT NULL DEFAULT '',
	db_password          TEXT NOT NULL DEFAULT '', -- sealed
	db_table_prefix      TEXT NOT NULL DEFAULT '',
	db_last_credentials  TEXT NOT NULL DEFAULT '', -- sealed JSON of the last login that worked
	created_at           TEXT NOT NULL,
	updated_at           TEXT NOT NULL
);`},
	{Version: 2, Name: "service", SQL: `
ALTER TABLE sites ADD COLUMN schedule TEXT NOT NULL DEFAULT '';
ALTER TABLE sites ADD COLUMN retention TEXT NOT NULL DEFAULT '';
ALTER TABLE sites ADD COLUMN notify TEXT NOT NULL DEFAULT '';
` + catalog.ServiceSchema("INTEGER PRIMARY KEY")},
	{Version: 3, Name: "site locks", SQL: catalog.SiteLocksTable},
	{Version: 4, Name: "activity", SQL: catalog.ActivitySchema("INTEGER PRIMARY KEY")},
	{Version: 5, Name: "real-time lead", SQL: catalog.LeadAfterColumn},
	{Version: 6, Name: "activity group index", SQL: catalog.ActivityGroupIndex},
	{Version: 7, Name: "storage per site", SQL: catalog.StoredBytesColumn},
	{Version: 8, Name: "activity text index", SQL: catalog.ActivityTextIndex},
}

// Dialect is SQLite's catalog dialect.
var Dialect = catalog.Dialect{
	Name:              "sqlite",
	Migrations:        Migrations,
	IsUniqueViolation: isUniqueViolation,
	IndexedBy:         func(index string) string { return " INDEXED BY " + index },
	ILike:             "LIKE",
}

// Open opens (creating if needed) the catalog in the data home home, with
// the seal key in home/secret.key (created on first use), and migrates it
// to the current schema.
func Open(ctx context.Context, home string) (*catalog.Catalog, error) {
	sealer, err := seal.OpenKeyFile(filepath.Join(home, seal.KeyFileName))
	if err != nil {
		return nil, fmt.Errorf("open catalog: %w", err)
	}
	return OpenFile(ctx, filepath.Join(home, FileName), sealer)
}

// OpenFile opens (creating if needed) the catalog database at path, sealing
// secrets with sealer, and migrates it to the current schema.
func OpenFile(ctx context.Context, path string, sealer *seal.Sealer) (*catalog.Catalog, error) {
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
	c, err := catalog.New(ctx, db, Dialect, sealer, path)
	if err != nil {
		db.Close()
		return nil, err
	}
	return c, nil
}

// isUniqueViolation reports a UNIQUE constraint failure.
func isUniqueViolation(err error) bool {
	var e *sqlite.Error
	return errors.As(err, &e) && (e.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || e.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY)
}
