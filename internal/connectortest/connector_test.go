package connectortest

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sitevault/sitevault/internal/testsrv"
)

const pluginFile = "sitevault-connector/sitevault-connector.php"

// connectorDir is connector/ at the repository's root.
func connectorDir(t *testing.T) string {
	t.Helper()
	root := testsrv.ModuleRoot()
	if root == "" {
		t.Fatal("cannot find the repository's root (go.mod)")
	}
	return filepath.Join(root, "connector")
}

func needPHP(t *testing.T) string {
	t.Helper()
	php := testsrv.LookPath("php")
	if php == "" {
		testsrv.Missing(t, "PHP", "apt-get install php-cli")
	}
	return php
}

// site is a WordPress with the plugin installed from the built zip.
type site struct {
	t   *testing.T
	w   *testsrv.WordPress
	dir string // connector/
	env []string
}

// step runs connector/tests/steps.php with args and decodes what it printed.
func (s *site) step(env []string, args ...string) map[string]any {
	s.t.Helper()
	out := s.stepRaw(env, args...)
	var v map[string]any
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &v); err != nil {
		s.t.Fatalf("step %v printed %q: %v", args, out, err)
	}
	return v
}

func (s *site) stepRaw(env []string, args ...string) string {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, testsrv.LookPath("php"), append([]string{"-d", "display_errors=stderr", "-d", "log_errors=0",
		"-d", "error_reporting=E_ALL & ~E_DEPRECATED", "-d", "memory_limit=512M", filepath.Join(s.dir, "tests", "steps.php")}, args...)...)
	cmd.Env = append(append(os.Environ(), "SV_WP_ROOT="+s.w.Root, "SV_WP_HOST=127.0.0.1:"+strconv.Itoa(s.w.Port)), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil || strings.Contains(stderr.String(), "Fatal error") || strings.Contains(stderr.String(), "Warning") ||
		strings.Contains(stderr.String(), "Notice") {
		s.t.Fatalf("step %v: %v\nstdout:\n%s\nstderr:\n%s", args, err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// stepFails runs a step that is meant to die (a fatal error) and returns its output.
func (s *site) stepFails(args ...string) (string, error) {
	s.t.Helper()
	cmd := exec.Command(testsrv.LookPath("php"), append([]string{"-d", "display_errors=stderr", "-d", "log_errors=0",
		filepath.Join(s.dir, "tests", "steps.php")}, args...)...)
	cmd.Env = append(os.Environ(), "SV_WP_ROOT="+s.w.Root, "SV_WP_HOST=127.0.0.1:"+strconv.Itoa(s.w.Port))
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// install builds the zip with make's command and unpacks it into the
// site's plugins folder, as Plugins → Add New → Upload would.
func (s *site) install() {
	s.t.Helper()
	zipPath := filepath.Join(s.t.TempDir(), "sitevault-connector.zip")
	out, err := exec.Command(testsrv.LookPath("php"), filepath.Join(s.dir, "build.php"), zipPath).CombinedOutput()
	if err != nil {
		s.t.Fatalf("build the zip: %v\n%s", err, out)
	}
	zr, err := zip.OpenReader(zipPath)
	if err != nil {
		s.t.Fatal(err)
	}
	defer zr.Close()
	plugins := filepath.Join(s.w.Root, "wp-content", "plugins")
	seen := false
	for _, f := range zr.File {
		if !strings.HasPrefix(f.Name, "sitevault-connector/") {
			s.t.Fatalf("the zip holds %s outside the plugin's folder", f.Name)
		}
		seen = seen || f.Name == pluginFile
		dst := filepath.Join(plugins, filepath.FromSlash(f.Name))
		if f.FileInfo().IsDir() {
			os.MkdirAll(dst, 0o755)
			continue
		}
		os.MkdirAll(filepath.Dir(dst), 0o755)
		rc, err := f.Open()
		if err != nil {
			s.t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			s.t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			s.t.Fatal(err)
		}
	}
	if !seen {
		s.t.Fatalf("the zip has no %s", pluginFile)
	}
}

// define adds a define() to wp-config.php, before WordPress loads.
func (s *site) define(name, value string) {
	s.t.Helper()
	p := filepath.Join(s.w.Root, "wp-config.php")
	b, err := os.ReadFile(p)
	if err != nil {
		s.t.Fatal(err)
	}
	marker := "/* That's all, stop editing!"
	line := fmt.Sprintf("define( '%s', '%s' );\n", name, strings.ReplaceAll(value, "'", `\'`))
	if !bytes.Contains(b, []byte(marker)) {
		s.t.Fatal("wp-config.php has no \"That's all\" line")
	}
	b = bytes.Replace(b, []byte(marker), []byte(line+marker), 1)
	if err := os.WriteFile(p, b, 0o640); err != nil {
		s.t.Fatal(err)
	}
}

// outbox is what the steps report about the outbox.
type outbox struct {
	Rows []struct {
		Name      string  `json:"name"`
		Count     int     `json:"count"`
		Claimed   int     `json:"claimed"`
		Event     event   `json:"event"`
		FirstTime float64 `json:"first_time"`
		DB        string  `json:"db"`
	} `json:"rows"`
	Bytes int `json:"bytes"`
	State struct {
		Attempt      int    `json:"attempt"`
		NextAttempt  int64  `json:"next_attempt"`
		Dropped      int    `json:"dropped"`
		DroppedTotal int    `json:"dropped_total"`
		FullBackup   bool   `json:"full_backup"`
		LastSent     int64  `json:"last_sent"`
		LastCount    int    `json:"last_count"`
		LastError    string `json:"last_error"`
	} `json:"state"`
	Connection map[string]any `json:"connection"`
	CronNext   any            `json:"cron_next"`
	Now        int64          `json:"now"`
}

func (s *site) outbox(env ...string) outbox {
	s.t.Helper()
	v := s.step(env, "outbox")
	b, _ := json.Marshal(v)
	var o outbox
	if err := json.Unmarshal(b, &o); err != nil {
		s.t.Fatalf("outbox %s: %v", b, err)
	}
	return o
}

func (s *site) send() string {
	s.t.Helper()
	return fmt.Sprint(s.step(nil, "send")["outcome"])
}

// TestConnector installs the plugin from its zip in a real WordPress and
// drives it through pairing, events, coalescing, backoff, the lock, key
// rotation, the outbox's bound, uninstall and the mu-plugin loader, against
// a receiver that checks every request as docs/connector-protocol.md says.
func TestConnector(t *testing.T) {
	if testing.Short() {
		t.Skip("starts MariaDB and WordPress")
	}
	needPHP(t)
	m := testsrv.StartMariaDB(t)
	w := testsrv.StartWordPress(t, m, testsrv.WordPressOptions{Bare: true, Prefix: "svc_"})
	s := &site{t: t, w: w, dir: connectorDir(t)}
	rcv := newReceiver(t, "shop")
	s.install()

	if v := s.step(nil, "activate"); v["active"] != true {
		t.Fatalf("activate: %v", v)
	}

	// Unpaired, nothing is recorded.
	s.step(nil, "publish", "Before pairing")
	if o := s.outbox(); len(o.Rows) != 0 || o.Connection != nil {
		t.Fatalf("unpaired, the outbox holds %d events (connection %v)", len(o.Rows), o.Connection)
	}

	// Pairing codes: the service's URL must be HTTPS or loopback; a damaged code is refused here.
	enc := func(v map[string]string) string {
		j, _ := json.Marshal(v)
		return "svp1." + base64.RawURLEncoding.EncodeToString(j)
	}
	for code, want := range map[string]string{
		enc(map[string]string{"u": "https://vault.example/", "s": "shop", "c": "x"}): "https://vault.example",
		enc(map[string]string{"u": "http://vault.example", "s": "shop", "c": "x"}):   "neither HTTPS nor on this machine",
		"svp1.bm90IGpzb24":       "damaged",
		"sitevault-pairing-code": "not a sitevault pairing code",
	} {
		v := s.step(nil, "decode", code)
		if got := fmt.Sprint(v); !strings.Contains(got, want) {
			t.Errorf("decode %s: %s, want %q", code, got, want)
		}
	}

	// A code the service refuses is not tried again.
	refusedCode := []string{"SV_CRON=1", "SV_PAIRING_CODE=" + enc(map[string]string{"u": rcv.srv.URL, "s": "shop", "c": "used"})}
	s.step(refusedCode, "init")
	s.step(refusedCode, "init")
	if o := s.outbox(); o.Connection != nil || len(rcv.pairs) != 1 || !strings.Contains(o.State.LastError, "refused the pairing code") {
		t.Fatalf("a refused code: connection %v, %d pair requests, last error %q", o.Connection, len(rcv.pairs), o.State.LastError)
	}
	rcv.pairs = nil

	// Pairing with the constant, on the next cron run.
	s.define("SITEVAULT_PAIRING_CODE", rcv.code())
	s.step([]string{"SV_CRON=1"}, "init")
	o := s.outbox()
	if o.Connection == nil || o.Connection["site"] != "shop" || o.Connection["key_id"] != "k1" {
		t.Fatalf("not paired with the constant: connection %v, state %+v", o.Connection, o.State)
	}
	if o.CronNext == false || o.CronNext == nil {
		t.Errorf("paired, but the send event is not scheduled")
	}
	if len(rcv.pairs) != 1 || rcv.pairs[0]["site_url"] != w.URL || rcv.pairs[0]["plugin_version"] != "1.0.0" ||
		rcv.pairs[0]["wp_version"] == "" {
		t.Fatalf("pair requests: %v", rcv.pairs)
	}
	s.step([]string{"SV_CRON=1"}, "init")
	if len(rcv.pairs) != 1 {
		t.Errorf("paired, the constant was used again: %d pair requests", len(rcv.pairs))
	}

	t.Run("publish", func(t *testing.T) {
		s.t = t
		s.step(nil, "publish", "Hello “sitevault”")
		bs := rcv.take()
		es := find(all(bs), "post__published")
		if len(bs) != 1 || len(es) != 1 {
			t.Fatalf("want one batch with one post__published, got %d batches: %+v", len(bs), bs)
		}
		e := es[0]
		if e.Actor.Kind != "user" || e.Actor.ID != 1 || e.Actor.Name != "admin" || e.Actor.Role != "administrator" {
			t.Errorf("actor %+v", e.Actor)
		}
		if e.Summary != "Post “Hello “sitevault”” was published" || e.Object.Type != "post" || e.Object.Name != "Hello “sitevault”" {
			t.Errorf("summary %q, object %+v", e.Summary, e.Object)
		}
		// The rows it changed: the post, and its meta by post_id.
		if want := fmt.Sprintf("[{svc_posts  [%s]} {svc_postmeta post_id [%[1]s]}]", e.Object.ID); fmt.Sprint(e.DB) != want {
			t.Errorf("db %v, want %s", e.DB, want)
		}
		if !bs[0].Gzip || bs[0].KeyID != "k1" || e.Count != 1 {
			t.Errorf("gzip %v, key %s, count %d", bs[0].Gzip, bs[0].KeyID, e.Count)
		}
		if o := s.outbox(); len(o.Rows) != 0 || o.State.LastCount != 1 || o.State.LastSent == 0 {
			t.Errorf("after the batch was acknowledged: %d rows, state %+v", len(o.Rows), o.State)
		}
	})

	t.Run("coalescing", func(t *testing.T) {
		s.t = t
		id := s.step(nil, "publish", "Edited ten times", "1", "nosend")["ids"].([]any)[0].(float64)
		s.step(nil, "update", strconv.Itoa(int(id)), "10")
		o := s.outbox()
		var updated []int
		for _, r := range o.Rows {
			if r.Name == "post__updated" {
				updated = append(updated, r.Count)
			}
		}
		if len(updated) != 1 || updated[0] != 10 {
			t.Fatalf("ten saves in a minute: want one post__updated row with count 10, got counts %v", updated)
		}
		if got := s.send(); got != "sent" {
			t.Fatalf("send: %s", got)
		}
		es := find(all(rcv.take()), "post__updated")
		if len(es) != 1 || es[0].Count != 10 || !strings.Contains(string(es[0].Details), "first_time") {
			t.Fatalf("received post__updated: %+v", es)
		}
		if want := fmt.Sprintf("[{svc_posts  [%d]} {svc_postmeta post_id [%[1]d]}]", int(id)); fmt.Sprint(es[0].DB) != want {
			t.Errorf("coalesced db %v, want %s", es[0].DB, want)
		}
	})

	t.Run("queries", func(t *testing.T) {
		// The plugin's own queries in a change request like bench/realtime's (SAVEQUERIES; see
		// the churn step): the first change of a post, then a repeat in a second request that
		// coalesces into its row. Before issue 12: 6 and 5 (the pairing, the schema version,
		// a coalescing SELECT, SHOW FULL COLUMNS for a non-ASCII payload, the INSERT or UPDATE,
		// a COUNT for the bound).
		s.t = t
		ids := s.step(nil, "publish", "Churned", "1", "nosend")["ids"].([]any)
		id := strconv.Itoa(int(ids[0].(float64)))
		env := []string{"SV_SAVEQUERIES=1"}
		for _, round := range []struct {
			name string
			max  float64
		}{{"first change", 4}, {"repeat", 2}} { // the first: + 1 when it checks the bound (1 in 20)
			v := s.step(env, "churn", id)
			t.Logf("%s: %v plugin queries of %v: %v", round.name, v["plugin_queries"], v["queries"], v["sql"])
			if n, _ := v["plugin_queries"].(float64); n > round.max || n == 0 {
				t.Errorf("%s: %v plugin queries, want 1–%v: %v", round.name, n, round.max, v["sql"])
			}
		}
		o := s.outbox()
		var counts []int
		for _, r := range o.Rows {
			if r.Name == "post__updated" {
				counts = append(counts, r.Count)
			}
		}
		if len(counts) != 1 || counts[0] != 2 {
			t.Errorf("two change requests of one post: post__updated rows with counts %v, want one with 2", counts)
		}
		s.send()
		rcv.take()
	})

	t.Run("coalescing across requests", func(t *testing.T) {
		// Each request its own process: the repeats coalesce in the table, their db merged there.
		s.t = t
		s.step(nil, "record", "test__changed", "7", "svc_posts", "1")
		s.step(nil, "record", "test__changed", "7", "svc_posts", "2")
		s.step(nil, "record", "test__changed", "7", "svc_posts", "2")
		s.step(nil, "record", "test__changed", "8", "svc_posts", "3")
		o := s.outbox()
		if len(o.Rows) != 2 || o.Rows[0].Count != 3 || o.Rows[1].Count != 1 {
			t.Fatalf("three requests on object 7, one on 8: want rows counted 3 and 1, got %+v", o.Rows)
		}
		if got := s.send(); got != "sent" {
			t.Fatalf("send: %s", got)
		}
		es := find(all(rcv.take()), "test__changed")
		if len(es) != 2 || es[0].Count != 3 || es[0].Object.ID != "7" || es[1].Count != 1 {
			t.Fatalf("received %+v", es)
		}
		if want := "[{svc_posts  [1 2]}]"; fmt.Sprint(es[0].DB) != want {
			t.Errorf("merged db %v, want %s", es[0].DB, want)
		}
		var d map[string]any
		json.Unmarshal(es[0].Details, &d)
		if first, _ := d["first_time"].(float64); first == 0 || first > es[0].Time || d["n"] != 1.0 {
			t.Errorf("coalesced details %s (time %v): want first_time before time", es[0].Details, es[0].Time)
		}
		if strings.Contains(string(es[1].Details), "first_time") {
			t.Errorf("an event counted once has a first_time: %s", es[1].Details)
		}
	})

	t.Run("many objects", func(t *testing.T) {
		// One request (an import) changes 450 objects: written out as 200 wait in memory, all kept.
		s.t = t
		v := s.step(nil, "publish", "Imported", "450", "nosend")
		if b, _ := v["buffered"].(float64); b >= 200 {
			t.Errorf("%v events waiting in memory at the end of the request, want < 200", b)
		}
		o := s.outbox()
		seen := map[string]bool{}
		for _, r := range o.Rows {
			if r.Name == "post__published" && r.Count == 1 {
				seen[r.Event.Object.ID] = true
			}
		}
		if len(seen) != 450 || len(o.Rows) != 450 {
			t.Fatalf("450 posts in one request: %d rows, %d distinct post__published", len(o.Rows), len(seen))
		}
		if got := s.send(); got != "sent" {
			t.Fatalf("send: %s", got)
		}
		if es := find(all(rcv.take()), "post__published"); len(es) != 450 {
			t.Fatalf("received %d post__published, want 450", len(es))
		}
	})

	t.Run("old schema", func(t *testing.T) {
		// A row of the outbox's schema 1 is upgraded in place on the next cron run, a repeat
		// coalesces into it, and it is sent with its uuid, count, first time and db.
		s.t = t
		v := s.step(nil, "old-schema", "test__changed", "9")
		s.step([]string{"SV_CRON=1"}, "init") // the next cron run (or admin page) upgrades it
		o := s.outbox()
		if len(o.Rows) != 1 || o.Rows[0].FirstTime != v["first_time"].(float64) || o.Rows[0].DB == "" ||
			o.Rows[0].Event.DB != nil || strings.Contains(string(o.Rows[0].Event.Details), "first_time") {
			t.Fatalf("after the upgrade: %+v", o.Rows)
		}
		s.step(nil, "record", "test__changed", "9", "svc_posts", "102")
		if got := s.send(); got != "sent" {
			t.Fatalf("send: %s", got)
		}
		es := find(all(rcv.take()), "test__changed")
		if len(es) != 1 || es[0].UUID != v["uuid"] || es[0].Count != 4 || es[0].Summary != "Test object 9 changed" {
			t.Fatalf("received %+v, want the old row's uuid %v, counted 3+1", es, v["uuid"])
		}
		if want := "[{svc_posts  [101 102]}]"; fmt.Sprint(es[0].DB) != want {
			t.Errorf("db %v, want %s", es[0].DB, want)
		}
		var d map[string]any
		json.Unmarshal(es[0].Details, &d)
		if first, _ := d["first_time"].(float64); first != v["first_time"].(float64) {
			t.Errorf("details %s: want the old row's first_time %v", es[0].Details, v["first_time"])
		}
	})

	t.Run("fatal", func(t *testing.T) {
		// PHP still runs the shutdown hook after a fatal error: the event recorded before it is kept.
		s.t = t
		out, err := s.stepFails("fatal", "Published, then the request died")
		if err == nil || !strings.Contains(out, "sv_test_undefined_function") {
			t.Fatalf("the fatal step did not die of its fatal error: %v\n%s", err, out)
		}
		o := s.outbox()
		if es := find(eventsOf(o), "post__published"); len(es) != 1 || es[0].Object.Name != "Published, then the request died" {
			t.Fatalf("after a fatal error the outbox holds %v", names(eventsOf(o)))
		}
		s.send()
		rcv.take()
	})

	t.Run("events", func(t *testing.T) {
		s.t = t
		standin, err := os.ReadFile(filepath.Join(s.dir, "tests", "woocommerce-standin.php"))
		if err != nil {
			t.Fatal(err)
		}
		mu := filepath.Join(w.Root, "wp-content", "mu-plugins")
		os.MkdirAll(mu, 0o755)
		if err := os.WriteFile(filepath.Join(mu, "woocommerce-standin.php"), standin, 0o644); err != nil {
			t.Fatal(err)
		}
		defer os.Remove(filepath.Join(mu, "woocommerce-standin.php"))
		s.step(nil, "events")
		if got := s.send(); got != "sent" {
			t.Fatalf("send: %s", got)
		}
		es := all(rcv.take())
		for _, name := range []string{"user__login_failed", "plugin__activated", "plugin__deactivated", "setting__updated",
			"term__created", "term__updated", "comment__created", "comment__approved", "comment__spammed",
			"user__registered", "user__role_changed", "user__deleted", "menu__created", "menu__deleted",
			"attachment__uploaded", "attachment__deleted", "post__trashed", "post__restored", "post__deleted",
			"post__created", "import__started", "import__finished", "woocommerce__order_created",
			"woocommerce__order_status_changed", "woocommerce__order_refunded", "woocommerce__product_created",
			"woocommerce__product_updated", "plugin__deleted", "theme__switched", "theme__deleted",
			"plugin__file_edited", "theme__file_edited", "widget__added", "widget__updated", "user__updated",
			"export__downloaded", "core__updated"} {
			if len(find(es, name)) == 0 {
				t.Errorf("no %s event", name)
			}
		}
		if f := find(es, "user__login_failed"); len(f) > 0 && (f[0].Actor.Kind != "wordpress" || f[0].Object.Name != "admin" ||
			f[0].Summary != "Failed login as “admin”") {
			t.Errorf("failed login: %+v", f[0])
		}
		if a := find(es, "plugin__activated"); len(a) > 0 && (a[0].Object.Name != "Akismet Anti-Spam" || a[0].Actor.Name != "admin") {
			t.Errorf("plugin activated: %+v", a[0])
		}
		if d := find(es, "plugin__deleted"); len(d) > 0 && d[0].Object.Name != "Akismet Anti-Spam" {
			t.Errorf("plugin deleted: the name read before the files went is %q", d[0].Object.Name)
		}
		if d := find(es, "theme__switched"); len(d) < 2 || d[0].Summary != "Theme “SV Test Theme” was activated" {
			t.Errorf("theme switched: %+v", d)
		}
		for _, e := range find(es, "setting__updated") {
			if e.Object.ID != "blogname" {
				t.Errorf("setting %s is not on the allow-list but was recorded", e.Object.ID)
			}
		}
		if o := find(es, "woocommerce__order_status_changed"); len(o) > 0 && o[0].Summary != "Order #501 changed from pending to processing" {
			t.Errorf("order status: %+v", o[0])
		}
		n := 0
		for _, e := range es {
			if e.Object.Name == "Autosaved" {
				n++
				if e.Name != "post__created" {
					t.Errorf("an autosave or revision was recorded: %+v", e)
				}
			}
			if e.Object.Type == "revision" {
				t.Errorf("a revision was recorded: %+v", e)
			}
		}
		if n != 1 {
			t.Errorf("want one event for the draft with an autosave, got %d", n)
		}
	})

	t.Run("backoff", func(t *testing.T) {
		s.t = t
		s.step(nil, "publish", "Busy", "1", "nosend")
		rcv.queue(answer{Status: 503, RetryAfter: "120"})
		// The next attempt is judged against the send's own time span
		// (the machine's clock, which PHP reads too), not the later read
		// of the outbox: a slow PHP start under load must not look like
		// a shorter wait.
		start := time.Now().Unix()
		if got := s.send(); got != "busy" {
			t.Fatalf("send with 503: %s", got)
		}
		end := time.Now().Unix()
		o := s.outbox()
		if next := o.State.NextAttempt; next < start+119 || next > end+121 || len(o.Rows) != 1 || o.Rows[0].Claimed != 0 {
			t.Fatalf("after 503 Retry-After 120: next attempt %d s after the send began (it took %d s), rows %v", next-start, end-start, names(eventsOf(o)))
		}
		before, _ := rcv.stats()
		if got := s.send(); got != "waiting" {
			t.Fatalf("send during Retry-After: %s", got)
		}
		if after, _ := rcv.stats(); after != before {
			t.Fatalf("the plugin sent during Retry-After")
		}
		for attempt, want := range [][2]int64{{30, 38}, {60, 75}, {120, 150}} {
			s.step(nil, "set-state", "next_attempt=0")
			rcv.queue(answer{Status: 500})
			start := time.Now().Unix()
			if got := s.send(); got != "failed" {
				t.Fatalf("send with 500: %s", got)
			}
			end := time.Now().Unix()
			o := s.outbox()
			if next := o.State.NextAttempt; next < start+want[0] || next > end+want[1] || o.State.Attempt != attempt+1 {
				t.Errorf("failure %d: next attempt %d s after the send began (it took %d s; want %d–%d s), attempt %d",
					attempt+1, next-start, end-start, want[0], want[1], o.State.Attempt)
			}
		}
		s.step(nil, "set-state", "next_attempt=0")
		if got := s.send(); got != "sent" {
			t.Fatalf("send once the service is back: %s", got)
		}
		o = s.outbox()
		es := all(rcv.take())
		if len(o.Rows) != 0 || o.State.Attempt != 0 || len(find(es, "post__published")) != 1 {
			t.Fatalf("after recovery: %d rows, attempt %d, received %v", len(o.Rows), o.State.Attempt, names(es))
		}
	})

	t.Run("refused", func(t *testing.T) {
		s.t = t
		s.step(nil, "publish", "Refused", "1", "nosend")
		rcv.queue(answer{Status: 400})
		if got := s.send(); got != "refused" {
			t.Fatalf("send with 400: %s", got)
		}
		o := s.outbox()
		if len(o.Rows) != 1 || o.Rows[0].Name != "sitevault__batch_refused" {
			t.Fatalf("after 400: %v", names(eventsOf(o)))
		}
		s.send()
		if es := all(rcv.take()); len(find(es, "sitevault__batch_refused")) != 1 || len(find(es, "post__published")) != 0 {
			t.Fatalf("received %v", names(es))
		}
	})

	t.Run("lock", func(t *testing.T) {
		s.t = t
		v := s.step(nil, "lock")
		if v["first"] != true || v["second"] != false || v["run_while_held"] != "locked" || v["after_release"] != true {
			t.Fatalf("lock: %v", v)
		}
		// Two requests send at once while the service is slow: one batch.
		s.step(nil, "publish", "Concurrent", "1", "nosend")
		rcv.queue(answer{Delay: 3 * time.Second})
		before, _ := rcv.stats()
		var wg sync.WaitGroup
		outcomes := make([]string, 2)
		for i := range outcomes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				start := time.Now()
				outcomes[i] = s.send()
				t.Logf("sender %d: %s after %v", i, outcomes[i], time.Since(start))
			}()
		}
		wg.Wait()
		after, _ := rcv.stats()
		es := all(rcv.take())
		if after-before != 1 || len(find(es, "post__published")) != 1 {
			t.Fatalf("two senders at once made %d requests (outcomes %v)", after-before, outcomes)
		}
		if !(outcomes[0] == "locked" && outcomes[1] == "sent" || outcomes[0] == "sent" && outcomes[1] == "locked") {
			t.Errorf("outcomes %v, want one sent and one locked", outcomes)
		}
	})

	t.Run("rotation", func(t *testing.T) {
		s.t = t
		s.step(nil, "rotate-due")
		s.step(nil, "publish", "After rotation")
		bs := rcv.take()
		if len(rcv.rotations) != 1 || rcv.rotations[0] != "k1" {
			t.Fatalf("rotate requests signed by %v", rcv.rotations)
		}
		if len(bs) != 1 || bs[0].KeyID != "k2" {
			t.Fatalf("after rotation, batches %+v", bs)
		}
		if o := s.outbox(); o.Connection["key_id"] != "k2" {
			t.Fatalf("connection %v", o.Connection)
		}
		s.step(nil, "publish", "Second after rotation")
		if len(rcv.rotations) != 1 {
			t.Errorf("rotated again within 30 days")
		}
	})

	t.Run("bound", func(t *testing.T) {
		s.t = t
		rcv.take()
		env := []string{"SV_MAX_ROWS=50"}
		s.step(env, "publish", "Flood", "120", "nosend")
		o := s.outbox(env...)
		kept, drops := 0, 0
		for _, r := range o.Rows {
			if r.Name == "sitevault__events_dropped" {
				drops++
			} else {
				kept += r.Count
			}
		}
		if len(o.Rows) > 50 || drops != 1 || kept+o.State.Dropped != 120 || !o.State.FullBackup {
			t.Fatalf("bound 50, 120 events: %d rows, %d drop events, kept %d, dropped %d, full backup %v",
				len(o.Rows), drops, kept, o.State.Dropped, o.State.FullBackup)
		}
		dropped := o.State.Dropped
		if got := s.step(env, "send")["outcome"]; got != "sent" {
			t.Fatalf("send: %v", got)
		}
		bs := rcv.take()
		d := find(all(bs), "sitevault__events_dropped")
		if len(bs) == 0 || bs[0].Dropped != dropped || !bs[0].FullBackup || len(d) != 1 ||
			!strings.Contains(string(d[0].Details), fmt.Sprintf(`"dropped":%d`, dropped)) {
			t.Fatalf("batches after the drop: %+v", bs)
		}
		if o := s.outbox(); len(o.Rows) != 0 || o.State.Dropped != 0 || o.State.FullBackup {
			t.Fatalf("after the batch: %d rows, state %+v", len(o.Rows), o.State)
		}

		// The byte bound.
		env = []string{"SV_MAX_BYTES=65536"}
		s.step(env, "publish", strings.Repeat("A long title to fill the outbox ", 5), "200", "nosend")
		o = s.outbox(env...)
		if o.Bytes > 65536 || o.State.Dropped == 0 || len(find(eventsOf(o), "sitevault__events_dropped")) != 1 {
			t.Fatalf("byte bound 64 KiB: %d bytes, dropped %d", o.Bytes, o.State.Dropped)
		}
		if got := s.send(); got != "sent" {
			t.Fatalf("send: %v", got)
		}
		rcv.take()
	})

	t.Run("screen", func(t *testing.T) {
		s.t = t
		v := s.step(nil, "render")
		html, _ := v["admin"].(string)
		for _, want := range []string{"shop", rcv.srv.URL, "Unpair", "_wpnonce", "sitevault_unpair", "Last batch sent"} {
			if !strings.Contains(html, want) {
				t.Errorf("the screen lacks %q:\n%s", want, html)
			}
		}
		if v["anonymous"] != "" {
			t.Errorf("a visitor without manage_options sees %q", v["anonymous"])
		}
	})

	t.Run("table dropped", func(t *testing.T) {
		s.t = t
		if v := s.step(nil, "drop-table"); v["exists"] != false {
			t.Fatalf("drop the table: %v", v)
		}
		s.step(nil, "publish", "After the table was dropped", "1", "nosend")
		if o := s.outbox(); len(o.Rows) != 1 || o.Rows[0].Event.Object.Name != "After the table was dropped" {
			t.Fatalf("the table was not made again on first use: %v", names(eventsOf(o)))
		}
		s.send()
		rcv.take()
	})

	t.Run("actors", func(t *testing.T) {
		s.t = t
		s.step(nil, "blogname", "Changed by WordPress")
		s.step([]string{"SV_CRON=1"}, "blogname", "Changed by cron")
		s.send()
		es := find(all(rcv.take()), "setting__updated")
		if len(es) != 2 || es[0].Actor.Kind != "wordpress" || es[0].Actor.Name != "WordPress" || es[1].Actor.Kind != "cron" {
			t.Fatalf("actors: %+v", es)
		}
	})

	t.Run("413", func(t *testing.T) {
		s.t = t
		s.step(nil, "publish", "Too large", "4", "nosend")
		rcv.queue(answer{Status: 413})
		if got := s.send(); got != "sent" {
			t.Fatalf("send after 413: %s", got)
		}
		bs := rcv.take()
		if len(bs) != 2 || len(bs[0].Events) != 2 || len(bs[1].Events) != 2 {
			t.Fatalf("after 413 the batch is halved: got %v", bs)
		}
	})

	if _, refused := rcv.stats(); len(refused) != 0 {
		t.Errorf("the receiver refused signed requests: %v", refused)
	}

	t.Run("unknown key", func(t *testing.T) {
		s.t = t
		s.step(nil, "set-key-id", "k99")
		s.step(nil, "publish", "Signed with an unknown key", "1", "nosend")
		if got := s.send(); got != "failed" {
			t.Fatalf("send with an unknown key: %s", got)
		}
		o := s.outbox()
		_, refused := rcv.stats()
		if len(o.Rows) != 1 || o.State.Attempt != 1 || !strings.Contains(o.State.LastError, "HTTP 401") ||
			len(refused) != 1 || refused[0] != "unknown site or key" {
			t.Fatalf("after 401: %d rows, state %+v, receiver refused %v", len(o.Rows), o.State, refused)
		}
	})

	t.Run("uninstall", func(t *testing.T) {
		s.t = t
		s.step(nil, "publish", "Left in the outbox", "3", "nosend")
		v := s.step(nil, "uninstall")
		if v["cron_after_deactivate"] != false {
			t.Errorf("deactivation left the cron event")
		}
		for _, k := range []string{"tables", "options", "cron"} {
			if l, _ := v[k].([]any); len(l) != 0 {
				t.Errorf("uninstall left %s: %v", k, l)
			}
		}
		// The deactivation recorded an event in memory: the uninstalling request's shutdown
		// must not write it (and make the table again) once the pairing is gone.
		left := w.PHP(t, `global $wpdb; echo wp_json_encode([$wpdb->get_col("SHOW TABLES LIKE '%sitevault%'"),
			$wpdb->get_col("SELECT option_name FROM {$wpdb->options} WHERE option_name LIKE '%sitevault%'")]);`)
		if strings.TrimSpace(left) != "[[],[]]" {
			t.Errorf("after the uninstalling request ended, tables and options: %s", left)
		}
	})

	t.Run("mu-plugin", func(t *testing.T) {
		s.t = t
		mu := filepath.Join(w.Root, "wp-content", "mu-plugins")
		if err := os.Rename(filepath.Join(w.Root, "wp-content", "plugins", "sitevault-connector"), filepath.Join(mu, "sitevault-connector")); err != nil {
			t.Fatal(err)
		}
		loader, err := os.ReadFile(filepath.Join(mu, "sitevault-connector", "mu-loader.php"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(mu, "sitevault-connector-loader.php"), loader, 0o644); err != nil {
			t.Fatal(err)
		}
		v := s.step(nil, "mu")
		if v["loaded"] != true || v["table"] != true || v["paired"] != false ||
			!strings.Contains(fmt.Sprint(v["file"]), "mu-plugins/sitevault-connector/") {
			t.Fatalf("as an mu-plugin: %v", v)
		}
	})
}

func eventsOf(o outbox) []event {
	var es []event
	for _, r := range o.Rows {
		es = append(es, r.Event)
	}
	return es
}

// TestPHPLint runs php -l on every PHP file in connector/.
func TestPHPLint(t *testing.T) {
	php := needPHP(t)
	n := 0
	err := filepath.WalkDir(connectorDir(t), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".php") {
			return err
		}
		n++
		if out, err := exec.Command(php, "-l", p).CombinedOutput(); err != nil {
			t.Errorf("php -l %s: %v\n%s", p, err, out)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 10 {
		t.Fatalf("found only %d PHP files", n)
	}
}

// TestPHPCS checks connector/ with Debian's PHP_CodeSniffer, PSR-12 (the
// rule set is connector/phpcs.xml); warnings fail too.
func TestPHPCS(t *testing.T) {
	phpcs := testsrv.LookPath("phpcs")
	if phpcs == "" {
		testsrv.Missing(t, "PHP_CodeSniffer", "apt-get install php-codesniffer")
	}
	dir := connectorDir(t)
	cmd := exec.Command(phpcs, "--standard="+filepath.Join(dir, "phpcs.xml"), "-s", "--report=full")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("phpcs: %v\n%s", err, out)
	}
}
