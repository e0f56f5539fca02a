package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sitevault/sitevault/internal/config"
	"github.com/sitevault/sitevault/internal/repository"
	"github.com/sitevault/sitevault/internal/sitevault"
)

func writeConfig(t testing.TB, e *testEnv, doc string) {
	t.Helper()
	if err := os.MkdirAll(e.home, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.home, config.FileName), []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
}

func forgetCmd(o forgetOptions) func(context.Context, *globalOptions, *bytes.Buffer) error {
	return func(ctx context.Context, g *globalOptions, out *bytes.Buffer) error { return runForget(ctx, o, g, out) }
}

// forget SITE and forget --all use the config file's retention; the
// --keep-… flags beat it.
func TestConfigFileRetention(t *testing.T) {
	e := newTestEnv(t)
	e.mustRun("", initCmd)
	src := t.TempDir()
	for i, site := range []string{"a", "a", "a", "a", "b", "b", "b", "c", "c"} {
		writeTree(t, src, map[string]string{"f.txt": fmt.Sprint(site, i)})
		e.mustRun("", backupCmd(src, site))
	}
	e.mustRun("", func(ctx context.Context, g *globalOptions, _ *bytes.Buffer) error {
		cat, _, err := openCatalog(ctx, g)
		if err != nil {
			return err
		}
		defer cat.Close()
		for _, n := range []string{"a", "b", "c"} {
			st := sitevault.Site{Name: n, Kind: sitevault.Local, Path: "/srv/" + n}
			if n == "c" {
				st.Retention = &sitevault.Retention{KeepLast: 1} // the catalog's own
			}
			if _, err := cat.AddSite(ctx, st); err != nil {
				return err
			}
		}
		return nil
	})
	writeConfig(t, e, "[defaults.retention]\nkeep_last = 2\n\n[sites.a.retention]\nkeep_last = 3\n")
	count := func(site string) int {
		out := e.mustRun("", func(ctx context.Context, g *globalOptions, out *bytes.Buffer) error {
			return runForget(ctx, forgetOptions{Site: site, DryRun: true, JSON: true, Policy: repository.Policy{KeepLast: 100}}, g, out)
		})
		var res []forgetJSON
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatal(err, out)
		}
		return len(res[0].Kept)
	}
	// forget SITE: the file's [sites.a] wins over the defaults.
	out := e.mustRun("", forgetCmd(forgetOptions{Site: "a"}))
	if !strings.Contains(out, "removed 1 restore point") || count("a") != 3 {
		t.Fatalf("forget a by the file's keep_last 3:\n%s", out)
	}
	// A flag beats the file.
	e.mustRun("", forgetCmd(forgetOptions{Site: "a", Policy: repository.Policy{KeepLast: 2}}))
	if n := count("a"); n != 2 {
		t.Fatalf("--keep-last 2: %d left", n)
	}
	// forget --all: b by the defaults (2), c by its catalog's own (1).
	out = e.mustRun("", forgetCmd(forgetOptions{All: true}))
	if count("a") != 2 || count("b") != 2 || count("c") != 1 {
		t.Fatalf("forget --all: a %d, b %d, c %d\n%s", count("a"), count("b"), count("c"), out)
	}
	if !strings.Contains(out, "Site b (--keep-last 2)") {
		t.Errorf("forget --all does not name b's policy:\n%s", out)
	}
}

// A broken config file stops every command before it changes anything.
func TestConfigFileBrokenChangesNothing(t *testing.T) {
	e := newTestEnv(t)
	e.mustRun("", initCmd)
	src := t.TempDir()
	for i := range 3 {
		writeTree(t, src, map[string]string{"f.txt": string(rune('a' + i))})
		e.mustRun("", backupCmd(src, "a"))
	}
	before := repoState(t, filepath.Join(e.home, "repo"))
	for _, doc := range []string{
		"[sites.a.retention\nkeep_last = 1\n",
		"[sites.a.retention]\nkeep_lst = 1\n",
		"[sites.a.retention]\nkeep_last = \"1\"\n",
		"[sites.a.db]\npassword = \"x\"\n",
		"[sites.a.schedule]\ntime_zone = \"Nowhere/City\"\n",
	} {
		writeConfig(t, e, doc)
		_, err := e.run("", forgetCmd(forgetOptions{Site: "a", Policy: repository.Policy{KeepLast: 1}}))
		if err == nil || !strings.Contains(err.Error(), "config file "+filepath.Join(e.home, config.FileName)+", line ") {
			t.Errorf("%q: %v", doc, err)
		}
		if exitCode(err) == exitOK {
			t.Errorf("%q: exit code 0", doc)
		}
	}
	if after := repoState(t, filepath.Join(e.home, "repo")); after != before {
		t.Error("a command with a broken config file changed the repository")
	}
}

// config show says where each setting came from.
func TestConfigShowSources(t *testing.T) {
	e := newTestEnv(t)
	writeConfig(t, e, "repository = \"/srv/file-repo\"\nserver = \"http://file:8570\"\n[sites.blog.schedule]\nstart = \"05:30\"\n")
	show := func(g func(*globalOptions)) configShowJSON {
		t.Helper()
		var out configShowJSON
		s := e.mustRun("", func(ctx context.Context, gl *globalOptions, o *bytes.Buffer) error {
			if g != nil {
				g(gl)
			}
			return runConfigShow(ctx, configOptions{JSON: true}, gl, o)
		})
		if err := json.Unmarshal([]byte(s), &out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	get := func(c configShowJSON, key string) configSettingJSON {
		for _, s := range c.Settings {
			if s.Key == key {
				return s
			}
		}
		t.Fatalf("no %s in %+v", key, c)
		return configSettingJSON{}
	}
	c := show(nil)
	if s := get(c, "repository"); s.Value != "/srv/file-repo" || s.Source != "file" || s.Line != 1 {
		t.Errorf("repository from the file: %+v", s)
	}
	if s := get(c, "sites.blog.schedule"); s.Source != "file" || s.Line != 3 {
		t.Errorf("schedule: %+v", s)
	}
	e.env[config.EnvRepository] = "/srv/env-repo"
	e.env[config.EnvPassword] = "hunter2"
	e.env[config.EnvCatalog] = "postgres://sv:secretpw@db/sv"
	c = show(nil)
	if s := get(c, "repository"); s.Value != "/srv/env-repo" || s.Source != "env" {
		t.Errorf("repository from the environment: %+v", s)
	}
	c = show(func(g *globalOptions) { g.Repo = "/srv/flag-repo" })
	if s := get(c, "repository"); s.Value != "/srv/flag-repo" || s.Source != "flag" {
		t.Errorf("repository from the flag: %+v", s)
	}
	b, _ := json.Marshal(c)
	if strings.Contains(string(b), "hunter2") || strings.Contains(string(b), "secretpw") {
		t.Errorf("config show shows a secret: %s", b)
	}
}

// backup takes the config file's excludes besides the site rules.
func TestConfigFileExcludes(t *testing.T) {
	ts := newTestSite(t)
	e := newTestEnv(t)
	e.mustRun("", initCmd)
	e.mustRun("", siteAddCmd(siteOptions{Name: "blog", Path: ts.root}))
	writeConfig(t, e, "[defaults]\nexclude = [\"robots.txt\"]\n[sites.blog]\nexclude = [\"wp-content/uploads\"]\n[sites.other]\nexclude = [\"wp-content\"]\n")
	out := e.mustRun("", func(ctx context.Context, g *globalOptions, out *bytes.Buffer) error {
		return runBackup(ctx, backupOptions{Name: "blog", JSON: true}, g, out)
	})
	for _, want := range []string{`"robots.txt"`, `"wp-content/uploads"`, `excluded by pattern (\"robots.txt\")`} {
		if !strings.Contains(out, want) {
			t.Errorf("backup JSON lacks %s:\n%s", want, out)
		}
	}
	ids := snapshotIDs(t, e)
	if len(ids) != 1 {
		t.Fatalf("%d points", len(ids))
	}
	if strings.Contains(out, `"wp-content"`) {
		t.Errorf("another site's exclude was applied:\n%s", out)
	}
}

// site show and site list show what backups use: the config file's
// settings over the catalog's, each with where it came from.
func TestSiteShowConfigFile(t *testing.T) {
	e := newTestEnv(t)
	e.mustRun("", initCmd)
	e.mustRun("", func(ctx context.Context, g *globalOptions, _ *bytes.Buffer) error {
		cat, _, err := openCatalog(ctx, g)
		if err != nil {
			return err
		}
		defer cat.Close()
		for _, st := range []sitevault.Site{
			{Name: "a", Kind: sitevault.SSH, Path: "/srv/a", SSH: sitevault.SSHSettings{User: "u", Host: "old.example.org", Port: 22}},
			{Name: "b", Kind: sitevault.Local, Path: "/srv/b", Retention: &sitevault.Retention{KeepLast: 9}},
			{Name: "c", Kind: sitevault.Local, Path: "/srv/c"},
		} {
			if _, err := cat.AddSite(ctx, st); err != nil {
				return err
			}
		}
		return nil
	})
	writeConfig(t, e, `[defaults]
exclude = ["*.bak"]
[defaults.schedule]
start = "03:30"
[sites.a]
exclude = ["wp-content/big"]
[sites.a.retention]
keep_last = 3
[sites.a.schedule]
window = "4h"
time_zone = "Europe/Berlin"
[sites.a.ssh]
host = "new.example.org"
port = 2222
`)
	show := func(name string) siteJSON {
		out := e.mustRun("", func(ctx context.Context, g *globalOptions, out *bytes.Buffer) error {
			return runSiteShow(ctx, name, g, true, out)
		})
		var j siteJSON
		if err := json.Unmarshal([]byte(out), &j); err != nil {
			t.Fatal(err, out)
		}
		return j
	}
	a := show("a")
	if a.Retention != (sitevault.Retention{KeepLast: 3}) || a.RetentionFrom != fromConfigFile {
		t.Errorf("a: retention %+v from %q, want keep_last 3 from the config file", a.Retention, a.RetentionFrom)
	}
	if want := (siteScheduleJSON{Start: "03:30", Window: "4h", TimeZone: "Europe/Berlin"}); a.Schedule != want || a.ScheduleFrom != fromConfigFile {
		t.Errorf("a: schedule %+v from %q, want %+v from the config file", a.Schedule, a.ScheduleFrom, want)
	}
	if a.SSH == nil || a.SSH.Address != "new.example.org:2222" {
		t.Errorf("a: ssh %+v, want the config file's new.example.org:2222", a.SSH)
	}
	if strings.Join(a.Excludes, " ") != "*.bak wp-content/big" {
		t.Errorf("a: excludes %q", a.Excludes)
	}
	b := show("b")
	if b.Retention != (sitevault.Retention{KeepLast: 9}) || b.RetentionFrom != fromSite {
		t.Errorf("b: retention %+v from %q, want its own keep_last 9", b.Retention, b.RetentionFrom)
	}
	if b.Schedule.Start != "03:30" || b.Schedule.Window != "2h" || b.ScheduleFrom != fromConfigFile {
		t.Errorf("b: schedule %+v from %q, want the file's defaults' start 03:30", b.Schedule, b.ScheduleFrom)
	}
	e2 := newTestEnv(t) // no config file at all
	e2.mustRun("", initCmd)
	e2.mustRun("", func(ctx context.Context, g *globalOptions, _ *bytes.Buffer) error {
		cat, _, err := openCatalog(ctx, g)
		if err != nil {
			return err
		}
		defer cat.Close()
		_, err = cat.AddSite(ctx, sitevault.Site{Name: "c", Kind: sitevault.Local, Path: "/srv/c"})
		return err
	})
	out := e2.mustRun("", func(ctx context.Context, g *globalOptions, out *bytes.Buffer) error {
		return runSiteShow(ctx, "c", g, true, out)
	})
	var c siteJSON
	if err := json.Unmarshal([]byte(out), &c); err != nil {
		t.Fatal(err, out)
	}
	if c.Retention != sitevault.DefaultRetention || c.RetentionFrom != fromDefault || c.ScheduleFrom != fromDefault ||
		c.Schedule != (siteScheduleJSON{Start: sitevault.DefaultStart, Window: "2h", TimeZone: "UTC"}) || c.Excludes == nil {
		t.Errorf("c without a config file: %+v", c)
	}

	text := e.mustRun("", func(ctx context.Context, g *globalOptions, out *bytes.Buffer) error {
		return runSiteShow(ctx, "a", g, false, out)
	})
	for _, want := range []string{"retention:     last 3, daily 0, weekly 0, monthly 0  (config file)",
		"schedule:      daily, between 03:30 and 4h later, Europe/Berlin  (config file)",
		"excludes:      *.bak, wp-content/big  (config file)", "u@new.example.org:2222"} {
		if !strings.Contains(text, want) {
			t.Errorf("site show a lacks %q:\n%s", want, text)
		}
	}
	list := e.mustRun("", func(ctx context.Context, g *globalOptions, out *bytes.Buffer) error {
		return runSiteList(ctx, g, true, out)
	})
	if !strings.Contains(list, "new.example.org") {
		t.Errorf("site list --json does not show the config file's host:\n%s", list)
	}
}
