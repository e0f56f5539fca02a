package testsrv

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// DebianWordPress is where Debian's wordpress package installs WordPress.
const DebianWordPress = "/usr/share/wordpress"

// ErrWordPressMissing is returned by NewWordPress when PHP or Debian's
// WordPress is not installed; a TestMain decides whether that skips or fails.
var ErrWordPressMissing = errors.New("PHP or WordPress is not installed (apt-get install php-cli php-mysql wordpress)")

// MissingPackageError names the Debian package that would supply what is
// missing; it wraps ErrWordPressMissing.
type MissingPackageError struct {
	What    string // "WordPress's default theme" …
	Path    string // what was looked for
	Package string // the Debian package: wordpress-l10n …
}

func (e *MissingPackageError) Error() string {
	return fmt.Sprintf("%s is missing (%s): apt-get install %s", e.What, e.Path, e.Package)
}

func (e *MissingPackageError) Unwrap() error { return ErrWordPressMissing }

// checkDebianWordPress checks that dir holds Debian's WordPress with the
// theme and translations its recommended packages add (a fresh machine
// installing wordpress without recommends lacks them).
func checkDebianWordPress(dir string) error {
	for _, c := range []struct{ what, rel, pkg string }{
		{"Debian's WordPress", "wp-includes/version.php", "wordpress"},
		{"WordPress's default theme", "wp-content/themes/twentytwentythree", "wordpress-theme-twentytwentythree"},
		{"WordPress's translations", "wp-content/languages", "wordpress-l10n"},
	} {
		p := filepath.Join(dir, c.rel)
		if _, err := os.Stat(p); err != nil {
			return &MissingPackageError{What: c.what, Path: p, Package: c.pkg}
		}
	}
	return nil
}

// WordPressOptions configures StartWordPress.
type WordPressOptions struct {
	// Prefix is the table prefix; "" means "wp_".
	Prefix string
	// Title is the blog name; "" means "sitevault test site".
	Title string
	// Port is the loopback port the site is served on (Serve) and that
	// siteurl and home name; 0 picks a free one. A second site given the
	// first one's port takes over its URL (a site moved to a new server).
	Port int
	// Empty copies the core and writes wp-config.php with a fresh, empty
	// database, but neither installs WordPress nor adds the fixture: the
	// target of a restore from a download.
	Empty bool
	// Bare installs WordPress without the fixture (WordPressFixture).
	Bare bool
}

// WordPressFixture lists what StartWordPress adds to a site (unless Bare or
// Empty), relative to its root: what a backup takes and what it must skip.
var WordPressFixture = struct {
	Plugin, PluginDir, MUPlugin, Theme, ThemeFile, Upload, DropIn, RootFile, CustomFolderFile string
	Cache, CacheDirTag, DoNotBackup, DoNotBackupMarked, NestedInstall                         string
	// PluginMarker is what the fixture plugin prints in every page's footer.
	PluginMarker string
}{
	Plugin:           "wp-content/plugins/sv-notes/sv-notes.php",
	PluginDir:        "wp-content/plugins/sv-notes",
	MUPlugin:         "wp-content/mu-plugins/sv-mu.php",
	Theme:            "wp-content/themes/twentytwentythree",
	ThemeFile:        "wp-content/themes/twentytwentythree/style.css",
	Upload:           "wp-content/uploads/2024/05/photo.jpg",
	DropIn:           "wp-content/db-error.php",
	RootFile:         "robots.txt",
	CustomFolderFile: "shop-assets/logo.svg",

	Cache:             "wp-content/cache",
	CacheDirTag:       "wp-content/uploads/tmp-thumbs",
	DoNotBackup:       "wp-content/uploads/donotbackup",
	DoNotBackupMarked: "private",
	NestedInstall:     "staging",

	PluginMarker: "sv-notes-plugin-is-active",
}

// WordPress is a real WordPress site: Debian's WordPress core copied into a
// temporary root with its own wp-config.php, installed with php-cli into a
// fresh database (and user) on a private MariaDB server.
type WordPress struct {
	Root     string // the WordPress root (ABSPATH)
	Prefix   string // table prefix
	Port     int    // the port Serve listens on
	URL      string // http://127.0.0.1:Port, as siteurl and home say
	DB       MariaDBDatabase
	DBHost   string // DB_HOST in wp-config.php: 127.0.0.1:port
	Title    string
	Password string // the admin user's password (user "admin")

	mdb   *MariaDB
	dir   string // removed by Close when NewWordPress created it
	serve *exec.Cmd
	done  chan struct{}
}

var wpSeq atomic.Int64

// StartWordPress creates a site on db for tb and removes it (files, server,
// database and user) when tb ends. Missing PHP or WordPress fails or skips
// the test (see Missing).
func StartWordPress(tb testing.TB, db *MariaDB, opts WordPressOptions) *WordPress {
	tb.Helper()
	w, err := NewWordPress(db, tb.TempDir(), opts)
	var me *MissingPackageError
	switch {
	case errors.As(err, &me):
		Missing(tb, me.What+" ("+me.Path+")", "apt-get install "+me.Package)
	case errors.Is(err, ErrWordPressMissing):
		Missing(tb, "PHP or WordPress", "apt-get install php-cli php-mysql wordpress")
	}
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(w.Close)
	return w
}

// NewWordPress is StartWordPress for a TestMain: the site lives in a new
// folder "site-N" under dir; Close stops its server and drops its database.
func NewWordPress(db *MariaDB, dir string, opts WordPressOptions) (*WordPress, error) {
	php := LookPath("php")
	if php == "" {
		return nil, ErrWordPressMissing
	}
	if err := checkDebianWordPress(DebianWordPress); err != nil {
		return nil, err
	}
	if opts.Prefix == "" {
		opts.Prefix = "wp_"
	}
	if opts.Title == "" {
		opts.Title = "sitevault test site"
	}
	if opts.Port == 0 {
		p, err := freePort()
		if err != nil {
			return nil, err
		}
		opts.Port = p
	}
	n := wpSeq.Add(1)
	w := &WordPress{
		Root:     filepath.Join(dir, fmt.Sprintf("site-%d", n)),
		Prefix:   opts.Prefix,
		Port:     opts.Port,
		URL:      "http://127.0.0.1:" + strconv.Itoa(opts.Port),
		DBHost:   db.Addr,
		Title:    opts.Title,
		Password: wpRandomHex(8),
		mdb:      db,
	}
	w.DB = MariaDBDatabase{
		Name:     fmt.Sprintf("sv_wp_%d_%d", os.Getpid(), n),
		User:     fmt.Sprintf("sv_wp_%d", n),
		Password: wpRandomHex(10),
	}
	if err := w.createDatabase(); err != nil {
		return nil, err
	}
	fail := func(err error) (*WordPress, error) {
		w.Close()
		return nil, err
	}
	if err := CopyWordPressCore(w.Root); err != nil {
		return fail(err)
	}
	if err := w.WriteConfig(); err != nil {
		return fail(err)
	}
	if opts.Empty {
		return w, nil
	}
	if err := w.install(); err != nil {
		return fail(err)
	}
	if !opts.Bare {
		if err := w.addFixture(); err != nil {
			return fail(err)
		}
	}
	return w, nil
}

// Close stops the server and drops the database and its user. The files
// stay (they live in the test's temporary folder).
func (w *WordPress) Close() {
	w.StopServe()
	db, err := w.mdb.Root()
	if err != nil {
		return
	}
	defer db.Close()
	db.Exec("DROP DATABASE IF EXISTS `" + w.DB.Name + "`")
	db.Exec("DROP USER IF EXISTS '" + w.DB.User + "'@'%'")
}

func (w *WordPress) createDatabase() error {
	db, err := w.mdb.Root()
	if err != nil {
		return err
	}
	defer db.Close()
	for _, q := range []string{
		"CREATE DATABASE `" + w.DB.Name + "` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci",
		"CREATE OR REPLACE USER '" + w.DB.User + "'@'%' IDENTIFIED BY '" + w.DB.Password + "'",
		"GRANT ALL ON `" + w.DB.Name + "`.* TO '" + w.DB.User + "'@'%'",
	} {
		if _, err := db.Exec(q); err != nil {
			return fmt.Errorf("create the WordPress database: %w", err)
		}
	}
	return nil
}

// CopyWordPressCore copies Debian's WordPress into root, following Debian's
// symbolic links (into /usr/share/javascript, /etc/wordpress …) so that the
// copy stands alone. It leaves out Debian's wp-config.php (which reads
// /etc/wordpress) and wp-content/languages (31 MB of translations).
func CopyWordPressCore(root string) error {
	skip := map[string]bool{"wp-config.php": true, "wp-content/languages": true}
	return filepath.WalkDir(DebianWordPress, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(DebianWordPress, p)
		if skip[filepath.ToSlash(rel)] {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		dst := filepath.Join(root, rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		fi, err := os.Stat(p) // follows links
		if err != nil {
			return fmt.Errorf("copy WordPress: %w", err)
		}
		if !fi.Mode().IsRegular() {
			return nil
		}
		return copyRegular(p, dst, fi)
	})
}

func copyRegular(src, dst string, fi fs.FileInfo) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, fi.Mode().Perm()|0o200)
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

// phpString quotes s as a PHP single-quoted string literal.
func phpString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// Config returns the wp-config.php StartWordPress writes: the database
// settings, the table prefix, fresh keys and salts, direct file access and
// no WP-Cron, no updates and no outgoing HTTP (tests run offline).
func (w *WordPress) Config() string {
	var b strings.Builder
	b.WriteString("<?php\n// wp-config.php written by sitevault's testsrv\n")
	def := func(name, value string) { fmt.Fprintf(&b, "define( '%s', %s );\n", name, value) }
	def("DB_NAME", phpString(w.DB.Name))
	def("DB_USER", phpString(w.DB.User))
	def("DB_PASSWORD", phpString(w.DB.Password))
	def("DB_HOST", phpString(w.DBHost))
	def("DB_CHARSET", "'utf8mb4'")
	def("DB_COLLATE", "''")
	for _, k := range []string{"AUTH_KEY", "SECURE_AUTH_KEY", "LOGGED_IN_KEY", "NONCE_KEY",
		"AUTH_SALT", "SECURE_AUTH_SALT", "LOGGED_IN_SALT", "NONCE_SALT"} {
		def(k, phpString(wpRandomHex(32)))
	}
	fmt.Fprintf(&b, "$table_prefix = %s;\n", phpString(w.Prefix))
	def("WP_DEBUG", "false")
	def("FS_METHOD", "'direct'")
	def("DISABLE_WP_CRON", "true")
	def("AUTOMATIC_UPDATER_DISABLED", "true")
	def("WP_AUTO_UPDATE_CORE", "false")
	def("WP_HTTP_BLOCK_EXTERNAL", "true")
	b.WriteString("/* That's all, stop editing! Happy publishing. */\n")
	b.WriteString("if ( ! defined( 'ABSPATH' ) ) {\n\tdefine( 'ABSPATH', __DIR__ . '/' );\n}\n")
	b.WriteString("require_once ABSPATH . 'wp-settings.php';\n")
	return b.String()
}

// WriteConfig (re)writes the site's wp-config.php.
func (w *WordPress) WriteConfig() error {
	return os.WriteFile(filepath.Join(w.Root, "wp-config.php"), []byte(w.Config()), 0o640)
}

// phpPrelude is what every script run with php-cli starts with: a request
// for the site's URL (WordPress reads HTTP_HOST) and wp-load.php.
func (w *WordPress) phpPrelude(installing bool) string {
	var b strings.Builder
	b.WriteString("<?php\n")
	fmt.Fprintf(&b, "$_SERVER['HTTP_HOST'] = %s;\n", phpString("127.0.0.1:"+strconv.Itoa(w.Port)))
	fmt.Fprintf(&b, "$_SERVER['SERVER_NAME'] = '127.0.0.1'; $_SERVER['SERVER_PORT'] = %d;\n", w.Port)
	b.WriteString("$_SERVER['REQUEST_URI'] = '/'; $_SERVER['REQUEST_METHOD'] = 'GET';\n")
	if installing {
		b.WriteString("define( 'WP_INSTALLING', true );\n")
	}
	b.WriteString("define( 'WP_USE_THEMES', false );\n")
	fmt.Fprintf(&b, "require %s;\n", phpString(filepath.Join(w.Root, "wp-load.php")))
	return b.String()
}

// RunPHP runs code (PHP statements, no opening tag) with WordPress loaded
// and returns what it printed. A PHP error or a non-zero exit is an error
// that carries PHP's output.
func (w *WordPress) RunPHP(code string) (string, error) {
	return w.runPHP(w.phpPrelude(false) + code + "\n")
}

func (w *WordPress) runPHP(script string) (string, error) {
	f, err := os.CreateTemp("", "sitevault-wp-*.php")
	if err != nil {
		return "", err
	}
	defer os.Remove(f.Name())
	if _, err := f.WriteString(script); err != nil {
		f.Close()
		return "", err
	}
	f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, LookPath("php"), "-d", "display_errors=stderr", "-d", "log_errors=0",
		"-d", "error_reporting=E_ALL & ~E_DEPRECATED & ~E_NOTICE", "-d", "memory_limit=512M", f.Name())
	cmd.Dir = w.Root
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("php: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	if s := stderr.String(); strings.Contains(s, "Fatal error") || strings.Contains(s, "Parse error") {
		return stdout.String(), fmt.Errorf("php failed:\n%s", s)
	}
	return stdout.String(), nil
}

// PHP runs code with WordPress loaded (see RunPHP) and fails tb on errors.
// Create content with wp_insert_post, delete it with wp_delete_post, switch
// plugins and options with WordPress's own functions.
func (w *WordPress) PHP(tb testing.TB, code string) string {
	tb.Helper()
	out, err := w.RunPHP(code)
	if err != nil {
		tb.Fatalf("site %s: %v", w.Root, err)
	}
	return out
}

// install runs WordPress's own installer (wp_install) with php-cli, then
// points siteurl and home at the site's URL.
func (w *WordPress) install() error {
	var b strings.Builder
	b.WriteString(w.phpPrelude(true))
	// The installer mails the admin; there is no mail here.
	b.WriteString("function wp_new_blog_notification() {}\n")
	b.WriteString("require_once ABSPATH . 'wp-admin/includes/upgrade.php';\n")
	fmt.Fprintf(&b, "$r = wp_install( %s, 'admin', 'admin@example.invalid', true, '', wp_slash( %s ) );\n",
		phpString(w.Title), phpString(w.Password))
	b.WriteString("if ( is_wp_error( $r ) || empty( $r['user_id'] ) ) { fwrite( STDERR, 'Fatal error: wp_install failed' ); exit( 1 ); }\n")
	fmt.Fprintf(&b, "update_option( 'siteurl', %s );\nupdate_option( 'home', %s );\n", phpString(w.URL), phpString(w.URL))
	b.WriteString("echo 'installed';\n")
	out, err := w.runPHP(b.String())
	if err != nil {
		return fmt.Errorf("install WordPress in %s: %w", w.Root, err)
	}
	if !strings.Contains(out, "installed") {
		return fmt.Errorf("install WordPress in %s: the installer printed %q", w.Root, out)
	}
	return nil
}

// addFixture adds a plugin (activated), a must-use plugin, uploads, a
// drop-in, root files and a custom root folder, which a backup takes; and a
// cache folder, a CACHEDIR.TAG folder, both donotbackup forms and a nested
// install, which it must skip. The theme is Debian's twentytwentythree
// (real files, the active theme).
func (w *WordPress) addFixture() error {
	photo := make([]byte, 200<<10)
	rand.Read(photo)
	fx := WordPressFixture
	files := map[string][]byte{
		fx.Plugin: []byte(`<?php
/**
 * Plugin Name: SV Notes
 * Description: sitevault's test plugin: prints a marker in every page's footer.
 * Version: 1.0
 */
add_action( 'wp_footer', function () { echo '<!-- ` + fx.PluginMarker + ` -->'; } );
`),
		fx.PluginDir + "/readme.txt":                     []byte("=== SV Notes ===\nA test plugin.\n"),
		fx.MUPlugin:                                      []byte("<?php\n// sitevault test must-use plugin\ndefine( 'SV_MU_LOADED', true );\n"),
		fx.Upload:                                        photo,
		"wp-content/uploads/2024/05/notes.txt":           []byte("an upload\n"),
		fx.DropIn:                                        []byte("<?php\n// drop-in: shown when the database is down\necho 'Database is down.';\n"),
		fx.RootFile:                                      []byte("User-agent: *\nDisallow: /wp-admin/\n"),
		fx.CustomFolderFile:                              []byte(`<svg xmlns="http://www.w3.org/2000/svg"/>`),
		"shop-assets/css/shop.css":                       []byte("body { color: #333 }\n"),
		fx.Cache + "/page/index.html":                    []byte("<html>cached page</html>"),
		fx.CacheDirTag + "/CACHEDIR.TAG":                 []byte("Signature: 8a477f597d28d172789f06886806bc55\n# thumbnails cache\n"),
		fx.CacheDirTag + "/t.jpg":                        []byte("thumb"),
		fx.DoNotBackup + "/secret.txt":                   []byte("not for backups"),
		fx.DoNotBackupMarked + "/.donotbackup":           nil,
		fx.DoNotBackupMarked + "/big.bin":                []byte("private data"),
		fx.NestedInstall + "/wp-config.php":              []byte("<?php // the staging copy's own config\n"),
		fx.NestedInstall + "/wp-load.php":                []byte("<?php\n"),
		fx.NestedInstall + "/wp-includes/version.php":    []byte("<?php $wp_version = '6.1.9';\n"),
		fx.NestedInstall + "/wp-content/uploads/old.jpg": []byte("staging upload"),
	}
	for name, content := range files {
		p := filepath.Join(w.Root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, content, 0o644); err != nil {
			return err
		}
	}
	out, err := w.RunPHP(`require_once ABSPATH . 'wp-admin/includes/plugin.php';
$r = activate_plugin( 'sv-notes/sv-notes.php' );
if ( is_wp_error( $r ) ) { fwrite( STDERR, 'Fatal error: ' . $r->get_error_message() ); exit( 1 ); }
echo get_option( 'stylesheet' );`)
	if err != nil {
		return fmt.Errorf("activate the fixture plugin: %w", err)
	}
	if strings.TrimSpace(out) != filepath.Base(fx.Theme) {
		return fmt.Errorf("the active theme is %q, want %s", out, filepath.Base(fx.Theme))
	}
	return nil
}

// CreatePost publishes a post with WordPress's wp_insert_post and returns
// its id.
func (w *WordPress) CreatePost(tb testing.TB, title, content string) int {
	tb.Helper()
	out := w.PHP(tb, fmt.Sprintf(`$id = wp_insert_post( array( 'post_title' => wp_slash( %s ), 'post_content' => wp_slash( %s ),
	'post_status' => 'publish', 'post_author' => 1 ), true );
if ( is_wp_error( $id ) ) { fwrite( STDERR, 'Fatal error: ' . $id->get_error_message() ); exit( 1 ); }
echo $id;`, phpString(title), phpString(content)))
	id, err := strconv.Atoi(strings.TrimSpace(out))
	if err != nil {
		tb.Fatalf("wp_insert_post printed %q", out)
	}
	return id
}

// DeletePost deletes a post for good with wp_delete_post.
func (w *WordPress) DeletePost(tb testing.TB, id int) {
	tb.Helper()
	out := w.PHP(tb, fmt.Sprintf("echo wp_delete_post( %d, true ) ? 'deleted' : 'failed';", id))
	if out != "deleted" {
		tb.Fatalf("wp_delete_post(%d): %s", id, out)
	}
}

// Serve starts `php -S` on the site's port with the root as document root
// (WordPress's plain permalinks need no router), waits until it accepts
// connections and returns the site's URL. It is stopped when tb ends or by
// StopServe.
func (w *WordPress) Serve(tb testing.TB) string {
	tb.Helper()
	if err := w.StartServe(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(w.StopServe)
	return w.URL
}

// StartServe is Serve without a testing.TB.
func (w *WordPress) StartServe() error {
	if w.serve != nil {
		return nil
	}
	addr := "127.0.0.1:" + strconv.Itoa(w.Port)
	cmd := exec.Command(LookPath("php"), "-d", "display_errors=0", "-S", addr, "-t", w.Root)
	cmd.Dir = w.Root
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	log := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start php -S: %w", err)
	}
	w.serve, w.done = cmd, make(chan struct{})
	go func(done chan struct{}) { cmd.Wait(); close(done) }(w.done)
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-w.done:
			w.serve = nil
			return fmt.Errorf("php -S %s exited: %s", addr, log.String())
		default:
		}
		if time.Now().After(deadline) {
			w.StopServe()
			return fmt.Errorf("php -S %s: not accepting connections after 15s: %s", addr, log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// StopServe stops the server Serve started (and waits until the port is
// free again), if any.
func (w *WordPress) StopServe() {
	if w.serve == nil {
		return
	}
	syscall.Kill(-w.serve.Process.Pid, syscall.SIGTERM)
	select {
	case <-w.done:
	case <-time.After(10 * time.Second):
		syscall.Kill(-w.serve.Process.Pid, syscall.SIGKILL)
		<-w.done
	}
	w.serve = nil
}

// Get fetches path (e.g. "/" or "/?p=12") from the running server and
// returns the status code and body. Redirects are not followed.
func (w *WordPress) Get(tb testing.TB, path string) (status int, body string) {
	tb.Helper()
	client := &http.Client{
		Timeout:       time.Minute,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Get(w.URL + path)
	if err != nil {
		tb.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("GET %s: %v", path, err)
	}
	return resp.StatusCode, string(b)
}

// RootDB opens a pool as root on the site's database.
func (w *WordPress) RootDB(tb testing.TB) *sql.DB {
	tb.Helper()
	return w.mdb.RootDB(tb, w.DB.Name)
}

// Exec runs statements as root on the site's database.
func (w *WordPress) Exec(tb testing.TB, queries ...string) {
	tb.Helper()
	db := w.RootDB(tb)
	for _, q := range queries {
		if _, err := db.Exec(q); err != nil {
			tb.Fatalf("%s: %v", q, err)
		}
	}
}

// Tables lists the site's database tables whose names begin with the prefix.
func (w *WordPress) Tables(tb testing.TB) []string {
	tb.Helper()
	return w.tables(tb, true)
}

// AllTables lists every table in the site's database.
func (w *WordPress) AllTables(tb testing.TB) []string {
	tb.Helper()
	return w.tables(tb, false)
}

func (w *WordPress) tables(tb testing.TB, prefixed bool) []string {
	tb.Helper()
	rows, err := w.RootDB(tb).Query("SELECT table_name FROM information_schema.tables WHERE table_schema = ? ORDER BY table_name", w.DB.Name)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			tb.Fatal(err)
		}
		if !prefixed || strings.HasPrefix(n, w.Prefix) {
			names = append(names, n)
		}
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	return names
}

// Checksums returns the server's CHECKSUM TABLE of every table with the
// site's prefix, by table name.
func (w *WordPress) Checksums(tb testing.TB) map[string]string {
	tb.Helper()
	return w.ChecksumTables(tb, w.Tables(tb)...)
}

// ChecksumTables returns CHECKSUM TABLE of the named tables; a missing
// table is reported as "missing".
func (w *WordPress) ChecksumTables(tb testing.TB, tables ...string) map[string]string {
	tb.Helper()
	db := w.RootDB(tb)
	sums := map[string]string{}
	for _, t := range tables {
		var name string
		var sum sql.NullString
		err := db.QueryRow("CHECKSUM TABLE `"+strings.ReplaceAll(t, "`", "``")+"`").Scan(&name, &sum)
		if err != nil {
			tb.Fatalf("CHECKSUM TABLE %s: %v", t, err)
		}
		if sum.Valid {
			sums[t] = sum.String
		} else {
			sums[t] = "missing"
		}
	}
	return sums
}

// FileHashes returns the SHA-256 of every regular file at or under the
// given paths (relative to the root, slash-separated; none means the whole
// root), by relative path. A path that does not exist maps to "missing".
// Symbolic links are hashed as "link:" + target.
func (w *WordPress) FileHashes(tb testing.TB, paths ...string) map[string]string {
	tb.Helper()
	if len(paths) == 0 {
		paths = []string{"."}
	}
	hashes := map[string]string{}
	for _, p := range paths {
		start := filepath.Join(w.Root, filepath.FromSlash(p))
		if _, err := os.Lstat(start); errors.Is(err, fs.ErrNotExist) {
			hashes[p] = "missing"
			continue
		}
		err := filepath.WalkDir(start, func(f string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(w.Root, f)
			rel = filepath.ToSlash(rel)
			switch {
			case d.Type()&fs.ModeSymlink != 0:
				target, err := os.Readlink(f)
				if err != nil {
					return err
				}
				hashes[rel] = "link:" + target
			case d.Type().IsRegular():
				h, err := hashFile(f)
				if err != nil {
					return err
				}
				hashes[rel] = h
			}
			return nil
		})
		if err != nil {
			tb.Fatalf("hash %s: %v", p, err)
		}
	}
	return hashes
}

func hashFile(name string) (string, error) {
	f, err := os.Open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// DiffMaps describes how got differs from want, one line per key, sorted;
// "" means equal. Tests use it for checksums and file hashes.
func DiffMaps(want, got map[string]string) string {
	keys := map[string]bool{}
	for k := range want {
		keys[k] = true
	}
	for k := range got {
		keys[k] = true
	}
	var sorted []string
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	var b strings.Builder
	for _, k := range sorted {
		wv, wok := want[k]
		gv, gok := got[k]
		switch {
		case !wok:
			fmt.Fprintf(&b, "  %s: unexpected (%s)\n", k, short(gv))
		case !gok:
			fmt.Fprintf(&b, "  %s: absent, want %s\n", k, short(wv))
		case wv != gv:
			fmt.Fprintf(&b, "  %s: %s, want %s\n", k, short(gv), short(wv))
		}
	}
	return b.String()
}

func short(s string) string {
	if len(s) > 16 {
		return s[:16] + "…"
	}
	return s
}

func wpRandomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
