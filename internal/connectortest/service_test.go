package connectortest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sitevault/sitevault/internal/backend/local"
	"github.com/sitevault/sitevault/internal/catalog/sqlite"
	"github.com/sitevault/sitevault/internal/repository"
	"github.com/sitevault/sitevault/internal/service"
	"github.com/sitevault/sitevault/internal/sitevault"
	"github.com/sitevault/sitevault/internal/testsrv"
)

// liveService is a real sitevault service (in this process) on a fixed
// loopback address that can be stopped and started again on the same
// catalog and repository.
type liveService struct {
	t     *testing.T
	cfg   service.Config
	base  string
	token string
	stop  func()
}

func (l *liveService) start() {
	l.t.Helper()
	svc, err := service.New(context.Background(), l.cfg)
	if err != nil {
		l.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	l.stop = func() {
		cancel()
		if err := <-done; err != nil {
			l.t.Errorf("service: %v", err)
		}
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if resp, err := http.Get(l.base + "/healthz"); err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			l.t.Fatal("the service does not answer")
		}
	}
}

func (l *liveService) get(path string, out any) {
	l.t.Helper()
	l.call("GET", path, nil, http.StatusOK, out)
}

func (l *liveService) call(method, path string, body io.Reader, want int, out any) {
	l.t.Helper()
	req, _ := http.NewRequest(method, l.base+path, body)
	req.Header.Set("Authorization", "Bearer "+l.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		l.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		l.t.Fatalf("%s %s: %d, want %d\n%s", method, path, resp.StatusCode, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			l.t.Fatalf("%s %s: %v", method, path, err)
		}
	}
}

type logEvent struct {
	ID      int64  `json:"id"`
	UUID    string `json:"uuid"`
	Name    string `json:"name"`
	Summary string `json:"summary"`
	Point   string `json:"point"`
	Time    time.Time
	Actor   struct{ Kind, Name, Role string }
	Object  struct{ Type, ID, Name string }
}

// activity reads the whole log (newest first), page by page.
func (l *liveService) activity(query string) []logEvent {
	l.t.Helper()
	var all []logEvent
	before := ""
	for {
		var page struct {
			Events []logEvent `json:"events"`
		}
		l.get("/api/v1/sites/blog/activity?limit=1000&"+query+before, &page)
		all = append(all, page.Events...)
		if len(page.Events) < 1000 {
			return all
		}
		before = fmt.Sprintf("&before=%d", page.Events[len(page.Events)-1].ID)
	}
}

// waitJobs waits until the site has n succeeded jobs of kind.
func (l *liveService) waitJobs(kind string, n int) []sitevault.Job {
	l.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var list struct{ Jobs []sitevault.Job }
		l.get("/api/v1/jobs?site=blog&kind="+kind+"&limit=1000", &list)
		done := 0
		for _, j := range list.Jobs {
			switch j.State {
			case sitevault.JobSucceeded:
				done++
			case sitevault.JobFailed:
				l.t.Fatalf("job %d (%s) failed: %s", j.ID, j.Kind, j.Error)
			}
		}
		if done >= n {
			return list.Jobs
		}
		if time.Now().After(deadline) {
			l.t.Fatalf("%d of %d %s jobs succeeded: %+v", done, n, kind, list.Jobs)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestWithTheService runs the real plugin in a real WordPress against the
// real service: pairing, events in the activity log with their actors, a
// real-time restore point after each burst, "undo this event", and a
// service that is down while a thousand changes happen.
func TestWithTheService(t *testing.T) {
	if testing.Short() {
		t.Skip("starts MariaDB and WordPress")
	}
	needPHP(t)
	ctx := context.Background()
	m := testsrv.StartMariaDB(t)
	w := testsrv.StartWordPress(t, m, testsrv.WordPressOptions{Title: "Connector and service"})
	s := &site{t: t, w: w, dir: connectorDir(t)}
	s.install()
	if v := s.step(nil, "activate"); v["active"] != true {
		t.Fatalf("activate: %v", v)
	}

	home := t.TempDir()
	cat, err := sqlite.Open(ctx, home)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cat.Close() })
	be, err := local.Create(ctx, filepath.Join(home, "repo"))
	if err != nil {
		t.Fatal(err)
	}
	repo, err := repository.Init(ctx, be, repository.TestPassword, repository.InitOptions{ScryptN: repository.TestScryptN})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { repo.Close() })
	addr := fmt.Sprintf("127.0.0.1:%d", testsrv.FreePort(t))
	l := &liveService{t: t, base: "http://" + addr, cfg: service.Config{Catalog: cat, Repo: repo, Home: home, Listen: addr,
		BaseURL: "http://" + addr, QuietPeriod: time.Second, CheckEvery: -1, PruneEvery: -1,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}}
	if _, err := cat.AddSite(ctx, sitevault.Site{Name: "blog", Kind: sitevault.Local, Path: w.Root}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := service.EnsureOwner(ctx, cat, "owner@example.org", "owner-password-12"); err != nil {
		t.Fatal(err)
	}
	u, _, _ := cat.UserByEmail(ctx, "owner@example.org")
	if l.token, _, err = service.NewToken(ctx, cat, u.ID, "test", nil); err != nil {
		t.Fatal(err)
	}
	l.start()
	defer func() { l.stop() }()

	// Pairing with the constant and a code from the service.
	var pc struct{ Code string }
	l.call("POST", "/api/v1/sites/blog/connector", nil, http.StatusCreated, &pc)
	s.define("SITEVAULT_PAIRING_CODE", pc.Code)
	s.step([]string{"SV_CRON=1"}, "init")
	if o := s.outbox(); o.Connection == nil || o.Connection["site"] != "blog" {
		t.Fatalf("not paired: %v %+v", o.Connection, o.State)
	}

	// Changes: each lands in the log with its actor and summary, and a
	// real-time backup follows each burst (its first change at once, the
	// rest after the quiet period).
	s.step(nil, "publish", "A post to keep")
	l.waitJobs("backup", 1)
	s.step(nil, "events") // plugins, media, users, a failed login, comments, terms …
	s.step(nil, "publish", "A post to undo")
	jobs := l.waitJobs("backup", 2)
	undoPoint := func() string {
		for _, e := range l.activity("") {
			if e.Name == "post__published" && e.Object.Name == "A post to undo" {
				return e.Point
			}
		}
		return ""
	}
	for deadline := time.Now().Add(2 * time.Minute); undoPoint() == "" && time.Now().Before(deadline); {
		time.Sleep(200 * time.Millisecond)
	}
	hinted := 0
	for _, j := range jobs {
		if j.Trigger != "realtime" {
			t.Errorf("backup job %d has trigger %q, want realtime", j.ID, j.Trigger)
		}
		var r struct {
			DBHints *struct{ Hints int } `json:"db_hints"`
		}
		json.Unmarshal(j.Result, &r)
		if r.DBHints != nil {
			hinted += r.DBHints.Hints
		}
	}
	// The events' database changes reached the backups as hints (whether
	// they explained a segment depends on where WordPress wrote).
	if hinted == 0 {
		t.Errorf("no real-time backup got the events' database changes as hints")
	}
	if o := s.outbox(); len(o.Rows) != 0 {
		t.Fatalf("the outbox still holds %d events", len(o.Rows))
	}
	events := l.activity("")
	t.Logf("%d events in the log, %d backup jobs", len(events), len(jobs))
	byName := map[string][]logEvent{}
	for _, e := range events {
		byName[e.Name] = append(byName[e.Name], e)
	}
	for _, name := range []string{"post__published", "user__login_failed", "attachment__uploaded", "comment__created",
		"user__registered", "sitevault__paired", "sitevault__backup_finished"} {
		if len(byName[name]) == 0 {
			t.Errorf("no %s in the activity log", name)
		}
	}
	var undo logEvent
	for _, e := range byName["post__published"] {
		if e.Object.Name == "A post to undo" {
			undo = e
		}
	}
	if undo.ID == 0 || undo.Actor.Kind != "user" || undo.Actor.Name != "admin" || undo.Actor.Role != "administrator" ||
		undo.Summary != "Post “A post to undo” was published" {
		t.Fatalf("the published post's event: %+v", undo)
	}
	if undo.Point == "" {
		t.Fatalf("the event has no restore point after the backup that followed it: %+v", undo)
	}
	if f := byName["user__login_failed"]; len(f) > 0 && f[0].Actor.Kind == "user" && f[0].Actor.Name == "admin" {
		t.Errorf("a failed login is attributed to the account it tried: %+v", f[0].Actor)
	}

	// "Undo this event": the site as it was before the post, the earlier post kept.
	l.call("POST", fmt.Sprintf("/api/v1/sites/blog/activity/%d/undo", undo.ID), strings.NewReader(`{"items":["database"]}`), http.StatusAccepted, nil)
	l.waitJobs("restore", 1)
	titles := map[string]bool{}
	for _, row := range strings.Split(w.PHP(t, `foreach (get_posts(['numberposts' => -1, 'post_status' => 'publish']) as $p) { echo $p->post_title, "\n"; }`), "\n") {
		titles[row] = true
	}
	if titles["A post to undo"] || !titles["A post to keep"] {
		t.Fatalf("after undoing the event the published posts are %v: want the kept one, not the undone one", titles)
	}

	// The service is down while a thousand changes happen: afterwards every
	// event is in the log once, in order.
	l.stop()
	s.step(nil, "publish", "Burst", "1000")
	if o := s.outbox(); len(o.Rows) != 1000 || o.State.LastError == "" {
		t.Fatalf("with the service down: %d events waiting, last error %q", len(o.Rows), o.State.LastError)
	}
	l.start()
	s.step(nil, "set-state", "attempt=0", "next_attempt=0") // the next cron run, without waiting for the backoff
	for range 10 {
		if len(s.outbox().Rows) == 0 {
			break
		}
		s.send()
	}
	if o := s.outbox(); len(o.Rows) != 0 {
		t.Fatalf("after the service came back %d events are still waiting (%+v)", len(o.Rows), o.State)
	}
	burst := l.activity("q=" + url.QueryEscape("Burst"))
	seen := map[string]bool{}
	var order []string
	for i := len(burst) - 1; i >= 0; i-- { // oldest first
		e := burst[i]
		if e.Name != "post__published" {
			continue
		}
		if seen[e.UUID] {
			t.Fatalf("event %s is in the log twice", e.UUID)
		}
		seen[e.UUID] = true
		order = append(order, e.Object.Name)
	}
	if len(order) != 1000 {
		t.Fatalf("%d of 1000 events arrived", len(order))
	}
	for i, name := range order {
		if name != fmt.Sprintf("Burst %d", i) {
			t.Fatalf("event %d of the burst is %q: not in order", i, name)
		}
	}
	before := len(l.waitJobs("backup", 3))
	t.Logf("the burst: %d events in order", len(order))

	// More changes than the outbox holds while the service is unreachable
	// (2,000 against a bound of 500 rows; the 10,000-row default bound
	// works the same): the outbox stays within its bound, the drop is
	// logged, and a backup follows once the service is back.
	s.define("SITEVAULT_OUTBOX_MAX_ROWS", "500")
	l.stop()
	s.step(nil, "publish", "Flood", "2000")
	o := s.outbox()
	if len(o.Rows) > 500 || o.State.Dropped == 0 || !o.State.FullBackup {
		t.Fatalf("over the bound: %d rows, %d dropped, full backup %v", len(o.Rows), o.State.Dropped, o.State.FullBackup)
	}
	l.start()
	s.step(nil, "set-state", "attempt=0", "next_attempt=0")
	for range 10 {
		if len(s.outbox().Rows) == 0 {
			break
		}
		s.send()
	}
	if len(l.activity("group=sitevault&q="+url.QueryEscape("dropped"))) == 0 {
		t.Error("the dropped events are not in the log")
	}
	if n := len(l.waitJobs("backup", before+1)); n <= before {
		t.Errorf("no backup followed the dropped events (%d backups, %d before)", n, before)
	}
}
