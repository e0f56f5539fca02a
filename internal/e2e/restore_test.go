package e2e_test

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/sitevault/sitevault/internal/testsrv"
)

// TestRoundTrip backs up a real WordPress site, wrecks it as the issue
// lists and restores the latest point, locally and over SSH: every backed-up
// table has the CHECKSUM TABLE it had, every backed-up file its content, the
// unrelated file stays, the new table is gone, and PHP serves the site.
func TestRoundTrip(t *testing.T) {
	needServers(t)
	for _, tc := range []struct {
		name   string
		viaSSH bool
	}{{"local", false}, {"ssh", true}} {
		t.Run(tc.name, func(t *testing.T) {
			w, c := newSite(t)
			sv := newCLI(t)
			sv.addSite("blog", w, tc.viaSSH)
			c.files = sv.siteFiles("blog")
			fx := testsrv.WordPressFixture
			for _, f := range []string{"wp-config.php", fx.Plugin, fx.MUPlugin, fx.ThemeFile, fx.Upload, fx.DropIn, fx.RootFile, fx.CustomFolderFile} {
				if !slices.Contains(c.files, f) {
					t.Fatalf("site files does not list %s:\n%s", f, strings.Join(c.files, "\n"))
				}
			}
			for _, tbl := range []string{w.Prefix + "posts", w.Prefix + "options", w.Prefix + "comments"} {
				if !slices.Contains(c.tables, tbl) {
					t.Fatalf("table %s missing from %v", tbl, c.tables)
				}
			}
			wantSums := w.ChecksumTables(t, c.tables...)
			wantFiles := w.FileHashes(t, c.files...)

			sv.ok("backup", "blog")
			_, added, unrelated := wreck(t, w, c)
			if d := testsrv.DiffMaps(wantSums, w.ChecksumTables(t, c.tables...)); d == "" {
				t.Fatal("the wreck changed no table")
			}
			unrelatedHash := w.FileHashes(t, unrelated)[unrelated]

			sv.ok("restore", "blog", "--to", "latest", "--yes")

			// The database first: serving the site writes to wp_options.
			sameMaps(t, "CHECKSUM TABLE of the backed-up tables after the restore", wantSums, w.ChecksumTables(t, c.tables...))
			if tables := w.Tables(t); slices.Contains(tables, added) {
				t.Errorf("the table %s created after the backup is still there after the restore: %v", added, tables)
			}
			sameMaps(t, "backed-up files after the restore", wantFiles, w.FileHashes(t, c.files...))
			if got := w.FileHashes(t, unrelated)[unrelated]; got != unrelatedHash {
				t.Errorf("the unrelated file %s: %s after the restore, want it untouched", unrelated, got)
			}
			checkServes(t, w, c.posts)
		})
	}
}

// TestRestoreOnly restores one item at a time: --only themes leaves the
// database and the plugins wrecked; --only database then brings back the
// tables and still leaves the plugins alone.
func TestRestoreOnly(t *testing.T) {
	needServers(t)
	w, c := newSite(t)
	sv := newCLI(t)
	sv.addSite("blog", w, false)
	c.files = sv.siteFiles("blog")
	fx := testsrv.WordPressFixture
	wantSums := w.ChecksumTables(t, c.tables...)
	wantFiles := w.FileHashes(t, c.files...)
	sv.ok("backup", "blog")
	// Name the backup by id ("latest" would name it too: TestLatestIsABackupPoint).
	pts := sv.points("blog")
	if len(pts) != 1 {
		t.Fatalf("after one backup, points lists %d points: %+v", len(pts), pts)
	}
	backupID := pts[0].ID

	_, added, _ := wreck(t, w, c)
	wreckedTables := w.Tables(t)
	wreckedSums := w.Checksums(t)
	wreckedFiles := w.FileHashes(t, c.files...)

	sv.ok("restore", "blog", "--to", backupID, "--only", "themes", "--yes")
	sameMaps(t, "tables after --only themes (still wrecked)", wreckedSums, w.Checksums(t))
	themes, rest := splitFiles(c.files, fx.Theme+"/")
	sameMaps(t, "theme files after --only themes", pick(wantFiles, themes), w.FileHashes(t, themes...))
	sameMaps(t, "other files after --only themes (still wrecked)", pick(wreckedFiles, rest), w.FileHashes(t, rest...))
	if _, err := os.Stat(filepath.Join(w.Root, fx.PluginDir)); err == nil {
		t.Errorf("--only themes brought back the plugin folder %s", fx.PluginDir)
	}

	sv.ok("restore", "blog", "--to", backupID, "--only", "database", "--yes")
	sameMaps(t, "backed-up tables after --only database", wantSums, w.ChecksumTables(t, c.tables...))
	if slices.Contains(w.Tables(t), added) {
		t.Errorf("--only database left the table %s created after the backup (tables before: %v)", added, wreckedTables)
	}
	sameMaps(t, "other files after --only database (still wrecked)", pick(wreckedFiles, rest), w.FileHashes(t, rest...))
}

// TestRestoreToDay lists points newest first and restores by day (that
// day's latest point) and by point id.
func TestRestoreToDay(t *testing.T) {
	needServers(t)
	w, c := newSite(t)
	sv := newCLI(t)
	sv.addSite("blog", w, false)
	first := w.ChecksumTables(t, c.tables...)
	sv.ok("backup", "blog")
	pts := sv.points("blog")
	if len(pts) != 1 {
		t.Fatalf("after one backup, points lists %d points: %+v", len(pts), pts)
	}
	firstID := pts[0].ID

	late := w.CreatePost(t, "A post written between the backups", "It exists only in the second point.")
	second := w.ChecksumTables(t, c.tables...)
	sv.ok("backup", "blog")

	pts = sv.points("blog")
	if len(pts) != 2 {
		t.Fatalf("after two backups, points lists %d points: %+v", len(pts), pts)
	}
	if err := checkNewestFirst(pts); err != nil {
		t.Errorf("points --json is not newest first:\n%v", err)
	}
	if pts[1].ID != firstID {
		t.Errorf("points --json: the last point is %s, want the first backup %s", pts[1].ID, firstID)
	}
	if day := sv.points("blog", "--day", today()); len(day) != 2 {
		t.Errorf("points --day %s lists %d points, want 2", today(), len(day))
	}
	if day := sv.points("blog", "--day", "2001-01-01"); len(day) != 0 {
		t.Errorf("points --day 2001-01-01 lists %d points, want none", len(day))
	}

	wreck(t, w, c)
	sv.ok("restore", "blog", "--to", today(), "--yes")
	sameMaps(t, "tables after restoring --to "+today()+" (its latest point: the second backup)", second, w.ChecksumTables(t, c.tables...))

	sv.ok("restore", "blog", "--to", firstID, "--yes")
	sameMaps(t, "tables after restoring --to the first point "+firstID, first, w.ChecksumTables(t, c.tables...))
	checkServes(t, w, c.posts)
	w.Serve(t)
	if status, _ := w.Get(t, "/?p="+strconv.Itoa(late)); status != 404 {
		t.Errorf("after restoring the first point, GET /?p=%d (the post written after it) = %d, want 404", late, status)
	}
}

// TestUndo restores the latest point over a wrecked site, then undoes the
// restore: the database and files are the wrecked ones again.
func TestUndo(t *testing.T) {
	needServers(t)
	w, c := newSite(t)
	sv := newCLI(t)
	sv.addSite("blog", w, false)
	c.files = sv.siteFiles("blog")
	fx := testsrv.WordPressFixture
	wantSums := w.ChecksumTables(t, c.tables...)
	sv.ok("backup", "blog")

	_, added, unrelated := wreck(t, w, c)
	wreckedSums := w.Checksums(t) // every prefixed table: the new one, not the dropped one
	check := append(slices.Clone(c.files), unrelated)
	wreckedFiles := w.FileHashes(t, check...)

	sv.ok("restore", "blog", "--to", "latest", "--yes")
	sameMaps(t, "backed-up tables after the restore", wantSums, w.ChecksumTables(t, c.tables...))

	sv.ok("undo", "blog", "--yes")
	sameMaps(t, "tables after undo (the wrecked state)", wreckedSums, w.Checksums(t))
	if !slices.Contains(w.Tables(t), added) {
		t.Errorf("undo did not bring back the table %s", added)
	}
	sameMaps(t, "files after undo (the wrecked state)", wreckedFiles, w.FileHashes(t, check...))
	if _, err := os.Stat(filepath.Join(w.Root, fx.PluginDir)); err == nil {
		t.Errorf("after undo the plugin folder %s is there; it was deleted before the restore", fx.PluginDir)
	}
}

// splitFiles splits files into those under prefix and the others.
func splitFiles(files []string, prefix string) (in, out []string) {
	for _, f := range files {
		if strings.HasPrefix(f, prefix) {
			in = append(in, f)
		} else {
			out = append(out, f)
		}
	}
	return in, out
}

// pick returns m restricted to keys.
func pick(m map[string]string, keys []string) map[string]string {
	r := map[string]string{}
	for _, k := range keys {
		if v, ok := m[k]; ok {
			r[k] = v
		}
	}
	return r
}
