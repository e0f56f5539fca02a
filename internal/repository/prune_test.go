package repository

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/sitevault/sitevault/internal/backend"
	"github.com/sitevault/sitevault/internal/backend/mem"
)

func fileList(tb testing.TB, be backend.Backend) map[string]int64 {
	tb.Helper()
	out := map[string]int64{}
	for _, t := range backend.FileTypes {
		_ = be.List(context.Background(), t, func(fi backend.FileInfo) error { out[string(t)+"/"+fi.Name] = fi.Size; return nil })
	}
	return out
}

func mustRestore(tb testing.TB, r *Repository, sn *Snapshot, want map[string][]byte) {
	tb.Helper()
	got, err := TestRestore(tb, r, sn.ID)
	if err != nil {
		tb.Fatalf("restore %v: %v", sn.ID.Short(), err)
	}
	if len(got) != len(want) {
		tb.Fatalf("restore %v: %d files, want %d", sn.ID.Short(), len(got), len(want))
	}
	for name, data := range want {
		if !bytes.Equal(got[name], data) {
			tb.Fatalf("restore %v: file %q differs", sn.ID.Short(), name)
		}
	}
}

func mustCheck(tb testing.TB, r *Repository) {
	tb.Helper()
	res, err := r.Check(context.Background(), CheckOptions{ReadData: true})
	if err != nil {
		tb.Fatal(err)
	}
	if !res.OK() {
		tb.Fatalf("check: %v", res.Problems)
	}
}

func TestPrune(t *testing.T) {
	ctx := context.Background()
	clk := NewFakeClock(time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC))
	be := mem.New()
	be.Now = clk.Now
	r := TestRepositoryWith(t, be, Options{Now: clk.Now})
	opts := PruneOptions{Grace: time.Hour}

	filesA := map[string][]byte{"a": randBytes(20, 900<<10), "shared": randBytes(21, 300<<10)}
	filesB := map[string][]byte{"b": randBytes(22, 900<<10), "shared": filesA["shared"]}
	filesC := map[string][]byte{"c": compressible(23, 400<<10)}
	a := TestSnapshot(t, r, "s", clk.Now(), filesA)
	b := TestSnapshot(t, r, "s", clk.Now(), filesB)
	treeA, _ := r.LoadTree(ctx, a.Tree)
	clk.Advance(2 * time.Hour)

	t.Run("nothing to do", func(t *testing.T) {
		res, err := r.Prune(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		if res.BlobsTombstoned+res.PacksDeleted+res.PacksRepacked != 0 {
			t.Errorf("prune of a repository without garbage: %+v", res)
		}
	})

	// a backup process that started before the prune and dedups against A's data
	early := TestOpen(t, be, Options{Now: clk.Now})
	if err := r.RemoveSnapshot(ctx, a.ID); err != nil {
		t.Fatal(err)
	}

	t.Run("dry run changes nothing", func(t *testing.T) {
		before := fileList(t, be)
		res, err := r.Prune(ctx, PruneOptions{Grace: time.Hour, DryRun: true})
		if err != nil {
			t.Fatal(err)
		}
		if res.BlobsTombstoned == 0 {
			t.Errorf("dry run found no garbage: %+v", res)
		}
		after := fileList(t, be)
		if len(before) != len(after) {
			t.Errorf("dry run changed the files: %d → %d", len(before), len(after))
		}
	})

	var packsBefore int
	t.Run("phase 1 tombstones and deletes nothing", func(t *testing.T) {
		packsBefore = len(listType(t, be, backend.PackFile))
		res, err := r.Prune(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		if res.BlobsTombstoned == 0 || res.PacksDeleted != 0 || res.PacksRepacked != 0 {
			t.Errorf("phase 1: %+v", res)
		}
		if n := len(listType(t, be, backend.PackFile)); n != packsBefore {
			t.Errorf("phase 1 changed the packs: %d → %d", packsBefore, n)
		}
		if n := len(listType(t, be, backend.IndexFile)); n != 1 {
			t.Errorf("index not compacted: %d files", n)
		}
		// tombstoned blobs are not deduplicated against any more
		if r.HasBlob(DataBlob, treeA.Find("a").Content[0]) {
			t.Error("a tombstoned blob is still offered for dedup")
		}
	})

	// the early backup finishes now: its snapshot references tombstoned data
	earlySn := TestSnapshot(t, early, "s", clk.Now(), filesA)
	// and a snapshot written by a layer that reused A's tree id without
	// SaveBlob or MarkUsed: prune must revive the tombstoned tree
	revived := &Snapshot{Time: clk.Now(), Site: "s", Tree: a.Tree}
	if _, err := TestOpen(t, be, Options{Now: clk.Now}).SaveSnapshot(ctx, revived); err != nil {
		t.Fatal(err)
	}
	c := TestSnapshot(t, r, "s", clk.Now(), filesC)
	clk.Advance(2 * time.Hour)

	t.Run("phase 2 revives referenced blobs and deletes the rest", func(t *testing.T) {
		res, err := r.Prune(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		if res.BlobsRevived == 0 {
			t.Errorf("nothing revived: %+v", res)
		}
		mustCheck(t, r)
		mustRestore(t, r, b, filesB)
		mustRestore(t, r, c, filesC)
		mustRestore(t, r, earlySn, filesA)
		mustRestore(t, r, revived, filesA)
	})

	t.Run("forgetting everything but c frees space", func(t *testing.T) {
		for _, sn := range []*Snapshot{b, earlySn, revived} {
			if err := r.RemoveSnapshot(ctx, sn.ID); err != nil {
				t.Fatal(err)
			}
		}
		size0 := repoBytes(t, be, backend.PackFile)
		var freed int64
		for range 3 {
			res, err := r.Prune(ctx, opts)
			if err != nil {
				t.Fatal(err)
			}
			freed += res.BytesFreed
			clk.Advance(2 * time.Hour)
		}
		size1 := repoBytes(t, be, backend.PackFile)
		if freed == 0 || size1 >= size0 || size1 > 2*int64(len(filesC["c"])) {
			t.Errorf("packs %d → %d bytes (freed %d), want about the size of c", size0, size1, freed)
		}
		mustCheck(t, r)
		mustRestore(t, TestOpen(t, be, Options{}), c, filesC)
	})
}

func listType(tb testing.TB, be backend.Backend, typ backend.FileType) []string {
	tb.Helper()
	var out []string
	_ = be.List(context.Background(), typ, func(fi backend.FileInfo) error { out = append(out, fi.Name); return nil })
	return out
}

func TestPruneRepacks(t *testing.T) {
	ctx := context.Background()
	clk := NewFakeClock(time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC))
	be := mem.New()
	be.Now = clk.Now
	r := TestRepositoryWith(t, be, Options{Now: clk.Now, PackSize: 4 << 20, Packers: 1})
	keepFiles := map[string][]byte{"keep": randBytes(30, 300<<10)}
	dropFiles := map[string][]byte{"drop": randBytes(31, 900<<10)}
	// one pack holding both
	tree := &Tree{}
	for name, data := range map[string][]byte{"keep": keepFiles["keep"], "drop": dropFiles["drop"]} {
		ids, size, err := r.SaveStream(ctx, bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		tree.Nodes = append(tree.Nodes, &Node{Name: name, Type: NodeFile, Size: size, Content: ids})
	}
	tid, _ := r.SaveTree(ctx, tree)
	both := &Snapshot{Time: clk.Now(), Tree: tid, Site: "s"}
	if _, err := r.SaveSnapshot(ctx, both); err != nil {
		t.Fatal(err)
	}
	if n := len(listType(t, be, backend.PackFile)); n != 1 {
		t.Fatalf("%d packs, want 1", n)
	}
	keep := TestSnapshot(t, r, "s", clk.Now(), keepFiles)
	_ = r.RemoveSnapshot(ctx, both.ID)
	clk.Advance(2 * time.Hour)
	if _, err := r.Prune(ctx, PruneOptions{Grace: time.Hour}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Hour)
	res, err := r.Prune(ctx, PruneOptions{Grace: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if res.PacksRepacked != 1 || res.BytesFreed < 800<<10 {
		t.Errorf("repack: %+v", res)
	}
	mustCheck(t, r)
	mustRestore(t, TestOpen(t, be, Options{}), keep, keepFiles)
	// the next prune drops the repacked pack from the index quietly: it
	// is not lost data
	if res, err := r.Prune(ctx, PruneOptions{Grace: time.Hour}); err != nil || res.MissingPacks != 0 {
		t.Fatalf("prune after the repack: %+v, %v; want no missing packs", res, err)
	}
	mustCheck(t, r)
	mustRestore(t, TestOpen(t, be, Options{}), keep, keepFiles)
}

func TestPruneOrphans(t *testing.T) {
	ctx := context.Background()
	clk := NewFakeClock(time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC))
	be := mem.New()
	be.Now = clk.Now
	r := TestRepositoryWith(t, be, Options{Now: clk.Now})
	if _, _, err := r.SaveStream(ctx, bytes.NewReader(randBytes(40, 2<<20))); err != nil {
		t.Fatal(err)
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// simulate a killed backup: packs uploaded, index lost
	for _, name := range listType(t, be, backend.IndexFile) {
		_ = be.Remove(ctx, backend.Handle{Type: backend.IndexFile, Name: name})
	}
	packs := len(listType(t, be, backend.PackFile))
	// a backup starting now reuses them, whatever their age (pack
	// modification times play no part)
	clk.Advance(48 * time.Hour)
	r2 := TestOpen(t, be, Options{Now: clk.Now})
	if n, err := r2.RecoverOrphans(ctx); err != nil || n != packs {
		t.Fatalf("RecoverOrphans = %d, %v; want %d", n, err, packs)
	}
	// orphans again; prune indexes them and tombstones their unused
	// blobs at once, but deletes them only a grace later
	for _, name := range listType(t, be, backend.IndexFile) {
		_ = be.Remove(ctx, backend.Handle{Type: backend.IndexFile, Name: name})
	}
	r = TestOpen(t, be, Options{Now: clk.Now})
	res, err := r.Prune(ctx, PruneOptions{Grace: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if res.OrphansIndexed != packs || res.BlobsTombstoned == 0 || len(listType(t, be, backend.PackFile)) != packs {
		t.Fatalf("first prune over orphans: %+v, %d packs left of %d", res, len(listType(t, be, backend.PackFile)), packs)
	}
	// a backup starting now adopts nothing: they are indexed (tombstoned)
	if n, err := TestOpen(t, be, Options{Now: clk.Now}).RecoverOrphans(ctx); err != nil || n != 0 {
		t.Fatalf("RecoverOrphans after prune = %d, %v; want 0", n, err)
	}
	for range 2 {
		clk.Advance(2 * time.Hour)
		if _, err := r.Prune(ctx, PruneOptions{Grace: time.Hour}); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(listType(t, be, backend.PackFile)); n != 0 {
		t.Errorf("%d orphan packs left after prunes", n)
	}
	mustCheck(t, r)
}

// TestMarkUsedProtects: a backup that takes over a tree from its parent
// (MarkUsed, no SaveBlob) while a prune tombstones it re-saves it at
// SaveSnapshot, so the data survives the next prune.
func TestMarkUsedProtects(t *testing.T) {
	ctx := context.Background()
	clk := NewFakeClock(time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC))
	be := mem.New()
	be.Now = clk.Now
	r := TestRepositoryWith(t, be, Options{Now: clk.Now})
	files := map[string][]byte{"f": randBytes(60, 300<<10)}
	parent := TestSnapshot(t, r, "s", clk.Now(), files)
	clk.Advance(2 * time.Hour)

	backup := TestOpen(t, be, Options{Now: clk.Now})
	start := clk.Now()
	if !backup.MarkUsed(TreeBlob, parent.Tree) {
		t.Fatal("MarkUsed: parent tree not indexed")
	}
	tree, _ := backup.LoadTree(ctx, parent.Tree)
	backup.MarkUsed(DataBlob, tree.Nodes[0].Content...)
	// meanwhile the parent is forgotten and a prune tombstones its data
	if err := r.RemoveSnapshot(ctx, parent.ID); err != nil {
		t.Fatal(err)
	}
	res, err := r.Prune(ctx, PruneOptions{Grace: time.Hour})
	if err != nil || res.BlobsTombstoned == 0 {
		t.Fatalf("prune: %+v %v", res, err)
	}
	child := &Snapshot{Time: start, Site: "s", Tree: parent.Tree}
	if _, err := backup.SaveSnapshot(ctx, child); err != nil {
		t.Fatal(err)
	}
	// SaveSnapshot re-saved the tombstoned blobs: they are live again
	// before any prune has seen the child snapshot
	other := TestOpen(t, be, Options{})
	if !other.HasBlob(TreeBlob, parent.Tree) || !other.HasBlob(DataBlob, tree.Nodes[0].Content[0]) {
		t.Fatal("SaveSnapshot did not re-save blobs tombstoned during the backup")
	}
	for range 2 {
		clk.Advance(2 * time.Hour)
		if _, err := r.Prune(ctx, PruneOptions{Grace: time.Hour}); err != nil {
			t.Fatal(err)
		}
	}
	mustCheck(t, r)
	mustRestore(t, TestOpen(t, be, Options{}), child, files)
}
