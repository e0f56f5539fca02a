package web

import (
	"encoding/json"
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
	"github.com/sitevault/sitevault/internal/repository"
	"github.com/sitevault/sitevault/internal/sitevault"
	"github.com/sitevault/sitevault/internal/wordpress"
)

// --- restore dialog ---

type restoreItem struct{ Name, Label, Means string }

// restoreItems are the six items, as users know them.
var restoreItems = []restoreItem{
	{wordpress.ItemThemes, "Themes", "wp-content/themes: every theme's files."},
	{wordpress.ItemPlugins, "Plugins", "wp-content/plugins and mu-plugins: every plugin's files."},
	{wordpress.ItemUploads, "Uploads", "wp-content/uploads: images, documents and other media."},
	{wordpress.ItemRoots, "Root files", "Files in the WordPress root that are not WordPress itself: wp-config.php, .htaccess, robots.txt, your own folders."},
	{wordpress.ItemContents, "Other wp-content", "The rest of wp-content: languages, drop-ins such as object-cache.php."},
	{backup.ItemDatabase, "Database", "Every backed-up table: posts, pages, comments, users, settings."},
}

type restoreData struct {
	Site, Point, Short, When, Label string
	Items                           []restoreItem
}

func (d *Dashboard) restorePage(w http.ResponseWriter, r *http.Request, u *sitevault.User) {
	ctx := r.Context()
	st, err := d.svc.Catalog().Site(ctx, r.PathValue("site"))
	if err != nil {
		d.failErr(w, r, u, err)
		return
	}
	id := r.URL.Query().Get("point")
	points, err := d.svc.Points(ctx, st.Name)
	if err != nil {
		d.failErr(w, r, u, err)
		return
	}
	i := slices.IndexFunc(points, func(sn *repository.Snapshot) bool { return id != "" && sn.ID.String() == id })
	if i < 0 {
		d.fail(w, r, u, http.StatusNotFound, "No such restore point", "The site "+st.Name+" has no restore point "+id+". Pick one on its Backups page.")
		return
	}
	sn := points[i]
	loc, err := st.Schedule.Location()
	if err != nil {
		loc = time.UTC
	}
	data := restoreData{Site: st.Name, Point: sn.ID.String(), Short: sn.ID.String()[:8],
		When: sn.Time.In(loc).Format("Monday 2 January 2006, 15:04 MST"), Label: point.Label(sn), Items: restoreItems}
	d.render(w, r, http.StatusOK, "restore", page{Title: "Restore " + st.Name, Nav: "sites", User: u, D: data})
}

// lines splits a textarea into its non-empty lines (commas separate too).
func lines(v string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(v, func(r rune) bool { return r == '\n' || r == '\r' || r == ',' }) {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func (d *Dashboard) restoreForm(w http.ResponseWriter, r *http.Request, u *sitevault.User) {
	items := r.PostForm["item"]
	if len(items) == 0 {
		d.fail(w, r, u, http.StatusUnprocessableEntity, "Nothing to restore", "Tick at least one item to restore, then confirm again.")
		return
	}
	req := RestoreRequest{Point: r.PostFormValue("point"), Items: items, Paths: lines(r.PostFormValue("paths")),
		Tables: lines(r.PostFormValue("tables")), Exact: r.PostFormValue("delete") != ""}
	if len(req.Items) == len(restoreItems) && (len(req.Paths) > 0 || len(req.Tables) > 0) {
		req.Items = nil // single paths or tables narrow the restore to their items
	}
	j, err := d.svc.StartRestore(r.Context(), r.PathValue("site"), u.Email, req)
	d.toJob(w, r, u, j, err)
}

func (d *Dashboard) undoForm(w http.ResponseWriter, r *http.Request, u *sitevault.User) {
	st, err := d.svc.Catalog().Site(r.Context(), r.PathValue("site"))
	if err != nil {
		d.failErr(w, r, u, err)
		return
	}
	j, err := d.svc.StartUndo(r.Context(), st.Name, u.Email)
	d.toJob(w, r, u, j, err)
}

// toJob sends the browser to a queued job's page, or shows why not.
func (d *Dashboard) toJob(w http.ResponseWriter, r *http.Request, u *sitevault.User, j *sitevault.Job, err error) {
	if err != nil {
		d.failErr(w, r, u, err)
		return
	}
	http.Redirect(w, r, jobPath(j.ID), http.StatusSeeOther)
}

// --- activity log ---

type groupCount struct {
	Name  string
	Count int
	On    bool
}

type eventRow struct {
	ID                    int64
	When, Actor, Text     string
	Group, Object         string
	Restorable, HasBefore bool
	Point                 string
}

type activityData struct {
	Site, TimeZone         string
	From, To, Actor, Query string
	Groups                 []groupCount
	Events                 []eventRow
	Next                   string // the next page's query ("" on the last page)
	Paired                 bool
}

const activityPage = 50

func (d *Dashboard) activityPage(w http.ResponseWriter, r *http.Request, u *sitevault.User) {
	ctx := r.Context()
	cat := d.svc.Catalog()
	st, err := cat.Site(ctx, r.PathValue("site"))
	if err != nil {
		d.failErr(w, r, u, err)
		return
	}
	loc, err := st.Schedule.Location()
	if err != nil {
		loc = time.UTC
	}
	q := r.URL.Query()
	data := activityData{Site: st.Name, TimeZone: loc.String(), From: q.Get("from"), To: q.Get("to"), Actor: q.Get("actor"), Query: q.Get("q")}
	f := catalog.ActivityFilter{Site: st.Name, Actor: data.Actor, Text: data.Query, Limit: activityPage}
	for name, v := range map[string]string{"from": data.From, "to": data.To} {
		if v == "" {
			continue
		}
		t, err := point.ParseDay(v, loc)
		if err != nil {
			d.fail(w, r, u, http.StatusBadRequest, "Not a day", name+": "+err.Error()+" (use YYYY-MM-DD)")
			return
		}
		if name == "to" {
			f.To = t.AddDate(0, 0, 1) // the day is included whole
		} else {
			f.From = t
		}
	}
	f.Groups = q["group"]
	f.Before, _ = strconv.ParseInt(q.Get("before"), 10, 64)
	events, groups, err := cat.Activity(ctx, f)
	if err != nil {
		d.failErr(w, r, u, err)
		return
	}
	names := make([]string, 0, len(groups))
	for g := range groups {
		names = append(names, g)
	}
	// A chosen group that no event matches under the other filters keeps
	// its (checked) box, or the next Filter would drop it unseen.
	for _, g := range f.Groups {
		if _, ok := groups[g]; !ok && g != "" && len(g) <= 64 && !slices.Contains(names, g) {
			names = append(names, g)
		}
	}
	slices.Sort(names)
	for _, g := range names {
		data.Groups = append(data.Groups, groupCount{Name: g, Count: groups[g], On: slices.Contains(f.Groups, g)})
	}
	for _, e := range events {
		row := eventRow{ID: e.ID, When: e.Time.In(loc).Format("2 Jan 2006 15:04"), Text: e.Summary, Group: e.Group,
			Object: e.Object.Name, Point: e.Point, Restorable: e.Point != "", HasBefore: e.Actor.Kind != "sitevault"}
		row.Actor = e.Actor.Name
		if row.Actor == "" {
			row.Actor = e.Actor.Kind
		}
		if e.Count > 1 {
			row.Text += " (×" + strconv.Itoa(e.Count) + ")"
		}
		data.Events = append(data.Events, row)
	}
	if len(events) == activityPage {
		nq := url.Values{}
		for k, v := range q {
			nq[k] = v
		}
		nq.Set("before", strconv.FormatInt(events[len(events)-1].ID, 10))
		data.Next = nq.Encode()
	}
	data.Paired, _, _ = cat.Paired(ctx, st.Name)
	d.render(w, r, http.StatusOK, "activity", page{Title: st.Name + " · Activity", Nav: "sites", User: u, D: data})
}

func (d *Dashboard) eventForm(before bool) func(http.ResponseWriter, *http.Request, *sitevault.User) {
	return func(w http.ResponseWriter, r *http.Request, u *sitevault.User) {
		id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
		if err != nil || id <= 0 {
			d.fail(w, r, u, http.StatusNotFound, "Not found", "no such event")
			return
		}
		j, err := d.svc.StartEventRestore(r.Context(), r.PathValue("site"), u.Email, id, before)
		d.toJob(w, r, u, j, err)
	}
}

func (d *Dashboard) eventDownload(w http.ResponseWriter, r *http.Request, u *sitevault.User) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		d.fail(w, r, u, http.StatusNotFound, "Not found", "no such event")
		return
	}
	e, err := d.svc.Catalog().ActivityEvent(r.Context(), r.PathValue("site"), id)
	if err != nil {
		d.failErr(w, r, u, err)
		return
	}
	if e.Point == "" {
		d.fail(w, r, u, http.StatusConflict, "Not yet", "No restore point holds this event yet; the next backup will.")
		return
	}
	j, err := d.svc.StartDownload(r.Context(), e.Site, u.Email, e.Point, "tar.gz")
	d.toJob(w, r, u, j, err)
}

// --- downloads ---

type downloadRow struct {
	Job                 *sitevault.Job
	Point, Format, Size string
	Link, Expires       string
}

type downloadsData struct {
	Site, Point string
	Downloads   []downloadRow
}

func (d *Dashboard) downloadsPage(w http.ResponseWriter, r *http.Request, u *sitevault.User) {
	ctx := r.Context()
	st, err := d.svc.Catalog().Site(ctx, r.PathValue("site"))
	if err != nil {
		d.failErr(w, r, u, err)
		return
	}
	jobs, err := d.svc.Catalog().Jobs(ctx, catalog.JobFilter{Site: st.Name, Kind: sitevault.JobDownload, Limit: 20})
	if err != nil {
		d.failErr(w, r, u, err)
		return
	}
	data := downloadsData{Site: st.Name, Point: r.URL.Query().Get("point")}
	now := d.now()
	for _, j := range jobs {
		row := downloadRow{Job: j}
		var params struct{ Point, Format string }
		json.Unmarshal(j.Params, &params)
		row.Point, row.Format = params.Point, params.Format
		if len(row.Point) > 8 {
			row.Point = row.Point[:8]
		}
		if j.State == sitevault.JobSucceeded && u.Role == sitevault.RoleOwner && j.Finished != nil && now.Sub(*j.Finished) < 24*time.Hour {
			var res struct {
				Size int64 `json:"size"`
			}
			json.Unmarshal(j.Result, &res)
			row.Size = humanize.IBytes(uint64(res.Size))
			link, exp := d.svc.DownloadLink(j.ID)
			row.Link, row.Expires = link, exp.UTC().Format("15:04 MST")
		}
		data.Downloads = append(data.Downloads, row)
	}
	d.render(w, r, http.StatusOK, "downloads", page{Title: st.Name + " · Downloads", Nav: "sites", User: u, D: data})
}

func (d *Dashboard) downloadForm(w http.ResponseWriter, r *http.Request, u *sitevault.User) {
	format := r.PostFormValue("format")
	if format == "" {
		format = "tar.gz"
	}
	j, err := d.svc.StartDownload(r.Context(), r.PathValue("site"), u.Email, r.PostFormValue("point"), format)
	d.toJob(w, r, u, j, err)
}
