package retry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sitevault/sitevault/internal/backend"
	"github.com/sitevault/sitevault/internal/backend/backendtest"
	"github.com/sitevault/sitevault/internal/backend/mem"
)

var errFlaky = errors.New("connection reset (injected)")

// flaky wraps a backend and fails the next failures[op] calls of op with
// errFlaky (or err, if set); a failing Save first consumes half of its
// reader, a failing Load fails midway through its reader.
type flaky struct {
	backend.Backend
	mu       sync.Mutex
	failures map[string]int
	calls    map[string]int
	err      error
}

func newFlaky() *flaky {
	return &flaky{Backend: mem.New(), failures: map[string]int{}, calls: map[string]int{}}
}

func (f *flaky) fail(op string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[op]++
	if f.failures[op] > 0 {
		f.failures[op]--
		if f.err != nil {
			return f.err
		}
		return fmt.Errorf("%s: %w", op, errFlaky)
	}
	return nil
}

func (f *flaky) Save(ctx context.Context, h backend.Handle, rd io.ReadSeeker, size int64) error {
	if err := f.fail("save"); err != nil {
		io.CopyN(io.Discard, rd, size/2)
		return err
	}
	// Deliberately no rewind: the decorator must rewind.
	data, err := io.ReadAll(io.LimitReader(rd, size))
	if err != nil {
		return err
	}
	if int64(len(data)) != size {
		return backend.Permanent(fmt.Errorf("save: got %d bytes, want %d", len(data), size))
	}
	return f.Backend.Save(ctx, h, bytes.NewReader(data), size)
}

func (f *flaky) Load(ctx context.Context, h backend.Handle, length int, offset int64, fn func(io.Reader) error) error {
	err := f.fail("load")
	return f.Backend.Load(ctx, h, length, offset, func(rd io.Reader) error {
		if err != nil {
			return fn(io.MultiReader(io.LimitReader(rd, 10), &failReader{err}))
		}
		return fn(rd)
	})
}

type failReader struct{ err error }

func (r *failReader) Read([]byte) (int, error) { return 0, r.err }

func (f *flaky) Stat(ctx context.Context, h backend.Handle) (backend.FileInfo, error) {
	if err := f.fail("stat"); err != nil {
		return backend.FileInfo{}, err
	}
	return f.Backend.Stat(ctx, h)
}

func (f *flaky) List(ctx context.Context, t backend.FileType, fn func(backend.FileInfo) error) error {
	failing := f.fail("list")
	n := 0
	err := f.Backend.List(ctx, t, func(fi backend.FileInfo) error {
		if failing != nil && n == 2 {
			return failing
		}
		n++
		return fn(fi)
	})
	return err
}

func (f *flaky) Remove(ctx context.Context, h backend.Handle) error {
	if err := f.fail("remove"); err != nil {
		f.Backend.Remove(ctx, h) // removed, but the answer got lost
		return err
	}
	return f.Backend.Remove(ctx, h)
}

func fast(logger *slog.Logger) Options {
	return Options{InitialDelay: time.Millisecond, MaxDelay: 4 * time.Millisecond, Logger: logger}
}

func TestConformance(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) backend.Backend { return New(mem.New(), fast(nil)) })
}

func TestSaveRetriesAndRewinds(t *testing.T) {
	f := newFlaky()
	f.failures["save"] = 3
	var logs bytes.Buffer
	be := New(f, fast(slog.New(slog.NewTextHandler(&logs, nil))))
	data := backendtest.Data(1, 10_000)
	h := backend.Handle{Type: backend.PackFile, Name: "aa11"}
	// The reader starts off the beginning: Save must rewind it.
	rd := bytes.NewReader(data)
	rd.Seek(500, io.SeekStart)
	if err := be.Save(context.Background(), h, rd, int64(len(data))); err != nil {
		t.Fatalf("save after 3 transient failures: %v", err)
	}
	if f.calls["save"] != 4 {
		t.Errorf("save attempts = %d, want 4", f.calls["save"])
	}
	got, err := backendtest.Load(context.Background(), f.Backend, h, 0, 0)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("saved bytes differ (%d bytes, err %v)", len(got), err)
	}
	if n := strings.Count(logs.String(), "retrying"); n != 3 {
		t.Errorf("logged %d retries, want 3:\n%s", n, logs.String())
	}
}

func TestPermanentNotRetried(t *testing.T) {
	for _, perm := range []error{
		backend.Permanent(errors.New("bad request")),
		fmt.Errorf("login: %w", backend.ErrAccess),
		fmt.Errorf("write: %w", backend.ErrNoSpace),
		context.Canceled,
	} {
		f := newFlaky()
		f.err = perm
		f.failures["save"] = 5
		be := New(f, fast(nil))
		err := be.Save(context.Background(), backend.Handle{Type: backend.KeyFile, Name: "k"}, bytes.NewReader([]byte("x")), 1)
		if !errors.Is(err, perm) && !errors.Is(err, errors.Unwrap(perm)) {
			t.Errorf("err = %v, want %v", err, perm)
		}
		if f.calls["save"] != 1 {
			t.Errorf("%v: %d attempts, want 1", perm, f.calls["save"])
		}
	}
}

func TestMissingNotRetried(t *testing.T) {
	f := newFlaky()
	be := New(f, fast(nil))
	_, err := be.Stat(context.Background(), backend.Handle{Type: backend.PackFile, Name: "ab"})
	if !errors.Is(err, backend.ErrNotExist) || f.calls["stat"] != 1 {
		t.Errorf("stat missing: err = %v after %d calls, want ErrNotExist after 1", err, f.calls["stat"])
	}
}

func TestGivesUp(t *testing.T) {
	f := newFlaky()
	f.failures["stat"] = 100
	be := New(f, Options{MaxAttempts: 4, InitialDelay: time.Millisecond})
	_, err := be.Stat(context.Background(), backend.Handle{Type: backend.PackFile, Name: "ab"})
	if !errors.Is(err, errFlaky) || f.calls["stat"] != 4 {
		t.Errorf("err = %v after %d attempts, want errFlaky after 4", err, f.calls["stat"])
	}
	if err != nil && !strings.Contains(err.Error(), "gave up after 4 attempts") {
		t.Errorf("error %q does not say it gave up", err)
	}

	// MaxElapsed bounds the time as well.
	f.calls["stat"] = 0
	be = New(f, Options{MaxAttempts: 1000, InitialDelay: 20 * time.Millisecond, MaxElapsed: 100 * time.Millisecond})
	start := time.Now()
	if _, err := be.Stat(context.Background(), backend.Handle{Type: backend.PackFile, Name: "ab"}); err == nil {
		t.Fatal("no error")
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("gave up after %v, want about 100ms", d)
	}
}

func TestCancelStopsWaiting(t *testing.T) {
	f := newFlaky()
	f.failures["stat"] = 100
	be := New(f, Options{InitialDelay: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := be.Stat(ctx, backend.Handle{Type: backend.PackFile, Name: "ab"})
	if !errors.Is(err, errFlaky) || time.Since(start) > 5*time.Second {
		t.Errorf("err = %v after %v, want errFlaky soon after the context ends", err, time.Since(start))
	}
}

func TestLoadRecallsFn(t *testing.T) {
	f := newFlaky()
	be := New(f, fast(nil))
	data := backendtest.Data(2, 5000)
	h := backend.Handle{Type: backend.PackFile, Name: "bb22"}
	backendtest.Save(t, f.Backend, h, data)
	f.failures["load"] = 2
	calls := 0
	var got []byte
	err := be.Load(context.Background(), h, 0, 0, func(rd io.Reader) error {
		calls++
		var err error
		got, err = io.ReadAll(rd)
		return err
	})
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("load after 2 mid-read failures: %d bytes, err %v", len(got), err)
	}
	if calls != 3 {
		t.Errorf("fn called %d times, want 3 (once per attempt)", calls)
	}

	// fn's own error is returned unchanged and never retried, even when fn
	// wraps a read error it chose to ignore.
	mine := errors.New("mine")
	calls = 0
	err = be.Load(context.Background(), h, 0, 0, func(io.Reader) error { calls++; return mine })
	if err != mine || calls != 1 {
		t.Errorf("load with failing fn: err = %v after %d calls, want fn's error after 1", err, calls)
	}
}

func TestListSkipsSeen(t *testing.T) {
	f := newFlaky()
	be := New(f, fast(nil))
	for i := range 6 {
		backendtest.Save(t, f.Backend, backend.Handle{Type: backend.IndexFile, Name: fmt.Sprintf("i%d", i)}, []byte{byte(i)})
	}
	f.failures["list"] = 2
	seen := map[string]int{}
	err := be.List(context.Background(), backend.IndexFile, func(fi backend.FileInfo) error { seen[fi.Name]++; return nil })
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != 6 {
		t.Errorf("listed %d files, want 6: %v", len(seen), seen)
	}
	for name, n := range seen {
		if n != 1 {
			t.Errorf("%s passed to fn %d times, want once", name, n)
		}
	}
}

func TestRemoveLostAnswer(t *testing.T) {
	f := newFlaky()
	be := New(f, fast(nil))
	h := backend.Handle{Type: backend.LockFile, Name: "l1"}
	backendtest.Save(t, f.Backend, h, []byte("lock"))
	f.failures["remove"] = 1
	if err := be.Remove(context.Background(), h); err != nil {
		t.Errorf("remove whose first answer was lost: %v", err)
	}
	if err := be.Remove(context.Background(), h); !errors.Is(err, backend.ErrNotExist) {
		t.Errorf("remove missing: err = %v, want ErrNotExist", err)
	}
}

func TestJitter(t *testing.T) {
	for range 1000 {
		if d := jitter(100 * time.Millisecond); d < 75*time.Millisecond || d > 125*time.Millisecond {
			t.Fatalf("jitter(100ms) = %v, outside ±25%%", d)
		}
	}
}

// cleaner is a flaky backend that also cleans temporary files: each
// attempt removes one file, then fails while failures last.
type cleaner struct {
	*flaky
	olderThan time.Time
}

func (c *cleaner) CleanTemp(ctx context.Context, olderThan time.Time) (int, error) {
	c.olderThan = olderThan
	return 1, c.fail("clean")
}

// TestCleanTempForwarded: CleanTemp reaches a wrapped TempCleaner, is
// retried, and counts what every attempt removed; a backend without
// temporary files has nothing to clean.
func TestCleanTempForwarded(t *testing.T) {
	c := &cleaner{flaky: newFlaky()}
	c.failures["clean"] = 2
	cut := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	n, err := New(c, fast(nil)).CleanTemp(context.Background(), cut)
	if err != nil || n != 3 || c.calls["clean"] != 3 || !c.olderThan.Equal(cut) {
		t.Errorf("CleanTemp = %d, %v after %d attempts (cut-off %v); want 3, nil after 3 (%v)", n, err, c.calls["clean"], c.olderThan, cut)
	}
	if n, err := New(mem.New(), fast(nil)).CleanTemp(context.Background(), cut); n != 0 || err != nil {
		t.Errorf("CleanTemp of a backend without temporary files = %d, %v; want 0, nil", n, err)
	}
}
