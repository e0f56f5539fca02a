package local

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sitevault/sitevault/internal/backend"
	"github.com/sitevault/sitevault/internal/backend/backendtest"
	"github.com/sitevault/sitevault/internal/backend/retry"
	"github.com/sitevault/sitevault/internal/testsrv"
)

func newBackend(t *testing.T) *Backend {
	t.Helper()
	be, err := Create(context.Background(), filepath.Join(t.TempDir(), "repo"))
	if err != nil {
		t.Fatal(err)
	}
	return be
}

func TestConformance(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) backend.Backend { return newBackend(t) })
}

func TestConformanceRetry(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) backend.Backend {
		return retry.New(newBackend(t), retry.Options{InitialDelay: time.Millisecond})
	})
}

func TestLayout(t *testing.T) {
	be := newBackend(t)
	for _, d := range []string{"keys", "data/00", "data/7f", "data/ff", "index", "snapshots", "locks"} {
		if fi, err := os.Stat(filepath.Join(be.dir, d)); err != nil || !fi.IsDir() {
			t.Errorf("folder %s missing after Create: %v", d, err)
		}
	}
	if _, err := os.Stat(filepath.Join(be.dir, "config")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Create wrote a config file: %v", err)
	}
	data := []byte("pack bytes")
	backendtest.Save(t, be, backend.Handle{Type: backend.PackFile, Name: "ab12"}, data)
	p := filepath.Join(be.dir, "data", "ab", "ab12")
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatalf("pack not at data/ab/ab12: %v", err)
	}
	if fi.Mode().Perm()&0o222 != 0 {
		t.Errorf("saved file mode %v is writable", fi.Mode())
	}
	backendtest.Save(t, be, backend.Handle{Type: backend.ConfigFile}, data)
	if _, err := os.Stat(filepath.Join(be.dir, "config")); err != nil {
		t.Errorf("config not at dir/config: %v", err)
	}
}

func TestOpenMissing(t *testing.T) {
	_, err := Open(context.Background(), filepath.Join(t.TempDir(), "nope"))
	if !errors.Is(err, backend.ErrNotExist) {
		t.Fatalf("open missing folder: err = %v, want ErrNotExist", err)
	}
	if !strings.Contains(err.Error(), "nope") {
		t.Errorf("error %q does not name the folder", err)
	}
}

// TestSaveMakesMissingFolders: a repository whose data/xx folder is gone
// (made by hand, or damaged) still accepts saves.
func TestSaveMakesMissingFolders(t *testing.T) {
	be := newBackend(t)
	if err := os.RemoveAll(filepath.Join(be.dir, "data")); err != nil {
		t.Fatal(err)
	}
	backendtest.Save(t, be, backend.Handle{Type: backend.PackFile, Name: "cd34"}, []byte("x"))
	if got := backendtest.Names(t, be, backend.PackFile); len(got) != 1 {
		t.Errorf("list = %v, want [cd34]", got)
	}
}

// enospcWriter accepts limit bytes, then fails as a full disk does.
type enospcWriter struct {
	w     io.Writer
	limit int
}

func (e *enospcWriter) Write(p []byte) (int, error) {
	if len(p) > e.limit {
		n, _ := e.w.Write(p[:e.limit])
		e.limit -= n
		return n, &fs.PathError{Op: "write", Path: "injected", Err: syscall.ENOSPC}
	}
	e.limit -= len(p)
	return e.w.Write(p)
}

func TestNoSpaceInjected(t *testing.T) {
	be := newBackend(t)
	be.wrapWriter = func(w io.Writer) io.Writer { return &enospcWriter{w: w, limit: 100_000} }
	data := backendtest.Data(1, 1<<20)
	h := backend.Handle{Type: backend.PackFile, Name: "ee01"}
	checkNoSpace(t, be, h, data)

	// The retry decorator gives up at once: a full disk is permanent.
	calls := 0
	be.wrapWriter = func(w io.Writer) io.Writer { calls++; return &enospcWriter{w: w, limit: 100} }
	rbe := retry.New(be, retry.Options{})
	err := rbe.Save(context.Background(), h, bytes.NewReader(data), int64(len(data)))
	if !errors.Is(err, backend.ErrNoSpace) || calls != 1 {
		t.Errorf("retried save on a full disk: err = %v after %d attempts, want ErrNoSpace after 1", err, calls)
	}
}

func checkNoSpace(t *testing.T, be *Backend, h backend.Handle, data []byte) {
	t.Helper()
	err := be.Save(context.Background(), h, bytes.NewReader(data), int64(len(data)))
	if !errors.Is(err, backend.ErrNoSpace) {
		t.Fatalf("save on a full disk: err = %v, want ErrNoSpace", err)
	}
	if !backend.IsPermanent(err) {
		t.Errorf("full disk error %v is not permanent", err)
	}
	if _, err := be.Stat(context.Background(), h); !errors.Is(err, backend.ErrNotExist) {
		t.Errorf("stat after failed save: %v, want ErrNotExist", err)
	}
	if tmp := backendtest.TempFiles(t, be.dir); len(tmp) != 0 {
		t.Errorf("temporary files left after a failed save: %v", tmp)
	}
}

// mountTmpfs mounts a small tmpfs (see testsrv.MountTmpfs: it fails in
// CI where mounting is refused, and skips only in quick local runs).
func mountTmpfs(t *testing.T, opts string) string {
	t.Helper()
	return testsrv.MountTmpfs(t, strings.TrimPrefix(opts, "size="))
}

func TestNoSpaceTmpfs(t *testing.T) {
	dir := mountTmpfs(t, "size=1m")
	be, err := Create(context.Background(), filepath.Join(dir, "repo"))
	if err != nil {
		t.Fatal(err)
	}
	small := backendtest.Data(2, 1000)
	backendtest.Save(t, be, backend.Handle{Type: backend.PackFile, Name: "0a"}, small)
	checkNoSpace(t, be, backend.Handle{Type: backend.PackFile, Name: "0b"}, backendtest.Data(3, 2<<20))
	// What was saved before is intact and space is free again.
	if got, err := backendtest.Load(context.Background(), be, backend.Handle{Type: backend.PackFile, Name: "0a"}, 0, 0); err != nil || !bytes.Equal(got, small) {
		t.Errorf("earlier file after a full disk: %d bytes, err %v", len(got), err)
	}
	backendtest.Save(t, be, backend.Handle{Type: backend.PackFile, Name: "0c"}, small)
}

func TestReadOnlyFileSystem(t *testing.T) {
	dir := mountTmpfs(t, "size=1m")
	if _, err := Create(context.Background(), filepath.Join(dir, "repo")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("", dir, "", syscall.MS_REMOUNT|syscall.MS_RDONLY, ""); err != nil {
		t.Fatalf("remount the tmpfs read-only: %v", err)
	}
	be, err := Open(context.Background(), filepath.Join(dir, "repo"))
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("x")
	err = be.Save(context.Background(), backend.Handle{Type: backend.KeyFile, Name: "k1"}, bytes.NewReader(data), 1)
	if !errors.Is(err, backend.ErrAccess) || !backend.IsPermanent(err) {
		t.Errorf("save on a read-only file system: err = %v, want permanent ErrAccess", err)
	}
}

// TestCleanTemp: temporary files older than the cut-off (a killed
// process's) go, in every folder; younger ones (a save that may still be
// running) and saved files, however old, stay. The retry decorator
// forwards the call.
func TestCleanTemp(t *testing.T) {
	for name, wrap := range map[string]func(*Backend) backend.TempCleaner{
		"direct": func(b *Backend) backend.TempCleaner { return b },
		"retry":  func(b *Backend) backend.TempCleaner { return retry.New(b, retry.Options{}) },
	} {
		t.Run(name, func(t *testing.T) {
			be := newBackend(t)
			now := time.Now()
			old, young := now.Add(-48*time.Hour), now.Add(-time.Hour)
			pack := backend.Handle{Type: backend.PackFile, Name: "ab12"}
			backendtest.Save(t, be, pack, []byte("pack"))
			os.Chtimes(be.path(pack), old, old)
			write := func(rel string, mtime time.Time) string {
				t.Helper()
				p := filepath.Join(be.dir, filepath.FromSlash(rel))
				if err := os.WriteFile(p, []byte("partial"), 0o600); err != nil {
					t.Fatal(err)
				}
				if err := os.Chtimes(p, mtime, mtime); err != nil {
					t.Fatal(err)
				}
				return p
			}
			gone := []string{write(".tmp-config1", old), write("data/ab/.tmp-1", old), write("data/ff/.tmp-2", old), write("keys/.tmp-3", old), write("locks/.tmp-4", old)}
			kept := []string{write("data/ab/.tmp-young", young), write("snapshots/.tmp-now", now), be.path(pack)}

			n, err := wrap(be).CleanTemp(context.Background(), now.Add(-24*time.Hour))
			if err != nil || n != len(gone) {
				t.Errorf("CleanTemp = %d, %v; want %d, nil", n, err, len(gone))
			}
			for _, p := range gone {
				if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("old temporary file %s not removed: %v", p, err)
				}
			}
			for _, p := range kept {
				if _, err := os.Stat(p); err != nil {
					t.Errorf("%s removed: %v", p, err)
				}
			}
		})
	}
}

// TestListManyFolders: a pack in each of the 256 data folders, read
// concurrently, is listed once; a ctx cancelled in fn stops the listing
// at once.
func TestListManyFolders(t *testing.T) {
	be := newBackend(t)
	for i := range 256 {
		backendtest.Save(t, be, backend.Handle{Type: backend.PackFile, Name: fmt.Sprintf("%02x00", i)}, []byte{byte(i)})
	}
	if got := backendtest.Names(t, be, backend.PackFile); len(got) != 256 {
		t.Errorf("listed %d packs, want 256", len(got))
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	calls := 0
	err := be.List(ctx, backend.PackFile, func(backend.FileInfo) error {
		calls++
		cancel()
		return nil
	})
	if !errors.Is(err, context.Canceled) || calls != 1 {
		t.Errorf("list cancelled in fn: err = %v after %d calls, want context.Canceled after 1", err, calls)
	}
}
