package repository

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/sitevault/sitevault/internal/backend"
	"github.com/sitevault/sitevault/internal/backend/mem"
)

// onlyIndex replaces every index file by one holding f.
func onlyIndex(t *testing.T, r *Repository, f *indexFile) {
	t.Helper()
	ctx := context.Background()
	for _, name := range listType(t, r.be, backend.IndexFile) {
		if err := r.be.Remove(ctx, backend.Handle{Type: backend.IndexFile, Name: name}); err != nil {
			t.Fatal(err)
		}
	}
	if f != nil {
		if _, err := r.saveIndexFile(ctx, f); err != nil {
			t.Fatal(err)
		}
	}
}

// allIndex merges every live index file into one.
func allIndex(t *testing.T, r *Repository) *indexFile {
	t.Helper()
	ctx := context.Background()
	ids, err := r.listIndexNames(ctx)
	if err != nil {
		t.Fatal(err)
	}
	files, err := r.loadIndexFiles(ctx, ids, false)
	if err != nil {
		t.Fatal(err)
	}
	out := &indexFile{}
	for _, f := range liveFiles(files) {
		out.Packs = append(out.Packs, f.Packs...)
		out.Tombstones = append(out.Tombstones, f.Tombstones...)
	}
	return out
}

func problemsWith(res *CheckResult, substr string) int {
	n := 0
	for _, p := range res.Problems {
		if strings.Contains(p.String(), substr) {
			n++
		}
	}
	return n
}

// TestPruneDropsMissingPacks is issue 9, finding 3 (prune side): a pack
// the index lists but the backend lost leaves the index at the next
// prune, which says so; check then names the snapshot that lost data.
func TestPruneDropsMissingPacks(t *testing.T) {
	ctx := context.Background()
	r := TestRepositoryWith(t, mem.New(), Options{PackSize: 64 << 10})
	files := map[string][]byte{"a": randBytes(21, 300<<10)}
	sn := TestSnapshot(t, r, "s", time.Now(), files)
	// lose a pack of data blobs (a lost tree makes prune refuse to run
	// until the snapshot is forgotten)
	var lost ID
	for _, ip := range allIndex(t, r).Packs {
		data := true
		for _, b := range ip.Blobs {
			data = data && b.Type == DataBlob
		}
		if data {
			lost = ip.ID
		}
	}
	if lost.IsNull() {
		t.Fatal("no pack of data blobs only")
	}
	if err := r.be.Remove(ctx, backend.Handle{Type: backend.PackFile, Name: lost.String()}); err != nil {
		t.Fatal(err)
	}
	res, err := r.Prune(ctx, PruneOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.MissingPacks != 1 {
		t.Errorf("MissingPacks = %d, want 1", res.MissingPacks)
	}
	for _, ip := range allIndex(t, r).Packs {
		if ip.ID == lost {
			t.Fatalf("pack %v still in the index after prune", lost.Short())
		}
	}
	cres, err := r.Check(ctx, CheckOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if cres.OK() || len(cres.Problems[0].Snapshots) != 1 || cres.Problems[0].Snapshots[0] != sn.ID {
		t.Fatalf("check after a lost pack: %v, want the snapshot reported", cres.Problems)
	}
}

// TestCheckReadDataHeaderAndOrphans is issue 9, finding 5: check
// --read-data compares each pack's header with the index and reads
// orphan packs too.
func TestCheckReadDataHeaderAndOrphans(t *testing.T) {
	ctx := context.Background()
	t.Run("header", func(t *testing.T) {
		r := TestRepository(t)
		TestSnapshot(t, r, "s", time.Now(), map[string][]byte{"a": randBytes(31, 100<<10)})
		// a blob no snapshot uses, in a pack of its own
		extra, _, err := r.SaveBlob(ctx, DataBlob, randBytes(32, 1000))
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		f := allIndex(t, r)
		for i, ip := range f.Packs {
			var kept []indexBlob
			for _, b := range ip.Blobs {
				if b.ID != extra {
					kept = append(kept, b)
				}
			}
			f.Packs[i].Blobs = kept
		}
		onlyIndex(t, r, f)
		res, err := r.Check(ctx, CheckOptions{ReadData: true})
		if err != nil {
			t.Fatal(err)
		}
		if problemsWith(res, "header does not match the index") != 1 {
			t.Fatalf("check --read-data of a pack whose header lists a blob the index lacks: %v", res.Problems)
		}
	})
	t.Run("orphan", func(t *testing.T) {
		r := TestRepository(t)
		if _, _, err := r.SaveStream(ctx, bytes.NewReader(randBytes(33, 100<<10))); err != nil {
			t.Fatal(err)
		}
		if err := r.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		onlyIndex(t, r, nil) // a killed backup: its pack is an orphan
		name := listType(t, r.be, backend.PackFile)[0]
		h := backend.Handle{Type: backend.PackFile, Name: name}
		b, err := loadFile(ctx, r.be, h)
		if err != nil {
			t.Fatal(err)
		}
		b[100] ^= 1 // inside the first blob, not the header
		r.be.Remove(ctx, h)
		if err := r.be.Save(ctx, h, bytes.NewReader(b), int64(len(b))); err != nil {
			t.Fatal(err)
		}
		res, err := r.Check(ctx, CheckOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !res.OK() || res.OrphanPacks != 1 {
			t.Fatalf("structure check of a sound-headed orphan: %v, %d orphans", res.Problems, res.OrphanPacks)
		}
		res, err = r.Check(ctx, CheckOptions{ReadData: true})
		if err != nil {
			t.Fatal(err)
		}
		if problemsWith(res, "orphan pack") < 2 { // name and blob
			t.Fatalf("check --read-data of a damaged orphan: %v", res.Problems)
		}
	})
}

// TestCheckForeignPack is issue 8, finding 15b: a file in data/ that
// prune never removes (a name that is no pack's, or a header that does
// not read) is a problem check names, not an orphan it promises prune
// will collect; prune indeed leaves it.
func TestCheckForeignPack(t *testing.T) {
	ctx := context.Background()
	be := mem.New()
	r := TestRepositoryWith(t, be, Options{})
	junk := randBytes(41, 5000)
	sum := sha256.Sum256(junk)
	h := backend.Handle{Type: backend.PackFile, Name: hex.EncodeToString(sum[:])}
	if err := be.Save(ctx, h, bytes.NewReader(junk), int64(len(junk))); err != nil {
		t.Fatal(err)
	}
	res, err := r.Check(ctx, CheckOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.OrphanPacks != 0 || problemsWith(res, "prune never removes it") != 1 {
		t.Fatalf("check of a foreign pack: %d orphans, problems %v", res.OrphanPacks, res.Problems)
	}
	if _, err := r.Prune(ctx, PruneOptions{Grace: time.Nanosecond}); err != nil {
		t.Fatal(err)
	}
	if _, err := be.Stat(ctx, h); err != nil {
		t.Fatalf("prune touched the foreign pack: %v", err)
	}
}

// TestPruneUnchangedWritesNothing: a prune with nothing to change (the
// usual run while tombstones wait for their grace) rewrites no index file.
func TestPruneUnchangedWritesNothing(t *testing.T) {
	ctx := context.Background()
	r := TestRepository(t)
	gone := TestSnapshot(t, r, "s", time.Now(), map[string][]byte{"a": randBytes(51, 50<<10)})
	TestSnapshot(t, r, "s", time.Now(), map[string][]byte{"b": randBytes(52, 50<<10)})
	if err := r.RemoveSnapshot(ctx, gone.ID); err != nil {
		t.Fatal(err)
	}
	for range 2 { // compacts (the packs are young), then tombstones a
		if _, err := r.Prune(ctx, PruneOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	before := listType(t, r.be, backend.IndexFile)
	res, err := r.Prune(ctx, PruneOptions{})
	if err != nil {
		t.Fatal(err)
	}
	after := listType(t, r.be, backend.IndexFile)
	if strings.Join(before, ",") != strings.Join(after, ",") || res.IndexFilesIn != 0 {
		t.Fatalf("unchanged prune rewrote the index: %v -> %v (%+v)", before, after, res)
	}
	mustCheck(t, r)
}
