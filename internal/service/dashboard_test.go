package service

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sitevault/sitevault/internal/catalog"
	"github.com/sitevault/sitevault/internal/repository"
	"github.com/sitevault/sitevault/internal/sitevault"
)

// browser is an HTTP client with cookies that does not follow redirects,
// as a person's browser session on the dashboard.
type browser struct {
	t *testing.T
	e *env
	c *http.Client
}

func (e *env) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: e.t, e: e, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *browser) get(path string) (*http.Response, string) {
	b.t.Helper()
	resp, err := b.c.Get(b.e.srv.URL + path)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// post sends a form as a same-origin browser does (Sec-Fetch-Site).
func (b *browser) post(path string, form url.Values, site string) (*http.Response, string) {
	b.t.Helper()
	req, _ := http.NewRequest("POST", b.e.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", site)
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func (b *browser) signIn(email, password string) {
	b.t.Helper()
	resp, body := b.post("/login", url.Values{"email": {email}, "password": {password}, "next": {"/"}}, "same-origin")
	if resp.StatusCode != http.StatusSeeOther {
		b.t.Fatalf("sign in as %s: %d\n%s", email, resp.StatusCode, body)
	}
}

// dashboardSite registers site blog with two restore points a day apart.
func dashboardSite(t *testing.T, e *env) []*repository.Snapshot {
	ctx := context.Background()
	if _, err := e.cat.AddSite(ctx, sitevault.Site{Name: "blog", Kind: sitevault.Local, Path: "/srv/blog"}); err != nil {
		t.Fatal(err)
	}
	day1 := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	a := repository.TestSnapshot(t, e.repo, "blog", day1, map[string][]byte{"index.html": []byte("one")})
	b := repository.TestSnapshot(t, e.repo, "blog", day1.Add(26*time.Hour), map[string][]byte{"index.html": []byte("two")})
	return []*repository.Snapshot{a, b}
}

// TestDashboardSignIn: pages send a stranger to the sign-in page and back;
// a wrong password shows the form again; a redirect never leaves the site.
func TestDashboardSignIn(t *testing.T) {
	e := newEnv(t, nil)
	b := e.browser()
	resp, _ := b.get("/sites/blog/backups?day=2026-12-04")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login?next=%2Fsites%2Fblog%2Fbackups%3Fday%3D2026-12-04" {
		t.Fatalf("a page without a session: %d → %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, body := b.get("/login?next=/sites/blog/backups")
	if resp.StatusCode != 200 || !strings.Contains(body, `name="next" value="/sites/blog/backups"`) || !strings.Contains(body, `<label for="password">`) {
		t.Fatalf("sign-in page: %d\n%s", resp.StatusCode, body)
	}
	resp, body = b.post("/login", url.Values{"email": {"owner@example.org"}, "password": {"wrong password!"}, "next": {"/"}}, "same-origin")
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "Wrong email or password") {
		t.Fatalf("a wrong password: %d\n%s", resp.StatusCode, body)
	}
	for next, want := range map[string]string{"/sites/blog/backups": "/sites/blog/backups", "//evil.example": "/", "https://evil.example/": "/", "/\\evil": "/"} {
		b := e.browser()
		resp, _ := b.post("/login", url.Values{"email": {"owner@example.org"}, "password": {ownerPassword}, "next": {next}}, "same-origin")
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != want {
			t.Errorf("sign in with next=%q: %d → %q, want %q", next, resp.StatusCode, resp.Header.Get("Location"), want)
		}
	}
	b.signIn("owner@example.org", ownerPassword)
	if resp, body := b.get("/"); resp.StatusCode != 200 || !strings.Contains(body, "owner@example.org") {
		t.Fatalf("sites page after sign-in: %d\n%s", resp.StatusCode, body)
	}
	if resp, _ := b.post("/logout", nil, "same-origin"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign out: %d", resp.StatusCode)
	}
	if resp, _ := b.get("/"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("after sign-out the sites page answered %d", resp.StatusCode)
	}
}

// TestDashboardPages: the owner sees the sites, the backups by day (the
// latest day first), the restore dialog with its six items, and starts a
// backup and a restore that land on their progress pages as queued jobs
// with the right parameters. A viewer sees the same pages without a
// control, and the server refuses the forms anyway; a cross-site form is
// refused.
func TestDashboardPages(t *testing.T) {
	e := newEnv(t, nil)
	points := dashboardSite(t, e)
	owner := e.browser()
	owner.signIn("owner@example.org", ownerPassword)

	_, body := owner.get("/")
	for _, want := range []string{`data-site="blog"`, `href="/sites/blog/backups"`, `data-action="backup-now"`, "/srv/blog"} {
		if !strings.Contains(body, want) {
			t.Errorf("sites page lacks %q", want)
		}
	}
	resp, body := owner.get("/sites/blog/backups")
	if resp.StatusCode != 200 || !strings.Contains(body, `data-point="`+points[1].ID.String()+`"`) || strings.Contains(body, `data-point="`+points[0].ID.String()+`"`) ||
		!strings.Contains(body, `href="?day=2026-12-03"`) || !strings.Contains(body, `aria-current="date">2026-12-04`) {
		t.Fatalf("backups page (latest day): %d\n%s", resp.StatusCode, body)
	}
	_, body = owner.get("/sites/blog/backups?day=2026-12-03")
	if !strings.Contains(body, `data-point="`+points[0].ID.String()+`"`) || !strings.Contains(body, `data-action="restore"`) {
		t.Fatalf("backups page of 2026-12-03:\n%s", body)
	}
	resp, body = owner.get("/sites/blog/restore?point=" + points[0].ID.Short())
	if resp.StatusCode != 200 || strings.Count(body, `name="item"`) != 6 || !strings.Contains(body, `value="`+points[0].ID.String()+`"`) {
		t.Fatalf("restore dialog: %d\n%s", resp.StatusCode, body)
	}
	if resp, _ := owner.get("/sites/nosuch/backups"); resp.StatusCode != 404 {
		t.Errorf("backups of an unknown site: %d", resp.StatusCode)
	}

	// Back up now → the job's page.
	resp, _ = owner.post("/sites/blog/backup", nil, "same-origin")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/jobs/") {
		t.Fatalf("back up now: %d → %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	jobPage := resp.Header.Get("Location")
	if _, body := owner.get("/sites/blog/backups"); !strings.Contains(body, `<a href="`+jobPage+`">Backup: queued, 0%`) {
		t.Errorf("the backups page does not show the queued backup:\n%s", body)
	}
	_, body = owner.get(jobPage)
	if !strings.Contains(body, `id="progress"`) || !strings.Contains(body, `data-state="queued"`) || !strings.Contains(body, `http-equiv="refresh"`) {
		t.Fatalf("job page:\n%s", body)
	}
	// Restore only the database, with no item: refused with the dialog.
	resp, body = owner.post("/sites/blog/restore", url.Values{"point": {points[0].ID.String()}}, "same-origin")
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "Choose at least one") {
		t.Fatalf("restore without items: %d\n%s", resp.StatusCode, body)
	}
	resp, _ = owner.post("/sites/blog/restore", url.Values{"point": {points[0].ID.String()}, "item": {"database"}}, "same-origin")
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("restore: %d", resp.StatusCode)
	}
	id := strings.TrimPrefix(resp.Header.Get("Location"), "/jobs/")
	r, jb := e.do("GET", "/api/v1/jobs/"+id, e.token(sitevault.RoleOwner), nil)
	var out struct{ Job sitevault.Job }
	if err := json.Unmarshal(jb, &out.Job); err != nil {
		t.Fatalf("%v: %s", err, jb)
	}
	var params RestoreParams
	json.Unmarshal(out.Job.Params, &params)
	if r.StatusCode != 200 || out.Job.Kind != sitevault.JobRestore || params.Point != points[0].ID.String() || len(params.Items) != 1 || params.Items[0] != "database" {
		t.Fatalf("the restore job: %d %+v %+v", r.StatusCode, out.Job, params)
	}
	// A form from another site is refused.
	if resp, _ := owner.post("/sites/blog/backup", nil, "cross-site"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("a cross-site form: %d, want 403", resp.StatusCode)
	}

	// A viewer: the pages, no controls; the forms refused.
	if _, err := e.cat.AddUser(context.Background(), sitevault.User{Email: "viewer@example.org", Role: sitevault.RoleViewer}, HashPassword("viewer-password-1")); err != nil {
		t.Fatal(err)
	}
	viewer := e.browser()
	viewer.signIn("viewer@example.org", "viewer-password-1")
	for _, page := range []string{"/", "/sites/blog/backups?day=2026-12-03", jobPage} {
		resp, body := viewer.get(page)
		if resp.StatusCode != 200 || strings.Contains(body, "data-action=") || strings.Contains(body, `method="post" action="/sites`) {
			t.Errorf("viewer on %s: %d, with controls:\n%s", page, resp.StatusCode, body)
		}
	}
	before, _ := e.cat.Jobs(context.Background(), catalog.JobFilter{Limit: 1000})
	for _, form := range []string{"/sites/blog/backup", "/sites/blog/undo"} {
		if resp, _ := viewer.post(form, nil, "same-origin"); resp.StatusCode != http.StatusForbidden {
			t.Errorf("viewer POST %s: %d, want 403", form, resp.StatusCode)
		}
	}
	if resp, _ := viewer.post("/sites/blog/restore", url.Values{"point": {points[0].ID.String()}, "item": {"database"}}, "same-origin"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("viewer restore: %d, want 403", resp.StatusCode)
	}
	after, _ := e.cat.Jobs(context.Background(), catalog.JobFilter{Limit: 1000})
	if len(after) != len(before) {
		t.Errorf("a viewer's forms queued %d jobs", len(after)-len(before))
	}
}

// TestDashboardWeight: each page with its style sheet and script stays
// under 100 KB.
func TestDashboardWeight(t *testing.T) {
	e := newEnv(t, nil)
	points := dashboardSite(t, e)
	b := e.browser()
	b.signIn("owner@example.org", ownerPassword)
	_, css := b.get("/static/site.css")
	_, js := b.get("/static/progress.js")
	if len(css) < 1000 || len(js) < 500 {
		t.Fatalf("assets: css %d bytes, js %d bytes", len(css), len(js))
	}
	for _, page := range []string{"/", "/sites/blog/backups", "/sites/blog/restore?point=" + points[0].ID.String(), "/login"} {
		_, html := b.get(page)
		if total := len(html) + len(css) + len(js); total > 100<<10 {
			t.Errorf("%s: %d bytes with its assets, over 100 KB", page, total)
		}
	}
}

// TestPointsNewestFirst: the API lists a site's points newest first, as
// docs/openapi.yaml says.
func TestPointsNewestFirst(t *testing.T) {
	e := newEnv(t, nil)
	points := dashboardSite(t, e)
	_, body := e.do("GET", "/api/v1/sites/blog/points", e.token(sitevault.RoleViewer), nil)
	var out struct {
		Points []PointView `json:"points"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatal(err)
	}
	if len(out.Points) != 2 || out.Points[0].ID != points[1].ID.String() || out.Points[1].ID != points[0].ID.String() {
		t.Fatalf("points: %+v, want %s then %s", out.Points, points[1].ID.Short(), points[0].ID.Short())
	}
}

// TestDashboardFailureCard: while a site's backups fail, the sites page
// says since when and the backups page shows the error and what to do.
func TestDashboardFailureCard(t *testing.T) {
	e := newEnv(t, nil)
	dashboardSite(t, e)
	ctx := context.Background()
	at := time.Date(2026, 12, 5, 2, 10, 0, 0, time.UTC)
	for i := range 2 {
		if _, _, err := e.cat.BackupEnded(ctx, "blog", false, at.Add(time.Duration(i)*time.Hour), "", 0, time.Second,
			"back up blog: the database refused the login", "database_login"); err != nil {
			t.Fatal(err)
		}
	}
	b := e.browser()
	b.signIn("owner@example.org", ownerPassword)
	_, body := b.get("/")
	if !strings.Contains(body, `class="dot failing"`) || !strings.Contains(body, "the database refused the login") || !strings.Contains(body, "failing since") {
		t.Errorf("sites page of a failing site:\n%s", body)
	}
	_, body = b.get("/sites/blog/backups")
	if !strings.Contains(body, "Backups are failing since") || !strings.Contains(body, "(2 in a row)") || !strings.Contains(body, "check DB_USER and DB_PASSWORD") {
		t.Errorf("backups page of a failing site:\n%s", body)
	}
}
