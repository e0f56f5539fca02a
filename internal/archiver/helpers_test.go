package archiver_test

import (
	"bytes"
	"context"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sitevault/sitevault/internal/fsys"
)

// entry describes one file system entry a test creates.
type entry struct {
	path   string // slash-separated, relative
	kind   string // "file" (default), "dir", "symlink", "fifo"
	data   []byte
	target string // symlinks
	mode   fs.FileMode
	mtime  time.Time
}

// build creates entries under dir; parents before children. Directory
// times are set last, deepest first.
func build(tb testing.TB, dir string, entries []entry) {
	tb.Helper()
	for _, e := range entries {
		p := filepath.Join(dir, filepath.FromSlash(e.path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			tb.Fatal(err)
		}
		mode := e.mode
		var err error
		switch e.kind {
		case "dir":
			if mode == 0 {
				mode = 0o755
			}
			err = os.Mkdir(p, mode)
		case "symlink":
			err = os.Symlink(e.target, p)
		case "fifo":
			err = syscall.Mkfifo(p, 0o600)
		default:
			if mode == 0 {
				mode = 0o644
			}
			err = os.WriteFile(p, e.data, mode)
		}
		if err != nil {
			tb.Fatal(err)
		}
		if e.kind != "symlink" && e.kind != "fifo" {
			if err := os.Chmod(p, mode); err != nil { // umask-free
				tb.Fatal(err)
			}
		}
	}
	for i := len(entries) - 1; i >= 0; i-- {
		e := entries[i]
		if e.mtime.IsZero() || e.kind == "symlink" {
			continue
		}
		if err := os.Chtimes(filepath.Join(dir, filepath.FromSlash(e.path)), e.mtime, e.mtime); err != nil {
			tb.Fatal(err)
		}
	}
}

// randBytes returns n deterministic pseudo-random bytes.
func randBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
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

// hookFS wraps an FS to count opens and to fail or alter reads.
type hookFS struct {
	fsys.FS
	mu    sync.Mutex
	opens map[string]int
	// openErr, if it returns an error, fails Open of that path.
	openErr func(name string) error
	// onRead runs before the first Read of the n-th Open of name.
	onRead func(name string, n int)
}

func newHookFS(inner fsys.FS) *hookFS {
	return &hookFS{FS: inner, opens: make(map[string]int)}
}

func (h *hookFS) Open(ctx context.Context, name string) (fsys.File, error) {
	h.mu.Lock()
	h.opens[name]++
	n := h.opens[name]
	h.mu.Unlock()
	if h.openErr != nil {
		if err := h.openErr(name); err != nil {
			return nil, &fs.PathError{Op: "open", Path: name, Err: err}
		}
	}
	f, err := h.FS.Open(ctx, name)
	if err != nil || h.onRead == nil {
		return f, err
	}
	return &hookFile{File: f, hook: func() { h.onRead(name, n) }}, nil
}

// opened returns the paths opened since the last call, with counts.
func (h *hookFS) opened() map[string]int {
	h.mu.Lock()
	defer h.mu.Unlock()
	o := h.opens
	h.opens = make(map[string]int)
	return o
}

type hookFile struct {
	fsys.File
	once sync.Once
	hook func()
}

func (f *hookFile) Read(b []byte) (int, error) {
	f.once.Do(f.hook)
	return f.File.Read(b)
}

// compareDirs checks that got holds what want holds — names, types, modes,
// mtimes (not of want's root or of symlinks), contents and link targets —
// except the relative paths in skip. Extra entries in got are reported too.
func compareDirs(tb testing.TB, want, got string, skip map[string]bool) {
	tb.Helper()
	seen := map[string]bool{}
	err := filepath.WalkDir(want, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(want, p)
		rel = filepath.ToSlash(rel)
		if skip[rel] {
			return nil // not compared, but descended into
		}
		seen[rel] = true
		wi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		gp := filepath.Join(got, filepath.FromSlash(rel))
		gi, err := os.Lstat(gp)
		if err != nil {
			tb.Errorf("%q: %v", rel, err)
			if d.IsDir() && rel != "." {
				return filepath.SkipDir
			}
			return nil
		}
		if wi.Mode() != gi.Mode() && rel != "." {
			tb.Errorf("%q: mode %v, want %v", rel, gi.Mode(), wi.Mode())
		}
		switch {
		case wi.Mode()&fs.ModeSymlink != 0:
			wt, _ := os.Readlink(p)
			gt, err := os.Readlink(gp)
			if err != nil || wt != gt {
				tb.Errorf("%q: link target %q (%v), want %q", rel, gt, err, wt)
			}
			return nil
		case wi.Mode().IsRegular():
			wb, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			gb, err := os.ReadFile(gp)
			if err != nil {
				return err
			}
			if !bytes.Equal(wb, gb) {
				tb.Errorf("%q: content differs (%d bytes, want %d)", rel, len(gb), len(wb))
			}
		}
		if rel != "." && !wi.ModTime().Equal(gi.ModTime()) {
			tb.Errorf("%q: mtime %v, want %v", rel, gi.ModTime(), wi.ModTime())
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	filepath.WalkDir(got, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(got, p)
		if rel = filepath.ToSlash(rel); !seen[rel] && !skip[rel] {
			tb.Errorf("%q: extra entry", rel)
		}
		return nil
	})
}

// readAll reads a file of the FS (test convenience).
func readAll(tb testing.TB, f fsys.FS, name string) []byte {
	tb.Helper()
	r, err := f.Open(context.Background(), name)
	if err != nil {
		tb.Fatal(err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}
