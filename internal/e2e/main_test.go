package e2e_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sitevault/sitevault/internal/testsrv"
)

// The package's shared servers and binary, set up once by TestMain.
var (
	bin      string           // the sitevault binary built from ./cmd/sitevault
	mariadb  *testsrv.MariaDB // nil if MariaDB is missing (see missing)
	sshd     *testsrv.SSHD    // nil if sshd is missing
	setupErr error            // building or starting something failed: every test fails with it
	skipAll  string           // -short: every test skips with this reason
	missing  []string         // servers that are not installed
)

func TestMain(m *testing.M) { os.Exit(runMain(m)) }

func runMain(m *testing.M) int {
	flag.Parse()
	if testing.Short() {
		skipAll = "end-to-end tests build sitevault and start MariaDB, sshd and PHP (not with -short)"
		return m.Run()
	}
	tmp, err := os.MkdirTemp("", "sitevault-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)

	bin = filepath.Join(tmp, "sitevault")
	build := exec.Command("go", "build", "-o", bin, "./cmd/sitevault")
	build.Dir = testsrv.ModuleRoot()
	if out, err := build.CombinedOutput(); err != nil {
		setupErr = fmt.Errorf("go build ./cmd/sitevault: %v\n%s", err, out)
		return m.Run()
	}

	db, stopDB, err := testsrv.StartMariaDBMain()
	switch {
	case errors.Is(err, testsrv.ErrMariaDBMissing):
		missing = append(missing, "MariaDB")
	case err != nil:
		setupErr = err
		return m.Run()
	default:
		mariadb = db
		defer stopDB()
	}
	s, err := testsrv.StartSSHDMain()
	switch {
	case errors.Is(err, testsrv.ErrNotInstalled):
		missing = append(missing, "sshd")
	case err != nil:
		setupErr = err
		return m.Run()
	default:
		sshd = s
		defer sshd.Stop()
	}
	return m.Run()
}

// needServers skips (with -short) or fails a test that cannot run.
func needServers(t *testing.T) {
	t.Helper()
	if skipAll != "" {
		t.Skip(skipAll)
	}
	if setupErr != nil {
		t.Fatal(setupErr)
	}
	if mariadb == nil {
		testsrv.Missing(t, "MariaDB", "apt-get install mariadb-server mariadb-client")
	}
}

// cli runs the built binary with its own data home (and so its own
// embedded repository), opened by the key file init generated.
type cli struct {
	t    *testing.T
	home string
	env  map[string]string
}

// result is what one run of the binary did.
type result struct {
	args           []string
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("sitevault %s: exit code %d\nstdout:\n%s\nstderr:\n%s", strings.Join(r.args, " "), r.code, r.stdout, r.stderr)
}

// newCLI returns a cli with a fresh data home and an initialized
// embedded repository opened by the key file init generates: the
// defaults a user gets. (TestExitCodes and TestGeneratedKeyFileSlot give
// passwords in SITEVAULT_PASSWORD.)
func newCLI(t *testing.T) *cli {
	t.Helper()
	home := t.TempDir()
	c := &cli{t: t, home: home, env: map[string]string{
		"SITEVAULT_HOME": filepath.Join(home, "sitevault"),
		"HOME":           home, // no ~/.ssh of the user running the tests
		"TZ":             "UTC",
	}}
	c.ok("init")
	return c
}

// keyFilePassword returns the password in c's generated key file, for a
// process that opens the repository by another path.
func (c *cli) keyFilePassword() string {
	c.t.Helper()
	b, err := os.ReadFile(filepath.Join(c.env["SITEVAULT_HOME"], "repo.key"))
	if err != nil {
		c.t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// run runs sitevault with args; it never fails the test by itself.
func (c *cli) run(args ...string) result {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SITEVAULT_") && !strings.HasPrefix(kv, "HOME=") && !strings.HasPrefix(kv, "TZ=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	for k, v := range c.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdin = nil
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := result{args: args, stdout: stdout.String(), stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
	default:
		c.t.Fatalf("run sitevault %s: %v", strings.Join(args, " "), err)
	}
	c.t.Logf("sitevault %s → %d (%s)", strings.Join(args, " "), r.code, time.Since(start).Round(time.Millisecond))
	return r
}

// ok runs sitevault and fails the test unless it exits with 0; it returns stdout.
func (c *cli) ok(args ...string) string {
	c.t.Helper()
	r := c.run(args...)
	if r.code != 0 {
		c.t.Fatalf("%v", r)
	}
	return r.stdout
}

// addSite registers w as name, locally or over SSH (as cmd_site.go does it:
// the host key is shown and accepted with --yes, the client key given with
// --identity).
func (c *cli) addSite(name string, w *testsrv.WordPress, viaSSH bool) {
	c.t.Helper()
	if !viaSSH {
		c.ok("site", "add", name, "--path", w.Root)
		return
	}
	if sshd == nil {
		testsrv.Missing(c.t, "OpenSSH server (sshd)", "apt-get install openssh-server")
	}
	out := c.ok("site", "add", name, "--ssh", fmt.Sprintf("%s@%s", sshd.User, sshd.Addr),
		"--path", w.Root, "--identity", sshd.ClientKeyFile, "--yes")
	if !strings.Contains(out, sshd.HostKeyFingerprint()) {
		c.t.Errorf("site add over SSH does not show the host key's fingerprint %s:\n%s", sshd.HostKeyFingerprint(), out)
	}
}

// siteFiles is the list of files a backup of the site takes, as `site
// files` prints it.
func (c *cli) siteFiles(name string) []string {
	c.t.Helper()
	var files []string
	for _, l := range strings.Split(c.ok("site", "files", name), "\n") {
		if l != "" {
			files = append(files, l)
		}
	}
	sort.Strings(files)
	return files
}

// point is one restore point as `points --json` lists it.
type point struct {
	ID      string
	Time    time.Time
	Trigger string
}

// points runs `points SITE --json [extra…]` and reads the points in the
// order printed. It accepts a JSON array of points, or an object holding
// one (e.g. {"points": […]}), or days each holding points.
func (c *cli) points(name string, extra ...string) []point {
	c.t.Helper()
	out := c.ok(append([]string{"points", name, "--json"}, extra...)...)
	pts, err := parsePoints([]byte(out))
	if err != nil {
		c.t.Fatalf("points --json: %v\n%s", err, out)
	}
	return pts
}

// createTables adds a table without the prefix, which a backup must not
// take, and a prefixed table with no primary or unique key, which it takes
// whole; both with rows.
func createTables(t *testing.T, w *testsrv.WordPress) (noPrefix, noKey string) {
	t.Helper()
	noPrefix, noKey = "sv_other_stats", w.Prefix+"sv_nokey"
	w.Exec(t,
		"CREATE TABLE `"+noPrefix+"` (id INT PRIMARY KEY, hits INT)",
		"INSERT INTO `"+noPrefix+"` VALUES (1, 10), (2, 20)",
		"CREATE TABLE `"+noKey+"` (line VARCHAR(100), at DATETIME)",
		"INSERT INTO `"+noKey+"` VALUES ('a log line', NOW()), ('another', NOW())",
	)
	return noPrefix, noKey
}

// backedUpTables lists the tables the rules say a backup takes: the prefix
// and a primary or unique key, from the server's information_schema.
func backedUpTables(t *testing.T, w *testsrv.WordPress) []string {
	t.Helper()
	// Every base table with the prefix: those with a key in key-range
	// segments, those without one whole.
	rows, err := w.RootDB(t).Query(`SELECT table_name FROM information_schema.tables
		WHERE table_schema = ? AND table_type IN ('BASE TABLE', 'SYSTEM VERSIONED') ORDER BY table_name`, w.DB.Name)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(n, w.Prefix) {
			names = append(names, n)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return names
}

// content is what a test site holds besides the fixture: posts created
// with wp_insert_post.
type content struct {
	posts  map[int]string // id → title
	tables []string       // backed-up tables
	files  []string       // backed-up files
}

// newSite starts a WordPress with the fixture, two posts, a table without
// the prefix (skipped) and one without a key (taken whole).
func newSite(t *testing.T) (*testsrv.WordPress, *content) {
	t.Helper()
	w := testsrv.StartWordPress(t, mariadb, testsrv.WordPressOptions{Title: "E2E " + t.Name()})
	c := &content{posts: map[int]string{}}
	for i, title := range []string{"The first post of " + t.Name(), "A second post, with ünïcode ✓"} {
		id := w.CreatePost(t, title, strings.Repeat("Some words of post "+strconv.Itoa(i)+". ", 40))
		c.posts[id] = title
	}
	createTables(t, w)
	c.tables = backedUpTables(t, w)
	return w, c
}

// wreck does what the issue lists: deletes the posts, drops a table,
// creates a new prefixed table, deletes a plugin folder, edits a theme
// file, breaks wp-config.php and adds an unrelated file. It returns the
// dropped and the new table and the unrelated file.
func wreck(t *testing.T, w *testsrv.WordPress, c *content) (dropped, added, unrelated string) {
	t.Helper()
	for id := range c.posts {
		w.DeletePost(t, id)
	}
	dropped, added = w.Prefix+"comments", w.Prefix+"intruder"
	w.Exec(t, "DROP TABLE `"+dropped+"`",
		"CREATE TABLE `"+added+"` (id INT PRIMARY KEY, payload TEXT)",
		"INSERT INTO `"+added+"` VALUES (1, 'not from any backup')")
	fx := testsrv.WordPressFixture
	must(t, os.RemoveAll(filepath.Join(w.Root, fx.PluginDir)))
	appendFile(t, filepath.Join(w.Root, fx.ThemeFile), "\n/* defaced */ body { display: none }\n")
	must(t, os.WriteFile(filepath.Join(w.Root, "wp-config.php"), []byte("<?php this is not PHP;\n"), 0o640))
	unrelated = "wp-content/uploads/unrelated-after-backup.txt"
	must(t, os.WriteFile(filepath.Join(w.Root, unrelated), []byte("made after the backup\n"), 0o644))
	return dropped, added, unrelated
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func appendFile(t *testing.T, name, text string) {
	t.Helper()
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_APPEND, 0)
	must(t, err)
	_, err = f.WriteString(text)
	must(t, err)
	must(t, f.Close())
}

// sameMaps fails t (with the differences) unless got equals want.
func sameMaps(t *testing.T, what string, want, got map[string]string) {
	t.Helper()
	if d := testsrv.DiffMaps(want, got); d != "" {
		t.Errorf("%s differ:\n%s", what, d)
	}
}

// checkServes serves w with php -S and checks that the home page and each
// post answer 200 with the post's title (and the fixture plugin's marker).
func checkServes(t *testing.T, w *testsrv.WordPress, posts map[int]string) {
	t.Helper()
	w.Serve(t)
	defer w.StopServe()
	status, body := w.Get(t, "/")
	if status != 200 {
		t.Errorf("GET / = %d, want 200\n%.3000s", status, body)
	}
	for id, title := range posts {
		if !strings.Contains(body, title) {
			t.Errorf("the home page does not show the post %q\n%.3000s", title, body)
		}
		status, body := w.Get(t, "/?p="+strconv.Itoa(id))
		if status != 200 || !strings.Contains(body, title) {
			t.Errorf("GET /?p=%d = %d; want 200 and a page showing %q\n%.3000s", id, status, title, body)
		}
	}
	if !strings.Contains(body, testsrv.WordPressFixture.PluginMarker) {
		t.Errorf("the home page does not show the fixture plugin's marker: the plugin is not active")
	}
}

// today is the day the points of a test belong to (the binary runs in UTC).
func today() string { return time.Now().UTC().Format("2006-01-02") }
