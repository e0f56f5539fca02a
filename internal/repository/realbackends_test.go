package repository

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sitevault/sitevault/internal/backend"
	"github.com/sitevault/sitevault/internal/backend/local"
	"github.com/sitevault/sitevault/internal/backend/s3"
	"github.com/sitevault/sitevault/internal/backend/sftp"
	"github.com/sitevault/sitevault/internal/testsrv"
)

// realBackend makes repositories on one kind of real backend: a local
// folder, a folder on a private sshd, a bucket on a private VersityGW.
// new returns a location that holds everything needed to open the
// backend again, in this process or another (openReal).
type realBackend struct {
	name string
	new  func(t *testing.T) string
}

// open opens the backend at where (from new).
func (rb realBackend) open(t *testing.T, where string) backend.Backend {
	return openReal(t, rb.name, where)
}

var realRepos atomic.Int64

// realBackends returns the three backends; servers start on first use (a
// missing server fails the test under SITEVAULT_REQUIRE_SERVERS).
func realBackends(t *testing.T) []realBackend {
	t.Helper()
	ctx := context.Background()
	var sshd *testsrv.SSHD
	var s3srv *testsrv.S3
	return []realBackend{
		{name: "local", new: func(t *testing.T) string {
			dir := filepath.Join(t.TempDir(), "repo")
			be, err := local.Create(ctx, dir)
			if err != nil {
				t.Fatal(err)
			}
			be.Close()
			return dir
		}},
		{name: "sftp", new: func(t *testing.T) string {
			if sshd == nil {
				sshd = testsrv.StartSSHD(t)
			}
			cfg := sftp.Config{User: sshd.User, Host: sshd.Host, Port: sshd.Port,
				Path:         filepath.Join(sshd.Dir, "repo"+strconv.FormatInt(realRepos.Add(1), 10)),
				IdentityFile: sshd.ClientKeyFile, KnownHostsFile: sshd.KnownHostsFile, Timeout: 5 * time.Second}
			be, err := sftp.Create(ctx, cfg)
			if err != nil {
				t.Fatalf("create sftp repository: %v\n%s", err, sshd.Log())
			}
			be.Close()
			b, _ := json.Marshal(cfg)
			return string(b)
		}},
		{name: "s3", new: func(t *testing.T) string {
			if s3srv == nil {
				s3srv = testsrv.StartS3(t)
			}
			cfg := s3.Config{Endpoint: s3srv.Endpoint, Bucket: s3srv.NewBucket(t), Prefix: "repo",
				AccessKey: s3srv.AccessKey, SecretKey: s3srv.SecretKey, Region: s3srv.Region}
			be, err := s3.Create(ctx, cfg)
			if err != nil {
				t.Fatalf("create s3 repository: %v\n%s", err, s3srv.Log())
			}
			be.Close()
			b, _ := json.Marshal(cfg)
			return string(b)
		}},
	}
}

// openReal opens a backend of kind at where (realBackend.new's result).
func openReal(t *testing.T, kind, where string) backend.Backend {
	t.Helper()
	ctx := context.Background()
	var be backend.Backend
	var err error
	switch kind {
	case "local":
		be, err = local.Open(ctx, where)
	case "sftp":
		var cfg sftp.Config
		if err = json.Unmarshal([]byte(where), &cfg); err == nil {
			be, err = sftp.Open(ctx, cfg)
		}
	case "s3":
		var cfg s3.Config
		if err = json.Unmarshal([]byte(where), &cfg); err == nil {
			be, err = s3.Open(ctx, cfg)
		}
	default:
		t.Fatalf("unknown backend %q", kind)
	}
	if err != nil {
		t.Fatalf("open %s backend: %v", kind, err)
	}
	t.Cleanup(func() { be.Close() })
	return be
}
