package sftp

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/sitevault/sitevault/internal/backend"
	"github.com/sitevault/sitevault/internal/backend/backendtest"
	"github.com/sitevault/sitevault/internal/backend/retry"
	"github.com/sitevault/sitevault/internal/testsrv"
)

// server is the package's sshd, started once by TestMain; nil if sshd is
// not installed (tests then call testsrv.Missing).
var server *testsrv.SSHD

func TestMain(m *testing.M) {
	os.Exit(testsrv.RunWithSSHD(m, func(s *testsrv.SSHD) { server = s }))
}

func sshd(t *testing.T) *testsrv.SSHD {
	t.Helper()
	return testsrv.NeedSSHD(t, server)
}

var repos atomic.Int64

// config returns a Config for a fresh folder on the server, verified with
// known_hosts and logged in with the client key file.
func config(t *testing.T) Config {
	s := sshd(t)
	return Config{
		User:           s.User,
		Host:           s.Host,
		Port:           s.Port,
		Path:           filepath.Join(s.Dir, "repo"+strconv.FormatInt(repos.Add(1), 10)),
		IdentityFile:   s.ClientKeyFile,
		KnownHostsFile: s.KnownHostsFile,
		Timeout:        5 * time.Second,
	}
}

func create(t *testing.T, cfg Config) *Backend {
	t.Helper()
	be, err := Create(context.Background(), cfg)
	if err != nil {
		t.Fatalf("create: %v\nsshd log:\n%s", err, server.Log())
	}
	t.Cleanup(func() { be.Close() })
	return be
}

func fast() retry.Options {
	return retry.Options{InitialDelay: 10 * time.Millisecond, MaxDelay: 100 * time.Millisecond}
}

func TestConformance(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) backend.Backend { return create(t, config(t)) })
}

func TestConformanceRetry(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) backend.Backend { return retry.New(create(t, config(t)), fast()) })
}

func TestLayoutOnServer(t *testing.T) {
	cfg := config(t)
	be := create(t, cfg)
	backendtest.Save(t, be, backend.Handle{Type: backend.PackFile, Name: "ab12"}, []byte("pack"))
	if _, err := os.Stat(filepath.Join(cfg.Path, "data", "ab", "ab12")); err != nil {
		t.Errorf("pack not at data/ab/ab12: %v", err)
	}
	for _, d := range []string{"keys", "data/00", "data/ff", "index", "snapshots", "locks"} {
		if fi, err := os.Stat(filepath.Join(cfg.Path, d)); err != nil || !fi.IsDir() {
			t.Errorf("folder %s missing after Create: %v", d, err)
		}
	}
	want := "sftp://" + cfg.User + "@" + server.Addr + "/" + cfg.Path
	if got := be.Location(); got != want {
		t.Errorf("Location() = %q, want %q", got, want)
	}
}

func TestOpen(t *testing.T) {
	cfg := config(t)
	_, err := Open(context.Background(), cfg)
	if !errors.Is(err, backend.ErrNotExist) {
		t.Fatalf("open a missing folder: err = %v, want ErrNotExist", err)
	}
	create(t, cfg).Close()
	be, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("open after create: %v", err)
	}
	be.Close()
}

func TestHostKeyFingerprint(t *testing.T) {
	cfg := config(t)
	cfg.KnownHostsFile = ""
	cfg.HostKeyFingerprint = server.HostKeyFingerprint()
	create(t, cfg)

	cfg.HostKeyFingerprint = "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	_, err := Create(context.Background(), cfg)
	var hk *HostKeyError
	if !errors.As(err, &hk) || !backend.IsPermanent(err) {
		t.Fatalf("wrong fingerprint: err = %v, want a permanent HostKeyError", err)
	}
	if !strings.Contains(err.Error(), server.HostKeyFingerprint()) {
		t.Errorf("error %q does not show the server's fingerprint", err)
	}
}

func TestHostKeyUnknown(t *testing.T) {
	cfg := config(t)
	cfg.KnownHostsFile = filepath.Join(t.TempDir(), "known_hosts")
	os.WriteFile(cfg.KnownHostsFile, nil, 0o600)
	_, err := Create(context.Background(), cfg)
	var hk *HostKeyError
	if !errors.As(err, &hk) || hk.Changed || !backend.IsPermanent(err) {
		t.Fatalf("unknown host key: err = %v, want a permanent HostKeyError for an unknown key", err)
	}
	for _, want := range []string{server.HostKeyFingerprint(), "unknown", "ssh-keyscan -p " + strconv.Itoa(server.Port), cfg.KnownHostsFile} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	if _, err := os.Stat(cfg.Path); !errors.Is(err, os.ErrNotExist) {
		t.Error("the repository folder was created on an unverified server")
	}
}

func TestHostKeyChanged(t *testing.T) {
	cfg := config(t)
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	other, _ := ssh.NewPublicKey(pub)
	cfg.KnownHostsFile = filepath.Join(t.TempDir(), "known_hosts")
	line := knownhosts.Line([]string{knownhosts.Normalize(server.Addr)}, other) + "\n"
	os.WriteFile(cfg.KnownHostsFile, []byte(line), 0o600)
	_, err := Create(context.Background(), cfg)
	var hk *HostKeyError
	if !errors.As(err, &hk) || !hk.Changed {
		t.Fatalf("changed host key: err = %v, want HostKeyError with Changed", err)
	}
	if !strings.Contains(err.Error(), "changed") || !strings.Contains(err.Error(), "ssh-keygen -R") {
		t.Errorf("error %q does not explain the change", err)
	}
}

func TestNoHostKeyCheck(t *testing.T) {
	cfg := config(t)
	cfg.KnownHostsFile = ""
	if _, err := Create(context.Background(), cfg); err == nil || !backend.IsPermanent(err) {
		t.Fatalf("no known_hosts and no fingerprint: err = %v, want a permanent error", err)
	}
}

// TestWrongCredentials: a refused login is permanent ErrAccess, so the
// retry decorator gives up at once.
func TestWrongCredentials(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	stranger, _ := ssh.NewSignerFromKey(priv)
	for name, mod := range map[string]func(*Config){
		"key":      func(c *Config) { c.IdentityFile = ""; c.Signers = []ssh.Signer{stranger} },
		"password": func(c *Config) { c.IdentityFile = ""; c.Password = "wrong" },
		"user":     func(c *Config) { c.User = "nosuchuser" },
	} {
		t.Run(name, func(t *testing.T) {
			cfg := config(t)
			mod(&cfg)
			start := time.Now()
			_, err := Create(context.Background(), cfg)
			if !errors.Is(err, backend.ErrAccess) || !backend.IsPermanent(err) {
				t.Fatalf("wrong %s: err = %v, want permanent ErrAccess", name, err)
			}
			if cfg.Password != "" && strings.Contains(err.Error(), cfg.Password) {
				t.Errorf("error %q shows the password", err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("refused login took %v", d)
			}
		})
	}
}

func TestUnreachable(t *testing.T) {
	cfg := config(t)
	cfg.Port = testsrv.FreePort(t)
	_, err := Create(context.Background(), cfg)
	if err == nil || backend.IsPermanent(err) {
		t.Fatalf("unreachable server: err = %v, want a transient error", err)
	}
	if !strings.Contains(err.Error(), "check the host name") {
		t.Errorf("error %q does not say what to check", err)
	}
}

// proxied returns a backend that reaches sshd through a fault proxy.
func proxied(t *testing.T) (*Backend, *testsrv.FaultProxy) {
	t.Helper()
	s := sshd(t)
	p := testsrv.StartFaultProxy(t, s.Addr)
	cfg := config(t)
	host, port, _ := strings.Cut(p.Addr, ":")
	cfg.Host = host
	cfg.Port, _ = strconv.Atoi(port)
	cfg.KnownHostsFile = ""
	cfg.HostKeyFingerprint = s.HostKeyFingerprint()
	return create(t, cfg), p
}

func TestDropDuringUpload(t *testing.T) {
	be, p := proxied(t)
	data := backendtest.Data(1, 4<<20)
	h := backend.Handle{Type: backend.PackFile, Name: "d1"}
	p.CutAfter(testsrv.Upstream, 1<<20)
	err := be.Save(context.Background(), h, bytes.NewReader(data), int64(len(data)))
	if err == nil || backend.IsPermanent(err) {
		t.Fatalf("save cut midway: err = %v, want a transient error", err)
	}
	// The next call reconnects; the cut save left no visible file.
	if _, err := be.Stat(context.Background(), h); !errors.Is(err, backend.ErrNotExist) {
		t.Errorf("stat after a cut save: err = %v, want ErrNotExist", err)
	}
	if names := backendtest.Names(t, be, backend.PackFile); len(names) != 0 {
		t.Errorf("list after a cut save = %v", names)
	}

	// Through the retry decorator the same cut is cured.
	p.CutAfter(testsrv.Upstream, 1<<20)
	rbe := retry.New(be, fast())
	if err := rbe.Save(context.Background(), h, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatalf("retried save: %v", err)
	}
	if p.Drops() != 2 {
		t.Errorf("proxy cut %d connections, want 2", p.Drops())
	}
	got, err := backendtest.Load(context.Background(), be, h, 0, 0)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("load after retried save: %d bytes, err %v", len(got), err)
	}
}

func TestDropDuringDownload(t *testing.T) {
	be, p := proxied(t)
	data := backendtest.Data(2, 4<<20)
	h := backend.Handle{Type: backend.PackFile, Name: "d2"}
	backendtest.Save(t, be, h, data)

	p.CutAfter(testsrv.Downstream, 1<<20)
	_, err := backendtest.Load(context.Background(), be, h, 0, 0)
	if err == nil || backend.IsPermanent(err) {
		t.Fatalf("load cut midway: err = %v, want a transient error", err)
	}

	p.CutAfter(testsrv.Downstream, 1<<20)
	calls := 0
	var got []byte
	err = retry.New(be, fast()).Load(context.Background(), h, 0, 0, func(rd io.Reader) error {
		calls++
		var err error
		got, err = io.ReadAll(rd)
		return err
	})
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("retried load: %d bytes, err %v", len(got), err)
	}
	if calls != 2 {
		t.Errorf("fn called %d times, want 2", calls)
	}
}

func TestSlowServer(t *testing.T) {
	be, p := proxied(t)
	p.SetDelay(20 * time.Millisecond)
	data := backendtest.Data(3, 256<<10)
	h := backend.Handle{Type: backend.PackFile, Name: "d3"}
	backendtest.Save(t, be, h, data)
	got, err := backendtest.Load(context.Background(), be, h, 0, 0)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("load from a slow server: %d bytes, err %v", len(got), err)
	}

	// A deadline that a slow server misses ends the save with no file.
	p.SetDelay(200 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	big := backendtest.Data(4, 2<<20)
	hb := backend.Handle{Type: backend.PackFile, Name: "d4"}
	if err := be.Save(ctx, hb, bytes.NewReader(big), int64(len(big))); err == nil {
		t.Fatal("save past its deadline succeeded")
	}
	p.SetDelay(0)
	if _, err := be.Stat(context.Background(), hb); !errors.Is(err, backend.ErrNotExist) {
		t.Errorf("stat after a timed-out save: err = %v, want ErrNotExist", err)
	}
}

func TestServerDown(t *testing.T) {
	be, p := proxied(t)
	p.Refuse(true)
	p.DropAll()
	time.Sleep(50 * time.Millisecond) // let the client notice the drop
	_, err := be.Stat(context.Background(), backend.Handle{Type: backend.ConfigFile})
	if err == nil || backend.IsPermanent(err) {
		t.Fatalf("stat with the server down: err = %v, want a transient error", err)
	}
	p.Refuse(false)
	if _, err := be.Stat(context.Background(), backend.Handle{Type: backend.ConfigFile}); !errors.Is(err, backend.ErrNotExist) {
		t.Fatalf("stat after the server is back: err = %v, want ErrNotExist (reconnected)", err)
	}
}

// TestStalledServer: a server that stops answering without closing the
// connection is detected by the keepalive; the call fails and the next
// one reconnects.
func TestStalledServer(t *testing.T) {
	s := sshd(t)
	p := testsrv.StartFaultProxy(t, s.Addr)
	cfg := config(t)
	host, port, _ := strings.Cut(p.Addr, ":")
	cfg.Host = host
	cfg.Port, _ = strconv.Atoi(port)
	cfg.KnownHostsFile = ""
	cfg.HostKeyFingerprint = s.HostKeyFingerprint()
	cfg.Timeout = time.Second
	be := create(t, cfg)
	h := backend.Handle{Type: backend.ConfigFile}

	p.SetDelay(time.Hour)
	start := time.Now()
	_, err := be.Stat(context.Background(), h)
	if err == nil || backend.IsPermanent(err) {
		t.Fatalf("stat on a stalled server: err = %v, want a transient error", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("stalled call failed after %v, want about 2×Timeout", d)
	}
	p.SetDelay(0)
	p.DropAll() // the stalled connection's pipes
	if _, err := be.Stat(context.Background(), h); !errors.Is(err, backend.ErrNotExist) {
		t.Fatalf("stat after the server recovered: err = %v, want ErrNotExist (reconnected)", err)
	}
}

// TestListConcurrentFolders: on a slow link, List(PackFile) reads the 256
// data folders 16 at a time. roundTrips counts sequential listings: a
// listing that starts after another ended is one deeper. Read one after
// another, the folders cost 257 of them (data/ itself, then each folder);
// 16 at a time, about 1+256/16.
func TestListConcurrentFolders(t *testing.T) {
	be, p := proxied(t)
	var want []string
	for i := range 4 {
		h := backend.Handle{Type: backend.PackFile, Name: fmt.Sprintf("%02x99", i*60)}
		backendtest.Save(t, be, h, []byte("pack"))
		want = append(want, h.Name)
	}
	var (
		mu                    sync.Mutex
		inFlight, maxInFlight int
		depthDone, roundTrips int // deepest listing ended so far; deepest started
	)
	be.onReadDir = func(string) func() {
		mu.Lock()
		defer mu.Unlock()
		inFlight++
		maxInFlight = max(maxInFlight, inFlight)
		depth := depthDone + 1
		roundTrips = max(roundTrips, depth)
		return func() {
			mu.Lock()
			defer mu.Unlock()
			inFlight--
			depthDone = max(depthDone, depth)
		}
	}
	p.SetDelay(10 * time.Millisecond)
	start := time.Now()
	got := backendtest.Names(t, be, backend.PackFile)
	t.Logf("listed %d packs over a link with 10ms delay in %v: %d sequential listings, at most %d in flight",
		len(got), time.Since(start).Round(time.Millisecond), roundTrips, maxInFlight)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("list = %v, want %v", got, want)
	}
	const folders, bound = 256, listConcurrency
	if maxInFlight > bound || maxInFlight < 2 {
		t.Errorf("%d folder listings in flight at most, want 2…%d", maxInFlight, bound)
	}
	// Uneven replies can make a listing wait a little longer than its
	// batch; far below the 257 of one folder at a time.
	if best := 1 + (folders+bound-1)/bound; roundTrips > 2*best {
		t.Errorf("%d sequential listings, want about %d", roundTrips, best)
	}
}

// TestCleanTemp: old temporary files, such as a save cut off by a dropped
// connection leaves, are removed in every folder; young ones (a save that
// may still be running) and saved files stay.
func TestCleanTemp(t *testing.T) {
	be, p := proxied(t)
	data := backendtest.Data(5, 4<<20)
	h := backend.Handle{Type: backend.PackFile, Name: "c1"}
	p.CutAfter(testsrv.Upstream, 1<<20)
	if err := be.Save(context.Background(), h, bytes.NewReader(data), int64(len(data))); err == nil {
		t.Fatal("save cut midway succeeded")
	}
	root := strings.TrimSuffix(be.cfg.Path, "/")
	left, _ := filepath.Glob(filepath.Join(root, "data", "c1", backend.TempPrefix+"*"))
	if len(left) != 1 {
		t.Fatalf("the cut save left %v, want one temporary file", left)
	}
	now := time.Now()
	old := now.Add(-48 * time.Hour)
	write := func(rel string, mtime time.Time) string {
		t.Helper()
		p := filepath.Join(root, filepath.FromSlash(rel))
		if err := os.WriteFile(p, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// The server may still be writing what reached it before the cut.
	for last := int64(-1); ; time.Sleep(100 * time.Millisecond) {
		fi, err := os.Stat(left[0])
		if err != nil {
			t.Fatal(err)
		}
		if fi.ModTime().UnixNano() == last {
			break
		}
		last = fi.ModTime().UnixNano()
	}
	os.Chtimes(left[0], old, old)
	pack := backend.Handle{Type: backend.PackFile, Name: "c2"}
	backendtest.Save(t, be, pack, []byte("pack"))
	packPath := filepath.Join(root, "data", "c2", "c2")
	os.Chtimes(packPath, old, old)
	gone := append(left, write(".tmp-config1", old), write("index/.tmp-2", old))
	kept := []string{write("data/c1/.tmp-young", now.Add(-time.Hour)), write("keys/.tmp-now", now), packPath}

	for _, tc := range []backend.TempCleaner{be, retry.New(be, fast())} {
		n, err := tc.CleanTemp(context.Background(), now.Add(-24*time.Hour))
		if err != nil || n != len(gone) {
			t.Errorf("CleanTemp = %d, %v; want %d, nil", n, err, len(gone))
		}
		for _, p := range gone {
			if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("old temporary file %s not removed: %v", p, err)
			}
		}
		for _, p := range kept {
			if _, err := os.Stat(p); err != nil {
				t.Errorf("%s removed: %v", p, err)
			}
		}
		gone = nil // the second cleaner finds nothing left
	}
}

// warnLog counts warnings.
type warnLog struct {
	mu    sync.Mutex
	warns []string
}

func (l *warnLog) Enabled(_ context.Context, lvl slog.Level) bool { return lvl >= slog.LevelWarn }
func (l *warnLog) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	l.warns = append(l.warns, r.Message)
	l.mu.Unlock()
	return nil
}
func (l *warnLog) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *warnLog) WithGroup(string) slog.Handler      { return l }

// TestNoFsyncWarnsOnce: a server without fsync@openssh.com gets one
// warning per backend, at the first save, however many files are saved and
// however often the backend reconnects.
func TestNoFsyncWarnsOnce(t *testing.T) {
	log := &warnLog{}
	cfg := config(t)
	cfg.Logger = slog.New(log)
	be := create(t, cfg)
	be.hideExtensions = []string{"fsync@openssh.com"}
	be.mu.Lock()
	be.conn.close() // reconnect with the extension hidden
	be.mu.Unlock()
	for i := range 3 {
		backendtest.Save(t, be, backend.Handle{Type: backend.SnapshotFile, Name: fmt.Sprint("s", i)}, []byte("x"))
		if i == 1 {
			be.mu.Lock()
			be.conn.close()
			be.mu.Unlock()
		}
	}
	log.mu.Lock()
	defer log.mu.Unlock()
	if len(log.warns) != 1 || !strings.Contains(log.warns[0], "fsync") {
		t.Fatalf("warnings = %q, want one about fsync", log.warns)
	}

	// a server with fsync: no warning
	log2 := &warnLog{}
	cfg2 := config(t)
	cfg2.Logger = slog.New(log2)
	be2 := create(t, cfg2)
	backendtest.Save(t, be2, backend.Handle{Type: backend.SnapshotFile, Name: "s"}, []byte("x"))
	if len(log2.warns) != 0 {
		t.Fatalf("warnings with fsync = %q", log2.warns)
	}
}

// TestRenameFallbackRemovesTemp: without posix-rename@openssh.com, saving
// a file that exists (same bytes, as content-derived names are) succeeds
// and leaves no temporary file on the server.
func TestRenameFallbackRemovesTemp(t *testing.T) {
	cfg := config(t)
	be := create(t, cfg)
	be.hideExtensions = []string{"posix-rename@openssh.com"}
	be.mu.Lock()
	be.conn.close()
	be.mu.Unlock()
	h := backend.Handle{Type: backend.PackFile, Name: "ab12"}
	for range 2 {
		backendtest.Save(t, be, h, []byte("pack bytes"))
	}
	if tmp := backendtest.TempFiles(t, cfg.Path); len(tmp) != 0 {
		t.Fatalf("temporary files left by the rename fallback: %v", tmp)
	}
	if got, err := backendtest.Load(context.Background(), be, h, 0, 0); err != nil || string(got) != "pack bytes" {
		t.Fatalf("load = %q, %v", got, err)
	}
}
