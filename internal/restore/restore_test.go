package restore_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sitevault/sitevault/internal/backup"
	"github.com/sitevault/sitevault/internal/catalog"
	"github.com/sitevault/sitevault/internal/catalog/sqlite"
	"github.com/sitevault/sitevault/internal/connection"
	"github.com/sitevault/sitevault/internal/connection/ssh"
	"github.com/sitevault/sitevault/internal/fsys"
	"github.com/sitevault/sitevault/internal/point"
	"github.com/sitevault/sitevault/internal/repository"
	"github.com/sitevault/sitevault/internal/restore"
	"github.com/sitevault/sitevault/internal/site"
	"github.com/sitevault/sitevault/internal/site/sitetest"
	"github.com/sitevault/sitevault/internal/sitevault"
	"github.com/sitevault/sitevault/internal/testsrv"
)

var srv *testsrv.MariaDB

func TestMain(m *testing.M) {
	os.Exit(testsrv.RunWithMariaDB(m, func(s *testsrv.MariaDB) { srv = s }))
}

// env is one test's site: Debian's WordPress copied, a wp-config.php on a
// private database, a repository and a real catalog.
type env struct {
	t    *testing.T
	ctx  context.Context
	root string
	db   *sql.DB // root on the site's database
	repo *repository.Repository
	cat  *catalog.Catalog
	deps backup.Deps
	name string
}

func newEnv(t *testing.T) *env { return newEnvKind(t, "local") }

// newEnvKind is newEnv with the site reached as kind: "local" or "ssh"
// (files over SFTP, the database through the tunnel, a real sshd).
func newEnvKind(t *testing.T, kind string) *env {
	t.Helper()
	ctx := context.Background()
	root := sitetest.TestWordPress(t)
	d := srv.CreateDatabase(t)
	sitetest.WriteTestConfig(t, root, sitetest.TestDB{Name: d.Name, User: d.User, Password: d.Password, Host: srv.Addr, Prefix: "wp_"})
	home := t.TempDir()
	cat, err := sqlite.Open(ctx, home)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cat.Close() })
	e := &env{t: t, ctx: ctx, root: root, db: srv.RootDB(t, d.Name), repo: repository.TestRepository(t), cat: cat, name: "shop"}
	e.deps = backup.Deps{Repo: e.repo, Catalog: cat, Locker: backup.FileLocker{Dir: filepath.Join(home, "locks")}}
	entry := sitevault.Site{Name: e.name, Kind: sitevault.Local, Path: root}
	if kind == "ssh" {
		sshd := testsrv.StartSSHD(t)
		entry.Kind = sitevault.SSH
		entry.SSH = sitevault.SSHSettings{
			User: sshd.User, Host: sshd.Host, Port: sshd.Port, IdentityFile: sshd.ClientKeyFile,
			HostKey: ssh.AuthorizedKey(sshd.HostKey), HostKeyFingerprint: sshd.HostKeyFingerprint(),
		}
	}
	if _, err := cat.AddSite(ctx, entry); err != nil {
		t.Fatal(err)
	}
	e.exec(
		"CREATE TABLE wp_posts (ID bigint unsigned NOT NULL AUTO_INCREMENT PRIMARY KEY, post_title text NOT NULL, post_content longtext NOT NULL, post_date datetime NOT NULL)",
		"INSERT INTO wp_posts (post_title, post_content, post_date) VALUES ('Hello', 'First post', '2024-05-01 10:00:00'), ('Second', 'Körper ünd 日本', '2024-05-02 11:00:00'), ('Third', REPEAT('x', 5000), '2024-05-03 12:00:00')",
		"CREATE TABLE wp_options (option_id bigint unsigned NOT NULL AUTO_INCREMENT PRIMARY KEY, option_name varchar(191) NOT NULL UNIQUE, option_value longtext NOT NULL)",
		"INSERT INTO wp_options (option_name, option_value) VALUES ('siteurl', 'http://shop.test'), ('blogname', 'Shop'), ('active_plugins', 'a:1:{i:0;s:23:\"sv-plugin/sv-plugin.php\";}')",
		"CREATE TABLE wp_postmeta (meta_id bigint unsigned NOT NULL AUTO_INCREMENT PRIMARY KEY, post_id bigint unsigned NOT NULL, meta_key varchar(255), meta_value longtext, KEY post_id (post_id))",
		"INSERT INTO wp_postmeta (post_id, meta_key, meta_value) VALUES (1, '_edit_lock', '1'), (2, '_thumbnail_id', '7')",
		"CREATE TABLE wp_nokey (a int, b text)", // no key: backed up whole
		"INSERT INTO wp_nokey VALUES (1, 'one')",
		"CREATE TABLE other_table (id int PRIMARY KEY)", // no prefix: not backed up
		"INSERT INTO other_table VALUES (1)",
	)
	e.write("wp-content/plugins/sv-plugin/sv-plugin.php", "<?php /* Plugin Name: SV Plugin */")
	e.write("wp-content/plugins/sv-plugin/inc/helpers.php", "<?php // helpers")
	e.write("wp-content/themes/sv-theme/style.css", "/* Theme Name: SV */\nbody { color: black }\n")
	e.write("wp-content/themes/sv-theme/functions.php", "<?php // theme")
	e.write("wp-content/uploads/2024/05/photo.jpg", strings.Repeat("\xff\xd8jpeg", 20000))
	e.write("robots.txt", "User-agent: *\n")
	return e
}

func (e *env) exec(qs ...string) {
	e.t.Helper()
	for _, q := range qs {
		if _, err := e.db.ExecContext(e.ctx, q); err != nil {
			e.t.Fatalf("%s: %v", q, err)
		}
	}
}

func (e *env) write(rel, content string) {
	e.t.Helper()
	p := filepath.Join(e.root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) read(rel string) string {
	e.t.Helper()
	b, err := os.ReadFile(filepath.Join(e.root, rel))
	if err != nil {
		e.t.Fatal(err)
	}
	return string(b)
}

// entry re-reads the site from the catalog (with the last working login).
func (e *env) entry() sitevault.Site {
	e.t.Helper()
	s, err := e.cat.Site(e.ctx, e.name)
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

func (e *env) backup(opts backup.Options) *backup.Result {
	e.t.Helper()
	res, err := backup.Run(e.ctx, e.deps, e.entry(), opts)
	if err != nil {
		e.t.Fatalf("backup: %v", err)
	}
	return res
}

// checksums returns CHECKSUM TABLE of every table in the database.
func (e *env) checksums() map[string]string {
	e.t.Helper()
	rows, err := e.db.QueryContext(e.ctx, "SHOW FULL TABLES WHERE Table_type = 'BASE TABLE'")
	if err != nil {
		e.t.Fatal(err)
	}
	var names []string
	for rows.Next() {
		var n, typ string
		if err := rows.Scan(&n, &typ); err != nil {
			e.t.Fatal(err)
		}
		names = append(names, n)
	}
	rows.Close()
	out := map[string]string{}
	for _, n := range names {
		var name string
		var sum sql.NullString
		if err := e.db.QueryRowContext(e.ctx, "CHECKSUM TABLE `"+n+"`").Scan(&name, &sum); err != nil {
			e.t.Fatal(err)
		}
		out[n] = sum.String
	}
	return out
}

// files describes every entry under the site root: content hash and mode
// for files, link targets, and folders.
func (e *env) files() map[string]string {
	e.t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(e.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(e.root, p)
		if rel == "." {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			out[rel] = "dir"
		case d.Type()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			out[rel] = "link " + target
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			h := sha256.Sum256(b)
			out[rel] = fmt.Sprintf("file %v %s", fi.Mode().Perm(), hex.EncodeToString(h[:8]))
		}
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

func diffMaps(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	keys := slices.Sorted(maps.Keys(want))
	for k := range got {
		if _, ok := want[k]; !ok {
			keys = append(keys, k)
		}
	}
	n := 0
	for _, k := range keys {
		if got[k] != want[k] {
			if n++; n <= 15 {
				t.Errorf("%s %s: got %q, want %q", what, k, got[k], want[k])
			}
		}
	}
	if n > 15 {
		t.Errorf("%s: … %d differences in all", what, n)
	}
}

// backedUp keeps the tables a backup of prefix wp_ takes.
func backedUp(sums map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range sums {
		if strings.HasPrefix(k, "wp_") {
			out[k] = v
		}
	}
	return out
}

// wreck does to the site what the tests do.
func (e *env) wreck() {
	e.t.Helper()
	e.exec(
		"DELETE FROM wp_posts WHERE ID = 2",
		"DROP TABLE wp_postmeta",
		"CREATE TABLE wp_new (id int PRIMARY KEY, v text)",
		"INSERT INTO wp_new VALUES (1, 'new')",
		"UPDATE wp_options SET option_value = 'Hacked' WHERE option_name = 'blogname'",
	)
	if err := os.RemoveAll(filepath.Join(e.root, "wp-content/plugins/sv-plugin")); err != nil {
		e.t.Fatal(err)
	}
	e.write("wp-content/themes/sv-theme/style.css", "/* Theme Name: SV */\nbody { color: red } /* edited */\n")
	e.write("wp-config.php", "<?php\ndefine('DB_NAME', 'oops") // unterminated: the site is down
	e.write("wp-content/uploads/unrelated.txt", "not in any restore point")
	e.write("wp-content/themes/sv-theme/new-template.php", "<?php // added after the backup")
}

func TestBackupRestoreUndo(t *testing.T) {
	for _, kind := range []string{"local", "ssh"} {
		t.Run(kind, func(t *testing.T) { testBackupRestoreUndo(t, kind) })
	}
}

func testBackupRestoreUndo(t *testing.T, kind string) {
	e := newEnvKind(t, kind)
	ctx := e.ctx

	first := e.backup(backup.Options{})
	sn := first.Snapshot
	if sn.Trigger != backup.TriggerManual || sn.Site != e.name || sn.Parent != nil {
		t.Errorf("first point: trigger %q site %q parent %v", sn.Trigger, sn.Site, sn.Parent)
	}
	for k, want := range map[string]string{"tables": "4", "tables_changed": "4", "table_prefix": "wp_", "multisite": "false", "site_path": e.entry().Location()} {
		if sn.Meta[k] != want {
			t.Errorf("Meta[%s] = %q, want %q", k, sn.Meta[k], want)
		}
	}
	if sn.Meta["wp_version"] == "" || sn.Meta["db_name"] == "" || sn.Meta["files_changed"] == "0" {
		t.Errorf("Meta = %v", sn.Meta)
	}
	if !slices.ContainsFunc(sn.Summary.Skipped, func(s string) bool { return strings.Contains(s, "other_table") }) ||
		slices.ContainsFunc(sn.Summary.Skipped, func(s string) bool { return strings.Contains(s, "wp_nokey") }) {
		t.Errorf("skipped should name other_table (no prefix) and not wp_nokey (backed up whole): %v", sn.Summary.Skipped)
	}
	if e.entry().LastDB == nil {
		t.Fatal("the login that worked was not recorded")
	}
	if first.Partial {
		t.Errorf("first backup partial: %v", first.Files.Errors)
	}

	// An unchanged site: nothing read again, no table written.
	second := e.backup(backup.Options{})
	if second.Snapshot.Parent == nil || *second.Snapshot.Parent != sn.ID {
		t.Errorf("second point's parent = %v, want %v", second.Snapshot.Parent, sn.ID.Short())
	}
	if got := second.Snapshot.Meta["tables_changed"]; got != "0" {
		t.Errorf("unchanged site: tables_changed = %s", got)
	}
	if got := second.Snapshot.Meta["files_changed"]; got != "0" {
		t.Errorf("unchanged site: files_changed = %s", got)
	}

	beforeSums, beforeFiles := e.checksums(), e.files()
	e.wreck()
	wreckedSums, wreckedFiles := e.checksums(), e.files()

	point, err := point.Find(ctx, e.repo, e.name, "latest", nil)
	if err != nil || point.ID != second.Snapshot.ID {
		t.Fatalf("point.Find latest = %v, %v", point, err)
	}
	var prog restore.Progress
	res, err := restore.Run(ctx, e.deps, e.entry(), point, restore.Options{Progress: &prog})
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	if !res.OK() {
		t.Errorf("restore report: skipped %v, errors %v", res.Files.Skipped, res.Files.Errors)
	}
	// A whole-site restore knows its total, and ends with every byte
	// written or found right.
	if done, total := prog.FilesShare(); total != point.Summary.BytesTotal || done != total || prog.Files.BytesRight.Load() == 0 || prog.Files.BytesDone.Load() == 0 {
		t.Errorf("restore progress: %d of %d bytes (%d written, %d right), want all of the point's %d",
			done, total, prog.Files.BytesDone.Load(), prog.Files.BytesRight.Load(), point.Summary.BytesTotal)
	}
	pre := res.PreRestore.Snapshot
	if pre.Trigger != backup.TriggerPreRestore || pre.Meta["restore_of"] != point.ID.String() || pre.Meta["items"] != "themes,plugins,uploads,roots,contents,database" {
		t.Errorf("pre-restore point: trigger %q meta %v", pre.Trigger, pre.Meta)
	}
	if !res.PreRestore.DB.Fallback {
		t.Error("with wp-config.php broken the pre-restore point should use the last working login")
	}

	// Database: every backed-up table as before, the new one gone, the
	// others untouched.
	got := e.checksums()
	diffMaps(t, "after restore: table", backedUp(got), backedUp(beforeSums))
	for _, n := range []string{"wp_nokey", "other_table"} {
		if got[n] != beforeSums[n] {
			t.Errorf("table %s changed: %s → %s", n, beforeSums[n], got[n])
		}
	}
	if !slices.Contains(res.Database.Removed, "wp_new") {
		t.Errorf("removed tables = %v, want wp_new", res.Database.Removed)
	}
	// Files: as before, plus what was added since (never deleted).
	want := maps.Clone(beforeFiles)
	want["wp-content/uploads/unrelated.txt"] = wreckedFiles["wp-content/uploads/unrelated.txt"]
	want["wp-content/themes/sv-theme/new-template.php"] = wreckedFiles["wp-content/themes/sv-theme/new-template.php"]
	diffMaps(t, "after restore: file", e.files(), want)
	e.noLeftovers()

	// Undo: back to the wrecked state exactly.
	plan, err := restore.PlanUndo(ctx, e.repo, e.name)
	if err != nil || plan.Point.ID != pre.ID || plan.Undone == nil || plan.Undone.ID != point.ID {
		t.Fatalf("PlanUndo = %+v, %v", plan, err)
	}
	undo, err := restore.Undo(ctx, e.deps, e.entry(), restore.Options{})
	if err != nil {
		t.Fatalf("undo: %v", err)
	}
	if undo.Point.ID != pre.ID || undo.PreRestore.Snapshot.Meta["restore_of"] != pre.ID.String() {
		t.Errorf("undo restored %v (pre-restore meta %v), want %v", undo.Point.ID.Short(), undo.PreRestore.Snapshot.Meta, pre.ID.Short())
	}
	if !slices.Contains(undo.Removed, "wp-content/plugins/sv-plugin/sv-plugin.php") || !slices.Contains(undo.Removed, "wp-content/plugins/sv-plugin/") {
		t.Errorf("undo removed %v", undo.Removed)
	}
	diffMaps(t, "after undo: table", e.checksums(), wreckedSums)
	diffMaps(t, "after undo: file", e.files(), wreckedFiles)
	e.noLeftovers()

	// --only themes: the theme comes back, nothing else changes.
	res, err = restore.Run(ctx, e.deps, e.entry(), point, restore.Options{Items: []string{"themes"}})
	if err != nil {
		t.Fatalf("restore --only themes: %v", err)
	}
	want = maps.Clone(wreckedFiles)
	want["wp-content/themes/sv-theme/style.css"] = beforeFiles["wp-content/themes/sv-theme/style.css"]
	diffMaps(t, "after --only themes: file", e.files(), want)
	diffMaps(t, "after --only themes: table", e.checksums(), wreckedSums)
	if res.Database != nil || res.PreRestore.Snapshot.Meta["items"] != "themes" {
		t.Errorf("--only themes touched the database (%v) or recorded items %q", res.Database, res.PreRestore.Snapshot.Meta["items"])
	}

	// --table and --path: single tables and paths only.
	res, err = restore.Run(ctx, e.deps, e.entry(), point, restore.Options{Tables: []string{"wp_posts"}, Paths: []string{"wp-content/plugins/sv-plugin/inc"}})
	if err != nil {
		t.Fatalf("restore --table --path: %v", err)
	}
	if !slices.Equal(res.Items, []string{"plugins", "database"}) {
		t.Errorf("items = %v", res.Items)
	}
	got = e.checksums()
	if got["wp_posts"] != beforeSums["wp_posts"] || got["wp_options"] != wreckedSums["wp_options"] || got["wp_new"] != wreckedSums["wp_new"] {
		t.Errorf("--table wp_posts: sums %v", got)
	}
	if e.read("wp-content/plugins/sv-plugin/inc/helpers.php") != "<?php // helpers" {
		t.Error("--path did not restore the file")
	}
	if _, err := os.Stat(filepath.Join(e.root, "wp-content/plugins/sv-plugin/sv-plugin.php")); err == nil {
		t.Error("--path restored a file outside the path")
	}
	// … and its undo removes what it created, restores the one table.
	if _, err := restore.Undo(ctx, e.deps, e.entry(), restore.Options{}); err != nil {
		t.Fatalf("undo of --table --path: %v", err)
	}
	diffMaps(t, "after 2nd undo: table", e.checksums(), wreckedSums)
	want["wp-content/themes/sv-theme/style.css"] = beforeFiles["wp-content/themes/sv-theme/style.css"]
	diffMaps(t, "after 2nd undo: file", e.files(), want)
	e.noLeftovers()
}

func (e *env) points() []*repository.Snapshot {
	e.t.Helper()
	p, err := backup.PointsOf(e.ctx, e.repo, e.name)
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

// noLeftovers checks that no helper file or table stayed behind.
func (e *env) noLeftovers() {
	e.t.Helper()
	for p := range e.files() {
		if strings.Contains(p, ".sitevault-tmp-") {
			e.t.Errorf("temporary file left: %s", p)
		}
	}
	for n := range e.checksums() {
		if strings.HasPrefix(n, "svtmp_") || strings.HasPrefix(n, "svold_") {
			e.t.Errorf("temporary table left: %s", n)
		}
	}
}

func TestRestoreToDay(t *testing.T) {
	e := newEnv(t)
	ctx := e.ctx
	loc := time.FixedZone("test", 2*3600)
	now := time.Now().In(loc)
	yesterday := now.AddDate(0, 0, -1)
	e.deps.Now = func() time.Time { return yesterday }
	old := e.backup(backup.Options{})
	e.deps.Now = nil
	e.exec("INSERT INTO wp_posts (post_title, post_content, post_date) VALUES ('Today', 'new', '2024-06-01 00:00:00')")
	e.write("wp-content/uploads/today.txt", "today")
	latest := e.backup(backup.Options{})

	for _, tt := range []struct {
		ref  string
		want *repository.Snapshot
		err  error
	}{
		{yesterday.Format(time.DateOnly), old.Snapshot, nil},
		{now.Format(time.DateOnly), latest.Snapshot, nil},
		{"latest", latest.Snapshot, nil},
		{old.Snapshot.ID.String()[:8], old.Snapshot, nil},
		{now.AddDate(0, 0, -5).Format(time.DateOnly), nil, point.ErrNoPoint},
	} {
		sn, err := point.Find(ctx, e.repo, e.name, tt.ref, loc)
		if !errors.Is(err, tt.err) || (tt.want != nil && (sn == nil || sn.ID != tt.want.ID)) {
			t.Errorf("point.Find(%s) = %v, %v; want %v, %v", tt.ref, sn, err, tt.want, tt.err)
		}
	}

	before := e.checksums()
	point, err := point.Find(ctx, e.repo, e.name, yesterday.Format(time.DateOnly), loc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := restore.Run(ctx, e.deps, e.entry(), point, restore.Options{}); err != nil {
		t.Fatal(err)
	}
	var n int
	e.db.QueryRow("SELECT COUNT(*) FROM wp_posts").Scan(&n)
	if n != 3 {
		t.Errorf("after restoring yesterday's point: %d posts, want 3", n)
	}
	if e.checksums()["wp_posts"] == before["wp_posts"] {
		t.Error("wp_posts unchanged")
	}
	// Mistakes are found before anything happens (no pre-restore point).
	n0 := len(e.points())
	for _, opts := range []restore.Options{
		{Tables: []string{"wp_nope"}},
		{Items: []string{"themes", "menus"}},
		{Items: []string{"themes"}, Paths: []string{"wp-content/uploads/x"}},
		{Paths: []string{"../etc"}},
	} {
		if _, err := restore.Run(ctx, e.deps, e.entry(), point, opts); !errors.Is(err, restore.ErrUsage) {
			t.Errorf("restore %+v: %v, want ErrUsage", opts, err)
		}
	}
	if n := len(e.points()); n != n0 {
		t.Errorf("a refused restore saved %d points", n-n0)
	}
	// Files are never deleted by a restore.
	if e.read("wp-content/uploads/today.txt") != "today" {
		t.Error("a file newer than the point was touched")
	}
}

func TestOneBackupPerSite(t *testing.T) {
	e := newEnv(t)
	ctx := e.ctx
	unlock, err := e.deps.Locker.Lock(ctx, e.name, "backup", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = backup.Run(ctx, e.deps, e.entry(), backup.Options{NoWait: true})
	var busy *backup.BusyError
	if !errors.As(err, &busy) || !errors.Is(err, backup.ErrBusy) {
		t.Fatalf("second backup with --no-wait: %v, want a BusyError", err)
	}
	if busy.PID != os.Getpid() || busy.Started.IsZero() || busy.Job != "backup" || !strings.Contains(err.Error(), "another backup of shop is running") {
		t.Errorf("busy error %+v: %v", busy, err)
	}
	// A restore refuses too.
	if _, err := restore.Undo(ctx, e.deps, e.entry(), restore.Options{NoWait: true}); !errors.Is(err, restore.ErrNothingToUndo) {
		t.Errorf("undo without a pre-restore point: %v", err)
	}

	// Waiting: the second backup starts when the first ends.
	waited := make(chan *backup.BusyError, 1)
	go func() {
		time.Sleep(700 * time.Millisecond)
		unlock()
	}()
	start := time.Now()
	res, err := backup.Run(ctx, e.deps, e.entry(), backup.Options{Wait: time.Minute, OnWait: func(b *backup.BusyError) { waited <- b }})
	if err != nil {
		t.Fatalf("waiting backup: %v", err)
	}
	if time.Since(start) < 600*time.Millisecond || len(waited) != 1 {
		t.Errorf("the backup did not wait (%v, %d notices)", time.Since(start), len(waited))
	}
	if res.Snapshot.Time.Before(start.Add(600 * time.Millisecond)) {
		t.Errorf("point time %v is before the lock was free", res.Snapshot.Time)
	}
	// The lock is free again.
	unlock, err = e.deps.Locker.Lock(ctx, e.name, "backup", 0, nil)
	if err != nil {
		t.Fatalf("lock after the backup: %v", err)
	}
	unlock()
}

// TestSiteDown: the database is unreachable. A backup fails; a files-only
// restore still runs (its pre-restore point holds the files only); a
// restore that includes the database fails before changing anything.
func TestSiteDown(t *testing.T) {
	e := newEnv(t)
	ctx := e.ctx
	first := e.backup(backup.Options{})
	e.write("wp-content/themes/sv-theme/style.css", "edited")
	// Point the site (and its recorded login) at a closed port.
	closed := fmt.Sprintf("127.0.0.1:%d", testsrv.FreePort(t))
	cfg := e.read("wp-config.php")
	e.write("wp-config.php", strings.ReplaceAll(cfg, srv.Addr, closed))
	entry := e.entry()
	entry.LastDB.Host = closed

	if _, err := backup.Run(ctx, e.deps, entry, backup.Options{}); !errors.Is(err, site.ErrDBUnreachable) {
		t.Errorf("backup with the database down: %v, want ErrDBUnreachable", err)
	}
	_, err := restore.Run(ctx, e.deps, entry, first.Snapshot, restore.Options{})
	if !errors.Is(err, restore.ErrPreRestore) || !errors.Is(err, site.ErrDBUnreachable) {
		t.Errorf("restore of everything with the database down: %v", err)
	}
	if e.read("wp-content/themes/sv-theme/style.css") != "edited" {
		t.Error("a failed restore changed files")
	}
	res, err := restore.Run(ctx, e.deps, entry, first.Snapshot, restore.Options{Items: []string{"themes", "roots"}})
	if err != nil {
		t.Fatalf("files-only restore with the database down: %v", err)
	}
	if res.PreRestore.Snapshot.Meta["database"] != "missing" || len(res.Warnings) == 0 {
		t.Errorf("pre-restore meta %v, warnings %v", res.PreRestore.Snapshot.Meta, res.Warnings)
	}
	if !strings.Contains(e.read("wp-content/themes/sv-theme/style.css"), "color: black") || !strings.Contains(e.read("wp-config.php"), srv.Addr) {
		t.Error("files not restored")
	}
	// Its undo needs no database either.
	if _, err := restore.Undo(ctx, e.deps, entry, restore.Options{}); err != nil {
		t.Fatalf("undo: %v", err)
	}
	if e.read("wp-content/themes/sv-theme/style.css") != "edited" {
		t.Error("undo did not bring the edit back")
	}
}

// failingConn is a site connection whose files cannot all be read.
type failingConn struct {
	connection.Connection
	fail string
}

func (c failingConn) FS(ctx context.Context) (fsys.FS, error) {
	f, err := c.Connection.FS(ctx)
	if err != nil {
		return nil, err
	}
	return failingFS{f, c.fail}, nil
}

type failingFS struct {
	fsys.FS
	fail string
}

func (f failingFS) Open(ctx context.Context, name string) (fsys.File, error) {
	if name == f.fail {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrPermission}
	}
	return f.FS.Open(ctx, name)
}

// TestPartialBackup: an unreadable file does not stop the backup; the
// point is saved and says it is partial.
func TestPartialBackup(t *testing.T) {
	e := newEnv(t)
	e.deps.Connect = func(ctx context.Context, s sitevault.Site) (connection.Connection, error) {
		c, err := connection.Open(ctx, s, connection.Options{})
		if err != nil {
			return nil, err
		}
		return failingConn{c, "robots.txt"}, nil
	}
	res := e.backup(backup.Options{})
	if !res.Partial || !res.Snapshot.Summary.Partial || len(res.Files.Errors) != 1 || res.Files.Errors[0].Path != "robots.txt" {
		t.Fatalf("partial backup: partial %v, errors %v", res.Partial, res.Files.Errors)
	}
	if res.Snapshot.ID.IsNull() || res.Database == nil {
		t.Errorf("the partial point was not saved whole: %v", res.Snapshot.ID)
	}
	if !slices.ContainsFunc(res.Snapshot.Summary.Warnings, func(w string) bool { return strings.Contains(w, "robots.txt") }) {
		t.Errorf("warnings do not name the file: %v", res.Snapshot.Summary.Warnings)
	}
}

// TestExactRestore restores the plugins of a hacked site: by default files
// the point does not hold are listed and left; with Delete they are
// removed, inside the restored items only and never what the backup rules
// leave out (core, caches); undo brings them back.
func TestExactRestore(t *testing.T) {
	e := newEnv(t)
	ctx := e.ctx
	pt := e.backup(backup.Options{}).Snapshot
	planted := []string{"wp-content/plugins/sv-plugin/evil.php", "wp-content/plugins/planted/x.php", "wp-content/plugins/planted/deep/y.php"}
	for _, p := range planted {
		e.write(p, "<?php eval($_POST['x']);")
	}
	kept := []string{"wp-content/uploads/2024/05/shell.php", "wp-content/cache/page.html", "wp-includes/evil.php"}
	for _, p := range kept {
		e.write(p, "<?php // not among the restored items, or never backed up")
	}
	only := []string{"plugins"}

	res, err := restore.Run(ctx, e.deps, e.entry(), pt, restore.Options{Items: only})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{planted[2], planted[1], planted[0]}; !slices.Equal(sorted(res.Left), sorted(want)) || len(res.Deleted) != 0 {
		t.Errorf("a restore without Delete: left %q, deleted %q; want %q left", res.Left, res.Deleted, want)
	}
	for _, p := range append(planted, kept...) {
		if _, err := os.Stat(filepath.Join(e.root, p)); err != nil {
			t.Errorf("%s: %v, want it left in place", p, err)
		}
	}

	before := e.files()
	res, err = restore.Run(ctx, e.deps, e.entry(), pt, restore.Options{Items: only, Delete: true})
	if err != nil {
		t.Fatal(err)
	}
	wantDeleted := append(slices.Clone(planted), "wp-content/plugins/planted/deep/", "wp-content/plugins/planted/")
	if !slices.Equal(sorted(res.Deleted), sorted(wantDeleted)) || len(res.Left) != 0 {
		t.Errorf("an exact restore deleted %q (left %q), want %q", res.Deleted, res.Left, wantDeleted)
	}
	for _, p := range planted {
		if _, err := os.Lstat(filepath.Join(e.root, p)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: %v, want it deleted", p, err)
		}
	}
	if _, err := os.Lstat(filepath.Join(e.root, "wp-content/plugins/planted")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the emptied folder stayed: %v", err)
	}
	for _, p := range kept {
		if _, err := os.Stat(filepath.Join(e.root, p)); err != nil {
			t.Errorf("%s: %v, want it kept (outside the items or the backup rules)", p, err)
		}
	}
	if e.read("wp-content/plugins/sv-plugin/sv-plugin.php") != "<?php /* Plugin Name: SV Plugin */" {
		t.Error("the plugin's own file is not as in the point")
	}

	// Undo brings back what the exact restore deleted.
	if _, err := restore.Undo(ctx, e.deps, e.entry(), restore.Options{}); err != nil {
		t.Fatal(err)
	}
	diffMaps(t, "after undoing the exact restore: file", e.files(), before)

	// An exact restore of everything never deletes what backups leave out
	// (WordPress core, caches).
	res, err = restore.Run(ctx, e.deps, e.entry(), pt, restore.Options{Delete: true, Items: []string{"themes", "plugins", "uploads", "roots", "contents"}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(res.Deleted, kept[0]) || slices.Contains(res.Deleted, kept[1]) || slices.Contains(res.Deleted, kept[2]) {
		t.Errorf("an exact restore of every item deleted %q: want %s, not %s or %s", res.Deleted, kept[0], kept[1], kept[2])
	}
	for _, p := range kept[1:] {
		if _, err := os.Stat(filepath.Join(e.root, p)); err != nil {
			t.Errorf("%s: %v, want it kept", p, err)
		}
	}
}

func sorted(s []string) []string { return slices.Sorted(slices.Values(s)) }
