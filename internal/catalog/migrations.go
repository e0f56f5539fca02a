package catalog

import (
	"context"
	"database/sql"
	"fmt"
)

// migration is one numbered, append-only schema change. Never edit or
// reorder a released migration: add a new one.
type migration struct {
	version int
	name    string
	sql     string
}

// migrations lists every schema change in order; versions are 1, 2, 3, ….
var migrations = []migration{
	{1, "sites", `
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
}

// migrate applies the migrations the database has not seen, each in its own
// transaction together with its row in schema_migrations, so a crash leaves
// the schema at a numbered version.
func (c *Catalog) migrate(ctx context.Context) error {
	if _, err := c.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    INTEGER PRIMARY KEY,
	name       TEXT NOT NULL,
	applied_at TEXT NOT NULL
)`); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	have, err := c.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	latest := migrations[len(migrations)-1].version
	if have > latest {
		return fmt.Errorf("%w: the catalog is at version %d, this sitevault knows up to %d; upgrade sitevault", ErrSchemaTooNew, have, latest)
	}
	for _, m := range migrations {
		if m.version <= have {
			continue
		}
		if err := c.apply(ctx, m); err != nil {
			return err
		}
	}
	return nil
}

func (c *Catalog) apply(ctx context.Context, m migration) error {
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate to %d: %w", m.version, err)
	}
	defer tx.Rollback()
	// Another process may have applied it while we waited for the lock.
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE version = ?`, m.version).Scan(&n); err != nil {
		return fmt.Errorf("migrate to %d: %w", m.version, err)
	}
	if n > 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, m.sql); err != nil {
		return fmt.Errorf("migrate to %d (%s): %w", m.version, m.name, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
		m.version, m.name, formatTime(c.now())); err != nil {
		return fmt.Errorf("migrate to %d: %w", m.version, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate to %d: %w", m.version, err)
	}
	return nil
}

// SchemaVersion returns the highest applied migration (0 for a new file).
func (c *Catalog) SchemaVersion(ctx context.Context) (int, error) {
	var v sql.NullInt64
	if err := c.db.QueryRowContext(ctx, `SELECT max(version) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return int(v.Int64), nil
}
