package local

import (
	"bytes"
	"context"
	"errors"
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
	if tmp := tempFiles(t, be.dir); len(tmp) != 0 {
		t.Errorf("temporary files left after a failed save: %v", tmp)
	}
}

func tempFiles(t *testing.T, dir string) []string {
	t.Helper()
	var tmp []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if backend.IsTemp(d.Name()) {
			tmp = append(tmp, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return tmp
}

// mountTmpfs mounts a small tmpfs, or skips the test where mounting is not
// permitted (not root, or a container without CAP_SYS_ADMIN);
// TestNoSpaceInjected covers the same path there.
func mountTmpfs(t *testing.T, opts string) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, opts); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v); TestNoSpaceInjected covers a full disk", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	return dir
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
		t.Skipf("cannot remount read-only: %v", err)
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
