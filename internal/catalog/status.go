package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/sitevault/sitevault/internal/sitevault"
)

// SiteStatus is what the service knows of a site's backups: when the next
// scheduled one is due, the last success, and the failures since.
type SiteStatus struct {
	Site string `json:"site"`
	// NextBackup is when the scheduled backup is due (nil: schedule off
	// or not computed yet).
	NextBackup *time.Time `json:"next_backup,omitempty"`
	// Failures counts failed backups in a row (after their retries);
	// FailingSince is when the first of them ended.
	Failures     int        `json:"failures"`
	FailingSince *time.Time `json:"failing_since,omitempty"`
	// Alerted says the "backups are failing" mail was sent.
	Alerted       bool       `json:"alerted"`
	LastError     string     `json:"last_error,omitempty"`
	LastErrorCode string     `json:"last_error_code,omitempty"`
	LastErrorAt   *time.Time `json:"last_error_at,omitempty"`
	LastSuccess   *time.Time `json:"last_success,omitempty"`
	LastPoint     string     `json:"last_point,omitempty"`
	LastBytes     int64      `json:"last_bytes"`
	LastDuration  float64    `json:"last_duration_seconds"`
	// StoredBytes is what the site's restore points hold in the
	// repository: the stored (compressed, encrypted) size of the data
	// each added, deduplicated within the repository; recorded after each
	// job that adds or removes points. Once a point is forgotten, what it
	// added is no longer counted even where a later point still uses it,
	// so after forgets this is a lower bound (an exact figure needs a walk
	// of every point's trees and database segments).
	StoredBytes int64 `json:"stored_bytes"`
}

const statusColumns = `site, next_backup_at, failures, failing_since, alerted, last_error, last_error_code,
	last_error_at, last_success_at, last_point, last_bytes, last_duration_ms, stored_bytes`

// Status returns a site's status.
func (c *Catalog) Status(ctx context.Context, site string) (*SiteStatus, error) {
	st, err := scanStatus(c.db.QueryRowContext(ctx, c.q(`SELECT `+statusColumns+` FROM site_status WHERE site = ?`), site))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("site %s: %w", site, ErrSiteNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read status of %s: %w", site, err)
	}
	return st, nil
}

// Statuses returns every site's status, by site name.
func (c *Catalog) Statuses(ctx context.Context) ([]*SiteStatus, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT `+statusColumns+` FROM site_status ORDER BY site`)
	if err != nil {
		return nil, fmt.Errorf("read statuses: %w", err)
	}
	defer rows.Close()
	var out []*SiteStatus
	for rows.Next() {
		st, err := scanStatus(rows)
		if err != nil {
			return nil, fmt.Errorf("read statuses: %w", err)
		}
		out = append(out, st)
	}
	return out, rows.Err()
}

func scanStatus(r scanner) (*SiteStatus, error) {
	var (
		st                          SiteStatus
		next, since, errAt, success string
		alerted                     int
		ms                          int64
	)
	if err := r.Scan(&st.Site, &next, &st.Failures, &since, &alerted, &st.LastError, &st.LastErrorCode,
		&errAt, &success, &st.LastPoint, &st.LastBytes, &ms, &st.StoredBytes); err != nil {
		return nil, err
	}
	st.NextBackup, st.FailingSince, st.LastErrorAt, st.LastSuccess = parseOptTime(next), parseOptTime(since), parseOptTime(errAt), parseOptTime(success)
	st.Alerted = alerted != 0
	st.LastDuration = float64(ms) / 1000
	return &st, nil
}

// PendingSchedules returns up to limit sites whose next backup has not
// been computed (new sites, changed schedules), with their schedules.
func (c *Catalog) PendingSchedules(ctx context.Context, limit int) (map[string]sitevault.Schedule, error) {
	rows, err := c.db.QueryContext(ctx, c.q(`SELECT s.name, s.schedule FROM sites s JOIN site_status st ON st.site = s.name
		WHERE st.next_backup_at = '' ORDER BY s.name LIMIT ?`), limit)
	if err != nil {
		return nil, fmt.Errorf("read schedules: %w", err)
	}
	defer rows.Close()
	out := make(map[string]sitevault.Schedule)
	for rows.Next() {
		var name, sched string
		if err := rows.Scan(&name, &sched); err != nil {
			return nil, err
		}
		s := sitevault.Site{Name: name}
		if err := parseSiteSettings(&s, sched, "", ""); err != nil {
			return nil, err
		}
		out[name] = s.Schedule
	}
	return out, rows.Err()
}

// scheduleOff marks a site whose schedule is off; it sorts after every time.
const scheduleOff = "off"

// SetNextBackup records when a site's scheduled backup is next due
// (nil: the schedule is off), computed from sched, if the next backup is
// still what was read as before ("" for a pending one) and the site's
// schedule is still sched. It reports whether it was set: a scheduler that
// lost the race to another worker, or to an edit of the schedule, leaves it.
func (c *Catalog) SetNextBackup(ctx context.Context, site string, before string, sched sitevault.Schedule, next *time.Time) (bool, error) {
	v := scheduleOff
	if next != nil {
		v = formatTime(*next)
	}
	stored, _, _, err := siteSettingsJSON(sitevault.Site{Schedule: sched})
	if err != nil {
		return false, err
	}
	res, err := c.db.ExecContext(ctx, c.q(`UPDATE site_status SET next_backup_at = ? WHERE site = ? AND next_backup_at = ?
		AND (SELECT schedule FROM sites WHERE name = ?) = ?`), v, site, before, site, stored)
	if err != nil {
		return false, fmt.Errorf("schedule %s: %w", site, err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// DueBackup is a site whose scheduled backup is due.
type DueBackup struct {
	Site     string
	Due      time.Time
	Schedule sitevault.Schedule
	// raw is the stored due time, for the conditional update.
	raw string
}

// DueBackups returns up to limit sites whose scheduled backup is due at
// now, the most overdue first.
func (c *Catalog) DueBackups(ctx context.Context, now time.Time, limit int) ([]DueBackup, error) {
	rows, err := c.db.QueryContext(ctx, c.q(`SELECT st.site, st.next_backup_at, s.schedule FROM site_status st
		JOIN sites s ON s.name = st.site
		WHERE st.next_backup_at != '' AND st.next_backup_at != 'off' AND st.next_backup_at <= ?
		ORDER BY st.next_backup_at LIMIT ?`), formatTime(now), limit)
	if err != nil {
		return nil, fmt.Errorf("find due backups: %w", err)
	}
	defer rows.Close()
	var out []DueBackup
	for rows.Next() {
		var d DueBackup
		var sched string
		if err := rows.Scan(&d.Site, &d.raw, &sched); err != nil {
			return nil, err
		}
		s := sitevault.Site{Name: d.Site}
		if err := parseSiteSettings(&s, sched, "", ""); err != nil {
			return nil, err
		}
		d.Due, d.Schedule = parseTime(d.raw), s.Schedule
		out = append(out, d)
	}
	return out, rows.Err()
}

// StartScheduled enqueues the due backup d and moves the site's next
// backup to next, in one transaction and only if no other worker did it
// first; job.DedupeKey makes a second backup of the same window
// impossible even then. It returns the job, or nil when another worker
// took it.
func (c *Catalog) StartScheduled(ctx context.Context, d DueBackup, next time.Time, job NewJob) (*sitevault.Job, error) {
	return c.enqueueIf(ctx, `UPDATE site_status SET next_backup_at = ? WHERE site = ? AND next_backup_at = ?`,
		[]any{formatTime(next), d.Site, d.raw}, job)
}

// enqueueIf runs the conditional update claim and, when it changed a row
// (this worker won the race), enqueues job in the same transaction; a job
// whose DedupeKey exists already is not an error. It returns the job, or
// nil when another worker was first.
func (c *Catalog) enqueueIf(ctx context.Context, claim string, args []any, job NewJob) (*sitevault.Job, error) {
	var id int64
	err := c.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, c.q(claim), args...)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil
		}
		id, err = c.enqueue(ctx, tx, job)
		if errors.Is(err, ErrExists) {
			id, err = 0, nil
		}
		return err
	})
	if err != nil || id == 0 {
		return nil, err
	}
	return c.Job(ctx, id)
}

// BackupEnded records a finished backup in the site's status: a success
// (point set) clears the failures, a failure counts one more. It returns
// the status before and after, for the alert policy.
func (c *Catalog) BackupEnded(ctx context.Context, site string, ok bool, at time.Time, point string, bytes int64, took time.Duration, errText, errCode string) (before, after *SiteStatus, err error) {
	err = c.inTx(ctx, func(tx *sql.Tx) error {
		st, err := scanStatus(tx.QueryRowContext(ctx, c.q(`SELECT `+statusColumns+` FROM site_status WHERE site = ?`), site))
		if err != nil {
			return err
		}
		before = st
		a := *st
		if ok {
			a.Failures, a.FailingSince, a.LastSuccess, a.LastPoint, a.LastBytes = 0, nil, &at, point, bytes
			a.LastDuration = took.Seconds()
		} else {
			a.Failures++
			if a.FailingSince == nil {
				a.FailingSince = &at
			}
			a.LastError, a.LastErrorCode, a.LastErrorAt = errText, errCode, &at
		}
		after = &a
		_, err = tx.ExecContext(ctx, c.q(`UPDATE site_status SET failures = ?, failing_since = ?, last_error = ?,
			last_error_code = ?, last_error_at = ?, last_success_at = ?, last_point = ?, last_bytes = ?, last_duration_ms = ?
			WHERE site = ?`),
			a.Failures, formatOptTime(a.FailingSince), a.LastError, a.LastErrorCode, formatOptTime(a.LastErrorAt),
			formatOptTime(a.LastSuccess), a.LastPoint, a.LastBytes, int64(a.LastDuration*1000), site)
		return err
	})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, fmt.Errorf("site %s: %w", site, ErrSiteNotFound)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("record backup of %s: %w", site, err)
	}
	return before, after, nil
}

// SetStoredBytes records what the site's restore points hold (see
// SiteStatus.StoredBytes).
func (c *Catalog) SetStoredBytes(ctx context.Context, site string, n int64) error {
	_, err := c.db.ExecContext(ctx, c.q(`UPDATE site_status SET stored_bytes = ? WHERE site = ?`), n, site)
	if err != nil {
		return fmt.Errorf("record storage of %s: %w", site, err)
	}
	return nil
}

// StoredBytesColumn is the migration that adds SiteStatus.StoredBytes.
const StoredBytesColumn = `ALTER TABLE site_status ADD COLUMN stored_bytes BIGINT NOT NULL DEFAULT 0;`

// SetAlerted records whether the site's failing mail was sent.
func (c *Catalog) SetAlerted(ctx context.Context, site string, alerted bool) error {
	_, err := c.db.ExecContext(ctx, c.q(`UPDATE site_status SET alerted = ? WHERE site = ?`), boolInt(alerted), site)
	if err != nil {
		return fmt.Errorf("record alert of %s: %w", site, err)
	}
	return nil
}
