package location

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sitevault/sitevault/internal/backend"
	"github.com/sitevault/sitevault/internal/backend/backendtest"
	"github.com/sitevault/sitevault/internal/backend/retry"
	"github.com/sitevault/sitevault/internal/testsrv"
)

func TestParse(t *testing.T) {
	cwd, _ := os.Getwd()
	tests := []struct {
		in     string
		want   Location
		string string // String() of the result, if not in
	}{
		{in: "/srv/backups/repo", want: Location{Scheme: Local, Path: "/srv/backups/repo"}},
		{in: "/srv/backups/repo/", want: Location{Scheme: Local, Path: "/srv/backups/repo"}, string: "/srv/backups/repo"},
		{in: "repo", want: Location{Scheme: Local, Path: filepath.Join(cwd, "repo")}, string: filepath.Join(cwd, "repo")},
		{in: "/odd/a://b", want: Location{Scheme: Local, Path: "/odd/a:/b"}, string: "/odd/a:/b"},
		{in: "file:///srv/repo", want: Location{Scheme: Local, Path: "/srv/repo"}, string: "/srv/repo"},
		{in: "sftp://backup@example.com/repo", want: Location{Scheme: SFTP, User: "backup", Host: "example.com", Path: "repo"}},
		{in: "sftp://backup@example.com:2222/backups/site", want: Location{Scheme: SFTP, User: "backup", Host: "example.com", Port: 2222, Path: "backups/site"}},
		{in: "sftp://backup@example.com//srv/repo", want: Location{Scheme: SFTP, User: "backup", Host: "example.com", Path: "/srv/repo"}},
		{in: "sftp://example.com/repo/", want: Location{Scheme: SFTP, Host: "example.com", Path: "repo"}, string: "sftp://example.com/repo"},
		{in: "SFTP://u@[::1]:22/r", want: Location{Scheme: SFTP, User: "u", Host: "::1", Port: 22, Path: "r"}, string: "sftp://u@[::1]:22/r"},
		{in: "s3://s3.amazonaws.com/my-bucket", want: Location{Scheme: S3, Host: "s3.amazonaws.com", Bucket: "my-bucket"}},
		{in: "s3://s3.example.com:9000/my-bucket/sites/one", want: Location{Scheme: S3, Host: "s3.example.com", Port: 9000, Bucket: "my-bucket", Prefix: "sites/one"}},
		{in: "s3+https://h/bkt/", want: Location{Scheme: S3, Host: "h", Bucket: "bkt"}, string: "s3://h/bkt"},
		{in: "s3+http://127.0.0.1:7070/bkt/p", want: Location{Scheme: S3, Host: "127.0.0.1", Port: 7070, Bucket: "bkt", Prefix: "p", Insecure: true}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := Parse(tt.in)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Fatalf("Parse(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
			wantString := tt.string
			if wantString == "" {
				wantString = tt.in
			}
			if got.String() != wantString {
				t.Errorf("String() = %q, want %q", got.String(), wantString)
			}
			again, err := Parse(got.String())
			if err != nil || again != got {
				t.Errorf("Parse(String()) = %+v, %v; want %+v", again, err, got)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		in      string
		mention []string // the error names what to fix
	}{
		{"", []string{"empty"}},
		{"sftpp://host/repo", []string{`"sftpp"`, "sftp://"}},
		{"ftp://host/repo", []string{`"ftp"`, "s3://"}},
		{"sftp://user:hunter2@host/repo", []string{"SITEVAULT_SFTP_PASSWORD"}},
		{"sftp://user@host", []string{"no folder", "//absolute"}},
		{"sftp://user@host/", []string{"no folder"}},
		{"sftp:///repo", []string{"no host"}},
		{"sftp://user@host:99999/repo", []string{"bad port"}},
		{"sftp://user@host/repo?x=1", []string{"not supported"}},
		{"sftp:user@host:/repo", []string{"URL"}},
		{"s3://host", []string{"no bucket"}},
		{"s3://key:secret@host/bucket", []string{"AWS_ACCESS_KEY_ID"}},
		{"s3://host/Bad_Bucket", []string{"bucket name"}},
		{"s3://host/ab", []string{"3 to 63"}},
		{"file://host/repo", []string{"file:///"}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, err := Parse(tt.in)
			if err == nil {
				t.Fatalf("Parse(%q): no error", tt.in)
			}
			for _, m := range tt.mention {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("Parse(%q) error %q does not mention %q", tt.in, err, m)
				}
			}
			for _, secret := range []string{"hunter2", "secret"} {
				if strings.Contains(tt.in, secret) && strings.Contains(err.Error(), secret) {
					t.Errorf("error %q shows the secret", err)
				}
			}
		})
	}
}

func TestCredentialsFromEnv(t *testing.T) {
	t.Setenv("SITEVAULT_SFTP_PASSWORD", "pw-secret")
	t.Setenv("SITEVAULT_SFTP_IDENTITY", "/keys/id")
	t.Setenv("SITEVAULT_KNOWN_HOSTS", "/keys/known_hosts")
	t.Setenv("SITEVAULT_SFTP_FINGERPRINT", "SHA256:abc")
	t.Setenv("AWS_ACCESS_KEY_ID", "aws-key")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "aws-secret")
	t.Setenv("SITEVAULT_S3_ACCESS_KEY", "")
	t.Setenv("SITEVAULT_S3_SECRET_KEY", "sv-secret")
	t.Setenv("SITEVAULT_S3_REGION", "")
	t.Setenv("AWS_REGION", "eu-west-3")
	c := CredentialsFromEnv()
	want := Credentials{SFTPPassword: "pw-secret", SFTPIdentity: "/keys/id", KnownHosts: "/keys/known_hosts", SFTPFingerprint: "SHA256:abc",
		S3AccessKey: "aws-key", S3SecretKey: "sv-secret", S3Region: "eu-west-3"}
	if c != want {
		t.Errorf("CredentialsFromEnv() = %+v, want %+v", c, want)
	}
	for _, s := range []string{c.String(), c.LogValue().String(), fmt.Sprint(c)} {
		if strings.Contains(s, "pw-secret") || strings.Contains(s, "sv-secret") || strings.Contains(s, "aws-key") {
			t.Errorf("credentials printed with a secret: %s", s)
		}
	}
}

func TestOpenLocal(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "repo")
	loc, err := Parse(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(context.Background(), loc, Credentials{}, false); !errors.Is(err, backend.ErrNotExist) {
		t.Fatalf("open a missing folder: err = %v, want ErrNotExist", err)
	}
	be, err := Open(context.Background(), loc, Credentials{}, true)
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	if _, ok := be.(*retry.Backend); !ok {
		t.Errorf("Open returned %T, want the retry decorator", be)
	}
	backendtest.Save(t, be, backend.Handle{Type: backend.ConfigFile}, []byte("cfg"))
	if _, err := os.Stat(filepath.Join(dir, "config")); err != nil {
		t.Error(err)
	}
}

func TestOpenSFTP(t *testing.T) {
	s := testsrv.StartSSHD(t)
	loc, err := Parse(fmt.Sprintf("sftp://%s@%s/%s", s.User, s.Addr, filepath.Join(s.Dir, "repo")))
	if err != nil {
		t.Fatal(err)
	}
	if !filepath.IsAbs(loc.Path) {
		t.Fatalf("path %q is not absolute", loc.Path)
	}
	creds := Credentials{SFTPIdentity: s.ClientKeyFile, KnownHosts: s.KnownHostsFile}
	if _, err := Open(context.Background(), loc, creds, false); !errors.Is(err, backend.ErrNotExist) {
		t.Fatalf("open a missing folder: err = %v, want ErrNotExist", err)
	}
	be, err := Open(context.Background(), loc, creds, true)
	if err != nil {
		t.Fatalf("create: %v\n%s", err, s.Log())
	}
	backendtest.Save(t, be, backend.Handle{Type: backend.KeyFile, Name: "k1"}, []byte("key"))
	be.Close()
	if _, err := os.Stat(filepath.Join(s.Dir, "repo", "keys", "k1")); err != nil {
		t.Error(err)
	}

	// An unknown host key: the error says how to accept it.
	empty := filepath.Join(t.TempDir(), "known_hosts")
	os.WriteFile(empty, nil, 0o600)
	_, err = Open(context.Background(), loc, Credentials{SFTPIdentity: s.ClientKeyFile, KnownHosts: empty}, false)
	if err == nil || !strings.Contains(err.Error(), s.HostKeyFingerprint()) || !strings.Contains(err.Error(), "SITEVAULT_SFTP_FINGERPRINT") {
		t.Errorf("unknown host key: err = %v", err)
	}
	// ... and accepting it by fingerprint works.
	be, err = Open(context.Background(), loc, Credentials{SFTPIdentity: s.ClientKeyFile, SFTPFingerprint: s.HostKeyFingerprint()}, false)
	if err != nil {
		t.Fatalf("open with the fingerprint: %v", err)
	}
	be.Close()
}

func TestOpenS3(t *testing.T) {
	s := testsrv.StartS3(t)
	loc, err := Parse("s3+http://" + s.Endpoint + "/fresh-bucket/site")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(context.Background(), loc, Credentials{}, true); err == nil || !strings.Contains(err.Error(), "AWS_ACCESS_KEY_ID") {
		t.Errorf("open without keys: err = %v, want a message naming AWS_ACCESS_KEY_ID", err)
	}
	creds := Credentials{S3AccessKey: s.AccessKey, S3SecretKey: s.SecretKey, S3Region: s.Region}
	if _, err := Open(context.Background(), loc, creds, false); !errors.Is(err, backend.ErrNotExist) {
		t.Fatalf("open a missing bucket: err = %v, want ErrNotExist", err)
	}
	be, err := Open(context.Background(), loc, creds, true)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	defer be.Close()
	backendtest.Save(t, be, backend.Handle{Type: backend.SnapshotFile, Name: "s1"}, []byte("snap"))
	if got := be.Location(); got != loc.String() || strings.Contains(got, s.SecretKey) {
		t.Errorf("Location() = %q, want %q", got, loc.String())
	}
}

func TestUnreachable(t *testing.T) {
	port := testsrv.FreePort(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, s := range []string{
		fmt.Sprintf("sftp://u@127.0.0.1:%d/repo", port),
		fmt.Sprintf("s3+http://127.0.0.1:%d/bucket", port),
	} {
		loc, err := Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		creds := Credentials{SFTPPassword: "pw", SFTPFingerprint: "SHA256:x", S3AccessKey: "k", S3SecretKey: "s"}
		_, err = Open(ctx, loc, creds, false)
		if err == nil || !strings.Contains(err.Error(), "check the") {
			t.Errorf("open %s: err = %v, want one saying what to check", s, err)
		}
	}
}
