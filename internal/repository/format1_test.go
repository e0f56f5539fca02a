package repository

import (
	"context"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"testing"

	"github.com/sitevault/sitevault/internal/backend"
	"github.com/sitevault/sitevault/internal/backend/local"
)

// format1Password opens testdata/format1 (see its README).
const format1Password = "compat-v1-password"

// openFormat1 opens a copy of testdata/format1/repo, a repository written
// before key-slot metadata and sealed files were bound (format 1).
func openFormat1(tb testing.TB) (*Repository, backend.Backend) {
	tb.Helper()
	dir := filepath.Join(tb.TempDir(), "repo")
	if err := os.CopyFS(dir, os.DirFS("testdata/format1/repo")); err != nil {
		tb.Fatal(err)
	}
	be, err := local.Open(context.Background(), dir)
	if err != nil {
		tb.Fatal(err)
	}
	r, err := Open(context.Background(), be, format1Password, Options{})
	if err != nil {
		tb.Fatalf("open format 1 repository: %v", err)
	}
	tb.Cleanup(func() { _ = r.Close() })
	return r, be
}

// flattenTree lists every node under tree as path → "d", "l:target" or
// "f:content".
func flattenTree(tb testing.TB, r *Repository, id ID, prefix string, out map[string]string) {
	tb.Helper()
	ctx := context.Background()
	t, err := r.LoadTree(ctx, id)
	if err != nil {
		tb.Fatalf("load tree %s: %v", prefix, err)
	}
	for _, n := range t.Nodes {
		p := path.Join(prefix, n.Name)
		switch n.Type {
		case NodeDir:
			out[p] = "d"
			flattenTree(tb, r, *n.Subtree, p, out)
		case NodeSymlink:
			out[p] = "l:" + n.LinkTarget
		default:
			var buf bytesBuffer
			if err := r.WriteContent(ctx, n.Content, &buf); err != nil {
				tb.Fatalf("restore %s: %v", p, err)
			}
			out[p] = "f:" + string(buf)
		}
	}
}

type bytesBuffer []byte

func (b *bytesBuffer) Write(p []byte) (int, error) { *b = append(*b, p...); return len(p), nil }

func flattenDir(tb testing.TB, root string) map[string]string {
	tb.Helper()
	out := make(map[string]string)
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			t, err := os.Readlink(p)
			out[rel] = "l:" + t
			return err
		case d.IsDir():
			out[rel] = "d"
		default:
			b, err := os.ReadFile(p)
			out[rel] = "f:" + string(b)
			return err
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// TestFormat1KeysAndSealing opens the format 1 fixture (key slot and sealed
// files without associated data) and restores its newest point byte for byte.
func TestFormat1KeysAndSealing(t *testing.T) {
	ctx := context.Background()
	r, _ := openFormat1(t)
	keys, err := r.Keys(ctx)
	if err != nil || len(keys) != 1 || !keys[0].Current {
		t.Fatalf("keys = %+v, %v; want the one current slot", keys, err)
	}
	sns, err := r.Snapshots(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(sns) != 2 {
		t.Fatalf("%d snapshots, want 2", len(sns))
	}
	sn, err := r.FindSnapshot(ctx, "67a27c30", "")
	if err != nil {
		t.Fatal(err)
	}
	got := make(map[string]string)
	flattenTree(t, r, sn.Tree, "", got)
	want := flattenDir(t, "testdata/format1/src")
	if len(got) != len(want) {
		t.Errorf("restored %d entries, want %d: %v", len(got), len(want), keysOf(got))
	}
	for p, w := range want {
		if got[p] != w {
			t.Errorf("%s: restored %.40q, want %.40q", p, got[p], w)
		}
	}
	res, err := r.Check(ctx, CheckOptions{ReadData: true})
	if err != nil || len(res.Problems) != 0 {
		t.Errorf("check: %+v, %v", res, err)
	}
}

func keysOf(m map[string]string) []string {
	var s []string
	for k := range m {
		s = append(s, k)
	}
	return s
}

// TestFormat1StaysFormat1: this sitevault writes into a format 1
// repository in format 1 (no associated data, version 1 key slots), so an
// older sitevault still reads everything in it.
func TestFormat1StaysFormat1(t *testing.T) {
	ctx := context.Background()
	r, be := openFormat1(t)
	files := map[string][]byte{"new": compressible(3, 100<<10)}
	sn := TestSnapshot(t, r, "compat", r.now(), files)
	k, err := r.AddKey(ctx, "another", "laptop")
	if err != nil {
		t.Fatal(err)
	}
	cf, err := loadConfigHeader(ctx, be)
	if err != nil || cf.Version != 1 {
		t.Fatalf("config version %v, %v; want 1", cf, err)
	}
	b, err := loadFile(ctx, be, backend.Handle{Type: backend.KeyFile, Name: k.ID})
	if err != nil {
		t.Fatal(err)
	}
	kf, err := parseKeyFile(b)
	if err != nil || kf.Version != 1 || kf.MetaMAC != nil {
		t.Fatalf("new key slot: %+v, %v; want version 1", kf, err)
	}
	// every index and snapshot file opens without associated data, as
	// format 1 readers open them
	old, err := newCrypter(r.mk, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, ft := range []backend.FileType{backend.IndexFile, backend.SnapshotFile} {
		for _, name := range listNames(t, be, ft) {
			b, err := loadFile(ctx, be, backend.Handle{Type: ft, Name: name})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := old.open(nil, b); err != nil {
				t.Errorf("%s/%s does not open as format 1: %v", ft, name, err)
			}
		}
	}
	r2, err := Open(ctx, be, "another", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	mustRestore(t, r2, sn, files)
}
