package e2e_test

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/sitevault/sitevault/internal/testsrv"
)

// TestServiceKilledMidBackupAndRestore kills `sitevault serve` with
// SIGKILL in the middle of a backup and of a restore. The backup is noticed
// by the next start (no heartbeat) and retried to the end; the restore is
// failed, not repeated behind the user's back, and the site is made whole
// by restoring again (a restore is resumable by running it again: files are
// written whole and renamed, tables swapped in one step). The repository
// passes check after each kill.
func TestServiceKilledMidBackupAndRestore(t *testing.T) {
	needServers(t)
	if sshd == nil {
		testsrv.Missing(t, "OpenSSH server (sshd)", "apt-get install openssh-server")
	}
	w, content := newSite(t)
	// Incompressible uploads read through a slow link keep the jobs running
	// long enough to be killed in their file phase.
	big := filepath.Join(w.Root, "wp-content", "uploads", "big")
	must(t, os.MkdirAll(big, 0o755))
	for i := range 8 {
		b := make([]byte, 1<<20)
		rand.Read(b)
		must(t, os.WriteFile(filepath.Join(big, fmt.Sprintf("photo-%d.jpg", i)), b, 0o644))
	}
	proxy := testsrv.StartFaultProxy(t, sshd.Addr)
	c := newCLI(t)
	srv := startServe(t, c, nil)
	srv.addSiteSSH("blog", w, proxy.Addr)
	content.files = c.siteFiles("blog")

	proxy.SetDelay(20 * time.Millisecond)
	id := srv.enqueue("/api/v1/sites/blog/backups", nil)
	srv.waitJob(id, 2*time.Minute, func(j job) bool { return j.State == "running" && j.Progress.Phase == "files" })
	srv.kill()
	if j := c.ok("jobs", "show", fmt.Sprint(id)); !strings.Contains(j, `"state": "running"`) {
		t.Fatalf("after the kill the job is not left running (the kill came too late):\n%s", j)
	}
	c.ok("check")

	proxy.SetDelay(0)
	srv = startServe(t, c, nil)
	j := srv.waitJob(id, 2*time.Minute, ended)
	if j.State != "succeeded" || j.Attempt != 2 {
		t.Fatalf("the killed backup: %+v, want succeeded on attempt 2 (noticed and retried)", j)
	}
	c.ok("check", "--read-data")
	var pts struct{ Points []struct{ ID string } }
	srv.api("GET", "/api/v1/sites/blog/points", nil, 200, &pts)
	if len(pts.Points) != 1 {
		t.Fatalf("points after the retried backup: %+v, want one", pts)
	}
	point := pts.Points[0].ID
	wantSums := w.ChecksumTables(t, content.tables...)
	wantFiles := w.FileHashes(t, content.files...)

	_, added, _ := wreck(t, w, content)
	for i := range 8 {
		// Changed photos make the restore write them again, slowly.
		must(t, os.WriteFile(filepath.Join(big, fmt.Sprintf("photo-%d.jpg", i)), []byte("defaced"), 0o644))
	}
	proxy.SetDelay(20 * time.Millisecond)
	rid := srv.enqueue("/api/v1/sites/blog/restores", map[string]string{"point": point})
	srv.waitJob(rid, 2*time.Minute, func(j job) bool { return j.State == "running" && j.Progress.Phase == "files" })
	srv.kill()
	c.ok("check")

	proxy.SetDelay(0)
	srv = startServe(t, c, nil)
	j = srv.waitJob(rid, time.Minute, ended)
	if j.State != "failed" || j.ErrorCode != "worker_lost" || j.Attempt != 1 {
		t.Fatalf("the killed restore: %+v, want failed with worker_lost and not retried", j)
	}
	// Running it again finishes the restore.
	events := srv.follow(srv.enqueue("/api/v1/sites/blog/restores", map[string]string{"point": point}))
	if j := endState(t, events); j.State != "succeeded" {
		t.Fatalf("the restore run again: %+v", j)
	}
	sameMaps(t, "CHECKSUM TABLE after the restore run again", wantSums, w.ChecksumTables(t, content.tables...))
	sameMaps(t, "files after the restore run again", wantFiles, w.FileHashes(t, content.files...))
	for _, tbl := range w.Tables(t) {
		if tbl == added {
			t.Errorf("the table %s made after the backup survived the restore", added)
		}
	}
	c.ok("check", "--read-data")
	srv.stop()
}

// TestServiceAlerts: one mail after the second failed backup in a row (each
// after its retries), none after the first or the third, one when backups
// work again; the mail names the site, the error and what to do.
func TestServiceAlerts(t *testing.T) {
	needServers(t)
	mp := testsrv.StartMailpit(t)
	w, _ := newSite(t)
	c := newCLI(t)
	srv := startServe(t, c, nil)
	srv.api("PUT", "/api/v1/settings/smtp", map[string]any{"host": mp.SMTPHost, "port": mp.SMTPPort,
		"from": "sitevault@example.org", "tls": "none"}, 200, nil)
	srv.api("POST", "/api/v1/settings/smtp/test", nil, 200, nil)
	mp.WaitMessages(t, 1, 10*time.Second)
	mp.Clear(t)
	srv.api("POST", "/api/v1/sites", map[string]any{"name": "shop", "path": w.Root, "notify": []string{"shop-owner@example.org"}}, 201, nil)

	config := filepath.Join(w.Root, "wp-config.php")
	must(t, os.Rename(config, config+".away"))
	backup := func(want string) job {
		t.Helper()
		id := srv.enqueue("/api/v1/sites/shop/backups", nil)
		j := srv.waitJob(id, 2*time.Minute, ended)
		if j.State != want {
			t.Fatalf("backup: %+v, want %s", j, want)
		}
		return j
	}
	quiet := func(n int) {
		t.Helper()
		time.Sleep(1500 * time.Millisecond)
		if got := mp.Messages(t); len(got) != n {
			t.Fatalf("%d mails, want %d: %+v", len(got), n, got)
		}
	}
	j := backup("failed")
	if j.Attempt != 3 {
		t.Errorf("the failed backup ran %d times, want 3 (retries)", j.Attempt)
	}
	quiet(0)
	backup("failed")
	mails := mp.WaitMessages(t, 1, 20*time.Second)
	m := mails[0]
	if !strings.Contains(m.Subject, "Backups of shop are failing") {
		t.Errorf("subject %q", m.Subject)
	}
	for _, want := range []string{"shop", "wp-config.php", "check the site's path"} {
		if !strings.Contains(m.Text, want) {
			t.Errorf("the failing mail does not say %q:\n%s", want, m.Text)
		}
	}
	to := strings.Join(m.To, ",")
	if !strings.Contains(to, "shop-owner@example.org") || !strings.Contains(to, ownerEmail) {
		t.Errorf("the mail went to %v, want the owner and the site's address", m.To)
	}
	var site struct {
		Status struct {
			Failures     int        `json:"failures"`
			FailingSince *time.Time `json:"failing_since"`
			LastError    string     `json:"last_error"`
		} `json:"status"`
	}
	srv.api("GET", "/api/v1/sites/shop", nil, 200, &site)
	if site.Status.Failures != 2 || site.Status.FailingSince == nil || !strings.Contains(site.Status.LastError, "wp-config.php") {
		t.Errorf("site status after two failures: %+v", site.Status)
	}
	backup("failed")
	quiet(1)

	must(t, os.Rename(config+".away", config))
	backup("succeeded")
	mails = mp.WaitMessages(t, 2, 20*time.Second)
	if !strings.Contains(mails[1].Subject, "Backups of shop work again") {
		t.Errorf("recovery subject %q", mails[1].Subject)
	}
	quiet(2)
	srv.api("GET", "/api/v1/sites/shop", nil, 200, &site)
	if site.Status.Failures != 0 {
		t.Errorf("failures after a success: %d", site.Status.Failures)
	}

	// A restore mails when it starts and ends; a download mails its link.
	var pts struct{ Points []struct{ ID string } }
	srv.api("GET", "/api/v1/sites/shop/points", nil, 200, &pts)
	rid := srv.enqueue("/api/v1/sites/shop/restores", map[string]string{"point": pts.Points[0].ID})
	if j := srv.waitJob(rid, 2*time.Minute, ended); j.State != "succeeded" {
		t.Fatalf("restore: %+v", j)
	}
	mails = mp.WaitMessages(t, 4, 20*time.Second)
	if !strings.Contains(mails[2].Subject, "Restoring shop to") || !strings.Contains(mails[3].Subject, "Restore of shop finished") {
		t.Errorf("restore mails: %q, %q", mails[2].Subject, mails[3].Subject)
	}
	if !strings.Contains(mails[3].Text, "undo") {
		t.Errorf("the restore's mail does not say how to undo it:\n%s", mails[3].Text)
	}
	did := srv.enqueue("/api/v1/sites/shop/downloads", map[string]string{"point": pts.Points[0].ID, "format": "zip"})
	if j := srv.waitJob(did, 2*time.Minute, ended); j.State != "succeeded" {
		t.Fatalf("download: %+v", j)
	}
	mails = mp.WaitMessages(t, 5, 20*time.Second)
	if !strings.Contains(mails[4].Subject, "download of shop is ready") || !strings.Contains(mails[4].Text, fmt.Sprintf("/api/v1/downloads/%d/file?expires=", did)) {
		t.Errorf("download mail: %q\n%s", mails[4].Subject, mails[4].Text)
	}

	// Metrics, as Prometheus scrapes them (with a token).
	resp, body := srv.request("GET", "/metrics", srv.token, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("metrics: %d", resp.StatusCode)
	}
	for _, want := range []string{`sitevault_jobs{kind="backup",state="failed"} 3`, `sitevault_jobs{kind="backup",state="succeeded"} 1`,
		`sitevault_site_failures{site="shop"} 0`, `sitevault_mails_total{result="sent"} 5`, `sitevault_job_duration_seconds_count{kind="restore"} 1`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s:\n%s", want, body)
		}
	}
	if resp, _ := srv.request("GET", "/metrics", "", nil); resp.StatusCode != 401 {
		t.Errorf("metrics without a token: %d, want 401", resp.StatusCode)
	}
}

// TestTwoWorkersOnPostgres runs two `serve` processes, with their own data
// homes, on one PostgreSQL catalog and one repository; 20 sites have
// windows in the same minute and a manual backup queued at once: every
// job runs exactly once, never two at a time for one site, and both
// workers work.
func TestTwoWorkersOnPostgres(t *testing.T) {
	needServers(t)
	pg := testsrv.StartPostgres(t)
	url := pg.NewDatabase(t)
	c := newCLI(t)
	c.env["SITEVAULT_CATALOG"] = url

	// Four WordPress installs, each registered as five sites.
	var wps []*testsrv.WordPress
	for i := range 4 {
		wps = append(wps, testsrv.StartWordPress(t, mariadb, testsrv.WordPressOptions{Title: fmt.Sprintf("Worker test %d", i)}))
	}
	var sites []string
	for i := range 20 {
		name := fmt.Sprintf("site-%02d", i)
		c.ok("site", "add", name, "--path", wps[i%4].Root)
		sites = append(sites, name)
	}

	// The second worker: another data home with a copy of the seal key,
	// the same repository.
	home2 := filepath.Join(t.TempDir(), "sitevault2")
	must(t, os.Mkdir(home2, 0o700))
	key, err := os.ReadFile(filepath.Join(c.env["SITEVAULT_HOME"], "secret.key"))
	must(t, err)
	must(t, os.WriteFile(filepath.Join(home2, "secret.key"), key, 0o600))
	env2 := map[string]string{"SITEVAULT_HOME": home2, "SITEVAULT_REPOSITORY": filepath.Join(c.env["SITEVAULT_HOME"], "repo"),
		"SITEVAULT_PASSWORD": c.keyFilePassword()}

	w1 := startServe(t, c, nil, "--concurrency", "2")
	w2 := startServe(t, c, env2, "--concurrency", "2")

	// Every window starts the same minute, 40 to 100 s from now.
	start := time.Now().UTC().Add(40 * time.Second).Truncate(time.Minute).Add(time.Minute)
	for _, s := range sites {
		w1.api("PATCH", "/api/v1/sites/"+s, map[string]any{"skip_check": true,
			"schedule": map[string]any{"start": start.Format("15:04"), "window": int64(time.Minute), "time_zone": "UTC"}}, 200, nil)
		// A manual backup of each site at once, on the other worker's API.
		w2.enqueue("/api/v1/sites/"+s+"/backups", nil)
	}
	deadline := start.Add(5 * time.Minute)
	var all []job
	for {
		var list struct{ Jobs []job }
		w1.api("GET", "/api/v1/jobs?kind=backup&limit=1000", nil, 200, &list)
		all = list.Jobs
		done := 0
		for _, j := range all {
			if ended(j) {
				done++
			}
		}
		if done == 40 && len(all) == 40 {
			break
		}
		if time.Now().After(deadline) || len(all) > 40 {
			t.Fatalf("%d backup jobs, %d ended, by %s: want 40 (20 daily, 20 manual)", len(all), done, time.Now().Format(time.TimeOnly))
		}
		time.Sleep(time.Second)
	}
	perSite := map[string][]job{}
	perWorker := map[string]int{}
	for _, j := range all {
		if j.State != "succeeded" || j.Attempt != 1 {
			t.Errorf("job %d of %s: %s on attempt %d (%s), want one successful run", j.ID, j.Site, j.State, j.Attempt, j.Error)
		}
		perSite[j.Site] = append(perSite[j.Site], j)
		perWorker[j.Worker]++
		if j.Trigger == "daily" && j.Started.Before(j.RunAfter) {
			t.Errorf("daily job %d of %s started at %s, before its moment %s", j.ID, j.Site, j.Started, j.RunAfter)
		}
	}
	for _, s := range sites {
		js := perSite[s]
		triggers := []string{}
		for _, j := range js {
			triggers = append(triggers, j.Trigger)
		}
		sort.Strings(triggers)
		if strings.Join(triggers, ",") != "daily,manual" {
			t.Errorf("site %s had jobs %v, want one daily and one manual", s, triggers)
			continue
		}
		a, b := js[0], js[1]
		if a.Started.Before(*b.Finished) && b.Started.Before(*a.Finished) {
			t.Errorf("site %s: jobs %d (%s–%s, %s) and %d (%s–%s, %s) overlap", s, a.ID, a.Started, a.Finished, a.Worker,
				b.ID, b.Started, b.Finished, b.Worker)
		}
		var pts struct{ Points []struct{ ID string } }
		w2.api("GET", "/api/v1/sites/"+s+"/points", nil, 200, &pts)
		if len(pts.Points) != 2 {
			t.Errorf("site %s has %d points, want 2", s, len(pts.Points))
		}
	}
	if len(perWorker) != 2 {
		t.Errorf("jobs by worker: %v, want both workers busy", perWorker)
	}
	t.Logf("jobs by worker: %v", perWorker)
	w1.stop()
	w2.stop()
	c.ok("check")
}
