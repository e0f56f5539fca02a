package service

import (
	"context"
	"testing"
	"time"

	"github.com/sitevault/sitevault/internal/catalog"
	"github.com/sitevault/sitevault/internal/config"
	"github.com/sitevault/sitevault/internal/schedule"
	"github.com/sitevault/sitevault/internal/sitevault"
)

// The config file's schedule of a site is the one the scheduler uses, and
// it wins into the catalog, also after the schedule is edited there.
func TestSchedulerUsesConfigFileSchedule(t *testing.T) {
	ctx := context.Background()
	f, err := config.ParseFile("sitevault.toml", []byte(`
[defaults.retention]
keep_daily = 5
[sites.blog.schedule]
start = "05:30"
window = "10m"
time_zone = "Europe/Berlin"
`))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	e := newEnv(t, func(c *Config) {
		c.SiteSettings = f.ApplySite
		c.Now = func() time.Time { return now }
	})
	for _, name := range []string{"blog", "shop"} {
		if _, err := e.cat.AddSite(ctx, sitevault.Site{Name: name, Kind: sitevault.Local, Path: "/srv/" + name,
			Schedule: sitevault.Schedule{Start: "01:00", TimeZone: "UTC"}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.svc.ApplySiteSettings(ctx); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.scheduleOnce(ctx); err != nil {
		t.Fatal(err)
	}
	want := sitevault.Schedule{Start: "05:30", Window: 10 * time.Minute, TimeZone: "Europe/Berlin"}
	nextOf := func(name string, sched sitevault.Schedule) {
		t.Helper()
		st, err := e.cat.Site(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if st.Schedule != sched {
			t.Errorf("%s: the catalog holds %+v, want %+v", name, st.Schedule, sched)
		}
		status, err := e.cat.Status(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		at, _, err := schedule.Next(sched, name, now)
		if err != nil {
			t.Fatal(err)
		}
		if status.NextBackup == nil || !status.NextBackup.Equal(at) {
			t.Errorf("%s: next backup %v, want %v", name, status.NextBackup, at)
		}
	}
	nextOf("blog", want)
	// Berlin is UTC+1 in March: 05:30 + offset < 10 min is 04:30–04:40 UTC.
	if st, _ := e.cat.Status(ctx, "blog"); st.NextBackup.UTC().Hour() != 4 {
		t.Errorf("blog's next backup %v is not in the file's window", st.NextBackup.UTC())
	}
	// A site the file does not name keeps its own schedule, and gets the
	// defaults' retention (it had none).
	nextOf("shop", sitevault.Schedule{Start: "01:00", TimeZone: "UTC"})
	if st, _ := e.cat.Site(ctx, "shop"); st.Retention == nil || st.Retention.KeepDaily != 5 {
		t.Errorf("shop's retention %+v, want the file's defaults", st.Retention)
	}

	// An edit of the schedule in the catalog (the API, the dashboard):
	// the file wins again at the next round.
	st, _ := e.cat.Site(ctx, "blog")
	st.Schedule = sitevault.Schedule{Start: "23:00"}
	if _, err := e.cat.UpdateSite(ctx, st); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.scheduleOnce(ctx); err != nil {
		t.Fatal(err)
	}
	nextOf("blog", want)

	// When it is due, the scheduler queues the daily backup.
	st2, _ := e.cat.Status(ctx, "blog")
	now = st2.NextBackup.Add(time.Second)
	if err := e.svc.scheduleOnce(ctx); err != nil {
		t.Fatal(err)
	}
	jobs, err := e.cat.Jobs(ctx, catalog.JobFilter{Site: "blog"})
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 1 || jobs[0].Trigger != "daily" {
		t.Fatalf("jobs %v, want one daily backup", jobs)
	}
}
