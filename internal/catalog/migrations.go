package catalog

import (
	"context"
	"database/sql"
	"fmt"
)

// migrate applies the migrations the database has not seen, each in its own
// transaction together with its row in schema_migrations, so a crash leaves
// the schema at a numbered version.
func (c *Catalog) migrate(ctx context.Context) error {
	// Two processes creating the table at once collide on PostgreSQL even
	// with IF NOT EXISTS, so the creation takes the migration lock too.
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer tx.Rollback()
	if c.d.LockMigrations != nil {
		if err := c.d.LockMigrations(ctx, tx); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    INTEGER PRIMARY KEY,
	name       TEXT NOT NULL,
	applied_at TEXT NOT NULL
)`); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	have, err := c.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	migrations := c.d.Migrations
	latest := migrations[len(migrations)-1].Version
	if have > latest {
		return fmt.Errorf("%w: the catalog is at version %d, this sitevault knows up to %d; upgrade sitevault", ErrSchemaTooNew, have, latest)
	}
	for _, m := range migrations {
		if m.Version <= have {
			continue
		}
		if err := c.apply(ctx, m); err != nil {
			return err
		}
	}
	return nil
}

func (c *Catalog) apply(ctx context.Context, m Migration) error {
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate to %d: %w", m.Version, err)
	}
	defer tx.Rollback()
	if c.d.LockMigrations != nil {
		if err := c.d.LockMigrations(ctx, tx); err != nil {
			return fmt.Errorf("migrate to %d: %w", m.Version, err)
		}
	}
	// Another process may have applied it while we waited for the lock.
	var n int
	if err := tx.QueryRowContext(ctx, c.q(`SELECT count(*) FROM schema_migrations WHERE version = ?`), m.Version).Scan(&n); err != nil {
		return fmt.Errorf("migrate to %d: %w", m.Version, err)
	}
	if n > 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
		return fmt.Errorf("migrate to %d (%s): %w", m.Version, m.Name, err)
	}
	if _, err := tx.ExecContext(ctx, c.q(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`),
		m.Version, m.Name, formatTime(c.now())); err != nil {
		return fmt.Errorf("migrate to %d: %w", m.Version, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate to %d: %w", m.Version, err)
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
