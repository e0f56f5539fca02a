package repository

import (
	"context"
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
// open opens the backend named by the location new returned.
type realBackend struct {
	name string
	new  func(t *testing.T) string
	open func(t *testing.T, where string) backend.Backend
}

var realRepos atomic.Int64

// realBackends starts the servers (once per test) and returns the three
// backends; a missing server fails the test under SITEVAULT_REQUIRE_SERVERS.
func realBackends(t *testing.T) []realBackend {
	t.Helper()
	ctx := context.Background()
	var sshd *testsrv.SSHD
	var s3srv *testsrv.S3
	sftpCfg := func(where string) sftp.Config {
		return sftp.Config{User: sshd.User, Host: sshd.Host, Port: sshd.Port, Path: where,
			IdentityFile: sshd.ClientKeyFile, KnownHostsFile: sshd.KnownHostsFile, Timeout: 5 * time.Second}
	}
	s3Cfg := func(bucket string) s3.Config {
		return s3.Config{Endpoint: s3srv.Endpoint, Bucket: bucket, Prefix: "repo", AccessKey: s3srv.AccessKey, SecretKey: s3srv.SecretKey, Region: s3srv.Region}
	}
	return []realBackend{
		{
			name: "local",
			new: func(t *testing.T) string {
				dir := filepath.Join(t.TempDir(), "repo")
				be, err := local.Create(ctx, dir)
				if err != nil {
					t.Fatal(err)
				}
				be.Close()
				return dir
			},
			open: func(t *testing.T, where string) backend.Backend {
				be, err := local.Open(ctx, where)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { be.Close() })
				return be
			},
		},
		{
			name: "sftp",
			new: func(t *testing.T) string {
				if sshd == nil {
					sshd = testsrv.StartSSHD(t)
				}
				where := filepath.Join(sshd.Dir, "repo"+strconv.FormatInt(realRepos.Add(1), 10))
				be, err := sftp.Create(ctx, sftpCfg(where))
				if err != nil {
					t.Fatalf("create sftp repository: %v\n%s", err, sshd.Log())
				}
				be.Close()
				return where
			},
			open: func(t *testing.T, where string) backend.Backend {
				be, err := sftp.Open(ctx, sftpCfg(where))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { be.Close() })
				return be
			},
		},
		{
			name: "s3",
			new: func(t *testing.T) string {
				if s3srv == nil {
					s3srv = testsrv.StartS3(t)
				}
				bucket := s3srv.NewBucket(t)
				be, err := s3.Create(ctx, s3Cfg(bucket))
				if err != nil {
					t.Fatalf("create s3 repository: %v\n%s", err, s3srv.Log())
				}
				be.Close()
				return bucket
			},
			open: func(t *testing.T, where string) backend.Backend {
				be, err := s3.Open(ctx, s3Cfg(where))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { be.Close() })
				return be
			},
		},
	}
}
