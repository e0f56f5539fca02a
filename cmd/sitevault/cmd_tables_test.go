package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/sitevault/sitevault/internal/archiver"
	"github.com/sitevault/sitevault/internal/backup"
)

func siteBackupCmd(name string, asJSON bool) func(context.Context, *globalOptions, *bytes.Buffer) error {
	return func(ctx context.Context, g *globalOptions, out *bytes.Buffer) error {
		return runBackup(ctx, backupOptions{Name: name, JSON: asJSON}, g, out)
	}
}

func siteTablesCmd(name string, explain bool) func(context.Context, *globalOptions, *bytes.Buffer) error {
	return func(ctx context.Context, g *globalOptions, out *bytes.Buffer) error {
		return runSiteTables(ctx, siteFilesOptions{Name: name, Explain: explain}, g, out)
	}
}

// setDBName rewrites DB_NAME's define in the test site's wp-config.php.
func setDBName(t *testing.T, root, php string) {
	t.Helper()
	path := filepath.Join(root, "wp-config.php")
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(?m)^define\( 'DB_NAME', '[^']*' \);$|^if \(file_exists[\s\S]*?\n}\n`)
	if !re.Match(src) {
		t.Fatalf("no DB_NAME define in %s", src)
	}
	src = re.ReplaceAll(src, []byte(php))
	if err := os.WriteFile(path, src, 0o640); err != nil {
		t.Fatal(err)
	}
}

// TestBackupTablesReported covers issue 8: a conditional DB_NAME (finding
// 7), every table left out named with its reason (finding 8), a sharp drop
// in the table count (finding 7), and `site tables --explain`.
func TestBackupTablesReported(t *testing.T) {
	ts := newTestSite(t)
	e := newTestEnv(t)
	db := ts.m.RootDB(t, ts.db.Name)
	var stmts []string
	for _, n := range []string{"posts", "options", "postmeta", "users"} {
		stmts = append(stmts, fmt.Sprintf("CREATE TABLE wp_%s (id INT PRIMARY KEY, v TEXT)", n))
	}
	stmts = append(stmts, "CREATE TABLE wp_log (msg TEXT)")
	var others []string
	for i := 1; i <= 25; i++ { // more than a folded list shows
		others = append(others, fmt.Sprintf("other_%02d", i))
		stmts = append(stmts, fmt.Sprintf("CREATE TABLE other_%02d (id INT PRIMARY KEY)", i))
	}
	// A second database the same user may use, which the site does not.
	wrong := ts.m.CreateDatabase(t)
	stmts = append(stmts, fmt.Sprintf("GRANT ALL ON `%s`.* TO '%s'@'%%'", wrong.Name, ts.db.User),
		fmt.Sprintf("CREATE TABLE `%s`.wp_wrong (id INT PRIMARY KEY)", wrong.Name))
	for _, q := range stmts {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	setDBName(t, ts.root, fmt.Sprintf("if (file_exists(__DIR__ . '/local-config.php')) {\n  define('DB_NAME', '%s');\n} else {\n  define('DB_NAME', '%s');\n}\n", wrong.Name, ts.db.Name))
	e.mustRun("", initCmd)
	e.mustRun("", siteAddCmd(siteOptions{Name: "blog", Path: ts.root}))

	// The conditional define is decided from the site's files.
	var first struct {
		Tables         int                   `json:"tables"`
		Warnings       []string              `json:"warnings"`
		SkippedTables  []backup.SkippedTable `json:"skipped_tables"`
		WarningDetails []backup.Warning      `json:"warning_details"`
		SkippedPaths   []archiver.Skip       `json:"skipped_paths"`
	}
	out := e.mustRun("", siteBackupCmd("blog", true))
	if err := json.Unmarshal([]byte(out), &first); err != nil {
		t.Fatalf("backup --json: %v\n%s", err, out)
	}
	if first.Tables < 4 {
		t.Fatalf("backup took %d tables, want the site's 4 (or 5) of %s, not %s:\n%s", first.Tables, ts.db.Name, wrong.Name, out)
	}
	skipped := map[string]string{}
	for _, s := range first.SkippedTables {
		skipped[s.Table] = s.Reason
	}
	for _, n := range others {
		if skipped[n] == "" {
			t.Errorf("--json skipped_tables lacks %s with its reason: %+v", n, first.SkippedTables)
		}
	}
	// Every path left out is data: its rule (for grouping) and reason.
	paths := map[string]archiver.Skip{}
	for _, s := range first.SkippedPaths {
		paths[s.Path] = s
		if s.Rule == "" || s.Reason == "" {
			t.Errorf("--json skipped_paths entry without rule or reason: %+v", s)
		}
	}
	if s := paths["wp-content/cache"]; s.Rule != "cache-folder" || s.Reason != "cache folder (wp-content/cache)" {
		t.Errorf("--json skipped_paths: wp-content/cache is %+v, want rule cache-folder", s)
	}
	if first.Tables == 4 && skipped["wp_log"] == "" {
		t.Errorf("wp_log is neither backed up nor reported as skipped: %+v", first.SkippedTables)
	}

	// The summary names every table left out, none folded away.
	summary := e.mustRun("", siteBackupCmd("blog", false))
	for _, n := range others {
		if !strings.Contains(summary, "table "+n+": ") {
			t.Errorf("summary does not name skipped table %s:\n%s", n, summary)
		}
	}

	// site tables --explain lists taken and skipped tables.
	explained := e.mustRun("", siteTablesCmd("blog", true))
	for _, want := range []string{"take  wp_posts\n", "take  wp_users\n", "skip  other_01  (no prefix)\n", "skip  other_25  (no prefix)\n"} {
		if !strings.Contains(explained, want) {
			t.Errorf("site tables --explain lacks %q:\n%s", want, explained)
		}
	}
	if strings.Contains(explained, "wp_wrong") {
		t.Errorf("site tables lists the other database's table:\n%s", explained)
	}
	if plain := e.mustRun("", siteTablesCmd("blog", false)); !strings.Contains(plain, "wp_options\n") || strings.Contains(plain, "other_01") {
		t.Errorf("site tables:\n%s", plain)
	}

	// Most tables gone: the backup says so.
	for _, n := range []string{"options", "postmeta", "users"} {
		if _, err := db.Exec("DROP TABLE wp_" + n); err != nil {
			t.Fatal(err)
		}
	}
	var dropped struct {
		Tables         int              `json:"tables"`
		Warnings       []string         `json:"warnings"`
		WarningDetails []backup.Warning `json:"warning_details"`
	}
	out = e.mustRun("", siteBackupCmd("blog", true))
	if err := json.Unmarshal([]byte(out), &dropped); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(dropped.Warnings, "\n"), fmt.Sprintf("down from %d", first.Tables)) {
		t.Errorf("backup after dropping 3 of %d tables has no table count warning: %q", first.Tables, dropped.Warnings)
	}
	found := false
	for _, w := range dropped.WarningDetails {
		if w.Rule == backup.WarnTableCountDrop && w.PreviousTables == first.Tables && w.Tables == dropped.Tables {
			found = true
		}
	}
	if !found {
		t.Errorf("warning_details lacks %s: %+v", backup.WarnTableCountDrop, dropped.WarningDetails)
	}
	if summary := e.mustRun("", siteBackupCmd("blog", false)); strings.Contains(summary, "down from") {
		t.Errorf("an unchanged table count warned again:\n%s", summary)
	}

	// A condition sitevault cannot decide stops the backup, naming the
	// line and the flag, rather than falling back on the last login.
	setDBName(t, ts.root, fmt.Sprintf("if (file_exists('/etc/sitevault-test-%d.php')) {\n  define('DB_NAME', '%s');\n} else {\n  define('DB_NAME', '%s');\n}\n", os.Getpid(), wrong.Name, ts.db.Name))
	_, err := e.run("", siteBackupCmd("blog", false))
	if err == nil || !strings.Contains(err.Error(), "--db-name") || !strings.Contains(err.Error(), "wp-config.php line") {
		t.Fatalf("backup with an undecidable DB_NAME: %v, want an error naming the line and --db-name", err)
	}
}
