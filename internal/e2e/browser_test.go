package e2e_test

import (
	"fmt"
	"net/http"
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
	for testsrv.JS[float64](d.t, d.b, "performance.timeOrigin") == before || testsrv.JS[string](d.t, d.b, "document.readyState") != "complete" {
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
	for {
		state = d.attr("#progress", "data-state")
		if p, err := strconv.Atoi(d.attr("#progress", "data-percent")); err == nil && (len(seen) == 0 || seen[len(seen)-1] != p) {
			seen = append(seen, p)
		}
		if state == "succeeded" || state == "failed" || state == "cancelled" {
			// The script reloads the page for the result: wait for it to settle.
			d.b.Do(d.t, "wait for the finished page", chromedp.WaitReady(chromedp.CSS("#progress")))
			return d.attr("#progress", "data-state"), seen
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
	c.addSite("blog", w, true)
	srv := startServe(t, c, nil)
	d := &dash{t: t, b: testsrv.StartBrowser(t, shots), srv: srv}

	// A page needs a signed-in user.
	d.b.Do(t, "open the sites page signed out", chromedp.Navigate(srv.url+"/"), chromedp.WaitReady(chromedp.CSS("body")))
	if p := d.path(); !strings.HasPrefix(p, "/login") {
		t.Fatalf("the sites page signed out shows %s, want the sign-in page", p)
	}
	d.signIn(ownerEmail, ownerPass)
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

	// A viewer sees the pages without any action control, and the server
	// refuses the restore route anyway.
	srv.api("POST", "/api/v1/users", map[string]string{"email": "viewer@example.org", "role": "viewer", "password": "viewer-password-e2e"}, 201, nil)
	d.click(`form[action="/logout"] button[type="submit"]`)
	d.signIn("viewer@example.org", "viewer-password-e2e")
	for _, page := range []struct{ path, name string }{
		{"/", "viewer-sites"},
		{"/sites/blog/backups?day=" + today(), "viewer-backups"},
		{"/sites/blog/restore?point=" + first, "viewer-restore"},
		{"/sites/blog/downloads", "viewer-downloads"},
	} {
		d.open(page.path, page.name)
		if page.name == "viewer-backups" && d.count("[data-point]") == 0 {
			t.Errorf("a viewer does not see the restore points")
		}
		for _, action := range []string{"backup-now", "restore", "confirm-restore", "download", "undo-event", "restore-event", "undo-restore"} {
			if n := d.count(fmt.Sprintf("[data-action=%q]", action)); n != 0 {
				t.Errorf("a viewer sees %d %s control(s) on %s", n, action, page.path)
			}
		}
	}
	if status := d.post("/sites/blog/restore", map[string]string{"point": first, "item": "database"}); status != http.StatusForbidden {
		t.Errorf("a viewer's POST /sites/blog/restore = %d, want 403", status)
	}
	if status := d.post("/sites/blog/backup", nil); status != http.StatusForbidden {
		t.Errorf("a viewer's POST /sites/blog/backup = %d, want 403", status)
	}
}
