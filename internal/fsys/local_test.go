package fsys_test

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sitevault/sitevault/internal/fsys"
)

func newLocal(tb testing.TB) (*fsys.Local, string) {
	tb.Helper()
	dir := tb.TempDir()
	l, err := fsys.NewLocal(dir)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { l.Close() })
	return l, dir
}

func TestLocalReadDir(t *testing.T) {
	ctx := context.Background()
	l, dir := newLocal(t)
	names := []string{"plain", "new\nline", "bad-\xff\xfe-utf8", strings.Repeat("n", 255)}
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("hello"), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/passwd", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}

	got, err := l.ReadDir(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]fsys.FileInfo{}
	for _, fi := range got {
		byName[fi.Name] = fi
	}
	want := append(slices.Clone(names), "sub", "link", "fifo")
	if len(got) != len(want) {
		t.Fatalf("ReadDir returned %d entries, want %d", len(got), len(want))
	}
	for _, n := range want {
		fi, ok := byName[n]
		if !ok {
			t.Fatalf("entry %q missing (names must be byte-exact)", n)
		}
		var st syscall.Stat_t
		if err := syscall.Lstat(filepath.Join(dir, n), &st); err != nil {
			t.Fatal(err)
		}
		if fi.Inode != st.Ino || fi.Dev != uint64(st.Dev) {
			t.Errorf("%q: inode/dev %d/%d, want %d/%d", n, fi.Inode, fi.Dev, st.Ino, st.Dev)
		}
		if want := time.Unix(st.Ctim.Sec, st.Ctim.Nsec); !fi.ChangeTime.Equal(want) {
			t.Errorf("%q: ctime %v, want %v", n, fi.ChangeTime, want)
		}
	}
	tests := []struct {
		name string
		mode fs.FileMode
		size int64
	}{
		{"plain", 0o640, 5},
		{"sub", fs.ModeDir | 0o750, -1},
		{"link", fs.ModeSymlink | 0o777, int64(len("/etc/passwd"))},
		{"fifo", fs.ModeNamedPipe | 0o600, 0},
	}
	for _, tt := range tests {
		fi := byName[tt.name]
		if fi.Mode != tt.mode {
			t.Errorf("%s: mode %v, want %v", tt.name, fi.Mode, tt.mode)
		}
		if tt.size >= 0 && fi.Size != tt.size {
			t.Errorf("%s: size %d, want %d", tt.name, fi.Size, tt.size)
		}
	}
}

func TestLocalStaysInRoot(t *testing.T) {
	ctx := context.Background()
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	l, dir := newLocal(t)
	if err := os.Symlink(outside, filepath.Join(dir, "out")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "secret"), filepath.Join(dir, "secretlink")); err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(dir, filepath.Join(outside, "secret"))
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		op   func() error
	}{
		{"open dotdot", func() error { _, err := l.Open(ctx, rel); return err }},
		{"open through link", func() error { _, err := l.Open(ctx, "out/secret"); return err }},
		{"open link to outside", func() error { _, err := l.Open(ctx, "secretlink"); return err }},
		{"readdir through link", func() error { _, err := l.ReadDir(ctx, "out"); return err }},
		{"create temp through link", func() error { _, err := l.CreateTemp(ctx, "out", ""); return err }},
		{"mkdir through link", func() error { return l.MkdirAll(ctx, "out/new", 0o755) }},
		{"rename through link", func() error {
			if err := os.WriteFile(filepath.Join(dir, "f"), nil, 0o600); err != nil {
				return nil
			}
			return l.Rename(ctx, "f", "out/f")
		}},
		{"chmod link", func() error { return l.Chmod(ctx, "secretlink", 0o777) }},
		{"chtimes link", func() error { return l.Chtimes(ctx, "secretlink", time.Unix(0, 0)) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.op(); err == nil {
				t.Fatal("succeeded, want an error")
			}
		})
	}
	ents, err := os.ReadDir(outside)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 {
		t.Errorf("outside directory holds %d entries, want only the secret", len(ents))
	}
	fi, err := os.Stat(filepath.Join(outside, "secret"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 || fi.ModTime().Unix() == 0 {
		t.Errorf("outside file changed: mode %v mtime %v", fi.Mode(), fi.ModTime())
	}
}

func TestLocalOpenRefusesNonRegular(t *testing.T) {
	ctx := context.Background()
	l, dir := newLocal(t)
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := l.Open(ctx, "fifo")
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Open of a FIFO succeeded")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Open of a FIFO blocked")
	}
	if _, err := l.Open(ctx, ""); err == nil {
		t.Fatal("Open of a directory succeeded")
	}
}

func TestLocalWriteCycle(t *testing.T) {
	ctx := context.Background()
	l, dir := newLocal(t)
	if err := l.MkdirAll(ctx, "a/b", 0o755); err != nil {
		t.Fatal(err)
	}
	w, err := l.CreateTemp(ctx, "a/b", "")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(w.Name(), "a/b/.sitevault-tmp-") {
		t.Errorf("temp name %q, want a/b/.sitevault-tmp-…", w.Name())
	}
	fi, err := os.Lstat(filepath.Join(dir, w.Name()))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("temp mode %v, want 0600", fi.Mode().Perm())
	}
	if _, err := io.WriteString(w, "content"); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	mtime := time.Date(2020, 1, 2, 3, 4, 5, 6000, time.UTC)
	if err := l.Chmod(ctx, w.Name(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := l.Chtimes(ctx, w.Name(), mtime); err != nil {
		t.Fatal(err)
	}
	if err := l.Rename(ctx, w.Name(), "a/b/final"); err != nil {
		t.Fatal(err)
	}
	got, err := l.Lstat(ctx, "a/b/final")
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "final" || got.Mode != 0o644 || got.Size != 7 || !got.ModTime.Equal(mtime) {
		t.Errorf("Lstat = %+v", got)
	}
	f, err := l.Open(ctx, "a/b/final")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(f)
	if err != nil || string(b) != "content" {
		t.Errorf("read %q, %v", b, err)
	}
	st, err := f.Stat()
	if err != nil || st.Inode != got.Inode {
		t.Errorf("File.Stat = %+v, %v", st, err)
	}
	f.Close()

	if err := l.Symlink(ctx, "../../../elsewhere", "a/link"); err != nil {
		t.Fatal(err)
	}
	target, err := l.Readlink(ctx, "a/link")
	if err != nil || target != "../../../elsewhere" {
		t.Errorf("Readlink = %q, %v", target, err)
	}
	if err := l.Remove(ctx, "a/link"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Lstat(ctx, "a/link"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Lstat after Remove: %v, want ErrNotExist", err)
	}
	if _, err := l.CreateTemp(ctx, "a", "x/y*"); err == nil {
		t.Error("CreateTemp accepted a pattern with a slash")
	}
}

func TestLocalDir(t *testing.T) {
	ctx := context.Background()
	l, dir := newLocal(t)
	if err := os.MkdirAll(filepath.Join(dir, "a/b"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "a/b/old"), []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := l.OpenDir(ctx, "a/b")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	want, err := l.Lstat(ctx, "a/b")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := d.Stat(); err != nil || got.Inode != want.Inode || got.Dev != want.Dev || !got.Mode.IsDir() {
		t.Errorf("Stat = %+v %v, want the directory %+v", got, err, want)
	}

	w, err := d.CreateTemp(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(w.Name(), "a/b/.sitevault-tmp-") {
		t.Errorf("Name = %q, want it relative to the root", w.Name())
	}
	if _, err := w.Write([]byte("new")); err != nil {
		t.Fatal(err)
	}
	af, ok := w.(interface {
		Chmod(fs.FileMode) error
		SetModTime(time.Time) error
	})
	if !ok {
		t.Fatal("the temporary file cannot set its attributes")
	}
	mtime := time.Date(2020, 1, 2, 3, 4, 5, 600, time.UTC)
	if err := af.Chmod(0o640 | fs.ModeSetgid); err != nil {
		t.Fatal(err)
	}
	if err := af.SetModTime(mtime); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Rename(ctx, filepath.Base(w.Name()), "old"); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(filepath.Join(dir, "a/b/old"))
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "a/b/old")); string(b) != "new" {
		t.Errorf("content %q", b)
	}
	if fi.Mode() != 0o640|fs.ModeSetgid || !fi.ModTime().Equal(mtime) {
		t.Errorf("mode %v, mtime %v; want %v, %v", fi.Mode(), fi.ModTime(), 0o640|fs.ModeSetgid, mtime)
	}
	if got, err := d.Lstat(ctx, "old"); err != nil || got.Size != 3 {
		t.Errorf("Lstat = %+v %v", got, err)
	}

	for _, name := range []string{"", ".", "..", "../x", "x/y", "nul\x00"} {
		if err := d.Rename(ctx, "old", name); !errors.Is(err, fs.ErrInvalid) {
			t.Errorf("Rename(old, %q) = %v, want ErrInvalid", name, err)
		}
		if _, err := d.Lstat(ctx, name); !errors.Is(err, fs.ErrInvalid) {
			t.Errorf("Lstat(%q) = %v, want ErrInvalid", name, err)
		}
		if err := d.Remove(ctx, name); !errors.Is(err, fs.ErrInvalid) {
			t.Errorf("Remove(%q) = %v, want ErrInvalid", name, err)
		}
	}
	if err := d.Remove(ctx, "old"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.OpenDir(ctx, "../escape"); err == nil {
		t.Error("OpenDir outside the root succeeded")
	}
}
