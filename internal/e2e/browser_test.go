package e2e_test

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sitevault/sitevault/internal/testsrv"
)

// The dashboard in a real browser (headless Chromium driven by chromedp),
// against `sitevault serve` and a WordPress site reached over SSH. Every
// page visited is saved as a screenshot under test-artifacts/screenshots/
// (gitignored) and checked by axe-core: no serious or critical violation.

// screenshotsDir is where the browser tests save their screenshots, one
// folder per test.
func screenshotsDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(testsrv.ModuleRoot(), "test-artifacts", "screenshots", strings.ReplaceAll(t.Name(), "/", "-"))
	must(t, os.RemoveAll(dir))
	return dir
}

// dash is a browser signed in to one `sitevault serve`.
type dash struct {
	t   *testing.T
	b   *testsrv.Browser
	srv *server
}

// open navigates to path and checks the page (screenshot and axe-core).
func (d *dash) open(path, name string) {
	d.t.Helper()
	d.b.Do(d.t, "open "+path, chromedp.Navigate(d.srv.url+path), chromedp.WaitReady(chromedp.CSS("body")))
	d.b.CheckPage(d.t, name)
}

// count is how many elements match a CSS selector on the current page.
func (d *dash) count(sel string) int {
	d.t.Helper()
	return testsrv.JS[int](d.t, d.b, fmt.Sprintf("document.querySelectorAll(%q).length", sel))
}

// attr is an attribute of the first element matching sel ("" if none).
func (d *dash) attr(sel, name string) string {
	d.t.Helper()
	return testsrv.JS[string](d.t, d.b, fmt.Sprintf("(document.querySelector(%q)?.getAttribute(%q)) ?? ''", sel, name))
}

// path is the current page's path and query.
func (d *dash) path() string {
	d.t.Helper()
	return testsrv.JS[string](d.t, d.b, "location.pathname + location.search")
}

// click clicks the first element matching sel and waits for the next
// page to load.
func (d *dash) click(sel string) {
	d.t.Helper()
	before := testsrv.JS[float64](d.t, d.b, "performance.timeOrigin")
	d.b.Do(d.t, "click "+sel, chromedp.Click(chromedp.CSS(sel)))
	deadline := time.Now().Add(60 * time.Second)
	for {
		origin, err1 := testsrv.TryJS[float64](d.b, "performance.timeOrigin")
		ready, err2 := testsrv.TryJS[string](d.b, "document.readyState")
		if err1 == nil && err2 == nil && origin != before && ready == "complete" {
			break
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("clicking %s loads no new page (still at %s)", sel, d.path())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// signIn signs in through the form.
func (d *dash) signIn(email, password string) {
	d.t.Helper()
	d.open("/login", "sign-in")
	d.b.Do(d.t, "fill the sign-in form",
		chromedp.SendKeys(chromedp.CSS("#email"), email),
		chromedp.SendKeys(chromedp.CSS("#password"), password))
	d.click(`form[action="/login"] button[type="submit"]`)
	if p := d.path(); strings.HasPrefix(p, "/login") {
		d.t.Fatalf("signing in as %s stays on %s", email, p)
	}
}

// watchJob follows the progress page the browser is on until the job
// ends; it returns the job's final state and the percentages the page
// showed on the way (read from #progress's data-percent, as the page's
// script updates it).
func (d *dash) watchJob() (state string, seen []int) {
	d.t.Helper()
	if !strings.HasPrefix(d.path(), "/jobs/") {
		d.t.Fatalf("not on a job's progress page but on %s", d.path())
	}
	deadline := time.Now().Add(3 * time.Minute)
	final := func(s string) bool { return s == "succeeded" || s == "failed" || s == "cancelled" }
	for {
		// The page's script (which marks #progress data-live) reloads the
		// page when the job ends: a read that meets the reload is tried
		// again, and the result is read from the reloaded page, which
		// the script does not follow.
		v, err := testsrv.TryJS[[]string](d.b, `(() => { const p = document.querySelector("#progress"); return [p?.dataset.state ?? "", p?.dataset.percent ?? "", p?.dataset.live ?? "", document.readyState]; })()`)
		if err != nil || len(v) != 4 || v[3] != "complete" {
			if time.Now().After(deadline) {
				d.t.Fatalf("the job page at %s cannot be read: %v", d.path(), err)
			}
			time.Sleep(150 * time.Millisecond)
			continue
		}
		state = v[0]
		if p, err := strconv.Atoi(v[1]); err == nil && (len(seen) == 0 || seen[len(seen)-1] != p) {
			seen = append(seen, p)
		}
		if final(state) && v[2] == "" {
			return state, seen
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("the job at %s is still %q after 3 minutes (percentages seen: %v)", d.path(), state, seen)
		}
		time.Sleep(150 * time.Millisecond)
	}
}

// post sends a form POST from the page (fetch, same origin, with the
// page's session cookie and its CSRF token if the page has one) and
// returns the HTTP status.
func (d *dash) post(path string, fields map[string]string) int {
	d.t.Helper()
	var js strings.Builder
	js.WriteString("(async () => { const f = new URLSearchParams();")
	js.WriteString(`const c = document.querySelector('input[name="csrf"]'); if (c) f.set("csrf", c.value);`)
	for k, v := range fields {
		fmt.Fprintf(&js, "f.append(%q, %q);", k, v)
	}
	fmt.Fprintf(&js, "const r = await fetch(%q, {method: 'POST', body: f, redirect: 'manual'}); return r.status; })()", path)
	return testsrv.JS[int](d.t, d.b, js.String())
}

func TestDashboardInBrowser(t *testing.T) {
	needServers(t)
	if sshd == nil {
		testsrv.Missing(t, "OpenSSH server (sshd)", "apt-get install openssh-server")
	}
	shots := screenshotsDir(t)
	c := newCLI(t)
	w := testsrv.StartWordPress(t, mariadb, testsrv.WordPressOptions{Title: "Browser test"})
	srv := startServe(t, c, nil)
	d := &dash{t: t, b: testsrv.StartBrowser(t, shots), srv: srv}

	// A page needs a signed-in user.
	d.b.Do(t, "open the sites page signed out", chromedp.Navigate(srv.url+"/"), chromedp.WaitReady(chromedp.CSS("body")))
	if p := d.path(); !strings.HasPrefix(p, "/login") {
		t.Fatalf("the sites page signed out shows %s, want the sign-in page", p)
	}
	d.signIn(ownerEmail, ownerPass)
	addSiteInBrowser(d, w)
	d.open("/", "sites")
	if d.count(`[data-site="blog"]`) != 1 {
		t.Fatal(`the sites page has no element data-site="blog"`)
	}

	// Back up now, from the sites page; the progress page reaches 100 %.
	d.click(`[data-site="blog"] [data-action="backup-now"]`)
	d.b.CheckPage(t, "job-backup-running")
	state, seen := d.watchJob()
	d.b.CheckPage(t, "job-backup-done")
	if state != "succeeded" || len(seen) == 0 || seen[len(seen)-1] != 100 {
		t.Fatalf("the first backup ends %q with the percentages %v; want succeeded at 100", state, seen)
	}
	t.Logf("progress of the first backup: %v", seen)

	// Today's point, on the backups page's day picker.
	d.open("/sites/blog/backups?day="+today(), "backups-today")
	first := d.attr("[data-point]", "data-point")
	if first == "" {
		t.Fatalf("the backups page of %s shows no element with data-point", today())
	}
	if d.count(`a[aria-current="date"]`) != 1 {
		t.Errorf("the day picker does not mark %s as the current day", today())
	}

	// A post published after the first point, then a second backup from
	// the backups page.
	postID := w.CreatePost(t, "Published after the first point", "This post must go when the database is restored.")
	d.click(`[data-action="backup-now"]`)
	if state, seen := d.watchJob(); state != "succeeded" {
		t.Fatalf("the second backup ends %q (%v)", state, seen)
	}
	d.open("/sites/blog/backups?day="+today(), "backups-two-points")
	if n := d.count("[data-point]"); n != 2 {
		t.Fatalf("the backups page shows %d points today, want 2", n)
	}

	// Restore only the database to the first point.
	uploads := filepath.Join(w.Root, "wp-content", "uploads", "made-after-the-first-point.txt")
	must(t, os.WriteFile(uploads, []byte("a file the database restore leaves\n"), 0o644))
	d.open("/sites/blog/restore?point="+first, "restore-dialog")
	items := testsrv.JS[[]string](t, d.b, `[...document.querySelectorAll('input[name="item"]')].filter(e => e.checked).map(e => e.value).sort()`)
	if want := "database plugins root themes uploads wp-content"; strings.Join(items, " ") != want {
		// Names as the contract gives them; the dialog may name root and
		// wp-content as the architecture's items.
		t.Logf("restore items checked by default: %v", items)
		if len(items) != 6 {
			t.Errorf("the restore dialog checks %d items by default (%v), want all six", len(items), items)
		}
	}
	for _, it := range items {
		if it != "database" {
			d.b.Do(t, "uncheck "+it, chromedp.Click(chromedp.CSS(fmt.Sprintf(`input[name="item"][value=%q]`, it))))
		}
	}
	d.click(`form[action$="/restore"] button[type="submit"]`)
	if state, seen := d.watchJob(); state != "succeeded" {
		t.Fatalf("the database restore ends %q (%v)", state, seen)
	}
	d.b.CheckPage(t, "job-restore-done")
	if d.count(`[data-action="undo-restore"]`) != 1 {
		t.Errorf("the finished restore's page has no undo-restore control")
	}
	w.Serve(t)
	if status, body := w.Get(t, "/?p="+strconv.Itoa(postID)); status != http.StatusNotFound {
		t.Errorf("after restoring the database to the first point, GET /?p=%d = %d, want 404 (the post is gone)\n%.500s", postID, status, body)
	}
	if _, err := os.Stat(uploads); err != nil {
		t.Errorf("a database-only restore touched the uploads: %v", err)
	}

	// A download of the first point, created from the downloads page and
	// fetched by its link (a gzip stream).
	d.open("/sites/blog/downloads", "downloads")
	d.b.Do(t, "choose the first point", chromedp.SetValue(chromedp.CSS("#point"), first))
	d.click(`[data-action="download"]`)
	if state, seen := d.watchJob(); state != "succeeded" {
		t.Fatalf("the download ends %q (%v)", state, seen)
	}
	d.open("/sites/blog/downloads", "downloads-ready")
	link := testsrv.JS[string](t, d.b, `document.querySelector('[data-action="fetch-download"]')?.href ?? ""`)
	if link == "" {
		t.Fatal(`the downloads page has no data-action="fetch-download" link after the download finished`)
	}
	// Fetched as the browser fetches it when the link is clicked (with the
	// session's cookie).
	got := testsrv.JS[string](t, d.b, fmt.Sprintf(`fetch(%q).then(async r => r.status + " " + [...new Uint8Array(await r.arrayBuffer()).slice(0, 2)].join(","))`, link))
	if got != "200 31,139" {
		t.Errorf("fetching %s from the page gives %q; want status 200 and a gzip stream (31,139)", link, got)
	}

	undoEventInBrowser(d, w)

	// A viewer sees the pages without any action control, and the server
	// refuses the restore route anyway.
	srv.api("POST", "/api/v1/users", map[string]string{"email": "viewer@example.org", "role": "viewer", "password": "viewer-password-e2e"}, 201, nil)

	// The service settings: users with their role and remove controls, and
	// a token made and revoked in the browser.
	d.open("/settings", "service-settings")
	if n := d.count(`[data-action="set-role"]`); n != 2 {
		t.Errorf("the service settings page has %d role controls, want 2 (owner and viewer)", n)
	}
	tokens := d.count("[data-token]")
	d.fill("#t_name", "made in the browser")
	d.click(`[data-action="add-token"]`)
	d.b.CheckPage(t, "service-settings-token")
	if d.attr("[data-token-secret]", "value") == "" || d.count("[data-token]") != tokens+1 {
		t.Fatalf("making a token shows no secret or no new token (%d tokens, %d before)", d.count("[data-token]"), tokens)
	}
	tok := testsrv.JS[string](t, d.b, `[...document.querySelectorAll("[data-token]")].find(e => e.innerText.includes("made in the browser")).dataset.token`)
	d.click(fmt.Sprintf(`[data-token=%q] [data-action="revoke-token"]`, tok))
	d.b.CheckPage(t, "service-settings-revoked")
	if d.count(fmt.Sprintf("[data-token=%q]", tok)) != 0 || d.count("[data-token]") != tokens {
		t.Errorf("the revoked token %s is still listed", tok)
	}
	d.click(`form[action="/logout"] button[type="submit"]`)
	d.signIn("viewer@example.org", "viewer-password-e2e")
	for _, page := range []struct{ path, name string }{
		{"/", "viewer-sites"},
		{"/sites/blog/backups?day=" + today(), "viewer-backups"},
		{"/sites/blog/restore?point=" + first, "viewer-restore"},
		{"/sites/blog/downloads", "viewer-downloads"},
		{"/sites/blog/activity", "viewer-activity"},
		{"/settings", "viewer-settings"},
	} {
		d.open(page.path, page.name)
		if page.name == "viewer-backups" && d.count("[data-point]") == 0 {
			t.Errorf("a viewer does not see the restore points")
		}
		for _, action := range []string{"backup-now", "restore", "confirm-restore", "download", "undo-event", "restore-event", "undo-restore", "set-role", "remove-user", "pairing-code"} {
			if n := d.count(fmt.Sprintf("[data-action=%q]", action)); n != 0 {
				t.Errorf("a viewer sees %d %s control(s) on %s", n, action, page.path)
			}
		}
	}
	if status := d.post("/sites/blog/restore", map[string]string{"point": first, "item": "database"}); status != http.StatusForbidden {
		t.Errorf("a viewer's POST /sites/blog/restore = %d, want 403", status)
	}
	if status := d.post("/settings", map[string]string{"action": "set-role", "user": "1", "role": "viewer"}); status != http.StatusForbidden {
		t.Errorf("a viewer's POST /settings (set-role) = %d, want 403", status)
	}
	if status := d.post("/sites/blog/backup", nil); status != http.StatusForbidden {
		t.Errorf("a viewer's POST /sites/blog/backup = %d, want 403", status)
	}
}

// text is the trimmed text of the first element matching sel ("" if none).
func (d *dash) text(sel string) string {
	d.t.Helper()
	return testsrv.JS[string](d.t, d.b, fmt.Sprintf("(document.querySelector(%q)?.innerText ?? '').trim()", sel))
}

// fill replaces the value of the input matching sel.
func (d *dash) fill(sel, value string) {
	d.t.Helper()
	d.b.Do(d.t, "fill "+sel, chromedp.Focus(chromedp.CSS(sel)))
	if !testsrv.JS[bool](d.t, d.b, fmt.Sprintf("(() => { const e = document.querySelector(%q); if (!e) return false; e.value = %q; return true; })()", sel, value)) {
		d.t.Fatalf("no %s on %s", sel, d.path())
	}
}

// addSiteInBrowser adds w as the site "blog" over SSH through the
// dashboard's form: "Test connection" first asks to trust the SSH
// server's host key, then shows what discovery found, and "Add the
// site" adds it.
func addSiteInBrowser(d *dash, w *testsrv.WordPress) {
	t := d.t
	t.Helper()
	d.open("/", "sites-empty")
	if d.count("[data-site]") != 0 {
		t.Fatalf("a new service lists %d sites", d.count("[data-site]"))
	}
	d.click(`[data-action="add-site"]`)
	if p := d.path(); p != "/sites/new" {
		t.Fatalf(`the "Add a site" link leads to %s, want /sites/new`, p)
	}
	d.b.CheckPage(t, "add-site")
	d.fill("#name", "blog")
	d.fill("#path", w.Root)
	d.fill("#ssh", fmt.Sprintf("%s@%s", sshd.User, sshd.Addr))
	d.fill("#key", sshd.ClientKeyFile)
	d.click(`[data-action="test-connection"]`)
	d.b.CheckPage(t, "add-site-host-key")
	if got, want := d.attr("#accept_host_key", "value"), sshd.HostKeyFingerprint(); got != want {
		t.Fatalf("the first connection test offers to trust the host key %q, want the server's %q (alert: %q)", got, want, d.text(`[role="alert"]`))
	}
	if d.count("[data-check]") != 0 {
		t.Fatal("the connection test shows a result before the host key is trusted")
	}
	// The form keeps what was typed.
	if got := testsrv.JS[string](t, d.b, `document.querySelector("#path").value`); got != w.Root {
		t.Errorf("after the first test the path field holds %q, want %q", got, w.Root)
	}
	d.b.Do(t, "trust the host key", chromedp.Click(chromedp.CSS("#accept_host_key")))
	d.click(`[data-action="test-connection"]`)
	d.b.CheckPage(t, "add-site-checked")
	if d.count("[data-check]") != 1 {
		t.Fatalf("the connection test with the host key trusted shows no result; alert: %q", d.text(`[role="alert"]`))
	}
	found := d.text("[data-check]")
	version := strings.TrimSpace(w.PHP(t, "echo get_bloginfo('version');"))
	for what, want := range map[string]string{"WordPress version": version, "database": w.DB.Name, "table prefix": w.Prefix,
		"host key": sshd.HostKeyFingerprint(), "content folder": "wp-content"} {
		if !strings.Contains(found, want) {
			t.Errorf("the connection test's result does not show the %s %q:\n%s", what, want, found)
		}
	}
	t.Logf("the connection test shows:\n%s", found)
	if got, want := d.attr("[data-found-tables]", "data-found-tables"), strconv.Itoa(len(w.Tables(t))); got != want {
		t.Errorf("the connection test counts %q tables, want the site's %s", got, want)
	}
	if n, _ := strconv.Atoi(d.attr("[data-found-files]", "data-found-files")); n == 0 {
		t.Errorf("the connection test counts no files")
	}
	if d.count("[data-found-rules] li") == 0 {
		t.Errorf("the connection test shows no exclusion rule (WordPress core is left out by one)")
	}
	if d.count("[data-site]") != 0 || d.count("[data-check]") != 1 {
		t.Fatal("unexpected page after the connection test")
	}
	d.click(`[data-action="add-site"]`)
	if p := d.path(); p != "/sites/blog/backups" {
		t.Fatalf("adding the site leads to %s, want /sites/blog/backups; alert: %q", p, d.text(`[role="alert"]`))
	}
	d.b.CheckPage(t, "site-added")
}

// undoEventInBrowser pairs the site's connector with a code made on the
// site's settings page, publishes a post on the site, finds its event in
// the activity log, filters the log, and undoes the event from the log:
// the post is gone from the site afterwards.
func undoEventInBrowser(d *dash, w *testsrv.WordPress) {
	t := d.t
	t.Helper()
	cs := installConnector(t, w)
	d.open("/sites/blog/settings", "site-settings")
	// Test connection on the settings shows what discovery finds, as
	// adding the site did.
	d.click(`[data-action="test-connection"]`)
	d.b.CheckPage(t, "site-settings-tested")
	if got, want := d.attr("[data-found-tables]", "data-found-tables"), strconv.Itoa(len(w.Tables(t))); got != want {
		t.Errorf("the settings' test connection found %q tables, want %s", got, want)
	}
	d.click(`[data-action="pairing-code"]`)
	d.b.CheckPage(t, "site-settings-pairing-code")
	code := d.attr("[data-pairing-code]", "value")
	if code == "" {
		t.Fatalf("the site's settings page shows no pairing code after %q", "Make a pairing code")
	}
	cs.define("SITEVAULT_PAIRING_CODE", code)
	cs.step([]string{"SV_CRON=1"}, "init")
	if _, paired, lastErr := cs.outboxRows(); !paired {
		t.Fatalf("the connector is not paired with the code from the dashboard (last error %q)", lastErr)
	}

	const title = "A post to undo from the dashboard"
	v := cs.step(nil, "publish", title)
	ids, _ := v["ids"].([]any)
	if len(ids) != 1 {
		t.Fatalf("publish: %v", v)
	}
	postID := int(ids[0].(float64))
	if rows, _, _ := cs.outboxRows(); rows != 0 {
		cs.step(nil, "send") // what the next cron run does
	}
	if rows, _, lastErr := cs.outboxRows(); rows != 0 {
		t.Fatalf("the connector still holds %d events after publishing (last error %q)", rows, lastErr)
	}
	if status, body := w.Get(t, "/?p="+strconv.Itoa(postID)); status != http.StatusOK || !strings.Contains(body, title) {
		t.Fatalf("the published post: GET /?p=%d = %d\n%.500s", postID, status, body)
	}

	// The event appears in the log; it is restorable once the real-time
	// backup that follows it has finished.
	find := fmt.Sprintf(`[...document.querySelectorAll("li[data-event]")].find(e => e.innerText.includes(%q))`, title)
	deadline := time.Now().Add(3 * time.Minute)
	for {
		d.b.Do(t, "open the activity log", chromedp.Navigate(d.srv.url+"/sites/blog/activity"), chromedp.WaitReady(chromedp.CSS("body")))
		if testsrv.JS[bool](t, d.b, fmt.Sprintf(`(() => { const e = %s; return !!e && !!e.querySelector('[data-action="restore-event"]') && !!e.querySelector('[data-action="undo-event"]'); })()`, find)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 3 minutes the activity log shows no restorable event for %q:\n%s", title, d.text("main"))
		}
		time.Sleep(time.Second)
	}
	d.b.CheckPage(t, "activity")
	if d.count(`li[data-event][data-group="sitevault"]`) == 0 {
		t.Error("the activity log shows no sitevault event (pairing, backups)")
	}
	event := testsrv.JS[string](t, d.b, find+".dataset.event")
	group := testsrv.JS[string](t, d.b, find+".dataset.group")
	if group == "" || group == "sitevault" {
		t.Fatalf("the post's event is in the group %q", group)
	}

	// Filter: the post's group and a word of its title find it alone;
	// the sitevault group with the same text finds nothing.
	d.b.Do(t, "check the group "+group, chromedp.Click(chromedp.CSS("#g-"+group)))
	d.fill("#q", "undo from the dashboard")
	d.click(`[data-action="filter"]`)
	d.b.CheckPage(t, "activity-filtered")
	if p := d.path(); !strings.Contains(p, "group="+group) || !strings.Contains(p, "q=undo") {
		t.Errorf("filtering leads to %s, want the group and the text in the query", p)
	}
	if n := d.count("li[data-event]"); n != 1 || d.attr("li[data-event]", "data-event") != event {
		t.Fatalf("the log filtered on %s and the text shows %d events, want the post's event %s alone:\n%s", group, n, event, d.text("ol.events"))
	}
	if testsrv.JS[bool](t, d.b, fmt.Sprintf(`document.querySelector("#g-%s").checked`, group)) != true {
		t.Error("the filtered page does not keep the group checked")
	}
	d.open("/sites/blog/activity?group=sitevault&q="+url.QueryEscape("undo from the dashboard"), "activity-filtered-empty")
	if n := d.count("li[data-event]"); n != 0 {
		t.Errorf("the sitevault group holds %d events about the post", n)
	}
	if !testsrv.JS[bool](t, d.b, `document.querySelector("#g-sitevault")?.checked ?? false`) {
		t.Error("a chosen group that matches nothing loses its checked box on the filtered page")
	}

	// Undo the event, from the log.
	d.open("/sites/blog/activity?q="+url.QueryEscape(title), "activity-post")
	d.click(fmt.Sprintf(`li[data-event=%q] [data-action="undo-event"]`, event))
	d.b.CheckPage(t, "job-undo-event")
	if state, seen := d.watchJob(); state != "succeeded" {
		t.Fatalf("undoing the event ends %q (%v): %s", state, seen, d.text("main"))
	}
	d.b.CheckPage(t, "job-undo-event-done")
	if status, body := w.Get(t, "/?p="+strconv.Itoa(postID)); status != http.StatusNotFound {
		t.Errorf("after undoing the post's event, GET /?p=%d = %d, want 404 (the post is gone)\n%.500s", postID, status, body)
	}
}
