package repository

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/sitevault/sitevault/internal/backend"
	"github.com/sitevault/sitevault/internal/backend/mem"
)

// onRemove runs fn (once) just before the first removal of a file of type
// typ: a prune's delete phase, caught at its most dangerous moment.
type onRemove struct {
	backend.Backend
	typ  backend.FileType
	once sync.Once
	fn   func()
}

func (b *onRemove) Remove(ctx context.Context, h backend.Handle) error {
	if h.Type == b.typ {
		b.once.Do(b.fn)
	}
	return b.Backend.Remove(ctx, h)
}

// TestPruneDeletePhaseBackupAdopts is issue 9, finding 2: a backup that
// starts while a prune with a short grace is between writing its
// compacted index and deleting packs must not adopt (RecoverOrphans) a
// pack that prune is deleting, and its snapshot must restore.
func TestPruneDeletePhaseBackupAdopts(t *testing.T) {
	ctx := context.Background()
	clk := NewFakeClock(time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC))
	m := mem.New()
	m.Now = clk.Now
	be := &onRemove{Backend: m, typ: backend.PackFile}
	opts := Options{Now: clk.Now}
	r := TestRepositoryWith(t, be, opts)
	files := map[string][]byte{"a": randBytes(91, 300<<10)}
	old := TestSnapshot(t, r, "s", clk.Now(), files)
	if err := r.RemoveSnapshot(ctx, old.ID); err != nil {
		t.Fatal(err)
	}
	const grace = 6 * time.Hour
	clk.Advance(grace + time.Hour)
	if _, err := r.Prune(ctx, PruneOptions{Grace: grace}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(grace + time.Hour)

	// The backup starts during the next prune's delete phase and backs up
	// the same content.
	var sn *Snapshot
	var backupErr error
	be.fn = func() {
		b := TestOpen(t, be, opts)
		if _, err := b.RecoverOrphans(ctx); err != nil {
			backupErr = err
			return
		}
		sn, backupErr = SaveTestSnapshot(ctx, b, "s", clk.Now(), files)
	}
	res, err := TestOpen(t, be, opts).Prune(ctx, PruneOptions{Grace: grace})
	if err != nil {
		t.Fatal(err)
	}
	if backupErr != nil || sn == nil {
		t.Fatalf("backup during prune: %v", backupErr)
	}
	if res.PacksDeleted == 0 {
		t.Fatalf("prune deleted nothing (%+v): the test did not reach the delete phase", res)
	}
	r = TestOpen(t, be, opts)
	mustRestore(t, r, sn, files)
	mustCheck(t, r)
	// and the next prunes keep it
	for range 2 {
		clk.Advance(grace + time.Hour)
		if _, err := r.Prune(ctx, PruneOptions{Grace: grace}); err != nil {
			t.Fatal(err)
		}
	}
	mustRestore(t, TestOpen(t, be, opts), sn, files)
	mustCheck(t, r)
}
