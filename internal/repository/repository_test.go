package repository

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/sitevault/sitevault/internal/backend"
	"github.com/sitevault/sitevault/internal/backend/mem"
)

func randBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 7))
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8 && i+j < n; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

// compressible returns text-like data.
func compressible(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 9))
	words := []string{"wordpress ", "plugin ", "<div class=\"x\">", "SELECT * FROM wp_posts ", "\n", "lorem ", "ipsum "}
	var b bytes.Buffer
	for b.Len() < n {
		b.WriteString(words[r.IntN(len(words))])
	}
	return b.Bytes()[:n]
}

func TestBlobRoundTrip(t *testing.T) {
	ctx := context.Background()
	r := TestRepository(t)
	cases := []struct {
		name string
		typ  BlobType
		data []byte
	}{
		{"empty", DataBlob, []byte{}},
		{"small", DataBlob, []byte("hello")},
		{"random", DataBlob, randBytes(1, 300<<10)},
		{"text", DataBlob, compressible(2, 300<<10)},
		{"tree-typed", TreeBlob, []byte(`{"nodes":[]}`)},
	}
	ids := make([]ID, len(cases))
	for i, tc := range cases {
		id, known, err := r.SaveBlob(ctx, tc.typ, tc.data)
		if err != nil || known {
			t.Fatalf("%s: SaveBlob = %v, known %v", tc.name, err, known)
		}
		ids[i] = id
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := r.LoadBlob(ctx, tc.typ, ids[i], nil)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tc.data) {
				t.Fatalf("round trip changed the data (%d vs %d bytes)", len(got), len(tc.data))
			}
			if !r.HasBlob(tc.typ, ids[i]) {
				t.Error("HasBlob = false after Flush")
			}
			// and from a second process
			r2 := TestOpen(t, r.Backend(), Options{})
			got, err = r2.LoadBlob(ctx, tc.typ, ids[i], nil)
			if err != nil || !bytes.Equal(got, tc.data) {
				t.Fatalf("reopened: %v", err)
			}
		})
	}
	t.Run("wrong type is not found", func(t *testing.T) {
		if _, err := r.LoadBlob(ctx, TreeBlob, ids[1], nil); !errors.Is(err, ErrBlobNotFound) {
			t.Errorf("err = %v, want ErrBlobNotFound", err)
		}
	})
}

func TestDedup(t *testing.T) {
	ctx := context.Background()
	be := mem.New()
	r := TestRepositoryWith(t, be, Options{})
	data := randBytes(3, 2<<20)
	ids1, n1, err := r.SaveStream(ctx, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	size1 := repoBytes(t, be, backend.PackFile)
	ids2, n2, err := r.SaveStream(ctx, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if n1 != n2 || n1 != int64(len(data)) || len(ids1) != len(ids2) {
		t.Fatalf("sizes %d %d, chunks %d %d", n1, n2, len(ids1), len(ids2))
	}
	for i := range ids1 {
		if ids1[i] != ids2[i] {
			t.Fatalf("chunk %d differs", i)
		}
	}
	if size2 := repoBytes(t, be, backend.PackFile); size2 != size1 {
		t.Errorf("second save grew the packs from %d to %d bytes", size1, size2)
	}
	// another process dedups against the index
	r2 := TestOpen(t, be, Options{})
	for _, id := range ids1 {
		blob, _ := r.LoadBlob(ctx, DataBlob, id, nil)
		if _, known, err := r2.SaveBlob(ctx, DataBlob, blob); err != nil || !known {
			t.Fatalf("reopened SaveBlob known=%v err=%v", known, err)
		}
	}
	var out bytes.Buffer
	if err := r2.WriteContent(ctx, ids1, &out); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), data) {
		t.Error("WriteContent differs from the input")
	}
}

func repoBytes(tb testing.TB, be backend.Backend, typ backend.FileType) int64 {
	tb.Helper()
	var n int64
	if err := be.List(context.Background(), typ, func(fi backend.FileInfo) error { n += fi.Size; return nil }); err != nil {
		tb.Fatal(err)
	}
	return n
}

func TestTreeRoundTrip(t *testing.T) {
	ctx := context.Background()
	r := TestRepository(t)
	sub := ID{1, 2, 3}
	mt := time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.FixedZone("x", 3600))
	tree := &Tree{Nodes: []*Node{
		{Name: "z-last", Type: NodeFile, Mode: 0o644, ModTime: mt, Size: 3, Content: []ID{{9}, {8}}},
		{Name: "new\nline", Type: NodeFile, Mode: 0o600, Inode: 77, Dev: 5},
		{Name: "bad\xff\xfeutf8", Type: NodeSymlink, LinkTarget: "target\x80\n"},
		{Name: "dir", Type: NodeDir, Mode: 0o755 | 1<<31, Subtree: &sub, ChangeTime: mt},
		{Name: "meta", Type: NodeFile, Meta: map[string]string{"k\xff": "v\xfe", "a": "b"}},
		{Name: "meta-ok", Type: NodeFile, Meta: map[string]string{"from": "a", "to": "z"}},
	}}
	id, err := r.SaveTree(ctx, tree)
	if err != nil {
		t.Fatal(err)
	}
	id2, err := r.SaveTree(ctx, &Tree{Nodes: []*Node{tree.Nodes[5], tree.Nodes[4], tree.Nodes[3], tree.Nodes[2], tree.Nodes[1], tree.Nodes[0]}})
	if err != nil || id2 != id {
		t.Fatalf("same tree in another order has another id (%v)", err)
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := r.LoadTree(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Nodes) != len(tree.Nodes) {
		t.Fatalf("%d nodes, want %d", len(got.Nodes), len(tree.Nodes))
	}
	for _, want := range tree.Nodes {
		t.Run(want.Name, func(t *testing.T) {
			n := got.Find(want.Name)
			if n == nil {
				t.Fatalf("node %q lost", want.Name)
			}
			if n.Type != want.Type || n.Mode != want.Mode || n.Size != want.Size || n.LinkTarget != want.LinkTarget ||
				n.Inode != want.Inode || n.Dev != want.Dev || !n.ModTime.Equal(want.ModTime) || !n.ChangeTime.Equal(want.ChangeTime) {
				t.Errorf("got %+v, want %+v", n, want)
			}
			if len(n.Content) != len(want.Content) || (want.Subtree != nil) != (n.Subtree != nil) || len(n.Meta) != len(want.Meta) {
				t.Errorf("content/subtree/meta differ: %+v", n)
			}
			for k, v := range want.Meta {
				if n.Meta[k] != v {
					t.Errorf("meta[%q] = %q, want %q", k, n.Meta[k], v)
				}
			}
		})
	}
	for i := 1; i < len(got.Nodes); i++ {
		if got.Nodes[i-1].Name >= got.Nodes[i].Name {
			t.Error("nodes not sorted by name")
		}
	}
	t.Run("duplicate names rejected", func(t *testing.T) {
		if _, err := r.SaveTree(ctx, &Tree{Nodes: []*Node{{Name: "a"}, {Name: "a"}}}); err == nil {
			t.Error("SaveTree accepted duplicate names")
		}
	})
}

func TestSnapshots(t *testing.T) {
	ctx := context.Background()
	r := TestRepository(t)
	tid, err := r.SaveTree(ctx, &Tree{})
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	var ids []ID
	for i, site := range []string{"a", "b", "a"} {
		sn := &Snapshot{Time: base.Add(time.Duration(i) * time.Hour), Site: site, Tree: tid, Trigger: "manual", Tags: []string{"t"}}
		id, err := r.SaveSnapshot(ctx, sn)
		if err != nil {
			t.Fatal(err)
		}
		if sn.ID != id {
			t.Fatal("SaveSnapshot did not set ID")
		}
		ids = append(ids, id)
	}
	all, err := r.Snapshots(ctx)
	if err != nil || len(all) != 3 || all[0].ID != ids[0] || all[2].ID != ids[2] {
		t.Fatalf("Snapshots = %v, %v", all, err)
	}
	for _, tc := range []struct {
		name, prefix, site string
		want               ID
		wantErr            bool
	}{
		{"latest", "latest", "", ids[2], false},
		{"latest of b", "latest", "b", ids[1], false},
		{"latest of none", "latest", "zzz", ID{}, true},
		{"prefix", ids[1].String()[:8], "", ids[1], false},
		{"full id", ids[0].String(), "", ids[0], false},
		{"too short", "ab", "", ID{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sn, err := r.FindSnapshot(ctx, tc.prefix, tc.site)
			if tc.wantErr {
				if err == nil {
					t.Errorf("found %v", sn.ID)
				}
				return
			}
			if err != nil || sn.ID != tc.want {
				t.Errorf("got %v, %v; want %v", sn, err, tc.want)
			}
		})
	}
	got, err := r.LoadSnapshot(ctx, ids[1])
	if err != nil || got.Site != "b" || got.Tree != tid || !got.Time.Equal(base.Add(time.Hour)) || got.Trigger != "manual" {
		t.Fatalf("LoadSnapshot = %+v, %v", got, err)
	}
	if err := r.RemoveSnapshot(ctx, ids[1]); err != nil {
		t.Fatal(err)
	}
	if _, err := r.LoadSnapshot(ctx, ids[1]); !errors.Is(err, backend.ErrNotExist) {
		t.Errorf("removed snapshot loads: %v", err)
	}
}

func TestCompressionChoice(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name       string
		data       []byte
		compressed bool
	}{
		{"text is compressed", compressible(50, 512<<10), true},
		{"random is stored raw", randBytes(51, 512<<10), false},
		{"tiny is stored raw", []byte("abc"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			be := mem.New()
			r := TestRepositoryWith(t, be, Options{})
			id, _, err := r.SaveBlob(ctx, DataBlob, tc.data)
			if err != nil {
				t.Fatal(err)
			}
			if err := r.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			loc, _, ok := r.idx.Load().lookup(BlobHandle{ID: id, Type: DataBlob})
			if !ok {
				t.Fatal("not indexed")
			}
			if got := loc.meta&metaCompressed != 0; got != tc.compressed {
				t.Errorf("compressed = %v, want %v", got, tc.compressed)
			}
			if !tc.compressed && int(loc.length) != len(tc.data)+sealOverhead {
				t.Errorf("raw blob stored in %d bytes for %d", loc.length, len(tc.data))
			}
			if tc.compressed && int(loc.length) > len(tc.data)/2 {
				t.Errorf("text compressed to only %d of %d bytes", loc.length, len(tc.data))
			}
		})
	}
}

// TestSnapshotsCache: a listing decodes only new snapshot files, hands
// out copies a caller may change, and forgets removed ones.
func TestSnapshotsCache(t *testing.T) {
	ctx := context.Background()
	r := TestRepository(t)
	tid, err := r.SaveTree(ctx, &Tree{})
	if err != nil {
		t.Fatal(err)
	}
	save := func(site string) ID {
		id, err := r.SaveSnapshot(ctx, &Snapshot{Time: time.Now(), Site: site, Tree: tid, Meta: map[string]string{"k": "v"},
			Summary: &Summary{Skipped: []string{"x"}}})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	a := save("a")
	first, err := r.Snapshots(ctx)
	if err != nil || len(first) != 1 {
		t.Fatalf("%v %v", first, err)
	}
	first[0].Meta["k"] = "changed"
	first[0].Summary.Skipped[0] = "changed"
	b := save("b")
	second, err := r.Snapshots(ctx)
	if err != nil || len(second) != 2 {
		t.Fatalf("%v %v", second, err)
	}
	for _, sn := range second {
		if sn.Meta["k"] != "v" || sn.Summary.Skipped[0] != "x" {
			t.Fatalf("a caller's change reached the cache: %+v", sn)
		}
	}
	if err := r.RemoveSnapshot(ctx, a); err != nil {
		t.Fatal(err)
	}
	third, _ := r.Snapshots(ctx)
	if len(third) != 1 || third[0].ID != b {
		t.Fatalf("after removing %v: %v", a, third)
	}
	r.snapsMu.Lock()
	n := len(r.snaps)
	r.snapsMu.Unlock()
	if n != 1 {
		t.Fatalf("the cache holds %d snapshots, want the one left", n)
	}
}
