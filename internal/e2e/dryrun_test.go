package e2e_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/sitevault/sitevault/internal/testsrv"
)

// dryRunJSON mirrors `restore --dry-run --json` (cmd/sitevault previewJSON);
// decoding is strict, so a field the README does not name fails the test.
type dryRunJSON struct {
	Site         string   `json:"site"`
	Point        string   `json:"point"`
	PointTime    string   `json:"point_time"`
	Items        []string `json:"items"`
	Paths        []string `json:"paths"`
	Tables       []string `json:"tables"`
	Delete       bool     `json:"delete"`
	FilesToWrite []struct {
		Path    string `json:"path"`
		Size    int64  `json:"size"`
		Replace bool   `json:"replace"`
		Link    bool   `json:"symlink"`
	} `json:"files_to_write"`
	FilesNew        int      `json:"files_new"`
	FilesReplaced   int      `json:"files_replaced"`
	BytesToWrite    int64    `json:"bytes_to_write"`
	FilesUnchanged  int      `json:"files_unchanged"`
	FoldersCreated  int      `json:"folders_created"`
	FilesNotInPoint []string `json:"files_not_in_point"`
	TablesReplaced  []string `json:"tables_replaced"`
	Rows            int64    `json:"rows"`
	TablesDropped   []string `json:"tables_dropped"`
	TablesKept      []string `json:"tables_kept"`
	Refused         []string `json:"refused"`
	Warnings        []string `json:"warnings"`
}

// TestRestoreDryRun: on a real WordPress changed since its backup,
// `restore --dry-run` names the files it would write (new and replacing),
// the file it would leave (or, with --delete, delete), the table it would
// drop and those it would replace, without a terminal or --yes, and
// changes nothing: the site's files, its tables and the restore points
// are as they were. A restore then does what the dry run said.
func TestRestoreDryRun(t *testing.T) {
	needServers(t)
	w, _ := newSite(t)
	sv := newCLI(t)
	sv.addSite("blog", w, false)
	sv.ok("backup", "blog")

	fx := testsrv.WordPressFixture
	must(t, os.RemoveAll(filepath.Join(w.Root, fx.PluginDir)))
	appendFile(t, filepath.Join(w.Root, fx.ThemeFile), "\n/* defaced */\n")
	extra := "wp-content/uploads/planted.php"
	must(t, os.WriteFile(filepath.Join(w.Root, extra), []byte("<?php // planted\n"), 0o644))
	intruder := w.Prefix + "intruder"
	w.Exec(t, "CREATE TABLE `"+intruder+"` (id INT PRIMARY KEY)")

	files, tables, points := siteState(t, w.Root), w.Checksums(t), len(sv.points("blog"))
	unchanged := func(what string) {
		t.Helper()
		if got := siteState(t, w.Root); !maps.Equal(files, got) {
			t.Fatalf("%s changed the site's files", what)
		}
		if got := w.Checksums(t); !maps.Equal(tables, got) {
			t.Fatalf("%s changed the site's tables", what)
		}
		if got := len(sv.points("blog")); got != points {
			t.Fatalf("%s made a restore point (%d points, were %d)", what, got, points)
		}
	}

	var pv dryRunJSON
	decodeStrict(t, sv.ok("restore", "blog", "--to", "latest", "--dry-run", "--json"), &pv)
	unchanged("restore --dry-run --json")
	write := map[string]bool{} // path → replace
	for _, f := range pv.FilesToWrite {
		write[f.Path] = f.Replace
	}
	if replace, ok := write[fx.ThemeFile]; !ok || !replace {
		t.Errorf("the edited theme file: planned %v (replace %v), want a replacement; plan %+v", ok, replace, pv.FilesToWrite)
	}
	if replace, ok := write[fx.Plugin]; !ok || replace {
		t.Errorf("the deleted plugin file: planned %v (replace %v), want a new file", ok, replace)
	}
	if pv.FilesReplaced != 1 || pv.FilesNew < 2 || pv.FilesNew+pv.FilesReplaced != len(pv.FilesToWrite) || pv.FilesUnchanged == 0 {
		t.Errorf("counts: %d new, %d replaced, %d to write, %d unchanged", pv.FilesNew, pv.FilesReplaced, len(pv.FilesToWrite), pv.FilesUnchanged)
	}
	if !slices.Equal(pv.FilesNotInPoint, []string{extra}) || pv.Delete {
		t.Errorf("files not in the point: %v (delete %v), want [%s]", pv.FilesNotInPoint, pv.Delete, extra)
	}
	if !slices.Equal(pv.TablesDropped, []string{intruder}) || !slices.Contains(pv.TablesReplaced, w.Prefix+"posts") || pv.Rows == 0 {
		t.Errorf("tables: dropped %v, replaced %v, %d rows", pv.TablesDropped, pv.TablesReplaced, pv.Rows)
	}

	text := sv.ok("restore", "blog", "--to", "latest", "--dry-run", "--delete")
	unchanged("restore --dry-run --delete")
	for _, want := range []string{"would write", "replace  " + fx.ThemeFile, "would delete 1 file not in the point", extra,
		"would drop 1 of the site's tables and views, not in the point: " + intruder, "Dry run: nothing was changed."} {
		if !strings.Contains(text, want) {
			t.Errorf("dry run text lacks %q:\n%s", want, text)
		}
	}
	// Without a terminal, a real restore needs --yes; a dry run did not.
	if r := sv.run("restore", "blog", "--to", "latest"); r.code != 2 || !strings.Contains(r.stderr, "--yes") {
		t.Errorf("restore without --yes or a terminal: %v", r)
	}
	unchanged("a refused restore")

	var res struct {
		FilesWritten  int      `json:"files_written"`
		FilesDeleted  []string `json:"files_deleted"`
		TablesDropped []string `json:"tables_removed"`
	}
	if err := json.Unmarshal([]byte(sv.ok("restore", "blog", "--to", "latest", "--delete", "--yes", "--json")), &res); err != nil {
		t.Fatal(err)
	}
	if res.FilesWritten != len(pv.FilesToWrite) || !slices.Equal(res.FilesDeleted, []string{extra}) || !slices.Equal(res.TablesDropped, []string{intruder}) {
		t.Errorf("the restore did %+v; its dry run said %d files to write, delete %v, drop %v", res, len(pv.FilesToWrite), pv.FilesNotInPoint, pv.TablesDropped)
	}
}

// TestDestructiveCommandsNeedYes: without a terminal, forget, prune, site
// remove and key remove refuse (exit code 2, naming --yes) and change
// nothing; a dry run needs no --yes.
func TestDestructiveCommandsNeedYes(t *testing.T) {
	sv := newCLI(t)
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "a.txt"), []byte("one"), 0o644))
	sv.ok("dir", "backup", dir, "--site", "notes")
	must(t, os.WriteFile(filepath.Join(dir, "a.txt"), []byte("two"), 0o644))
	sv.ok("dir", "backup", dir, "--site", "notes")
	for _, args := range [][]string{
		{"forget", "notes", "--keep-last", "1"},
		{"forget", "--all", "--keep-last", "1"},
		{"prune"},
		{"site", "remove", "notes"},
		{"key", "remove", "abcd"},
	} {
		r := sv.run(args...)
		if r.code != 2 || !strings.Contains(r.stderr, "pass --yes") {
			t.Errorf("%v without --yes: want exit code 2 naming --yes, got %v", args, r)
		}
	}
	if n := len(sv.points("notes")); n != 2 {
		t.Fatalf("a refused forget removed points: %d left", n)
	}
	sv.ok("forget", "notes", "--keep-last", "1", "--dry-run")
	sv.ok("prune", "--dry-run")
	if n := len(sv.points("notes")); n != 2 {
		t.Fatalf("forget --dry-run removed points: %d left", n)
	}
	sv.ok("forget", "notes", "--keep-last", "1", "--yes")
	if n := len(sv.points("notes")); n != 1 {
		t.Fatalf("forget --yes: %d points left, want 1", n)
	}
}

// siteState maps every file under root to its mode and SHA-256.
func siteState(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	must(t, filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		v := fi.Mode().String()
		if fi.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			v += fmt.Sprintf(" %x %d", sha256.Sum256(b), fi.ModTime().UnixNano())
		}
		out[p] = v
		return nil
	}))
	return out
}

func decodeStrict(t *testing.T, s string, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader([]byte(s)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("decode %T: %v\n%s", v, err, s)
	}
}

// TestBackupQuietWithoutTerminal: run from cron (stdout not a terminal), a
// backup prints one summary line with the point id; the paths and tables
// the rules left out only when they differ from the previous point's; -v
// prints the whole summary.
func TestBackupQuietWithoutTerminal(t *testing.T) {
	needServers(t)
	w, _ := newSite(t)
	sv := newCLI(t)
	sv.addSite("blog", w, false)
	pointLine := regexp.MustCompile(`(?m)^blog: saved [0-9a-f]{8}, .*; point [0-9a-f]{64}$`)

	first := sv.ok("backup", "blog")
	if !pointLine.MatchString(first) || !strings.Contains(first, "  skipped:   table ") {
		t.Errorf("first backup: want the summary line and the tables left out:\n%s", first)
	}
	second := sv.ok("backup", "blog")
	if lines := strings.Split(strings.TrimSpace(second), "\n"); len(lines) != 1 || !pointLine.MatchString(second) {
		t.Errorf("second backup, nothing new left out: want one line, got:\n%s", second)
	}
	// A folder marked .donotbackup appears: the rules leave out something new.
	must(t, os.MkdirAll(filepath.Join(w.Root, "wp-content", "uploads", "exports"), 0o755))
	must(t, os.WriteFile(filepath.Join(w.Root, "wp-content", "uploads", "exports", ".donotbackup"), nil, 0o644))
	third := sv.ok("backup", "blog")
	if !pointLine.MatchString(third) || !strings.Contains(third, `skipped:   "wp-content/uploads/exports": folder holds .donotbackup`) {
		t.Errorf("a new folder left out: want it listed:\n%s", third)
	}
	full := sv.ok("backup", "blog", "-v")
	for _, want := range []string{"saved for site blog", "  files:", "  database:", "  point:"} {
		if !strings.Contains(full, want) {
			t.Errorf("backup -v lacks %q:\n%s", want, full)
		}
	}
}

// TestReadOnlyCommandsCreateNothing: commands that only read create no
// data home when there is none, and nothing in one that holds only a
// repository (no catalog, no seal key, no locks).
func TestReadOnlyCommandsCreateNothing(t *testing.T) {
	readOnly := [][]string{
		{"snapshots"}, {"points", "blog"}, {"status"}, {"check"}, {"site", "list"}, {"site", "show", "blog"},
		{"key", "list"}, {"jobs"}, {"jobs", "show", "1"}, {"completion", "bash"}, {"--help"}, {"--version"}, {"version", "--json"},
	}
	base := t.TempDir()
	home := filepath.Join(base, "sitevault")
	sv := &cli{t: t, home: base, env: map[string]string{"SITEVAULT_HOME": home, "HOME": base, "TZ": "UTC"}}
	for _, args := range readOnly {
		sv.run(args...)
		if _, err := os.Lstat(home); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("%v created the data home (%v)", args, err)
		}
	}
	sv.ok("init")
	before := listTree(t, home)
	for _, args := range readOnly {
		sv.run(args...)
		if after := listTree(t, home); !slices.Equal(before, after) {
			t.Fatalf("%v changed the data home:\nbefore %v\nafter  %v", args, before, after)
		}
	}
}

// With a PostgreSQL catalog, read-only commands create no seal key file
// (secret.key) in the data home either.
func TestReadOnlyCommandsPostgresCatalog(t *testing.T) {
	needServers(t)
	pg := testsrv.StartPostgres(t)
	base := t.TempDir()
	home := filepath.Join(base, "sitevault")
	sv := &cli{t: t, home: base, env: map[string]string{"SITEVAULT_HOME": home, "HOME": base, "TZ": "UTC",
		"SITEVAULT_CATALOG": pg.NewDatabase(t)}}
	sv.ok("init")
	if _, err := os.Lstat(filepath.Join(home, "secret.key")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("init made a seal key file (%v); this test wants a home without one", err)
	}
	before := listTree(t, home)
	for _, args := range [][]string{{"status"}, {"site", "list"}, {"site", "show", "blog"}, {"points", "blog"}, {"jobs"}} {
		sv.run(args...)
		if after := listTree(t, home); !slices.Equal(before, after) {
			t.Fatalf("%v changed the data home:\nbefore %v\nafter  %v", args, before, after)
		}
	}
	if out := sv.ok("site", "list", "--json"); strings.TrimSpace(out) != "[]" {
		t.Errorf("site list --json on an empty PostgreSQL catalog: %s", out)
	}
}

func listTree(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	must(t, filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		out = append(out, strings.TrimPrefix(p, root))
		return nil
	}))
	return out
}
