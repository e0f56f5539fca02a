package restorer_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sitevault/sitevault/internal/fsys"
	"github.com/sitevault/sitevault/internal/repository"
	"github.com/sitevault/sitevault/internal/restorer"
)

type testRepo interface {
	restorer.Repo
	SaveStream(ctx context.Context, rd io.Reader) ([]repository.ID, int64, error)
	SaveTree(ctx context.Context, t *repository.Tree) (repository.ID, error)
	Flush(ctx context.Context) error
}

func newRepo(tb testing.TB) testRepo {
	tb.Helper()
	return repository.TestRepository(tb)
}

var mtime = time.Date(2023, 4, 5, 6, 7, 8, 900, time.UTC)

// tn describes a node of a tree a test stores.
type tn struct {
	name     string
	data     string // files
	target   string // symlinks: non-empty makes a link
	children []tn   // dirs: non-nil makes a directory
	mode     fs.FileMode
}

func dir(name string, children ...tn) tn {
	return tn{name: name, children: append([]tn{}, children...)}
}
func file(name, data string) tn   { return tn{name: name, data: data} }
func link(name, target string) tn { return tn{name: name, target: target} }

// saveTree stores nodes as a tree, in the order given (crafted trees may
// break the rules on purpose).
func saveTree(tb testing.TB, repo testRepo, nodes []tn) repository.ID {
	tb.Helper()
	ctx := context.Background()
	t := &repository.Tree{}
	for _, n := range nodes {
		node := &repository.Node{Name: n.name, ModTime: mtime, Mode: uint32(n.mode)}
		switch {
		case n.children != nil:
			id := saveTree(tb, repo, n.children)
			node.Type, node.Subtree = repository.NodeDir, &id
			if n.mode == 0 {
				node.Mode = uint32(fs.ModeDir | 0o755)
			}
		case n.target != "":
			node.Type, node.LinkTarget = repository.NodeSymlink, n.target
			node.Mode = uint32(fs.ModeSymlink | 0o777)
		default:
			ids, size, err := repo.SaveStream(ctx, strings.NewReader(n.data))
			if err != nil {
				tb.Fatal(err)
			}
			node.Type, node.Content, node.Size = repository.NodeFile, ids, size
			if n.mode == 0 {
				node.Mode = 0o644
			}
		}
		t.Nodes = append(t.Nodes, node)
	}
	id, err := repo.SaveTree(ctx, t)
	if err != nil {
		tb.Fatal(err)
	}
	if err := repo.Flush(ctx); err != nil {
		tb.Fatal(err)
	}
	return id
}

func newLocal(tb testing.TB, dir string) *fsys.Local {
	tb.Helper()
	l, err := fsys.NewLocal(dir)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { l.Close() })
	return l
}

func restore(tb testing.TB, repo restorer.Repo, f fsys.FS, id repository.ID, opts restorer.Options) *restorer.Report {
	tb.Helper()
	rep, err := restorer.New(repo, f, opts).Restore(context.Background(), id, "")
	if err != nil {
		tb.Fatalf("Restore: %v", err)
	}
	return rep
}

func must(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}

func writeFile(tb testing.TB, p, data string) {
	tb.Helper()
	must(tb, os.MkdirAll(filepath.Dir(p), 0o755))
	must(tb, os.WriteFile(p, []byte(data), 0o644))
}

func readFile(tb testing.TB, p string) string {
	tb.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// listAll returns every path under dir, slash-separated.
func listAll(tb testing.TB, dir string) []string {
	tb.Helper()
	var out []string
	must(tb, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel != "." {
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	}))
	return out
}

func noTemps(tb testing.TB, dir string) {
	tb.Helper()
	for _, p := range listAll(tb, dir) {
		if strings.Contains(p, ".sitevault-tmp-") {
			tb.Errorf("temporary file left behind: %q", p)
		}
	}
}

func skippedPaths(rep *restorer.Report) []string {
	var out []string
	for _, s := range rep.Skipped {
		out = append(out, s.Path)
	}
	slices.Sort(out)
	return out
}

func TestRestoreKeepsAndOverwrites(t *testing.T) {
	ctx := context.Background()
	repo := newRepo(t)
	outside := t.TempDir()
	writeFile(t, filepath.Join(outside, "target"), "outside, must stay")

	dst := t.TempDir()
	writeFile(t, filepath.Join(dst, "extra.txt"), "not in the restore point")
	writeFile(t, filepath.Join(dst, "sub/extra"), "kept too")
	writeFile(t, filepath.Join(dst, "a.txt"), "an older, longer version of a.txt")
	must(t, os.Symlink(filepath.Join(outside, "target"), filepath.Join(dst, "was-link")))
	must(t, os.Symlink("old-target", filepath.Join(dst, "lnk")))

	id := saveTree(t, repo, []tn{
		file("a.txt", "new"),
		link("lnk", "new-target"),
		dir("sub", file("b.txt", "b")),
		file("was-link", "a file now"),
	})
	rep := restore(t, repo, newLocal(t, dst), id, restorer.Options{})
	if !rep.OK() || rep.FilesWritten != 3 || rep.Symlinks != 1 || rep.BytesWritten != 14 {
		t.Errorf("report %+v", rep)
	}
	tests := []struct{ path, want string }{
		{"extra.txt", "not in the restore point"},
		{"sub/extra", "kept too"},
		{"a.txt", "new"},
		{"sub/b.txt", "b"},
		{"was-link", "a file now"},
	}
	for _, tt := range tests {
		if got := readFile(t, filepath.Join(dst, tt.path)); got != tt.want {
			t.Errorf("%s = %q, want %q", tt.path, got, tt.want)
		}
	}
	if fi, err := os.Lstat(filepath.Join(dst, "was-link")); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("was-link: %v %v, want a regular file", fi.Mode(), err)
	}
	if got, err := os.Readlink(filepath.Join(dst, "lnk")); err != nil || got != "new-target" {
		t.Errorf("lnk -> %q %v", got, err)
	}
	if got := readFile(t, filepath.Join(outside, "target")); got != "outside, must stay" {
		t.Errorf("outside file written through a link: %q", got)
	}
	noTemps(t, dst)
	diffs, err := restorer.Verify(ctx, repo, newLocal(t, dst), id, "", nil)
	if err != nil || len(diffs) > 0 {
		t.Errorf("Verify: %q %v", diffs, err)
	}
}

func TestRestoreRefusesLinkedParents(t *testing.T) {
	repo := newRepo(t)
	base := t.TempDir()
	outside := filepath.Join(base, "outside")
	dst := filepath.Join(base, "site")
	must(t, os.MkdirAll(outside, 0o755))
	must(t, os.MkdirAll(filepath.Join(dst, "real"), 0o755))
	must(t, os.Symlink(outside, filepath.Join(dst, "wp-content")))
	must(t, os.Symlink("../outside", filepath.Join(dst, "relative")))
	must(t, os.Symlink("real", filepath.Join(dst, "inside")))
	writeFile(t, filepath.Join(dst, "file"), "a file")

	id := saveTree(t, repo, []tn{
		dir("file", file("x", "x")), // a file where the restore point has a directory
		dir("inside", file("x", "x")),
		dir("relative", file("x", "x")),
		file("real", "a file where a directory is"),
		file("site.txt", "ok"),
		dir("wp-content", file("evil.php", "<?php"), dir("sub", file("x", "x"))),
	})
	rep := restore(t, repo, newLocal(t, dst), id, restorer.Options{})
	want := []string{"file", "inside", "real", "relative", "wp-content"}
	if got := skippedPaths(rep); !slices.Equal(got, want) {
		t.Errorf("skipped %q, want %q (%v)", got, want, rep.Skipped)
	}
	if rep.FilesWritten != 1 || readFile(t, filepath.Join(dst, "site.txt")) != "ok" {
		t.Errorf("files written %d", rep.FilesWritten)
	}
	if got := listAll(t, outside); len(got) != 0 {
		t.Errorf("written outside the site: %q", got)
	}
	if got := listAll(t, filepath.Join(dst, "real")); len(got) != 0 {
		t.Errorf("written through the link inside the site: %q", got)
	}
	if got := listAll(t, base); len(got) != 8 {
		t.Errorf("base holds %q", got)
	}
}

// craftedRepo holds trees the repository would refuse to save, as a
// crafted or damaged restore point may hold them; content goes to the
// real repository.
type craftedRepo struct {
	testRepo
	mu    sync.Mutex
	trees map[repository.ID]*repository.Tree
}

func (r *craftedRepo) SaveTree(ctx context.Context, t *repository.Tree) (repository.ID, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	id := repository.ID(sha256.Sum256([]byte(fmt.Sprint("crafted", len(r.trees)))))
	r.trees[id] = t
	return id, nil
}

func (r *craftedRepo) LoadTree(ctx context.Context, id repository.ID) (*repository.Tree, error) {
	r.mu.Lock()
	t, ok := r.trees[id]
	r.mu.Unlock()
	if !ok {
		return r.testRepo.LoadTree(ctx, id)
	}
	return t, nil
}

func TestRestoreCraftedNames(t *testing.T) {
	bad := []tn{
		file("", "empty name"),
		file(".", "dot"),
		file("..", "dotdot"),
		dir("..", file("escape.txt", "escaped")),
		file("../escape.txt", "escaped"),
		file("a/b", "slash"),
		file("/abs", "absolute"),
		file("nul\x00byte", "nul"),
		link("...", "is a fine name, but the target holds NUL\x00"),
	}
	for _, b := range bad {
		t.Run(fmt.Sprintf("%q", b.name), func(t *testing.T) {
			repo := &craftedRepo{testRepo: newRepo(t), trees: map[repository.ID]*repository.Tree{}}
			base := t.TempDir()
			dst := filepath.Join(base, "site", "root")
			must(t, os.MkdirAll(dst, 0o755))
			id := saveTree(t, repo, []tn{b, file("ok", "ok"), file("ok", "duplicate")})
			rep := restore(t, repo, newLocal(t, dst), id, restorer.Options{})
			if len(rep.Skipped) != 2 {
				t.Errorf("skipped %v, want the bad name and the duplicate", rep.Skipped)
			}
			if got := listAll(t, base); !slices.Equal(got, []string{"site", "site/root", "site/root/ok"}) {
				t.Errorf("file system holds %q", got)
			}
			if got := readFile(t, filepath.Join(dst, "ok")); got != "ok" {
				t.Errorf("ok = %q", got)
			}
		})
	}
}

func TestRestoreFilter(t *testing.T) {
	tree := []tn{
		file("index.php", "core"),
		dir("wp-content",
			dir("plugins", file("p.php", "plugin")),
			dir("themes", dir("t", file("style.css", "css")), file("index.php", "silence")),
			dir("themes-old", file("x", "x")),
		),
		file("wp-config.php", "config"),
	}
	tests := []struct {
		name   string
		filter restorer.Filter
		want   []string
	}{
		{"everything", nil, []string{"index.php", "wp-config.php", "wp-content", "wp-content/plugins", "wp-content/plugins/p.php",
			"wp-content/themes", "wp-content/themes-old", "wp-content/themes-old/x", "wp-content/themes/index.php",
			"wp-content/themes/t", "wp-content/themes/t/style.css"}},
		{"themes item and one file", restorer.Paths("wp-content/themes", "/wp-config.php"), []string{"wp-config.php", "wp-content",
			"wp-content/themes", "wp-content/themes/index.php", "wp-content/themes/t", "wp-content/themes/t/style.css"}},
		{"single deep file", restorer.Paths("wp-content/themes/t/style.css"), []string{"wp-content", "wp-content/themes",
			"wp-content/themes/t", "wp-content/themes/t/style.css"}},
		{"custom: files only at the top", func(p string, n *repository.Node) bool {
			return n.Type == repository.NodeFile && !strings.Contains(p, "/")
		},
			[]string{"index.php", "wp-config.php"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			repo := newRepo(t)
			id := saveTree(t, repo, tree)
			dst := t.TempDir()
			rep := restore(t, repo, newLocal(t, dst), id, restorer.Options{Filter: tt.filter})
			if !rep.OK() {
				t.Errorf("report %+v", rep)
			}
			got := listAll(t, dst)
			slices.Sort(got)
			if !slices.Equal(got, tt.want) {
				t.Errorf("restored %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestRestoreTargetDir(t *testing.T) {
	ctx := context.Background()
	repo := newRepo(t)
	id := saveTree(t, repo, []tn{file("f", "f")})
	outside := t.TempDir()
	dst := t.TempDir()
	must(t, os.Symlink(outside, filepath.Join(dst, "linked")))
	l := newLocal(t, dst)

	tests := []struct {
		target  string
		wantErr bool
	}{
		{"new/sub", false},
		{"./new/../other", false},
		{"linked", true},
		{"linked/sub", true},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			_, err := restorer.New(repo, l, restorer.Options{}).Restore(ctx, id, tt.target)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Restore into %q: %v, want error %v", tt.target, err, tt.wantErr)
			}
		})
	}
	if got := readFile(t, filepath.Join(dst, "new/sub/f")); got != "f" {
		t.Errorf("new/sub/f = %q", got)
	}
	if got := readFile(t, filepath.Join(dst, "other/f")); got != "f" {
		t.Errorf("other/f = %q", got)
	}
	if got := listAll(t, outside); len(got) != 0 {
		t.Errorf("written outside: %q", got)
	}
}

func TestRestoreModesAndTimes(t *testing.T) {
	repo := newRepo(t)
	id := saveTree(t, repo, []tn{
		{name: "ro", mode: fs.ModeDir | 0o555, children: []tn{file("inside", "x")}},
		{name: "script", data: "#!/bin/sh", mode: 0o750},
		{name: "private", data: "secret", mode: 0o600},
		{name: "setgid", mode: fs.ModeDir | fs.ModeSetgid | 0o775, children: []tn{}},
	})
	dst := t.TempDir()
	restore(t, repo, newLocal(t, dst), id, restorer.Options{})
	tests := []struct {
		path string
		mode fs.FileMode
	}{
		{"ro", fs.ModeDir | 0o555},
		{"ro/inside", 0o644},
		{"script", 0o750},
		{"private", 0o600},
		{"setgid", fs.ModeDir | fs.ModeSetgid | 0o775},
	}
	for _, tt := range tests {
		fi, err := os.Lstat(filepath.Join(dst, tt.path))
		must(t, err)
		if fi.Mode() != tt.mode || !fi.ModTime().Equal(mtime) {
			t.Errorf("%s: %v %v, want %v %v", tt.path, fi.Mode(), fi.ModTime(), tt.mode, mtime)
		}
	}
	diffs, err := restorer.Verify(context.Background(), repo, newLocal(t, dst), id, "", nil)
	if err != nil || len(diffs) != 0 {
		t.Errorf("Verify: %q %v", diffs, err)
	}
}

// TestRestoreAgainSetsDirectoryAttributes: a second restore into the
// folder the first one wrote sets each directory's mode and mtime again
// where they differ: a directory a file was rewritten in (its mtime moved)
// and one whose mode was changed, and leaves the rest as they are.
func TestRestoreAgainSetsDirectoryAttributes(t *testing.T) {
	repo := newRepo(t)
	id := saveTree(t, repo, []tn{
		{name: "a", mode: fs.ModeDir | 0o755, children: []tn{file("f", "one")}},
		{name: "b", mode: fs.ModeDir | 0o750, children: []tn{file("g", "two")}},
		{name: "c", mode: fs.ModeDir | 0o755, children: []tn{file("h", "three")}},
	})
	dst := t.TempDir()
	restore(t, repo, newLocal(t, dst), id, restorer.Options{})
	// a: a file changed (the directory's mtime moves when it is rewritten);
	// b: its mode changed; c: untouched.
	must(t, os.WriteFile(filepath.Join(dst, "a", "f"), []byte("ONE, changed"), 0o644))
	must(t, os.Chmod(filepath.Join(dst, "b"), 0o700))
	rep := restore(t, repo, newLocal(t, dst), id, restorer.Options{})
	if rep.FilesWritten != 1 {
		t.Errorf("files written: %d, want 1 (a/f)", rep.FilesWritten)
	}
	for _, tt := range []struct {
		path string
		mode fs.FileMode
	}{{"a", fs.ModeDir | 0o755}, {"b", fs.ModeDir | 0o750}, {"c", fs.ModeDir | 0o755}} {
		fi, err := os.Lstat(filepath.Join(dst, tt.path))
		must(t, err)
		if fi.Mode() != tt.mode || !fi.ModTime().Equal(mtime) {
			t.Errorf("%s: %v %v, want %v %v", tt.path, fi.Mode(), fi.ModTime(), tt.mode, mtime)
		}
	}
	diffs, err := restorer.Verify(context.Background(), repo, newLocal(t, dst), id, "", nil)
	if err != nil || len(diffs) != 0 {
		t.Errorf("Verify: %q %v", diffs, err)
	}
}

// TestRestoreDryRun: a dry run decides as a restore does and writes
// nothing: a right file is left, a changed one would be replaced, a missing
// one and everything in a missing folder would be new; a folder where the
// point has a file is refused. The folder is byte for byte, mode and time
// as it was; a real restore then does what the dry run said.
func TestRestoreDryRun(t *testing.T) {
	repo := newRepo(t)
	id := saveTree(t, repo, []tn{
		file("right", "same"),
		file("changed", "the point's"),
		file("missing", "new"),
		dir("newdir", file("a", "1"), dir("deeper", file("b", "22")), link("l", "a")),
		file("isdir", "a file in the point"),
		link("link", "right"),
	})
	dst := t.TempDir()
	restore(t, repo, newLocal(t, dst), id, restorer.Options{})
	must(t, os.WriteFile(filepath.Join(dst, "changed"), []byte("the site's"), 0o644))
	must(t, os.Remove(filepath.Join(dst, "missing")))
	must(t, os.RemoveAll(filepath.Join(dst, "newdir")))
	must(t, os.Remove(filepath.Join(dst, "isdir")))
	must(t, os.Mkdir(filepath.Join(dst, "isdir"), 0o755))
	must(t, os.Chmod(filepath.Join(dst, "right"), 0o600))
	before := snapshotDir(t, dst)

	rep := restore(t, repo, newLocal(t, dst), id, restorer.Options{DryRun: true})
	if after := snapshotDir(t, dst); !maps.Equal(before, after) {
		t.Fatalf("a dry run changed the folder:\nbefore %v\nafter  %v", before, after)
	}
	var got []string
	for _, p := range rep.Planned {
		got = append(got, fmt.Sprintf("%s replace=%v link=%v", p.Path, p.Replace, p.Link))
	}
	want := []string{
		"changed replace=true link=false",
		"link replace=true link=true",
		"missing replace=false link=false",
		"newdir/a replace=false link=false",
		"newdir/deeper/b replace=false link=false",
		"newdir/l replace=false link=true",
	}
	if !slices.Equal(got, want) {
		t.Errorf("planned:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if rep.FilesWritten != 4 || rep.FilesReplaced != 1 || rep.Symlinks != 2 || rep.DirsCreated != 2 ||
		rep.FilesUnchanged != 1 || rep.AttrsFixed != 1 || len(rep.Skipped) != 1 || rep.Skipped[0].Path != "isdir" {
		t.Errorf("report %+v", rep)
	}
	if rep.BytesWritten != int64(len("the point's")+len("new")+len("1")+len("22")) {
		t.Errorf("bytes to write: %d", rep.BytesWritten)
	}
	// The real restore writes what the dry run planned.
	real := restore(t, repo, newLocal(t, dst), id, restorer.Options{})
	if real.FilesWritten != rep.FilesWritten || real.FilesReplaced != rep.FilesReplaced || real.DirsCreated != rep.DirsCreated ||
		real.FilesUnchanged != rep.FilesUnchanged || real.AttrsFixed != rep.AttrsFixed {
		t.Errorf("restore %+v after dry run %+v", real, rep)
	}
}

// TestRestoreDryRunIntoMissingFolder: a dry run into a folder that does not
// exist plans everything as new and creates nothing.
func TestRestoreDryRunIntoMissingFolder(t *testing.T) {
	repo := newRepo(t)
	id := saveTree(t, repo, []tn{file("f", "x"), dir("d", file("g", "yy"))})
	root := t.TempDir()
	r := restorer.New(repo, newLocal(t, root), restorer.Options{DryRun: true})
	rep, err := r.Restore(context.Background(), id, "not/there")
	if err != nil {
		t.Fatal(err)
	}
	if rep.FilesWritten != 2 || rep.FilesReplaced != 0 || rep.DirsCreated != 2 || len(rep.Planned) != 2 {
		t.Errorf("report %+v", rep)
	}
	if ents, _ := os.ReadDir(root); len(ents) != 0 {
		t.Errorf("a dry run created %v", ents)
	}
}

// snapshotDir maps every path under dir to its type, mode, size, mtime
// and content.
func snapshotDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	must(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		v := fmt.Sprintf("%v %d %v", fi.Mode(), fi.Size(), fi.ModTime().UnixNano())
		if fi.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			v += " " + string(b)
		}
		out[p] = v
		return nil
	}))
	return out
}

// failingRepo breaks WriteContent halfway through a file.
type failingRepo struct {
	testRepo
	fail   string // content of the file to fail on
	err    error
	before func()
}

func (r *failingRepo) WriteContent(ctx context.Context, ids []repository.ID, w io.Writer) error {
	var buf bytes.Buffer
	if err := r.testRepo.WriteContent(ctx, ids, &buf); err != nil {
		return err
	}
	if buf.String() != r.fail {
		_, err := w.Write(buf.Bytes())
		return err
	}
	if _, err := w.Write(buf.Bytes()[:buf.Len()/2]); err != nil {
		return err
	}
	if r.before != nil {
		r.before()
	}
	return r.err
}

// fullFS fails every write, like a full disk.
type fullFS struct{ fsys.FS }

func (f fullFS) CreateTemp(ctx context.Context, dir, pattern string) (fsys.WFile, error) {
	w, err := f.FS.CreateTemp(ctx, dir, pattern)
	if err != nil {
		return nil, err
	}
	return fullFile{w}, nil
}

type fullFile struct{ fsys.WFile }

func (fullFile) Write([]byte) (int, error) { return 0, errors.New("no space left on device") }

func TestRestoreFailuresLeaveNoTemps(t *testing.T) {
	tree := []tn{file("a", "aaaa"), dir("d", file("b", "the file that fails"), file("c", "cccc"))}
	errRepo := errors.New("pack damaged")
	tests := []struct {
		name      string
		repo      func(testRepo, context.CancelFunc) restorer.Repo
		fs        func(fsys.FS) fsys.FS
		wantErr   error // of Restore
		wantPathE bool  // a PathError for d/b in the report
	}{
		{"repository fails", func(r testRepo, _ context.CancelFunc) restorer.Repo {
			return &failingRepo{testRepo: r, fail: "the file that fails", err: errRepo}
		}, nil, errRepo, false},
		{"cancelled while writing", func(r testRepo, cancel context.CancelFunc) restorer.Repo {
			return &failingRepo{testRepo: r, fail: "the file that fails", err: context.Canceled, before: cancel}
		}, nil, context.Canceled, false},
		{"disk full", nil, func(f fsys.FS) fsys.FS { return fullFS{f} }, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			base := newRepo(t)
			id := saveTree(t, base, tree)
			var repo restorer.Repo = base
			if tt.repo != nil {
				repo = tt.repo(base, cancel)
			}
			dst := t.TempDir()
			var f fsys.FS = newLocal(t, dst)
			if tt.fs != nil {
				f = tt.fs(f)
			}
			rep, err := restorer.New(repo, f, restorer.Options{Workers: 1}).Restore(ctx, id, "")
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Restore: %v, want %v", err, tt.wantErr)
			}
			if tt.wantPathE && (rep == nil || len(rep.Errors) != 3) {
				t.Errorf("report %+v, want an error for every file", rep)
			}
			noTemps(t, dst)
			if _, err := os.Stat(filepath.Join(dst, "d/b")); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("d/b exists after a failed write: %v", err)
			}
		})
	}
}

func TestVerifyFindsDifferences(t *testing.T) {
	ctx := context.Background()
	repo := newRepo(t)
	id := saveTree(t, repo, []tn{file("a", "aaaa"), file("b", "bbbb"), link("l", "a"), dir("d", file("c", "c"))})
	dst := t.TempDir()
	restore(t, repo, newLocal(t, dst), id, restorer.Options{})
	must(t, os.WriteFile(filepath.Join(dst, "a"), []byte("AAAA"), 0o644))
	must(t, os.Chtimes(filepath.Join(dst, "a"), mtime, mtime))
	must(t, os.Remove(filepath.Join(dst, "b")))
	must(t, os.Remove(filepath.Join(dst, "l")))
	must(t, os.Symlink("b", filepath.Join(dst, "l")))
	must(t, os.Chmod(filepath.Join(dst, "d/c"), 0o600))
	diffs, err := restorer.Verify(ctx, repo, newLocal(t, dst), id, "", nil)
	must(t, err)
	want := []string{`"a": content differs`, `"b": missing`, `"d/c": mode -rw-------, want -rw-r--r--`, `"l": link target "b", want "a"`}
	slices.Sort(diffs)
	if !slices.Equal(diffs, want) {
		t.Errorf("diffs %q\nwant %q", diffs, want)
	}
}

func BenchmarkRestorer(b *testing.B) {
	repo := newRepo(b)
	var dirs []tn
	var total int64
	for d := range 20 {
		var files []tn
		for f := range 100 {
			data := strings.Repeat(fmt.Sprintf("<?php // plugin %d file %d\n", d, f), 20+f)
			files = append(files, file(fmt.Sprintf("f%03d.php", f), data))
			total += int64(len(data))
		}
		dirs = append(dirs, dir(fmt.Sprintf("p%02d", d), files...))
	}
	big := strings.Repeat("0123456789abcdef", 1<<20) // 16 MiB
	dirs = append(dirs, file("big", big))
	total += int64(len(big))
	id := saveTree(b, repo, []tn{dir("plugins", dirs...)})
	b.SetBytes(total)
	for b.Loop() {
		restore(b, repo, newLocal(b, b.TempDir()), id, restorer.Options{})
	}
}

// swapFS replaces a directory with a link to another one inside the root
// just before the restore opens it: between its Lstat and its opening.
type swapFS struct {
	*fsys.Local
	dir  string
	swap func()
}

func (s swapFS) OpenDir(ctx context.Context, dir string) (fsys.Dir, error) {
	if dir == s.dir {
		s.swap()
	}
	return s.Local.OpenDir(ctx, dir)
}

func TestRestoreRefusesDirectorySwappedForLink(t *testing.T) {
	repo := newRepo(t)
	dst := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(dst, "real"), 0o755))
	id := saveTree(t, repo, []tn{
		dir("wp-content", file("evil.php", "<?php"), file("x", "x")),
		file("site.txt", "ok"),
	})
	f := swapFS{Local: newLocal(t, dst), dir: "wp-content", swap: func() {
		must(t, os.Rename(filepath.Join(dst, "wp-content"), filepath.Join(dst, "moved")))
		must(t, os.Symlink("real", filepath.Join(dst, "wp-content")))
	}}
	rep := restore(t, repo, f, id, restorer.Options{})
	if got, want := skippedPaths(rep), []string{"wp-content/evil.php", "wp-content/x"}; !slices.Equal(got, want) {
		t.Errorf("skipped %q, want %q", got, want)
	}
	if got := listAll(t, filepath.Join(dst, "real")); len(got) != 0 {
		t.Errorf("written through the swapped-in link: %q", got)
	}
	if rep.FilesWritten != 1 || readFile(t, filepath.Join(dst, "site.txt")) != "ok" {
		t.Errorf("report %+v", rep)
	}
}

// slowTrees makes every tree load wait (a remote repository's round trip)
// and records how many loads run at once and how often each tree loads.
type slowTrees struct {
	testRepo
	mu            sync.Mutex
	running, most int
	loads         map[repository.ID]int
}

func (r *slowTrees) LoadTree(ctx context.Context, id repository.ID) (*repository.Tree, error) {
	r.mu.Lock()
	r.running++
	r.most = max(r.most, r.running)
	r.loads[id]++
	r.mu.Unlock()
	time.Sleep(5 * time.Millisecond)
	r.mu.Lock()
	r.running--
	r.mu.Unlock()
	return r.testRepo.LoadTree(ctx, id)
}

// Subfolders' trees load ahead of the walk, several at once, each once;
// what is restored is the same.
func TestTreesLoadAhead(t *testing.T) {
	repo := newRepo(t)
	var dirs []tn
	for i := range 30 {
		dirs = append(dirs, dir(fmt.Sprintf("d%02d", i), file("f", fmt.Sprint("content ", i)), dir("sub", file("g", fmt.Sprint("deeper ", i)))))
	}
	id := saveTree(t, repo, dirs)
	slow := &slowTrees{testRepo: repo, loads: map[repository.ID]int{}}
	root := t.TempDir()
	rep := restore(t, slow, newLocal(t, root), id, restorer.Options{})
	if rep.FilesWritten != 60 || !rep.OK() {
		t.Fatalf("restored %d files, report %+v", rep.FilesWritten, rep)
	}
	for i := range 30 {
		b, err := os.ReadFile(filepath.Join(root, fmt.Sprintf("d%02d", i), "sub", "g"))
		if err != nil || string(b) != fmt.Sprint("deeper ", i) {
			t.Fatalf("d%02d/sub/g: %q, %v", i, b, err)
		}
	}
	if slow.most < 2 {
		t.Errorf("at most %d tree loads at once: subtrees were not loaded ahead", slow.most)
	}
	for tid, n := range slow.loads {
		if n != 1 {
			t.Errorf("tree %v loaded %d times", tid.Short(), n)
		}
	}
}
