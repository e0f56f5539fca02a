package repository

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/sitevault/sitevault/internal/backend"
)

// ErrPruneRunning: another prune holds the repository's prune lock. Two
// prunes at once could each delete what the other's repacking still needs.
var ErrPruneRunning = errors.New("another prune is running on this repository")

// The prune lock is a file locks/prune-<random>, encrypted like every
// metadata file, that a running prune re-writes every refresh interval
// (PruneOptions.LockRefresh). A lock not re-written for the staleness
// (PruneOptions.LockStale, by the backend's clock) is left by a prune
// that died, and is ignored and removed. Backups never look at it: they
// need no lock.
//
// A prune that cannot prove it still holds its lock stops before its
// next destructive step (ErrPruneLockLost): it proves it by a lock write
// that started less than half the staleness ago (by its own monotonic
// clock) and by its lock file still being there. A prune paused longer
// (a suspended laptop, a network outage) may find another prune running
// after the pause, so it must not delete anything.
const (
	pruneLockPrefix = "prune-"
	// DefaultLockRefresh and DefaultLockStale are the prune lock's
	// defaults; every prune on one repository must use the same staleness.
	DefaultLockRefresh = 5 * time.Minute
	DefaultLockStale   = 30 * time.Minute
)

// ErrPruneLockLost: a prune could not prove it still held the prune lock
// (it failed to refresh it for too long, or the lock file was removed), so
// it stopped before deleting anything more. What it wrote so far is
// consistent; run prune again.
var ErrPruneLockLost = errors.New("prune lost its lock")

type pruneLockInfo struct {
	Host    string    `json:"host"`
	PID     int       `json:"pid"`
	Started time.Time `json:"started"`
}

// pruneLock is a held prune lock.
type pruneLock struct {
	r       *Repository
	plain   []byte
	stale   time.Duration
	refresh time.Duration

	mu     sync.Mutex
	own    backend.Handle
	proven time.Time // start of the last successful lock write (monotonic)
	lost   bool      // once unproven for stale/2, never proven again

	done chan struct{}
	wg   sync.WaitGroup
}

// write writes a new lock file, then removes the previous one. Once the
// last proof is half the staleness old, another prune may have taken the
// lock over: the lock is lost for good and write refuses (a refresher
// resuming after a suspend must not re-take it).
func (l *pruneLock) write(ctx context.Context) error {
	if err := l.valid(); err != nil {
		return err
	}
	var rnd [8]byte
	rand.Read(rnd[:])
	h := backend.Handle{Type: backend.LockFile, Name: pruneLockPrefix + hex.EncodeToString(rnd[:])}
	b := l.r.crypt.sealFile(kindLock, l.plain)
	start := time.Now()
	if err := l.r.be.Save(ctx, h, bytes.NewReader(b), int64(len(b))); err != nil {
		return err
	}
	l.mu.Lock()
	old := l.own
	l.own = h
	l.proven = start
	l.mu.Unlock()
	if old.Name != "" {
		l.r.be.Remove(ctx, old)
	}
	return nil
}

// valid returns ErrPruneLockLost unless the last proof of the lock is
// younger than half the staleness; it does no I/O.
func (l *pruneLock) valid() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	age := time.Since(l.proven)
	if l.proven.IsZero() {
		return nil // taking the lock
	}
	if l.lost || age >= l.stale/2 {
		l.lost = true
		return fmt.Errorf("%w: last refreshed %s ago, a lock is stale after %s; another prune may be running", ErrPruneLockLost, age.Round(time.Millisecond), l.stale)
	}
	return nil
}

// ensure proves the lock before a destructive step: it refreshes it
// when the last proof is older than a quarter of the staleness (never
// once the lock may already look stale to others) and checks that the
// lock file still exists.
func (l *pruneLock) ensure(ctx context.Context) error {
	l.mu.Lock()
	age := time.Since(l.proven)
	l.mu.Unlock()
	if age >= l.stale/2 {
		return l.valid()
	}
	if age >= l.stale/4 {
		if err := l.write(ctx); err != nil {
			return fmt.Errorf("%w: refresh: %v", ErrPruneLockLost, err)
		}
	}
	// The refresher may replace the lock file (write the new one, remove
	// the old) between reading l.own and the Stat: a file gone is lost
	// only if it is still the current one.
	for try := 0; ; try++ {
		l.mu.Lock()
		own := l.own
		l.mu.Unlock()
		_, err := l.r.be.Stat(ctx, own)
		if err == nil {
			break
		}
		if !errors.Is(err, backend.ErrNotExist) {
			return fmt.Errorf("%w: stat %v: %v", ErrPruneLockLost, own, err)
		}
		l.mu.Lock()
		replaced := l.own != own
		l.mu.Unlock()
		if !replaced || try == 3 {
			return fmt.Errorf("%w: %v was removed (another prune took it for stale)", ErrPruneLockLost, own)
		}
	}
	return l.valid()
}

// release stops the refresher and removes the lock.
func (l *pruneLock) release(ctx context.Context) {
	close(l.done)
	l.wg.Wait()
	l.mu.Lock()
	own := l.own
	l.mu.Unlock()
	if err := l.r.be.Remove(context.WithoutCancel(ctx), own); err != nil && !errors.Is(err, backend.ErrNotExist) {
		l.r.log.Warn("remove the prune lock", "lock", own.String(), "err", err)
	}
}

// lockPrune takes the prune lock with the default timing.
func (r *Repository) lockPrune(ctx context.Context) (release func(), err error) {
	l, err := r.takePruneLock(ctx, DefaultLockRefresh, DefaultLockStale)
	if err != nil {
		return nil, err
	}
	return func() { l.release(ctx) }, nil
}

// takePruneLock takes the prune lock. Two prunes starting at the same
// moment may both give up (each sees the other's lock); neither ever
// proceeds while another runs.
func (r *Repository) takePruneLock(ctx context.Context, refresh, stale time.Duration) (*pruneLock, error) {
	host, _ := os.Hostname()
	info := pruneLockInfo{Host: host, PID: os.Getpid(), Started: r.now()}
	plain, err := json.Marshal(info)
	if err != nil {
		return nil, err
	}
	l := &pruneLock{r: r, plain: plain, stale: stale, refresh: refresh, done: make(chan struct{})}
	if err := l.write(ctx); err != nil {
		return nil, fmt.Errorf("take the prune lock: %w", err)
	}
	if err := r.otherPrune(ctx, l.own, stale); err != nil {
		r.be.Remove(context.WithoutCancel(ctx), l.own)
		return nil, err
	}
	// Keep the lock fresh while the prune runs; a failure is only logged
	// here: ensure, before each destructive step, stops the prune.
	l.wg.Go(func() {
		t := time.NewTicker(refresh)
		defer t.Stop()
		for {
			select {
			case <-l.done:
				return
			case <-t.C:
				if err := l.write(ctx); err != nil {
					r.log.Warn("refresh the prune lock", "err", err)
				}
			}
		}
	})
	return l, nil
}

// otherPrune returns ErrPruneRunning, saying whose, if a live prune lock
// other than own exists; stale locks are removed.
func (r *Repository) otherPrune(ctx context.Context, own backend.Handle, stale time.Duration) error {
	var live []backend.FileInfo
	err := r.be.List(ctx, backend.LockFile, func(fi backend.FileInfo) error {
		if fi.Name == own.Name || !strings.HasPrefix(fi.Name, pruneLockPrefix) {
			return nil
		}
		h := backend.Handle{Type: backend.LockFile, Name: fi.Name}
		if ownFi, err := r.be.Stat(ctx, own); err == nil && ownFi.ModTime.Sub(fi.ModTime) > stale {
			r.log.Info("removing a stale prune lock", "lock", h.String(), "written", fi.ModTime)
			r.be.Remove(ctx, h)
			return nil
		}
		live = append(live, fi)
		return nil
	})
	if err != nil {
		return fmt.Errorf("list locks: %w", err)
	}
	if len(live) == 0 {
		return nil
	}
	who := fmt.Sprintf("lock %s written %s", live[0].Name, live[0].ModTime.Format(time.RFC3339))
	h := backend.Handle{Type: backend.LockFile, Name: live[0].Name}
	if b, err := loadFile(ctx, r.be, h); err == nil {
		if plain, err := r.crypt.openFile(kindLock, b); err == nil {
			var info pruneLockInfo
			if json.Unmarshal(plain, &info) == nil {
				who = fmt.Sprintf("host %s, pid %d, started %s", info.Host, info.PID, info.Started.Format(time.RFC3339))
			}
		}
	}
	return fmt.Errorf("%w (%s); wait for it to finish, or remove %s if that prune is dead", ErrPruneRunning, who, h)
}
