package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sitevault/sitevault/internal/catalog"
	"github.com/sitevault/sitevault/internal/repository"
	"github.com/sitevault/sitevault/internal/sitevault"
)

// browser is a cookie-keeping client that does not follow redirects, so
// that tests see where a page sends them.
type browser struct {
	t    *testing.T
	e    *env
	c    *http.Client
	csrf string
}

func (e *env) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: e.t, e: e, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

var csrfInput = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (b *browser) get(path string) (*http.Response, string) {
	b.t.Helper()
	resp, err := b.c.Get(b.e.srv.URL + path)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if m := csrfInput.FindSubmatch(body); m != nil {
		b.csrf = string(m[1])
	}
	return resp, string(body)
}

// post sends a form the way a browser on the dashboard does (same origin).
func (b *browser) post(path string, form url.Values) (*http.Response, string) {
	b.t.Helper()
	req, _ := http.NewRequest("POST", b.e.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", b.e.srv.URL)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// signIn signs in through the form.
func (b *browser) signIn(email, password string) {
	b.t.Helper()
	b.get("/login")
	resp, body := b.post("/login", url.Values{"csrf": {b.csrf}, "email": {email}, "password": {password}, "next": {"/"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		b.t.Fatalf("sign-in as %s: %d %s\n%s", email, resp.StatusCode, resp.Header.Get("Location"), body)
	}
}

// dashboardEnv is a service with an owner, a viewer and two sites, one
// with markup in its path.
func dashboardEnv(t *testing.T) (e *env, owner, viewer *browser, pt string) {
	e = newEnv(t, nil)
	ctx := context.Background()
	if _, err := e.cat.AddUser(ctx, sitevault.User{Email: "viewer@example.org", Role: sitevault.RoleViewer}, HashPassword("viewer-password-1")); err != nil {
		t.Fatal(err)
	}
	for _, st := range []sitevault.Site{
		{Name: "blog", Kind: sitevault.Local, Path: "/srv/blog"},
		{Name: "shop", Kind: sitevault.Local, Path: `/srv/<script>alert(1)</script>`},
	} {
		if _, err := e.cat.AddSite(ctx, st); err != nil {
			t.Fatal(err)
		}
	}
	pt = savePoint(t, e, "blog", time.Now().Add(-time.Hour))
	ev := sitevault.Event{UUID: "u-1", Time: time.Now().Add(-2 * time.Hour), Group: "post", Name: "post__published",
		Summary: `Published "<img src=x onerror=alert(1)>"`}
	ev.Actor.Kind, ev.Actor.Name = "user", "alice"
	if _, err := e.cat.AddEvents(ctx, "blog", []sitevault.Event{ev}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.cat.SetEventsPoint(ctx, "blog", time.Now(), pt); err != nil {
		t.Fatal(err)
	}
	owner, viewer = e.browser(), e.browser()
	owner.signIn("owner@example.org", ownerPassword)
	viewer.signIn("viewer@example.org", "viewer-password-1")
	return e, owner, viewer, pt
}

func TestDashboardNeedsSignIn(t *testing.T) {
	e := newEnv(t, nil)
	b := e.browser()
	for _, path := range []string{"/", "/sites/blog/backups", "/jobs/1"} {
		resp, _ := b.get(path)
		if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login?next=") {
			t.Errorf("GET %s without a session: %d → %q, want 303 to /login", path, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	resp, body := b.get("/login")
	if resp.StatusCode != 200 || !strings.Contains(body, `name="password"`) || b.csrf == "" {
		t.Fatalf("sign-in page: %d, no password field or CSRF token:\n%s", resp.StatusCode, body)
	}
	// Without the CSRF token, with a wrong password, then right.
	resp, _ = b.post("/login", url.Values{"email": {"owner@example.org"}, "password": {ownerPassword}})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("sign-in without CSRF token: %d, want 403", resp.StatusCode)
	}
	resp, body = b.post("/login", url.Values{"csrf": {b.csrf}, "email": {"owner@example.org"}, "password": {"wrong-password-1"}})
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "wrong email or password") {
		t.Errorf("wrong password: %d\n%s", resp.StatusCode, body)
	}
	// A hostile next is kept on this site.
	resp, _ = b.post("/login", url.Values{"csrf": {b.csrf}, "email": {"owner@example.org"}, "password": {ownerPassword}, "next": {"//evil.example/x"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Errorf("sign-in with next=//evil.example: %d → %q, want 303 to /", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, _ := b.get("/"); resp.StatusCode != 200 {
		t.Errorf("sites page after sign-in: %d", resp.StatusCode)
	}
	// Sign out ends the session.
	b.post("/logout", url.Values{"csrf": {b.csrf}})
	if resp, _ := b.get("/"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("sites page after sign-out: %d, want 303 to /login", resp.StatusCode)
	}
}

// TestDashboardPages renders every page for an owner and a viewer: the
// owner sees the action controls, the viewer none.
func TestDashboardPages(t *testing.T) {
	e, owner, viewer, pt := dashboardEnv(t)
	job, err := e.svc.Enqueue(context.Background(), newBackupJob("blog"))
	if err != nil {
		t.Fatal(err)
	}
	pages := []struct{ path, want, action string }{
		{"/", `data-site="blog"`, `data-action="backup-now"`},
		{"/sites/blog/backups", "Backups of blog", `data-action="backup-now"`},
		{"/jobs/" + itoa(job.ID), `id="progress"`, ""},
		{"/sites/blog/restore?point=" + pt, `value="database" checked`, `data-action="restore"`},
		{"/sites/blog/activity", `data-event="`, `data-action="restore-event"`},
		{"/sites/blog/activity?from=2000-01-01&to=2999-01-01&group=post&actor=alice&q=Published", `data-event="`, `data-action="undo-event"`},
		{"/sites/blog/downloads", "Downloads of blog", `data-action="download"`},
		{"/sites/blog/settings", `name="keep_daily"`, `data-action="pairing-code"`},
		{"/settings", `data-user="`, `data-action="add-user"`},
		{"/sites/new", `name="ssh"`, `data-action="test-connection"`},
	}
	for _, p := range pages {
		for _, b := range []*browser{owner, viewer} {
			resp, body := b.get(p.path)
			who := "owner"
			if b == viewer {
				who = "viewer"
			}
			if resp.StatusCode != 200 || !strings.Contains(body, p.want) {
				t.Errorf("%s: GET %s: %d, want 200 with %s\n%s", who, p.path, resp.StatusCode, p.want, body)
				continue
			}
			if p.action != "" && strings.Contains(body, p.action) != (b == owner) {
				t.Errorf("%s: GET %s: action control %s shown=%v", who, p.path, p.action, b != owner)
			}
			if b == viewer && strings.Contains(body, `data-action="backup-now"`) {
				t.Errorf("viewer sees a backup control on %s", p.path)
			}
		}
	}
	if resp, _ := owner.get("/sites/blog"); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/sites/blog/backups" {
		t.Errorf("GET /sites/blog: %d → %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestDashboardActionsCheckRoleAndCSRF(t *testing.T) {
	e, owner, viewer, pt := dashboardEnv(t)
	viewer.get("/")
	resp, _ := viewer.post("/sites/blog/backup", url.Values{"csrf": {viewer.csrf}})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("viewer's back up now: %d, want 403", resp.StatusCode)
	}
	owner.get("/")
	resp, _ = owner.post("/sites/blog/backup", url.Values{})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("back up now without CSRF token: %d, want 403", resp.StatusCode)
	}
	wrong := "x" + owner.csrf[1:] // one character changed (a token may begin with x: 1 in 64)
	if owner.csrf[0] == 'x' {
		wrong = "y" + owner.csrf[1:]
	}
	resp, _ = owner.post("/sites/blog/backup", url.Values{"csrf": {wrong}})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("back up now with a wrong CSRF token: %d, want 403", resp.StatusCode)
	}
	for _, path := range []string{"/sites/blog/restore", "/sites/blog/undo", "/sites/blog/activity/1/restore",
		"/sites/blog/activity/1/undo", "/sites/blog/activity/1/download", "/sites/blog/downloads", "/sites/blog/settings", "/settings", "/sites/new"} {
		form := url.Values{"csrf": {viewer.csrf}, "point": {pt}, "item": {"database"}, "format": {"zip"}}
		if resp, _ := viewer.post(path, form); resp.StatusCode != http.StatusForbidden {
			t.Errorf("viewer's POST %s: %d, want 403", path, resp.StatusCode)
		}
		form.Set("csrf", "")
		if resp, _ := owner.post(path, form); resp.StatusCode != http.StatusForbidden {
			t.Errorf("owner's POST %s without CSRF token: %d, want 403", path, resp.StatusCode)
		}
	}
	jobs, _ := e.cat.Jobs(context.Background(), jobFilterSite("blog"))
	if len(jobs) != 0 {
		t.Fatalf("refused POSTs queued %d jobs", len(jobs))
	}
	resp, _ = owner.post("/sites/blog/backup", url.Values{"csrf": {owner.csrf}})
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/jobs/") {
		t.Fatalf("owner's back up now: %d → %q, want 303 to /jobs/ID", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, body := owner.get(resp.Header.Get("Location")); resp.StatusCode != 200 || !strings.Contains(body, `data-state="queued"`) {
		t.Errorf("job page: %d\n%s", resp.StatusCode, body)
	}
	// A cross-site POST is refused before it reaches the form's check.
	req, _ := http.NewRequest("POST", e.srv.URL+"/sites/blog/backup", strings.NewReader("csrf="+owner.csrf))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	if resp, err := owner.c.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site POST: %v %v, want 403", resp, err)
	}
}

func TestDashboardHostileInput(t *testing.T) {
	_, owner, _, pt := dashboardEnv(t)
	_, body := owner.get("/")
	if strings.Contains(body, "<script>alert(1)") {
		t.Errorf("a site's path is not escaped on the sites page:\n%s", body)
	}
	if !strings.Contains(body, "&lt;script&gt;alert(1)") {
		t.Errorf("the escaped path is missing from the sites page:\n%s", body)
	}
	for _, path := range []string{"/sites/..%2F..%2Fetc/backups", "/sites/%3Cb%3Ex/backups", "/jobs/..%2F1", "/jobs/-1"} {
		resp, body := owner.get(path)
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, resp.StatusCode)
		}
		if strings.Contains(body, "<b>x") {
			t.Errorf("GET %s echoes markup:\n%s", path, body)
		}
	}
	// A restore of a path outside the site is refused with the reason.
	resp, body := owner.post("/sites/blog/restore", url.Values{"csrf": {owner.csrf}, "point": {pt}, "item": {"uploads"},
		"paths": {"../../etc/passwd"}})
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "without &#34;..&#34;") {
		t.Errorf("restore of ../../etc/passwd: %d, want 422 saying why\n%s", resp.StatusCode, body)
	}
	if resp, _ := owner.get("/sites/blog/restore?point=../../x"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("restore dialog of a bad point: %d, want 404", resp.StatusCode)
	}
	_, body = owner.get("/sites/blog/activity")
	if strings.Contains(body, "<img src=x") || !strings.Contains(body, "&lt;img src=x") {
		t.Errorf("an event's summary is not escaped:\n%s", body)
	}
	if resp, _ := owner.get("/sites/blog/backups?day=../../x"); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("a bad day: %d, want 400", resp.StatusCode)
	}
}

// TestDashboardPageWeight keeps every page with its style sheet and
// script under 100 KB.
func TestDashboardPageWeight(t *testing.T) {
	_, owner, _, pt := dashboardEnv(t)
	_, css := owner.get("/static/site.css")
	_, js := owner.get("/static/progress.js")
	for _, path := range []string{"/", "/sites/blog/backups", "/login", "/sites/blog/activity", "/sites/blog/downloads", "/sites/blog/restore?point=" + pt} {
		_, body := owner.get(path)
		if n := len(body) + len(css) + len(js); n > 100*1024 {
			t.Errorf("%s weighs %d bytes with its CSS and JS, over 100 KB", path, n)
		}
	}
	if len(css) < 100 || len(js) < 100 {
		t.Fatalf("static files not served: css %d bytes, js %d bytes", len(css), len(js))
	}
}

func newBackupJob(site string) catalog.NewJob {
	return catalog.NewJob{Kind: sitevault.JobBackup, Site: site, Trigger: "manual", Params: BackupParams{Trigger: "manual"}}
}

func jobFilterSite(site string) catalog.JobFilter { return catalog.JobFilter{Site: site} }

// savePoint stores an empty restore point of site (no files, no tables).
func savePoint(t *testing.T, e *env, site string, at time.Time) string {
	t.Helper()
	ctx := context.Background()
	tree, err := e.repo.SaveTree(ctx, &repository.Tree{})
	if err != nil {
		t.Fatal(err)
	}
	sn := &repository.Snapshot{Time: at, Site: site, Trigger: "manual", Tree: tree, Meta: map[string]string{}}
	id, err := e.repo.SaveSnapshot(ctx, sn)
	if err != nil {
		t.Fatal(err)
	}
	return id.String()
}

func TestDashboardSiteSettings(t *testing.T) {
	e, owner, _, _ := dashboardEnv(t)
	owner.get("/sites/blog/settings")
	form := url.Values{"csrf": {owner.csrf}, "action": {"save"}, "start": {"03:30"}, "window": {"90m"}, "time_zone": {"Europe/Berlin"},
		"keep_last": {"5"}, "keep_daily": {"7"}, "keep_weekly": {"4"}, "keep_monthly": {"0"}, "notify": {"ops@example.org\nme@example.org"}}
	if resp, body := owner.post("/sites/blog/settings", form); resp.StatusCode != 200 || !strings.Contains(body, "Saved.") {
		t.Fatalf("save settings: %d\n%s", resp.StatusCode, body)
	}
	st, err := e.cat.Site(context.Background(), "blog")
	if err != nil {
		t.Fatal(err)
	}
	if st.Schedule.Start != "03:30" || st.Schedule.TimeZone != "Europe/Berlin" || st.Retention.KeepDaily != 7 || len(st.Notify) != 2 {
		t.Errorf("saved site: %+v %+v %v", st.Schedule, st.Retention, st.Notify)
	}
	for field, v := range map[string]string{"notify": "<b>x</b>", "time_zone": "Mars/Olympus", "keep_daily": "-1", "window": "forever"} {
		bad := url.Values{}
		for k, vs := range form {
			bad[k] = vs
		}
		bad.Set(field, v)
		resp, body := owner.post("/sites/blog/settings", bad)
		if resp.StatusCode != http.StatusUnprocessableEntity || strings.Contains(body, "<b>x") {
			t.Errorf("settings with %s=%q: %d, want 422 and no markup\n%s", field, v, resp.StatusCode, body)
		}
	}
	resp, body := owner.post("/sites/blog/settings", url.Values{"csrf": {owner.csrf}, "action": {"pairing-code"}})
	if resp.StatusCode != 200 || !strings.Contains(body, "data-pairing-code") {
		t.Errorf("pairing code: %d\n%s", resp.StatusCode, body)
	}
}

func TestDashboardServiceSettings(t *testing.T) {
	e, owner, viewer, _ := dashboardEnv(t)
	owner.get("/settings")
	resp, body := owner.post("/settings", url.Values{"csrf": {owner.csrf}, "action": {"test-mail"}})
	if resp.StatusCode != http.StatusConflict || !strings.Contains(body, "no mail settings yet") {
		t.Errorf("test mail with no settings: %d, want 409\n%s", resp.StatusCode, body)
	}
	resp, body = owner.post("/settings", url.Values{"csrf": {owner.csrf}, "action": {"add-user"}, "email": {"<b>no-at-sign</b>"},
		"role": {"viewer"}, "password": {"a-long-password-1"}})
	if resp.StatusCode != http.StatusUnprocessableEntity || strings.Contains(body, "<b>no-at") {
		t.Errorf("add a user with a bad email: %d, want 422 and no markup\n%s", resp.StatusCode, body)
	}
	resp, body = owner.post("/settings", url.Values{"csrf": {owner.csrf}, "action": {"add-user"}, "email": {"new@example.org"},
		"role": {"viewer"}, "password": {"a-long-password-1"}})
	if resp.StatusCode != 200 || !strings.Contains(body, "new@example.org") {
		t.Errorf("add a user: %d\n%s", resp.StatusCode, body)
	}
	if _, _, err := e.cat.UserByEmail(context.Background(), "new@example.org"); err != nil {
		t.Errorf("the added user is not in the catalog: %v", err)
	}
	// A viewer makes its own token; the secret is shown once.
	viewer.get("/settings")
	resp, body = viewer.post("/settings/tokens", url.Values{"csrf": {viewer.csrf}, "name": {"ci"}})
	if resp.StatusCode != 200 || !strings.Contains(body, "data-token-secret") || !strings.Contains(body, `value="svt_`) {
		t.Errorf("viewer's new token: %d\n%s", resp.StatusCode, body)
	}
	if _, body := viewer.get("/settings"); strings.Contains(body, "data-token-secret") {
		t.Errorf("the token's secret is shown again")
	}
}

// TestDashboardAddSite tests a local site's connection through the form:
// a folder without WordPress is refused with the reason; hostile names
// and SSH addresses are refused before anything connects.
func TestDashboardAddSite(t *testing.T) {
	e, owner, _, _ := dashboardEnv(t)
	owner.get("/sites/new")
	for _, form := range []url.Values{
		{"name": {"<script>x"}, "path": {t.TempDir()}},
		{"name": {"../etc"}, "path": {t.TempDir()}},
		{"name": {"ok"}, "path": {t.TempDir()}, "ssh": {"no-user-host"}},
		{"name": {"ok"}, "path": {t.TempDir()}, "ssh": {"u@host:99999"}},
		{"name": {"blog"}, "path": {t.TempDir()}},
	} {
		form.Set("csrf", owner.csrf)
		form.Set("action", "test")
		resp, body := owner.post("/sites/new", form)
		if resp.StatusCode != http.StatusUnprocessableEntity && resp.StatusCode != http.StatusConflict {
			t.Errorf("add %v: %d, want 422 or 409\n%s", form, resp.StatusCode, body)
		}
		if strings.Contains(body, "<script>x") {
			t.Errorf("add %v echoes markup", form)
		}
	}
	dir := t.TempDir()
	resp, body := owner.post("/sites/new", url.Values{"csrf": {owner.csrf}, "action": {"add"}, "name": {"empty"}, "path": {dir}})
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, `role="alert"`) {
		t.Errorf("add a folder without WordPress: %d, want 422 with the reason\n%s", resp.StatusCode, body)
	}
	if _, err := e.cat.Site(context.Background(), "empty"); err == nil {
		t.Errorf("a site that failed its check was saved")
	}
}

// TestDashboardRestoreFlow confirms a restore in the dialog, and shows the
// finished job's page: what was restored and "Undo this restore" (the
// job is finished through the catalog, as a worker would).
func TestDashboardRestoreFlow(t *testing.T) {
	e, owner, viewer, pt := dashboardEnv(t)
	ctx := context.Background()
	owner.get("/sites/blog/restore?point=" + pt)
	resp, body := owner.post("/sites/blog/restore", url.Values{"csrf": {owner.csrf}, "point": {pt}, "item": {"database", "uploads"}})
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/jobs/") {
		t.Fatalf("confirm restore: %d → %q\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	j, err := e.cat.ClaimJob(ctx, "test")
	if err != nil || j == nil || j.Kind != sitevault.JobRestore || !strings.Contains(string(j.Params), `"items":["database","uploads"]`) {
		t.Fatalf("queued job: %+v %v", j, err)
	}
	if _, err := e.cat.FinishJob(ctx, j.ID, "test", catalog.JobOutcome{State: sitevault.JobSucceeded,
		Result: RestoreResult{Point: pt, Items: []string{"database", "uploads"}, FilesWritten: 3, Tables: 12, Complete: true}}); err != nil {
		t.Fatal(err)
	}
	_, body = owner.get("/jobs/" + itoa(j.ID))
	for _, want := range []string{`data-state="succeeded"`, `data-percent="100"`, "Restored database, uploads", "3 files written, 12 tables", `data-action="undo-restore"`} {
		if !strings.Contains(body, want) {
			t.Errorf("finished restore's page lacks %s\n%s", want, body)
		}
	}
	if _, body := viewer.get("/jobs/" + itoa(j.ID)); strings.Contains(body, `data-action="undo-restore"`) {
		t.Errorf("a viewer sees Undo this restore")
	}
	resp, _ = owner.post("/sites/blog/undo", url.Values{"csrf": {owner.csrf}})
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/jobs/") {
		t.Errorf("undo: %d → %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// TestDashboardFailingSite shows a failing site's dot, error and since
// when on the sites page, and the failure card with advice on its backups.
func TestDashboardFailingSite(t *testing.T) {
	e, owner, _, _ := dashboardEnv(t)
	ctx := context.Background()
	for range 2 {
		if _, _, err := e.cat.BackupEnded(ctx, "shop", false, time.Now(), "", 0, time.Second, "connect: <b>refused</b>", "connect"); err != nil {
			t.Fatal(err)
		}
	}
	_, body := owner.get("/")
	for _, want := range []string{`class="dot failing"`, "connect: &lt;b&gt;refused&lt;/b&gt;", "failing since", "1 failing"} {
		if !strings.Contains(body, want) {
			t.Errorf("sites page lacks %s\n%s", want, body)
		}
	}
	_, body = owner.get("/sites/shop/backups")
	if !strings.Contains(body, "The last backup failed") || !strings.Contains(body, "What to do:") {
		t.Errorf("backups page lacks the failure card\n%s", body)
	}
}

// The storage a site's points hold is the sum of what each added; the
// sites page shows it.
func TestStorageUsed(t *testing.T) {
	e, owner, _, _ := dashboardEnv(t)
	ctx := context.Background()
	for i, added := range []int64{1 << 20, 3 << 10} {
		sn := &repository.Snapshot{Time: time.Now().Add(time.Duration(i) * time.Minute), Site: "shop", Trigger: "manual",
			Summary: &repository.Summary{BytesAddedSaved: added}, Meta: map[string]string{}}
		tree, err := e.repo.SaveTree(ctx, &repository.Tree{})
		if err != nil {
			t.Fatal(err)
		}
		sn.Tree = tree
		if _, err := e.repo.SaveSnapshot(ctx, sn); err != nil {
			t.Fatal(err)
		}
	}
	e.svc.recordStorage(ctx, "shop")
	st, err := e.cat.Status(ctx, "shop")
	if err != nil || st.StoredBytes != 1<<20+3<<10 {
		t.Fatalf("stored bytes of shop: %v, %v; want %d", st, err, 1<<20+3<<10)
	}
	if _, body := owner.get("/"); !strings.Contains(body, "Storage used") || !strings.Contains(body, "1.0 MiB") {
		t.Errorf("the sites page does not show shop's 1.0 MiB stored:\n%s", body)
	}
}

// TestDashboardUsersAndTokens changes a role, removes a user and revokes
// API tokens through the service settings page's forms: owners only (a
// viewer revokes only its own tokens), with the CSRF token, and never
// leaving the service without an owner.
func TestDashboardUsersAndTokens(t *testing.T) {
	e, owner, viewer, _ := dashboardEnv(t)
	ctx := context.Background()
	me, _, err := e.cat.UserByEmail(ctx, "owner@example.org")
	if err != nil {
		t.Fatal(err)
	}
	v, _, err := e.cat.UserByEmail(ctx, "viewer@example.org")
	if err != nil {
		t.Fatal(err)
	}
	role := func(id int64) sitevault.Role {
		t.Helper()
		u, err := e.cat.User(ctx, id)
		if err != nil {
			t.Fatalf("user %d: %v", id, err)
		}
		return u.Role
	}
	tokenIDs := func() map[string]int64 {
		t.Helper()
		toks, err := e.cat.Tokens(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]int64{}
		for _, tok := range toks {
			m[tok.Name] = tok.ID
		}
		return m
	}
	owner.get("/settings")
	if resp, _ := owner.post("/settings/tokens", url.Values{"csrf": {owner.csrf}, "name": {"owner-ci"}}); resp.StatusCode != 200 {
		t.Fatalf("owner's new token: %d", resp.StatusCode)
	}
	viewer.get("/settings")
	if resp, _ := viewer.post("/settings/tokens", url.Values{"csrf": {viewer.csrf}, "name": {"viewer-ci"}}); resp.StatusCode != 200 {
		t.Fatalf("viewer's new token: %d", resp.StatusCode)
	}
	toks := tokenIDs()
	ownerTok, viewerTok := toks["owner-ci"], toks["viewer-ci"]
	if ownerTok == 0 || viewerTok == 0 {
		t.Fatalf("tokens: %v", toks)
	}

	// The owner's page has the controls; the viewer's has none for users,
	// and a revoke control only for its own token.
	_, body := owner.get("/settings")
	for _, want := range []string{fmt.Sprintf(`id="role-%d"`, v.ID), `data-action="set-role"`, `data-action="remove-user"`,
		fmt.Sprintf(`action="/settings/tokens/%d/revoke"`, viewerTok), fmt.Sprintf(`action="/settings/tokens/%d/revoke"`, ownerTok)} {
		if !strings.Contains(body, want) {
			t.Errorf("the owner's settings page lacks %s", want)
		}
	}
	if !strings.Contains(body, ", of viewer@example.org") {
		t.Error("the owner's token list does not say whose the viewer's token is")
	}
	_, body = viewer.get("/settings")
	for _, not := range []string{`data-action="set-role"`, `data-action="remove-user"`, fmt.Sprintf(`/settings/tokens/%d/revoke`, ownerTok)} {
		if strings.Contains(body, not) {
			t.Errorf("the viewer's settings page has %s", not)
		}
	}

	// A viewer is refused; so is a form without the CSRF token.
	for _, form := range []url.Values{
		{"action": {"set-role"}, "user": {fmt.Sprint(v.ID)}, "role": {"owner"}},
		{"action": {"remove-user"}, "user": {fmt.Sprint(me.ID)}},
	} {
		form.Set("csrf", viewer.csrf)
		if resp, _ := viewer.post("/settings", form); resp.StatusCode != http.StatusForbidden {
			t.Errorf("viewer's %s: %d, want 403", form.Get("action"), resp.StatusCode)
		}
		form.Set("csrf", "")
		if resp, _ := owner.post("/settings", form); resp.StatusCode != http.StatusForbidden {
			t.Errorf("owner's %s without CSRF token: %d, want 403", form.Get("action"), resp.StatusCode)
		}
	}
	if role(v.ID) != sitevault.RoleViewer || role(me.ID) != sitevault.RoleOwner {
		t.Fatal("a refused form changed a role")
	}
	if resp, _ := viewer.post(fmt.Sprintf("/settings/tokens/%d/revoke", ownerTok), url.Values{"csrf": {viewer.csrf}}); resp.StatusCode != http.StatusNotFound {
		t.Errorf("viewer revoking the owner's token: %d, want 404", resp.StatusCode)
	}
	if resp, _ := owner.post(fmt.Sprintf("/settings/tokens/%d/revoke", viewerTok), url.Values{}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("revoking a token without CSRF token: %d, want 403", resp.StatusCode)
	}
	if toks := tokenIDs(); toks["owner-ci"] == 0 || toks["viewer-ci"] == 0 {
		t.Fatalf("a refused revoke removed a token: %v", toks)
	}

	// Hostile or stale input.
	for _, c := range []struct {
		form url.Values
		want int
	}{
		{url.Values{"action": {"set-role"}, "user": {fmt.Sprint(v.ID)}, "role": {"<b>admin</b>"}}, http.StatusUnprocessableEntity},
		{url.Values{"action": {"set-role"}, "user": {"1 OR 1=1"}, "role": {"owner"}}, http.StatusUnprocessableEntity},
		{url.Values{"action": {"remove-user"}, "user": {"-3"}}, http.StatusUnprocessableEntity},
		{url.Values{"action": {"remove-user"}, "user": {"99999"}}, http.StatusNotFound},
	} {
		c.form.Set("csrf", owner.csrf)
		resp, body := owner.post("/settings", c.form)
		if resp.StatusCode != c.want || strings.Contains(body, "<b>admin") {
			t.Errorf("%v: %d, want %d and no markup", c.form, resp.StatusCode, c.want)
		}
	}
	if resp, _ := owner.post("/settings/tokens/abc/revoke", url.Values{"csrf": {owner.csrf}}); resp.StatusCode != http.StatusNotFound {
		t.Errorf("revoking token abc: %d, want 404", resp.StatusCode)
	}

	// The last owner can neither step down nor go.
	for _, action := range []string{"set-role", "remove-user"} {
		resp, body := owner.post("/settings", url.Values{"csrf": {owner.csrf}, "action": {action}, "user": {fmt.Sprint(me.ID)}, "role": {"viewer"}, "confirm": {"yes"}})
		if resp.StatusCode != http.StatusConflict || !strings.Contains(body, "last owner") {
			t.Errorf("the last owner's %s: %d, want 409 naming the last owner", action, resp.StatusCode)
		}
	}
	if role(me.ID) != sitevault.RoleOwner {
		t.Fatal("the last owner stepped down")
	}

	// Keeping one's own role changes nothing and keeps one signed in.
	resp, body := owner.post("/settings", url.Values{"csrf": {owner.csrf}, "action": {"set-role"}, "user": {fmt.Sprint(me.ID)}, "role": {"owner"}})
	if resp.StatusCode != 200 || role(me.ID) != sitevault.RoleOwner {
		t.Fatalf("the owner keeping its role: %d\n%s", resp.StatusCode, body)
	}

	// Role changes: the viewer becomes an owner and back (its session ends
	// with the change, as the catalog's UpdateUser says).
	resp, body = owner.post("/settings", url.Values{"csrf": {owner.csrf}, "action": {"set-role"}, "user": {fmt.Sprint(v.ID)}, "role": {"owner"}})
	if resp.StatusCode != 200 || !strings.Contains(body, "Role changed.") || role(v.ID) != sitevault.RoleOwner {
		t.Fatalf("make the viewer an owner: %d, role %s\n%s", resp.StatusCode, role(v.ID), body)
	}
	if resp, _ := viewer.get("/settings"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("the changed user's old session still opens /settings: %d", resp.StatusCode)
	}
	resp, _ = owner.post("/settings", url.Values{"csrf": {owner.csrf}, "action": {"set-role"}, "user": {fmt.Sprint(v.ID)}, "role": {"viewer"}})
	if resp.StatusCode != 200 || role(v.ID) != sitevault.RoleViewer {
		t.Fatalf("make the user a viewer again: %d, role %s", resp.StatusCode, role(v.ID))
	}

	// Revoke: the owner revokes the viewer's token (an owner sees all).
	resp, body = owner.post(fmt.Sprintf("/settings/tokens/%d/revoke", viewerTok), url.Values{"csrf": {owner.csrf}})
	if resp.StatusCode != 200 || !strings.Contains(body, "Token revoked") {
		t.Fatalf("revoke the viewer's token: %d\n%s", resp.StatusCode, body)
	}
	if toks := tokenIDs(); toks["viewer-ci"] != 0 || toks["owner-ci"] == 0 {
		t.Fatalf("after revoking the viewer's token: %v", toks)
	}
	if resp, _ := owner.post(fmt.Sprintf("/settings/tokens/%d/revoke", viewerTok), url.Values{"csrf": {owner.csrf}}); resp.StatusCode != http.StatusNotFound {
		t.Errorf("revoking a revoked token: %d, want 404", resp.StatusCode)
	}

	// A viewer revokes its own token (as the API lets it).
	viewer.signIn("viewer@example.org", "viewer-password-1")
	viewer.get("/settings")
	if resp, _ := viewer.post("/settings/tokens", url.Values{"csrf": {viewer.csrf}, "name": {"viewer-2"}}); resp.StatusCode != 200 {
		t.Fatalf("viewer's second token: %d", resp.StatusCode)
	}
	resp, body = viewer.post(fmt.Sprintf("/settings/tokens/%d/revoke", tokenIDs()["viewer-2"]), url.Values{"csrf": {viewer.csrf}})
	if resp.StatusCode != 200 || tokenIDs()["viewer-2"] != 0 {
		t.Fatalf("the viewer revoking its own token: %d\n%s", resp.StatusCode, body)
	}

	// Remove asks first: the page names the user and what removing ends;
	// nothing is removed until it is confirmed.
	resp, body = owner.post("/settings", url.Values{"csrf": {owner.csrf}, "action": {"remove-user"}, "user": {fmt.Sprint(v.ID)}})
	if resp.StatusCode != 200 || !strings.Contains(body, `data-action="confirm-remove-user"`) || !strings.Contains(body, "Remove viewer@example.org?") {
		t.Fatalf("remove without confirming: %d, want the confirmation\n%s", resp.StatusCode, body)
	}
	if _, err := e.cat.User(ctx, v.ID); err != nil {
		t.Fatalf("the user went before the removal was confirmed: %v", err)
	}
	// Confirmed: the viewer goes.
	resp, body = owner.post("/settings", url.Values{"csrf": {owner.csrf}, "action": {"remove-user"}, "user": {fmt.Sprint(v.ID)}, "confirm": {"yes"}})
	if resp.StatusCode != 200 || !strings.Contains(body, "User removed.") || strings.Contains(body, "viewer@example.org") {
		t.Fatalf("remove the viewer: %d\n%s", resp.StatusCode, body)
	}
	if _, err := e.cat.User(ctx, v.ID); !errors.Is(err, catalog.ErrNotFound) {
		t.Errorf("the removed user is still in the catalog: %v", err)
	}
}

// The schedule's window reads as people write it ("2h", "1h30m").
func TestSettingsWindowText(t *testing.T) {
	_, owner, _, _ := dashboardEnv(t)
	if _, body := owner.get("/sites/blog/settings"); !strings.Contains(body, `value="2h"`) || strings.Contains(body, "2h0m0s") {
		t.Errorf("the default window is not shown as 2h:\n%s", body)
	}
	owner.get("/sites/blog/settings")
	form := url.Values{"csrf": {owner.csrf}, "action": {"save"}, "start": {"03:30"}, "window": {"90m"}, "time_zone": {"UTC"},
		"keep_last": {"5"}, "keep_daily": {"7"}, "keep_weekly": {"4"}, "keep_monthly": {"0"}}
	if resp, body := owner.post("/sites/blog/settings", form); resp.StatusCode != 200 || !strings.Contains(body, `value="1h30m"`) {
		t.Errorf("a 90m window saved: %d, not shown as 1h30m", resp.StatusCode)
	}
}
