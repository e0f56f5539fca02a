package repository

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sitevault/sitevault/internal/backend"
	"github.com/sitevault/sitevault/internal/backend/local"
	"github.com/sitevault/sitevault/internal/backend/mem"
)

// copyFormat1 copies testdata/format1/repo (written by the format 1 code)
// to a temporary directory and returns a local backend on the copy.
func copyFormat1(t *testing.T) backend.Backend {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "repo")
	if err := os.CopyFS(dir, os.DirFS("testdata/format1/repo")); err != nil {
		t.Fatal(err)
	}
	be, err := local.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	return be
}

// restoreTree writes tree id into dir (files, directories, symlinks).
func restoreTree(t *testing.T, r *Repository, id ID, dir string) {
	t.Helper()
	ctx := context.Background()
	tree, err := r.LoadTree(ctx, id)
	if err != nil {
		t.Fatalf("load tree: %v", err)
	}
	for _, n := range tree.Nodes {
		p := filepath.Join(dir, n.Name)
		switch n.Type {
		case NodeDir:
			if err := os.Mkdir(p, 0o755); err != nil {
				t.Fatal(err)
			}
			restoreTree(t, r, *n.Subtree, p)
		case NodeSymlink:
			if err := os.Symlink(n.LinkTarget, p); err != nil {
				t.Fatal(err)
			}
		case NodeFile:
			var buf bytes.Buffer
			if err := r.WriteContent(ctx, n.Content, &buf); err != nil {
				t.Fatalf("restore %s: %v", p, err)
			}
			if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// sameTree fails the test unless a and b hold the same names, file
// contents and symlink targets.
func sameTree(t *testing.T, a, b string) {
	t.Helper()
	list := func(root string) map[string]string {
		out := map[string]string{}
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			switch {
			case d.Type()&fs.ModeSymlink != 0:
				target, err := os.Readlink(p)
				out[rel] = "link:" + target
				return err
			case d.IsDir():
				out[rel] = "dir"
			default:
				data, err := os.ReadFile(p)
				out[rel] = "file:" + string(data)
				return err
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	la, lb := list(a), list(b)
	if len(la) != len(lb) {
		t.Fatalf("%s has %d entries, %s has %d", a, len(la), b, len(lb))
	}
	for k, v := range la {
		if lb[k] != v {
			t.Fatalf("%s differs between %s and %s", k, a, b)
		}
	}
}

// newestSnapshot returns the newest snapshot of site.
func newestSnapshot(t *testing.T, r *Repository, site string) *Snapshot {
	t.Helper()
	all, err := r.Snapshots(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out *Snapshot
	for _, sn := range all {
		if sn.Site == site && (out == nil || sn.Time.After(out.Time)) {
			out = sn
		}
	}
	if out == nil {
		t.Fatalf("no snapshot of %s", site)
	}
	return out
}

// TestFormat1Compat: a repository written by the format 1 code opens,
// restores exactly, takes new backups, and survives repair index.
func TestFormat1Compat(t *testing.T) {
	ctx := context.Background()
	be := copyFormat1(t)
	r, err := Open(ctx, be, format1Password, Options{})
	if err != nil {
		t.Fatalf("open format 1 repository: %v", err)
	}
	sn := newestSnapshot(t, r, "compat")
	verify := func(r *Repository, what string) {
		t.Helper()
		dir := filepath.Join(t.TempDir(), "restore")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		restoreTree(t, r, sn.Tree, dir)
		sameTree(t, "testdata/format1/src", dir)
		t.Logf("%s: restore is exact", what)
	}
	verify(r, "opened")
	if _, err := SaveTestSnapshot(ctx, r, "new", time.Now(), map[string][]byte{"x": randBytes(1, 100<<10)}); err != nil {
		t.Fatalf("backup into format 1 repository: %v", err)
	}
	r2, err := Open(ctx, be, format1Password, Options{})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	verify(r2, "after a backup")
	if _, err := r2.RepairIndex(ctx); err != nil {
		t.Fatalf("repair index: %v", err)
	}
	r3, err := Open(ctx, be, format1Password, Options{})
	if err != nil {
		t.Fatalf("open after repair: %v", err)
	}
	// repair index is the one command that migrates: every index file is
	// now version 2
	names, err := r3.listIndexNames(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range names {
		b, err := loadFile(ctx, be, backend.Handle{Type: backend.IndexFile, Name: id.String()})
		if err != nil {
			t.Fatal(err)
		}
		plain, err := r3.crypt.openFile(kindIndex, b)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(plain, []byte(indexEnvelopeStart)) {
			t.Errorf("index file %v after repair is not version 2: %.40q", id.Short(), plain)
		}
	}
	verify(r3, "after repair index")
	checkClean(t, r3)
}

// checkClean runs Check with ReadData and fails on any problem.
func checkClean(t *testing.T, r *Repository) {
	t.Helper()
	res, err := r.Check(context.Background(), CheckOptions{ReadData: true})
	if err != nil {
		t.Fatalf("check: %v", err)
	}
	for _, p := range res.Problems {
		t.Errorf("check: %v", p)
	}
	if !res.OK() {
		t.FailNow()
	}
}

// indexFileBlobCounts returns the number of blobs in each index file.
func indexFileBlobCounts(t *testing.T, r *Repository) map[ID]int {
	t.Helper()
	ctx := context.Background()
	ids, err := r.listIndexNames(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := map[ID]int{}
	for _, id := range ids {
		f, err := r.loadIndexFile(ctx, id)
		if err != nil {
			t.Fatalf("index file %v: %v", id.Short(), err)
		}
		for _, p := range f.Packs {
			out[id] += len(p.Blobs)
		}
	}
	return out
}

// manyBlobs saves n small distinct blobs as one snapshot.
func manyBlobs(t *testing.T, r *Repository, seed uint64, n int) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	for i := range n {
		files[fmt.Sprintf("f%d-%d", seed, i)] = randBytes(seed<<32|uint64(i), 100)
	}
	TestSnapshot(t, r, "many", time.Now(), files)
	return files
}

// TestIndexFilesBounded: whatever the repository's size, no index file
// holds more than indexFileBlobs blobs: neither those written by backups
// nor the ones prune compacts into.
func TestIndexFilesBounded(t *testing.T) {
	defer func(n int) { indexFileBlobs = n }(indexFileBlobs)
	indexFileBlobs = 500
	ctx := context.Background()
	clock := NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	be := mem.New()
	be.Now = clock.Now
	r := TestRepositoryWith(t, be, Options{Now: clock.Now, IndexEvery: 1000, PackSize: 32 << 10})
	files := manyBlobs(t, r, 1, 1800)
	for id, n := range indexFileBlobCounts(t, r) {
		if n > indexFileBlobs {
			t.Errorf("backup wrote index file %v with %d blobs, limit %d", id.Short(), n, indexFileBlobs)
		}
	}
	more := manyBlobs(t, r, 2, 700)
	clock.Advance(48 * time.Hour)
	if _, err := r.Prune(ctx, PruneOptions{Grace: time.Hour}); err != nil {
		t.Fatalf("prune: %v", err)
	}
	counts := indexFileBlobCounts(t, r)
	total := 0
	for id, n := range counts {
		total += n
		if n > indexFileBlobs {
			t.Errorf("prune wrote index file %v with %d blobs, limit %d", id.Short(), n, indexFileBlobs)
		}
	}
	if total < 2500 {
		t.Errorf("index files hold %d blobs, want at least 2500", total)
	}
	r2 := TestOpen(t, be, Options{Now: clock.Now})
	for name, data := range more {
		files[name] = data
	}
	all, err := r2.Snapshots(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, sn := range all {
		got, err := TestRestore(t, r2, sn.ID)
		if err != nil {
			t.Fatalf("restore: %v", err)
		}
		for name, data := range got {
			if !bytes.Equal(files[name], data) {
				t.Fatalf("restore %s differs", name)
			}
		}
	}
}

// indexNames lists the index files on be.
func indexNames(t *testing.T, be backend.Backend) []string {
	t.Helper()
	var out []string
	if err := be.List(context.Background(), backend.IndexFile, func(fi backend.FileInfo) error {
		out = append(out, fi.Name)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// loadCounter counts the loads of index files.
type loadCounter struct {
	backend.Backend
	n atomic.Int64
}

func (c *loadCounter) Load(ctx context.Context, h backend.Handle, length int, offset int64, fn func(io.Reader) error) error {
	if h.Type == backend.IndexFile {
		c.n.Add(1)
	}
	return c.Backend.Load(ctx, h, length, offset, fn)
}

// TestOpenFailsOnDamagedIndex: an index file that cannot be read makes
// Open fail with ErrIndexDamaged (not a quiet warning and missing blobs).
func TestOpenFailsOnDamagedIndex(t *testing.T) {
	be := mem.New()
	r := TestRepositoryWith(t, be, Options{})
	TestSnapshot(t, r, "s", time.Now(), map[string][]byte{"a": randBytes(3, 50<<10)})
	names := indexNames(t, be)
	be.Corrupt(backend.Handle{Type: backend.IndexFile, Name: names[0]}, 40)
	counted := &loadCounter{Backend: be}
	_, err := Open(context.Background(), counted, TestPassword, Options{})
	if n := counted.n.Load(); n > int64(len(names)) {
		t.Errorf("open read index files %d times; there are %d", n, len(names))
	}
	if !errors.Is(err, ErrIndexDamaged) {
		t.Fatalf("open with a damaged index file: %v, want ErrIndexDamaged", err)
	}
	var ie *IndexError
	if !errors.As(err, &ie) || ie.File != names[0] {
		t.Fatalf("open: error %v does not name index file %s", err, names[0])
	}
}

// TestRepairIndex: with index files deleted and damaged, repair index
// rebuilds the index from the pack headers; check --read-data passes and
// every snapshot restores exactly.
func TestRepairIndex(t *testing.T) {
	ctx := context.Background()
	be := mem.New()
	r := TestRepositoryWith(t, be, Options{IndexEvery: 1})
	want := map[ID]map[string][]byte{}
	for i := range 4 {
		files := map[string][]byte{
			"media": randBytes(uint64(10+i), 300<<10),
			"text":  compressible(uint64(20+i), 200<<10),
			"small": randBytes(uint64(30+i), 10),
		}
		sn := TestSnapshot(t, r, "s", time.Now(), files)
		want[sn.ID] = files
	}
	names := indexNames(t, be)
	if len(names) < 3 {
		t.Fatalf("only %d index files", len(names))
	}
	if err := be.Remove(ctx, backend.Handle{Type: backend.IndexFile, Name: names[0]}); err != nil {
		t.Fatal(err)
	}
	be.Corrupt(backend.Handle{Type: backend.IndexFile, Name: names[1]}, 50)
	if _, err := Open(ctx, be, TestPassword, Options{}); !errors.Is(err, ErrIndexDamaged) {
		t.Fatalf("open with a damaged index: %v, want ErrIndexDamaged", err)
	}
	rr, err := Open(ctx, be, TestPassword, Options{NoIndex: true})
	if err != nil {
		t.Fatalf("open for repair: %v", err)
	}
	res, err := rr.RepairIndex(ctx)
	if err != nil {
		t.Fatalf("repair index: %v", err)
	}
	if res.Packs == 0 || res.Blobs == 0 || len(res.DamagedPacks) != 0 {
		t.Fatalf("repair result %+v", res)
	}
	r2 := TestOpen(t, be, Options{})
	checkClean(t, r2)
	for id, files := range want {
		got, err := TestRestore(t, r2, id)
		if err != nil {
			t.Fatalf("restore %v: %v", id.Short(), err)
		}
		for name, data := range files {
			if !bytes.Equal(got[name], data) {
				t.Fatalf("restore %v: %s differs", id.Short(), name)
			}
		}
	}
}

// twoCopies stores the same file through two sessions on be, as two
// concurrent backups do, so its blob has a copy in two packs.
type testCopy struct {
	Pack   ID
	Offset uint32
	blob   ID
}

func twoCopies(t *testing.T, be backend.Backend, data []byte) (ID, []testCopy) {
	t.Helper()
	r1 := TestOpen(t, be, Options{})
	r2 := TestOpen(t, be, Options{})
	at := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC) // same tree in both
	TestSnapshot(t, r1, "a", at, map[string][]byte{"f": data})
	sn := TestSnapshot(t, r2, "b", at, map[string][]byte{"f": data})
	r := TestOpen(t, be, Options{})
	tree, err := r.LoadTree(context.Background(), sn.Tree)
	if err != nil {
		t.Fatal(err)
	}
	id := tree.Nodes[0].Content[0]
	// the copies as the index files name them (BlobCopies must agree)
	var copies []testCopy
	ids, err := r.listIndexNames(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range ids {
		f, err := r.loadIndexFile(context.Background(), name)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range f.Packs {
			for _, b := range p.Blobs {
				if b.ID == id && b.Type == DataBlob {
					copies = append(copies, testCopy{Pack: p.ID, Offset: b.Offset, blob: id})
				}
			}
		}
	}
	if len(copies) != 2 || copies[0].Pack == copies[1].Pack {
		t.Fatalf("blob has copies %+v, want two in different packs", copies)
	}
	return sn.ID, copies
}

// TestLoadBlobFallsBack: when the copy of a blob the index prefers is
// damaged or its pack is gone, LoadBlob reads another copy.
func TestLoadBlobFallsBack(t *testing.T) {
	data := randBytes(77, 40<<10)
	for _, damage := range []string{"corrupt", "delete"} {
		for which := range 2 {
			t.Run(fmt.Sprintf("%s copy %d", damage, which), func(t *testing.T) {
				be := mem.New()
				TestRepositoryWith(t, be, Options{})
				snap, copies := twoCopies(t, be, data)
				h := backend.Handle{Type: backend.PackFile, Name: copies[which].Pack.String()}
				if damage == "corrupt" {
					be.Corrupt(h, int(copies[which].Offset)+20)
				} else if err := be.Remove(context.Background(), h); err != nil {
					t.Fatal(err)
				}
				r := TestOpen(t, be, Options{})
				if n := len(r.BlobCopies(DataBlob, copies[0].blob)); n != 2 {
					t.Errorf("BlobCopies lists %d copies, want 2", n)
				}
				got, err := TestRestore(t, r, snap)
				if err != nil {
					t.Fatalf("restore with copy %d damaged: %v", which, err)
				}
				if !bytes.Equal(got["f"], data) {
					t.Fatal("restored content differs")
				}
			})
		}
	}
}

// TestSaveCounters: the repository counts what this process stored, so a
// backup knows what it added without listing data/.
func TestSaveCounters(t *testing.T) {
	ctx := context.Background()
	be := mem.New()
	r := TestRepositoryWith(t, be, Options{})
	other := TestOpen(t, be, Options{})
	before := r.Saved()
	TestSnapshot(t, r, "s", time.Now(), map[string][]byte{"a": randBytes(5, 200<<10), "b": compressible(6, 100<<10)})
	// another writer at the same time does not count
	TestSnapshot(t, other, "o", time.Now(), map[string][]byte{"c": randBytes(7, 300<<10)})
	// known blobs do not count
	TestSnapshot(t, r, "s", time.Now(), map[string][]byte{"a": randBytes(5, 200<<10)})
	d := r.Saved().Sub(before)
	var packBytes int64
	seen := map[ID]bool{}
	all, err := r.Snapshots(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, sn := range all {
		if sn.Site != "s" {
			continue
		}
		tree, err := r.LoadTree(ctx, sn.Tree)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range tree.Nodes {
			for _, id := range n.Content {
				seen[id] = true
			}
		}
	}
	if d.Blobs < int64(len(seen)) || d.Blobs > int64(len(seen))+4 { // + tree blobs
		t.Errorf("counted %d blobs saved, want %d data blobs plus trees", d.Blobs, len(seen))
	}
	if err := be.List(ctx, backend.PackFile, func(fi backend.FileInfo) error {
		packBytes += fi.Size
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if d.PackBytes <= 0 || d.PackBytes >= packBytes {
		t.Errorf("counted %d pack bytes; all packs (both writers) are %d", d.PackBytes, packBytes)
	}
	if d.RawBytes < 300<<10 {
		t.Errorf("counted %d plaintext bytes, want at least %d", d.RawBytes, 300<<10)
	}
}

// TestIndexFormat2: version 2 files round-trip, and what a version 1 reader
// sees of one is a JSON object of version 2 (so it fails with
// ErrNewerFormat, not "damaged").
func TestIndexFormat2(t *testing.T) {
	f := &indexFile{Version: 2, Created: time.Unix(5, 6).UTC(), Supersedes: []ID{{7}, {8}},
		Packs: []indexPack{
			{ID: ID{1}, Size: 1000, Blobs: []indexBlob{{Type: DataBlob, ID: ID{2}, Offset: 0, Length: 100, RawLength: 72}, {Type: TreeBlob, ID: ID{3}, Offset: 100, Length: 50, RawLength: 900, Compressed: true}}},
			{ID: ID{4}, Size: 10, Blobs: []indexBlob{}},
		},
		Tombstones: []tombRecord{{Type: DataBlob, ID: ID{2}, Pack: ID{1}, Deleted: time.Unix(9, 1).UTC()}, {Type: TreeBlob, ID: ID{3}, Pack: ID{1}, Revived: time.Unix(10, 0).UTC()}}}
	b := encodeIndexFile(f)
	got, err := parseIndexFile(b)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(f) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, f)
	}
	var old indexFile // what the version 1 code unmarshals
	if err := json.Unmarshal(b, &old); err != nil || old.Version != 2 {
		t.Fatalf("a version 1 reader sees version %d, err %v", old.Version, err)
	}
	for _, bad := range [][]byte{b[:len(b)-6], append(append([]byte{}, b[:len(b)-2]...), 'A', 'A', '"', '}')} {
		if _, err := parseIndexFile(bad); !errors.Is(err, ErrDamaged) {
			t.Errorf("truncated or extended file: %v, want ErrDamaged", err)
		}
	}
}

// indexView is what an index holds: every copy and whether it is live.
func indexView(r *Repository) map[string]bool {
	out := map[string]bool{}
	r.idx.Load().eachCopy(func(h BlobHandle, pack ID, pb packBlob, dead bool) {
		out[h.String()+"@"+pack.String()] = !dead
	})
	return out
}

// TestRefreshAfterPrune: a session that refreshes its index after another
// process pruned (packs deleted and repacked, index compacted) holds the
// same index as a fresh Open, without loading every file again.
func TestRefreshAfterPrune(t *testing.T) {
	ctx := context.Background()
	clock := NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	be := mem.New()
	be.Now = clock.Now
	r := TestRepositoryWith(t, be, Options{Now: clock.Now, PackSize: 64 << 10})
	var old []*Snapshot
	for i := range 3 {
		old = append(old, TestSnapshot(t, r, "s", clock.Now(), map[string][]byte{"a": randBytes(uint64(40+i), 150<<10), "b": randBytes(7, 30<<10)}))
	}
	keep := TestSnapshot(t, r, "s", clock.Now(), map[string][]byte{"c": randBytes(50, 100<<10), "b": randBytes(7, 30<<10)})
	session := TestOpen(t, be, Options{Now: clock.Now})
	pruner := TestOpen(t, be, Options{Now: clock.Now})
	for _, sn := range old {
		if err := pruner.RemoveSnapshot(ctx, sn.ID); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		clock.Advance(48 * time.Hour)
		res, err := pruner.Prune(ctx, PruneOptions{Grace: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("prune: %+v", *res)
	}
	sameAsFresh := func(what string) {
		t.Helper()
		reloads := session.reloads
		if err := session.refreshIndex(ctx); err != nil {
			t.Fatal(err)
		}
		if session.reloads != reloads {
			t.Errorf("%s: the refresh loaded the whole index again", what)
		}
		fresh := TestOpen(t, be, Options{Now: clock.Now})
		got, want := indexView(session), indexView(fresh)
		if len(got) != len(want) {
			t.Fatalf("%s: refreshed index has %d copies, a fresh Open %d", what, len(got), len(want))
		}
		for k, live := range want {
			if l, ok := got[k]; !ok || l != live {
				t.Errorf("%s: copy %s: refreshed %v/%v, fresh %v", what, k, ok, l, live)
			}
		}
		if _, err := TestRestore(t, session, keep.ID); err != nil {
			t.Fatalf("%s: restore after refresh: %v", what, err)
		}
	}
	sameAsFresh("after prune")
	// a compaction seen half-way: the new files are written, the old ones
	// not yet removed; then they are
	oldFiles, err := session.listIndexNames(ctx)
	if err != nil {
		t.Fatal(err)
	}
	files, err := session.loadIndexFiles(ctx, oldFiles, false)
	if err != nil {
		t.Fatal(err)
	}
	var packs []indexPack
	var tombs []tombRecord
	for _, f := range liveFiles(files) {
		packs = append(packs, f.Packs...)
		tombs = append(tombs, f.Tombstones...)
	}
	if _, err := pruner.writeIndex(ctx, oldFiles, packs, tombs); err != nil {
		t.Fatal(err)
	}
	sameAsFresh("compaction written")
	for _, id := range oldFiles {
		if err := be.Remove(ctx, backend.Handle{Type: backend.IndexFile, Name: id.String()}); err != nil {
			t.Fatal(err)
		}
	}
	sameAsFresh("superseded files removed")
}

// TestIndexBuild: the bulk load sorts and finds every blob of many index
// files, keeps one copy per blob in the array and the others as extra
// copies, and prefers a live copy.
func TestIndexBuild(t *testing.T) {
	ctx := context.Background()
	r, _, hs := benchIndexRepo(t, 300_000)
	// a second copy of every 1000th blob, in another pack, tombstoned in
	// the first pack
	var dup indexPack
	dup.ID = ID{0xee}
	dup.Size = 16 << 20
	var tombs []tombRecord
	firstPack := map[ID]ID{}
	f, err := r.listIndexNames(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range f {
		idx, err := r.loadIndexFile(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range idx.Packs {
			for _, b := range p.Blobs {
				firstPack[b.ID] = p.ID
			}
		}
	}
	for i := 0; i < len(hs); i += 1000 {
		dup.Blobs = append(dup.Blobs, indexBlob{Type: DataBlob, ID: hs[i].ID, Offset: uint32(len(dup.Blobs)) * 300, Length: 300, RawLength: 272})
		tombs = append(tombs, tombRecord{Type: DataBlob, ID: hs[i].ID, Pack: firstPack[hs[i].ID], Deleted: time.Unix(100, 0).UTC()})
	}
	if _, err := r.writeIndex(ctx, nil, []indexPack{dup}, tombs); err != nil {
		t.Fatal(err)
	}
	if err := r.LoadIndex(ctx); err != nil {
		t.Fatal(err)
	}
	x := r.idx.Load()
	if !slices.IsSortedFunc(x.main, cmpEntry) || len(x.main) != len(hs) {
		t.Fatalf("main: %d entries, sorted %v", len(x.main), slices.IsSortedFunc(x.main, cmpEntry))
	}
	for i, h := range hs {
		if !x.has(h) {
			t.Fatalf("blob %d not found", i)
		}
		if i%1000 == 0 {
			cs := r.BlobCopies(DataBlob, h.ID)
			if len(cs) != 2 || cs[0].Pack != dup.ID || cs[0].Tombstoned || !cs[1].Tombstoned {
				t.Fatalf("blob %d: copies %+v, want the live one in the second pack first", i, cs)
			}
		}
	}
}

// TestIndexChunkHostile: every truncation and every single flipped byte
// of a version 2 body either fails with ErrDamaged or decodes to what
// parseIndexFile accepts; never a panic.
func TestIndexChunkHostile(t *testing.T) {
	f := &indexFile{Version: 2, Created: time.Unix(5, 6).UTC(), Supersedes: []ID{{7}},
		Packs:      []indexPack{{ID: ID{1}, Size: 1000, Blobs: []indexBlob{{Type: DataBlob, ID: ID{2}, Offset: 0, Length: 100, RawLength: 72}, {Type: TreeBlob, ID: ID{3}, Offset: 100, Length: 50, RawLength: 900, Compressed: true}}}},
		Tombstones: []tombRecord{{Type: DataBlob, ID: ID{2}, Pack: ID{1}, Deleted: time.Unix(9, 1).UTC()}}}
	env := encodeIndexFile(f)
	body, err := base64.StdEncoding.DecodeString(string(env[len(indexEnvelopeStart) : len(env)-len(indexEnvelopeEnd)]))
	if err != nil {
		t.Fatal(err)
	}
	num := func(ids []ID) []uint32 { return make([]uint32, len(ids)) }
	c, err := decodeIndexChunk(body, num)
	if err != nil || len(c.entries) != 2 || len(c.tombs) != 1 || len(c.supersedes) != 1 {
		t.Fatalf("decode: %+v, %v", c, err)
	}
	for n := range len(body) {
		if _, err := decodeIndexChunk(body[:n], num); !errors.Is(err, ErrDamaged) {
			t.Fatalf("truncated to %d bytes: %v, want ErrDamaged", n, err)
		}
	}
	for i := range body {
		for _, bit := range []byte{1, 0x80} {
			b := bytes.Clone(body)
			b[i] ^= bit
			_, err1 := decodeIndexChunk(b, num)
			_, err2 := parseIndexFile([]byte(indexEnvelopeStart + base64.StdEncoding.EncodeToString(b) + indexEnvelopeEnd))
			if (err1 == nil) != (err2 == nil) {
				t.Fatalf("byte %d: chunk decode %v, file decode %v", i, err1, err2)
			}
			if err1 != nil && !errors.Is(err1, ErrDamaged) {
				t.Fatalf("byte %d: %v, want ErrDamaged", i, err1)
			}
		}
	}
}
