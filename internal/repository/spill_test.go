package repository

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sitevault/sitevault/internal/backend"
	"github.com/sitevault/sitevault/internal/backend/mem"
)

// spillWatch records the temporary pack files a test's repository opens
// (through createSpill) and whether each was closed; fail, if set, makes a
// store's writes fail once it holds that many bytes.
type spillWatch struct {
	mu     sync.Mutex
	stores []*watchedSpill
	fail   int64
}

type watchedSpill struct {
	spillStore
	w       *spillWatch
	written int64
	closed  bool
}

func (s *watchedSpill) Write(b []byte) (int, error) {
	if s.w.fail > 0 && s.written+int64(len(b)) > s.w.fail {
		return 0, &os.PathError{Op: "write", Path: "pack", Err: syscall.ENOSPC}
	}
	n, err := s.spillStore.Write(b)
	s.written += int64(n)
	return n, err
}

func (s *watchedSpill) Close() error {
	s.w.mu.Lock()
	s.closed = true
	s.w.mu.Unlock()
	return s.spillStore.Close()
}

// watchSpills wraps createSpill for the test.
func watchSpills(t *testing.T, failAt int64) *spillWatch {
	t.Helper()
	w := &spillWatch{fail: failAt}
	orig := createSpill
	createSpill = func(dir string) (spillStore, error) {
		st, err := orig(dir)
		if err != nil {
			return nil, err
		}
		ws := &watchedSpill{spillStore: st, w: w}
		w.mu.Lock()
		w.stores = append(w.stores, ws)
		w.mu.Unlock()
		return ws, nil
	}
	t.Cleanup(func() { createSpill = orig })
	return w
}

// requireReleased fails unless the repository made some temporary files,
// closed every one, and left dir empty.
func (w *spillWatch) requireReleased(t *testing.T, dir string) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.stores) == 0 {
		t.Fatal("no temporary pack file was made")
	}
	for i, s := range w.stores {
		if !s.closed {
			t.Errorf("temporary pack file %d of %d is still open", i+1, len(w.stores))
		}
	}
	left, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range left {
		t.Errorf("left in the spill folder: %s", e.Name())
	}
}

// failPackSaves fails every pack upload.
type failPackSaves struct{ backend.Backend }

var errUploadRefused = errors.New("upload refused by the test backend")

func (f failPackSaves) Save(ctx context.Context, h backend.Handle, rd io.ReadSeeker, size int64) error {
	if h.Type == backend.PackFile {
		return errUploadRefused
	}
	return f.Backend.Save(ctx, h, rd, size)
}

func spillFiles() map[string][]byte {
	files := map[string][]byte{}
	for i := range 6 {
		files[fmt.Sprintf("media-%d", i)] = randBytes(uint64(100+i), 700<<10)
		files[fmt.Sprintf("text-%d", i)] = compressible(uint64(200+i), 300<<10)
	}
	return files
}

// A spilled backup stores packs that check and restore, and closes (so
// removes) every temporary file it made; the spill folder is left empty.
func TestSpillBackupRemovesTempFiles(t *testing.T) {
	w := watchSpills(t, 0)
	dir := t.TempDir()
	be := mem.New()
	opts := Options{SpillDir: dir, PackSize: 1 << 20, Packers: 2}
	r := TestRepositoryWith(t, be, opts)
	files := spillFiles()
	sn := TestSnapshot(t, r, "s", time.Now(), files)
	if r.Saved().Packs < 3 {
		t.Fatalf("%d packs uploaded, want several", r.Saved().Packs)
	}
	w.requireReleased(t, dir)
	r2 := TestOpen(t, be, Options{})
	mustCheck(t, r2)
	mustRestore(t, r2, sn, files)
}

// A backup whose pack uploads fail returns the backend's error; the
// temporary files of the packs that failed are closed at once, those of
// packs still being filled by Close.
func TestSpillUploadErrorRemovesTempFiles(t *testing.T) {
	w := watchSpills(t, 0)
	dir := t.TempDir()
	inner := mem.New()
	TestRepositoryWith(t, inner, Options{}) // init while saves succeed
	r := TestOpen(t, failPackSaves{inner}, Options{SpillDir: dir, PackSize: 1 << 20, Packers: 2})
	_, err := SaveTestSnapshot(context.Background(), r, "s", time.Now(), spillFiles())
	if !errors.Is(err, errUploadRefused) {
		t.Fatalf("backup with failing uploads = %v, want the upload error", err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	w.requireReleased(t, dir)
}

// A full disk under the spill folder fails the backup with an error that
// names the folder and says the disk is full; nothing half-written reaches
// the repository, which checks clean, and the next backup stores all.
func TestSpillDiskFull(t *testing.T) {
	w := watchSpills(t, 600<<10) // each temporary file takes 600 KiB, then ENOSPC
	dir := t.TempDir()
	be := mem.New()
	r := TestRepositoryWith(t, be, Options{SpillDir: dir, PackSize: 1 << 20})
	files := spillFiles()
	_, err := SaveTestSnapshot(context.Background(), r, "s", time.Now(), files)
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("backup on a full spill disk = %v, want ENOSPC", err)
	}
	if msg := err.Error(); !strings.Contains(msg, dir) || !strings.Contains(msg, "disk is full") {
		t.Errorf("error %q does not name the folder %s and say the disk is full", msg, dir)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	w.requireReleased(t, dir)

	w.fail = 0
	r2 := TestOpen(t, be, Options{SpillDir: dir, PackSize: 1 << 20})
	if _, err := r2.RecoverOrphans(context.Background()); err != nil {
		t.Fatal(err)
	}
	mustCheck(t, r2)
	sn := TestSnapshot(t, r2, "s", time.Now(), files)
	mustCheck(t, r2)
	mustRestore(t, TestOpen(t, be, Options{}), sn, files)
}

// Packs streamed from their temporary files reach each real backend
// (local: temporary file and rename; SFTP; S3 PutObject with the size)
// whole: the repository checks, reading every pack, and restores.
func TestSpillRealBackends(t *testing.T) {
	for _, rb := range realBackends(t) {
		t.Run(rb.name, func(t *testing.T) {
			w := watchSpills(t, 0)
			dir := t.TempDir()
			where := rb.new(t)
			r := TestRepositoryWith(t, rb.open(t, where), Options{SpillDir: dir, PackSize: 1 << 20, Packers: 2})
			files := spillFiles()
			sn := TestSnapshot(t, r, "s", time.Now(), files)
			w.requireReleased(t, dir)
			r2 := TestOpen(t, rb.open(t, where), Options{})
			mustCheck(t, r2)
			mustRestore(t, r2, sn, files)
		})
	}
}
