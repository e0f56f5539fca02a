// Package sitetest builds WordPress sites for tests: a copy of Debian's
// WordPress, a wp-config.php pointing at a test database, and a fixture with
// a file for every backup rule and the awkward cases of issue 3. It is a
// package of its own, not a testing.go in package site, so that the
// sitevault binary does not link the test servers.
package sitetest

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/sitevault/sitevault/internal/testsrv"
)

// DebianWordPress is where Debian's wordpress package installs WordPress.
const DebianWordPress = "/usr/share/wordpress"

// TestWordPress copies Debian's WordPress into a new temporary folder and
// returns the copy's root. Symbolic links are copied as links (Debian's
// .htaccess points to /etc/wordpress: a link leaving the root). A missing
// package fails or skips the test (testsrv.Missing).
//
// Of the core folders wp-admin and wp-includes only wp-includes/version.php
// and the folders' index.php are copied: a backup excludes both folders by
// name without listing them, and copying 90 MB per test made the suite
// slow on the two-core CI machine. TestWordPressFull copies everything.
func TestWordPress(tb testing.TB) string {
	tb.Helper()
	return copyWordPress(tb, false)
}

// TestWordPressFull is TestWordPress with the core folders complete.
func TestWordPressFull(tb testing.TB) string {
	tb.Helper()
	return copyWordPress(tb, true)
}

func copyWordPress(tb testing.TB, full bool) string {
	tb.Helper()
	if _, err := os.Stat(filepath.Join(DebianWordPress, "wp-includes", "version.php")); err != nil {
		testsrv.Missing(tb, "WordPress (Debian's package)", "apt-get install wordpress")
	}
	root := filepath.Join(tb.TempDir(), "site")
	err := filepath.WalkDir(DebianWordPress, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(DebianWordPress, p)
		dst := filepath.Join(root, rel)
		if !full && !d.IsDir() && (strings.HasPrefix(rel, "wp-admin/") || strings.HasPrefix(rel, "wp-includes/")) &&
			rel != "wp-includes/version.php" && rel != "wp-admin/index.php" && rel != "wp-includes/index.php" {
			return nil
		}
		switch {
		case d.IsDir():
			return os.MkdirAll(dst, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(target, dst)
		case d.Type().IsRegular():
			return copyFile(p, dst)
		}
		return nil
	})
	if err != nil {
		tb.Fatalf("copy WordPress: %v", err)
	}
	return root
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, fi.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Chtimes(dst, fi.ModTime(), fi.ModTime())
}

// TestDB is what WriteTestConfig writes into wp-config.php.
type TestDB struct {
	Name, User, Password, Host, Prefix string
}

// WriteTestConfig replaces wp-config.php with one defining db (Debian's
// own reads /etc/wordpress and defines nothing itself). Values are written
// with the quoting styles real configs use.
func WriteTestConfig(tb testing.TB, root string, db TestDB) {
	tb.Helper()
	if db.Prefix == "" {
		db.Prefix = "wp_"
	}
	php := func(s string) string { return strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) }
	src := fmt.Sprintf(`<?php
/** The name of the database for WordPress */
define( 'DB_NAME', '%s' );
define( "DB_USER", "%s" ); // double quotes
define('DB_PASSWORD', '%s');
define( 'DB_HOST', getenv('SV_TEST_UNSET_DB_HOST') ?: '%s' );
define( 'DB_CHARSET', 'utf8mb4' );
$table_prefix = '%s';
/* That's all, stop editing! */
if ( ! defined( 'ABSPATH' ) ) { define( 'ABSPATH', __DIR__ . '/' ); }
require_once ABSPATH . 'wp-settings.php';
`, php(db.Name), strings.ReplaceAll(db.User, `"`, `\"`), php(db.Password), php(db.Host), db.Prefix)
	if err := os.WriteFile(filepath.Join(root, "wp-config.php"), []byte(src), 0o640); err != nil {
		tb.Fatal(err)
	}
}

// FixtureTaken lists files of AddFixture a backup must take, and
// FixtureExcluded paths it must not (each excluded by a rule).
var (
	FixtureTaken = []string{
		"wp-config.php", "robots.txt", "shop-assets/logo.svg", "shop-assets/deep/er/file.txt",
		"wp-content/object-cache.php", "wp-content/mu-plugins/loader.php",
		"wp-content/plugins/sv-hello/sv-hello.php", "wp-content/themes/sv-theme/style.css",
		"wp-content/uploads/2024/05/photo.jpg", "wp-content/uploads/2024/05/new\nline.txt",
		"wp-content/uploads/2024/05/bad-\xff-utf8.txt", "wp-content/uploads/" + strings.Repeat("long", 60) + ".txt",
		"wp-content/w3tc-config/master.php",
	}
	FixtureLinks = []string{".htaccess", "loop-a", "loop-b", "outside-link", "wp-content/uploads/escape"}
	// FixtureOutsideLinks are the links whose target leaves the site root
	// (Debian's .htaccess → /etc/wordpress/htaccess among them): backed up,
	// but a restore never places them.
	FixtureOutsideLinks = []string{".htaccess", "outside-link", "wp-content/uploads/escape"}
	FixtureExcluded     = []string{
		"wp-admin", "wp-includes", "wp-login.php", "index.php", "readme.html",
		"wp-content/cache", "wp-content/upgrade", "wp-content/litespeed",
		"wp-content/updraft", "wp-content/ai1wm-backups", "wp-content/uploads/backwpup-abc-backups",
		"wp-content/uploads/tmp-thumbs", // CACHEDIR.TAG
		"blog",                          // nested install
		"private",                       // .donotbackup
		"wp-content/uploads/donotbackup",
		"wp-content/uploads/fifo",
	}
)

// AddFixture adds to a WordPress root a file for every backup rule and the
// awkward cases of issue 3: drop-ins, a custom root folder, cache and backup
// plugin folders, a CACHEDIR.TAG, a nested install, both donotbackup forms,
// a symlink loop, links leaving the root, a FIFO, names with a newline,
// invalid UTF-8 and 240 bytes.
func AddFixture(tb testing.TB, root string) {
	tb.Helper()
	rng := rand.New(rand.NewPCG(3, 3))
	photo := make([]byte, 300<<10)
	for i := range photo {
		photo[i] = byte(rng.Uint32())
	}
	files := map[string][]byte{
		"robots.txt":                                                []byte("User-agent: *\nDisallow:\n"),
		"shop-assets/logo.svg":                                      []byte("<svg/>"),
		"shop-assets/deep/er/file.txt":                              []byte("deep"),
		"wp-content/object-cache.php":                               []byte("<?php // drop-in"),
		"wp-content/mu-plugins/loader.php":                          []byte("<?php // mu"),
		"wp-content/plugins/sv-hello/sv-hello.php":                  []byte("<?php /* Plugin Name: SV Hello */"),
		"wp-content/themes/sv-theme/style.css":                      []byte("/* Theme Name: SV */"),
		"wp-content/uploads/2024/05/photo.jpg":                      photo,
		"wp-content/uploads/2024/05/new\nline.txt":                  []byte("newline"),
		"wp-content/uploads/2024/05/bad-\xff-utf8.txt":              []byte("latin1"),
		"wp-content/uploads/" + strings.Repeat("long", 60) + ".txt": []byte("long name"),
		"wp-content/w3tc-config/master.php":                         []byte("<?php // settings, kept"),

		"wp-content/cache/page.html":                    []byte("cached"),
		"wp-content/upgrade/tmp.zip":                    []byte("upgrade"),
		"wp-content/litespeed/css/x.css":                []byte("cache"),
		"wp-content/updraft/backup_2024.zip":            []byte("backup"),
		"wp-content/ai1wm-backups/site.wpress":          []byte("backup"),
		"wp-content/uploads/backwpup-abc-backups/b.zip": []byte("backup"),
		"wp-content/uploads/tmp-thumbs/CACHEDIR.TAG":    []byte("Signature: 8a477f597d28d172789f06886806bc55\n# cache\n"),
		"wp-content/uploads/tmp-thumbs/t.jpg":           []byte("thumb"),
		"blog/wp-config.php":                            []byte("<?php // nested"),
		"blog/wp-load.php":                              []byte("<?php"),
		"blog/wp-includes/version.php":                  []byte("<?php $wp_version = '6.0';"),
		"blog/wp-content/uploads/a.jpg":                 []byte("nested upload"),
		"private/.donotbackup":                          nil,
		"private/secret.txt":                            []byte("secret"),
		"wp-content/uploads/donotbackup/secret.txt":     []byte("secret"),
	}
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(p, content, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	links := map[string]string{
		"loop-a":                    "loop-b",
		"loop-b":                    "loop-a",
		"outside-link":              "/etc/passwd",
		"wp-content/uploads/escape": "../../../",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			tb.Fatal(err)
		}
	}
	if err := syscall.Mkfifo(filepath.Join(root, "wp-content/uploads/fifo"), 0o644); err != nil {
		tb.Fatal(err)
	}
}

// SameFile reports whether the files at a and b have the same content.
func SameFile(tb testing.TB, a, b string) bool {
	tb.Helper()
	x, err := os.ReadFile(a)
	if err != nil {
		tb.Fatal(err)
	}
	y, err := os.ReadFile(b)
	if err != nil {
		return false
	}
	return bytes.Equal(x, y)
}
