package repository_test

// Glue for faults_test.go: a retry log that counts retries, counting
// proxies (TCP and HTTP), deterministic test data and backup/restore
// helpers that compare bytes.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sitevault/sitevault/internal/backend"
	"github.com/sitevault/sitevault/internal/backend/retry"
	"github.com/sitevault/sitevault/internal/repository"
)

// retryLog is a slog.Handler that records the retry decorator's warnings
// (it logs one per retry, and nothing else at that level) as "op file".
type retryLog struct {
	mu      sync.Mutex
	retries []string
}

func (l *retryLog) Enabled(_ context.Context, lvl slog.Level) bool { return lvl >= slog.LevelWarn }

func (l *retryLog) Handle(_ context.Context, rec slog.Record) error {
	if rec.Level != slog.LevelWarn {
		return nil
	}
	var op, file string
	rec.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "op":
			op = a.Value.String()
		case "file":
			file = a.Value.String()
		}
		return true
	})
	l.mu.Lock()
	l.retries = append(l.retries, op+" "+file)
	l.mu.Unlock()
	return nil
}

func (l *retryLog) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *retryLog) WithGroup(string) slog.Handler      { return l }

// count returns the retries of op on files whose name starts with prefix.
func (l *retryLog) count(op, prefix string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, r := range l.retries {
		if strings.HasPrefix(r, op+" "+prefix) {
			n++
		}
	}
	return n
}

func (l *retryLog) total() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.retries)
}

func (l *retryLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.retries, "; ")
}

// fastRetry retries quickly (the faults are one-shot) and logs into log.
func fastRetry(log *retryLog) retry.Options {
	return retry.Options{InitialDelay: 10 * time.Millisecond, MaxDelay: 100 * time.Millisecond, Logger: slog.New(log)}
}

// faultOptions keep parallelism small (the machine has 2 cores) but above
// one, so uploads and downloads overlap as in production.
var faultOptions = repository.Options{Packers: 2, Connections: 2}

func hostPort(tb testing.TB, addr string) (string, int) {
	tb.Helper()
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		tb.Fatal(err)
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		tb.Fatal(err)
	}
	return host, port
}

// connCounter is a plain TCP proxy on loopback that counts the
// connections clients open through it.
type connCounter struct {
	Addr  string
	l     net.Listener
	conns atomic.Int64
	wg    sync.WaitGroup
}

func startConnCounter(tb testing.TB, target string) *connCounter {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	c := &connCounter{Addr: l.Addr().String(), l: l}
	var mu sync.Mutex
	open := map[net.Conn]bool{}
	c.wg.Go(func() {
		for {
			cc, err := l.Accept()
			if err != nil {
				return
			}
			c.conns.Add(1)
			sc, err := net.DialTimeout("tcp", target, 5*time.Second)
			if err != nil {
				cc.Close()
				continue
			}
			mu.Lock()
			open[cc], open[sc] = true, true
			mu.Unlock()
			pipe := func(dst, src net.Conn) {
				io.Copy(dst, src)
				dst.Close()
				src.Close()
			}
			c.wg.Go(func() { pipe(sc, cc) })
			c.wg.Go(func() { pipe(cc, sc) })
		}
	})
	tb.Cleanup(func() {
		l.Close()
		mu.Lock()
		for c := range open {
			c.Close()
		}
		mu.Unlock()
		c.wg.Wait()
	})
	return c
}

// requestCounter is an HTTP reverse proxy that counts requests. It keeps
// the client's Host header, so S3 signatures stay valid.
type requestCounter struct {
	Addr     string
	requests atomic.Int64
}

func startRequestCounter(tb testing.TB, target string) *requestCounter {
	tb.Helper()
	u, err := url.Parse("http://" + target)
	if err != nil {
		tb.Fatal(err)
	}
	rc := &requestCounter{}
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc.requests.Add(1)
		rp.ServeHTTP(w, r)
	}))
	tb.Cleanup(srv.Close)
	rc.Addr = srv.Listener.Addr().String()
	return rc
}

// randomData returns n incompressible bytes, the same for the same seed.
func randomData(seed uint64, n int) []byte {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), 's', 'v'}).Read(b)
	return b
}

// textData returns about n bytes of compressible, PHP-like text.
func textData(seed uint64, n int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "<?php // file %d line %d\n$option_%d = get_option('sitevault_%d');\n", seed, i, i%97, seed)
	}
	return b.Bytes()[:n]
}

// siteFiles returns a small site's files: media (incompressible) and text.
func siteFiles(seed uint64, media, text int) map[string][]byte {
	return map[string][]byte{
		fmt.Sprintf("media-%d.jpg", seed): randomData(seed, media),
		fmt.Sprintf("code-%d.php", seed):  textData(seed, text),
		"empty":                           {},
	}
}

// history is what each snapshot must restore to.
type history map[repository.ID]map[string][]byte

// backup saves files as a snapshot, fails the test on error and records
// the snapshot in h.
func (h history) backup(t *testing.T, r *repository.Repository, files map[string][]byte) repository.ID {
	t.Helper()
	sn, err := repository.SaveTestSnapshot(context.Background(), r, "faults", time.Now(), files)
	if err != nil {
		t.Fatalf("backup: %v", err)
	}
	h[sn.ID] = files
	return sn.ID
}

// restoreAll restores every snapshot of h and compares bytes.
func (h history) restoreAll(t *testing.T, r *repository.Repository) {
	t.Helper()
	for id, want := range h {
		got, err := repository.TestRestore(t, r, id)
		if err != nil {
			t.Fatalf("restore snapshot %v: %v", id.Short(), err)
		}
		if len(got) != len(want) {
			t.Fatalf("restore snapshot %v: %d files, want %d", id.Short(), len(got), len(want))
		}
		for name, data := range want {
			if !bytes.Equal(got[name], data) {
				t.Fatalf("restore snapshot %v: %q differs (%d bytes, want %d)", id.Short(), name, len(got[name]), len(data))
			}
		}
	}
}

// checkOK runs Check without and with ReadData and fails on any problem.
func checkOK(t *testing.T, r *repository.Repository) {
	t.Helper()
	for _, readData := range []bool{false, true} {
		res, err := r.Check(context.Background(), repository.CheckOptions{ReadData: readData})
		if err != nil {
			t.Fatalf("check (read data %v): %v", readData, err)
		}
		for _, p := range res.Problems {
			t.Errorf("check (read data %v): %v", readData, p)
		}
		if !res.OK() {
			t.FailNow()
		}
	}
}

// packNames lists the pack files on be.
func packNames(t *testing.T, be backend.Backend) map[string]int64 {
	t.Helper()
	packs := map[string]int64{}
	err := be.List(context.Background(), backend.PackFile, func(fi backend.FileInfo) error {
		packs[fi.Name] = fi.Size
		return nil
	})
	if err != nil {
		t.Fatalf("list packs: %v", err)
	}
	return packs
}

// rewritePack replaces a pack's bytes with edit's result, through the
// backend (any backend: names are content-derived, but backends do not
// verify them).
func rewritePack(t *testing.T, be backend.Backend, name string, edit func([]byte) []byte) {
	t.Helper()
	ctx := context.Background()
	h := backend.Handle{Type: backend.PackFile, Name: name}
	var data []byte
	err := be.Load(ctx, h, 0, 0, func(rd io.Reader) error {
		var err error
		data, err = io.ReadAll(rd)
		return err
	})
	if err != nil {
		t.Fatalf("read pack %s: %v", name, err)
	}
	data = edit(data)
	if err := be.Remove(ctx, h); err != nil {
		t.Fatalf("remove pack %s: %v", name, err)
	}
	if err := be.Save(ctx, h, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatalf("write pack %s: %v", name, err)
	}
}

// treeFiles lists the files under dir (relative names), for "nothing
// written" checks.
func treeFiles(t *testing.T, dir string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		files = append(files, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// fullDisk wraps a backend whose Save writes what it reads (local): the
// bytes saved count against free, and once it is spent the data reader
// fails as a full disk's write does (ENOSPC), so the backend's own error
// mapping and clean-up run. A failed or rewound save gives its bytes back.
type fullDisk struct {
	backend.Backend
	mu   sync.Mutex
	free int64
}

func (d *fullDisk) grow(n int64) {
	d.mu.Lock()
	d.free += n
	d.mu.Unlock()
}

func (d *fullDisk) Save(ctx context.Context, h backend.Handle, rd io.ReadSeeker, size int64) error {
	q := &quotaReader{rd: rd, d: d}
	err := d.Backend.Save(ctx, h, q, size)
	if err != nil {
		q.refund()
	}
	return err
}

type quotaReader struct {
	rd io.ReadSeeker
	d  *fullDisk
	n  int64 // bytes charged
}

func (q *quotaReader) Read(p []byte) (int, error) {
	q.d.mu.Lock()
	k := min(int64(len(p)), q.d.free)
	q.d.free -= k
	q.d.mu.Unlock()
	q.n += k
	if k == 0 && len(p) > 0 {
		return 0, &fs.PathError{Op: "write", Path: "injected", Err: syscall.ENOSPC}
	}
	n, err := q.rd.Read(p[:k])
	if int64(n) < k {
		q.d.grow(k - int64(n))
		q.n -= k - int64(n)
	}
	return n, err
}

func (q *quotaReader) Seek(off int64, whence int) (int64, error) {
	q.refund()
	return q.rd.Seek(off, whence)
}

func (q *quotaReader) refund() {
	q.d.grow(q.n)
	q.n = 0
}
