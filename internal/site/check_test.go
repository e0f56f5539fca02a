package site

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sitevault/sitevault/internal/connection/ssh"
	"github.com/sitevault/sitevault/internal/site/sitetest"
	"github.com/sitevault/sitevault/internal/sitevault"
	"github.com/sitevault/sitevault/internal/testsrv"
	"github.com/sitevault/sitevault/internal/wordpress"
)

// TestCheck runs the registration check against a real WordPress copy, a
// real MariaDB and the package's sshd: a site that works (locally, and over
// SSH with its host key accepted), then one failure per step.
func TestCheck(t *testing.T) {
	ctx := context.Background()
	m := testsrv.StartMariaDB(t)
	d := m.CreateDatabase(t)
	root := sitetest.TestWordPress(t)
	sitetest.WriteTestConfig(t, root, sitetest.TestDB{Name: d.Name, User: d.User, Password: d.Password, Host: m.Addr})
	debian := sitetest.TestWordPress(t) // its wp-config.php leaves DB_PASSWORD undefined
	plain := t.TempDir()
	if err := os.WriteFile(filepath.Join(plain, "index.html"), []byte("hi"), 0o644); err != nil {
		t.Fatal(err)
	}

	t.Run("local site", func(t *testing.T) {
		entry := testEntry(t, "local", root)
		conn, res, err := Check(ctx, &entry, CheckOptions{})
		if err != nil {
			t.Fatalf("Check: %v", err)
		}
		defer conn.Close()
		if res.Inspection == nil || res.Inspection.WordPress.Version == "" || res.Inspection.Database.Name != d.Name {
			t.Errorf("inspection %+v", res.Inspection)
		}
		if res.DBAddr != (wordpress.DBAddr{Network: "tcp", Address: m.Addr}) || res.HostKeyRecorded {
			t.Errorf("result %+v", res)
		}
		want := sitevault.DBCredentials{Host: m.Addr, Name: d.Name, User: d.User, Password: sitevault.Secret(d.Password)}
		if entry.LastDB == nil || *entry.LastDB != want {
			t.Errorf("LastDB = %+v, want %+v", entry.LastDB, want)
		}
		// The connection is open for the caller.
		f, err := conn.FS(ctx)
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
	})

	t.Run("ssh site, host key accepted", func(t *testing.T) {
		entry := testEntry(t, "sftp", root)
		entry.SSH.HostKey, entry.SSH.HostKeyFingerprint = "", ""
		var offered *ssh.UnknownHostKeyError
		conn, res, err := Check(ctx, &entry, CheckOptions{AcceptHostKey: func(u *ssh.UnknownHostKeyError) error {
			offered = u
			return nil
		}})
		if err != nil {
			t.Fatalf("Check: %v", err)
		}
		conn.Close()
		if offered == nil || offered.Fingerprint() != sshd.HostKeyFingerprint() {
			t.Errorf("AcceptHostKey was offered %v, want the server's key", offered)
		}
		if !res.HostKeyRecorded || entry.SSH.HostKey != ssh.AuthorizedKey(sshd.HostKey) || entry.SSH.HostKeyFingerprint != sshd.HostKeyFingerprint() {
			t.Errorf("host key not recorded: %+v, entry %q %q", res, entry.SSH.HostKey, entry.SSH.HostKeyFingerprint)
		}
		if entry.LastDB == nil || entry.LastDB.Name != d.Name {
			t.Errorf("LastDB = %+v", entry.LastDB)
		}
	})

	refused := errors.New("not this key")
	tests := []struct {
		name   string
		entry  func() sitevault.Site
		opts   CheckOptions
		step   Step
		is     error
		values []string // StepConfig: "NAME reason"
	}{
		{"unknown host key, no AcceptHostKey", func() sitevault.Site {
			e := testEntry(t, "sftp", root)
			e.SSH.HostKey, e.SSH.HostKeyFingerprint = "", ""
			return e
		}, CheckOptions{}, StepHostKey, ssh.ErrHostKeyUnknown, nil},
		{"unknown host key refused", func() sitevault.Site {
			e := testEntry(t, "sftp", root)
			e.SSH.HostKey, e.SSH.HostKeyFingerprint = "", ""
			return e
		}, CheckOptions{AcceptHostKey: func(*ssh.UnknownHostKeyError) error { return refused }}, StepHostKey, refused, nil},
		{"ssh server down", func() sitevault.Site {
			e := testEntry(t, "sftp", root)
			e.SSH.Port = testsrv.FreePort(t)
			return e
		}, CheckOptions{}, StepConnect, ssh.ErrUnreachable, nil},
		{"not WordPress", func() sitevault.Site { return testEntry(t, "local", plain) }, CheckOptions{}, StepFiles, wordpress.ErrNotWordPress, nil},
		{"not WordPress over ssh", func() sitevault.Site { return testEntry(t, "sftp", plain) }, CheckOptions{}, StepFiles, wordpress.ErrNotWordPress, nil},
		{"password not in wp-config.php", func() sitevault.Site { return testEntry(t, "local", debian) }, CheckOptions{}, StepConfig, wordpress.ErrNotDefined,
			[]string{"DB_PASSWORD " + wordpress.ReasonNotDefined}},
		{"wrong database password", func() sitevault.Site {
			e := testEntry(t, "local", root)
			e.DB.Password = "wrong-password"
			return e
		}, CheckOptions{}, StepDatabase, ErrDBLogin, nil},
		{"wrong database password over ssh", func() sitevault.Site {
			e := testEntry(t, "sftp", root)
			e.DB.Password = "wrong-password"
			return e
		}, CheckOptions{}, StepDatabase, ErrDBLogin, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			entry := tt.entry()
			before := entry
			conn, res, err := Check(ctx, &entry, tt.opts)
			if err == nil {
				conn.Close()
				t.Fatalf("Check succeeded: %+v", res)
			}
			var ce *CheckError
			if !errors.As(err, &ce) || ce.Step != tt.step || ce.Site != entry.Name || !errors.Is(err, tt.is) {
				t.Fatalf("Check = %v (%#v), want a CheckError at step %q wrapping %v", err, ce, tt.step, tt.is)
			}
			if conn != nil || res != nil {
				t.Error("a failed Check returned a connection or a result")
			}
			var got []string
			for _, v := range ce.Values {
				got = append(got, v.Name+" "+v.Reason())
			}
			if strings.Join(got, ",") != strings.Join(tt.values, ",") {
				t.Errorf("Values = %q, want %q", got, tt.values)
			}
			// The library says what failed, never which flag to pass,
			// and never a password.
			if msg := err.Error(); strings.Contains(msg, "--") || strings.Contains(msg, d.Password) || strings.Contains(msg, "wrong-password") {
				t.Errorf("error names a flag or a password: %v", err)
			}
			if entry.LastDB != nil || entry.SSH.HostKey != before.SSH.HostKey {
				t.Errorf("a failed Check recorded LastDB %+v or host key %q", entry.LastDB, entry.SSH.HostKey)
			}
		})
	}
}
