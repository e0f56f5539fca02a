package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sitevault/sitevault/internal/repository"
	"github.com/sitevault/sitevault/internal/testsrv"
)

// TestRemoteRepositories runs the commands against an SFTP and an S3
// repository on real servers (sshd, VersityGW) the test starts.
func TestRemoteRepositories(t *testing.T) {
	if testing.Short() {
		t.Skip("starts servers")
	}
	tests := []struct {
		name  string
		setup func(t *testing.T) string // returns the repository URL
	}{
		{"sftp", func(t *testing.T) string {
			s := testsrv.StartSSHD(t)
			t.Setenv("SITEVAULT_SFTP_IDENTITY", s.ClientKeyFile)
			t.Setenv("SITEVAULT_KNOWN_HOSTS", s.KnownHostsFile)
			// An absolute folder follows a double slash.
			return fmt.Sprintf("sftp://%s@%s/%s", s.User, s.Addr, filepath.Join(s.Dir, "repo"))
		}},
		{"s3", func(t *testing.T) string {
			s := testsrv.StartS3(t)
			t.Setenv("AWS_ACCESS_KEY_ID", s.AccessKey)
			t.Setenv("AWS_SECRET_ACCESS_KEY", s.SecretKey)
			t.Setenv("AWS_REGION", s.Region)
			return fmt.Sprintf("s3+http://%s/sitevault-test/repo", s.Endpoint)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			repo := tt.setup(t)
			e := newTestEnv(t)
			e.env["SITEVAULT_PASSWORD"] = "remote secret"
			e.mustRun(repo, initCmd)
			if _, err := e.run(repo, initCmd); !errors.Is(err, repository.ErrRepositoryExists) {
				t.Fatalf("second init: %v", err)
			}
			src := filepath.Join(t.TempDir(), "site")
			writeTree(t, src, map[string]string{
				"wp-config.php":              "<?php // config",
				"wp-content/plugins/p/p.php": strings.Repeat("plugin code\n", 50000),
			})
			want := treeState(t, src)
			e.mustRun(repo, backupCmd(src, "remote"))
			out := e.mustRun(repo, backupCmd(src, "remote"))
			if !strings.Contains(out, "2 unchanged") {
				t.Errorf("second backup:\n%s", out)
			}
			dst := filepath.Join(t.TempDir(), "restored")
			e.mustRun(repo, restoreCmd("latest", dst, "remote"))
			if got := treeState(t, dst); got != want {
				t.Errorf("restored tree differs:\n%s\nwant\n%s", got, want)
			}
			e.mustRun(repo, checkCmd(true))

			e.env["SITEVAULT_PASSWORD"] = "wrong"
			if _, err := e.run(repo, snapshotsCmd); exitCode(err) != exitPassword {
				t.Errorf("wrong password: %v (exit code %d)", err, exitCode(err))
			}
		})
	}
}
