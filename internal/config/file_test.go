package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sitevault/sitevault/internal/sitevault"
)

func TestParseFileRefuses(t *testing.T) {
	for _, tc := range []struct {
		name, doc string
		want      []string // in the error
	}{
		{"bad toml", "[sites.blog\nx = 1\n", []string{"line 1", "not valid TOML"}},
		{"unknown top key", "repo = \"/x\"\n", []string{"line 1", "key repo", "unknown key", "repository"}},
		{"unknown key suggested", "[sites.blog.retention]\nkeep_dialy = 3\n", []string{"line 2", "sites.blog.retention.keep_dialy", `did you mean "keep_daily"`}},
		{"repository password", "\n\npassword = \"hunter2\"\n", []string{"line 3", "key password", "password_file", EnvPassword}},
		{"db password", "[sites.blog.db]\nhost = \"h\"\npassword = \"x\"\n", []string{"line 3", "sites.blog.db.password", "sitevault site edit blog"}},
		{"ssh passphrase inline", "[sites.blog]\nssh = { user = \"u\", passphrase = \"x\" }\n", []string{"line 2", "sites.blog.ssh.passphrase", "secrets are not kept"}},
		{"catalog password", "catalog = \"postgres://u:pw@db/sv\"\n", []string{"line 1", "key catalog", "PGPASSWORD"}},
		{"wrong type", "[sites.blog.retention]\nkeep_daily = \"30\"\n", []string{"line 2", "keep_daily", "wrong type", "integer"}},
		{"wrong type list", "[defaults]\nexclude = \"*.log\"\n", []string{"line 2", "defaults.exclude", "array"}},
		{"bad time zone", "[sites.blog.schedule]\nstart = \"03:00\"\ntime_zone = \"Mars/Olympus\"\n", []string{"line 3", "sites.blog.schedule.time_zone", "IANA"}},
		{"bad start", "[sites.blog.schedule]\nstart = \"25:00\"\n", []string{"line 2", "schedule.start", "HH:MM"}},
		{"bad window", "[defaults.schedule]\nwindow = \"30h\"\n", []string{"line 2", "defaults.schedule.window", "24h"}},
		{"negative count", "[sites.blog.retention]\nkeep_last = -1\n", []string{"line 2", "keep_last", "negative"}},
		{"bad site name", "[sites.Blog]\nexclude = [\"x\"]\n", []string{"line 1", "sites.Blog", "lower-case"}},
		{"ssh in defaults", "[defaults.ssh]\nuser = \"u\"\n", []string{"line 1", "defaults.ssh", "[sites.NAME.ssh]"}},
		{"relative password file", "password_file = \"pw\"\n", []string{"line 1", "password_file", "absolute"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseFile("/etc/sv.toml", []byte(tc.doc))
			if err == nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, ErrConfigFile) {
				t.Errorf("%v does not wrap ErrConfigFile", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, "config file /etc/sv.toml") {
				t.Errorf("%q does not name the file", msg)
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("%q lacks %q", msg, w)
				}
			}
			if strings.Contains(msg, "hunter2") || strings.Contains(msg, ":pw@") {
				t.Errorf("%q shows the secret", msg)
			}
		})
	}
}

const exampleFile = `
repository = "/srv/repo"
password_file = "/etc/sitevault/pw"

[defaults]
exclude = ["*.log"]
[defaults.retention]
keep_daily = 7
[defaults.schedule]
time_zone = "Europe/Berlin"

[sites.blog]
exclude = ["wp-content/big"]
retention = { keep_last = 3 }
[sites.blog.schedule]
start = "05:30"
window = "30m"
[sites.blog.ssh]
host = "new.example.org"
port = 2222
key_file = "/etc/sitevault/id_blog"
[sites.blog.db]
host = "db.internal"
`

func TestApplySite(t *testing.T) {
	f, err := ParseFile("x.toml", []byte(exampleFile))
	if err != nil {
		t.Fatal(err)
	}
	// [sites.blog] wins over the catalog's settings.
	blog := sitevault.Site{Name: "blog", Kind: sitevault.SSH, Path: "/var/www", SSH: sitevault.SSHSettings{User: "u", Host: "old", Port: 22},
		Schedule: sitevault.Schedule{Start: "01:00", TimeZone: "UTC"}, Retention: &sitevault.Retention{KeepDaily: 99}}
	got := f.ApplySite(blog)
	if *got.Retention != (sitevault.Retention{KeepLast: 3}) {
		t.Errorf("retention %+v, want the file's keep_last 3", *got.Retention)
	}
	if got.Schedule != (sitevault.Schedule{Start: "05:30", Window: 30 * time.Minute, TimeZone: "UTC"}) {
		t.Errorf("schedule %+v: the site's start and window from the file, the catalog's zone", got.Schedule)
	}
	if got.SSH.Host != "new.example.org" || got.SSH.Port != 2222 || got.SSH.User != "u" || got.SSH.IdentityFile != "/etc/sitevault/id_blog" || got.DB.Host != "db.internal" {
		t.Errorf("connection %+v %+v", got.SSH, got.DB)
	}
	if err := got.Validate(); err != nil {
		t.Error(err)
	}
	// [defaults] fill only what the catalog leaves at the built-in default.
	shop := sitevault.Site{Name: "shop", Kind: sitevault.Local, Path: "/var/www/shop", Schedule: sitevault.Schedule{Start: "04:00"}}
	got = f.ApplySite(shop)
	if got.Retention == nil || *got.Retention != (sitevault.Retention{KeepDaily: 7}) {
		t.Errorf("shop retention %+v, want the defaults'", got.Retention)
	}
	if got.Schedule != (sitevault.Schedule{Start: "04:00", TimeZone: "Europe/Berlin"}) {
		t.Errorf("shop schedule %+v", got.Schedule)
	}
	shop.Retention = &sitevault.Retention{KeepLast: 1}
	if got := f.ApplySite(shop); *got.Retention != (sitevault.Retention{KeepLast: 1}) {
		t.Errorf("the defaults replaced the catalog's own retention: %+v", *got.Retention)
	}
	if ex := f.Excludes("blog"); strings.Join(ex, ",") != "*.log,wp-content/big" {
		t.Errorf("excludes %v", ex)
	}
	if f.Line("sites.blog.ssh.port") != 20 {
		t.Errorf("line of sites.blog.ssh.port: %d", f.Line("sites.blog.ssh.port"))
	}
}

func TestResolvePrecedence(t *testing.T) {
	home := t.TempDir()
	envs := map[string]string{}
	env := func(k string) (string, bool) { v, ok := envs[k]; return v, ok }
	check := func(flags Flags, repo, catalog string, src Source) {
		t.Helper()
		flags.Home = home
		c, err := Resolve(flags, env)
		if err != nil {
			t.Fatal(err)
		}
		if c.Repo != repo || c.Sources["repository"] != src || c.Catalog != catalog || c.Sources["catalog"] != src {
			t.Errorf("repository %s, catalog %s from %s/%s; want %s, %s from %s", c.Repo, c.Catalog, c.Sources["repository"], c.Sources["catalog"], repo, catalog, src)
		}
	}
	check(Flags{}, filepath.Join(home, "repo"), "", SourceDefault)
	os.WriteFile(filepath.Join(home, FileName), []byte("repository = \"/from/file\"\ncatalog = \"postgres://sv@file/sv\"\n"), 0o600)
	check(Flags{}, "/from/file", "postgres://sv@file/sv", SourceFile)
	envs[EnvRepository], envs[EnvCatalog] = "/from/env", "postgres://sv@env/sv"
	check(Flags{}, "/from/env", "postgres://sv@env/sv", SourceEnv)
	check(Flags{Repo: "/from/flag", Catalog: "postgres://sv@flag/sv"}, "/from/flag", "postgres://sv@flag/sv", SourceFlag)

	// --config and $SITEVAULT_CONFIG name another file; a missing one is an error.
	other := filepath.Join(t.TempDir(), "other.toml")
	os.WriteFile(other, []byte("repository = \"/other\"\ncatalog = \"\"\n"), 0o600)
	delete(envs, EnvRepository)
	envs[EnvConfig] = other
	envs[EnvCatalog] = ""
	if c, err := Resolve(Flags{Home: home}, env); err != nil || c.Repo != "/other" || c.Sources["repository"] != SourceFile {
		t.Errorf("$%s: %v %+v", EnvConfig, err, c)
	}
	if _, err := Resolve(Flags{Home: home, ConfigFile: other + ".missing"}, env); !errors.Is(err, ErrConfigFile) || !strings.Contains(err.Error(), "--config") {
		t.Errorf("a missing --config file: %v", err)
	}
	// A broken file is an error before anything else happens.
	os.WriteFile(other, []byte("repository = \"/other\"\nbogus = 1\n"), 0o600)
	if _, err := Resolve(Flags{Home: filepath.Join(home, "new")}, env); err == nil || !strings.Contains(err.Error(), "line 2, key bogus") {
		t.Errorf("a broken file: %v", err)
	}
	if _, err := os.Stat(filepath.Join(home, "new")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a broken file created the data home: %v", err)
	}
}
