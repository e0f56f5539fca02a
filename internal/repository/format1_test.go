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
