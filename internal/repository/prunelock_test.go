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
