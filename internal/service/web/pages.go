package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/sitevault/sitevault/internal/catalog"
	"github.com/sitevault/sitevault/internal/failure"
	"github.com/sitevault/sitevault/internal/point"
	"github.com/sitevault/sitevault/internal/sitevault"
)

var funcs = map[string]any{
	"sitePath": sitePath,
	"tab":      func(site, tab string) map[string]string { return map[string]string{"Site": site, "Tab": tab} },
	"plural": func(n any, word string) string {
		switch v := n.(type) {
		case int:
			return plural(v, word)
		case int64:
			return plural(int(v), word)
		case float64: // a number decoded from JSON into any
			if v == float64(int(v)) {
				return plural(int(v), word)
			}
		}
		return fmt.Sprint(n) + " " + word + "s"
	},
}

// --- sign in ---

type loginData struct{ Next, Email, Error string }

func (d *Dashboard) loginPage(w http.ResponseWriter, r *http.Request) {
	next := safeNext(r.URL.Query().Get("next"))
	if d.svc.User(r) != nil {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	d.render(w, r, http.StatusOK, "login", page{Title: "Sign in", D: loginData{Next: next}})
}

func (d *Dashboard) loginForm(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 1<<16)
	next := safeNext(r.PostFormValue("next"))
	email := r.PostFormValue("email")
	if !checkCSRF(r) {
		d.render(w, r, http.StatusForbidden, "login", page{Title: "Sign in",
			D: loginData{Next: next, Email: email, Error: "The form was out of date. Please sign in again."}})
		return
	}
	if _, err := d.svc.SignIn(w, r, email, r.PostFormValue("password")); err != nil {
		d.render(w, r, http.StatusUnauthorized, "login", page{Title: "Sign in",
			D: loginData{Next: next, Email: email, Error: err.Error()}})
		return
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (d *Dashboard) logout(w http.ResponseWriter, r *http.Request, _ *sitevault.User) {
	d.svc.SignOut(w, r)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// --- sites ---

type siteRow struct {
	Name, Location        string
	State, StateText      string // dot: ok | failing | none | running
	LastBackup, Age       string
	Size                  string
	Stored                string // what its restore points hold in the repository
	Next                  string
	LastError, ErrorSince string
}

type sitesData struct {
	Sites              []siteRow
	Total, Failing     int
	Page, Pages        int
	PrevPage, NextPage int // 0: none
}

// sitesPerPage keeps the sites page light with a thousand sites.
const sitesPerPage = 50

func (d *Dashboard) sitesPage(w http.ResponseWriter, r *http.Request, u *sitevault.User) {
	ctx := r.Context()
	cat := d.svc.Catalog()
	sites, err := cat.Sites(ctx)
	if err != nil {
		d.failErr(w, r, u, err)
		return
	}
	statuses, err := cat.Statuses(ctx)
	if err != nil {
		d.failErr(w, r, u, err)
		return
	}
	byName := make(map[string]*catalog.SiteStatus, len(statuses))
	for _, st := range statuses {
		byName[st.Site] = st
	}
	now := d.now()
	data := sitesData{Total: len(sites), Page: 1, Pages: max(1, (len(sites)+sitesPerPage-1)/sitesPerPage)}
	for _, st := range statuses {
		if st.Failures > 0 {
			data.Failing++
		}
	}
	if n, err := strconv.Atoi(r.URL.Query().Get("page")); err == nil && n > 0 {
		data.Page = min(n, data.Pages)
	}
	if data.Page > 1 {
		data.PrevPage = data.Page - 1
	}
	if data.Page < data.Pages {
		data.NextPage = data.Page + 1
	}
	first := (data.Page - 1) * sitesPerPage
	for _, st := range sites[first:min(len(sites), first+sitesPerPage)] {
		data.Sites = append(data.Sites, siteRowOf(st, byName[st.Name], now))
	}
	d.render(w, r, http.StatusOK, "sites", page{Title: "Sites", Nav: "sites", User: u, D: data})
}

func siteRowOf(st sitevault.Site, status *catalog.SiteStatus, now time.Time) siteRow {
	row := siteRow{Name: st.Name, Location: st.Location(), State: "none", StateText: "no backup yet",
		Size: "—", Stored: "—", Next: "not scheduled"}
	loc, err := st.Schedule.Location()
	if err != nil {
		loc = time.UTC
	}
	if status == nil {
		return row
	}
	if status.LastSuccess != nil {
		row.State, row.StateText = "ok", "backed up"
		row.LastBackup = status.LastSuccess.In(loc).Format("2 Jan 2006 15:04 MST")
		row.Age = ago(now, *status.LastSuccess)
		row.Size = humanize.IBytes(uint64(status.LastBytes))
	}
	if status.StoredBytes > 0 {
		row.Stored = humanize.IBytes(uint64(status.StoredBytes))
	}
	if status.NextBackup != nil {
		row.Next = status.NextBackup.In(loc).Format("2 Jan 15:04 MST")
	}
	if status.Failures > 0 {
		row.State, row.StateText = "failing", "backups failing"
		row.LastError = status.LastError
		if status.FailingSince != nil {
			row.ErrorSince = status.FailingSince.In(loc).Format("2 Jan 2006 15:04 MST") + " (" + ago(now, *status.FailingSince) + " ago)"
		}
	}
	return row
}

// ago is a short duration in words: "5 minutes", "3 hours", "2 days".
func ago(now, t time.Time) string {
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return "less than a minute"
	case d < time.Hour:
		return plural(int(d/time.Minute), "minute")
	case d < 48*time.Hour:
		return plural(int(d/time.Hour), "hour")
	default:
		return plural(int(d/(24*time.Hour)), "day")
	}
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return strconv.Itoa(n) + " " + word + "s"
}

// --- back up now ---

func (d *Dashboard) backupNow(w http.ResponseWriter, r *http.Request, u *sitevault.User) {
	st, err := d.svc.Catalog().Site(r.Context(), r.PathValue("site"))
	if err != nil {
		d.failErr(w, r, u, err)
		return
	}
	j, err := d.svc.Enqueue(r.Context(), catalog.NewJob{Kind: sitevault.JobBackup, Site: st.Name, Trigger: "manual",
		CreatedBy: u.Email, Params: map[string]string{"trigger": "manual"}})
	if err != nil {
		d.failErr(w, r, u, err)
		return
	}
	http.Redirect(w, r, jobPath(j.ID), http.StatusSeeOther)
}

// --- backups of a site ---

type dayLink struct {
	Day     string
	Count   int
	Current bool
}

type pointRow struct {
	ID, Short, Time, Label, Changes, Size string
}

type backupsData struct {
	Site, Day, TimeZone string
	Days                []dayLink
	Points              []pointRow
	Status              siteRow
	Advice              string
	Running             *sitevault.Job
}

func (d *Dashboard) backupsPage(w http.ResponseWriter, r *http.Request, u *sitevault.User) {
	ctx := r.Context()
	st, err := d.svc.Catalog().Site(ctx, r.PathValue("site"))
	if err != nil {
		d.failErr(w, r, u, err)
		return
	}
	loc, err := st.Schedule.Location()
	if err != nil {
		loc = time.UTC
	}
	points, err := d.svc.Points(ctx, st.Name)
	if err != nil {
		d.failErr(w, r, u, err)
		return
	}
	status, _ := d.svc.Catalog().Status(ctx, st.Name)
	data := backupsData{Site: st.Name, TimeZone: loc.String(), Status: siteRowOf(st, status, d.now())}
	if status != nil && status.Failures > 0 {
		data.Advice = advice(status.LastErrorCode)
	}
	counts := map[string]int{}
	var order []string
	for i := len(points) - 1; i >= 0; i-- { // newest first
		day := point.Day(points[i], loc)
		if counts[day] == 0 {
			order = append(order, day)
		}
		counts[day]++
	}
	data.Day = r.URL.Query().Get("day")
	if data.Day == "" && len(order) > 0 {
		data.Day = order[0]
	}
	var onDay []pointRow
	if data.Day != "" {
		day, err := point.ParseDay(data.Day, loc)
		if err != nil {
			d.fail(w, r, u, http.StatusBadRequest, "Not a day", "day: "+err.Error()+" (use YYYY-MM-DD)")
			return
		}
		sel := point.OnDay(points, day)
		for i := len(sel) - 1; i >= 0; i-- {
			sn := sel[i]
			pr := pointRow{ID: sn.ID.String(), Short: sn.ID.String()[:8], Time: sn.Time.In(loc).Format("15:04:05"),
				Label: point.Label(sn), Changes: changes(sn.Meta)}
			if sn.Summary != nil {
				pr.Size = humanize.IBytes(uint64(sn.Summary.BytesTotal))
			}
			onDay = append(onDay, pr)
		}
	}
	for _, day := range order {
		data.Days = append(data.Days, dayLink{Day: day, Count: counts[day], Current: day == data.Day})
	}
	data.Points = onDay
	if jobs, err := d.svc.Catalog().Jobs(ctx, catalog.JobFilter{Site: st.Name, Kind: sitevault.JobBackup,
		States: []sitevault.JobState{sitevault.JobQueued, sitevault.JobRunning}, Limit: 1}); err == nil && len(jobs) > 0 {
		data.Running = jobs[0]
	}
	p := page{Title: st.Name + " · Backups", Nav: "sites", User: u, D: data}
	if data.Running != nil {
		p.Refresh = 5
	}
	d.render(w, r, http.StatusOK, "backups", p)
}

// changes says what a point changed, from its metadata, in words.
func changes(meta map[string]string) string {
	var parts []string
	if n, _ := strconv.Atoi(meta[point.MetaFilesChanged]); n > 0 {
		parts = append(parts, plural(n, "file")+" changed")
	}
	if n, _ := strconv.Atoi(meta[point.MetaTablesChanged]); n > 0 {
		parts = append(parts, plural(n, "table")+" changed")
	}
	if len(parts) == 0 {
		return "no change recorded"
	}
	return strings.Join(parts, ", ")
}

// --- jobs ---

// jobResult is the part of a finished job's result the page shows (a
// restore's, an undo's, a backup's or a download's).
type jobResult struct {
	Point        string   `json:"point"`
	Items        []string `json:"items"`
	FilesWritten int      `json:"files_written"`
	Tables       any      `json:"tables"`
	Warnings     []string `json:"warnings"`
	Failed       []string `json:"failed"`
	Size         int64    `json:"size"`
}

type jobData struct {
	Job              *sitevault.Job
	Result           jobResult
	Link, Expires    string
	Percent          int
	Started, Elapsed string
	Advice           string
	Final, CanUndo   bool
}

func (d *Dashboard) jobPage(w http.ResponseWriter, r *http.Request, u *sitevault.User) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		d.fail(w, r, u, http.StatusNotFound, "Not found", "no such job: "+r.PathValue("id"))
		return
	}
	j, err := d.svc.Catalog().Job(r.Context(), id)
	if err != nil {
		d.failErr(w, r, u, err)
		return
	}
	data := jobData{Job: j, Percent: int(j.Progress.Percent), Final: j.State.Final()}
	if j.State == sitevault.JobSucceeded {
		data.Percent = 100
	}
	data.Percent = max(0, min(100, data.Percent))
	start := j.Created
	if j.Started != nil {
		start = *j.Started
	}
	data.Started = start.UTC().Format("15:04:05 MST")
	end := d.now()
	if j.Finished != nil {
		end = *j.Finished
	}
	data.Elapsed = end.Sub(start).Round(time.Second).String()
	data.CanUndo = j.Kind == sitevault.JobRestore && j.State == sitevault.JobSucceeded
	if j.State == sitevault.JobSucceeded {
		json.Unmarshal(j.Result, &data.Result)
		if j.Kind == sitevault.JobDownload && u.Role == sitevault.RoleOwner {
			link, exp := d.svc.DownloadLink(j.ID)
			data.Link, data.Expires = link, exp.UTC().Format("15:04 MST")
		}
	}
	if j.State == sitevault.JobFailed {
		data.Advice = advice(j.ErrorCode)
	}
	title := fmt.Sprintf("%s %s", strings.ToUpper(string(j.Kind[:1]))+string(j.Kind[1:]), j.Site)
	p := page{Title: title, Nav: "sites", User: u, D: data}
	if !data.Final {
		p.Refresh = 3
	}
	d.render(w, r, http.StatusOK, "job", p)
}

// advice is what to do about a failure with code (the API's advice).
func advice(code string) string {
	if a := failure.Advice(code); a != "" {
		return a
	}
	return "Check the site's connection on its settings page (host, credentials, disk space), fix what the error names, then try again."
}
