// Package backendtest is the conformance suite every backend.Backend
// passes. A backend's tests call Run with a function that returns a fresh,
// empty backend (on a real server for the network backends):
//
//	func TestConformance(t *testing.T) {
//		backendtest.Run(t, func(t *testing.T) backend.Backend { return newEmpty(t) })
//	}
//
// The suite checks the contract documented on backend.Backend: whole-file
// atomic saves, exact ranges, ErrNotExist for missing files, listings that
// never show partial files, safety under concurrent use, large files, the
// rejection of invalid handles and, for a backend.TempCleaner, a cleanup
// that never touches saved files. Each backend's own tests check that
// CleanTemp removes old temporary files, which only they can make.
package backendtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sitevault/sitevault/internal/backend"
)

// Run runs the conformance suite, one subtest per rule; newBackend is
// called once per subtest and must return an empty backend, closed by the
// caller's cleanup or by Run.
func Run(t *testing.T, newBackend func(t *testing.T) backend.Backend) {
	tests := []struct {
		name string
		fn   func(t *testing.T, be backend.Backend)
	}{
		{"SaveLoad", testSaveLoad},
		{"Ranges", testRanges},
		{"Missing", testMissing},
		{"List", testList},
		{"Remove", testRemove},
		{"SaveTwice", testSaveTwice},
		{"EveryType", testEveryType},
		{"InvalidHandles", testInvalidHandles},
		{"LoadFnError", testLoadFnError},
		{"Concurrent", testConcurrent},
		{"InterruptedSave", testInterruptedSave},
		{"ListDuringSave", testListDuringSave},
		{"Large", testLarge},
		{"ConfigNotReplaced", testConfigNotReplaced},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			be := newBackend(t)
			t.Cleanup(func() { be.Close() })
			tt.fn(t, be)
		})
	}
	// Only backends whose interrupted saves can leave temporary files
	// clean them; the others have no such rule to keep.
	be := newBackend(t)
	defer be.Close()
	if tc, ok := be.(backend.TempCleaner); ok {
		t.Run("CleanTemp", func(t *testing.T) { testCleanTemp(t, be, tc) })
	}
}

// Data returns n deterministic pseudo-random bytes.
func Data(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 0x5173))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	for i := n &^ 7; i < n; i++ {
		b[i] = byte(r.Uint32())
	}
	return b
}

// Save stores data under h or fails the test.
func Save(tb testing.TB, be backend.Backend, h backend.Handle, data []byte) {
	tb.Helper()
	if err := be.Save(context.Background(), h, bytes.NewReader(data), int64(len(data))); err != nil {
		tb.Fatalf("save %v: %v", h, err)
	}
}

// Load returns the length bytes of h at offset, or an error.
func Load(ctx context.Context, be backend.Backend, h backend.Handle, length int, offset int64) ([]byte, error) {
	var data []byte
	err := be.Load(ctx, h, length, offset, func(rd io.Reader) error {
		var err error
		data, err = io.ReadAll(rd)
		return err
	})
	return data, err
}

// Names lists the names of the files of type t, sorted.
func Names(tb testing.TB, be backend.Backend, t backend.FileType) []string {
	tb.Helper()
	var names []string
	err := be.List(context.Background(), t, func(fi backend.FileInfo) error {
		names = append(names, fi.Name)
		return nil
	})
	if err != nil {
		tb.Fatalf("list %v: %v", t, err)
	}
	sort.Strings(names)
	return names
}

func packHandle(data []byte) backend.Handle {
	return backend.Handle{Type: backend.PackFile, Name: fmt.Sprintf("%x", sha256.Sum256(data))}
}

func mustLoad(t *testing.T, be backend.Backend, h backend.Handle, length int, offset int64) []byte {
	t.Helper()
	data, err := Load(context.Background(), be, h, length, offset)
	if err != nil {
		t.Fatalf("load %v %d+%d: %v", h, offset, length, err)
	}
	return data
}

func testSaveLoad(t *testing.T, be backend.Backend) {
	if be.Location() == "" {
		t.Error("Location() is empty")
	}
	for i, size := range []int{1, 17, 4096, 100_000, 1 << 20} {
		data := Data(uint64(i), size)
		h := packHandle(data)
		Save(t, be, h, data)
		if got := mustLoad(t, be, h, 0, 0); !bytes.Equal(got, data) {
			t.Fatalf("load %v: got %d bytes, want the %d saved", h, len(got), len(data))
		}
		fi, err := be.Stat(context.Background(), h)
		if err != nil {
			t.Fatalf("stat %v: %v", h, err)
		}
		if fi.Name != h.Name || fi.Size != int64(size) {
			t.Errorf("stat %v = %+v, want name %s size %d", h, fi, h.Name, size)
		}
		if d := time.Since(fi.ModTime); d < -time.Hour || d > time.Hour {
			t.Errorf("stat %v: ModTime %v is not about now", h, fi.ModTime)
		}
	}
}

func testRanges(t *testing.T, be backend.Backend) {
	const size = 300_000
	data := Data(7, size)
	h := packHandle(data)
	Save(t, be, h, data)
	r := rand.New(rand.NewPCG(1, 2))
	cases := [][2]int{{0, 1}, {0, size}, {size - 1, 1}, {size - 1, 0}, {1, 0}, {12345, 54321}, {size - 100, 100}}
	for range 20 {
		off := r.IntN(size)
		cases = append(cases, [2]int{off, r.IntN(size-off) + 1})
	}
	for _, c := range cases {
		off, length := c[0], c[1]
		want := data[off:]
		if length > 0 {
			want = want[:length]
		}
		if got := mustLoad(t, be, h, length, int64(off)); !bytes.Equal(got, want) {
			t.Fatalf("load %d+%d: got %d bytes, want %d (or other bytes)", off, length, len(got), len(want))
		}
	}
	// Ranges past the end fail with io.ErrUnexpectedEOF, never a short read.
	for _, c := range [][2]int{{size - 10, 11}, {0, size + 1}, {size + 10, 5}, {size + 10, 0}} {
		_, err := Load(context.Background(), be, h, c[1], int64(c[0]))
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("load %d+%d of a %d-byte file: err = %v, want io.ErrUnexpectedEOF", c[0], c[1], size, err)
		}
	}
}

func testMissing(t *testing.T, be backend.Backend) {
	ctx := context.Background()
	for _, h := range []backend.Handle{
		{Type: backend.ConfigFile},
		{Type: backend.PackFile, Name: "abcdef"},
		{Type: backend.SnapshotFile, Name: "nope"},
	} {
		if _, err := Load(ctx, be, h, 0, 0); !errors.Is(err, backend.ErrNotExist) {
			t.Errorf("load missing %v: err = %v, want ErrNotExist", h, err)
		}
		if _, err := be.Stat(ctx, h); !errors.Is(err, backend.ErrNotExist) {
			t.Errorf("stat missing %v: err = %v, want ErrNotExist", h, err)
		}
		if err := be.Remove(ctx, h); !errors.Is(err, backend.ErrNotExist) {
			t.Errorf("remove missing %v: err = %v, want ErrNotExist", h, err)
		}
		if !backend.IsPermanent(fmt.Errorf("wrapped: %w", backend.ErrNotExist)) {
			t.Error("ErrNotExist is not permanent")
		}
	}
	for _, ft := range backend.FileTypes {
		if names := Names(t, be, ft); len(names) != 0 {
			t.Errorf("list %v of an empty backend = %v", ft, names)
		}
	}
}

func testList(t *testing.T, be backend.Backend) {
	want := map[backend.FileType]map[string]int64{}
	for i := range 40 {
		ft := backend.FileTypes[i%len(backend.FileTypes)]
		data := Data(uint64(100+i), 10+i*7)
		h := backend.Handle{Type: ft, Name: fmt.Sprintf("%02x%x", i*6, sha256.Sum256(data))[:20]}
		Save(t, be, h, data)
		if want[ft] == nil {
			want[ft] = map[string]int64{}
		}
		want[ft][h.Name] = int64(len(data))
	}
	for _, ft := range backend.FileTypes {
		got := map[string]int64{}
		err := be.List(context.Background(), ft, func(fi backend.FileInfo) error {
			if _, dup := got[fi.Name]; dup {
				t.Errorf("list %v: %s listed twice", ft, fi.Name)
			}
			got[fi.Name] = fi.Size
			if fi.ModTime.IsZero() {
				t.Errorf("list %v: %s has no ModTime", ft, fi.Name)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("list %v: %v", ft, err)
		}
		if fmt.Sprint(got) != fmt.Sprint(want[ft]) {
			t.Errorf("list %v = %v, want %v", ft, got, want[ft])
		}
	}
	// An error from fn stops List and comes back unchanged.
	stop := errors.New("stop here")
	calls := 0
	err := be.List(context.Background(), backend.PackFile, func(backend.FileInfo) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("list with a failing fn: err = %v after %d calls, want %v after 1", err, calls, stop)
	}
}

func testRemove(t *testing.T, be backend.Backend) {
	ctx := context.Background()
	a, b := Data(1, 100), Data(2, 100)
	ha, hb := packHandle(a), packHandle(b)
	Save(t, be, ha, a)
	Save(t, be, hb, b)
	if err := be.Remove(ctx, ha); err != nil {
		t.Fatalf("remove %v: %v", ha, err)
	}
	if _, err := be.Stat(ctx, ha); !errors.Is(err, backend.ErrNotExist) {
		t.Errorf("stat after remove: err = %v, want ErrNotExist", err)
	}
	if _, err := Load(ctx, be, ha, 0, 0); !errors.Is(err, backend.ErrNotExist) {
		t.Errorf("load after remove: err = %v, want ErrNotExist", err)
	}
	if got := Names(t, be, backend.PackFile); len(got) != 1 || got[0] != hb.Name {
		t.Errorf("list after remove = %v, want [%s]", got, hb.Name)
	}
	if err := be.Remove(ctx, ha); !errors.Is(err, backend.ErrNotExist) {
		t.Errorf("second remove: err = %v, want ErrNotExist", err)
	}
}

func testSaveTwice(t *testing.T, be backend.Backend) {
	data := Data(3, 5000)
	h := packHandle(data)
	Save(t, be, h, data)
	err := be.Save(context.Background(), h, bytes.NewReader(data), int64(len(data)))
	if err != nil && !errors.Is(err, backend.ErrExist) {
		t.Fatalf("save %v again: err = %v, want nil or ErrExist", h, err)
	}
	if got := mustLoad(t, be, h, 0, 0); !bytes.Equal(got, data) {
		t.Fatal("file changed after a second save of the same bytes")
	}
}

// testConfigNotReplaced: of concurrent saves of the config, exactly one
// succeeds, the others fail with ErrExist, and the stored config is the
// winner's; a later save fails the same way.
func testConfigNotReplaced(t *testing.T, be backend.Backend) {
	const n = 4
	h := backend.Handle{Type: backend.ConfigFile}
	var wg sync.WaitGroup
	errs := make([]error, n)
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			data := Data(uint64(700+i), 300)
			<-start
			errs[i] = be.Save(context.Background(), h, bytes.NewReader(data), int64(len(data)))
		}()
	}
	close(start)
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Fatalf("saves %d and %d of the config both succeeded", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, backend.ErrExist):
			t.Errorf("save %d of the config: %v, want ErrExist", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no save of the config succeeded")
	}
	if got := mustLoad(t, be, h, 0, 0); !bytes.Equal(got, Data(uint64(700+winner), 300)) {
		t.Fatal("the stored config is not the one whose save succeeded")
	}
	data := Data(1, 10)
	if err := be.Save(context.Background(), h, bytes.NewReader(data), int64(len(data))); !errors.Is(err, backend.ErrExist) {
		t.Fatalf("saving over the config: %v, want ErrExist", err)
	}
	if got := mustLoad(t, be, h, 0, 0); !bytes.Equal(got, Data(uint64(700+winner), 300)) {
		t.Fatal("the config was replaced")
	}
}

func testEveryType(t *testing.T, be backend.Backend) {
	handles := []backend.Handle{{Type: backend.ConfigFile}}
	for _, ft := range backend.FileTypes {
		handles = append(handles, backend.Handle{Type: ft, Name: "00"}, backend.Handle{Type: ft, Name: "ff_a-b9"})
	}
	for i, h := range handles {
		if err := h.Valid(); err != nil {
			t.Fatal(err)
		}
		data := Data(uint64(200+i), 64+i)
		Save(t, be, h, data)
		if got := mustLoad(t, be, h, 0, 0); !bytes.Equal(got, data) {
			t.Errorf("load %v: wrong bytes", h)
		}
	}
	for _, ft := range backend.FileTypes {
		if got := Names(t, be, ft); fmt.Sprint(got) != "[00 ff_a-b9]" {
			t.Errorf("list %v = %v, want [00 ff_a-b9]", ft, got)
		}
	}
	for _, h := range handles {
		if err := be.Remove(context.Background(), h); err != nil {
			t.Errorf("remove %v: %v", h, err)
		}
	}
}

func testInvalidHandles(t *testing.T, be backend.Backend) {
	ctx := context.Background()
	bad := []backend.Handle{
		{Type: "bogus", Name: "abc"},
		{Type: backend.PackFile, Name: "../../etc"},
		{Type: backend.PackFile, Name: "a"},
		{Type: backend.KeyFile},
		{Type: backend.IndexFile, Name: "ABC"},
		{Type: backend.SnapshotFile, Name: "a/b"},
		{Type: backend.LockFile, Name: ".tmp-x"},
		{Type: backend.ConfigFile, Name: "x"},
	}
	for _, h := range bad {
		data := []byte("invalid")
		if err := be.Save(ctx, h, bytes.NewReader(data), int64(len(data))); err == nil {
			t.Errorf("save invalid handle %q: no error", h)
		} else if !backend.IsPermanent(err) {
			t.Errorf("save invalid handle %q: err %v is not permanent", h, err)
		}
		if _, err := Load(ctx, be, h, 0, 0); err == nil {
			t.Errorf("load invalid handle %q: no error", h)
		}
		if _, err := be.Stat(ctx, h); err == nil {
			t.Errorf("stat invalid handle %q: no error", h)
		}
		if err := be.Remove(ctx, h); err == nil {
			t.Errorf("remove invalid handle %q: no error", h)
		}
	}
	for _, ft := range backend.FileTypes {
		if names := Names(t, be, ft); len(names) != 0 {
			t.Errorf("list %v after invalid saves = %v", ft, names)
		}
	}
}

func testLoadFnError(t *testing.T, be backend.Backend) {
	data := Data(4, 1000)
	h := packHandle(data)
	Save(t, be, h, data)
	mine := errors.New("fn failed")
	calls := 0
	err := be.Load(context.Background(), h, 0, 0, func(rd io.Reader) error {
		calls++
		io.CopyN(io.Discard, rd, 10)
		return mine
	})
	if err != mine {
		t.Errorf("load with failing fn: err = %v, want fn's error unchanged", err)
	}
	if calls != 1 {
		t.Errorf("fn called %d times after its own error, want 1", calls)
	}
}

func testConcurrent(t *testing.T, be backend.Backend) {
	const n = 24
	var wg sync.WaitGroup
	errs := make(chan error, 3*n)
	files := make([][]byte, n)
	for i := range n {
		files[i] = Data(uint64(300+i), 1000+i*3000)
	}
	same := Data(999, 200_000) // every goroutine also saves this one file
	for i := range n {
		wg.Go(func() {
			ctx := context.Background()
			data := files[i]
			if err := be.Save(ctx, packHandle(data), bytes.NewReader(data), int64(len(data))); err != nil {
				errs <- err
				return
			}
			if err := be.Save(ctx, packHandle(same), bytes.NewReader(same), int64(len(same))); err != nil && !errors.Is(err, backend.ErrExist) {
				errs <- err
			}
			got, err := Load(ctx, be, packHandle(data), 0, 0)
			if err != nil {
				errs <- err
			} else if !bytes.Equal(got, data) {
				errs <- fmt.Errorf("file %d: wrong bytes", i)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := Names(t, be, backend.PackFile); len(got) != n+1 {
		t.Errorf("list after %d concurrent saves: %d files, want %d", n, len(got), n+1)
	}
	if got := mustLoad(t, be, packHandle(same), 0, 0); !bytes.Equal(got, same) {
		t.Error("file saved concurrently by every goroutine has wrong bytes")
	}
}

// failingReader yields data but fails (or cancels its context) after
// failAt bytes.
type failingReader struct {
	data   []byte
	pos    int
	failAt int
	cancel context.CancelFunc // if set, cancel instead of failing
	err    error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if r.pos >= r.failAt {
		if r.cancel != nil {
			r.cancel()
			// Keep yielding data: the backend must notice the context.
		} else {
			return 0, r.err
		}
	}
	if r.pos >= len(r.data) {
		return 0, io.EOF
	}
	end := min(len(r.data), r.pos+len(p))
	if r.cancel == nil {
		end = min(end, r.failAt)
	}
	n := copy(p, r.data[r.pos:end])
	r.pos += n
	return n, nil
}

func (r *failingReader) Seek(off int64, whence int) (int64, error) {
	if whence != io.SeekStart || off != 0 {
		return 0, errors.New("failingReader seeks only to the start")
	}
	r.pos = 0
	return 0, nil
}

func testInterruptedSave(t *testing.T, be backend.Backend) {
	data := Data(5, 3<<20)
	h := packHandle(data)

	boom := backend.Permanent(errors.New("reader broke"))
	rd := &failingReader{data: data, failAt: 1 << 20, err: boom}
	err := be.Save(context.Background(), h, rd, int64(len(data)))
	if err == nil {
		t.Fatal("save with a reader failing midway: no error")
	}
	checkAbsent(t, be, h, "a reader error")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rd = &failingReader{data: data, failAt: 1 << 20, cancel: cancel}
	if err := be.Save(ctx, h, rd, int64(len(data))); err == nil {
		t.Fatal("save cancelled midway: no error")
	}
	checkAbsent(t, be, h, "a cancelled context")

	// A reader shorter than size is a failed save too.
	short := data[:1000]
	if err := be.Save(context.Background(), h, bytes.NewReader(short), int64(len(data))); err == nil {
		t.Fatal("save of a reader shorter than size: no error")
	}
	checkAbsent(t, be, h, "a short reader")

	// The backend still works and the name is free.
	Save(t, be, h, data)
	if got := mustLoad(t, be, h, 0, 0); !bytes.Equal(got, data) {
		t.Fatal("save after interrupted saves stored wrong bytes")
	}
}

func checkAbsent(t *testing.T, be backend.Backend, h backend.Handle, after string) {
	t.Helper()
	if _, err := be.Stat(context.Background(), h); !errors.Is(err, backend.ErrNotExist) {
		t.Errorf("stat after save interrupted by %s: err = %v, want ErrNotExist", after, err)
	}
	for _, ft := range backend.FileTypes {
		if names := Names(t, be, ft); len(names) != 0 {
			t.Errorf("list %v after save interrupted by %s = %v, want nothing", ft, after, names)
		}
	}
}

// slowReader trickles data so that a save is in flight for a while.
type slowReader struct {
	*bytes.Reader
	chunk int
	pause time.Duration
}

func (r *slowReader) Read(p []byte) (int, error) {
	time.Sleep(r.pause)
	if len(p) > r.chunk {
		p = p[:r.chunk]
	}
	return r.Reader.Read(p)
}

func testListDuringSave(t *testing.T, be backend.Backend) {
	data := Data(6, 2<<20)
	h := packHandle(data)
	var done atomic.Bool
	saveErr := make(chan error, 1)
	go func() {
		defer done.Store(true)
		rd := &slowReader{Reader: bytes.NewReader(data), chunk: 64 << 10, pause: 5 * time.Millisecond}
		saveErr <- be.Save(context.Background(), h, rd, int64(len(data)))
	}()
	lists := 0
	for !done.Load() || lists == 0 {
		err := be.List(context.Background(), backend.PackFile, func(fi backend.FileInfo) error {
			if fi.Name != h.Name || fi.Size != int64(len(data)) {
				return fmt.Errorf("listed %s with %d bytes during a save of %s with %d bytes", fi.Name, fi.Size, h.Name, len(data))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := be.Stat(context.Background(), h); err == nil {
			if got, err := Load(context.Background(), be, h, 0, 0); err != nil || !bytes.Equal(got, data) {
				t.Fatalf("file visible during save but not whole: %d bytes, err %v", len(got), err)
			}
		}
		lists++
		time.Sleep(10 * time.Millisecond)
	}
	if err := <-saveErr; err != nil {
		t.Fatalf("save: %v", err)
	}
	if got := Names(t, be, backend.PackFile); len(got) != 1 {
		t.Errorf("list after save = %v, want [%s]", got, h.Name)
	}
}

func testLarge(t *testing.T, be backend.Backend) {
	if testing.Short() {
		t.Skip("large file: skipped in -short mode")
	}
	data := Data(8, 17<<20+3)
	h := packHandle(data)
	Save(t, be, h, data)
	got := mustLoad(t, be, h, 0, 0)
	if sha256.Sum256(got) != sha256.Sum256(data) {
		t.Fatalf("load large file: %d bytes with another hash, want %d", len(got), len(data))
	}
	tail := mustLoad(t, be, h, 1000, int64(len(data)-1000))
	if !bytes.Equal(tail, data[len(data)-1000:]) {
		t.Fatal("load the last 1000 bytes of a large file: wrong bytes")
	}
	mid := mustLoad(t, be, h, 5<<20, 9<<20)
	if !bytes.Equal(mid, data[9<<20:14<<20]) {
		t.Fatal("load 5 MiB in the middle of a large file: wrong bytes")
	}
	fi, err := be.Stat(context.Background(), h)
	if err != nil || fi.Size != int64(len(data)) {
		t.Fatalf("stat large file = %+v, %v", fi, err)
	}
}

// testCleanTemp: a cleanup, even of every temporary file whatever its age,
// leaves the saved files of every type alone.
func testCleanTemp(t *testing.T, be backend.Backend, tc backend.TempCleaner) {
	handles := []backend.Handle{{Type: backend.ConfigFile}}
	for _, ft := range backend.FileTypes {
		handles = append(handles, backend.Handle{Type: ft, Name: "a1b2"})
	}
	for i, h := range handles {
		Save(t, be, h, Data(uint64(400+i), 100))
	}
	n, err := tc.CleanTemp(context.Background(), time.Now().Add(24*time.Hour))
	if err != nil || n != 0 {
		t.Errorf("clean temporary files of a backend with none: removed %d, err %v; want 0, nil", n, err)
	}
	for _, h := range handles {
		if _, err := be.Stat(context.Background(), h); err != nil {
			t.Errorf("stat %v after cleaning temporary files: %v", h, err)
		}
	}
}

// TempFiles returns the backend temporary files (backend.IsTemp) under the
// local folder dir, so that tests can assert an interrupted save left none.
func TempFiles(t testing.TB, dir string) []string {
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
		t.Fatalf("list temporary files under %s: %v", dir, err)
	}
	return tmp
}
