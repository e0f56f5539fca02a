package repository

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/sitevault/sitevault/internal/backend"
	"github.com/sitevault/sitevault/internal/backend/mem"
)

// checkFixture is a repository with two snapshots: A holds files a and
// shared, B holds b and shared; each snapshot's new data is in its own
// packs.
type checkFixture struct {
	be    *mem.Backend
	r     *Repository
	a, b  *Snapshot
	packs map[ID][]ID // snapshot → packs holding blobs only it references
}

func newCheckFixture(tb testing.TB) *checkFixture {
	tb.Helper()
	f := &checkFixture{be: mem.New()}
	f.r = TestRepositoryWith(tb, f.be, Options{})
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	shared := randBytes(10, 200<<10)
	f.a = TestSnapshot(tb, f.r, "site", t0, map[string][]byte{"a": randBytes(11, 600<<10), "shared": shared})
	f.b = TestSnapshot(tb, f.r, "site", t0.Add(time.Hour), map[string][]byte{"b": randBytes(12, 600<<10), "shared": shared})
	return f
}

func (f *checkFixture) packsOf(tb testing.TB) []backend.FileInfo {
	tb.Helper()
	var out []backend.FileInfo
	_ = f.be.List(context.Background(), backend.PackFile, func(fi backend.FileInfo) error { out = append(out, fi); return nil })
	slices.SortFunc(out, func(a, b backend.FileInfo) int { return int(a.Size - b.Size) })
	return out
}

// affected returns the snapshots that reference a blob of the pack's
// first entry.
func (f *checkFixture) affectedByFirstBlob(tb testing.TB, pack ID) []ID {
	tb.Helper()
	x := f.r.idx.Load()
	x.mu.RLock()
	var first BlobHandle
	found := false
	for h, loc := range x.liveMap() {
		if x.packs[loc.pack] == pack && loc.offset == 0 {
			first, found = h, true
		}
	}
	x.mu.RUnlock()
	if !found {
		tb.Fatal("no blob at offset 0")
	}
	return f.snapshotsUsing(tb, first)
}

// affectedByPack returns the snapshots that reference any blob of pack.
func (f *checkFixture) affectedByPack(tb testing.TB, pack ID) []ID {
	tb.Helper()
	x := f.r.idx.Load()
	set := map[ID]bool{}
	for h, loc := range x.liveMap() {
		if x.packs[loc.pack] == pack {
			for _, s := range f.snapshotsUsing(tb, h) {
				set[s] = true
			}
		}
	}
	var out []ID
	for id := range set {
		out = append(out, id)
	}
	return out
}

func (f *checkFixture) snapshotsUsing(tb testing.TB, h BlobHandle) []ID {
	var out []ID
	for _, sn := range []*Snapshot{f.a, f.b} {
		if sn.Tree == h.ID {
			out = append(out, sn.ID)
			continue
		}
		tree, err := f.r.LoadTree(context.Background(), sn.Tree)
		if err != nil {
			tb.Fatal(err)
		}
		for _, n := range tree.Nodes {
			if slices.Contains(n.Content, h.ID) {
				out = append(out, sn.ID)
				break
			}
		}
	}
	slices.SortFunc(out, func(a, b ID) int { return compareID(a, b) })
	return out
}

func compareID(a, b ID) int {
	for i := range a {
		if a[i] != b[i] {
			return int(a[i]) - int(b[i])
		}
	}
	return 0
}

func TestCheck(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name     string
		damage   func(tb testing.TB, f *checkFixture) (wantAffected []ID)
		readData bool
		ok       bool
		kind     string
	}{
		{"clean", func(testing.TB, *checkFixture) []ID { return nil }, false, true, ""},
		{"clean read-data", func(testing.TB, *checkFixture) []ID { return nil }, true, true, ""},
		{"flipped byte read-data", func(tb testing.TB, f *checkFixture) []ID {
			p := f.packsOf(tb)[len(f.packsOf(tb))-1]
			id, _ := ParseID(p.Name)
			want := f.affectedByFirstBlob(tb, id)
			f.be.Corrupt(backend.Handle{Type: backend.PackFile, Name: p.Name}, 20)
			return want
		}, true, false, "blob"},
		{"flipped header byte read-data", func(tb testing.TB, f *checkFixture) []ID {
			p := f.packsOf(tb)[0]
			f.be.Corrupt(backend.Handle{Type: backend.PackFile, Name: p.Name}, int(p.Size)-10)
			return nil
		}, true, false, "pack"},
		{"truncated pack", func(tb testing.TB, f *checkFixture) []ID {
			p := f.packsOf(tb)[len(f.packsOf(tb))-1]
			id, _ := ParseID(p.Name)
			h := backend.Handle{Type: backend.PackFile, Name: p.Name}
			b, _ := loadFile(ctx, f.be, h)
			replaceFile(tb, f.be, h, b[:len(b)-100])
			return f.affectedByPack(tb, id)
		}, false, false, "pack"},
		{"missing pack", func(tb testing.TB, f *checkFixture) []ID {
			p := f.packsOf(tb)[len(f.packsOf(tb))-1]
			id, _ := ParseID(p.Name)
			want := f.affectedByPack(tb, id)
			_ = f.be.Remove(ctx, backend.Handle{Type: backend.PackFile, Name: p.Name})
			return want
		}, false, false, "pack"},
		{"damaged index file", func(tb testing.TB, f *checkFixture) []ID {
			var names []string
			_ = f.be.List(ctx, backend.IndexFile, func(fi backend.FileInfo) error { names = append(names, fi.Name); return nil })
			f.be.Corrupt(backend.Handle{Type: backend.IndexFile, Name: names[0]}, 30)
			return nil // which snapshots lose blobs depends on the file; checked below
		}, false, false, "index"},
		{"damaged snapshot", func(tb testing.TB, f *checkFixture) []ID {
			f.be.Corrupt(backend.Handle{Type: backend.SnapshotFile, Name: f.a.ID.String()}, 5)
			return []ID{f.a.ID}
		}, false, false, "snapshot"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newCheckFixture(t)
			want := tc.damage(t, f)
			r := TestOpen(t, f.be, Options{NoIndex: true}) // Check loads the index itself, damaged or not
			res, err := r.Check(ctx, CheckOptions{ReadData: tc.readData})
			if err != nil {
				t.Fatal(err)
			}
			if res.OK() != tc.ok {
				t.Fatalf("OK = %v, problems: %v", res.OK(), res.Problems)
			}
			if tc.ok {
				if res.Snapshots != 2 || res.Packs == 0 || (tc.readData && res.BytesRead == 0) {
					t.Errorf("counts look wrong: %+v", res)
				}
				return
			}
			var kinds []string
			affected := map[ID]bool{}
			for _, p := range res.Problems {
				kinds = append(kinds, p.Kind)
				for _, s := range p.Snapshots {
					affected[s] = true
				}
				if p.String() == "" || p.Err == nil {
					t.Error("problem without text")
				}
			}
			if !slices.Contains(kinds, tc.kind) {
				t.Errorf("no %q problem in %v", tc.kind, res.Problems)
			}
			for _, id := range want {
				if !affected[id] {
					t.Errorf("snapshot %v not reported as affected: %v", id.Short(), res.Problems)
				}
			}
			if want != nil && len(affected) != len(want) {
				t.Errorf("affected %d snapshots, want %d: %v", len(affected), len(want), res.Problems)
			}
		})
	}
	t.Run("flipped byte is invisible to a structure check", func(t *testing.T) {
		f := newCheckFixture(t)
		p := f.packsOf(t)[0]
		f.be.Corrupt(backend.Handle{Type: backend.PackFile, Name: p.Name}, 20)
		res, err := f.r.Check(ctx, CheckOptions{})
		if err != nil || !res.OK() {
			t.Fatalf("structure check: %v %v", err, res.Problems)
		}
		// but loading that blob fails with ErrDamaged, never wrong data
		id, _ := ParseID(p.Name)
		x := f.r.idx.Load()
		for h, loc := range x.liveMap() {
			if x.packs[loc.pack] == id && loc.offset == 0 {
				if _, err := f.r.LoadBlob(ctx, h.Type, h.ID, nil); !errors.Is(err, ErrDamaged) {
					t.Errorf("LoadBlob of a damaged blob = %v, want ErrDamaged", err)
				}
			}
		}
	})
}
