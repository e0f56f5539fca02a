package ssh

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sitevault/sitevault/internal/fsys"
)

// fixture builds, on the local disk, the tree both FS implementations are
// checked against, and a folder outside it.
func fixture(t *testing.T) (root, outside string) {
	t.Helper()
	base := t.TempDir()
	root = filepath.Join(base, "site")
	outside = filepath.Join(base, "outside")
	mtime := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	files := map[string]string{
		"index.php":                  "<?php // index\n",
		"wp-config.php":              "<?php define('DB_NAME', 'wp');\n",
		"wp-content/plugins/a/a.php": strings.Repeat("a", 100000),
		"empty":                      "",
		"new\nline":                  "newline in the name",
		"bad-\xff-utf8":              "invalid UTF-8 in the name",
	}
	for name, content := range files {
		p := filepath.Join(root, name)
		must(t, os.MkdirAll(filepath.Dir(p), 0o755))
		must(t, os.WriteFile(p, []byte(content), 0o644))
		must(t, os.Chtimes(p, mtime, mtime))
	}
	must(t, os.Chmod(filepath.Join(root, "wp-config.php"), 0o640))
	must(t, os.MkdirAll(outside, 0o755))
	must(t, os.WriteFile(filepath.Join(outside, "secret"), []byte("outside"), 0o644))
	must(t, os.Symlink("index.php", filepath.Join(root, "link-in")))
	must(t, os.Symlink(filepath.Join(outside, "secret"), filepath.Join(root, "link-out")))
	must(t, os.Symlink("../outside", filepath.Join(root, "dir-out")))
	must(t, os.Symlink("loop", filepath.Join(root, "loop")))
	must(t, syscall.Mkfifo(filepath.Join(root, "fifo"), 0o644))
	return root, outside
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// bothFS opens the same directory as fsys.Local and over SFTP.
func bothFS(t *testing.T, root string) map[string]fsys.FS {
	t.Helper()
	local, err := fsys.NewLocal(root)
	must(t, err)
	t.Cleanup(func() { local.Close() })
	cfg := testConfig(needSSHD(t))
	cfg.Root = root
	c := dialTest(t, cfg)
	remote, err := c.FS(context.Background())
	must(t, err)
	return map[string]fsys.FS{"local": local, "sftp": remote}
}

// TestFSConformance runs one table of operations against fsys.Local and
// the SFTP FS, each on its own copy of the fixture.
func TestFSConformance(t *testing.T) {
	for _, kind := range []string{"local", "sftp"} {
		t.Run(kind, func(t *testing.T) {
			root, outside := fixture(t)
			conformance(t, bothFS(t, root)[kind], root, outside)
		})
	}
}

func conformance(t *testing.T, f fsys.FS, root, outside string) {
	ctx := context.Background()

	t.Run("ReadDir", func(t *testing.T) {
		list, err := f.ReadDir(ctx, "")
		must(t, err)
		byName := map[string]fsys.FileInfo{}
		var names []string
		for _, fi := range list {
			byName[fi.Name] = fi
			names = append(names, fi.Name)
		}
		sort.Strings(names)
		want := []string{"bad-\xff-utf8", "dir-out", "empty", "fifo", "index.php", "link-in", "link-out", "loop", "new\nline", "wp-config.php", "wp-content"}
		if strings.Join(names, "|") != strings.Join(want, "|") {
			t.Fatalf("names %q, want %q", names, want)
		}
		mtime := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
		checks := []struct {
			name string
			typ  fs.FileMode
			perm fs.FileMode
			size int64
		}{
			{"index.php", 0, 0o644, 15},
			{"wp-config.php", 0, 0o640, 31},
			{"empty", 0, 0o644, 0},
			{"new\nline", 0, 0o644, 19},
			{"wp-content", fs.ModeDir, 0o755, -1},
			{"link-in", fs.ModeSymlink, 0o777, -1},
			{"loop", fs.ModeSymlink, 0o777, -1},
			{"fifo", fs.ModeNamedPipe, 0o644, -1},
		}
		for _, c := range checks {
			fi := byName[c.name]
			if fi.Mode.Type() != c.typ {
				t.Errorf("%q: type %v, want %v", c.name, fi.Mode.Type(), c.typ)
			}
			if c.typ != fs.ModeSymlink && fi.Mode.Perm() != c.perm {
				t.Errorf("%q: perm %v, want %v", c.name, fi.Mode.Perm(), c.perm)
			}
			if c.size >= 0 && fi.Size != c.size {
				t.Errorf("%q: size %d, want %d", c.name, fi.Size, c.size)
			}
			if c.typ == 0 && !fi.ModTime.Truncate(time.Second).Equal(mtime) {
				t.Errorf("%q: mtime %v, want %v", c.name, fi.ModTime, mtime)
			}
		}
		sub, err := f.ReadDir(ctx, "wp-content/plugins/a")
		must(t, err)
		if len(sub) != 1 || sub[0].Name != "a.php" || sub[0].Size != 100000 {
			t.Errorf("ReadDir(wp-content/plugins/a) = %+v", sub)
		}
		if _, err := f.ReadDir(ctx, "nonexistent"); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("ReadDir(nonexistent) = %v, want ErrNotExist", err)
		}
	})

	t.Run("Lstat", func(t *testing.T) {
		fi, err := f.Lstat(ctx, "link-out")
		must(t, err)
		if fi.Name != "link-out" || fi.Mode.Type() != fs.ModeSymlink {
			t.Errorf("Lstat(link-out) = %+v", fi)
		}
		fi, err = f.Lstat(ctx, "wp-content/plugins/a/a.php")
		must(t, err)
		if fi.Name != "a.php" || fi.Size != 100000 {
			t.Errorf("Lstat(a.php) = %+v", fi)
		}
		if _, err := f.Lstat(ctx, "nope"); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Lstat(nope) = %v", err)
		}
	})

	t.Run("Open", func(t *testing.T) {
		for name, want := range map[string]string{
			"wp-content/plugins/a/a.php": strings.Repeat("a", 100000),
			"new\nline":                  "newline in the name",
			"bad-\xff-utf8":              "invalid UTF-8 in the name",
			"empty":                      "",
			"link-in":                    "<?php // index\n", // a link inside the root is followed
		} {
			r, err := f.Open(ctx, name)
			if err != nil {
				t.Errorf("Open(%q): %v", name, err)
				continue
			}
			before, err := r.Stat()
			must(t, err)
			b, err := io.ReadAll(r)
			must(t, err)
			after, err := r.Stat()
			must(t, err)
			r.Close()
			if string(b) != want {
				t.Errorf("Open(%q) read %d bytes, want %d", name, len(b), len(want))
			}
			if before.Size != int64(len(want)) || after.Size != before.Size || !after.ModTime.Equal(before.ModTime) {
				t.Errorf("Open(%q): Stat before %+v, after %+v", name, before, after)
			}
		}
		for _, name := range []string{"wp-content", "fifo", "loop", "nonexistent"} {
			done := make(chan error, 1)
			go func() {
				r, err := f.Open(ctx, name)
				if err == nil {
					r.Close()
				}
				done <- err
			}()
			select {
			case err := <-done:
				if err == nil {
					t.Errorf("Open(%q) succeeded", name)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("Open(%q) hangs", name)
			}
		}
	})

	t.Run("never outside the root", func(t *testing.T) {
		for _, name := range []string{"..", "../outside/secret", "wp-content/../../outside/secret", "/etc/passwd", "a/../../x"} {
			if r, err := f.Open(ctx, name); err == nil {
				r.Close()
				t.Errorf("Open(%q) succeeded", name)
			}
			if _, err := f.ReadDir(ctx, name); err == nil {
				t.Errorf("ReadDir(%q) succeeded", name)
			}
			if _, err := f.Lstat(ctx, name); err == nil {
				t.Errorf("Lstat(%q) succeeded", name)
			}
			if w, err := f.CreateTemp(ctx, name, ""); err == nil {
				w.Close()
				t.Errorf("CreateTemp(%q) succeeded", name)
			}
			if err := f.MkdirAll(ctx, name+"/x", 0o755); err == nil {
				t.Errorf("MkdirAll(%q) succeeded", name+"/x")
			}
			if err := f.Symlink(ctx, "x", name); err == nil {
				t.Errorf("Symlink(%q) succeeded", name)
			}
			if err := f.Rename(ctx, "empty", name); err == nil {
				t.Errorf("Rename(empty, %q) succeeded", name)
			}
		}
		// Through symbolic links planted in the root.
		if r, err := f.Open(ctx, "link-out"); err == nil {
			r.Close()
			t.Error("Open(link-out) read a file outside the root")
		}
		if _, err := f.ReadDir(ctx, "dir-out"); err == nil {
			t.Error("ReadDir(dir-out) listed a folder outside the root")
		}
		if r, err := f.Open(ctx, "dir-out/secret"); err == nil {
			r.Close()
			t.Error("Open(dir-out/secret) read a file outside the root")
		}
		if w, err := f.CreateTemp(ctx, "dir-out", ""); err == nil {
			w.Close()
			t.Error("CreateTemp(dir-out) wrote outside the root")
		}
		if err := f.MkdirAll(ctx, "dir-out/new", 0o755); err == nil {
			t.Error("MkdirAll(dir-out/new) created a folder outside the root")
		}
		if err := f.Chmod(ctx, "link-out", 0o600); err == nil {
			t.Error("Chmod(link-out) changed a file outside the root")
		}
		if err := f.Chtimes(ctx, "link-out", time.Unix(0, 0)); err == nil {
			t.Error("Chtimes(link-out) changed a file outside the root")
		}
		entries, _ := os.ReadDir(outside)
		fi, _ := os.Stat(filepath.Join(outside, "secret"))
		if len(entries) != 1 || fi.Mode().Perm() != 0o644 || fi.ModTime().Unix() == 0 {
			t.Errorf("the outside folder changed: %d entries, secret %v", len(entries), fi.Mode())
		}
	})

	t.Run("write", func(t *testing.T) {
		dir := "restore-" + strings.ReplaceAll(t.Name(), "/", "-")
		must(t, f.MkdirAll(ctx, dir+"/a/b", 0o750))
		must(t, f.MkdirAll(ctx, dir+"/a/b", 0o750)) // exists: fine
		fi, err := f.Lstat(ctx, dir+"/a")
		must(t, err)
		if !fi.Mode.IsDir() || fi.Mode.Perm() != 0o750 {
			t.Errorf("MkdirAll: %v, want a directory with 0750", fi.Mode)
		}
		w, err := f.CreateTemp(ctx, dir+"/a/b", "")
		must(t, err)
		if !strings.HasPrefix(w.Name(), dir+"/a/b/.sitevault-tmp-") {
			t.Errorf("CreateTemp name %q", w.Name())
		}
		tfi, err := f.Lstat(ctx, w.Name())
		must(t, err)
		if tfi.Mode.Perm() != 0o600 {
			t.Errorf("temp file mode %v, want 0600", tfi.Mode.Perm())
		}
		content := strings.Repeat("0123456789", 50000)
		if _, err := io.Copy(w, strings.NewReader(content)); err != nil {
			t.Fatal(err)
		}
		must(t, w.Close())
		target := dir + "/a/b/new\nfile"
		must(t, f.Rename(ctx, w.Name(), target))
		// Rename replaces an existing file atomically.
		w2, err := f.CreateTemp(ctx, dir+"/a/b", "x-*.tmp")
		must(t, err)
		if !strings.HasSuffix(w2.Name(), ".tmp") {
			t.Errorf("pattern ignored: %q", w2.Name())
		}
		w2.Write([]byte("second"))
		must(t, w2.Close())
		must(t, f.Rename(ctx, w2.Name(), target))
		b, err := os.ReadFile(filepath.Join(root, target))
		must(t, err)
		if string(b) != "second" {
			t.Errorf("after rename: %q", b)
		}
		mtime := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
		must(t, f.Chmod(ctx, target, 0o604))
		must(t, f.Chtimes(ctx, target, mtime))
		fi, err = f.Lstat(ctx, target)
		must(t, err)
		if fi.Mode.Perm() != 0o604 || !fi.ModTime.Equal(mtime) {
			t.Errorf("after chmod/chtimes: %v %v", fi.Mode, fi.ModTime)
		}

		// Symlinks keep their target byte for byte, even one leaving the root.
		for _, tgt := range []string{"../../../etc/passwd", "a b\nc", "/abs/path"} {
			name := dir + "/link-" + strings.NewReplacer("/", "_", "\n", "_").Replace(tgt)
			must(t, f.Symlink(ctx, tgt, name))
			got, err := f.Readlink(ctx, name)
			must(t, err)
			if got != tgt {
				t.Errorf("Readlink = %q, want %q", got, tgt)
			}
			if err := f.Chmod(ctx, name, 0o600); err == nil {
				t.Errorf("Chmod through symlink %q succeeded", name)
			}
		}
		if err := f.Symlink(ctx, "x", target); err == nil {
			t.Error("Symlink over an existing file succeeded")
		}

		must(t, f.Remove(ctx, target))
		if _, err := f.Lstat(ctx, target); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("after Remove: %v", err)
		}
		if err := f.Remove(ctx, dir+"/a"); err == nil {
			t.Error("Remove of a non-empty directory succeeded")
		}
	})

	t.Run("cancelled", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := f.ReadDir(cctx, ""); !errors.Is(err, context.Canceled) {
			t.Errorf("ReadDir with a cancelled context = %v", err)
		}
		if _, err := f.Open(cctx, "index.php"); !errors.Is(err, context.Canceled) {
			t.Errorf("Open with a cancelled context = %v", err)
		}
	})
}

func TestFSRootErrors(t *testing.T) {
	s := needSSHD(t)
	c := dialTest(t, testConfig(s))
	ctx := context.Background()
	if _, err := c.FSAt(ctx, "/nonexistent/sitevault"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("FSAt(nonexistent) = %v, want ErrNotExist", err)
	}
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o644)
	if _, err := c.FSAt(ctx, file); err == nil {
		t.Error("FSAt(a file) succeeded")
	}
	if _, err := c.FSAt(ctx, "relative"); err == nil {
		t.Error("FSAt(relative) succeeded")
	}
	// A root reached through a symbolic link works, and names under it
	// are checked against the real folder.
	real := t.TempDir()
	os.WriteFile(filepath.Join(real, "f"), []byte("x"), 0o644)
	link := filepath.Join(t.TempDir(), "link")
	must(t, os.Symlink(real, link))
	f, err := c.FSAt(ctx, link)
	must(t, err)
	r, err := f.Open(ctx, "f")
	must(t, err)
	r.Close()
}
