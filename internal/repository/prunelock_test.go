package repository

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sitevault/sitevault/internal/backend"
	"github.com/sitevault/sitevault/internal/backend/mem"
)

func TestPruneLock(t *testing.T) {
	ctx := context.Background()
	be := mem.New()
	clock := time.Now()
	be.Now = func() time.Time { return clock }
	r := TestRepositoryWith(t, be, Options{})

	locks := func() int {
		n := 0
		be.List(ctx, backend.LockFile, func(backend.FileInfo) error { n++; return nil })
		return n
	}

	release, err := r.lockPrune(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// A second prune, here or in another process, is refused and names
	// the running one; it leaves no lock of its own behind.
	other := TestOpen(t, be, Options{})
	if _, err := other.Prune(ctx, PruneOptions{}); !errors.Is(err, ErrPruneRunning) {
		t.Fatalf("second prune: %v, want ErrPruneRunning", err)
	}
	if n := locks(); n != 1 {
		t.Fatalf("%d lock files after the refused prune, want 1", n)
	}
	// A dry run writes nothing and needs no lock.
	if _, err := other.Prune(ctx, PruneOptions{DryRun: true}); err != nil {
		t.Fatalf("dry run beside a running prune: %v", err)
	}
	release()
	if n := locks(); n != 0 {
		t.Fatalf("%d lock files after release, want 0", n)
	}
	if _, err := other.Prune(ctx, PruneOptions{}); err != nil {
		t.Fatalf("prune after the other finished: %v", err)
	}

	// A lock not refreshed for DefaultLockStale is a dead prune's: ignored
	// and removed.
	if _, err := r.lockPrune(ctx); err != nil { // never released: the prune "died"
		t.Fatal(err)
	}
	clock = clock.Add(DefaultLockStale + time.Minute)
	if _, err := other.Prune(ctx, PruneOptions{}); err != nil {
		t.Fatalf("prune beside a stale lock: %v", err)
	}
	if n := locks(); n != 0 {
		t.Fatalf("%d lock files left, want 0 (the stale one removed)", n)
	}
}

// statHook runs before a Stat of a lock file.
type statHook struct {
	backend.Backend
	before func()
}

func (b *statHook) Stat(ctx context.Context, h backend.Handle) (backend.FileInfo, error) {
	if h.Type == backend.LockFile && b.before != nil {
		f := b.before
		b.before = nil
		f()
	}
	return b.Backend.Stat(ctx, h)
}

// The refresher replacing the lock file between ensure's read of the
// current file and its Stat is not a lost lock (it was, and stopped
// prunes under load).
func TestPruneLockEnsureBesideRefresh(t *testing.T) {
	ctx := context.Background()
	hook := &statHook{Backend: mem.New()}
	r := TestRepositoryWith(t, hook, Options{})
	l, err := r.takePruneLock(ctx, time.Hour, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	defer l.release(ctx)
	first := l.own
	hook.before = func() {
		if err := l.write(ctx); err != nil { // as the refresher does
			t.Error(err)
		}
	}
	if err := l.ensure(ctx); err != nil {
		t.Fatalf("ensure beside a refresh: %v", err)
	}
	if l.own == first {
		t.Fatal("the hook did not refresh the lock; the test tests nothing")
	}
	// A lock file really removed is still a lost lock.
	if err := hook.Backend.Remove(ctx, l.own); err != nil {
		t.Fatal(err)
	}
	if err := l.ensure(ctx); !errors.Is(err, ErrPruneLockLost) {
		t.Fatalf("ensure with the lock file removed: %v, want ErrPruneLockLost", err)
	}
}
