package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/sitevault/sitevault/internal/backend"
	"github.com/sitevault/sitevault/internal/backend/backendtest"
	"github.com/sitevault/sitevault/internal/backend/retry"
	"github.com/sitevault/sitevault/internal/testsrv"
)

// server is the package's S3 server, started once by TestMain; nil if
// versitygw is not installed (tests then call testsrv.Missing).
var server *testsrv.S3

func TestMain(m *testing.M) {
	s, err := testsrv.StartS3Main()
	if err != nil && (!errors.Is(err, testsrv.ErrNotInstalled) || testsrv.Required()) {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	server = s
	code := m.Run()
	if s != nil {
		s.Stop()
	}
	os.Exit(code)
}

func s3srv(t *testing.T) *testsrv.S3 {
	t.Helper()
	if server == nil {
		testsrv.Missing(t, "VersityGW (versitygw)", "scripts/deps.sh test")
	}
	return server
}

// config returns a Config for a fresh bucket, with a prefix so that the
// suite also covers repositories inside a folder of a bucket.
func config(t *testing.T) Config {
	s := s3srv(t)
	return Config{
		Endpoint:  s.Endpoint,
		Bucket:    s.NewBucket(t),
		Prefix:    "sites/repo",
		AccessKey: s.AccessKey,
		SecretKey: s.SecretKey,
		Region:    s.Region,
	}
}

func open(t *testing.T, cfg Config) *Backend {
	t.Helper()
	be, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("open: %v\nversitygw log:\n%s", err, server.Log())
	}
	t.Cleanup(func() { be.Close() })
	return be
}

func fast() retry.Options {
	return retry.Options{InitialDelay: 10 * time.Millisecond, MaxDelay: 100 * time.Millisecond}
}

func TestConformance(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) backend.Backend { return open(t, config(t)) })
}

func TestConformanceRetry(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) backend.Backend { return retry.New(open(t, config(t)), fast()) })
}

func TestConformanceNoPrefix(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) backend.Backend {
		cfg := config(t)
		cfg.Prefix = ""
		return open(t, cfg)
	})
}

func TestKeys(t *testing.T) {
	cfg := config(t)
	be := open(t, cfg)
	backendtest.Save(t, be, backend.Handle{Type: backend.PackFile, Name: "ab12"}, []byte("pack"))
	backendtest.Save(t, be, backend.Handle{Type: backend.ConfigFile}, []byte("config"))
	c, err := server.Client()
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for obj := range c.ListObjects(context.Background(), cfg.Bucket, minio.ListObjectsOptions{Recursive: true}) {
		if obj.Err != nil {
			t.Fatal(obj.Err)
		}
		keys = append(keys, obj.Key)
	}
	if got := strings.Join(keys, " "); got != "sites/repo/config sites/repo/data/ab/ab12" {
		t.Errorf("object keys = %s", got)
	}
	if got, want := be.Location(), "s3+http://"+cfg.Endpoint+"/"+cfg.Bucket+"/sites/repo"; got != want {
		t.Errorf("Location() = %q, want %q", got, want)
	}
	if strings.Contains(be.Location(), cfg.SecretKey) || strings.Contains(be.Location(), cfg.AccessKey) {
		t.Error("Location() shows a key")
	}
}

func TestOpenCreate(t *testing.T) {
	cfg := config(t)
	cfg.Bucket = "missing-" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-"))
	_, err := Open(context.Background(), cfg)
	if !errors.Is(err, backend.ErrNotExist) {
		t.Fatalf("open a missing bucket: err = %v, want ErrNotExist", err)
	}
	be, err := Create(context.Background(), cfg)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	backendtest.Save(t, be, backend.Handle{Type: backend.KeyFile, Name: "k1"}, []byte("key"))
	// Create on an existing bucket opens it.
	if _, err := Create(context.Background(), cfg); err != nil {
		t.Fatalf("create again: %v", err)
	}
	open(t, cfg)
}

// TestWrongCredentials: refused keys are permanent ErrAccess, so the retry
// decorator gives up at once, and the error never shows the secret.
func TestWrongCredentials(t *testing.T) {
	for name, mod := range map[string]func(*Config){
		"secret":     func(c *Config) { c.SecretKey = "not-the-secret-key" },
		"access key": func(c *Config) { c.AccessKey = "nosuchkey" },
	} {
		t.Run(name, func(t *testing.T) {
			cfg := config(t)
			good := open(t, cfg)
			backendtest.Save(t, good, backend.Handle{Type: backend.IndexFile, Name: "i1"}, []byte("x"))
			mod(&cfg)
			_, err := Open(context.Background(), cfg)
			if !errors.Is(err, backend.ErrAccess) || !backend.IsPermanent(err) {
				t.Fatalf("open with a wrong %s: err = %v, want permanent ErrAccess", name, err)
			}
			if strings.Contains(err.Error(), cfg.SecretKey) {
				t.Errorf("error %q shows the secret key", err)
			}
			be, _ := newBackend(cfg)
			start := time.Now()
			// A GET, not Stat's HEAD: VersityGW answers an unknown access key
			// with a 404 that only the body of an answer explains.
			_, err = backendtest.Load(context.Background(), retry.New(be, fast()), backend.Handle{Type: backend.IndexFile, Name: "i1"}, 0, 0)
			if !errors.Is(err, backend.ErrAccess) || time.Since(start) > 2*time.Second {
				t.Errorf("retried load with a wrong %s: err = %v after %v, want ErrAccess at once", name, err, time.Since(start))
			}
		})
	}
}

func TestUnreachable(t *testing.T) {
	cfg := config(t)
	cfg.Endpoint = fmt.Sprintf("127.0.0.1:%d", testsrv.FreePort(t))
	_, err := Open(context.Background(), cfg)
	if err == nil || backend.IsPermanent(err) {
		t.Fatalf("unreachable server: err = %v, want a transient error", err)
	}
	if !strings.Contains(err.Error(), "check the endpoint") {
		t.Errorf("error %q does not say what to check", err)
	}
}

// proxied returns a backend that reaches the server through a fault proxy.
func proxied(t *testing.T) (*Backend, *testsrv.FaultProxy) {
	t.Helper()
	cfg := config(t)
	p := testsrv.StartFaultProxy(t, cfg.Endpoint)
	cfg.Endpoint = p.Addr
	return open(t, cfg), p
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
	if _, err := be.Stat(context.Background(), h); !errors.Is(err, backend.ErrNotExist) {
		t.Errorf("stat after a cut save: err = %v, want ErrNotExist", err)
	}
	if names := backendtest.Names(t, be, backend.PackFile); len(names) != 0 {
		t.Errorf("list after a cut save = %v", names)
	}

	p.CutAfter(testsrv.Upstream, 1<<20)
	if err := retry.New(be, fast()).Save(context.Background(), h, bytes.NewReader(data), int64(len(data))); err != nil {
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

	p.SetDelay(200 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	big := backendtest.Data(4, 2<<20)
	hb := backend.Handle{Type: backend.PackFile, Name: "d4"}
	if err := be.Save(ctx, hb, bytes.NewReader(big), int64(len(big))); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("save past its deadline: err = %v, want context.DeadlineExceeded", err)
	}
	p.SetDelay(0)
	if _, err := be.Stat(context.Background(), hb); !errors.Is(err, backend.ErrNotExist) {
		t.Errorf("stat after a timed-out save: err = %v, want ErrNotExist", err)
	}
}
