package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/sitevault/sitevault/internal/sitevault"
)

// Passwords are stored as argon2id hashes and sessions and tokens as
// SHA-256 hashes of their values; the auth package makes and checks them,
// the catalog only keeps them.

// AddUser stores a user with the given password hash.
func (c *Catalog) AddUser(ctx context.Context, u sitevault.User, passwordHash string) (*sitevault.User, error) {
	if !u.Role.Valid() {
		return nil, fmt.Errorf("%w: role %q (owner or viewer)", ErrInvalid, u.Role)
	}
	u.Created = c.now()
	err := c.db.QueryRowContext(ctx, c.q(`INSERT INTO users (email, name, role, password_hash, created_at)
		VALUES (?, ?, ?, ?, ?) RETURNING id`), u.Email, u.Name, string(u.Role), passwordHash, formatTime(u.Created)).Scan(&u.ID)
	if c.isUnique(err) {
		return nil, fmt.Errorf("user %s: %w", u.Email, ErrExists)
	}
	if err != nil {
		return nil, fmt.Errorf("add user %s: %w", u.Email, err)
	}
	return &u, nil
}

const userColumns = `id, email, name, role, created_at`

func scanUser(r scanner) (*sitevault.User, error) {
	var u sitevault.User
	var role, created string
	if err := r.Scan(&u.ID, &u.Email, &u.Name, &role, &created); err != nil {
		return nil, err
	}
	u.Role, u.Created = sitevault.Role(role), parseTime(created)
	return &u, nil
}

// UserByEmail returns a user and its password hash, or ErrNotFound.
func (c *Catalog) UserByEmail(ctx context.Context, email string) (*sitevault.User, string, error) {
	var hash string
	var u sitevault.User
	var role, created string
	err := c.db.QueryRowContext(ctx, c.q(`SELECT `+userColumns+`, password_hash FROM users WHERE email = ?`), email).
		Scan(&u.ID, &u.Email, &u.Name, &role, &created, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, "", fmt.Errorf("user %s: %w", email, ErrNotFound)
	}
	if err != nil {
		return nil, "", fmt.Errorf("read user %s: %w", email, err)
	}
	u.Role, u.Created = sitevault.Role(role), parseTime(created)
	return &u, hash, nil
}

// User returns the user with the given id, or ErrNotFound.
func (c *Catalog) User(ctx context.Context, id int64) (*sitevault.User, error) {
	u, err := scanUser(c.db.QueryRowContext(ctx, c.q(`SELECT `+userColumns+` FROM users WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("user %d: %w", id, ErrNotFound)
	}
	return u, err
}

// Users lists every user by id.
func (c *Catalog) Users(ctx context.Context) ([]*sitevault.User, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT `+userColumns+` FROM users ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	defer rows.Close()
	var out []*sitevault.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// CountUsers returns the number of users.
func (c *Catalog) CountUsers(ctx context.Context) (int, error) {
	var n int
	err := c.db.QueryRowContext(ctx, `SELECT count(*) FROM users`).Scan(&n)
	return n, err
}

// ErrLastOwner refuses a change that would leave no owner.
var ErrLastOwner = errors.New("this is the last owner: make another user an owner first")

// lockOwners makes concurrent changes of owners wait for each other (on
// PostgreSQL, whose transactions would otherwise each see the other's
// owner still there; SQLite runs one writing transaction at a time).
func (c *Catalog) lockOwners(ctx context.Context, tx *sql.Tx) error {
	if c.Dialect() != "postgres" {
		return nil
	}
	rows, err := tx.QueryContext(ctx, c.q(`SELECT id FROM users WHERE role = 'owner' FOR UPDATE`))
	if err != nil {
		return err
	}
	return rows.Close()
}

// ownersLeft fails with ErrLastOwner when the transaction's changes left
// no owner.
func (c *Catalog) ownersLeft(ctx context.Context, tx *sql.Tx) error {
	var n int
	if err := tx.QueryRowContext(ctx, c.q(`SELECT count(*) FROM users WHERE role = 'owner'`)).Scan(&n); err != nil {
		return err
	}
	if n == 0 {
		return ErrLastOwner
	}
	return nil
}

// UpdateUser changes a user's name and role, and its password hash when
// passwordHash is not "". Sessions of the user end when the password or
// role changes. Taking the last owner's role fails with ErrLastOwner.
func (c *Catalog) UpdateUser(ctx context.Context, u sitevault.User, passwordHash string) error {
	if !u.Role.Valid() {
		return fmt.Errorf("%w: role %q (owner or viewer)", ErrInvalid, u.Role)
	}
	return c.inTx(ctx, func(tx *sql.Tx) error {
		if err := c.lockOwners(ctx, tx); err != nil {
			return err
		}
		old, err := scanUser(tx.QueryRowContext(ctx, c.q(`SELECT `+userColumns+` FROM users WHERE id = ?`), u.ID))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("user %d: %w", u.ID, ErrNotFound)
		}
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, c.q(`UPDATE users SET name = ?, role = ? WHERE id = ?`), u.Name, string(u.Role), u.ID); err != nil {
			return err
		}
		if passwordHash != "" {
			if _, err := tx.ExecContext(ctx, c.q(`UPDATE users SET password_hash = ? WHERE id = ?`), passwordHash, u.ID); err != nil {
				return err
			}
		}
		if old.Role == sitevault.RoleOwner && u.Role != sitevault.RoleOwner {
			if err := c.ownersLeft(ctx, tx); err != nil {
				return err
			}
		}
		if passwordHash != "" || old.Role != u.Role {
			_, err = tx.ExecContext(ctx, c.q(`DELETE FROM sessions WHERE user_id = ?`), u.ID)
		}
		return err
	})
}

// RemoveUser deletes a user with its sessions and tokens. Removing the
// last owner fails with ErrLastOwner.
func (c *Catalog) RemoveUser(ctx context.Context, id int64) error {
	return c.inTx(ctx, func(tx *sql.Tx) error {
		if err := c.lockOwners(ctx, tx); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, c.q(`DELETE FROM users WHERE id = ?`), id)
		if err != nil {
			return fmt.Errorf("remove user %d: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("user %d: %w", id, ErrNotFound)
		}
		return c.ownersLeft(ctx, tx)
	})
}

// AddSession stores a session by the hash of its cookie value.
func (c *Catalog) AddSession(ctx context.Context, tokenHash string, userID int64, expires time.Time) error {
	_, err := c.db.ExecContext(ctx, c.q(`INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)`),
		tokenHash, userID, formatTime(c.now()), formatTime(expires))
	if err != nil {
		return fmt.Errorf("add session: %w", err)
	}
	return nil
}

// SessionUser returns the user of an unexpired session, or ErrNotFound.
func (c *Catalog) SessionUser(ctx context.Context, tokenHash string) (*sitevault.User, error) {
	u, err := scanUser(c.db.QueryRowContext(ctx, c.q(`SELECT u.id, u.email, u.name, u.role, u.created_at
		FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = ? AND s.expires_at > ?`),
		tokenHash, formatTime(c.now())))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("session: %w", ErrNotFound)
	}
	return u, err
}

// RemoveSession ends a session; expired sessions are removed with it.
func (c *Catalog) RemoveSession(ctx context.Context, tokenHash string) error {
	_, err := c.db.ExecContext(ctx, c.q(`DELETE FROM sessions WHERE token_hash = ? OR expires_at < ?`), tokenHash, formatTime(c.now()))
	return err
}

// AddToken stores an API token by its hash.
func (c *Catalog) AddToken(ctx context.Context, t sitevault.Token, tokenHash string) (*sitevault.Token, error) {
	t.Created = c.now()
	err := c.db.QueryRowContext(ctx, c.q(`INSERT INTO tokens (user_id, name, prefix, token_hash, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?) RETURNING id`), t.UserID, t.Name, t.Prefix, tokenHash, formatTime(t.Created), formatOptTime(t.Expires)).Scan(&t.ID)
	if err != nil {
		return nil, fmt.Errorf("add token: %w", err)
	}
	return &t, nil
}

// TokenUser returns the user of an unexpired token and records its use,
// or ErrNotFound.
func (c *Catalog) TokenUser(ctx context.Context, tokenHash string) (*sitevault.User, error) {
	now := formatTime(c.now())
	u, err := scanUser(c.db.QueryRowContext(ctx, c.q(`SELECT u.id, u.email, u.name, u.role, u.created_at
		FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.token_hash = ? AND (t.expires_at = '' OR t.expires_at > ?)`),
		tokenHash, now))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("token: %w", ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	_, err = c.db.ExecContext(ctx, c.q(`UPDATE tokens SET last_used_at = ? WHERE token_hash = ?`), now, tokenHash)
	return u, err
}

// Tokens lists the tokens of a user (all users when userID is 0).
func (c *Catalog) Tokens(ctx context.Context, userID int64) ([]*sitevault.Token, error) {
	rows, err := c.db.QueryContext(ctx, c.q(`SELECT id, user_id, name, prefix, created_at, last_used_at, expires_at
		FROM tokens WHERE ? = 0 OR user_id = ? ORDER BY id`), userID, userID)
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	defer rows.Close()
	var out []*sitevault.Token
	for rows.Next() {
		var t sitevault.Token
		var created, used, expires string
		if err := rows.Scan(&t.ID, &t.UserID, &t.Name, &t.Prefix, &created, &used, &expires); err != nil {
			return nil, err
		}
		t.Created, t.LastUsed, t.Expires = parseTime(created), parseOptTime(used), parseOptTime(expires)
		out = append(out, &t)
	}
	return out, rows.Err()
}

// RemoveToken deletes a token of a user (any user's when userID is 0).
func (c *Catalog) RemoveToken(ctx context.Context, id, userID int64) error {
	res, err := c.db.ExecContext(ctx, c.q(`DELETE FROM tokens WHERE id = ? AND (? = 0 OR user_id = ?)`), id, userID, userID)
	if err != nil {
		return fmt.Errorf("remove token %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("token %d: %w", id, ErrNotFound)
	}
	return nil
}

// Setting keys.
const (
	// SettingSMTP holds the mail settings as sealed JSON.
	SettingSMTP = "smtp"
)

// SetSetting stores a setting; sealed values are sealed under the key.
func (c *Catalog) SetSetting(ctx context.Context, key string, value []byte, sealed bool) error {
	v := string(value)
	if sealed {
		v = c.sealer.Seal(value, "sitevault/catalog/settings/"+key)
	}
	_, err := c.db.ExecContext(ctx, c.q(`INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`), key, v, formatTime(c.now()))
	if err != nil {
		return fmt.Errorf("save setting %s: %w", key, err)
	}
	return nil
}

// Setting returns a setting (nil when unset), opening it if sealed.
func (c *Catalog) Setting(ctx context.Context, key string, sealed bool) ([]byte, error) {
	var v string
	err := c.db.QueryRowContext(ctx, c.q(`SELECT value FROM settings WHERE key = ?`), key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read setting %s: %w", key, err)
	}
	if !sealed {
		return []byte(v), nil
	}
	b, err := c.sealer.Open(v, "sitevault/catalog/settings/"+key)
	if err != nil {
		return nil, fmt.Errorf("setting %s: %w", key, err)
	}
	return b, nil
}

// AddSettingOnce stores a setting unless it is set already (two workers
// creating a shared key at once keep the first one).
func (c *Catalog) AddSettingOnce(ctx context.Context, key string, value []byte, sealed bool) error {
	v := string(value)
	if sealed {
		v = c.sealer.Seal(value, "sitevault/catalog/settings/"+key)
	}
	_, err := c.db.ExecContext(ctx, c.q(`INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (key) DO NOTHING`), key, v, formatTime(c.now()))
	if err != nil {
		return fmt.Errorf("save setting %s: %w", key, err)
	}
	return nil
}
