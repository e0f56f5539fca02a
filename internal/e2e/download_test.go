package e2e_test

import (
	"archive/tar"
	"archive/zip"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/sitevault/sitevault/internal/testsrv"
	"github.com/sitevault/sitevault/internal/wordpress"
)

// TestDownload downloads the latest point as .tar.gz and as .zip, checks
// that each follows the layout rules, and restores each with --from-archive
// into a second, empty site (fresh database, WordPress core copied in, its
// own wp-config.php) that then works on its own.
func TestDownload(t *testing.T) {
	needServers(t)
	w, c := newSite(t)
	sv := newCLI(t)
	sv.addSite("blog", w, false)
	c.files = sv.siteFiles("blog")
	wantSums := w.ChecksumTables(t, c.tables...)
	wantFiles := w.FileHashes(t, c.files...)
	sv.ok("backup", "blog")

	dir := t.TempDir()
	archives := map[string]map[string]string{} // format → entry → sha256
	for _, ext := range []string{".tar.gz", ".zip"} {
		file := filepath.Join(dir, "blog"+ext)
		sv.ok("download", "blog", "--to", "latest", "-o", file)
		entries := readArchive(t, file)
		archives[ext] = entries
		t.Run("layout"+ext, func(t *testing.T) { checkLayout(t, w, c, wantFiles, entries) })
	}
	// The manifests may differ (they can name the format); the data may not.
	delete(archives[".tar.gz"], "manifest.json")
	delete(archives[".zip"], "manifest.json")
	if d := testsrv.DiffMaps(archives[".tar.gz"], archives[".zip"]); d != "" {
		t.Errorf("the .tar.gz and the .zip hold different files:\n%s", d)
	}

	// The original site goes away (its database and user are dropped): the
	// new sites must work with their own databases.
	port := w.Port
	w.Close()

	for _, ext := range []string{".tar.gz", ".zip"} {
		t.Run("restore"+ext, func(t *testing.T) {
			w2 := testsrv.StartWordPress(t, mariadb, testsrv.WordPressOptions{Empty: true, Port: port})
			ownConfig := w2.FileHashes(t, "wp-config.php")
			name := "copy" + strings.ReplaceAll(ext, ".", "-")
			sv.addSite(name, w2, false)
			sv.ok("restore", name, "--from-archive", filepath.Join(dir, "blog"+ext), "--yes")

			sameMaps(t, "CHECKSUM TABLE of the restored tables", wantSums, w2.ChecksumTables(t, c.tables...))
			for _, tbl := range w2.AllTables(t) {
				if !slices.Contains(c.tables, tbl) {
					t.Errorf("the new site has a table %s that the download must not hold", tbl)
				}
			}
			others := slices.DeleteFunc(slices.Clone(c.files), func(f string) bool { return f == "wp-config.php" })
			sameMaps(t, "restored files", pick(wantFiles, others), w2.FileHashes(t, others...))
			// The new site keeps its own database settings: the original's
			// database is gone.
			if got := w2.FileHashes(t, "wp-config.php"); got["wp-config.php"] != ownConfig["wp-config.php"] &&
				!strings.Contains(readFile(t, filepath.Join(w2.Root, "wp-config.php")), "'"+w2.DB.Name+"'") {
				t.Errorf("restore --from-archive replaced the new site's wp-config.php with the downloaded one: it no longer names the site's own database %s (but %s, the original's, now dropped)", w2.DB.Name, w.DB.Name)
			}
			checkServes(t, w2, c.posts)
		})
	}
}

// checkLayout checks a download against the rules of the issue: files/
// holds exactly the backed-up files with their content (nothing from core,
// cache folders, donotbackup folders or nested installs), sql/ one file per
// backed-up table (none without the prefix or without a key), and
// manifest.json describes the point.
func checkLayout(t *testing.T, w *testsrv.WordPress, c *content, wantFiles map[string]string, entries map[string]string) {
	var files, sqls []string
	for name := range entries {
		switch {
		case strings.HasPrefix(name, "files/"):
			files = append(files, strings.TrimPrefix(name, "files/"))
		case strings.HasPrefix(name, "sql/"):
			sqls = append(sqls, strings.TrimPrefix(name, "sql/"))
		case name == "manifest.json":
		default:
			t.Errorf("unexpected entry %s (want files/…, sql/…, manifest.json)", name)
		}
	}
	sort.Strings(files)
	sort.Strings(sqls)

	got := map[string]string{}
	for _, f := range files {
		got[f] = entries["files/"+f]
	}
	sameMaps(t, "files/ of the download and the backed-up files of the site", wantFiles, got)

	fx := testsrv.WordPressFixture
	forbidden := []string{"wp-admin/", "wp-includes/", fx.Cache + "/", fx.CacheDirTag + "/", fx.DoNotBackup + "/",
		fx.DoNotBackupMarked + "/", fx.NestedInstall + "/", "wp-content/languages/"}
	for _, f := range files {
		for _, p := range forbidden {
			if strings.HasPrefix(f, p) {
				t.Errorf("the download holds %s (under %s, which no backup takes)", f, p)
			}
		}
		if slices.Contains(wordpress.CoreRootFiles, f) {
			t.Errorf("the download holds the core file %s", f)
		}
	}
	for _, f := range []string{"wp-config.php", fx.Plugin, fx.ThemeFile, fx.Upload, fx.DropIn, fx.CustomFolderFile} {
		if !slices.Contains(files, f) {
			t.Errorf("the download lacks files/%s", f)
		}
	}

	var wantSQL []string
	for _, tbl := range c.tables {
		wantSQL = append(wantSQL, tbl+".sql")
	}
	sort.Strings(wantSQL)
	if !slices.Equal(sqls, wantSQL) {
		t.Errorf("sql/ holds %v, want exactly the backed-up tables %v", sqls, wantSQL)
	}
	for _, s := range sqls {
		if !strings.HasPrefix(s, w.Prefix) {
			t.Errorf("sql/%s: a table without the prefix", s)
		}
	}

	raw, ok := entries["manifest.json"]
	if !ok {
		t.Fatal("the download has no manifest.json")
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(manifests[raw]), &m); err != nil {
		t.Fatalf("manifest.json: %v", err)
	}
	for key, want := range map[string]string{"site": "blog", "table_prefix": w.Prefix, "wordpress_version": wpVersion(t, w)} {
		if got, _ := m[key].(string); got != want {
			t.Errorf("manifest.json: %s is %q, want %q", key, got, want)
		}
	}
	// A checksum of every file: each member's SHA-256 as the manifest lists it.
	listed := map[string]string{}
	list, _ := m["entries"].([]any)
	for _, e := range list {
		if e, ok := e.(map[string]any); ok {
			if p, ok := e["path"].(string); ok {
				listed[p], _ = e["sha256"].(string)
			}
		}
	}
	for name, sum := range entries {
		if name != "manifest.json" && listed[name] != sum {
			t.Errorf("manifest.json: %s has checksum %q, the member's SHA-256 is %s", name, listed[name], sum)
		}
	}
}

// wpVersion reads $wp_version from the site's wp-includes/version.php.
func wpVersion(t *testing.T, w *testsrv.WordPress) string {
	t.Helper()
	m := regexp.MustCompile(`\$wp_version = '([^']+)'`).FindStringSubmatch(readFile(t, filepath.Join(w.Root, "wp-includes/version.php")))
	if m == nil {
		t.Fatal("no $wp_version in wp-includes/version.php")
	}
	return m[1]
}

// manifests keeps the text of every manifest.json read, by its hash.
var manifests = map[string]string{}

// readArchive returns the regular files of a .tar.gz or .zip download with
// the SHA-256 of each (folders are left out).
func readArchive(t *testing.T, file string) map[string]string {
	t.Helper()
	entries := map[string]string{}
	add := func(name string, r io.Reader) {
		h := sha256.New()
		var keep strings.Builder
		w := io.Writer(h)
		if name == "manifest.json" {
			w = io.MultiWriter(h, &keep)
		}
		if _, err := io.Copy(w, r); err != nil {
			t.Fatalf("%s: read %s: %v", file, name, err)
		}
		sum := hex.EncodeToString(h.Sum(nil))
		if _, dup := entries[name]; dup {
			t.Errorf("%s: %s appears twice", file, name)
		}
		entries[name] = sum
		if name == "manifest.json" {
			manifests[sum] = keep.String()
		}
	}
	if strings.HasSuffix(file, ".zip") {
		z, err := zip.OpenReader(file)
		must(t, err)
		defer z.Close()
		for _, f := range z.File {
			if f.FileInfo().IsDir() {
				continue
			}
			r, err := f.Open()
			must(t, err)
			add(f.Name, r)
			r.Close()
		}
		return entries
	}
	f, err := os.Open(file)
	must(t, err)
	defer f.Close()
	gz, err := gzip.NewReader(f)
	must(t, err)
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		must(t, err)
		if h.Typeflag == tar.TypeReg {
			add(strings.TrimPrefix(h.Name, "./"), tr)
		}
	}
	return entries
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	must(t, err)
	return string(b)
}
