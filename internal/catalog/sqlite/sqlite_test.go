package sqlite

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sitevault/sitevault/internal/catalog"
	"github.com/sitevault/sitevault/internal/catalog/catalogtest"
	"github.com/sitevault/sitevault/internal/seal"
	"github.com/sitevault/sitevault/internal/sitevault"
)

func openTest(t *testing.T, home string) *catalog.Catalog {
	t.Helper()
	c, err := Open(context.Background(), home)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func sshSite(name string) sitevault.Site {
	return sitevault.Site{
		Name: name, Kind: sitevault.SSH, Path: "/var/www/html",
		SSH: sitevault.SSHSettings{
			User: "deploy", Host: "example.org", Port: 2222, IdentityFile: "/home/me/.ssh/id_ed25519",
			HostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample", HostKeyFingerprint: "SHA256:abc",
			Password: "ssh-Pass-7f3c1e", Passphrase: "key-Phrase-9a2b4d",
		},
		DB: sitevault.DBOverrides{Host: "db:3306", Name: "wp", User: "wpuser", Password: "db-Secret-5e6f7a", TablePrefix: "wp_"},
	}
}

func TestMigrations(t *testing.T) {
	home := t.TempDir()
	c := openTest(t, home)
	ctx := context.Background()
	v, err := c.SchemaVersion(ctx)
	if err != nil || v != Migrations[len(Migrations)-1].Version {
		t.Fatalf("SchemaVersion = %d, %v", v, err)
	}
	for i, m := range Migrations {
		if m.Version != i+1 {
			t.Fatalf("migration %d has version %d: versions must be 1, 2, 3, …", i, m.Version)
		}
	}
	var mode string
	if err := c.DB().QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q, %v; want wal", mode, err)
	}
	var busy int
	if err := c.DB().QueryRowContext(ctx, `PRAGMA busy_timeout`).Scan(&busy); err != nil || busy < 1000 {
		t.Errorf("busy_timeout = %d, %v", busy, err)
	}
	fi, err := os.Stat(filepath.Join(home, FileName))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("catalog file mode: %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	c.Close()

	// Reopening applies nothing twice.
	c2 := openTest(t, home)
	var n int
	c2.DB().QueryRow(`SELECT count(*) FROM schema_migrations`).Scan(&n)
	if n != len(Migrations) {
		t.Errorf("schema_migrations has %d rows, want %d", n, len(Migrations))
	}
	// A catalog from a newer sitevault is refused.
	if _, err := c2.DB().Exec(`INSERT INTO schema_migrations VALUES (999, 'future', 'x')`); err != nil {
		t.Fatal(err)
	}
	c2.Close()
	if _, err := Open(ctx, home); !errors.Is(err, catalog.ErrSchemaTooNew) {
		t.Errorf("Open newer catalog: %v, want catalog.ErrSchemaTooNew", err)
	}
}

func TestConcurrentOpen(t *testing.T) {
	home := t.TempDir()
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			c, err := Open(context.Background(), home)
			if err != nil {
				errs <- err
				return
			}
			c.Close()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestSiteCRUD(t *testing.T) {
	ctx := context.Background()
	c := openTest(t, t.TempDir())
	clock := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	c.Now = func() time.Time { return clock }

	want := sshSite("shop")
	want.LastDB = &sitevault.DBCredentials{Host: "localhost", Name: "wp", User: "wpuser", Password: "last-Pw-1b2c3d"}
	got, err := c.AddSite(ctx, want)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Created.Equal(clock) {
		t.Errorf("Created = %v", got.Created)
	}
	if _, err := c.AddSite(ctx, want); !errors.Is(err, catalog.ErrSiteExists) {
		t.Errorf("second AddSite: %v, want catalog.ErrSiteExists", err)
	}
	local := sitevault.Site{Name: "blog", Kind: sitevault.Local, Path: "/srv/blog"}
	if _, err := c.AddSite(ctx, local); err != nil {
		t.Fatal(err)
	}

	read, err := c.Site(ctx, "shop")
	if err != nil {
		t.Fatal(err)
	}
	want.Created, want.Updated = clock, clock
	if !reflect.DeepEqual(read, want) || read.SSH.Password.Reveal() != "ssh-Pass-7f3c1e" {
		t.Errorf("sitevault.Site = %+v\nwant %+v", read, want)
	}

	sites, err := c.Sites(ctx)
	if err != nil || len(sites) != 2 || sites[0].Name != "blog" || sites[1].Name != "shop" {
		t.Fatalf("Sites = %v, %v", sites, err)
	}

	clock = clock.Add(time.Hour)
	read.Path = "/srv/shop"
	read.DB.Password = ""
	if _, err := c.UpdateSite(ctx, read); err != nil {
		t.Fatal(err)
	}
	read2, _ := c.Site(ctx, "shop")
	if read2.Path != "/srv/shop" || read2.DB.Password != "" || !read2.Created.Equal(want.Created) || !read2.Updated.Equal(clock) {
		t.Errorf("after update: %+v", read2)
	}
	if _, err := c.UpdateSite(ctx, sshSite("nosuch")); !errors.Is(err, catalog.ErrSiteNotFound) {
		t.Errorf("UpdateSite(nosuch) = %v", err)
	}

	if err := c.SetLastDB(ctx, "blog", sitevault.DBCredentials{Host: "127.0.0.1", Name: "b", User: "u", Password: "p"}); err != nil {
		t.Fatal(err)
	}
	blog, _ := c.Site(ctx, "blog")
	if blog.LastDB == nil || blog.LastDB.Password.Reveal() != "p" {
		t.Errorf("LastDB = %+v", blog.LastDB)
	}
	if err := c.SetLastDB(ctx, "nosuch", sitevault.DBCredentials{}); !errors.Is(err, catalog.ErrSiteNotFound) {
		t.Errorf("SetLastDB(nosuch) = %v", err)
	}

	if err := c.RemoveSite(ctx, "shop"); err != nil {
		t.Fatal(err)
	}
	if err := c.RemoveSite(ctx, "shop"); !errors.Is(err, catalog.ErrSiteNotFound) {
		t.Errorf("second RemoveSite: %v", err)
	}
	if _, err := c.Site(ctx, "shop"); !errors.Is(err, catalog.ErrSiteNotFound) {
		t.Errorf("sitevault.Site after remove: %v", err)
	}
}

func TestValidate(t *testing.T) {
	ok := sitevault.Site{Name: "a-1", Kind: sitevault.Local, Path: "/x"}
	tests := []struct {
		name string
		edit func(*sitevault.Site)
		ok   bool
	}{
		{"valid local", func(*sitevault.Site) {}, true},
		{"valid ssh", func(s *sitevault.Site) { *s = sshSite("b") }, true},
		{"empty name", func(s *sitevault.Site) { s.Name = "" }, false},
		{"upper case", func(s *sitevault.Site) { s.Name = "Shop" }, false},
		{"leading dash", func(s *sitevault.Site) { s.Name = "-shop" }, false},
		{"slash", func(s *sitevault.Site) { s.Name = "a/b" }, false},
		{"space", func(s *sitevault.Site) { s.Name = "a b" }, false},
		{"dot", func(s *sitevault.Site) { s.Name = "a.b" }, false},
		{"too long", func(s *sitevault.Site) { s.Name = strings.Repeat("a", 64) }, false},
		{"63 long", func(s *sitevault.Site) { s.Name = strings.Repeat("a", 63) }, true},
		{"relative path", func(s *sitevault.Site) { s.Path = "www" }, false},
		{"no kind", func(s *sitevault.Site) { s.Kind = "" }, false},
		{"ftp", func(s *sitevault.Site) { s.Kind = "ftp" }, false},
		{"local with ssh", func(s *sitevault.Site) { s.SSH.Host = "h" }, false},
		{"ssh without host", func(s *sitevault.Site) { *s = sshSite("b"); s.SSH.Host = "" }, false},
		{"ssh without user", func(s *sitevault.Site) { *s = sshSite("b"); s.SSH.User = "" }, false},
		{"ssh bad port", func(s *sitevault.Site) { *s = sshSite("b"); s.SSH.Port = 70000 }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := ok
			tt.edit(&s)
			err := s.Validate()
			if tt.ok && err != nil {
				t.Errorf("Validate = %v", err)
			}
			if !tt.ok && !errors.Is(err, sitevault.ErrInvalid) {
				t.Errorf("Validate = %v, want ErrInvalid", err)
			}
		})
	}
	c := openTest(t, t.TempDir())
	if _, err := c.AddSite(context.Background(), sitevault.Site{Name: "Bad", Kind: sitevault.Local, Path: "/x"}); !errors.Is(err, sitevault.ErrInvalid) {
		t.Errorf("AddSite(Bad) = %v", err)
	}
}

// TestSecretsSealedAtRest reads every byte SQLite wrote (database, WAL)
// and checks no secret appears in it.
func TestSecretsSealedAtRest(t *testing.T) {
	ctx := context.Background()
	home := t.TempDir()
	c := openTest(t, home)
	s := sshSite("shop")
	s.LastDB = &sitevault.DBCredentials{Host: "h", Name: "n", User: "u", Password: "last-Pw-1b2c3d"}
	if _, err := c.AddSite(ctx, s); err != nil {
		t.Fatal(err)
	}
	secrets := []string{"ssh-Pass-7f3c1e", "key-Phrase-9a2b4d", "db-Secret-5e6f7a", "last-Pw-1b2c3d"}
	check := func(when string) {
		t.Helper()
		files, _ := filepath.Glob(filepath.Join(home, FileName+"*"))
		if len(files) == 0 {
			t.Fatal("no catalog files")
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, sec := range secrets {
				if bytes.Contains(b, []byte(sec)) {
					t.Errorf("%s: %s holds the plaintext secret %q", when, filepath.Base(f), sec)
				}
			}
			if when == "before checkpoint" && !bytes.Contains(b, []byte("wpuser")) && strings.HasSuffix(f, "-wal") {
				t.Logf("note: %s does not hold the row", f)
			}
		}
	}
	check("before checkpoint")
	if _, err := c.DB().Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		t.Fatal(err)
	}
	check("after checkpoint")
	// The non-secret columns are there in clear, proving we looked at the right bytes.
	b, _ := os.ReadFile(filepath.Join(home, FileName))
	if !bytes.Contains(b, []byte("wpuser")) {
		t.Error("catalog.DB() does not hold the site row; the test read the wrong file")
	}

	// The seal is bound to its row: a sealed value copied to another site
	// does not open.
	if _, err := c.AddSite(ctx, sshSite("other")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DB().Exec(`UPDATE sites SET db_password = (SELECT db_password FROM sites WHERE name = 'shop') WHERE name = 'other'`); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Site(ctx, "other"); !errors.Is(err, seal.ErrOpen) {
		t.Errorf("swapped sealed value: %v, want seal.ErrOpen", err)
	}
}

func TestSecretNeverPrinted(t *testing.T) {
	s := sshSite("shop")
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("site", "password", s.SSH.Password, "site", s)
	js, _ := json.Marshal(s)
	outputs := map[string]string{
		"%v":   fmt.Sprintf("%v", s),
		"%+v":  fmt.Sprintf("%+v", s),
		"%#v":  fmt.Sprintf("%#v", s),
		"%s":   fmt.Sprintf("%s", s.DB.Password),
		"%q":   fmt.Sprintf("%q", s.DB.Password),
		"json": string(js),
		"slog": logged.String(),
	}
	for how, out := range outputs {
		for _, sec := range []string{"ssh-Pass-7f3c1e", "key-Phrase-9a2b4d", "db-Secret-5e6f7a"} {
			if strings.Contains(out, sec) {
				t.Errorf("%s shows secret %q: %s", how, sec, out)
			}
		}
	}
}

// TestLooseModesRefused: issue 8 finding 12, a catalog.DB() (or its -wal and
// -shm) that other users may read was used silently.
func TestLooseModesRefused(t *testing.T) {
	for _, name := range []string{FileName, FileName + "-wal", FileName + "-shm"} {
		t.Run(name, func(t *testing.T) {
			home := t.TempDir()
			openTest(t, home).Close()
			path := filepath.Join(home, name)
			if err := os.WriteFile(path, nil, 0o600); err != nil && !errors.Is(err, os.ErrExist) {
				t.Fatal(err)
			}
			if err := os.Chmod(path, 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Open(context.Background(), home)
			var me *seal.ModeError
			if !errors.As(err, &me) || !strings.Contains(err.Error(), "chmod 600 "+path) {
				t.Fatalf("Open = %v, want a ModeError with chmod 600 %s", err, path)
			}
		})
	}
	t.Run("new files are 0600", func(t *testing.T) {
		home := t.TempDir()
		c := openTest(t, home)
		defer c.Close()
		if _, err := c.DB().ExecContext(context.Background(), "CREATE TABLE t (x INTEGER)"); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{FileName, FileName + "-wal", FileName + "-shm", "secret.key"} {
			fi, err := os.Stat(filepath.Join(home, name))
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("%s mode %04o, want 0600", name, fi.Mode().Perm())
			}
		}
	})
}

func TestConformance(t *testing.T) {
	catalogtest.Run(t, func(t *testing.T) (*catalog.Catalog, func() *catalog.Catalog) {
		home := t.TempDir()
		first := openTest(t, home)
		return first, func() *catalog.Catalog { return openTest(t, home) }
	})
}
