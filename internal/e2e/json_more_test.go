package e2e_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Mirrors of the README's JSON of the commands below (cmd/sitevault's
// json_more.go); decoded strictly.

type skipJSON struct {
	Path   string `json:"path"`
	Rule   string `json:"rule"`
	Reason string `json:"reason"`
}

type tableSkipJSON struct {
	Table  string `json:"table"`
	Rule   string `json:"rule"`
	Reason string `json:"reason"`
}

type siteShowJSON struct {
	Name       string `json:"name"`
	Connection string `json:"connection"`
	Path       string `json:"path"`
	SSH        *struct {
		User               string `json:"user"`
		Address            string `json:"address"`
		IdentityFile       string `json:"identity_file"`
		PassphraseSet      bool   `json:"passphrase_set"`
		PasswordSet        bool   `json:"password_set"`
		HostKeyFingerprint string `json:"host_key_fingerprint"`
	} `json:"ssh"`
	DB struct {
		Host        string `json:"host"`
		Name        string `json:"name"`
		User        string `json:"user"`
		PasswordSet bool   `json:"password_set"`
		TablePrefix string `json:"table_prefix"`
	} `json:"db"`
	LastDBLogin *struct {
		Host string `json:"host"`
		Name string `json:"name"`
		User string `json:"user"`
	} `json:"last_db_login"`
	Added     time.Time `json:"added"`
	Changed   time.Time `json:"changed"`
	Retention struct {
		KeepLast    int `json:"keep_last"`
		KeepDaily   int `json:"keep_daily"`
		KeepWeekly  int `json:"keep_weekly"`
		KeepMonthly int `json:"keep_monthly"`
	} `json:"retention"`
	RetentionFrom string `json:"retention_from"`
	Schedule      struct {
		Off      bool   `json:"off"`
		Start    string `json:"start"`
		Window   string `json:"window"`
		TimeZone string `json:"time_zone"`
	} `json:"schedule"`
	ScheduleFrom string   `json:"schedule_from"`
	Excludes     []string `json:"excludes"`
}

type siteSavedJSON struct {
	Result string       `json:"result"`
	Site   siteShowJSON `json:"site"`
	Check  struct {
		WordPressVersion   string `json:"wordpress_version"`
		Multisite          bool   `json:"multisite"`
		ConfigAbove        bool   `json:"config_above_root"`
		ContentDir         string `json:"content_dir"`
		ExternalContentDir string `json:"external_content_dir"`
		Database           string `json:"database"`
		DatabaseAddress    string `json:"database_address"`
		DatabaseUser       string `json:"database_user"`
		TablePrefix        string `json:"table_prefix"`
	} `json:"check"`
}

type siteFilesJSON struct {
	Site  string `json:"site"`
	Files []struct {
		Path string `json:"path"`
		Size int64  `json:"size"`
		Item string `json:"item"`
	} `json:"files"`
	Bytes        int64      `json:"bytes"`
	SkippedPaths []skipJSON `json:"skipped_paths"`
}

type siteTablesJSON struct {
	Site          string          `json:"site"`
	Database      string          `json:"database"`
	TablePrefix   string          `json:"table_prefix"`
	Tables        []string        `json:"tables"`
	Views         []string        `json:"views"`
	SkippedTables []tableSkipJSON `json:"skipped_tables"`
	Warnings      []string        `json:"warnings"`
}

type dirBackupJSON struct {
	Point          string     `json:"point"`
	Site           string     `json:"site"`
	Time           time.Time  `json:"time"`
	Parent         string     `json:"parent"`
	Partial        bool       `json:"partial"`
	FilesNew       int        `json:"files_new"`
	FilesChanged   int        `json:"files_changed"`
	FilesUnchanged int        `json:"files_unchanged"`
	Folders        int        `json:"folders"`
	BytesRead      int64      `json:"bytes_read"`
	BytesTotal     int64      `json:"bytes_total"`
	BytesAdded     int64      `json:"bytes_added"`
	Duration       float64    `json:"duration_seconds"`
	SkippedPaths   []skipJSON `json:"skipped_paths"`
	ChangedWhile   []string   `json:"changed_while_read"`
	Errors         []string   `json:"errors"`
}

type dirRestoreJSON struct {
	Point           string    `json:"point"`
	Site            string    `json:"site"`
	PointTime       time.Time `json:"point_time"`
	Target          string    `json:"target"`
	FilesWritten    int       `json:"files_written"`
	FoldersCreated  int       `json:"folders_created"`
	SymlinksWritten int       `json:"symlinks_written"`
	BytesWritten    int64     `json:"bytes_written"`
	FilesUnchanged  int       `json:"files_unchanged"`
	Refused         []struct {
		Path   string `json:"path"`
		Reason string `json:"reason"`
	} `json:"refused"`
	Failed   []string `json:"failed"`
	Duration float64  `json:"duration_seconds"`
}

type repairIndexJSON struct {
	Packs         int      `json:"packs"`
	Blobs         int      `json:"blobs"`
	IndexFilesIn  int      `json:"index_files_replaced"`
	IndexFilesOut int      `json:"index_files_written"`
	DamagedPacks  []string `json:"damaged_packs"`
	Duration      float64  `json:"duration_seconds"`
}

// TestJSONMoreCommands runs the site, key, dir, repair and jobs commands
// with --json on a real WordPress and decodes each result and each
// failure's error object strictly.
func TestJSONMoreCommands(t *testing.T) {
	needServers(t)
	w, _ := newSite(t)
	sv := newCLI(t)

	var added siteSavedJSON
	decodeStrict(t, sv.ok("site", "add", "blog", "--path", w.Root, "--json"), &added)
	if added.Result != "added" || added.Site.Name != "blog" || added.Site.Connection != "local" || added.Site.SSH != nil ||
		added.Check.WordPressVersion == "" || added.Check.TablePrefix != w.Prefix || added.Site.Added.IsZero() {
		t.Errorf("site add --json: %+v", added)
	}
	var edited siteSavedJSON
	decodeStrict(t, sv.ok("site", "edit", "blog", "--table-prefix", w.Prefix, "--json"), &edited)
	if edited.Result != "changed" || edited.Site.DB.TablePrefix != w.Prefix || edited.Site.DB.PasswordSet {
		t.Errorf("site edit --json: %+v", edited)
	}
	var shown siteShowJSON
	decodeStrict(t, sv.ok("site", "show", "blog", "--json"), &shown)
	if shown.Name != "blog" || shown.Path != w.Root || shown.DB.TablePrefix != w.Prefix || shown.LastDBLogin == nil || shown.LastDBLogin.User == "" ||
		shown.RetentionFrom != "default" || shown.Retention.KeepDaily == 0 || shown.Schedule.Start == "" || shown.Excludes == nil {
		t.Errorf("site show --json: %+v", shown)
	}
	var ver struct {
		Version   string `json:"version"`
		Commit    string `json:"commit"`
		BuildDate string `json:"build_date"`
		Go        string `json:"go"`
	}
	decodeStrict(t, sv.ok("version", "--json"), &ver)
	if ver.Version == "" || ver.Commit == "" || !strings.HasPrefix(ver.Go, "go") {
		t.Errorf("version --json: %+v", ver)
	}
	var files siteFilesJSON
	decodeStrict(t, sv.ok("site", "files", "blog", "--json"), &files)
	if files.Site != "blog" || len(files.Files) == 0 || files.Bytes == 0 || files.SkippedPaths == nil {
		t.Errorf("site files --json: %d files, %d bytes, skipped %v", len(files.Files), files.Bytes, files.SkippedPaths)
	}
	for _, s := range files.SkippedPaths {
		if s.Path == "" || s.Rule == "" || s.Reason == "" {
			t.Errorf("site files --json: skipped path without path, rule or reason: %+v", s)
		}
	}
	var tables siteTablesJSON
	decodeStrict(t, sv.ok("site", "tables", "blog", "--json"), &tables)
	if tables.Site != "blog" || tables.TablePrefix != w.Prefix || !containsString(tables.Tables, w.Prefix+"posts") || tables.Views == nil || tables.SkippedTables == nil {
		t.Errorf("site tables --json: %+v", tables)
	}
	var conn struct {
		Site    string    `json:"site"`
		Code    string    `json:"code"`
		Expires time.Time `json:"expires"`
	}
	decodeStrict(t, sv.ok("site", "connect", "blog", "--url", "http://127.0.0.1:9", "--json"), &conn)
	if conn.Site != "blog" || conn.Code == "" || !conn.Expires.After(time.Now()) {
		t.Errorf("site connect --json: %+v", conn)
	}

	sv.env["SITEVAULT_NEW_PASSWORD"] = "a second password"
	var key struct {
		ID    string `json:"id"`
		Label string `json:"label"`
	}
	decodeStrict(t, sv.ok("key", "add", "--label", "spare", "--json"), &key)
	if len(key.ID) < 8 || key.Label != "spare" {
		t.Errorf("key add --json: %+v", key)
	}
	var removed struct {
		Removed string `json:"removed"`
	}
	decodeStrict(t, sv.ok("key", "remove", key.ID[:8], "--yes", "--json"), &removed)
	if removed.Removed != key.ID[:8] {
		t.Errorf("key remove --json: %+v", removed)
	}

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a.txt"), []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	var db dirBackupJSON
	decodeStrict(t, sv.ok("dir", "backup", dir, "--site", "folder", "--exclude", "*.tmp", "--json"), &db)
	if len(db.Point) != 64 || db.Site != "folder" || db.FilesNew != 1 || db.BytesTotal != 5 || db.Partial || db.Errors == nil || db.Time.IsZero() {
		t.Errorf("dir backup --json: %+v", db)
	}
	var dr dirRestoreJSON
	target := t.TempDir()
	decodeStrict(t, sv.ok("dir", "restore", db.Point[:8], target, "--json"), &dr)
	if dr.Point != db.Point || dr.FilesWritten != 1 || dr.BytesWritten != 5 || dr.Target != target || dr.Refused == nil {
		t.Errorf("dir restore --json: %+v", dr)
	}
	var ri repairIndexJSON
	decodeStrict(t, sv.ok("repair", "index", "--json"), &ri)
	if ri.Packs == 0 || ri.Blobs == 0 || ri.DamagedPacks == nil || len(ri.DamagedPacks) != 0 {
		t.Errorf("repair index --json: %+v", ri)
	}

	var gone struct {
		Removed string `json:"removed"`
	}
	decodeStrict(t, sv.ok("site", "remove", "blog", "--yes", "--json"), &gone)
	if gone.Removed != "blog" {
		t.Errorf("site remove --json: %+v", gone)
	}

	for _, c := range []struct {
		args []string
		code string // "" = any
		exit int
	}{
		{[]string{"site", "show", "blgo", "--json"}, "site_not_found", 1},
		{[]string{"site", "edit", "blgo", "--json"}, "site_not_found", 1},
		{[]string{"site", "files", "blgo", "--json"}, "site_not_found", 1},
		{[]string{"site", "tables", "blgo", "--json"}, "site_not_found", 1},
		{[]string{"site", "remove", "blgo", "--yes", "--json"}, "site_not_found", 1},
		{[]string{"site", "connect", "blog", "--json"}, "usage", 2},
		{[]string{"site", "add", "x", "--json"}, "usage", 2},
		{[]string{"key", "add", "--new-password-file", "/nonexistent", "--json"}, "", -1},
		{[]string{"key", "remove", "ffffffff", "--yes", "--json"}, "usage", 2},
		{[]string{"dir", "backup", "/nonexistent", "--site", "f", "--json"}, "usage", 2},
		{[]string{"dir", "restore", "ffffffff", target, "--json"}, "point_not_found", 1},
		{[]string{"jobs", "show", "x", "--json"}, "usage", 2},
		{[]string{"jobs", "cancel", "12345", "--json"}, "", 1},
	} {
		r := sv.run(c.args...)
		var e errorJSON
		decodeStrict(t, r.stdout, &e)
		if r.code == 0 || (c.exit >= 0 && r.code != c.exit) || (c.code != "" && e.Error.Code != c.code) ||
			e.Error.Code == "" || e.Error.ExitCode != r.code || e.Error.Detail == "" {
			t.Errorf("%v: exit %d, error %+v; want exit %d, code %q\n%s", c.args, r.code, e.Error, c.exit, c.code, r.stderr)
		}
	}
	sv.env["SITEVAULT_PASSWORD"] = "not the password"
	for _, args := range [][]string{{"repair", "index", "--json"}, {"key", "add", "--json"}, {"dir", "restore", "latest", target, "--json"}} {
		r := sv.run(args...)
		var e errorJSON
		decodeStrict(t, r.stdout, &e)
		if r.code != 12 || e.Error.Code != "wrong_password" {
			t.Errorf("%v with a wrong password: exit %d, %+v", args, r.code, e.Error)
		}
	}
}

func containsString(l []string, s string) bool {
	for _, x := range l {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}
