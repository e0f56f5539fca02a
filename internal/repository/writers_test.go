package repository

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sitevault/sitevault/internal/backend"
	"github.com/sitevault/sitevault/internal/backend/mem"
)

// listCounter counts listings of data/.
type listCounter struct {
	backend.Backend
	packLists atomic.Int64
}

func (b *listCounter) List(ctx context.Context, t backend.FileType, fn func(backend.FileInfo) error) error {
	if t == backend.PackFile {
		b.packLists.Add(1)
	}
	return b.Backend.List(ctx, t, fn)
}

func writerMarkers(t *testing.T, be backend.Backend) []string {
	t.Helper()
	var out []string
	if err := be.List(context.Background(), backend.LockFile, func(fi backend.FileInfo) error {
		if strings.HasPrefix(fi.Name, writerPrefix) {
			out = append(out, fi.Name)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// A backup after clean ones reads no listing of data/; one after a writer
// that died with unindexed packs finds and indexes them.
func TestRecoverOrphansOnlyAfterADeadWriter(t *testing.T) {
	ctx := context.Background()
	be := &listCounter{Backend: mem.New()}
	r := TestRepositoryWith(t, be, Options{})
	TestSnapshot(t, r, "a", time.Now(), map[string][]byte{"f": []byte("one")})
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if m := writerMarkers(t, be); len(m) != 0 {
		t.Fatalf("a clean writer left its marker: %v", m)
	}

	r2 := TestOpen(t, be, Options{})
	before := be.packLists.Load()
	if n, err := r2.RecoverOrphans(ctx); err != nil || n != 0 {
		t.Fatalf("RecoverOrphans = %d, %v", n, err)
	}
	if got := be.packLists.Load() - before; got != 0 {
		t.Errorf("RecoverOrphans listed data/ %d times with no writer marker", got)
	}

	// A writer dies after uploading a pack, before an index names it: its
	// index file is taken away as if never written.
	indexes := func() map[string]bool {
		out := map[string]bool{}
		be.List(ctx, backend.IndexFile, func(fi backend.FileInfo) error { out[fi.Name] = true; return nil })
		return out
	}
	old := indexes()
	dead := TestOpen(t, be, Options{})
	if _, _, err := dead.SaveStream(ctx, strings.NewReader(strings.Repeat("orphan data ", 1000))); err != nil {
		t.Fatal(err)
	}
	if err := dead.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for name := range indexes() {
		if !old[name] {
			if err := be.Remove(ctx, backend.Handle{Type: backend.IndexFile, Name: name}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(writerMarkers(t, be)) != 1 {
		t.Fatalf("the dying writer has no marker")
	}
	// (no Close: the process is gone)

	r3 := TestOpen(t, be, Options{})
	n, err := r3.RecoverOrphans(ctx)
	if err != nil || n != 1 {
		t.Fatalf("RecoverOrphans after a dead writer = %d, %v; want its pack", n, err)
	}
	if m := writerMarkers(t, be); len(m) != 0 {
		t.Errorf("the dead writer's marker stays after recovery: %v", m)
	}
}
