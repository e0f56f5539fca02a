package e2e_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMistypedSiteName checks that a site name that is no site's fails
// (a cron retention job with a typo must not do nothing and exit 0), with
// the closest name, while a name with points but no catalog entry (a
// folder's) still works; and that the site is an argument of forget and
// snapshots, with the old --site flag still working and noted as
// deprecated.
func TestMistypedSiteName(t *testing.T) {
	needServers(t)
	w, _ := newSite(t)
	sv := newCLI(t)
	sv.addSite("blog", w, false)
	sv.ok("backup", "blog")

	for _, args := range [][]string{
		{"points", "blgo"},
		{"forget", "blgo", "--keep-last", "1", "--yes"},
		{"forget", "--site", "blgo", "--keep-last", "1", "--yes"},
		{"snapshots", "blgo"},
		{"backup", "blgo"},
		{"restore", "blgo", "--to", "latest", "--yes"},
		{"undo", "blgo", "--yes"},
		{"download", "blgo", "--to", "latest", "-o", filepath.Join(t.TempDir(), "x.tar.gz")},
		{"site", "show", "blgo"},
		{"site", "remove", "blgo", "--yes"},
		{"site", "files", "blgo"},
	} {
		r := sv.run(args...)
		if r.code == 0 || !strings.Contains(r.stderr, "no site blgo; did you mean blog?") {
			t.Errorf("a mistyped site name: want a non-zero exit with the suggestion, got %v", r)
		}
	}
	// A name far from any: no suggestion, still an error.
	if r := sv.run("points", "zzzzzzzz"); r.code == 0 || strings.Contains(r.stderr, "did you mean") {
		t.Errorf("points of an unknown name: %v", r)
	}
	// A mistyped command gets cobra's suggestion.
	if r := sv.run("bakcup", "blog"); r.code != 2 || !strings.Contains(r.stderr, "did you mean backup?") {
		t.Errorf("a mistyped command: %v", r)
	}

	// A folder's points are a site's for points and forget, registered or not.
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "a.txt"), []byte("one"), 0o644))
	sv.ok("dir", "backup", dir, "--site", "notes")
	must(t, os.WriteFile(filepath.Join(dir, "a.txt"), []byte("two"), 0o644))
	sv.ok("dir", "backup", dir, "--site", "notes")
	if n := len(sv.points("notes")); n != 2 {
		t.Fatalf("points notes: %d points, want 2", n)
	}

	// forget SITE, and the deprecated --site.
	out := sv.ok("forget", "notes", "--keep-last", "1", "--yes")
	if !strings.Contains(out, "removed 1 restore point of") {
		t.Errorf("forget notes --keep-last 1:\n%s", out)
	}
	r := sv.run("forget", "--site", "notes", "--keep-last", "1", "--yes")
	if r.code != 0 || !strings.Contains(r.stderr, "deprecated") || !strings.Contains(r.stdout, "removed 0 restore points") {
		t.Errorf("forget --site (deprecated): %v", r)
	}
	if out := sv.ok("snapshots", "notes"); strings.Contains(out, "blog") || !strings.Contains(out, "notes") {
		t.Errorf("snapshots notes:\n%s", out)
	}
	if r := sv.run("forget", "notes", "--yes"); r.code != 2 {
		t.Errorf("forget of an unregistered site without --keep-…: %v", r)
	}
	// forget SITE without --keep-…: the site's own retention (the default keeps both).
	sv.ok("backup", "blog")
	if out := sv.ok("forget", "blog", "--yes"); !strings.Contains(out, "removed 0 restore points") {
		t.Errorf("forget blog by its retention:\n%s", out)
	}
	if out := sv.ok("forget", "--all", "--keep-last", "1", "--yes"); !strings.Contains(out, "Site blog (--keep-last 1)") ||
		!strings.Contains(out, `Kept 1 and removed 1 restore point of site "blog"`) {
		t.Errorf("forget --all --keep-last 1:\n%s", out)
	}
}

// TestBackupAll checks backup of several sites: one broken site (its
// wp-config.php gone) fails with its reason on its own line, the others
// are backed up, and the exit code says a site failed.
func TestBackupAll(t *testing.T) {
	needServers(t)
	sv := newCLI(t)
	for _, name := range []string{"shop-de", "shop-fr", "blog"} {
		w, _ := newSite(t)
		sv.addSite(name, w, false)
		if name == "shop-fr" {
			must(t, os.Rename(filepath.Join(w.Root, "wp-config.php"), filepath.Join(w.Root, "wp-config.php.off")))
		}
	}
	r := sv.run("backup", "--all", "--parallel", "2")
	if r.code == 0 {
		t.Fatalf("backup --all with a broken site exited 0: %v", r)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 3 {
		t.Fatalf("backup --all: want one line per site, got %v", r)
	}
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "shop-fr: FAILED: "):
			if !strings.Contains(l, "wp-config.php") {
				t.Errorf("the broken site's line does not say why: %q", l)
			}
		case strings.HasPrefix(l, "shop-de: saved "), strings.HasPrefix(l, "blog: saved "):
			if !strings.Contains(l, "files changed") || !strings.Contains(l, "tables changed") {
				t.Errorf("summary line %q lacks the counts", l)
			}
		default:
			t.Errorf("unexpected line %q in %v", l, r)
		}
	}
	if !strings.Contains(r.stderr, "shop-fr") {
		t.Errorf("the final error does not name the failed site: %v", r)
	}
	for _, name := range []string{"shop-de", "blog"} {
		if n := len(sv.points(name)); n != 1 {
			t.Errorf("%s has %d points after backup --all, want 1", name, n)
		}
	}
	// A glob and a name; a glob matching nothing is an error before any backup.
	r = sv.run("backup", "shop-d*", "blog")
	if r.code != 0 || strings.Count(r.stdout, ": saved ") != 2 {
		t.Errorf("backup 'shop-d*' blog: %v", r)
	}
	if r := sv.run("backup", "nope-*", "blog"); r.code == 0 || !strings.Contains(r.stderr, "no site nope-*") {
		t.Errorf("backup of a glob matching nothing: %v", r)
	}
	if n := len(sv.points("blog")); n != 2 {
		t.Errorf("blog has %d points, want 2 (nothing backed up when a pattern matched nothing)", n)
	}
}

// TestStatusMaxAge checks status and site list on real backups: a site
// backed up now is fresh, one never backed up (and one whose backups now
// fail) is stale with --max-age and the exit code is 14; the JSON holds
// typed values.
func TestStatusMaxAge(t *testing.T) {
	needServers(t)
	sv := newCLI(t)
	fresh, _ := newSite(t)
	sv.addSite("blog", fresh, false)
	never, _ := newSite(t)
	sv.addSite("shop", never, false)
	sv.ok("backup", "blog")

	if out := sv.ok("status", "blog", "--max-age", "26h"); !strings.Contains(out, "blog") || !strings.Contains(out, " ok ") {
		t.Errorf("status of a fresh site:\n%s", out)
	}
	r := sv.run("status", "--max-age", "26h")
	if r.code != 14 || !strings.Contains(r.stderr, "shop") || strings.Contains(r.stderr, "blog") {
		t.Errorf("status with a site never backed up: want exit code 14 naming shop only, got %v", r)
	}
	// A second passes while --max-age 1s has not yet elapsed … then has.
	time.Sleep(1500 * time.Millisecond)
	if r := sv.run("status", "blog", "--max-age", "1s"); r.code != 14 || !strings.Contains(r.stdout, "stale") {
		t.Errorf("status --max-age 1s of a site backed up earlier: want 14 and \"stale\", got %v", r)
	}
	if r := sv.run("status", "blgo"); r.code == 0 || !strings.Contains(r.stderr, "did you mean blog?") {
		t.Errorf("status of a mistyped site: %v", r)
	}

	var list []struct {
		Site       string     `json:"site"`
		LastBackup *time.Time `json:"last_backup"`
		AgeSeconds *float64   `json:"age_seconds"`
		LastPoint  string     `json:"last_point"`
		Bytes      int64      `json:"bytes"`
		Result     string     `json:"result"`
		Stale      bool       `json:"stale"`
	}
	for _, args := range [][]string{{"status", "--json"}, {"site", "list", "--json"}} {
		list = nil
		must(t, json.Unmarshal([]byte(sv.ok(args...)), &list))
		if len(list) != 2 || list[0].Site != "blog" || list[1].Site != "shop" {
			t.Fatalf("%v: %+v", args, list)
		}
		b, s := list[0], list[1]
		if b.LastBackup == nil || b.AgeSeconds == nil || b.Result != "ok" || b.Bytes <= 0 || len(b.LastPoint) != 64 {
			t.Errorf("%v: blog %+v, want its backup", args, b)
		}
		if s.LastBackup != nil || s.Result != "none" || s.Stale {
			t.Errorf("%v: shop %+v, want never backed up (stale only with --max-age)", args, s)
		}
	}
	out := sv.ok("site", "list")
	if !strings.Contains(out, "LAST BACKUP") || !strings.Contains(out, "never") {
		t.Errorf("site list:\n%s", out)
	}
}
