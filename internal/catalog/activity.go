package catalog

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sitevault/sitevault/internal/sitevault"
)

// activitySchema holds the activity log, the connector's keys, pairing
// codes and seen nonces, and each site's real-time state.
const activitySchema = `
CREATE TABLE activity (
	id           {{id}},
	site         TEXT NOT NULL,
	uuid         TEXT NOT NULL,
	at           TEXT NOT NULL,
	grp          TEXT NOT NULL,
	name         TEXT NOT NULL,
	actor_kind   TEXT NOT NULL DEFAULT '',
	actor_id     BIGINT NOT NULL DEFAULT 0,
	actor_name   TEXT NOT NULL DEFAULT '',
	actor_role   TEXT NOT NULL DEFAULT '',
	object_type  TEXT NOT NULL DEFAULT '',
	object_id    TEXT NOT NULL DEFAULT '',
	object_name  TEXT NOT NULL DEFAULT '',
	summary      TEXT NOT NULL DEFAULT '',
	details      TEXT NOT NULL DEFAULT '',
	count        INTEGER NOT NULL DEFAULT 1,
	point        TEXT NOT NULL DEFAULT '', -- the restore point that holds the site after it
	received_at  TEXT NOT NULL,
	UNIQUE (site, uuid)
);
CREATE INDEX activity_site_time ON activity (site, at);
CREATE INDEX activity_unpointed ON activity (site, point, at);

CREATE TABLE connector_keys (
	site         TEXT NOT NULL REFERENCES sites (name) ON DELETE CASCADE,
	key_id       TEXT NOT NULL,
	secret       TEXT NOT NULL, -- sealed
	created_at   TEXT NOT NULL,
	expires_at   TEXT NOT NULL DEFAULT '', -- '' while it is the current key
	PRIMARY KEY (site, key_id)
);

CREATE TABLE pairing_codes (
	code_hash    TEXT PRIMARY KEY, -- SHA-256 of the secret
	site         TEXT NOT NULL REFERENCES sites (name) ON DELETE CASCADE,
	expires_at   TEXT NOT NULL,
	used_at      TEXT NOT NULL DEFAULT ''
);

CREATE TABLE connector_nonces (
	site         TEXT NOT NULL,
	nonce        TEXT NOT NULL,
	expires_at   TEXT NOT NULL,
	PRIMARY KEY (site, nonce)
);
CREATE INDEX connector_nonces_expiry ON connector_nonces (expires_at);

ALTER TABLE site_status ADD COLUMN dirty_since TEXT NOT NULL DEFAULT '';
ALTER TABLE site_status ADD COLUMN last_event_at TEXT NOT NULL DEFAULT '';
`

// ActivitySchema returns the activity tables for a dialect whose
// auto-numbered key is written idColumn.
func ActivitySchema(idColumn string) string { return ReplaceID(activitySchema, idColumn) }

func hashSecret(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// AddPairingCode stores a pairing code's secret (hashed) for site.
func (c *Catalog) AddPairingCode(ctx context.Context, site, secret string, expires time.Time) error {
	_, err := c.db.ExecContext(ctx, c.q(`INSERT INTO pairing_codes (code_hash, site, expires_at) VALUES (?, ?, ?)`),
		hashSecret(secret), site, formatTime(expires))
	if err != nil {
		return fmt.Errorf("pairing code for %s: %w", site, err)
	}
	return nil
}

// ErrPairingRefused means a pairing code is unknown, used or expired.
var ErrPairingRefused = errors.New("pairing code unknown, used or expired")

// UsePairingCode spends a pairing code of site once: ErrPairingRefused
// for an unknown, used or expired code.
func (c *Catalog) UsePairingCode(ctx context.Context, site, secret string) error {
	now := formatTime(c.now())
	res, err := c.db.ExecContext(ctx, c.q(`UPDATE pairing_codes SET used_at = ?
		WHERE code_hash = ? AND site = ? AND used_at = '' AND expires_at > ?`), now, hashSecret(secret), site, now)
	if err != nil {
		return fmt.Errorf("pairing code: %w", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return ErrPairingRefused
	}
	return nil
}

// ConnectorKey is a site's connector signing key.
type ConnectorKey struct {
	ID      string
	Secret  []byte
	Created time.Time
	Expires *time.Time // nil for the current key
}

// AddConnectorKey stores a new current key for site; the previous
// current keys stay valid until overlapUntil (zero: they end now).
func (c *Catalog) AddConnectorKey(ctx context.Context, site, keyID string, secret []byte, overlapUntil time.Time) error {
	now := c.now()
	if overlapUntil.IsZero() {
		overlapUntil = now
	}
	return c.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, c.q(`UPDATE connector_keys SET expires_at = ? WHERE site = ? AND expires_at = ''`),
			formatTime(overlapUntil), site); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, c.q(`INSERT INTO connector_keys (site, key_id, secret, created_at) VALUES (?, ?, ?, ?)`),
			site, keyID, c.sealer.Seal(secret, "sitevault/catalog/connector/"+site+"/"+keyID), formatTime(now))
		return err
	})
}

// ConnectorKey returns site's key keyID if it is valid now, or ErrNotFound.
func (c *Catalog) ConnectorKey(ctx context.Context, site, keyID string) (*ConnectorKey, error) {
	var sealed, created, expires string
	err := c.db.QueryRowContext(ctx, c.q(`SELECT secret, created_at, expires_at FROM connector_keys
		WHERE site = ? AND key_id = ? AND (expires_at = '' OR expires_at > ?)`), site, keyID, formatTime(c.now())).
		Scan(&sealed, &created, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("connector key %s of %s: %w", keyID, site, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	b, err := c.sealer.Open(sealed, "sitevault/catalog/connector/"+site+"/"+keyID)
	if err != nil {
		return nil, fmt.Errorf("connector key %s of %s: %w", keyID, site, err)
	}
	return &ConnectorKey{ID: keyID, Secret: b, Created: parseTime(created), Expires: parseOptTime(expires)}, nil
}

// Paired reports whether site has a current connector key, and since when.
func (c *Catalog) Paired(ctx context.Context, site string) (bool, time.Time, error) {
	var created string
	err := c.db.QueryRowContext(ctx, c.q(`SELECT created_at FROM connector_keys WHERE site = ? AND expires_at = '' ORDER BY created_at DESC LIMIT 1`), site).Scan(&created)
	if errors.Is(err, sql.ErrNoRows) {
		return false, time.Time{}, nil
	}
	return err == nil, parseTime(created), err
}

// UseNonce records a request's nonce: false when the site sent it before
// (a replay).
func (c *Catalog) UseNonce(ctx context.Context, site, nonce string, ttl time.Duration) (bool, error) {
	_, err := c.db.ExecContext(ctx, c.q(`INSERT INTO connector_nonces (site, nonce, expires_at) VALUES (?, ?, ?)`),
		site, nonce, formatTime(c.now().Add(ttl)))
	if c.isUnique(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("record nonce: %w", err)
	}
	return true, nil
}

// PurgeConnector removes expired nonces, pairing codes and keys.
func (c *Catalog) PurgeConnector(ctx context.Context) error {
	now := formatTime(c.now())
	for _, q := range []string{
		`DELETE FROM connector_nonces WHERE expires_at < ?`,
		`DELETE FROM pairing_codes WHERE expires_at < ?`,
		`DELETE FROM connector_keys WHERE expires_at != '' AND expires_at < ?`,
		`DELETE FROM sessions WHERE expires_at < ?`,
	} {
		if _, err := c.db.ExecContext(ctx, c.q(q), now); err != nil {
			return err
		}
	}
	return nil
}

// AddEvents stores events of site (an event whose UUID is stored already
// is skipped) and returns how many were new.
func (c *Catalog) AddEvents(ctx context.Context, site string, events []sitevault.Event) (added int, err error) {
	now := formatTime(c.now())
	err = c.inTx(ctx, func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx, c.q(`INSERT INTO activity (site, uuid, at, grp, name, actor_kind, actor_id, actor_name,
			actor_role, object_type, object_id, object_name, summary, details, count, point, received_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (site, uuid) DO NOTHING`))
		if err != nil {
			return err
		}
		defer stmt.Close()
		for _, e := range events {
			res, err := stmt.ExecContext(ctx, site, e.UUID, formatTime(e.Time), e.Group, e.Name, e.Actor.Kind, e.Actor.ID,
				e.Actor.Name, e.Actor.Role, e.Object.Type, e.Object.ID, clip(e.Object.Name, MaxObjectName), clip(e.Summary, MaxSummary),
				string(e.Details), max(e.Count, 1), e.Point, now)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n == 1 {
				added++
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store events of %s: %w", site, err)
	}
	return added, nil
}

// The longest summary and object name an event keeps, in characters; the
// rest is cut and "…" put in its place. Both are in the text search's
// index, whose entries PostgreSQL limits to 2,704 bytes: at four bytes a
// character these keep an entry under 2,500. (The connector's protocol
// allows 200 each; a failed job's summary holds its whole error.)
const (
	MaxSummary    = 400
	MaxObjectName = 200
)

func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}

// ActivityFilter selects events of a site's log; zero fields select all.
type ActivityFilter struct {
	Site     string
	From, To time.Time // [From, To)
	Groups   []string
	Actor    string // actor name
	Text     string // in the summary or the object's name
	Before   int64  // events with a smaller id (paging)
	Limit    int    // 0 means 100, at most 1000
}

const activityColumns = `id, site, uuid, at, grp, name, actor_kind, actor_id, actor_name, actor_role, object_type,
	object_id, object_name, summary, details, count, point`

func (f ActivityFilter) where(withGroups bool, ilike string) (string, []any) {
	w := []string{"site = ?"}
	args := []any{f.Site}
	if !f.From.IsZero() {
		w, args = append(w, "at >= ?"), append(args, formatTime(f.From))
	}
	if !f.To.IsZero() {
		w, args = append(w, "at < ?"), append(args, formatTime(f.To))
	}
	if f.Actor != "" {
		w, args = append(w, "actor_name = ?"), append(args, f.Actor)
	}
	if f.Text != "" {
		like := "%" + strings.NewReplacer(`\`, `\\`, "%", `\%`, "_", `\_`).Replace(strings.ToLower(f.Text)) + "%"
		w, args = append(w, `(summary `+ilike+` ? ESCAPE '\' OR object_name `+ilike+` ? ESCAPE '\')`), append(args, like, like)
	}
	if withGroups && len(f.Groups) > 0 {
		ph := make([]string, len(f.Groups))
		for i, g := range f.Groups {
			ph[i], args = "?", append(args, g)
		}
		w = append(w, "grp IN ("+strings.Join(ph, ", ")+")")
	}
	return strings.Join(w, " AND "), args
}

// Activity lists a site's events, newest first, and the number of
// events per group in the filter's date range and of its actor (the text
// and group filters aside), for the filter's checkboxes. The counts come
// from indexes alone: a text search would make them read every event of
// the site (100,000 events: 50 ms and more a page).
func (c *Catalog) Activity(ctx context.Context, f ActivityFilter) ([]sitevault.Event, map[string]int, error) {
	where, args := f.where(true, c.ilike())
	if f.Before > 0 {
		where, args = where+" AND id < ?", append(args, f.Before)
	}
	limit := f.Limit
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	listBy := "activity_site_time"
	if f.Text != "" {
		listBy = "activity_site_text"
	}
	rows, err := c.db.QueryContext(ctx, c.q(`SELECT `+activityColumns+` FROM activity`+c.indexedBy(listBy)+` WHERE `+where+
		` ORDER BY at DESC, id DESC LIMIT ?`), append(args, limit)...)
	if err != nil {
		return nil, nil, fmt.Errorf("activity of %s: %w", f.Site, err)
	}
	defer rows.Close()
	out := []sitevault.Event{}
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return nil, nil, err
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	cf := ActivityFilter{Site: f.Site, From: f.From, To: f.To, Actor: f.Actor}
	gw, gargs := cf.where(false, c.ilike())
	countBy := "activity_site_time" // a date range: its events only
	if f.From.IsZero() && f.To.IsZero() {
		countBy = "activity_site_grp"
		if f.Actor != "" {
			countBy = "activity_site_actor"
		}
	}
	grows, err := c.db.QueryContext(ctx, c.q(`SELECT grp, count(*) FROM activity`+c.indexedBy(countBy)+` WHERE `+gw+` GROUP BY grp`), gargs...)
	if err != nil {
		return nil, nil, err
	}
	defer grows.Close()
	groups := map[string]int{}
	for grows.Next() {
		var g string
		var n int
		if err := grows.Scan(&g, &n); err != nil {
			return nil, nil, err
		}
		groups[g] = n
	}
	return out, groups, grows.Err()
}

// ilike is the dialect's case-ignoring LIKE (PostgreSQL's ILIKE when the
// dialect says nothing).
func (c *Catalog) ilike() string {
	if c.d.ILike == "" {
		return "ILIKE"
	}
	return c.d.ILike
}

// ActivityEvent returns one event of site, or ErrNotFound.
func (c *Catalog) ActivityEvent(ctx context.Context, site string, id int64) (sitevault.Event, error) {
	e, err := scanEvent(c.db.QueryRowContext(ctx, c.q(`SELECT `+activityColumns+` FROM activity WHERE site = ? AND id = ?`), site, id))
	if errors.Is(err, sql.ErrNoRows) {
		return e, fmt.Errorf("event %d of %s: %w", id, site, ErrNotFound)
	}
	return e, err
}

func scanEvent(r scanner) (sitevault.Event, error) {
	var e sitevault.Event
	var at, details string
	err := r.Scan(&e.ID, &e.Site, &e.UUID, &at, &e.Group, &e.Name, &e.Actor.Kind, &e.Actor.ID, &e.Actor.Name, &e.Actor.Role,
		&e.Object.Type, &e.Object.ID, &e.Object.Name, &e.Summary, &details, &e.Count, &e.Point)
	if err != nil {
		return e, err
	}
	e.Time = parseTime(at)
	if details != "" {
		e.Details = []byte(details)
	}
	return e, nil
}

// PendingDetails returns the details of a site's newest events that no
// restore point holds yet (at most limit of them, newest first): the
// events the site's next backup covers.
func (c *Catalog) PendingDetails(ctx context.Context, site string, limit int) ([][]byte, error) {
	rows, err := c.db.QueryContext(ctx, c.q(`SELECT details FROM activity WHERE site = ? AND point = '' ORDER BY id DESC LIMIT ?`), site, limit)
	if err != nil {
		return nil, fmt.Errorf("events of %s: %w", site, err)
	}
	defer rows.Close()
	var out [][]byte
	for rows.Next() {
		var d string
		if err := rows.Scan(&d); err != nil {
			return nil, fmt.Errorf("events of %s: %w", site, err)
		}
		if d != "" {
			out = append(out, []byte(d))
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("events of %s: %w", site, err)
	}
	return out, nil
}

// SetEventsPoint gives every event of site up to upTo that has no point
// yet the point that holds the site after them.
func (c *Catalog) SetEventsPoint(ctx context.Context, site string, upTo time.Time, point string) (int64, error) {
	res, err := c.db.ExecContext(ctx, c.q(`UPDATE activity SET point = ? WHERE site = ? AND point = '' AND at <= ?`),
		point, site, formatTime(upTo))
	if err != nil {
		return 0, fmt.Errorf("mark events of %s: %w", site, err)
	}
	return res.RowsAffected()
}

// DeleteEventsBefore trims the activity log (retention).
func (c *Catalog) DeleteEventsBefore(ctx context.Context, t time.Time) (int64, error) {
	res, err := c.db.ExecContext(ctx, c.q(`DELETE FROM activity WHERE at < ?`), formatTime(t))
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// MarkDirty records that site changed at (a connector event): a
// real-time backup is due after a quiet period.
func (c *Catalog) MarkDirty(ctx context.Context, site string, at time.Time) error {
	t := formatTime(at)
	_, err := c.db.ExecContext(ctx, c.q(`UPDATE site_status SET
		dirty_since = CASE WHEN dirty_since = '' THEN ? ELSE dirty_since END,
		last_event_at = CASE WHEN last_event_at < ? THEN ? ELSE last_event_at END
		WHERE site = ?`), t, t, t, site)
	return err
}

// DirtySite is a site with changes not yet in a restore point.
type DirtySite struct {
	Site       string
	Since      time.Time // the burst's first change
	LastChange time.Time
	raw        string
}

// LeadAfterColumn is the site status column (a later migration of each
// dialect) holding when a new burst of changes may next be backed up at
// once (see DirtySites).
const LeadAfterColumn = `ALTER TABLE site_status ADD COLUMN lead_after TEXT NOT NULL DEFAULT '';`

// ActivityGroupIndex serves the activity log's counts per group, of the
// site or of one actor: without it the log's first page read every event
// of the site to count them (100,000 events: 99 of the page's 100 ms,
// BenchmarkActivityPage/all in internal/service); with it the counts come
// from the index alone.
const ActivityGroupIndex = `CREATE INDEX activity_site_grp ON activity (site, grp);
CREATE INDEX activity_site_actor ON activity (site, actor_name, grp);`

// ActivityTextIndex is the migration that lets a text search read the
// summaries and objects' names from an index, newest first, instead of
// every event's whole row (its details are most of its size).
const ActivityTextIndex = `CREATE INDEX activity_site_text ON activity (site, at, summary, object_name);`

// DirtySites returns sites whose changes are due for a real-time backup:
// a burst that is over (no change for quiet), or has lasted maxDelay, or
// has just begun at least quiet after the site's last real-time backup
// started (lead_after, set by StartRealtime: a burst's first change is
// backed up at once, the ones after it when the burst is over).
func (c *Catalog) DirtySites(ctx context.Context, now time.Time, quiet, maxDelay time.Duration, limit int) ([]DirtySite, error) {
	rows, err := c.db.QueryContext(ctx, c.q(`SELECT site, dirty_since, last_event_at FROM site_status
		WHERE dirty_since != '' AND (last_event_at <= ? OR dirty_since <= ? OR dirty_since >= lead_after) ORDER BY dirty_since LIMIT ?`),
		formatTime(now.Add(-quiet)), formatTime(now.Add(-maxDelay)), limit)
	if err != nil {
		return nil, fmt.Errorf("find changed sites: %w", err)
	}
	defer rows.Close()
	var out []DirtySite
	for rows.Next() {
		var d DirtySite
		var last string
		if err := rows.Scan(&d.Site, &d.raw, &last); err != nil {
			return nil, err
		}
		d.Since, d.LastChange = parseTime(d.raw), parseTime(last)
		out = append(out, d)
	}
	return out, rows.Err()
}

// StartRealtime enqueues the real-time backup of a dirty site and clears
// its dirty mark, in one transaction and only if no other worker did; it
// returns the job, or nil. A burst beginning at leadAfter or later is
// backed up as soon as it begins (see DirtySites).
func (c *Catalog) StartRealtime(ctx context.Context, d DirtySite, leadAfter time.Time, job NewJob) (*sitevault.Job, error) {
	return c.enqueueIf(ctx, `UPDATE site_status SET dirty_since = '', lead_after = ? WHERE site = ? AND dirty_since = ?`,
		[]any{formatTime(leadAfter), d.Site, d.raw}, job)
}
