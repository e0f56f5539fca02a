package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	xssh "golang.org/x/crypto/ssh"

	"github.com/sitevault/sitevault/internal/catalog"
	"github.com/sitevault/sitevault/internal/catalog/sqlite"
	"github.com/sitevault/sitevault/internal/connection/ssh"
	"github.com/sitevault/sitevault/internal/site"
	"github.com/sitevault/sitevault/internal/site/sitetest"
	"github.com/sitevault/sitevault/internal/testsrv"
)

// testSite is a copy of Debian's WordPress whose wp-config.php points at a
// fresh database of a real MariaDB.
type testSite struct {
	root string
	m    *testsrv.MariaDB
	db   testsrv.MariaDBDatabase
}

func newTestSite(t *testing.T) *testSite {
	t.Helper()
	m := testsrv.StartMariaDB(t)
	d := m.CreateDatabase(t)
	root := sitetest.TestWordPress(t)
	sitetest.WriteTestConfig(t, root, sitetest.TestDB{Name: d.Name, User: d.User, Password: d.Password, Host: m.Addr})
	sitetest.AddFixture(t, root)
	return &testSite{root: root, m: m, db: d}
}

func siteAddCmd(opts siteOptions) func(context.Context, *globalOptions, *bytes.Buffer) error {
	return func(ctx context.Context, g *globalOptions, out *bytes.Buffer) error {
		return runSiteAdd(ctx, opts, g, out)
	}
}

func siteEditCmd(opts siteOptions) func(context.Context, *globalOptions, *bytes.Buffer) error {
	return func(ctx context.Context, g *globalOptions, out *bytes.Buffer) error {
		return runSiteEdit(ctx, opts, g, out)
	}
}

func siteCmd(fn func(context.Context, string, *globalOptions, bool, io.Writer) error, name string) func(context.Context, *globalOptions, *bytes.Buffer) error {
	return func(ctx context.Context, g *globalOptions, out *bytes.Buffer) error {
		return fn(ctx, name, g, false, out)
	}
}

func sshOpts(s *testsrv.SSHD, name, path string) siteOptions {
	return siteOptions{Name: name, Path: path, SSH: s.User + "@" + s.Addr, Identity: s.ClientKeyFile}
}

func TestSiteAddLocal(t *testing.T) {
	ts := newTestSite(t)
	e := newTestEnv(t)
	out := e.mustRun("", siteAddCmd(siteOptions{Name: "blog", Path: ts.root}))
	for _, want := range []string{"Site blog added", "WordPress:   6.", "login OK", ts.db.Name} {
		if !strings.Contains(out, want) {
			t.Errorf("add output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, ts.db.Password) {
		t.Errorf("add printed the database password:\n%s", out)
	}
	out = e.mustRun("", func(ctx context.Context, g *globalOptions, out *bytes.Buffer) error {
		return runSiteList(ctx, g, false, out)
	})
	if !strings.Contains(out, "blog") || !strings.Contains(out, ts.root) {
		t.Errorf("list:\n%s", out)
	}

	// The password given by environment is sealed in the catalog and
	// never shown.
	e.env[envDBPassword] = ts.db.Password
	e.mustRun("", siteEditCmd(siteOptions{Name: "blog", Changed: func(string) bool { return false }}))
	out = e.mustRun("", siteCmd(runSiteShow, "blog"))
	if !strings.Contains(out, "db password:   set (sealed)") || strings.Contains(out, ts.db.Password) {
		t.Errorf("show:\n%s", out)
	}
	raw, err := os.ReadFile(filepath.Join(e.home, sqlite.FileName))
	if err != nil {
		t.Fatal(err)
	}
	wal, _ := os.ReadFile(filepath.Join(e.home, sqlite.FileName+"-wal"))
	if bytes.Contains(append(raw, wal...), []byte(ts.db.Password)) {
		t.Error("the catalog holds the database password in clear")
	}

	if _, err := e.run("", siteAddCmd(siteOptions{Name: "blog", Path: ts.root})); !errors.Is(err, catalog.ErrSiteExists) {
		t.Errorf("second add: %v, want ErrSiteExists", err)
	}
	e.mustRun("", siteCmd(runSiteRemove, "blog"))
	if _, err := e.run("", siteCmd(runSiteShow, "blog")); !errors.Is(err, catalog.ErrSiteNotFound) {
		t.Errorf("show after remove: %v", err)
	}
}

// TestSiteAddErrors checks that site add says which step failed, and
// stores nothing.
func TestSiteAddErrors(t *testing.T) {
	ts := newTestSite(t)
	s := testsrv.StartSSHD(t)

	debian := sitetest.TestWordPress(t) // its wp-config.php leaves DB_PASSWORD undefined
	plain := t.TempDir()
	os.WriteFile(filepath.Join(plain, "index.html"), []byte("hi"), 0o644)
	wrongKey := filepath.Join(t.TempDir(), "id_ed25519")
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	block, _ := xssh.MarshalPrivateKey(priv, "")
	os.WriteFile(wrongKey, pem.EncodeToMemory(block), 0o600)
	closed := "127.0.0.1:" + strconv.Itoa(testsrv.FreePort(t))

	tests := []struct {
		name string
		opts siteOptions
		env  map[string]string
		is   error
		says []string
		code int
	}{
		{"bad name", siteOptions{Name: "My Site", Path: ts.root}, nil, errUsage, []string{"lower-case"}, exitUsage},
		{"no path", siteOptions{Name: "a"}, nil, errUsage, []string{"--path"}, exitUsage},
		{"missing folder", siteOptions{Name: "a", Path: "/nonexistent/wp"}, nil, os.ErrNotExist, []string{"does not exist", "--path"}, exitError},
		{"not wordpress", siteOptions{Name: "a", Path: plain}, nil, nil, []string{"not a WordPress site", "--path"}, exitError},
		{"unreadable constant", siteOptions{Name: "a", Path: debian}, nil, nil, []string{"DB_PASSWORD", "--db-password-file", envDBPassword}, exitError},
		{"db refused", siteOptions{Name: "a", Path: ts.root, DBPasswordFile: writeSecret(t, "wrong")}, nil, site.ErrDBLogin, []string{"refused user", "--db-user"}, exitError},
		{"db unreachable", siteOptions{Name: "a", Path: ts.root, DBHost: closed}, nil, site.ErrDBUnreachable, []string{closed, "--db-host"}, exitUnreachable},
		{"db name", siteOptions{Name: "a", Path: ts.root, DBName: "nosuchdb"}, nil, site.ErrDBName, []string{"nosuchdb", "--db-name"}, exitError},
		{"ssh wrong key", func() siteOptions { o := sshOpts(s, "a", ts.root); o.Identity = wrongKey; o.Yes = true; return o }(), nil, ssh.ErrLogin, []string{"login failed", "--identity"}, exitError},
		{"ssh closed port", siteOptions{Name: "a", Path: ts.root, SSH: "root@" + closed, Identity: s.ClientKeyFile, Yes: true}, nil, ssh.ErrUnreachable, []string{"cannot reach"}, exitUnreachable},
		{"ssh missing folder", func() siteOptions { o := sshOpts(s, "a", "/nonexistent/wp"); o.Yes = true; return o }(), nil, nil, []string{"does not exist"}, exitError},
		{"ssh not wordpress", func() siteOptions { o := sshOpts(s, "a", plain); o.Yes = true; return o }(), nil, nil, []string{"not a WordPress site"}, exitError},
		{"ssh unknown key without --yes", sshOpts(s, "a", ts.root), nil, ssh.ErrHostKeyUnknown, []string{s.HostKeyFingerprint(), "--yes"}, exitError},
		{"ssh and no login method", siteOptions{Name: "a", Path: ts.root, SSH: s.User + "@" + s.Addr, Yes: true}, nil, nil, []string{"SITEVAULT_SSH_PASSWORD"}, exitError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t)
			for k, v := range tt.env {
				e.env[k] = v
			}
			out, err := e.run("", siteAddCmd(tt.opts))
			if err == nil {
				t.Fatalf("add succeeded:\n%s", out)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v, want %v", err, tt.is)
			}
			for _, want := range tt.says {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error does not say %q: %v", want, err)
				}
			}
			if got := exitCode(err); got != tt.code {
				t.Errorf("exit code %d, want %d (%v)", got, tt.code, err)
			}
			if strings.Contains(err.Error(), ts.db.Password) || strings.Contains(out, ts.db.Password) {
				t.Errorf("the database password was shown: %v\n%s", err, out)
			}
			list, _ := e.run("", func(ctx context.Context, g *globalOptions, out *bytes.Buffer) error {
				return runSiteList(ctx, g, false, out)
			})
			if strings.Contains(list, "a ") {
				t.Errorf("a failed add stored the site:\n%s", list)
			}
		})
	}
}

func writeSecret(t *testing.T, s string) string {
	p := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(p, []byte(s+"\n"), 0o600)
	return p
}

// TestSiteSSHHostKey: an unknown key is refused without --yes, recorded
// with --yes (and printed), and a changed key is refused until the user
// resets it.
func TestSiteSSHHostKey(t *testing.T) {
	ts := newTestSite(t)
	s := testsrv.StartSSHD(t)
	e := newTestEnv(t)

	opts := sshOpts(s, "remote", ts.root)
	if _, err := e.run("", siteAddCmd(opts)); !errors.Is(err, ssh.ErrHostKeyUnknown) {
		t.Fatalf("add without --yes: %v", err)
	}
	opts.Yes = true
	out := e.mustRun("", siteAddCmd(opts))
	if !strings.Contains(out, "Recorded the SSH host key of "+s.Addr+": ssh-ed25519 "+s.HostKeyFingerprint()) {
		t.Errorf("add --yes did not print the recorded key:\n%s", out)
	}
	ctx := context.Background()
	cat, err := sqlite.Open(ctx, e.home)
	if err != nil {
		t.Fatal(err)
	}
	entry, err := cat.Site(ctx, "remote")
	if err != nil {
		t.Fatal(err)
	}
	if entry.SSH.HostKey != ssh.AuthorizedKey(s.HostKey) || entry.SSH.HostKeyFingerprint != s.HostKeyFingerprint() {
		t.Errorf("recorded %q %q", entry.SSH.HostKey, entry.SSH.HostKeyFingerprint)
	}

	// The server's key changes (here: the catalog holds another one).
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	other, _ := xssh.NewPublicKey(pub)
	entry.SSH.HostKey, entry.SSH.HostKeyFingerprint = ssh.AuthorizedKey(other), xssh.FingerprintSHA256(other)
	if _, err := cat.UpdateSite(ctx, entry); err != nil {
		t.Fatal(err)
	}
	cat.Close()
	_, err = e.run("", func(ctx context.Context, g *globalOptions, out *bytes.Buffer) error {
		return runSiteFiles(ctx, siteFilesOptions{Name: "remote"}, g, out)
	})
	if !errors.Is(err, ssh.ErrHostKeyChanged) || !strings.Contains(err.Error(), "--reset-host-key") {
		t.Fatalf("files with a changed key: %v", err)
	}
	// Editing anything else keeps refusing; --reset-host-key --yes accepts.
	edit := siteOptions{Name: "remote", TablePrefix: "wp_", Yes: true}
	edit.Changed = func(f string) bool { return f == "table-prefix" }
	if _, err := e.run("", siteEditCmd(edit)); !errors.Is(err, ssh.ErrHostKeyChanged) {
		t.Fatalf("edit with a changed key: %v", err)
	}
	edit.ResetHostKey = true
	out = e.mustRun("", siteEditCmd(edit))
	if !strings.Contains(out, s.HostKeyFingerprint()) {
		t.Errorf("edit --reset-host-key output:\n%s", out)
	}
	out = e.mustRun("", siteCmd(runSiteShow, "remote"))
	if !strings.Contains(out, s.HostKeyFingerprint()) || !strings.Contains(out, "connection:    ssh") {
		t.Errorf("show:\n%s", out)
	}
}

func TestSiteFilesAndBackup(t *testing.T) {
	ts := newTestSite(t)
	s := testsrv.StartSSHD(t)
	for _, kind := range []string{"local", "ssh"} {
		t.Run(kind, func(t *testing.T) {
			e := newTestEnv(t)
			opts := siteOptions{Name: "blog", Path: ts.root}
			if kind == "ssh" {
				opts = sshOpts(s, "blog", ts.root)
				opts.Yes = true
			}
			e.mustRun("", siteAddCmd(opts))

			files := func(explain bool) string {
				return e.mustRun("", func(ctx context.Context, g *globalOptions, out *bytes.Buffer) error {
					return runSiteFiles(ctx, siteFilesOptions{Name: "blog", Explain: explain}, g, out)
				})
			}
			list := files(false)
			for _, p := range sitetest.FixtureTaken {
				if !strings.Contains(list, quoteName(p)+"\n") {
					t.Errorf("site files lacks %q", p)
				}
			}
			if strings.Contains(list, "wp-content/cache") || strings.Contains(list, "wp-login.php") {
				t.Errorf("site files lists excluded paths:\n%s", list)
			}
			explained := files(true)
			for _, want := range []string{
				"skip  wp-content/cache/  (cache folder (wp-content/cache))",
				"skip  private/  (folder holds .donotbackup)",
				"skip  wp-admin/  (WordPress core)",
				"skip  blog/  (another WordPress install)",
				"skip  wp-content/updraft/  (backup folder (UpdraftPlus))",
				"take  robots.txt",
			} {
				if !strings.Contains(explained, want) {
					t.Errorf("--explain lacks %q", want)
				}
			}

		})
	}
}

func TestParseSSHTarget(t *testing.T) {
	tests := []struct {
		in         string
		user, host string
		port       int
		ok         bool
	}{
		{"deploy@example.org", "deploy", "example.org", 0, true},
		{"deploy@example.org:2222", "deploy", "example.org", 2222, true},
		{"root@[::1]:22", "root", "::1", 22, true},
		{"root@[::1]", "root", "::1", 0, true},
		{"example.org", "", "", 0, false},
		{"@example.org", "", "", 0, false},
		{"u@host:99999", "", "", 0, false},
		{"u@host:x", "", "", 0, false},
	}
	for _, tt := range tests {
		u, h, p, err := parseSSHTarget(tt.in)
		if (err == nil) != tt.ok || u != tt.user || h != tt.host || p != tt.port {
			t.Errorf("parseSSHTarget(%q) = %q %q %d %v", tt.in, u, h, p, err)
		}
	}
}
