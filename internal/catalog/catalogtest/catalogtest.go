// Package catalogtest is the conformance suite every catalog dialect
// passes: the queue, the schedule, users and settings behave the same on
// SQLite and on PostgreSQL.
package catalogtest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/sitevault/sitevault/internal/catalog"
	"github.com/sitevault/sitevault/internal/sitevault"
)

// Open returns a new, empty catalog; a second call with the same t
// returns another handle on the same database (another worker).
type Open func(t *testing.T) (first *catalog.Catalog, another func() *catalog.Catalog)

// Run runs the suite.
func Run(t *testing.T, open Open) {
	t.Run("Sites", func(t *testing.T) { testSites(t, open) })
	t.Run("Queue", func(t *testing.T) { testQueue(t, open) })
	t.Run("OneExclusiveJobPerSite", func(t *testing.T) { testExclusive(t, open) })
	t.Run("HeartbeatReapCancel", func(t *testing.T) { testReap(t, open) })
	t.Run("ScheduleOnce", func(t *testing.T) { testScheduleOnce(t, open) })
	t.Run("Users", func(t *testing.T) { testUsers(t, open) })
	t.Run("SiteLocks", func(t *testing.T) { testLocks(t, open) })
	t.Run("Activity", func(t *testing.T) { testActivity(t, open) })
	t.Run("Connector", func(t *testing.T) { testConnector(t, open) })
}

// noise returns n characters that do not compress, many of them four bytes
// long.
func noise(n int) string {
	r := rand.New(rand.NewPCG(1, 2))
	var b strings.Builder
	for range n {
		b.WriteRune(rune(0x1F300 + r.IntN(0x300)))
	}
	return b.String()
}

func event(uuid, name, summary string, at time.Time) sitevault.Event {
	e := sitevault.Event{UUID: uuid, Name: name, Summary: summary, Time: at, Count: 1}
	e.Group, _, _ = strings.Cut(name, "__")
	e.Actor.Kind, e.Actor.Name = "user", "admin"
	e.Object.Type, e.Object.Name = "post", summary
	return e
}

func testActivity(t *testing.T, open Open) {
	c, _ := open(t)
	ctx := context.Background()
	addSite(t, c, "blog")
	t0 := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	evs := []sitevault.Event{
		event("00000000-0000-0000-0000-000000000001", "post__published", "Post “Hello” was published", t0),
		event("00000000-0000-0000-0000-000000000002", "plugin__activated", "Plugin Akismet was activated", t0.Add(time.Minute)),
		event("00000000-0000-0000-0000-000000000003", "post__updated", "Post “Hello” was updated", t0.Add(2*time.Minute)),
	}
	if n, err := c.AddEvents(ctx, "blog", evs); n != 3 || err != nil {
		t.Fatalf("AddEvents = %d, %v", n, err)
	}
	if n, err := c.AddEvents(ctx, "blog", evs[1:]); n != 0 || err != nil {
		t.Fatalf("the same events again: %d added, %v; want 0", n, err)
	}
	all, groups, err := c.Activity(ctx, catalog.ActivityFilter{Site: "blog"})
	if err != nil || len(all) != 3 || all[0].Name != "post__updated" || groups["post"] != 2 || groups["plugin"] != 1 {
		t.Fatalf("Activity = %v %v %v", all, groups, err)
	}
	posts, groups, _ := c.Activity(ctx, catalog.ActivityFilter{Site: "blog", Groups: []string{"post"}})
	if len(posts) != 2 || groups["plugin"] != 1 {
		t.Fatalf("posts only: %d events, counts %v (the counts ignore the group filter)", len(posts), groups)
	}
	if found, _, _ := c.Activity(ctx, catalog.ActivityFilter{Site: "blog", Text: "akis"}); len(found) != 1 {
		t.Fatalf("text search: %v", found)
	}
	if found, _, _ := c.Activity(ctx, catalog.ActivityFilter{Site: "blog", Text: "AKISMET WAS"}); len(found) != 1 {
		t.Fatalf("text search ignores case: %v", found)
	}
	if found, groups, _ := c.Activity(ctx, catalog.ActivityFilter{Site: "blog", Actor: "admin", Text: "hello"}); len(found) != 2 || groups["post"] != 2 || groups["plugin"] != 1 {
		t.Fatalf("actor and text: %d events, counts %v (the actor's, text aside)", len(found), groups)
	}
	if found, groups, _ := c.Activity(ctx, catalog.ActivityFilter{Site: "blog", Actor: "someone"}); len(found) != 0 || len(groups) != 0 {
		t.Fatalf("another actor: %d events, counts %v", len(found), groups)
	}
	for text, want := range map[string]int{
		"ak": 1, "HELLO": 2, "“hello”": 2, `"x`: 0, `Hello" OR "Akismet`: 0, "was": 3, "published": 1, "ismet was act": 1,
	} {
		found, _, err := c.Activity(ctx, catalog.ActivityFilter{Site: "blog", Text: text})
		if err != nil || len(found) != want {
			t.Fatalf("text %q: %d events, %v; want %d", text, len(found), err, want)
		}
	}
	// A failed job's summary holds its error, however long: it is cut, and
	// still stored and found (PostgreSQL refuses index entries over 2,704
	// bytes, and the text search's index holds the summary).
	long := event("00000000-0000-0000-0000-0000000000aa", "sitevault__backup_failed", "Backup failed: ß€"+noise(3000), t0.Add(3*time.Minute))
	long.Object.Name = noise(5000)
	addSite(t, c, "failing")
	if n, err := c.AddEvents(ctx, "failing", []sitevault.Event{long}); n != 1 || err != nil {
		t.Fatalf("an event with a 30 KB summary: %d added, %v", n, err)
	}
	found, _, err := c.Activity(ctx, catalog.ActivityFilter{Site: "failing", Text: "backup failed: ß€"})
	if err != nil || len(found) != 1 {
		t.Fatalf("the long summary's event: %d found, %v", len(found), err)
	}
	if n := utf8.RuneCountInString(found[0].Summary); n != catalog.MaxSummary || !strings.HasSuffix(found[0].Summary, "…") {
		t.Errorf("the long summary kept %d characters (want %d ending in …)", n, catalog.MaxSummary)
	}
	if n := utf8.RuneCountInString(found[0].Object.Name); n != catalog.MaxObjectName {
		t.Errorf("the long object name kept %d characters (want %d)", n, catalog.MaxObjectName)
	}
	if found, _, _ := c.Activity(ctx, catalog.ActivityFilter{Site: "blog", Text: "100%_"}); len(found) != 0 {
		t.Fatalf("LIKE wildcards in the text are literal: %v", found)
	}
	if found, _, _ := c.Activity(ctx, catalog.ActivityFilter{Site: "blog", From: t0.Add(30 * time.Second), To: t0.Add(90 * time.Second)}); len(found) != 1 {
		t.Fatalf("date range: %v", found)
	}
	if page, _, _ := c.Activity(ctx, catalog.ActivityFilter{Site: "blog", Before: all[0].ID, Limit: 1}); len(page) != 1 || page[0].ID != all[1].ID {
		t.Fatalf("paging: %v", page)
	}
	if n, err := c.SetEventsPoint(ctx, "blog", t0.Add(90*time.Second), "p1"); n != 2 || err != nil {
		t.Fatalf("SetEventsPoint = %d, %v", n, err)
	}
	if n, _ := c.SetEventsPoint(ctx, "blog", t0.Add(3*time.Minute), "p2"); n != 1 {
		t.Fatalf("only events without a point get the next one: %d", n)
	}
	e, err := c.ActivityEvent(ctx, "blog", all[2].ID)
	if err != nil || e.Point != "p1" {
		t.Fatalf("event %+v, %v", e, err)
	}
	if _, err := c.ActivityEvent(ctx, "other", all[2].ID); !errors.Is(err, catalog.ErrNotFound) {
		t.Fatalf("an event of another site: %v", err)
	}
	// Retention: deleted events leave the text search too.
	if n, err := c.DeleteEventsBefore(ctx, t0.Add(90*time.Second)); n != 2 || err != nil {
		t.Fatalf("DeleteEventsBefore = %d, %v", n, err)
	}
	if found, _, _ := c.Activity(ctx, catalog.ActivityFilter{Site: "blog", Text: "akismet"}); len(found) != 0 {
		t.Fatalf("a deleted event is still found by its text: %v", found)
	}
	if found, _, _ := c.Activity(ctx, catalog.ActivityFilter{Site: "blog", Text: "was updated"}); len(found) != 1 {
		t.Fatalf("the event left is not found by its text: %v", found)
	}

	// Real-time: a site's first burst is backed up as soon as it begins.
	quiet := 30 * time.Second
	realtime := catalog.NewJob{Kind: sitevault.JobBackup, Site: "blog", Trigger: "realtime"}
	c.MarkDirty(ctx, "blog", t0)
	d, err := c.DirtySites(ctx, t0.Add(time.Second), quiet, 5*time.Minute, 10)
	if err != nil || len(d) != 1 || !d[0].Since.Equal(t0) {
		t.Fatalf("a first change: DirtySites = %v, %v; want it due at once", d, err)
	}
	j1, err := c.StartRealtime(ctx, d[0], t0.Add(time.Second+quiet), realtime)
	j2, _ := c.StartRealtime(ctx, d[0], t0.Add(time.Second+quiet), realtime)
	if err != nil || j1 == nil || j2 != nil {
		t.Fatalf("StartRealtime twice: %v %v %v; want one job", j1, j2, err)
	}
	// The rest of the burst waits until it is over (no change for the
	// quiet period)…
	c.MarkDirty(ctx, "blog", t0.Add(5*time.Second))
	c.MarkDirty(ctx, "blog", t0.Add(20*time.Second))
	if d, _ := c.DirtySites(ctx, t0.Add(30*time.Second), quiet, 5*time.Minute, 10); len(d) != 0 {
		t.Fatalf("dirty before the quiet period ended: %v", d)
	}
	d, err = c.DirtySites(ctx, t0.Add(51*time.Second), quiet, 5*time.Minute, 10)
	if err != nil || len(d) != 1 || !d[0].Since.Equal(t0.Add(5*time.Second)) {
		t.Fatalf("after the quiet period: DirtySites = %v, %v", d, err)
	}
	if j, err := c.StartRealtime(ctx, d[0], t0.Add(51*time.Second+quiet), realtime); err != nil || j == nil {
		t.Fatalf("StartRealtime: %v %v", j, err)
	}
	// … and so does a change soon after that backup began; one that comes
	// a quiet period later begins a new burst, backed up at once.
	c.MarkDirty(ctx, "blog", t0.Add(60*time.Second))
	if d, _ := c.DirtySites(ctx, t0.Add(61*time.Second), quiet, 5*time.Minute, 10); len(d) != 0 {
		t.Fatalf("a change right after a real-time backup began is due at once: %v", d)
	}
	d, _ = c.DirtySites(ctx, t0.Add(91*time.Second), quiet, 5*time.Minute, 10)
	c.StartRealtime(ctx, d[0], t0.Add(91*time.Second+quiet), realtime)
	c.MarkDirty(ctx, "blog", t0.Add(200*time.Second))
	if d, _ := c.DirtySites(ctx, t0.Add(200*time.Second), quiet, 5*time.Minute, 10); len(d) != 1 {
		t.Fatalf("a new burst, long after the last backup: %v, want it due at once", d)
	}
	// A burst that never stops is backed up after the maximum delay.
	c.StartRealtime(ctx, DirtyOf(t, c, "blog", t0.Add(200*time.Second)), t0.Add(200*time.Second+quiet), realtime)
	for i := 201; i < 520; i += 10 {
		c.MarkDirty(ctx, "blog", t0.Add(time.Duration(i)*time.Second))
	}
	if d, _ := c.DirtySites(ctx, t0.Add(500*time.Second), quiet, 5*time.Minute, 10); len(d) != 0 {
		t.Fatalf("a burst under the maximum delay: %v", d)
	}
	if d, _ := c.DirtySites(ctx, t0.Add(502*time.Second), quiet, 5*time.Minute, 10); len(d) != 1 {
		t.Fatalf("a burst past the maximum delay: %v, want it due", d)
	}
}

// DirtyOf returns site's dirty mark as DirtySites gives it at now.
func DirtyOf(t *testing.T, c *catalog.Catalog, site string, now time.Time) catalog.DirtySite {
	t.Helper()
	d, err := c.DirtySites(context.Background(), now, 0, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range d {
		if x.Site == site {
			return x
		}
	}
	t.Fatalf("%s is not dirty", site)
	return catalog.DirtySite{}
}

func testConnector(t *testing.T, open Open) {
	c, _ := open(t)
	ctx := context.Background()
	addSite(t, c, "blog")
	now := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	c.Now = func() time.Time { return now }
	if err := c.AddPairingCode(ctx, "blog", "secret-1", now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := c.UsePairingCode(ctx, "other", "secret-1"); !errors.Is(err, catalog.ErrPairingRefused) {
		t.Fatalf("a code of another site: %v", err)
	}
	if err := c.UsePairingCode(ctx, "blog", "secret-1"); err != nil {
		t.Fatal(err)
	}
	if err := c.UsePairingCode(ctx, "blog", "secret-1"); !errors.Is(err, catalog.ErrPairingRefused) {
		t.Fatalf("a code used twice: %v", err)
	}
	c.AddPairingCode(ctx, "blog", "secret-2", now.Add(time.Hour))
	now = now.Add(2 * time.Hour)
	if err := c.UsePairingCode(ctx, "blog", "secret-2"); !errors.Is(err, catalog.ErrPairingRefused) {
		t.Fatalf("an expired code: %v", err)
	}
	if err := c.AddConnectorKey(ctx, "blog", "k1", []byte("key-one"), time.Time{}); err != nil {
		t.Fatal(err)
	}
	if err := c.AddConnectorKey(ctx, "blog", "k2", []byte("key-two"), now.Add(24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"k1", "k2"} {
		if k, err := c.ConnectorKey(ctx, "blog", id); err != nil || len(k.Secret) == 0 {
			t.Fatalf("key %s during the overlap: %v", id, err)
		}
	}
	now = now.Add(25 * time.Hour)
	if _, err := c.ConnectorKey(ctx, "blog", "k1"); !errors.Is(err, catalog.ErrNotFound) {
		t.Fatalf("the old key after the overlap: %v", err)
	}
	if paired, _, _ := c.Paired(ctx, "blog"); !paired {
		t.Fatal("not paired with a current key")
	}
	if ok, err := c.UseNonce(ctx, "blog", "nonce-aaaaaaaaaaaa", 10*time.Minute); !ok || err != nil {
		t.Fatalf("first nonce: %v %v", ok, err)
	}
	if ok, _ := c.UseNonce(ctx, "blog", "nonce-aaaaaaaaaaaa", 10*time.Minute); ok {
		t.Fatal("a replayed nonce was accepted")
	}
	if err := c.PurgeConnector(ctx); err != nil {
		t.Fatal(err)
	}
}

func testLocks(t *testing.T, open Open) {
	c, another := open(t)
	ctx := context.Background()
	a := &catalog.Locker{Catalog: c, Lease: 400 * time.Millisecond}
	b := &catalog.Locker{Catalog: another(), Lease: 400 * time.Millisecond}
	unlock, err := a.Lock(ctx, "blog", "backup", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Held past several leases: the holder renews it.
	time.Sleep(time.Second)
	_, err = b.Lock(ctx, "blog", "restore", 0, nil)
	var busy *sitevault.BusyError
	if !errors.As(err, &busy) || busy.Job != "backup" || busy.PID == 0 || busy.Started.IsZero() {
		t.Fatalf("second lock: %v, want a BusyError naming the backup", err)
	}
	// Another site is free.
	if u, err := b.Lock(ctx, "shop", "backup", 0, nil); err != nil {
		t.Fatal(err)
	} else {
		u()
	}
	// A waiter gets the lock when the holder lets go.
	go func() { time.Sleep(300 * time.Millisecond); unlock() }()
	waited := false
	u2, err := b.Lock(ctx, "blog", "restore", 10*time.Second, func(*sitevault.BusyError) { waited = true })
	if err != nil || !waited {
		t.Fatalf("waiting lock: %v (waited %v)", err, waited)
	}
	if err := u2(); err != nil {
		t.Fatal(err)
	}
	// A holder that dies (no renewal) loses the lock when its lease ends.
	dead := &catalog.Locker{Catalog: another(), Lease: 300 * time.Millisecond}
	if _, err := dead.Lock(ctx, "blog", "backup", 0, nil); err != nil {
		t.Fatal(err)
	}
	dead.Catalog.Close()
	start := time.Now()
	u3, err := a.Lock(ctx, "blog", "backup", 10*time.Second, nil)
	if err != nil {
		t.Fatalf("the dead holder's lock was never freed: %v", err)
	}
	u3()
	if time.Since(start) > 5*time.Second {
		t.Errorf("the dead holder's lock took %s to free", time.Since(start))
	}
	// Both: the second lock's refusal releases the first.
	both := catalog.Both{&catalog.Locker{Catalog: c}, &catalog.Locker{Catalog: another()}}
	if _, err := both.Lock(ctx, "blog", "backup", 0, nil); !errors.Is(err, sitevault.ErrBusy) {
		t.Fatalf("Both over one site twice: %v, want busy", err)
	}
	if u, err := a.Lock(ctx, "blog", "backup", 0, nil); err != nil {
		t.Fatalf("Both left its first lock behind: %v", err)
	} else {
		u()
	}
}

func addSite(t *testing.T, c *catalog.Catalog, name string) {
	t.Helper()
	if _, err := c.AddSite(context.Background(), sitevault.Site{Name: name, Kind: sitevault.Local, Path: "/srv/" + name}); err != nil {
		t.Fatal(err)
	}
}

func testSites(t *testing.T, open Open) {
	c, _ := open(t)
	ctx := context.Background()
	s := sitevault.Site{Name: "blog", Kind: sitevault.Local, Path: "/srv/blog",
		Schedule:  sitevault.Schedule{Start: "03:30", Window: time.Hour, TimeZone: "Europe/Berlin"},
		Retention: &sitevault.Retention{KeepDaily: 7},
		Notify:    []string{"ops@example.org"},
		DB:        sitevault.DBOverrides{Password: "db-Secret-1"}}
	if _, err := c.AddSite(ctx, s); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AddSite(ctx, s); !errors.Is(err, catalog.ErrSiteExists) {
		t.Fatalf("second add: %v, want ErrSiteExists", err)
	}
	got, err := c.Site(ctx, "blog")
	if err != nil {
		t.Fatal(err)
	}
	if got.Schedule != s.Schedule || *got.Retention != *s.Retention || len(got.Notify) != 1 || got.DB.Password.Reveal() != "db-Secret-1" {
		t.Fatalf("stored %+v, read %+v", s, got)
	}
	pending, err := c.PendingSchedules(ctx, 10)
	if err != nil || pending["blog"] != s.Schedule {
		t.Fatalf("PendingSchedules = %v, %v", pending, err)
	}
	next := time.Date(2026, 12, 5, 2, 30, 0, 0, time.UTC)
	// A schedule edited since it was read is not overwritten from the stale read.
	if ok, _ := c.SetNextBackup(ctx, "blog", "", sitevault.Schedule{Start: "05:00"}, &next); ok {
		t.Fatal("SetNextBackup stored a moment computed from a schedule the site no longer has")
	}
	if ok, err := c.SetNextBackup(ctx, "blog", "", s.Schedule, &next); !ok || err != nil {
		t.Fatalf("SetNextBackup = %v, %v", ok, err)
	}
	if ok, _ := c.SetNextBackup(ctx, "blog", "", s.Schedule, &next); ok {
		t.Fatal("SetNextBackup set a schedule that was no longer pending")
	}
	got.Schedule.Start = "04:00"
	if _, err := c.UpdateSite(ctx, got); err != nil {
		t.Fatal(err)
	}
	if pending, _ := c.PendingSchedules(ctx, 10); len(pending) != 1 {
		t.Fatalf("a changed schedule is not pending again: %v", pending)
	}
	if err := c.RemoveSite(ctx, "blog"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Status(ctx, "blog"); !errors.Is(err, catalog.ErrSiteNotFound) {
		t.Fatalf("status of a removed site: %v", err)
	}
}

func testQueue(t *testing.T, open Open) {
	c, _ := open(t)
	ctx := context.Background()
	now := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	c.Now = func() time.Time { return now }
	later, err := c.EnqueueJob(ctx, catalog.NewJob{Kind: sitevault.JobCheck, Trigger: "daily", RunAfter: now.Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	first, err := c.EnqueueJob(ctx, catalog.NewJob{Kind: sitevault.JobBackup, Site: "a", Trigger: "manual", MaxAttempts: 2,
		Params: map[string]string{"x": "y"}})
	if err != nil {
		t.Fatal(err)
	}
	if first.State != sitevault.JobQueued || string(first.Params) != `{"x":"y"}` || first.MaxAttempts != 2 {
		t.Fatalf("enqueued %+v", first)
	}
	j, err := c.ClaimJob(ctx, "w1")
	if err != nil || j == nil || j.ID != first.ID || j.State != sitevault.JobRunning || j.Attempt != 1 || j.Worker != "w1" {
		t.Fatalf("claim = %+v, %v; want job %d running", j, err, first.ID)
	}
	if j, err := c.ClaimJob(ctx, "w1"); j != nil || err != nil {
		t.Fatalf("claimed %+v, %v before its run-after time", j, err)
	}
	// A failure with attempts left queues it again for later.
	fj, err := c.FinishJob(ctx, first.ID, "w1", catalog.JobOutcome{State: sitevault.JobFailed, Error: "boom", ErrorCode: "x", RetryAt: now.Add(30 * time.Second)})
	if err != nil || fj.State != sitevault.JobQueued || fj.Error != "boom" {
		t.Fatalf("retry = %+v, %v", fj, err)
	}
	now = now.Add(2 * time.Minute)
	j1, _ := c.ClaimJob(ctx, "w2")
	j2, _ := c.ClaimJob(ctx, "w2")
	if j1 == nil || j2 == nil || j1.ID != first.ID || j2.ID != later.ID || j1.Attempt != 2 {
		t.Fatalf("claims after the wait: %+v %+v", j1, j2)
	}
	// The last attempt fails for good.
	fj, err = c.FinishJob(ctx, first.ID, "w2", catalog.JobOutcome{State: sitevault.JobFailed, Error: "boom again", RetryAt: now})
	if err != nil || fj.State != sitevault.JobFailed || fj.Finished == nil {
		t.Fatalf("final failure = %+v, %v", fj, err)
	}
	if _, err := c.FinishJob(ctx, later.ID, "w1", catalog.JobOutcome{State: sitevault.JobSucceeded}); !errors.Is(err, catalog.ErrJobLost) {
		t.Fatalf("finish by a worker that does not own it: %v", err)
	}
	done, err := c.FinishJob(ctx, later.ID, "w2", catalog.JobOutcome{State: sitevault.JobSucceeded, Result: map[string]int{"n": 1},
		Progress: sitevault.Progress{Percent: 100}})
	if err != nil || done.State != sitevault.JobSucceeded || string(done.Result) != `{"n":1}` || done.Progress.Percent != 100 {
		t.Fatalf("success = %+v, %v", done, err)
	}
	list, err := c.Jobs(ctx, catalog.JobFilter{States: []sitevault.JobState{sitevault.JobFailed}})
	if err != nil || len(list) != 1 || list[0].ID != first.ID {
		t.Fatalf("failed jobs = %v, %v", list, err)
	}
	if n, err := c.DeleteJobsBefore(ctx, now.Add(time.Second)); n != 2 || err != nil {
		t.Fatalf("DeleteJobsBefore = %d, %v", n, err)
	}
}

func testExclusive(t *testing.T, open Open) {
	c, another := open(t)
	ctx := context.Background()
	const sites, perSite = 5, 4
	for s := 0; s < sites; s++ {
		for i := 0; i < perSite; i++ {
			kind := sitevault.JobBackup
			if i%2 == 1 {
				kind = sitevault.JobRestore
			}
			if _, err := c.EnqueueJob(ctx, catalog.NewJob{Kind: kind, Site: fmt.Sprintf("s%d", s)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Workers on their own handles claim concurrently: never two running
	// jobs of one site, and every job runs once.
	var mu sync.Mutex
	running := map[string]int64{}
	ran := map[int64]int{}
	var wg sync.WaitGroup
	errc := make(chan error, 8)
	for w := 0; w < 4; w++ {
		cw := another()
		wg.Add(1)
		go func(name string) {
			defer wg.Done()
			idle := 0
			for idle < 50 {
				j, err := cw.ClaimJob(ctx, name)
				if err != nil {
					errc <- err
					return
				}
				if j == nil {
					idle++
					time.Sleep(5 * time.Millisecond)
					continue
				}
				idle = 0
				mu.Lock()
				if other, busy := running[j.Site]; busy {
					errc <- fmt.Errorf("job %d of %s claimed while job %d of it runs", j.ID, j.Site, other)
				}
				running[j.Site] = j.ID
				ran[j.ID]++
				mu.Unlock()
				time.Sleep(2 * time.Millisecond)
				mu.Lock()
				delete(running, j.Site)
				mu.Unlock()
				if _, err := cw.FinishJob(ctx, j.ID, name, catalog.JobOutcome{State: sitevault.JobSucceeded}); err != nil {
					errc <- err
					return
				}
			}
		}(fmt.Sprintf("w%d", w))
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	if len(ran) != sites*perSite {
		t.Errorf("%d jobs ran, want %d", len(ran), sites*perSite)
	}
	for id, n := range ran {
		if n != 1 {
			t.Errorf("job %d ran %d times", id, n)
		}
	}
}

func testReap(t *testing.T, open Open) {
	c, _ := open(t)
	ctx := context.Background()
	now := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	c.Now = func() time.Time { return now }
	b, _ := c.EnqueueJob(ctx, catalog.NewJob{Kind: sitevault.JobBackup, Site: "a", MaxAttempts: 3})
	r, _ := c.EnqueueJob(ctx, catalog.NewJob{Kind: sitevault.JobRestore, Site: "b"})
	q, _ := c.EnqueueJob(ctx, catalog.NewJob{Kind: sitevault.JobBackup, Site: "c", RunAfter: now.Add(time.Hour)})
	for range 2 {
		if j, err := c.ClaimJob(ctx, "dead"); j == nil || err != nil {
			t.Fatalf("claim: %v %v", j, err)
		}
	}
	cancel, err := c.Heartbeat(ctx, b.ID, "dead", sitevault.Progress{Phase: "files", Percent: 40, Current: "wp-content/uploads/a.jpg"})
	if err != nil || cancel {
		t.Fatalf("heartbeat = %v, %v", cancel, err)
	}
	if _, err := c.CancelJob(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	if cancel, _ := c.Heartbeat(ctx, r.ID, "dead", sitevault.Progress{}); !cancel {
		t.Fatal("a cancel of a running job does not reach its heartbeat")
	}
	if cj, _ := c.CancelJob(ctx, q.ID); cj.State != sitevault.JobCancelled {
		t.Fatalf("a queued job cancelled is %s", cj.State)
	}
	if got, _ := c.Job(ctx, b.ID); got.Progress.Percent != 40 || got.Progress.Current == "" {
		t.Fatalf("progress not stored: %+v", got.Progress)
	}
	now = now.Add(50 * time.Second)
	lost, err := c.ReapLostJobs(ctx, 45*time.Second, func(j *sitevault.Job) time.Time {
		if j.Kind == sitevault.JobBackup {
			return now.Add(time.Minute)
		}
		return time.Time{}
	})
	if err != nil || len(lost) != 2 {
		t.Fatalf("reaped %v, %v; want both", lost, err)
	}
	for _, l := range lost {
		switch l.Job.ID {
		case b.ID:
			if !l.Requeued || l.Job.State != sitevault.JobQueued || l.Job.ErrorCode != "worker_lost" {
				t.Errorf("backup reaped as %+v", l)
			}
		case r.ID:
			if l.Requeued || l.Job.State != sitevault.JobFailed || l.Job.ErrorCode != "worker_lost" {
				t.Errorf("restore reaped as %+v", l)
			}
		}
	}
	if _, err := c.Heartbeat(ctx, b.ID, "dead", sitevault.Progress{}); !errors.Is(err, catalog.ErrJobLost) {
		t.Fatalf("heartbeat of a reaped job: %v", err)
	}
	if lost, _ := c.ReapLostJobs(ctx, 45*time.Second, nil); len(lost) != 0 {
		t.Fatalf("reaped twice: %v", lost)
	}
}

func testScheduleOnce(t *testing.T, open Open) {
	c, another := open(t)
	ctx := context.Background()
	now := time.Date(2026, 12, 4, 2, 0, 0, 0, time.UTC)
	for i := 0; i < 10; i++ {
		name := fmt.Sprintf("site%d", i)
		addSite(t, c, name)
		due := now.Add(time.Duration(i) * time.Second)
		if ok, err := c.SetNextBackup(ctx, name, "", sitevault.Schedule{}, &due); !ok || err != nil {
			t.Fatal(ok, err)
		}
	}
	// Three schedulers see the same due sites at once.
	var wg sync.WaitGroup
	var mu sync.Mutex
	started := map[string]int{}
	for w := 0; w < 3; w++ {
		cw := another()
		wg.Add(1)
		go func() {
			defer wg.Done()
			due, err := cw.DueBackups(ctx, now.Add(time.Minute), 100)
			if err != nil {
				t.Error(err)
				return
			}
			for _, d := range due {
				j, err := cw.StartScheduled(ctx, d, d.Due.Add(24*time.Hour), catalog.NewJob{Kind: sitevault.JobBackup, Site: d.Site,
					Trigger: "daily", DedupeKey: "daily/" + d.Site + "/" + d.Due.Format(time.DateOnly)})
				if err != nil {
					t.Error(err)
					return
				}
				if j != nil {
					mu.Lock()
					started[d.Site]++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if len(started) != 10 {
		t.Fatalf("%d sites started, want 10", len(started))
	}
	for s, n := range started {
		if n != 1 {
			t.Errorf("site %s started %d times", s, n)
		}
	}
	if due, _ := c.DueBackups(ctx, now.Add(time.Minute), 100); len(due) != 0 {
		t.Fatalf("still due: %v", due)
	}
	st, err := c.Status(ctx, "site3")
	if err != nil || st.NextBackup == nil || !st.NextBackup.Equal(now.Add(3*time.Second+24*time.Hour)) {
		t.Fatalf("status = %+v, %v", st, err)
	}
	// Failures and a recovery are counted.
	at := now.Add(time.Hour)
	_, after, err := c.BackupEnded(ctx, "site3", false, at, "", 0, 0, "cannot reach", "connect")
	if err != nil || after.Failures != 1 || !after.FailingSince.Equal(at) {
		t.Fatalf("after failure: %+v, %v", after, err)
	}
	_, after, _ = c.BackupEnded(ctx, "site3", false, at.Add(time.Hour), "", 0, 0, "cannot reach", "connect")
	if after.Failures != 2 || !after.FailingSince.Equal(at) {
		t.Fatalf("after 2nd failure: %+v", after)
	}
	before, after, _ := c.BackupEnded(ctx, "site3", true, at.Add(2*time.Hour), "abc123", 1000, time.Second, "", "")
	if before.Failures != 2 || after.Failures != 0 || after.LastPoint != "abc123" || after.LastError == "" {
		t.Fatalf("after success: %+v (before %+v)", after, before)
	}
}

func testUsers(t *testing.T, open Open) {
	c, _ := open(t)
	ctx := context.Background()
	u, err := c.AddUser(ctx, sitevault.User{Email: "owner@example.org", Role: sitevault.RoleOwner}, "hash1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.AddUser(ctx, sitevault.User{Email: "owner@example.org", Role: sitevault.RoleViewer}, "h"); !errors.Is(err, catalog.ErrExists) {
		t.Fatalf("duplicate user: %v", err)
	}
	got, hash, err := c.UserByEmail(ctx, "owner@example.org")
	if err != nil || got.ID != u.ID || hash != "hash1" {
		t.Fatalf("UserByEmail = %+v %q %v", got, hash, err)
	}
	if err := c.AddSession(ctx, "sess", u.ID, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if su, err := c.SessionUser(ctx, "sess"); err != nil || su.ID != u.ID {
		t.Fatalf("SessionUser = %v, %v", su, err)
	}
	if err := c.AddSession(ctx, "old", u.ID, time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SessionUser(ctx, "old"); !errors.Is(err, catalog.ErrNotFound) {
		t.Fatalf("expired session accepted: %v", err)
	}
	tok, err := c.AddToken(ctx, sitevault.Token{UserID: u.ID, Name: "ci", Prefix: "svt_abcd"}, "thash")
	if err != nil {
		t.Fatal(err)
	}
	if tu, err := c.TokenUser(ctx, "thash"); err != nil || tu.ID != u.ID {
		t.Fatalf("TokenUser = %v, %v", tu, err)
	}
	// A changed password ends the user's sessions.
	if err := c.UpdateUser(ctx, sitevault.User{ID: u.ID, Role: sitevault.RoleOwner}, "hash2"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SessionUser(ctx, "sess"); !errors.Is(err, catalog.ErrNotFound) {
		t.Fatalf("session survived a password change: %v", err)
	}
	// The last owner can neither step down nor be removed; with a second
	// owner it can.
	if err := c.UpdateUser(ctx, sitevault.User{ID: u.ID, Role: sitevault.RoleViewer}, ""); !errors.Is(err, catalog.ErrLastOwner) {
		t.Fatalf("the last owner stepped down: %v", err)
	}
	if err := c.RemoveUser(ctx, u.ID); !errors.Is(err, catalog.ErrLastOwner) {
		t.Fatalf("the last owner was removed: %v", err)
	}
	if got, err := c.User(ctx, u.ID); err != nil || got.Role != sitevault.RoleOwner {
		t.Fatalf("after the refused changes the owner is %+v, %v", got, err)
	}
	second, err := c.AddUser(ctx, sitevault.User{Email: "second@example.org", Role: sitevault.RoleOwner}, "h2")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.UpdateUser(ctx, sitevault.User{ID: second.ID, Role: sitevault.RoleViewer}, ""); err != nil {
		t.Fatalf("an owner of two steps down: %v", err)
	}
	if err := c.RemoveUser(ctx, second.ID); err != nil {
		t.Fatalf("remove a viewer: %v", err)
	}
	if err := c.RemoveUser(ctx, second.ID); !errors.Is(err, catalog.ErrNotFound) {
		t.Fatalf("remove a removed user: %v", err)
	}
	if err := c.RemoveToken(ctx, tok.ID, u.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.TokenUser(ctx, "thash"); !errors.Is(err, catalog.ErrNotFound) {
		t.Fatalf("removed token accepted: %v", err)
	}
	if err := c.SetSetting(ctx, catalog.SettingSMTP, []byte(`{"password":"smtp-Secret-9"}`), true); err != nil {
		t.Fatal(err)
	}
	if err := c.SetSetting(ctx, catalog.SettingSMTP, []byte(`{"password":"smtp-Secret-10"}`), true); err != nil {
		t.Fatal(err)
	}
	if v, err := c.Setting(ctx, catalog.SettingSMTP, true); err != nil || string(v) != `{"password":"smtp-Secret-10"}` {
		t.Fatalf("Setting = %s, %v", v, err)
	}
	if v, err := c.Setting(ctx, "nothing", false); v != nil || err != nil {
		t.Fatalf("unset setting = %s, %v", v, err)
	}
}
