package catalog

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/sitevault/sitevault/internal/sitevault"
)

// SiteLocksTable holds the per-site locks that processes on several
// machines sharing one catalog take (a flock only excludes processes of
// one machine). A lock has a lease: its holder renews it while it works,
// and a holder that died loses it when the lease runs out.
const SiteLocksTable = `
CREATE TABLE site_locks (
	site        TEXT PRIMARY KEY,
	holder      TEXT NOT NULL, -- random, per lock taken
	job         TEXT NOT NULL,
	host        TEXT NOT NULL,
	pid         INTEGER NOT NULL,
	acquired_at TEXT NOT NULL,
	expires_at  TEXT NOT NULL
);`

// Locker is a sitevault.Locker on the catalog's database.
type Locker struct {
	Catalog *Catalog
	// Lease is how long a lock lives without renewal (0: 1 minute); it is
	// renewed every Lease/3 while held.
	Lease time.Duration
}

var _ sitevault.Locker = (*Locker)(nil)

// Lock implements sitevault.Locker.
func (l *Locker) Lock(ctx context.Context, site, job string, wait time.Duration, onWait func(*sitevault.BusyError)) (func() error, error) {
	c := l.Catalog
	lease := l.Lease
	if lease <= 0 {
		lease = time.Minute
	}
	host, _ := os.Hostname()
	holder := randomHex(16)
	start := time.Now()
	waited := false
	for {
		now := c.now()
		res, err := c.db.ExecContext(ctx, c.q(`INSERT INTO site_locks (site, holder, job, host, pid, acquired_at, expires_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (site) DO UPDATE SET holder = excluded.holder, job = excluded.job, host = excluded.host,
				pid = excluded.pid, acquired_at = excluded.acquired_at, expires_at = excluded.expires_at
			WHERE site_locks.expires_at < ?`),
			site, holder, job, host, os.Getpid(), formatTime(now), formatTime(now.Add(lease)), formatTime(now))
		if err != nil {
			return nil, fmt.Errorf("lock site %s: %w", site, err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			return l.hold(site, holder, lease), nil
		}
		busy := l.busy(ctx, site)
		busy.Waited = time.Since(start)
		if busy.Waited >= wait {
			return nil, busy
		}
		if !waited && onWait != nil {
			onWait(busy)
		}
		waited = true
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(min(time.Second, wait-busy.Waited)):
		}
	}
}

func (l *Locker) busy(ctx context.Context, site string) *sitevault.BusyError {
	c := l.Catalog
	b := &sitevault.BusyError{Site: site}
	var acquired string
	err := c.db.QueryRowContext(ctx, c.q(`SELECT job, host, pid, acquired_at FROM site_locks WHERE site = ?`), site).
		Scan(&b.Job, &b.Host, &b.PID, &acquired)
	if err == nil {
		b.Started = parseTime(acquired)
	}
	return b
}

// hold renews the lease until unlock is called.
func (l *Locker) hold(site, holder string, lease time.Duration) func() error {
	c := l.Catalog
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(lease / 3)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			ctx, cancel := context.WithTimeout(context.Background(), lease/3)
			c.db.ExecContext(ctx, c.q(`UPDATE site_locks SET expires_at = ? WHERE site = ? AND holder = ?`),
				formatTime(c.now().Add(lease)), site, holder)
			cancel()
		}
	}()
	var once sync.Once
	var err error
	return func() error {
		once.Do(func() {
			close(stop)
			<-done
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err = c.db.ExecContext(ctx, c.q(`DELETE FROM site_locks WHERE site = ? AND holder = ?`), site, holder)
			if errors.Is(err, sql.ErrNoRows) {
				err = nil
			}
		})
		return err
	}
}

// Both is a sitevault.Locker that takes every one of its lockers in turn
// (a file lock against processes of this machine, the catalog's against
// other machines), releasing those taken when a later one fails.
type Both []sitevault.Locker

// Lock implements sitevault.Locker.
func (b Both) Lock(ctx context.Context, site, job string, wait time.Duration, onWait func(*sitevault.BusyError)) (func() error, error) {
	var unlocks []func() error
	release := func() error {
		var first error
		for i := len(unlocks) - 1; i >= 0; i-- {
			if err := unlocks[i](); err != nil && first == nil {
				first = err
			}
		}
		return first
	}
	for _, l := range b {
		u, err := l.Lock(ctx, site, job, wait, onWait)
		if err != nil {
			release()
			return nil, err
		}
		unlocks = append(unlocks, u)
	}
	var once sync.Once
	var err error
	return func() error { once.Do(func() { err = release() }); return err }, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
