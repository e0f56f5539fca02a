package archiver_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sitevault/sitevault/internal/archiver"
	"github.com/sitevault/sitevault/internal/fsys"
	"github.com/sitevault/sitevault/internal/repository"
	"github.com/sitevault/sitevault/internal/restorer"
)

// testRepo is what the tests need of a repository.
type testRepo interface {
	archiver.Repo
	restorer.Repo
	Flush(ctx context.Context) error
}

func newRepo(tb testing.TB) testRepo {
	tb.Helper()
	return repository.TestRepository(tb)
}

var (
	t1 = time.Date(2021, 3, 4, 5, 6, 7, 123456789, time.UTC)
	t2 = time.Date(2022, 6, 7, 8, 9, 10, 0, time.UTC)
)

// siteEntries is a tree with every kind of entry the archiver must handle.
func siteEntries() []entry {
	return []entry{
		{path: "a", kind: "dir", mode: 0o750, mtime: t1},
		{path: "a/b", kind: "dir", mtime: t2},
		{path: "a/b/c", kind: "dir", mode: 0o700, mtime: t1},
		{path: "a/b/c/deep.txt", data: []byte("deep"), mode: 0o600, mtime: t2},
		{path: "a/exec.sh", data: []byte("#!/bin/sh\n"), mode: 0o755, mtime: t1},
		{path: "emptydir", kind: "dir", mtime: t2},
		{path: "empty", data: nil, mtime: t1},
		{path: "big", data: randBytes(1, 21<<20+12345), mtime: t2},
		{path: "link", kind: "symlink", target: "a/b"},
		{path: "loop1", kind: "symlink", target: "loop2"},
		{path: "loop2", kind: "symlink", target: "loop1"},
		{path: "outside", kind: "symlink", target: "../../../../etc/passwd"},
		{path: "absolute", kind: "symlink", target: "/etc"},
		{path: "fifo", kind: "fifo"},
		{path: "new\nline", data: []byte("newline"), mtime: t1},
		{path: "bad-\xff\xfe-utf8", data: []byte("invalid utf-8"), mtime: t2},
		{path: strings.Repeat("L", 255), data: []byte("long name"), mtime: t1},
		{path: "wp-config.php", data: []byte("<?php define('DB_NAME', 'x');"), mode: 0o640, mtime: t2},
	}
}

// snapshot backs up the root of f and flushes repo.
func snapshot(tb testing.TB, repo testRepo, f fsys.FS, opts archiver.Options, parent *repository.ID) (repository.ID, *archiver.Report) {
	tb.Helper()
	id, rep, err := archiver.New(repo, f, opts).Snapshot(context.Background(), "", parent)
	if err != nil {
		tb.Fatalf("Snapshot: %v", err)
	}
	if err := repo.Flush(context.Background()); err != nil {
		tb.Fatalf("Flush: %v", err)
	}
	return id, rep
}

func TestRoundTrip(t *testing.T) {
	ctx := context.Background()
	src := t.TempDir()
	build(t, src, siteEntries())
	repo := newRepo(t)

	id, rep := snapshot(t, repo, newLocal(t, src), archiver.Options{}, nil)
	if rep.Partial || len(rep.Errors) > 0 {
		t.Fatalf("report partial: %v", rep.Errors)
	}
	if rep.FilesNew != 8 || rep.FilesChanged != 0 || rep.FilesUnchanged != 0 {
		t.Errorf("files new/changed/unchanged = %d/%d/%d, want 8/0/0", rep.FilesNew, rep.FilesChanged, rep.FilesUnchanged)
	}
	if rep.Symlinks != 5 || rep.DirsTotal != 5 {
		t.Errorf("symlinks %d dirs %d, want 5 and 5", rep.Symlinks, rep.DirsTotal)
	}
	if len(rep.Skipped) != 1 || rep.Skipped[0].Path != "fifo" || !strings.Contains(rep.Skipped[0].Reason, "named pipe") || rep.Skipped[0].Rule != archiver.RuleSpecialFile {
		t.Errorf("skipped = %v, want the fifo as a named pipe", rep.Skipped)
	}
	var total int64
	for _, e := range siteEntries() {
		total += int64(len(e.data))
	}
	if rep.BytesRead != total || rep.BytesTotal != total {
		t.Errorf("bytes read %d total %d, want %d", rep.BytesRead, rep.BytesTotal, total)
	}

	root, err := repo.LoadTree(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.IsSortedFunc(root.Nodes, func(a, b *repository.Node) int { return strings.Compare(a.Name, b.Name) }) {
		t.Error("root tree not sorted by name")
	}
	if n := root.Find("big"); n == nil || len(n.Content) < 2 {
		t.Errorf("big file stored in %v chunks, want several", n)
	}
	if n := root.Find("outside"); n == nil || n.Type != repository.NodeSymlink || n.LinkTarget != "../../../../etc/passwd" {
		t.Errorf("outside link stored as %+v", n)
	}

	dst := t.TempDir()
	rrep, err := restorer.New(repo, newLocal(t, dst), restorer.Options{}).Restore(ctx, id, "")
	if err != nil {
		t.Fatalf("Restore: %v", err)
	}
	// Links out of the restored tree are backed up as they are, but a
	// restore refuses to place them.
	if rrep.FilesWritten != 8 || rrep.Symlinks != 3 || len(rrep.Errors) > 0 || len(rrep.Skipped) != 2 ||
		rrep.Skipped[0].Path != "absolute" || rrep.Skipped[1].Path != "outside" ||
		!strings.Contains(rrep.Skipped[1].Reason, "outside the site root") {
		t.Errorf("restore report %+v", rrep)
	}
	compareDirs(t, src, dst, map[string]bool{"fifo": true, "absolute": true, "outside": true})
	diffs, err := restorer.Verify(ctx, repo, newLocal(t, dst), id, "", nil)
	if err != nil || len(diffs) != 2 {
		t.Errorf("Verify: %v %v, want the two refused links missing", diffs, err)
	}
}

func TestDeterministic(t *testing.T) {
	src := t.TempDir()
	var entries []entry
	for d := range 8 {
		entries = append(entries, entry{path: fmt.Sprintf("d%d", d), kind: "dir"})
		for f := range 40 {
			entries = append(entries, entry{path: fmt.Sprintf("d%d/f%02d", d, f), data: randBytes(uint64(d*100+f), 100+f), mtime: t1})
		}
	}
	build(t, src, entries)
	repo := newRepo(t)
	var ids []repository.ID
	for _, workers := range []int{1, 3, 32} {
		id, _ := snapshot(t, repo, newLocal(t, src), archiver.Options{Workers: workers}, nil)
		ids = append(ids, id)
	}
	if ids[0] != ids[1] || ids[0] != ids[2] {
		t.Errorf("root ids differ with the number of workers: %v", ids)
	}
}

func TestIncremental(t *testing.T) {
	files := []entry{
		{path: "d", kind: "dir"},
		{path: "d/a", data: []byte("aaaa"), mtime: t1},
		{path: "d/b", data: []byte("bbbb"), mtime: t1},
		{path: "c", data: []byte("cccc"), mtime: t1},
	}
	tests := []struct {
		name   string
		change func(tb testing.TB, dir string)
		reread []string
	}{
		{"unchanged", func(testing.TB, string) {}, nil},
		{"content and mtime", func(tb testing.TB, dir string) {
			must(tb, os.WriteFile(filepath.Join(dir, "d/a"), []byte("AAAA"), 0o644))
		}, []string{"d/a"}},
		{"size only", func(tb testing.TB, dir string) {
			must(tb, os.WriteFile(filepath.Join(dir, "c"), []byte("ccccc"), 0o644))
			must(tb, os.Chtimes(filepath.Join(dir, "c"), t1, t1))
		}, []string{"c"}},
		{"ctime only (same size and mtime)", func(tb testing.TB, dir string) {
			must(tb, os.WriteFile(filepath.Join(dir, "d/b"), []byte("BBBB"), 0o644))
			must(tb, os.Chtimes(filepath.Join(dir, "d/b"), t1, t1))
		}, []string{"d/b"}},
		{"replaced: other inode", func(tb testing.TB, dir string) {
			p := filepath.Join(dir, "c")
			must(tb, os.WriteFile(p+".new", []byte("CCCC"), 0o644))
			must(tb, os.Chtimes(p+".new", t1, t1))
			must(tb, os.Rename(p+".new", p))
		}, []string{"c"}},
		{"new file", func(tb testing.TB, dir string) {
			must(tb, os.WriteFile(filepath.Join(dir, "d/new"), []byte("new"), 0o644))
		}, []string{"d/new"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			src := t.TempDir()
			build(t, src, files)
			repo := newRepo(t)
			h := newHookFS(newLocal(t, src))
			parent, _ := snapshot(t, repo, h, archiver.Options{}, nil)
			if got := h.opened(); len(got) != 3 {
				t.Fatalf("first backup opened %v, want the 3 files", got)
			}

			tt.change(t, src)
			id, rep := snapshot(t, repo, h, archiver.Options{}, &parent)
			var got []string
			for p, n := range h.opened() {
				if n != 1 {
					t.Errorf("%q opened %d times", p, n)
				}
				got = append(got, p)
			}
			slices.Sort(got)
			if !slices.Equal(got, tt.reread) {
				t.Errorf("read again %q, want %q", got, tt.reread)
			}
			if rep.FilesUnchanged != 3-len(tt.reread)+boolInt(tt.name == "new file") {
				t.Errorf("files unchanged = %d", rep.FilesUnchanged)
			}
			if tt.reread == nil && id != parent {
				t.Errorf("unchanged tree got a new id")
			}
			if tt.reread != nil && id == parent {
				t.Errorf("changed tree kept its id")
			}
			dst := t.TempDir()
			if _, err := restorer.New(repo, newLocal(t, dst), restorer.Options{}).Restore(ctx, id, ""); err != nil {
				t.Fatal(err)
			}
			compareDirs(t, src, dst, nil)
		})
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func must(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}

func TestFileChangingWhileRead(t *testing.T) {
	tests := []struct {
		name        string
		changeOpens int // how many opens find the file changing
		wantOpens   int
		wantChanged bool
	}{
		{"changes once: read again", 1, 2, false},
		{"keeps changing: stored as read and named", 100, 2, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			src := t.TempDir()
			build(t, src, []entry{{path: "log", data: []byte("line\n")}, {path: "still", data: []byte("x")}})
			h := newHookFS(newLocal(t, src))
			h.onRead = func(name string, n int) {
				if name == "log" && n <= tt.changeOpens {
					f, err := os.OpenFile(filepath.Join(src, "log"), os.O_APPEND|os.O_WRONLY, 0)
					must(t, err)
					fmt.Fprintf(f, "appended %d\n", n)
					f.Close()
				}
			}
			repo := newRepo(t)
			id, rep := snapshot(t, repo, h, archiver.Options{}, nil)
			if got := h.opened()["log"]; got != tt.wantOpens {
				t.Errorf("log opened %d times, want %d", got, tt.wantOpens)
			}
			if tt.wantChanged != slices.Contains(rep.Changed, "log") {
				t.Errorf("report names %q as changed", rep.Changed)
			}
			if tt.wantChanged != slices.ContainsFunc(rep.Summary().Warnings, func(s string) bool { return strings.Contains(s, `"log"`) }) {
				t.Errorf("summary warnings %q", rep.Summary().Warnings)
			}
			if rep.Partial || rep.FilesNew != 2 {
				t.Errorf("partial %v, files new %d", rep.Partial, rep.FilesNew)
			}
			// What was stored is what the last read saw: the file as of the
			// second open.
			tree, err := repo.LoadTree(ctx, id)
			must(t, err)
			var buf bytes.Buffer
			n := tree.Find("log")
			must(t, repo.WriteContent(ctx, n.Content, &buf))
			want := "line\nappended 1\n"
			if tt.wantChanged {
				want += "appended 2\n"
			}
			if buf.String() != want || n.Size != int64(len(want)) {
				t.Errorf("stored %q (size %d), want %q", buf.String(), n.Size, want)
			}
		})
	}
}

func TestUnreadable(t *testing.T) {
	tests := []struct {
		name string
		err  error
	}{
		{"permission denied", fs.ErrPermission},
		{"vanished", fs.ErrNotExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := t.TempDir()
			build(t, src, []entry{
				{path: "d", kind: "dir"},
				{path: "d/secret", data: []byte("s")},
				{path: "d/ok", data: []byte("ok")},
				{path: "top", data: []byte("top")},
			})
			h := newHookFS(newLocal(t, src))
			h.openErr = func(name string) error {
				if name == "d/secret" {
					return tt.err
				}
				return nil
			}
			repo := newRepo(t)
			id, rep := snapshot(t, repo, h, archiver.Options{}, nil)
			if !rep.Partial || !rep.Summary().Partial {
				t.Error("report not partial")
			}
			if len(rep.Errors) != 1 || rep.Errors[0].Path != "d/secret" || !errors.Is(rep.Errors[0], tt.err) {
				t.Fatalf("errors = %v", rep.Errors)
			}
			if rep.FilesNew != 2 {
				t.Errorf("files new = %d, want 2", rep.FilesNew)
			}
			dst := t.TempDir()
			if _, err := restorer.New(repo, newLocal(t, dst), restorer.Options{}).Restore(context.Background(), id, ""); err != nil {
				t.Fatal(err)
			}
			must(t, os.Remove(filepath.Join(src, "d/secret")))
			compareDirs(t, src, dst, map[string]bool{"d": true}) // d's mtime changed by the removal
		})
	}
}

// ruleSelector excludes directories holding CACHEDIR.TAG and *.log files.
type ruleSelector struct {
	mu   sync.Mutex
	dirs []string
}

func (s *ruleSelector) Entry(p string, fi fsys.FileInfo) (bool, string) {
	if strings.HasSuffix(p, ".log") {
		return false, "log file"
	}
	return true, ""
}

func (s *ruleSelector) Dir(p string, entries []fsys.FileInfo) (bool, string) {
	s.mu.Lock()
	s.dirs = append(s.dirs, p)
	s.mu.Unlock()
	for _, e := range entries {
		if e.Name == "CACHEDIR.TAG" {
			return false, "holds CACHEDIR.TAG"
		}
	}
	return true, ""
}

func TestSelector(t *testing.T) {
	ctx := context.Background()
	src := t.TempDir()
	build(t, src, []entry{
		{path: "wp/cache/CACHEDIR.TAG", data: []byte("Signature: 8a477f597d28d172789f06886806bc55")},
		{path: "wp/cache/page.html", data: []byte("<html>")},
		{path: "wp/debug.log", data: []byte("log")},
		{path: "wp/index.php", data: []byte("<?php")},
		{path: "other/x", data: []byte("x")},
	})
	sel := &ruleSelector{}
	repo := newRepo(t)
	id, rep, err := archiver.New(repo, newLocal(t, src), archiver.Options{Selector: sel}).Snapshot(ctx, "wp", nil)
	must(t, err)
	must(t, repo.Flush(ctx))
	want := []archiver.Skip{{Path: "wp/cache", Rule: "holds-cachedir-tag", Reason: "holds CACHEDIR.TAG"}, {Path: "wp/debug.log", Rule: "log-file", Reason: "log file"}}
	slices.SortFunc(rep.Skipped, func(a, b archiver.Skip) int { return strings.Compare(a.Path, b.Path) })
	if !slices.Equal(rep.Skipped, want) {
		t.Errorf("skipped = %v, want %v", rep.Skipped, want)
	}
	slices.Sort(sel.dirs)
	if !slices.Equal(sel.dirs, []string{"wp", "wp/cache"}) {
		t.Errorf("Dir called for %q", sel.dirs)
	}
	tree, err := repo.LoadTree(ctx, id)
	must(t, err)
	var names []string
	for _, n := range tree.Nodes {
		names = append(names, n.Name)
	}
	if !slices.Equal(names, []string{"index.php"}) {
		t.Errorf("tree holds %q", names)
	}
}

func TestCancel(t *testing.T) {
	src := t.TempDir()
	build(t, src, []entry{{path: "a", data: []byte("a")}, {path: "b", data: []byte("b")}})
	ctx, cancel := context.WithCancel(context.Background())
	h := newHookFS(newLocal(t, src))
	h.onRead = func(string, int) { cancel() }
	_, _, err := archiver.New(newRepo(t), h, archiver.Options{}).Snapshot(ctx, "", nil)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Snapshot after cancel: %v, want context.Canceled", err)
	}
}

func TestProgress(t *testing.T) {
	src := t.TempDir()
	build(t, src, []entry{{path: "a", data: make([]byte, 1000)}, {path: "d/b", data: make([]byte, 24)}})
	var p archiver.Progress
	snapshot(t, newRepo(t), newLocal(t, src), archiver.Options{Progress: &p}, nil)
	if p.FilesDone.Load() != 2 || p.FilesTotal.Load() != 2 || p.BytesDone.Load() != 1024 || p.BytesTotal.Load() != 1024 || p.DirsDone.Load() != 2 {
		t.Errorf("progress files %d/%d bytes %d/%d dirs %d", p.FilesDone.Load(), p.FilesTotal.Load(), p.BytesDone.Load(), p.BytesTotal.Load(), p.DirsDone.Load())
	}
}

func BenchmarkArchiver(b *testing.B) {
	src := b.TempDir()
	var entries []entry
	var total int64
	for d := range 20 {
		for f := range 100 {
			e := entry{path: path.Join(fmt.Sprintf("plugins/p%02d", d), fmt.Sprintf("f%03d.php", f)), data: randBytes(uint64(d*1000+f), 512+f*40)}
			entries = append(entries, e)
			total += int64(len(e.data))
		}
	}
	for i := range 4 {
		e := entry{path: fmt.Sprintf("uploads/big%d.bin", i), data: randBytes(uint64(i), 8<<20)}
		entries = append(entries, e)
		total += int64(len(e.data))
	}
	build(b, src, entries)
	f := newLocal(b, src)

	b.Run("initial", func(b *testing.B) {
		b.SetBytes(total)
		for b.Loop() {
			snapshot(b, newRepo(b), f, archiver.Options{}, nil)
		}
	})
	b.Run("unchanged", func(b *testing.B) {
		repo := newRepo(b)
		parent, _ := snapshot(b, repo, f, archiver.Options{}, nil)
		b.SetBytes(total)
		for b.Loop() {
			snapshot(b, repo, f, archiver.Options{}, &parent)
		}
	})
}

func TestRuleOf(t *testing.T) {
	for in, want := range map[string]string{
		"cache folder (LiteSpeed Cache)":                       "cache-folder",
		"folder holds .donotbackup":                            "folder-holds-donotbackup",
		"WordPress core":                                       "wordpress-core",
		"no primary or unique key over NOT NULL columns":       "no-primary-or-unique-key-over-not-null-columns",
		"not a regular file, directory or symbolic link: fifo": "not-a-regular-file-directory-or-symbolic-link",
		`excluded by pattern ("*.tmp")`:                        "excluded-by-pattern",
		"":                                                     "",
	} {
		if got := archiver.RuleOf(in); got != want {
			t.Errorf("RuleOf(%q) = %q, want %q", in, got, want)
		}
	}
}

// The scan ahead of a backup counts what the backup takes — the same
// selector decisions, no restore leftovers — and finishes while the
// backup is still reading: here no file's content is read until the scan
// has said it is done.
func TestScanAhead(t *testing.T) {
	src := t.TempDir()
	var entries []entry
	var wantBytes int64
	for d := range 20 {
		for f := range 10 {
			size := 100*d + f + 1
			entries = append(entries, entry{path: fmt.Sprintf("d%02d/sub/f%d", d, f), data: make([]byte, size)})
			wantBytes += int64(size)
		}
	}
	entries = append(entries,
		entry{path: "d00/debug.log", data: make([]byte, 5000)},                               // excluded file
		entry{path: "cache/CACHEDIR.TAG", data: []byte("x")},                                 // excluded folder
		entry{path: "cache/page.html", data: make([]byte, 7000)},                             //
		entry{path: "d01/" + fsys.TempPrefix + "0123456789abcdef", data: make([]byte, 9000)}, // a restore leftover
	)
	build(t, src, entries)

	var p archiver.Progress
	h := newHookFS(newLocal(t, src))
	h.onRead = func(string, int) {
		deadline := time.Now().Add(30 * time.Second)
		for !p.ScanDone.Load() && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
	}
	_, rep := snapshot(t, newRepo(t), h, archiver.Options{Progress: &p, Selector: &ruleSelector{}, Scan: true, Listers: 8}, nil)
	if !p.ScanDone.Load() {
		t.Fatal("the scan did not finish before the backup read a file")
	}
	if got := p.ScanFiles.Load(); got != 200 || int(got) != rep.FilesNew {
		t.Errorf("scan counted %d files, backup took %d, want 200", got, rep.FilesNew)
	}
	if got := p.ScanBytes.Load(); got != wantBytes || got != rep.BytesTotal {
		t.Errorf("scan counted %d bytes, backup took %d, want %d", got, rep.BytesTotal, wantBytes)
	}
}

// Without Options.Scan nothing is scanned.
func TestNoScan(t *testing.T) {
	src := t.TempDir()
	build(t, src, []entry{{path: "a", data: make([]byte, 10)}})
	var p archiver.Progress
	snapshot(t, newRepo(t), newLocal(t, src), archiver.Options{Progress: &p}, nil)
	if p.ScanDone.Load() || p.ScanFiles.Load() != 0 {
		t.Errorf("scan ran: done %v, %d files", p.ScanDone.Load(), p.ScanFiles.Load())
	}
}
