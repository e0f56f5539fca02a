package testsrv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// S3 is a private VersityGW S3 server on a loopback port, storing buckets
// as folders of a temporary directory. It speaks plain HTTP.
type S3 struct {
	Endpoint  string // host:port
	AccessKey string
	SecretKey string
	Region    string // us-east-1
	Dir       string // the folder holding the buckets

	tmp     string
	cmd     *exec.Cmd
	log     *syncBuffer
	done    chan struct{}
	once    sync.Once
	buckets atomic.Int64
}

// Log returns what the server wrote so far.
func (s *S3) Log() string { return s.log.String() }

// StartS3 starts an S3 server for one test and stops it when the test ends.
// A missing versitygw fails or skips the test (see Missing).
func StartS3(tb testing.TB) *S3 {
	tb.Helper()
	s, err := StartS3Main()
	if errors.Is(err, ErrNotInstalled) {
		Missing(tb, "VersityGW (versitygw)", "scripts/deps.sh test")
	}
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Stop)
	return s
}

// StartS3Main starts an S3 server without a testing.TB, for a package's
// TestMain; the caller must call Stop. It returns an error wrapping
// ErrNotInstalled if versitygw is missing.
func StartS3Main() (*S3, error) {
	gw := LookPath("versitygw")
	if gw == "" {
		return nil, fmt.Errorf("start S3 server: %w (scripts/deps.sh test builds versitygw)", ErrNotInstalled)
	}
	tmp, err := os.MkdirTemp("", "sitevault-s3-")
	if err != nil {
		return nil, fmt.Errorf("start S3 server: %w", err)
	}
	s := &S3{
		AccessKey: "sitevault" + randomHex(4),
		SecretKey: randomHex(20),
		Region:    "us-east-1",
		Dir:       filepath.Join(tmp, "data"),
		tmp:       tmp,
	}
	if err := os.Mkdir(s.Dir, 0o755); err != nil {
		os.RemoveAll(tmp)
		return nil, fmt.Errorf("start S3 server: %w", err)
	}
	var lastErr error
	for range 5 {
		port, err := freePort()
		if err != nil {
			os.RemoveAll(tmp)
			return nil, fmt.Errorf("start S3 server: %w", err)
		}
		s.Endpoint = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		if lastErr = s.start(gw); lastErr == nil {
			return s, nil
		}
	}
	os.RemoveAll(tmp)
	return nil, fmt.Errorf("start S3 server: %w", lastErr)
}

func (s *S3) start(gw string) error {
	s.log = &syncBuffer{}
	s.cmd = exec.Command(gw, "--port", s.Endpoint, "--region", s.Region, "--quiet", "posix", s.Dir)
	// Keys go through the environment, not argv, where ps would show them.
	s.cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY_ID="+s.AccessKey, "ROOT_SECRET_ACCESS_KEY="+s.SecretKey)
	// If the test binary dies (a panic, a -timeout), the server goes too.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	s.cmd.Stdout = s.log
	s.cmd.Stderr = s.log
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("run %s: %w", gw, err)
	}
	s.done = make(chan struct{})
	go func() { s.cmd.Wait(); close(s.done) }()

	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			return fmt.Errorf("versitygw exited: %v\nversitygw log:\n%s", s.cmd.ProcessState, s.log.String())
		default:
		}
		// Any HTTP answer (an S3 error for an anonymous request) means ready.
		if resp, err := client.Get("http://" + s.Endpoint + "/"); err == nil {
			resp.Body.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.kill()
	return fmt.Errorf("versitygw did not answer on %s within 20s\nversitygw log:\n%s", s.Endpoint, s.log.String())
}

// NewBucket creates an empty bucket with a fresh name and returns the name.
func (s *S3) NewBucket(tb testing.TB) string {
	tb.Helper()
	name, err := s.CreateBucket(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	return name
}

// CreateBucket creates an empty bucket with a fresh name, for TestMain and
// helpers without a testing.TB.
func (s *S3) CreateBucket(ctx context.Context) (string, error) {
	name := fmt.Sprintf("test-%d-%s", s.buckets.Add(1), randomHex(4))
	c, err := s.Client()
	if err != nil {
		return "", err
	}
	if err := c.MakeBucket(ctx, name, minio.MakeBucketOptions{Region: s.Region}); err != nil {
		return "", fmt.Errorf("create bucket %s: %w", name, err)
	}
	return name, nil
}

// Client returns a minio client for the server, for tests that look behind
// a backend's back.
func (s *S3) Client() (*minio.Client, error) {
	c, err := minio.New(s.Endpoint, &minio.Options{
		Creds:  credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""),
		Region: s.Region,
	})
	if err != nil {
		return nil, fmt.Errorf("s3 client: %w", err)
	}
	return c, nil
}

func (s *S3) kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
}

// Stop stops the server and removes its data.
func (s *S3) Stop() {
	s.once.Do(func() {
		s.kill()
		os.RemoveAll(s.tmp)
	})
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
