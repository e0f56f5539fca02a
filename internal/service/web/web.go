// Package web is the dashboard: server-rendered pages (html/template), one
// style sheet and one small script, all embedded in the binary. Package
// service mounts it beside the API and gives it the same catalog,
// repository and job queue the API handlers use (the Service interface);
// the pages never call the API over HTTP.
//
// Pages need a signed-in user (the API's session cookie) and send others
// to /login. Every form that changes something is a POST carrying a CSRF
// token (a double-submit cookie, see csrf.go) and needs an owner: viewers
// see the same pages without action controls, and their POSTs get 403.
// Navigation works without JavaScript; the script only makes a job page's
// progress live (Server-Sent Events from /api/v1/jobs/{id}/events).
package web

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sitevault/sitevault/internal/catalog"
	"github.com/sitevault/sitevault/internal/notify"
	"github.com/sitevault/sitevault/internal/repository"
	"github.com/sitevault/sitevault/internal/sitevault"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static/*
var staticFS embed.FS

// Service is what the dashboard needs from the service. Catalog reads go
// straight to the catalog; everything that starts work or touches
// sessions goes through the service, as the API's handlers do.
type Service interface {
	// Catalog is the service's catalog (sites, statuses, jobs, activity).
	Catalog() *catalog.Catalog
	// User is the request's signed-in user (session cookie), nil if none.
	User(r *http.Request) *sitevault.User
	// SignIn checks a password (rate-limited) and sets the session cookie;
	// its error is fit to show on the sign-in form.
	SignIn(w http.ResponseWriter, r *http.Request, email, password string) (*sitevault.User, error)
	// SignOut ends the request's session and clears its cookie.
	SignOut(w http.ResponseWriter, r *http.Request)
	// Enqueue queues a job (one backup per site at a time, as the API).
	Enqueue(ctx context.Context, j catalog.NewJob) (*sitevault.Job, error)
	// Points lists a site's restore points, oldest first.
	Points(ctx context.Context, site string) ([]*repository.Snapshot, error)
	// StartRestore checks a restore (point, items, paths, tables) and queues it.
	StartRestore(ctx context.Context, site, by string, req RestoreRequest) (*sitevault.Job, error)
	// StartUndo queues the undo of the site's last restore.
	StartUndo(ctx context.Context, site, by string) (*sitevault.Job, error)
	// StartEventRestore queues "restore to this event" or (before) "undo
	// this event" for an activity event.
	StartEventRestore(ctx context.Context, site, by string, event int64, before bool) (*sitevault.Job, error)
	// StartDownload checks a download (point, "tar.gz" or "zip") and queues it.
	StartDownload(ctx context.Context, site, by, point, format string) (*sitevault.Job, error)
	// DownloadLink is a finished download's link and when it expires.
	DownloadLink(job int64) (string, time.Time)
	// SaveSiteSettings validates and saves a site whose schedule,
	// retention or notify addresses changed (not its connection).
	SaveSiteSettings(ctx context.Context, st sitevault.Site) error
	// PairingCode makes a one-time code for the site's connector plugin.
	PairingCode(ctx context.Context, site string) (string, time.Time, error)

	// SMTP is the stored mail settings (nil: none); SetSMTP saves them
	// (an empty password keeps the stored one); SendTestMail tries them.
	SMTP(ctx context.Context) (*notify.SMTPSettings, error)
	SetSMTP(ctx context.Context, st notify.SMTPSettings) error
	SendTestMail(ctx context.Context, to string) error
	// AddUser checks and adds a user.
	AddUser(ctx context.Context, email, name string, role sitevault.Role, password string) error
	// SetUserRole changes a user's role; RemoveUser removes a user. Both
	// refuse (a *Refusal) to leave the service without an owner.
	SetUserRole(ctx context.Context, id int64, role sitevault.Role) error
	RemoveUser(ctx context.Context, id int64) error
	// RevokeToken removes an API token u may see (an owner: any).
	RevokeToken(ctx context.Context, u *sitevault.User, id int64) error
	// Tokens lists the API tokens u may see (an owner: all).
	Tokens(ctx context.Context, u *sitevault.User) ([]*sitevault.Token, error)
	// NewToken makes an API token of u; the secret is shown once.
	NewToken(ctx context.Context, u *sitevault.User, name string) (string, error)

	// CheckSite tests a site's settings as `site add` does (connection,
	// files, wp-config.php, database login) and records the host key when
	// acceptKey is its fingerprint; an unknown key is a *HostKeyUnknown.
	// With discover, the check also lists what a backup would take
	// (tables, files, the rules that leave things out; bounded in time).
	CheckSite(ctx context.Context, st *sitevault.Site, acceptKey string, discover bool) (*SiteCheck, error)
	// AddSite saves a checked site.
	AddSite(ctx context.Context, st sitevault.Site) error
}

// RestoreRequest is what the restore dialog asks for.
type RestoreRequest struct {
	Point                string
	Items, Paths, Tables []string
	Exact                bool // delete files the point does not hold, in the restored items
}

// Refusal is a request the service refuses (bad input, a conflict): the
// page shows Err with Status.
type Refusal struct {
	Status int
	Err    error
}

func (e *Refusal) Error() string { return e.Err.Error() }
func (e *Refusal) Unwrap() error { return e.Err }

// Dashboard serves the pages.
type Dashboard struct {
	svc   Service
	log   *slog.Logger
	pages map[string]*template.Template
	now   func() time.Time
}

// pageNames are the templates under templates/, each with layout.html.
var pageNames = []string{"login", "sites", "backups", "job", "error", "restore", "activity", "downloads", "sitesettings", "settings", "addsite"}

// New parses the templates (a bad template is a build bug: it panics).
func New(svc Service, log *slog.Logger) *Dashboard {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := &Dashboard{svc: svc, log: log, pages: map[string]*template.Template{}, now: time.Now}
	for _, name := range pageNames {
		t := template.New(name).Funcs(funcs)
		d.pages[name] = template.Must(t.ParseFS(templateFS, "templates/layout.html", "templates/check.html", "templates/"+name+".html"))
	}
	return d
}

// Mount adds the dashboard's routes to mux (the API's mux: its own
// patterns are more specific, so /api/ stays the API's).
func (d *Dashboard) Mount(mux *http.ServeMux) {
	static, _ := fs.Sub(staticFS, "static")
	files := http.StripPrefix("/static/", http.FileServerFS(static))
	mux.Handle("GET /static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		files.ServeHTTP(w, r)
	}))
	mux.HandleFunc("GET /login", d.loginPage)
	mux.HandleFunc("POST /login", d.loginForm)
	mux.HandleFunc("POST /logout", d.action(false, d.logout))
	mux.HandleFunc("GET /{$}", d.page(d.sitesPage))
	mux.HandleFunc("GET /sites/{site}", d.page(func(w http.ResponseWriter, r *http.Request, _ *sitevault.User) {
		http.Redirect(w, r, sitePath(r.PathValue("site"), "backups"), http.StatusSeeOther)
	}))
	mux.HandleFunc("GET /sites/{site}/backups", d.page(d.backupsPage))
	mux.HandleFunc("POST /sites/{site}/backup", d.action(true, d.backupNow))
	mux.HandleFunc("GET /jobs/{id}", d.page(d.jobPage))
	mux.HandleFunc("GET /sites/{site}/restore", d.page(d.restorePage))
	mux.HandleFunc("POST /sites/{site}/restore", d.action(true, d.restoreForm))
	mux.HandleFunc("POST /sites/{site}/undo", d.action(true, d.undoForm))
	mux.HandleFunc("GET /sites/{site}/activity", d.page(d.activityPage))
	mux.HandleFunc("POST /sites/{site}/activity/{id}/restore", d.action(true, d.eventForm(false)))
	mux.HandleFunc("POST /sites/{site}/activity/{id}/undo", d.action(true, d.eventForm(true)))
	mux.HandleFunc("POST /sites/{site}/activity/{id}/download", d.action(true, d.eventDownload))
	mux.HandleFunc("GET /sites/{site}/downloads", d.page(d.downloadsPage))
	mux.HandleFunc("POST /sites/{site}/downloads", d.action(true, d.downloadForm))
	mux.HandleFunc("GET /sites/{site}/settings", d.page(d.siteSettingsPage))
	mux.HandleFunc("POST /sites/{site}/settings", d.action(true, d.siteSettingsForm))
	mux.HandleFunc("GET /sites/new", d.page(d.addSitePage))
	mux.HandleFunc("POST /sites/new", d.action(true, d.addSiteForm))
	mux.HandleFunc("GET /settings", d.page(d.settingsPage))
	mux.HandleFunc("POST /settings", d.action(true, d.settingsForm))
	mux.HandleFunc("POST /settings/tokens", d.action(false, d.tokenForm))
	mux.HandleFunc("POST /settings/tokens/{id}/revoke", d.action(false, d.revokeTokenForm))
}

// page is the frame every page is rendered in.
type page struct {
	Title   string
	Nav     string
	User    *sitevault.User
	CSRF    string
	CanAct  bool   // an owner: action controls are shown
	Refresh int    // seconds; 0: no meta refresh
	Flash   string // a one-line notice
	D       any    // the page's own data
}

// page wraps a GET handler: it needs a signed-in user.
func (d *Dashboard) page(h func(http.ResponseWriter, *http.Request, *sitevault.User)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u := d.svc.User(r)
		if u == nil {
			http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		h(w, r, u)
	}
}

// action wraps a POST handler: a signed-in user, the CSRF token, and an
// owner when ownerOnly (viewers are refused whatever the page showed).
func (d *Dashboard) action(ownerOnly bool, h func(http.ResponseWriter, *http.Request, *sitevault.User)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
		u := d.svc.User(r)
		if u == nil {
			http.Redirect(w, r, "/login", http.StatusSeeOther)
			return
		}
		if !checkCSRF(r) {
			d.fail(w, r, u, http.StatusForbidden, "Form expired", "This form is out of date or came from another page. Go back, reload the page and try again.")
			return
		}
		if ownerOnly && u.Role != sitevault.RoleOwner {
			d.fail(w, r, u, http.StatusForbidden, "Not allowed", "Viewers see everything but cannot back up, restore, download or change settings. Ask an owner.")
			return
		}
		h(w, r, u)
	}
}

// render writes a page; it renders into a buffer so that a template
// error never leaves half a page.
func (d *Dashboard) render(w http.ResponseWriter, r *http.Request, status int, name string, p page) {
	if p.User != nil {
		p.CanAct = p.User.Role == sitevault.RoleOwner
	}
	p.CSRF = csrfToken(w, r)
	var buf bytes.Buffer
	if err := d.pages[name].ExecuteTemplate(&buf, "layout", p); err != nil {
		d.log.Error("render page", "page", name, "err", err)
		http.Error(w, "the page could not be rendered; see the service's log", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'self'; style-src 'self'; script-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

type errorData struct{ Message string }

// fail renders an error page.
func (d *Dashboard) fail(w http.ResponseWriter, r *http.Request, u *sitevault.User, status int, title, msg string) {
	d.render(w, r, status, "error", page{Title: title, User: u, D: errorData{Message: msg}})
}

// failErr renders err as a page: not found is 404, bad input 422, the rest 500.
func (d *Dashboard) failErr(w http.ResponseWriter, r *http.Request, u *sitevault.User, err error) {
	var ref *Refusal
	switch {
	case errors.As(err, &ref):
		d.fail(w, r, u, ref.Status, "Not done", ref.Err.Error())
	case errors.Is(err, catalog.ErrNotFound), errors.Is(err, catalog.ErrSiteNotFound):
		d.fail(w, r, u, http.StatusNotFound, "Not found", err.Error())
	default:
		d.log.Error("dashboard", "path", r.URL.Path, "err", err)
		d.fail(w, r, u, http.StatusInternalServerError, "Something went wrong", err.Error())
	}
}

// sitePath is /sites/NAME/rest with NAME escaped.
func sitePath(site, rest string) string {
	p := "/sites/" + url.PathEscape(site)
	if rest != "" {
		p += "/" + rest
	}
	return p
}

func jobPath(id int64) string { return "/jobs/" + strconv.FormatInt(id, 10) }

// safeNext keeps a post-sign-in redirect on this site: a path, never
// "//host" or a scheme.
func safeNext(next string) string {
	if next == "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") ||
		strings.ContainsAny(next, "\r\n") {
		return "/"
	}
	return next
}
