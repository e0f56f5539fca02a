package catalog

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/sitevault/sitevault/internal/sitevault"
)

const siteColumns = `name, connection, path,
	ssh_user, ssh_host, ssh_port, ssh_identity_file, ssh_host_key, ssh_host_key_sha256, ssh_password, ssh_passphrase,
	db_host, db_name, db_user, db_password, db_table_prefix, db_last_credentials,
	created_at, updated_at, schedule, retention, notify`

// sealContext binds a sealed value to its site and column, so a value
// copied into another row or column does not open.
func sealContext(site, column string) string { return "sitevault/catalog/sites/" + site + "/" + column }

// AddSite stores a new site and returns it with its times set. A site
// with the same name gives ErrSiteExists; invalid settings give ErrInvalid.
func (c *Catalog) AddSite(ctx context.Context, s sitevault.Site) (sitevault.Site, error) {
	if err := s.Validate(); err != nil {
		return sitevault.Site{}, err
	}
	now := c.now()
	s.Created, s.Updated = now, now
	args, err := c.siteArgs(s)
	if err != nil {
		return sitevault.Site{}, err
	}
	err = c.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, c.q(`INSERT INTO sites (`+siteColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`), args...); err != nil {
			return err
		}
		// The status row starts without a next backup: the scheduler
		// computes it (see PendingSchedules).
		_, err := tx.ExecContext(ctx, c.q(`INSERT INTO site_status (site) VALUES (?)`), s.Name)
		return err
	})
	if err != nil {
		if c.isUnique(err) {
			return sitevault.Site{}, fmt.Errorf("add site %s: %w", s.Name, ErrSiteExists)
		}
		return sitevault.Site{}, fmt.Errorf("add site %s: %w", s.Name, err)
	}
	return s, nil
}

// UpdateSite replaces the stored settings of the site named s.Name (its
// created time is kept) and returns it as stored. ErrSiteNotFound if
// there is none. A changed schedule is computed again by the scheduler.
func (c *Catalog) UpdateSite(ctx context.Context, s sitevault.Site) (sitevault.Site, error) {
	if err := s.Validate(); err != nil {
		return sitevault.Site{}, err
	}
	old, err := c.Site(ctx, s.Name)
	if err != nil {
		return sitevault.Site{}, err
	}
	s.Created, s.Updated = old.Created, c.now()
	args, err := c.siteArgs(s)
	if err != nil {
		return sitevault.Site{}, err
	}
	err = c.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, c.q(`UPDATE sites SET
		connection = ?2, path = ?3,
		ssh_user = ?4, ssh_host = ?5, ssh_port = ?6, ssh_identity_file = ?7, ssh_host_key = ?8, ssh_host_key_sha256 = ?9,
		ssh_password = ?10, ssh_passphrase = ?11,
		db_host = ?12, db_name = ?13, db_user = ?14, db_password = ?15, db_table_prefix = ?16, db_last_credentials = ?17,
		created_at = ?18, updated_at = ?19, schedule = ?20, retention = ?21, notify = ?22
		WHERE name = ?1`), args...)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrSiteNotFound
		}
		if old.Schedule != s.Schedule {
			_, err = tx.ExecContext(ctx, c.q(`UPDATE site_status SET next_backup_at = '' WHERE site = ?`), s.Name)
		}
		return err
	})
	if err != nil {
		return sitevault.Site{}, fmt.Errorf("update site %s: %w", s.Name, err)
	}
	return s, nil
}

// SetLastDB records the database login that worked for the site.
func (c *Catalog) SetLastDB(ctx context.Context, name string, cred sitevault.DBCredentials) error {
	sealed, err := c.sealCredentials(name, &cred)
	if err != nil {
		return err
	}
	res, err := c.db.ExecContext(ctx, c.q(`UPDATE sites SET db_last_credentials = ?, updated_at = ? WHERE name = ?`),
		sealed, formatTime(c.now()), name)
	if err != nil {
		return fmt.Errorf("record database login of %s: %w", name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("record database login of %s: %w", name, ErrSiteNotFound)
	}
	return nil
}

// RemoveSite deletes the site from the catalog (its restore points stay in
// the repository). ErrSiteNotFound if there is none.
func (c *Catalog) RemoveSite(ctx context.Context, name string) error {
	res, err := c.db.ExecContext(ctx, c.q(`DELETE FROM sites WHERE name = ?`), name)
	if err != nil {
		return fmt.Errorf("remove site %s: %w", name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("remove site %s: %w", name, ErrSiteNotFound)
	}
	return nil
}

// Site returns the site called name with its secrets opened.
// ErrSiteNotFound if there is none.
func (c *Catalog) Site(ctx context.Context, name string) (sitevault.Site, error) {
	row := c.db.QueryRowContext(ctx, c.q(`SELECT `+siteColumns+` FROM sites WHERE name = ?`), name)
	s, err := c.scanSite(row)
	if errors.Is(err, sql.ErrNoRows) {
		return sitevault.Site{}, fmt.Errorf("site %s: %w", name, ErrSiteNotFound)
	}
	if err != nil {
		return sitevault.Site{}, fmt.Errorf("read site %s: %w", name, err)
	}
	return s, nil
}

// Sites returns every site, sorted by name.
func (c *Catalog) Sites(ctx context.Context) ([]sitevault.Site, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT `+siteColumns+` FROM sites ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list sites: %w", err)
	}
	defer rows.Close()
	var out []sitevault.Site
	for rows.Next() {
		s, err := c.scanSite(rows)
		if err != nil {
			return nil, fmt.Errorf("list sites: %w", err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list sites: %w", err)
	}
	return out, nil
}

func (c *Catalog) siteArgs(s sitevault.Site) ([]any, error) {
	last, err := c.sealCredentials(s.Name, s.LastDB)
	if err != nil {
		return nil, err
	}
	sched, retention, notify, err := siteSettingsJSON(s)
	if err != nil {
		return nil, err
	}
	seal := func(column string, v sitevault.Secret) string {
		return c.sealer.Seal([]byte(v.Reveal()), sealContext(s.Name, column))
	}
	return []any{
		s.Name, string(s.Kind), s.Path,
		s.SSH.User, s.SSH.Host, s.SSH.Port, s.SSH.IdentityFile, s.SSH.HostKey, s.SSH.HostKeyFingerprint,
		seal("ssh_password", s.SSH.Password), seal("ssh_passphrase", s.SSH.Passphrase),
		s.DB.Host, s.DB.Name, s.DB.User, seal("db_password", s.DB.Password), s.DB.TablePrefix, last,
		formatTime(s.Created), formatTime(s.Updated),
		sched, retention, notify,
	}, nil
}

// credentialsJSON is sitevault.DBCredentials with the password visible, for sealing
// only (sitevault.Secret marshals as "[redacted]").
type credentialsJSON struct {
	Host     string `json:"host"`
	Name     string `json:"name"`
	User     string `json:"user"`
	Password string `json:"password"`
}

func (c *Catalog) sealCredentials(site string, cred *sitevault.DBCredentials) (string, error) {
	if cred == nil {
		return "", nil
	}
	b, err := json.Marshal(credentialsJSON{cred.Host, cred.Name, cred.User, cred.Password.Reveal()})
	if err != nil {
		return "", fmt.Errorf("seal database login: %w", err)
	}
	return c.sealer.Seal(b, sealContext(site, "db_last_credentials")), nil
}

type scanner interface{ Scan(dest ...any) error }

func (c *Catalog) scanSite(r scanner) (sitevault.Site, error) {
	var (
		s                                    sitevault.Site
		kind, created, updated               string
		sshPassword, sshPassphrase, dbPasswd string
		last, sched, retention, notify       string
	)
	err := r.Scan(&s.Name, &kind, &s.Path,
		&s.SSH.User, &s.SSH.Host, &s.SSH.Port, &s.SSH.IdentityFile, &s.SSH.HostKey, &s.SSH.HostKeyFingerprint,
		&sshPassword, &sshPassphrase,
		&s.DB.Host, &s.DB.Name, &s.DB.User, &dbPasswd, &s.DB.TablePrefix, &last,
		&created, &updated, &sched, &retention, &notify)
	if err != nil {
		return sitevault.Site{}, err
	}
	s.Kind = sitevault.Kind(kind)
	if err := parseSiteSettings(&s, sched, retention, notify); err != nil {
		return sitevault.Site{}, err
	}
	s.Created, s.Updated = parseTime(created), parseTime(updated)
	open := func(column, sealed string) (sitevault.Secret, error) {
		b, err := c.sealer.Open(sealed, sealContext(s.Name, column))
		if err != nil {
			return "", fmt.Errorf("site %s: %s: %w", s.Name, column, err)
		}
		return sitevault.Secret(b), nil
	}
	if s.SSH.Password, err = open("ssh_password", sshPassword); err != nil {
		return sitevault.Site{}, err
	}
	if s.SSH.Passphrase, err = open("ssh_passphrase", sshPassphrase); err != nil {
		return sitevault.Site{}, err
	}
	if s.DB.Password, err = open("db_password", dbPasswd); err != nil {
		return sitevault.Site{}, err
	}
	if last != "" {
		b, err := c.sealer.Open(last, sealContext(s.Name, "db_last_credentials"))
		if err != nil {
			return sitevault.Site{}, fmt.Errorf("site %s: last database login: %w", s.Name, err)
		}
		var cj credentialsJSON
		if err := json.Unmarshal(b, &cj); err != nil {
			return sitevault.Site{}, fmt.Errorf("site %s: last database login: %w", s.Name, err)
		}
		s.LastDB = &sitevault.DBCredentials{Host: cj.Host, Name: cj.Name, User: cj.User, Password: sitevault.Secret(cj.Password)}
	}
	return s, nil
}

// siteSettingsJSON encodes the service's settings of a site.
func siteSettingsJSON(s sitevault.Site) (sched, retention, notify string, err error) {
	b, err := json.Marshal(s.Schedule)
	if err != nil {
		return "", "", "", err
	}
	sched = string(b)
	if s.Retention != nil {
		b, err := json.Marshal(s.Retention)
		if err != nil {
			return "", "", "", err
		}
		retention = string(b)
	}
	if len(s.Notify) > 0 {
		b, err := json.Marshal(s.Notify)
		if err != nil {
			return "", "", "", err
		}
		notify = string(b)
	}
	return sched, retention, notify, nil
}

func parseSiteSettings(s *sitevault.Site, sched, retention, notify string) error {
	if sched != "" {
		if err := json.Unmarshal([]byte(sched), &s.Schedule); err != nil {
			return fmt.Errorf("site %s: schedule: %w", s.Name, err)
		}
	}
	if retention != "" {
		s.Retention = new(sitevault.Retention)
		if err := json.Unmarshal([]byte(retention), s.Retention); err != nil {
			return fmt.Errorf("site %s: retention: %w", s.Name, err)
		}
	}
	if notify != "" {
		if err := json.Unmarshal([]byte(notify), &s.Notify); err != nil {
			return fmt.Errorf("site %s: notify: %w", s.Name, err)
		}
	}
	return nil
}
