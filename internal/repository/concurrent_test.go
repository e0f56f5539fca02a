package repository

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/sitevault/sitevault/internal/backend"
	"github.com/sitevault/sitevault/internal/backend/mem"
)

// TestConcurrentBackupsAndPrune runs backups from two processes (two
// Repository instances on one backend, each living across its backups as
// the service's does, refreshing at each start) while a third forgets and prunes
// with a fake clock that passes Grace several times; then every snapshot
// left must restore byte for byte and check --read-data must pass.
//
// The clock advances by a third of Grace per prune, but never so far that
// a running backup becomes older than Grace: that is the documented
// assumption of time-based collection (a backup that outlives Grace is
// refused at SaveSnapshot with ErrBlobNotFound, see doc.go).
func TestConcurrentBackupsAndPrune(t *testing.T) {
	ctx := context.Background()
	clk := NewFakeClock(time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC))
	be := mem.New()
	be.Now = clk.Now
	TestRepositoryWith(t, be, Options{Now: clk.Now})
	const grace = time.Hour

	// a pool of shared content so backups dedup against each other and
	// against data that prune tombstones and deletes
	pool := make([][]byte, 6)
	for i := range pool {
		pool[i] = randBytes(uint64(100+i), 150<<10)
	}
	var (
		mu        sync.Mutex
		saved     = map[ID]map[string][]byte{}
		forgotten = map[ID]bool{}
		running   = map[int]time.Time{}
	)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w, site := range []string{"s1", "s2"} {
		r := TestOpen(t, be, Options{Now: clk.Now})
		wg.Go(func() {
			rnd := rand.New(rand.NewPCG(uint64(w), 1))
			for i := range 12 {
				files := map[string][]byte{
					fmt.Sprintf("new\n%d\xff", i): randBytes(uint64(1000*w+i), 40<<10+rnd.IntN(100<<10)),
					"pool-a":                      pool[rnd.IntN(len(pool))],
					"pool-b":                      pool[rnd.IntN(len(pool))],
				}
				mu.Lock()
				start := clk.Now()
				running[w] = start
				mu.Unlock()
				// as backup.Run does at its start: a session that lives
				// across backups learns what prunes did meanwhile
				if err := r.Refresh(ctx); err != nil {
					errs <- err
					return
				}
				sn, err := SaveTestSnapshot(ctx, r, site, start, files)
				mu.Lock()
				delete(running, w)
				mu.Unlock()
				if err != nil {
					errs <- fmt.Errorf("backup %s/%d: %w", site, i, err)
					return
				}
				mu.Lock()
				saved[sn.ID] = files
				mu.Unlock()
			}
		})
	}
	done := make(chan struct{})
	pr := TestOpen(t, be, Options{Now: clk.Now})
	var pruneWG sync.WaitGroup
	pruneWG.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			snaps, err := pr.Snapshots(ctx)
			if err != nil {
				errs <- err
				return
			}
			_, remove, _ := ApplyPolicy(snaps, Policy{KeepLast: 2})
			for _, sn := range remove {
				if err := pr.RemoveSnapshot(ctx, sn.ID); err != nil {
					errs <- err
					return
				}
				mu.Lock()
				forgotten[sn.ID] = true
				mu.Unlock()
			}
			if _, err := pr.Prune(ctx, PruneOptions{Grace: grace}); err != nil {
				errs <- fmt.Errorf("prune: %w", err)
				return
			}
			mu.Lock()
			step := grace / 3
			for _, start := range running {
				step = min(step, start.Add(grace*9/10).Sub(clk.Now()))
			}
			if step > 0 {
				clk.Advance(step)
			}
			mu.Unlock()
		}
	})
	wg.Wait()
	close(done)
	pruneWG.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// settle: a few more prunes past Grace
	for range 3 {
		clk.Advance(2 * grace)
		if _, err := pr.Prune(ctx, PruneOptions{Grace: grace}); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d snapshots saved, %d forgotten, clock advanced %v", len(saved), len(forgotten), clk.Now().Sub(time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)))
	if len(saved) != 24 {
		t.Fatalf("only %d of 24 backups succeeded", len(saved))
	}
	fresh := TestOpen(t, be, Options{})
	mustCheck(t, fresh)
	kept := 0
	for id, files := range saved {
		if forgotten[id] {
			continue
		}
		kept++
		mustRestore(t, fresh, &Snapshot{ID: id}, files)
	}
	if kept == 0 {
		t.Error("no snapshot left to restore")
	}
}

// TestConcurrentBackupsOneRepository runs backups of several sites through
// one Repository at once, as the service does.
func TestConcurrentBackupsOneRepository(t *testing.T) {
	ctx := context.Background()
	r := TestRepository(t)
	shared := randBytes(300, 500<<10)
	var wg sync.WaitGroup
	results := make([]*Snapshot, 4)
	files := make([]map[string][]byte, 4)
	errs := make([]error, 4)
	for i := range 4 {
		files[i] = map[string][]byte{"own": randBytes(uint64(310+i), 700<<10), "shared": shared, "text": compressible(uint64(i), 200<<10)}
		wg.Go(func() {
			results[i], errs[i] = SaveTestSnapshot(ctx, r, fmt.Sprintf("site%d", i), time.Now(), files[i])
		})
	}
	wg.Wait()
	for i := range 4 {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
	}
	fresh := TestOpen(t, r.Backend(), Options{})
	mustCheck(t, fresh)
	for i := range 4 {
		mustRestore(t, fresh, results[i], files[i])
	}
}

// TestRefreshWhileFlushing refreshes the index from the backend while
// other goroutines of the same Repository flush new index files, as
// concurrent backups in the service do (each backup's snapshot refreshes
// the index): a file written between the refresh's listing and its use is
// not taken for one a prune replaced, and no saved blob drops out of the
// in-memory index.
func TestRefreshWhileFlushing(t *testing.T) {
	ctx := context.Background()
	r := TestRepository(t)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := r.refreshIndex(ctx); err != nil {
				t.Error(err)
				return
			}
		}
	})
	var saved []BlobHandle
	for i := range 300 {
		data := randBytes(uint64(1000+i), 2<<10)
		id, _, err := r.SaveBlob(ctx, DataBlob, data)
		if err != nil {
			t.Fatal(err)
		}
		saved = append(saved, BlobHandle{Type: DataBlob, ID: id})
		if err := r.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		x := r.idx.Load()
		for _, h := range saved {
			if !x.has(h) {
				close(stop)
				wg.Wait()
				t.Fatalf("after %d flushes, blob %v is no longer in the in-memory index", i+1, h)
			}
		}
	}
	close(stop)
	wg.Wait()
}

// afterList is a backend that runs hook once, after the next listing of
// index files has been taken and before it is returned: what another
// process does between a refresh's listing and its loads.
type afterList struct {
	backend.Backend
	hook func()
}

func (b *afterList) List(ctx context.Context, t backend.FileType, fn func(backend.FileInfo) error) error {
	h := b.hook
	if t != backend.IndexFile || h == nil {
		return b.Backend.List(ctx, t, fn)
	}
	b.hook = nil
	var got []backend.FileInfo
	if err := b.Backend.List(ctx, t, func(fi backend.FileInfo) error { got = append(got, fi); return nil }); err != nil {
		return err
	}
	h()
	for _, fi := range got {
		if err := fn(fi); err != nil {
			return err
		}
	}
	return nil
}

// TestRefreshListingOutrunByPrune: a refresh lists index files, then a
// prune compacts them into a new file and removes the ones listed before
// the refresh loads them. The refresh must list again, not take the packs
// of the files that vanished for deleted (it once dropped them from the
// in-memory index, so a long-lived session's backup failed at
// SaveSnapshot with "removed by a prune while this backup ran").
func TestRefreshListingOutrunByPrune(t *testing.T) {
	ctx := context.Background()
	clk := NewFakeClock(time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC))
	mb := mem.New()
	mb.Now = clk.Now
	be := &afterList{Backend: mb}
	w := TestRepositoryWith(t, be, Options{Now: clk.Now})
	// two index files, each naming a pack; a snapshot keeps both blobs
	files := map[string][]byte{"a": randBytes(1, 64<<10), "b": randBytes(2, 64<<10)}
	TestSnapshot(t, w, "s", clk.Now(), map[string][]byte{"a": files["a"]})
	sn := TestSnapshot(t, w, "s", clk.Now(), files)

	reader := TestOpen(t, be, Options{Now: clk.Now})
	// The chunks of both files (the chunker's cuts depend on the
	// repository's random seed), and the tree.
	handles := []BlobHandle{{Type: TreeBlob, ID: sn.Tree}}
	tree, err := reader.LoadTree(ctx, sn.Tree)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range tree.Nodes {
		for _, id := range n.Content {
			handles = append(handles, BlobHandle{Type: DataBlob, ID: id})
		}
	}
	for _, h := range handles {
		if !reader.idx.Load().has(h) {
			t.Fatalf("blob %v not in the reader's index after Open", h)
		}
	}
	pr := TestOpen(t, mb, Options{Now: clk.Now})
	// a first compaction the reader has not seen yet…
	if _, err := pr.Prune(ctx, PruneOptions{Grace: time.Hour}); err != nil {
		t.Fatal(err)
	}
	// …and a second one, superseding the first, after the reader listed
	be.hook = func() {
		TestSnapshot(t, w, "s", clk.Now(), map[string][]byte{"c": randBytes(3, 64<<10)})
		if _, err := pr.Prune(ctx, PruneOptions{Grace: time.Hour}); err != nil {
			t.Error(err)
		}
	}
	if err := reader.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if be.hook != nil {
		t.Fatal("the refresh did not list index files")
	}
	for _, h := range handles {
		if !reader.idx.Load().has(h) {
			t.Errorf("after the refresh, blob %v (in a pack no prune deleted) is no longer in the reader's index", h)
		}
	}
}
