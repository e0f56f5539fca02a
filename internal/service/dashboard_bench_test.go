package service

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sitevault/sitevault/internal/backend/local"
	"github.com/sitevault/sitevault/internal/catalog"
	"github.com/sitevault/sitevault/internal/catalog/sqlite"
	"github.com/sitevault/sitevault/internal/repository"
	"github.com/sitevault/sitevault/internal/sitevault"
)

// benchService is a service whose SQLite catalog holds 1,000 sites and
// 100,000 activity events of the first one, and a signed-in owner's
// session cookie.
func benchService(b *testing.B) (http.Handler, *http.Cookie) {
	h, c, _ := benchServiceCatalog(b)
	return h, c
}

// benchServiceCatalog is benchService, with its catalog.
func benchServiceCatalog(b *testing.B) (http.Handler, *http.Cookie, *catalog.Catalog) {
	b.Helper()
	ctx := context.Background()
	home := b.TempDir()
	cat, err := sqlite.Open(ctx, home)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cat.Close() })
	be, err := local.Create(ctx, filepath.Join(home, "repo"))
	if err != nil {
		b.Fatal(err)
	}
	repo, err := repository.Init(ctx, be, repository.TestPassword, repository.InitOptions{ScryptN: repository.TestScryptN})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { repo.Close() })
	if _, _, err := EnsureOwner(ctx, cat, "owner@example.org", ownerPassword); err != nil {
		b.Fatal(err)
	}
	for i := range 1000 {
		if _, err := cat.AddSite(ctx, sitevault.Site{Name: fmt.Sprintf("site-%04d", i), Kind: sitevault.Local, Path: fmt.Sprintf("/srv/site-%04d", i)}); err != nil {
			b.Fatal(err)
		}
	}
	groups := []string{"post", "comment", "plugin", "user", "option"}
	start := time.Now().Add(-100000 * time.Minute)
	for batch := range 100 {
		events := make([]sitevault.Event, 1000)
		for i := range events {
			n := batch*1000 + i
			g := groups[n%len(groups)]
			e := &events[i]
			e.UUID, e.Time, e.Group, e.Name = fmt.Sprintf("ev-%d", n), start.Add(time.Duration(n)*time.Minute), g, g+"__updated"
			e.Summary = fmt.Sprintf("Updated %s %d", g, n)
			e.Actor.Kind, e.Actor.Name = "user", fmt.Sprintf("user%d", n%7)
		}
		if _, err := cat.AddEvents(ctx, "site-0000", events); err != nil {
			b.Fatal(err)
		}
	}
	svc, err := New(ctx, Config{Catalog: cat, Repo: repo, Home: home, CheckEvery: -1, PruneEvery: -1})
	if err != nil {
		b.Fatal(err)
	}
	u, _, err := cat.UserByEmail(ctx, "owner@example.org")
	if err != nil {
		b.Fatal(err)
	}
	value := randomToken(32)
	if err := cat.AddSession(ctx, hashToken(value), u.ID, time.Now().Add(time.Hour)); err != nil {
		b.Fatal(err)
	}
	return svc.Handler(), &http.Cookie{Name: sessionCookie, Value: value}, cat
}

func benchPage(b *testing.B, path string) {
	h, cookie := benchService(b)
	static := len(staticSize(b, h))
	var times []time.Duration
	var size int
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		req := httptest.NewRequest("GET", path, nil)
		req.AddCookie(cookie)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		times = append(times, time.Since(start))
		if rec.Code != http.StatusOK {
			b.Fatalf("GET %s: %d\n%s", path, rec.Code, rec.Body)
		}
		size = rec.Body.Len() + static
		if size > 100*1024 {
			b.Fatalf("GET %s weighs %d bytes with its CSS and JS, over 100 KB", path, size)
		}
	}
	// The goal is a p95 (issue 13): report it beside the mean.
	slices.Sort(times)
	b.ReportMetric(float64(times[len(times)*95/100].Microseconds())/1000, "p95-ms")
	b.ReportMetric(float64(size), "page+css+js-bytes")
}

// BenchmarkSitesPage renders the sites page of 1,000 sites.
func BenchmarkSitesPage(b *testing.B) { benchPage(b, "/") }

// BenchmarkActivityPage renders pages of a 100,000-event log: the
// newest events, and under filters (the goal's case: groups, an actor and
// a text together).
func BenchmarkActivityPage(b *testing.B) {
	for _, c := range []struct{ name, query string }{
		{"all", ""},
		{"groups+actor+text", "?group=post&group=plugin&actor=user3&q=Updated"},
		{"groups", "?group=post&group=plugin"},
		{"text", "?q=plugin+4"},
		{"day", "?from=" + time.Now().Add(-50000*time.Minute).Format(time.DateOnly) + "&to=" + time.Now().Add(-49000*time.Minute).Format(time.DateOnly)},
	} {
		b.Run(c.name, func(b *testing.B) { benchPage(b, "/sites/site-0000/activity"+c.query) })
	}
}

// staticSize is the style sheet and the script, as one string.
func staticSize(b *testing.B, h http.Handler) string {
	var out string
	for _, p := range []string{"/static/site.css", "/static/progress.js"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", p, nil))
		if rec.Code != http.StatusOK {
			b.Fatalf("GET %s: %d", p, rec.Code)
		}
		out += rec.Body.String()
	}
	return out
}

// BenchmarkProgressToBrowser: from a job's progress stored in the catalog
// (a worker's heartbeat, every second while the progress changes) to its
// Server-Sent Event read by a client of the dashboard's stream, over
// HTTP. Reports the mean and the p95 in ms.
func BenchmarkProgressToBrowser(b *testing.B) {
	h, cookie, cat := benchServiceCatalog(b)
	ctx := context.Background()
	j, err := cat.EnqueueJob(ctx, catalog.NewJob{Kind: sitevault.JobBackup, Site: "site-0001"})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := cat.ClaimJob(ctx, "bench"); err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	req, _ := http.NewRequest("GET", fmt.Sprintf("%s/api/v1/jobs/%d/events", srv.URL, j.ID), nil)
	req.AddCookie(cookie)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		b.Fatalf("events: %v %v", resp, err)
	}
	defer resp.Body.Close()
	lines := bufio.NewScanner(resp.Body)
	var times []time.Duration
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		pc := float64(i%99 + 1)
		start := time.Now()
		if _, err := cat.Heartbeat(ctx, j.ID, "bench", sitevault.Progress{Phase: "files", Percent: pc}); err != nil {
			b.Fatal(err)
		}
		want := fmt.Sprintf(`"percent":%v`, pc)
		for lines.Scan() {
			if strings.HasPrefix(lines.Text(), "data: ") && strings.Contains(lines.Text(), want) {
				break
			}
		}
		times = append(times, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(times)
	b.ReportMetric(float64(times[len(times)*95/100].Microseconds())/1000, "p95-ms")
}
