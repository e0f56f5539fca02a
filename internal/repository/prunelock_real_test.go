package repository

import (
	"context"
	"errors"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sitevault/sitevault/internal/backend"
)

// outage fails lock writes while down (the network of a paused prune)
// and counts the other writes and removals made while counting.
type outage struct {
	backend.Backend
	down     atomic.Bool
	counting atomic.Bool
	changes  atomic.Int64
}

var errOutage = errors.New("network is down")

func (b *outage) Save(ctx context.Context, h backend.Handle, rd io.ReadSeeker, size int64) error {
	if h.Type == backend.LockFile && b.down.Load() {
		return errOutage
	}
	if h.Type != backend.LockFile && b.counting.Load() {
		b.changes.Add(1)
	}
	return b.Backend.Save(ctx, h, rd, size)
}

func (b *outage) Remove(ctx context.Context, h backend.Handle) error {
	if h.Type == backend.LockFile && b.down.Load() {
		return errOutage
	}
	if h.Type != backend.LockFile && b.counting.Load() {
		b.changes.Add(1)
	}
	return b.Backend.Remove(ctx, h)
}

// TestPruneStopsWithoutItsLock is issue 9, finding 4, on local, SFTP and
// S3: a prune paused (its lock refreshes failing) past the lock's
// staleness, while a second prune takes over, stops with
// ErrPruneLockLost before any destructive step, and the repository stays
// sound.
func TestPruneStopsWithoutItsLock(t *testing.T) {
	ctx := context.Background()
	for _, rb := range realBackends(t) {
		t.Run(rb.name, func(t *testing.T) {
			where := rb.new(t)
			r := TestRepositoryWith(t, rb.open(t, where), Options{})
			gone := TestSnapshot(t, r, "s", time.Now(), map[string][]byte{"a": randBytes(11, 200<<10)})
			keepFiles := map[string][]byte{"b": randBytes(12, 200<<10)}
			keep := TestSnapshot(t, r, "s", time.Now(), keepFiles)
			if err := r.RemoveSnapshot(ctx, gone.ID); err != nil {
				t.Fatal(err)
			}
			const stale = 3 * time.Second
			popts := PruneOptions{Grace: time.Millisecond, LockRefresh: 200 * time.Millisecond, LockStale: stale}
			if _, err := r.Prune(ctx, popts); err != nil { // tombstones a's blobs
				t.Fatal(err)
			}
			time.Sleep(stale/4 + 100*time.Millisecond) // a's tombstones are old enough to delete

			be := &outage{Backend: rb.open(t, where)}
			paused := TestOpen(t, be, Options{})
			var second *PruneResult
			popts.beforeDestroy = func() {
				be.down.Store(true)
				// mtimes have a second's resolution on some servers
				time.Sleep(stale + 1500*time.Millisecond)
				var err error
				second, err = TestOpen(t, rb.open(t, where), Options{}).Prune(ctx, PruneOptions{Grace: time.Millisecond, LockStale: stale})
				if err != nil {
					t.Errorf("second prune while the first is paused: %v", err)
				}
				be.down.Store(false)
				be.counting.Store(true)
			}
			_, err := paused.Prune(ctx, popts)
			if !errors.Is(err, ErrPruneLockLost) {
				t.Fatalf("paused prune: %v, want ErrPruneLockLost", err)
			}
			if n := be.changes.Load(); n != 0 {
				t.Fatalf("paused prune wrote or removed %d files after losing its lock", n)
			}
			if second == nil || second.PacksDeleted == 0 {
				t.Fatalf("second prune: %+v, want packs deleted", second)
			}
			r = TestOpen(t, rb.open(t, where), Options{})
			mustRestore(t, r, keep, keepFiles)
			mustCheck(t, r)
		})
	}
}
