package e2e_test

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// TestLatestIsABackupPoint checks that a pre-restore point is a safety
// net, not a backup: after a restore, `--to latest` and `--to DAY` still
// name the backup (so running the same restore twice keeps the backed-up
// state, and a download after recovering from a hack holds the backup, not
// the hacked site), `points` marks the pre-restore point, and `forget
// --keep-daily 1` after a files-only pre-restore point (taken while the
// database login failed) keeps the full backup.
func TestLatestIsABackupPoint(t *testing.T) {
	needServers(t)
	w, c := newSite(t)
	sv := newCLI(t)
	sv.addSite("blog", w, false)
	c.files = sv.siteFiles("blog")
	wantSums := w.ChecksumTables(t, c.tables...)
	wantFiles := w.FileHashes(t, c.files...)
	sv.ok("backup", "blog")
	backupID := sv.points("blog")[0].ID

	wreck(t, w, c)
	sv.ok("restore", "blog", "--to", "latest", "--yes")
	sameMaps(t, "tables after the first restore --to latest", wantSums, w.ChecksumTables(t, c.tables...))

	// The same restore again: still the backup, not the wrecked state
	// the first restore saved as its pre-restore point.
	sv.ok("restore", "blog", "--to", "latest", "--yes")
	sameMaps(t, "tables after the second restore --to latest", wantSums, w.ChecksumTables(t, c.tables...))
	sameMaps(t, "files after the second restore --to latest", wantFiles, w.FileHashes(t, c.files...))
	sv.ok("restore", "blog", "--to", today(), "--yes")
	sameMaps(t, "tables after restore --to "+today(), wantSums, w.ChecksumTables(t, c.tables...))

	dir := t.TempDir()
	for _, ref := range []string{"latest", today()} {
		file := filepath.Join(dir, "blog-"+ref+".tar.gz")
		sv.ok("download", "blog", "--to", ref, "-o", file)
		if got := downloadedPoint(t, file); got != backupID {
			t.Errorf("download --to %s after a restore holds point %s, want the backup %s", ref, got, backupID)
		}
	}

	// points marks the pre-restore points as such.
	out := sv.ok("points", "blog")
	if n := strings.Count(out, "pre-restore (undo of restore to "+backupID[:8]); n != 3 {
		t.Errorf("points shows %d pre-restore points marked \"pre-restore (undo of restore to %.8s…)\", want 3:\n%s", n, backupID, out)
	}

	// A files-only pre-restore point: the database login fails.
	w.Exec(t, "ALTER USER '"+w.DB.User+"'@'%' IDENTIFIED BY 'not-the-password-any-more'")
	r := sv.run("restore", "blog", "--to", "latest", "--only", "themes", "--yes")
	w.Exec(t, "ALTER USER '"+w.DB.User+"'@'%' IDENTIFIED BY '"+w.DB.Password+"'")
	if r.code != 0 {
		t.Fatalf("restore --only themes with the database down: %v", r)
	}
	pts := sv.points("blog")
	if pts[0].Trigger != "pre-restore" {
		t.Fatalf("newest point is %+v, want the files-only pre-restore point", pts[0])
	}
	out = sv.ok("forget", "--site", "blog", "--keep-daily", "1", "--yes")
	left := map[string]bool{}
	for _, p := range sv.points("blog") {
		left[p.ID] = true
	}
	if !left[backupID] {
		t.Errorf("forget --keep-daily 1 removed the full backup %s:\n%s", backupID, out)
	}
	if !left[pts[0].ID] {
		t.Errorf("forget --keep-daily 1 removed the pre-restore point %s of the latest restore (undo needs it):\n%s", pts[0].ID, out)
	}
	if !strings.Contains(out, "undo of the latest restore") {
		t.Errorf("forget does not say why it keeps the pre-restore point:\n%s", out)
	}
	sv.ok("restore", "blog", "--to", "latest", "--yes")
	sameMaps(t, "tables after forget and restore --to latest", wantSums, w.ChecksumTables(t, c.tables...))
}

// downloadedPoint returns the id of the point a download holds (its
// manifest's "point").
func downloadedPoint(t *testing.T, file string) string {
	t.Helper()
	entries := readArchive(t, file)
	text, ok := manifests[entries["manifest.json"]]
	if !ok {
		t.Fatalf("%s holds no manifest.json", file)
	}
	var m struct {
		Point string `json:"point"`
	}
	if err := json.Unmarshal([]byte(text), &m); err != nil {
		t.Fatalf("%s: manifest.json: %v", file, err)
	}
	return m.Point
}
