package service

import (
	"bytes"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/sitevault/sitevault/internal/backup"
	"github.com/sitevault/sitevault/internal/catalog"
	"github.com/sitevault/sitevault/internal/point"
	"github.com/sitevault/sitevault/internal/restore"
	"github.com/sitevault/sitevault/internal/service/web"
	"github.com/sitevault/sitevault/internal/sitevault"
)

// The dashboard: server-rendered pages over the same catalog, repository
// and job queue as the API (package web holds the templates). Pages need a
// signed-in user (the API's session cookie) and send others to /login;
// every form that changes something is a POST that needs an owner, and
// the mux's cross-origin protection refuses it from another site.

// dashboardRoutes are the pages, beside the API's routes.
func (s *Service) dashboardRoutes(mux *http.ServeMux) {
	// Each page is the layout with the page's "title" and "main".
	s.pages = map[string]*template.Template{}
	for _, name := range []string{"login", "sites", "backups", "restore", "job", "error"} {
		s.pages[name] = template.Must(template.New(name).ParseFS(web.Templates, "templates/layout.html", "templates/"+name+".html"))
	}
	static, _ := fs.Sub(web.Static, "static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", cacheFor(time.Hour, http.FileServerFS(static))))
	mux.HandleFunc("GET /login", s.loginPage)
	mux.HandleFunc("POST /login", s.loginForm)
	mux.HandleFunc("POST /logout", s.logoutForm)
	mux.HandleFunc("GET /{$}", s.page(s.sitesPage))
	mux.HandleFunc("GET /sites/{site}", s.page(func(w http.ResponseWriter, r *http.Request, _ *sitevault.User) {
		http.Redirect(w, r, "/sites/"+url.PathEscape(r.PathValue("site"))+"/backups", http.StatusSeeOther)
	}))
	mux.HandleFunc("GET /sites/{site}/backups", s.page(s.backupsPage))
	mux.HandleFunc("GET /sites/{site}/restore", s.page(s.restorePage))
	mux.HandleFunc("POST /sites/{site}/restore", s.ownerPage(s.restoreForm))
	mux.HandleFunc("POST /sites/{site}/backup", s.ownerPage(s.backupForm))
	mux.HandleFunc("POST /sites/{site}/undo", s.ownerPage(s.undoForm))
	mux.HandleFunc("GET /jobs/{id}", s.page(s.jobPage))
}

func cacheFor(d time.Duration, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", fmt.Sprintf("public, max-age=%d", int(d.Seconds())))
		h.ServeHTTP(w, r)
	})
}

// pageData is what every page gets besides its own fields.
type pageData struct {
	User    *sitevault.User
	Nav     string
	Flash   string
	Refresh int // seconds; 0: none
	CanAct  bool
}

func (s *Service) render(w http.ResponseWriter, status int, name string, data any) {
	var buf bytes.Buffer
	if err := s.pages[name].ExecuteTemplate(&buf, "layout", data); err != nil {
		s.log.Error("render page", "page", name, "error", err)
		http.Error(w, "the page could not be drawn", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self'; script-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

func (s *Service) errorPage(w http.ResponseWriter, u *sitevault.User, status int, title, msg string) {
	s.render(w, status, "error", struct {
		pageData
		Title, Message string
	}{pageData{User: u}, title, msg})
}

// page requires a signed-in user; without one it sends the browser to the
// sign-in page, which comes back here.
func (s *Service) page(h func(http.ResponseWriter, *http.Request, *sitevault.User)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u := s.authenticate(r)
		if u == nil {
			http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		h(w, r, u)
	}
}

// ownerPage is page for forms that change something: owners only (a
// viewer gets 403, whatever the page showed).
func (s *Service) ownerPage(h func(http.ResponseWriter, *http.Request, *sitevault.User)) http.HandlerFunc {
	return s.page(func(w http.ResponseWriter, r *http.Request, u *sitevault.User) {
		if u.Role != sitevault.RoleOwner {
			s.errorPage(w, u, http.StatusForbidden, "Not allowed", "Your role ("+string(u.Role)+") may look, not change, restore or download.")
			return
		}
		h(w, r, u)
	})
}

// localNext keeps a redirect on this site: a path, never another host.
func localNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return "/"
	}
	return next
}

type loginData struct {
	pageData
	Next, Email, Error string
}

func (s *Service) loginPage(w http.ResponseWriter, r *http.Request) {
	if s.authenticate(r) != nil {
		http.Redirect(w, r, localNext(r.URL.Query().Get("next")), http.StatusSeeOther)
		return
	}
	s.render(w, http.StatusOK, "login", loginData{Next: localNext(r.URL.Query().Get("next"))})
}

func (s *Service) loginForm(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 1<<16)
	if err := r.ParseForm(); err != nil {
		s.render(w, http.StatusBadRequest, "login", loginData{Error: "The form could not be read."})
		return
	}
	email, next := r.PostForm.Get("email"), localNext(r.PostForm.Get("next"))
	_, status, _, err := s.startSession(w, r, email, r.PostForm.Get("password"))
	if err != nil {
		if status == 0 {
			status = http.StatusInternalServerError
		}
		msg := "Wrong email or password."
		if status == http.StatusTooManyRequests {
			msg = "Too many failed sign-ins: wait 15 minutes."
		}
		s.render(w, status, "login", loginData{Next: next, Email: email, Error: msg})
		return
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (s *Service) logoutForm(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil {
		s.cat.RemoveSession(r.Context(), hashToken(c.Value))
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// siteCard is a site on the sites page.
type siteCard struct {
	Name, Location, State, StateText string
	LastBackup, Age, Size, Next      string
	LastError, FailingSince          string
}

func (s *Service) sitesPage(w http.ResponseWriter, r *http.Request, u *sitevault.User) {
	sites, err := s.cat.Sites(r.Context())
	if err != nil {
		s.errorPage(w, u, http.StatusInternalServerError, "The catalog cannot be read", err.Error())
		return
	}
	statuses, err := s.cat.Statuses(r.Context())
	if err != nil {
		s.errorPage(w, u, http.StatusInternalServerError, "The catalog cannot be read", err.Error())
		return
	}
	byName := map[string]*catalog.SiteStatus{}
	for _, st := range statuses {
		byName[st.Site] = st
	}
	now := time.Now()
	cards := make([]siteCard, 0, len(sites))
	for _, st := range sites {
		c := siteCard{Name: st.Name, Location: st.Location(), State: "none", StateText: "no backup yet", Size: "–"}
		if ss := byName[st.Name]; ss != nil {
			if ss.LastSuccess != nil {
				c.State, c.StateText = "ok", "backups work"
				c.LastBackup = ss.LastSuccess.Local().Format("2006-01-02 15:04")
				c.Age = humanAge(now.Sub(*ss.LastSuccess))
				c.Size = humanize.IBytes(uint64(ss.LastBytes))
			}
			if ss.Failures > 0 {
				c.State, c.StateText = "failing", "backups are failing"
				c.LastError = ss.LastError
				if ss.FailingSince != nil {
					c.FailingSince = ss.FailingSince.Local().Format("2006-01-02 15:04")
				}
			}
			if ss.NextBackup != nil {
				c.Next = ss.NextBackup.Local().Format("2006-01-02 15:04")
			}
		}
		cards = append(cards, c)
	}
	s.render(w, http.StatusOK, "sites", struct {
		pageData
		Sites []siteCard
	}{pageData{User: u, Nav: "sites", CanAct: u.Role == sitevault.RoleOwner}, cards})
}

// humanAge says a duration as "3 min", "5 h", "2 days".
func humanAge(d time.Duration) string {
	switch {
	case d < time.Minute:
		return "under a minute"
	case d < time.Hour:
		return strconv.Itoa(int(d.Minutes())) + " min"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d.Hours())) + " h"
	}
	return strconv.Itoa(int(d.Hours()/24)) + " days"
}

type dayLink struct {
	Day     string
	Count   int
	Current bool
}

type runningJob struct {
	ID           int64
	Title, State string
	Percent      int
}

type failureCard struct {
	Error, Advice, Since string
	Failures             int
}

type pointCard struct {
	ID, Short, Time, Label, Changes, Size string
}

func (s *Service) backupsPage(w http.ResponseWriter, r *http.Request, u *sitevault.User) {
	st, err := s.cat.Site(r.Context(), r.PathValue("site"))
	if err != nil {
		s.errorPage(w, u, http.StatusNotFound, "No such site", "There is no site "+r.PathValue("site")+".")
		return
	}
	loc, err := st.Schedule.Location()
	if err != nil {
		loc = time.UTC
	}
	points, err := point.List(r.Context(), s.repo, st.Name)
	if err != nil {
		s.errorPage(w, u, http.StatusInternalServerError, "The restore points cannot be read", err.Error())
		return
	}
	counts := map[string]int{}
	var days []string // newest first, as point.List gives the points
	for _, sn := range points {
		d := point.Day(sn, loc)
		if counts[d] == 0 {
			days = append(days, d)
		}
		counts[d]++
	}
	day := r.URL.Query().Get("day")
	if day == "" && len(days) > 0 {
		day = days[0]
	}
	data := struct {
		pageData
		Site, Day, TimeZone string
		Days                []dayLink
		Points              []pointCard
		Running             []runningJob
		Failure             *failureCard
	}{pageData: pageData{User: u, Nav: "sites", CanAct: u.Role == sitevault.RoleOwner}, Site: st.Name, Day: day, TimeZone: loc.String()}
	// A job of the site under way (the first backup's progress among
	// them), and the failure card while backups fail.
	if jobs, err := s.cat.Jobs(r.Context(), catalog.JobFilter{Site: st.Name, States: []sitevault.JobState{sitevault.JobQueued, sitevault.JobRunning}, Limit: 5}); err == nil {
		for _, j := range jobs {
			title := jobTitles[j.Kind]
			if title == "" {
				title = string(j.Kind)
			}
			data.Running = append(data.Running, runningJob{ID: j.ID, Title: title, State: string(j.State), Percent: int(j.Progress.Percent)})
		}
	}
	if ss, err := s.cat.Status(r.Context(), st.Name); err == nil && ss != nil && ss.Failures > 0 {
		f := &failureCard{Error: ss.LastError, Advice: jobAdvice(ss.LastErrorCode), Failures: ss.Failures}
		if ss.FailingSince != nil {
			f.Since = ss.FailingSince.Local().Format("2006-01-02 15:04")
		}
		data.Failure = f
	}
	for _, d := range days {
		data.Days = append(data.Days, dayLink{Day: d, Count: counts[d], Current: d == day})
	}
	if day != "" {
		d, err := point.ParseDay(day, loc)
		if err != nil {
			s.errorPage(w, u, http.StatusBadRequest, "Not a day", "Give the day as YYYY-MM-DD.")
			return
		}
		for _, sn := range point.OnDay(points, d) { // newest first
			c := pointCard{ID: sn.ID.String(), Short: sn.ID.Short(), Time: sn.Time.In(loc).Format("15:04:05"), Label: point.Label(sn), Size: "–"}
			if sn.Summary != nil {
				c.Size = humanize.IBytes(uint64(sn.Summary.BytesTotal))
			}
			c.Changes = changesText(sn.Meta)
			data.Points = append(data.Points, c)
		}
	}
	s.render(w, http.StatusOK, "backups", data)
}

// changesText says what a point changed: "12 files, 3 tables changed".
func changesText(meta map[string]string) string {
	files, ferr := strconv.Atoi(meta[point.MetaFilesChanged])
	tables, terr := strconv.Atoi(meta[point.MetaTablesChanged])
	var parts []string
	if ferr == nil {
		parts = append(parts, plural(files, "file"))
	}
	if terr == nil {
		parts = append(parts, plural(tables, "table"))
	}
	if len(parts) == 0 {
		return "changes not recorded"
	}
	return strings.Join(parts, ", ") + " changed"
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}

// restoreItems are the dialog's checkboxes, in the order people think of
// a site.
var restoreItems = []struct{ Name, Title, What string }{
	{"themes", "Themes", "wp-content/themes: the site's look"},
	{"plugins", "Plugins", "wp-content/plugins and mu-plugins"},
	{"uploads", "Media uploads", "wp-content/uploads: images and files"},
	{"roots", "WordPress root files", "wp-config.php, .htaccess and other files beside WordPress (never WordPress itself)"},
	{"contents", "Other wp-content", "the rest of wp-content (languages, drop-ins, other folders)"},
	{backup.ItemDatabase, "Database", "posts, pages, comments, users, settings, orders: the site's tables"},
}

type restoreData struct {
	pageData
	Site, Point, Short, PointTime, Label, Error string
	Items                                       []struct{ Name, Title, What string }
}

func (s *Service) restorePage(w http.ResponseWriter, r *http.Request, u *sitevault.User) {
	st, err := s.cat.Site(r.Context(), r.PathValue("site"))
	if err != nil {
		s.errorPage(w, u, http.StatusNotFound, "No such site", "There is no site "+r.PathValue("site")+".")
		return
	}
	sn, err := s.findPoint(r.Context(), st.Name, r.URL.Query().Get("point"))
	if err != nil {
		s.errorPage(w, u, http.StatusNotFound, "No such restore point", err.Error())
		return
	}
	s.render(w, http.StatusOK, "restore", restoreData{pageData: pageData{User: u, Nav: "sites", CanAct: u.Role == sitevault.RoleOwner},
		Site: st.Name, Point: sn.ID.String(), Short: sn.ID.Short(), PointTime: sn.Time.Local().Format("2006-01-02 15:04"),
		Label: point.Label(sn), Items: restoreItems})
}

func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

func (s *Service) restoreForm(w http.ResponseWriter, r *http.Request, u *sitevault.User) {
	st, err := s.cat.Site(r.Context(), r.PathValue("site"))
	if err != nil {
		s.errorPage(w, u, http.StatusNotFound, "No such site", "There is no site "+r.PathValue("site")+".")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	if err := r.ParseForm(); err != nil {
		s.errorPage(w, u, http.StatusBadRequest, "The form could not be read", err.Error())
		return
	}
	sn, err := s.findPoint(r.Context(), st.Name, r.PostForm.Get("point"))
	if err != nil {
		s.errorPage(w, u, http.StatusNotFound, "No such restore point", err.Error())
		return
	}
	req := RestoreParams{Point: sn.ID.String(), Items: r.PostForm["item"], Paths: lines(r.PostForm.Get("paths")),
		Tables: lines(r.PostForm.Get("tables")), Delete: r.PostForm.Get("delete") == "1"}
	again := restoreData{pageData: pageData{User: u, Nav: "sites", CanAct: true}, Site: st.Name, Point: req.Point, Short: sn.ID.Short(),
		PointTime: sn.Time.Local().Format("2006-01-02 15:04"), Label: point.Label(sn), Items: restoreItems}
	if len(req.Items) == 0 {
		again.Error = "Choose at least one thing to restore."
		s.render(w, http.StatusUnprocessableEntity, "restore", again)
		return
	}
	for _, it := range req.Items {
		if !slices.ContainsFunc(restoreItems, func(x struct{ Name, Title, What string }) bool { return x.Name == it }) {
			again.Error = "Unknown item " + it + "."
			s.render(w, http.StatusUnprocessableEntity, "restore", again)
			return
		}
	}
	if len(req.Items) == len(restoreItems) && len(req.Paths) == 0 && len(req.Tables) == 0 {
		req.Items = nil // everything
	}
	if _, _, err := restore.ResolveItems(req.Items, req.Paths, req.Tables, sn.Meta[point.MetaContentDir]); err != nil {
		again.Error = err.Error()
		s.render(w, http.StatusUnprocessableEntity, "restore", again)
		return
	}
	s.enqueuePage(w, r, u, catalog.NewJob{Kind: sitevault.JobRestore, Site: st.Name, Params: req})
}

func (s *Service) backupForm(w http.ResponseWriter, r *http.Request, u *sitevault.User) {
	st, err := s.cat.Site(r.Context(), r.PathValue("site"))
	if err != nil {
		s.errorPage(w, u, http.StatusNotFound, "No such site", "There is no site "+r.PathValue("site")+".")
		return
	}
	s.enqueuePage(w, r, u, catalog.NewJob{Kind: sitevault.JobBackup, Site: st.Name, Trigger: "manual", Params: BackupParams{Trigger: "manual"}})
}

func (s *Service) undoForm(w http.ResponseWriter, r *http.Request, u *sitevault.User) {
	st, err := s.cat.Site(r.Context(), r.PathValue("site"))
	if err != nil {
		s.errorPage(w, u, http.StatusNotFound, "No such site", "There is no site "+r.PathValue("site")+".")
		return
	}
	s.enqueuePage(w, r, u, catalog.NewJob{Kind: sitevault.JobUndo, Site: st.Name})
}

// enqueuePage queues a job and shows its progress page.
func (s *Service) enqueuePage(w http.ResponseWriter, r *http.Request, u *sitevault.User, j catalog.NewJob) {
	j.CreatedBy = u.Email
	if j.Trigger == "" {
		j.Trigger = "dashboard"
	}
	job, err := s.Enqueue(r.Context(), j)
	if err != nil {
		status := http.StatusInternalServerError
		if errors.Is(err, catalog.ErrExists) || errors.Is(err, backup.ErrBusy) {
			status = http.StatusConflict
		}
		s.errorPage(w, u, status, "It could not start", err.Error())
		return
	}
	http.Redirect(w, r, "/jobs/"+strconv.FormatInt(job.ID, 10), http.StatusSeeOther)
}

var jobTitles = map[sitevault.JobKind]string{
	sitevault.JobBackup: "Backup", sitevault.JobRestore: "Restore", sitevault.JobUndo: "Undo of a restore",
	sitevault.JobDownload: "Download", sitevault.JobCheck: "Check", sitevault.JobPrune: "Prune",
}

func (s *Service) jobPage(w http.ResponseWriter, r *http.Request, u *sitevault.User) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		s.errorPage(w, u, http.StatusNotFound, "No such job", "There is no job "+r.PathValue("id")+".")
		return
	}
	j, err := s.cat.Job(r.Context(), id)
	if err != nil {
		s.errorPage(w, u, http.StatusNotFound, "No such job", "There is no job "+r.PathValue("id")+".")
		return
	}
	title := jobTitles[j.Kind]
	if title == "" {
		title = string(j.Kind)
	}
	if j.Site != "" {
		title += " of " + j.Site
	}
	percent := int(j.Progress.Percent)
	if j.State == sitevault.JobSucceeded {
		percent = 100
	}
	data := struct {
		pageData
		Title, Started, Advice string
		Job                    *sitevault.Job
		Percent                int
		Mail, CanUndo          bool
	}{pageData: pageData{User: u, Nav: "sites", CanAct: u.Role == sitevault.RoleOwner}, Title: title, Job: j, Percent: percent,
		Started: j.Created.Local().Format("2006-01-02 15:04:05"), Advice: adviceFor(j.ErrorCode),
		Mail:    j.Kind == sitevault.JobRestore || j.Kind == sitevault.JobUndo || j.Kind == sitevault.JobDownload,
		CanUndo: j.Kind == sitevault.JobRestore && u.Role == sitevault.RoleOwner}
	if !j.State.Final() {
		data.Refresh = 3 // without the script, the page follows the job by reloading
	}
	s.render(w, http.StatusOK, "job", data)
}
