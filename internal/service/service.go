// Package service is `sitevault serve`: the HTTP API, the job runner, the
// scheduler and the notifier in one process. Several processes may share
// one PostgreSQL catalog and one repository: the queue, the per-site
// exclusion and the schedule live in the catalog, so each job and each
// scheduled backup runs once whatever the number of workers.
package service

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"reflect"
	"sync"
	"time"

	"github.com/sitevault/sitevault/internal/catalog"
	"github.com/sitevault/sitevault/internal/jobs"
	"github.com/sitevault/sitevault/internal/notify"
	"github.com/sitevault/sitevault/internal/point"
	"github.com/sitevault/sitevault/internal/repository"
	"github.com/sitevault/sitevault/internal/schedule"
	"github.com/sitevault/sitevault/internal/sitevault"
)

// Config is how a service runs. Catalog, Repo and Home are required.
type Config struct {
	Catalog *catalog.Catalog
	Repo    *repository.Repository
	// Home is the data home: per-site lock files and prepared downloads.
	Home string
	// Listen is the HTTP address (default 127.0.0.1:8570).
	Listen string
	// Worker names this process in the jobs table (default host:pid).
	Worker string
	// Concurrency is how many jobs this process runs at once (default 2).
	Concurrency int
	Logger      *slog.Logger
	// BaseURL is how users reach the service, for links in mails
	// (default http://<Listen>).
	BaseURL string
	// SecureCookies marks session cookies Secure (behind HTTPS); on by
	// default when BaseURL is https.
	SecureCookies bool
	// JobRetention is how long ended jobs stay in history (default 90 days).
	JobRetention time.Duration
	// CheckEvery and PruneEvery schedule repository jobs (0: weekly;
	// negative: never). Check jobs read all data.
	CheckEvery, PruneEvery time.Duration
	// SchedulerEvery is how often due backups are looked for (default 15 s).
	SchedulerEvery time.Duration
	// BackupAttempts is how many times a failed backup runs in all
	// (default 3), RetryBackoff the wait before a retry (nil: jobs.DefaultBackoff).
	BackupAttempts int
	RetryBackoff   func(attempt int) time.Duration
	// HeartbeatEvery and StaleAfter tune lost-worker detection (see jobs.Runner).
	HeartbeatEvery, StaleAfter time.Duration
	// ShutdownGrace is how long running jobs may finish on shutdown.
	ShutdownGrace time.Duration
	// LockWait is how long a job waits for a site's lock held by a
	// process outside the service (a CLI run) before it fails and is retried.
	LockWait time.Duration
	// DownloadTTL is how long a prepared download and its links live
	// (default 24 h for the file, 1 h for a link).
	DownloadTTL time.Duration
	// QuietPeriod is how long a site must be without new connector events
	// before the real-time backup of the rest of a burst starts (default
	// 30 s); a burst's first event is backed up at once when the site's
	// last real-time backup began a quiet period before it or earlier
	// (see catalog.DirtySites). MaxRealtimeDelay bounds the wait from a
	// burst's first event (default 5 minutes).
	QuietPeriod, MaxRealtimeDelay time.Duration
	// ActivityRetention is how long activity log entries are kept
	// (default 365 days).
	ActivityRetention time.Duration
	// SiteSettings, if set, returns a site's effective settings: the
	// config file's applied over the catalog's (config.File.ApplySite).
	// The file wins into the catalog: Run writes the effective settings
	// of every site into it at start, and the scheduler writes them again
	// when a schedule is edited (through the API or the dashboard), so
	// the catalog, the API and the scheduler all show one schedule.
	SiteSettings func(sitevault.Site) sitevault.Site
	// Excludes, if set, returns a site's extra exclude patterns (the
	// config file's) for its backups.
	Excludes func(site string) []string
	// Now is the clock (tests).
	Now func() time.Time
	// Mailer, if set, makes the mailer of the stored settings (tests);
	// nil means notify.NewSMTP.
	Mailer func(notify.SMTPSettings) notify.Mailer
}

// Service is a running (or ready to run) service.
type Service struct {
	cfg     Config
	cat     *catalog.Catalog
	repo    *repository.Repository
	log     *slog.Logger
	runner  *jobs.Runner
	handler http.Handler
	linkKey []byte
	limiter *loginLimiter
	metrics *metrics
	// changed wakes the scheduler when connector events arrive, so that a
	// burst's first change is backed up at once (see catalog.DirtySites).
	changed chan struct{}

	mu       sync.Mutex
	listener net.Listener
}

// New prepares a service: it creates the first owner when the catalog has
// no user (see EnsureOwner) and the routes.
func New(ctx context.Context, cfg Config) (*Service, error) {
	if cfg.Catalog == nil || cfg.Repo == nil || cfg.Home == "" {
		return nil, errors.New("service: a catalog, a repository and a data home are required")
	}
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:8570"
	}
	if cfg.Worker == "" {
		host, _ := os.Hostname()
		cfg.Worker = fmt.Sprintf("%s:%d", host, os.Getpid())
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.JobRetention <= 0 {
		cfg.JobRetention = 90 * 24 * time.Hour
	}
	if cfg.CheckEvery == 0 {
		cfg.CheckEvery = 7 * 24 * time.Hour
	}
	if cfg.PruneEvery == 0 {
		cfg.PruneEvery = 7 * 24 * time.Hour
	}
	if cfg.SchedulerEvery <= 0 {
		cfg.SchedulerEvery = 15 * time.Second
	}
	if cfg.BackupAttempts <= 0 {
		cfg.BackupAttempts = 3
	}
	if cfg.DownloadTTL <= 0 {
		cfg.DownloadTTL = 24 * time.Hour
	}
	if cfg.LockWait <= 0 {
		cfg.LockWait = time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.QuietPeriod <= 0 {
		cfg.QuietPeriod = 30 * time.Second
	}
	if cfg.MaxRealtimeDelay <= 0 {
		cfg.MaxRealtimeDelay = 5 * time.Minute
	}
	if cfg.ActivityRetention <= 0 {
		cfg.ActivityRetention = 365 * 24 * time.Hour
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = "http://" + cfg.Listen
	}
	if len(cfg.BaseURL) > 8 && cfg.BaseURL[:8] == "https://" {
		cfg.SecureCookies = true
	}
	s := &Service{cfg: cfg, cat: cfg.Catalog, repo: cfg.Repo, log: cfg.Logger, limiter: newLoginLimiter(), metrics: newMetrics(),
		changed: make(chan struct{}, 1)}
	key, err := s.loadLinkKey(ctx)
	if err != nil {
		return nil, err
	}
	s.linkKey = key
	s.runner = &jobs.Runner{
		Catalog: s.cat, Worker: cfg.Worker, Concurrency: cfg.Concurrency, Logger: s.log.With("component", "jobs"),
		HeartbeatEvery: cfg.HeartbeatEvery, StaleAfter: cfg.StaleAfter, Backoff: cfg.RetryBackoff,
		ShutdownGrace: cfg.ShutdownGrace, OnFinish: s.jobFinished,
		Handlers: map[sitevault.JobKind]jobs.Handler{
			sitevault.JobBackup:   s.runBackup,
			sitevault.JobRestore:  s.runRestore,
			sitevault.JobUndo:     s.runUndo,
			sitevault.JobDownload: s.runDownload,
			sitevault.JobCheck:    s.runCheck,
			sitevault.JobPrune:    s.runPrune,
		},
	}
	s.handler = s.routes()
	return s, nil
}

// Handler is the service's HTTP handler (the API, health and metrics).
func (s *Service) Handler() http.Handler { return s.handler }

// Worker is this process's name in the jobs table.
func (s *Service) Worker() string { return s.cfg.Worker }

// Addr is the address the service listens on, once Run has started.
func (s *Service) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.listener == nil {
		return ""
	}
	return s.listener.Addr().String()
}

// Run serves HTTP and runs jobs and schedules until ctx is cancelled, then
// shuts down gracefully: no new jobs are claimed, running jobs get
// ShutdownGrace to finish (then stop at a safe point and are queued
// again), and open requests get a few seconds.
func (s *Service) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.cfg.Listen, err)
	}
	s.mu.Lock()
	s.listener = ln
	s.mu.Unlock()
	srv := &http.Server{Handler: s.handler, ReadHeaderTimeout: 10 * time.Second,
		BaseContext: func(net.Listener) context.Context { return ctx }}
	s.log.Info("service started", "listen", ln.Addr().String(), "worker", s.cfg.Worker, "catalog", s.cat.Dialect())

	var wg sync.WaitGroup
	errc := make(chan error, 1)
	wg.Add(3)
	go func() {
		defer wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- err
		}
	}()
	if err := s.ApplySiteSettings(ctx); err != nil {
		s.log.Error("apply the config file's site settings", "err", err)
	}
	go func() { defer wg.Done(); s.runner.Run(ctx) }()
	go func() { defer wg.Done(); s.schedule(ctx) }()

	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	s.log.Info("service stopping")
	shut, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	srv.Shutdown(shut)
	wg.Wait()
	s.log.Info("service stopped")
	return err
}

// schedule enqueues due daily backups, computes pending schedules, and
// runs the maintenance (repository jobs, history retention), every
// SchedulerEvery. It holds no timer or goroutine per site.
func (s *Service) schedule(ctx context.Context) {
	// Real-time backups start within a tenth of a quiet period of its end
	// (the query is one indexed scan of the site status table).
	every := min(s.cfg.SchedulerEvery, max(s.cfg.QuietPeriod/10, 250*time.Millisecond))
	t := time.NewTicker(every)
	defer t.Stop()
	lastMaintenance, lastDaily := time.Time{}, time.Time{}
	for {
		if now := s.cfg.Now(); now.Sub(lastDaily) >= s.cfg.SchedulerEvery {
			if err := s.scheduleOnce(ctx); err != nil && ctx.Err() == nil {
				s.log.Error("scheduler", "err", err)
			}
			lastDaily = now
		} else if _, err := s.scheduleRealtime(ctx, now); err != nil && ctx.Err() == nil {
			s.log.Error("scheduler", "err", err)
		}
		if now := s.cfg.Now(); now.Sub(lastMaintenance) > time.Minute {
			s.maintain(ctx)
			lastMaintenance = now
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.changed:
		}
	}
}

// scheduleOnce does one round of the scheduler.
func (s *Service) scheduleOnce(ctx context.Context) error {
	now := s.cfg.Now()
	for {
		pending, err := s.cat.PendingSchedules(ctx, 500)
		if err != nil {
			return err
		}
		set := 0
		for name, sched := range pending {
			if s.cfg.SiteSettings != nil {
				eff, err := s.applySiteSettings(ctx, name)
				if err != nil {
					s.log.Error("apply the config file's site settings", "site", name, "err", err)
					continue
				}
				sched = eff.Schedule
			}
			var next *time.Time
			if !sched.Off {
				at, _, err := schedule.Next(sched, name, now)
				if err != nil {
					s.log.Error("schedule", "site", name, "err", err)
					continue
				}
				next = &at
			}
			ok, err := s.cat.SetNextBackup(ctx, name, "", sched, next)
			if err != nil {
				return err
			}
			if ok {
				set++
			}
		}
		// Sites left pending (an edit raced this read) wait for the next round.
		if len(pending) < 500 || set == 0 {
			break
		}
	}
	// The runners of every worker find what is queued here on their next
	// poll (within a second): waking this one at once would give this
	// worker every scheduled job while the others sleep.
	if _, err := s.scheduleRealtime(ctx, now); err != nil {
		return err
	}
	for {
		due, err := s.cat.DueBackups(ctx, now, 500)
		if err != nil {
			return err
		}
		moved := 0
		for _, d := range due {
			// The day this moment belongs to names the job: a second
			// worker, or this one after a restart, never queues it twice.
			_, day, err := schedule.Next(d.Schedule, d.Site, d.Due.Add(-time.Nanosecond))
			if err != nil {
				day = d.Due.UTC().Format(time.DateOnly)
			}
			next, _, err := schedule.Next(d.Schedule, d.Site, maxTime(now, d.Due))
			if err != nil {
				s.log.Error("schedule", "site", d.Site, "err", err)
				continue
			}
			j, err := s.cat.StartScheduled(ctx, d, next, catalog.NewJob{Kind: sitevault.JobBackup, Site: d.Site,
				Trigger: "daily", MaxAttempts: s.cfg.BackupAttempts, DedupeKey: "daily/" + d.Site + "/" + day,
				Params: BackupParams{Trigger: "daily"}})
			if err != nil {
				return err
			}
			moved++
			if j != nil {
				s.log.Info("scheduled backup queued", "site", d.Site, "job", j.ID, "due", d.Due, "late", now.Sub(d.Due).Round(time.Second))
			}
		}
		if len(due) < 500 || moved == 0 {
			break
		}
	}
	return nil
}

// ApplySiteSettings writes the effective settings (Config.SiteSettings)
// of every site whose stored ones differ into the catalog. A changed
// schedule is computed again by the scheduler.
func (s *Service) ApplySiteSettings(ctx context.Context) error {
	if s.cfg.SiteSettings == nil {
		return nil
	}
	sites, err := s.cat.Sites(ctx)
	if err != nil {
		return err
	}
	for _, st := range sites {
		if _, err := s.applySiteSettings(ctx, st.Name); err != nil {
			return err
		}
	}
	return nil
}

// applySiteSettings stores one site's effective settings if they differ
// from the catalog's, and returns them.
func (s *Service) applySiteSettings(ctx context.Context, name string) (sitevault.Site, error) {
	st, err := s.cat.Site(ctx, name)
	if err != nil {
		return st, err
	}
	eff := s.cfg.SiteSettings(st)
	if reflect.DeepEqual(eff, st) {
		return st, nil
	}
	if err := eff.Validate(); err != nil {
		return st, fmt.Errorf("the config file's settings for site %s: %w", name, err)
	}
	stored, err := s.cat.UpdateSite(ctx, eff)
	if err != nil {
		return st, err
	}
	s.log.Info("site settings from the config file applied", "site", name)
	return stored, nil
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// maintain queues the periodic repository jobs (once per period across
// workers) and trims the job history and old downloads.
func (s *Service) maintain(ctx context.Context) {
	now := s.cfg.Now()
	for _, m := range []struct {
		kind   sitevault.JobKind
		every  time.Duration
		params any
	}{
		{sitevault.JobPrune, s.cfg.PruneEvery, nil},
		{sitevault.JobCheck, s.cfg.CheckEvery, CheckParams{ReadData: true}},
	} {
		if m.every < 0 {
			continue
		}
		period := now.Unix() / int64(m.every/time.Second)
		key := fmt.Sprintf("%s/%d/%d", m.kind, int64(m.every/time.Second), period)
		_, err := s.cat.EnqueueJob(ctx, catalog.NewJob{Kind: m.kind, Trigger: "schedule", DedupeKey: key, Params: m.params})
		if err != nil && !errors.Is(err, catalog.ErrExists) {
			s.log.Error("queue "+string(m.kind), "err", err)
		}
	}
	if n, err := s.cat.DeleteJobsBefore(ctx, now.Add(-s.cfg.JobRetention)); err != nil {
		s.log.Error("trim job history", "err", err)
	} else if n > 0 {
		s.log.Info("job history trimmed", "jobs", n)
	}
	if n, err := s.cat.DeleteEventsBefore(ctx, now.Add(-s.cfg.ActivityRetention)); err != nil {
		s.log.Error("trim the activity log", "err", err)
	} else if n > 0 {
		s.log.Info("activity log trimmed", "events", n)
	}
	if err := s.cat.PurgeConnector(ctx); err != nil {
		s.log.Error("purge expired nonces, codes, keys and sessions", "err", err)
	}
	s.removeOldDownloads(now)
}

func (s *Service) removeOldDownloads(now time.Time) {
	entries, err := os.ReadDir(s.downloadDir())
	if err != nil {
		return
	}
	for _, e := range entries {
		fi, err := e.Info()
		if err == nil && now.Sub(fi.ModTime()) > s.cfg.DownloadTTL {
			os.Remove(s.downloadDir() + "/" + e.Name())
		}
	}
}

// Enqueue adds a job and wakes this worker's runner.
func (s *Service) Enqueue(ctx context.Context, j catalog.NewJob) (*sitevault.Job, error) {
	if j.Kind == sitevault.JobBackup && j.MaxAttempts == 0 {
		j.MaxAttempts = s.cfg.BackupAttempts
	}
	job, err := s.cat.EnqueueJob(ctx, j)
	if err == nil {
		s.runner.Wake()
	}
	return job, err
}

// jobFinished updates the site's status, its activity log and the
// metrics, and sends alerts.
func (s *Service) jobFinished(ctx context.Context, j *sitevault.Job, err error) {
	s.metrics.jobEnded(j)
	if j.Site == "" || !j.State.Final() || j.State == sitevault.JobCancelled {
		return
	}
	s.logJob(ctx, j)
	switch j.Kind {
	case sitevault.JobBackup, sitevault.JobRestore, sitevault.JobUndo, sitevault.JobForget:
		s.recordStorage(ctx, j.Site) // they add or remove points
	}
	if j.Kind != sitevault.JobBackup {
		return
	}
	ok := j.State == sitevault.JobSucceeded
	var res BackupResult
	if ok {
		_ = decodeResult(j, &res)
		// Every event up to the backup's start is in its point.
		if j.Started != nil {
			if _, err := s.cat.SetEventsPoint(ctx, j.Site, *j.Started, res.Point); err != nil {
				s.log.Error("mark events restorable", "site", j.Site, "err", err)
			}
		}
	}
	var took time.Duration
	if j.Started != nil && j.Finished != nil {
		took = j.Finished.Sub(*j.Started)
	}
	before, after, serr := s.cat.BackupEnded(ctx, j.Site, ok, s.cfg.Now(), res.Point, res.Bytes, took, j.Error, j.ErrorCode)
	if serr != nil {
		s.log.Error("record backup status", "site", j.Site, "err", serr)
		return
	}
	s.alertBackup(ctx, j, before, after)
}

// recordStorage records in the site's status what its restore points
// hold: the sum of the stored bytes each point added (a point adds only
// what no earlier data in the repository held, so the sum counts every
// byte once, within the site and across sites).
func (s *Service) recordStorage(ctx context.Context, site string) {
	points, err := point.List(ctx, s.repo, site)
	if err != nil {
		s.log.Error("storage of a site", "site", site, "err", err)
		return
	}
	var n int64
	for _, sn := range points {
		if sn.Summary != nil {
			n += sn.Summary.BytesAddedSaved
		}
	}
	if err := s.cat.SetStoredBytes(ctx, site, n); err != nil {
		s.log.Error("storage of a site", "site", site, "err", err)
	}
}

// loadLinkKey returns the key that signs download links, shared by every
// worker through the catalog (sealed).
func (s *Service) loadLinkKey(ctx context.Context) ([]byte, error) {
	const key = "download_link_key"
	for range 2 {
		v, err := s.cat.Setting(ctx, key, true)
		if err != nil {
			return nil, err
		}
		if len(v) == 32 {
			return v, nil
		}
		b := make([]byte, 32)
		rand.Read(b)
		if err := s.cat.AddSettingOnce(ctx, key, b, true); err != nil {
			return nil, err
		}
	}
	return nil, errors.New("service: cannot set up the download link key")
}

// logJob records a finished job in the site's activity log.
func (s *Service) logJob(ctx context.Context, j *sitevault.Job) {
	ok := j.State == sitevault.JobSucceeded
	var name, summary string
	switch j.Kind {
	case sitevault.JobBackup:
		if ok {
			var res BackupResult
			decodeResult(j, &res)
			name, summary = "sitevault__backup_finished", fmt.Sprintf("Backup finished (%s): %s new, %d changed; %s changed",
				j.Trigger, plural(res.FilesNew, "file"), res.FilesChanged, plural(res.TablesChanged, "table"))
		} else {
			name, summary = "sitevault__backup_failed", "Backup failed: "+j.Error
		}
	case sitevault.JobRestore, sitevault.JobUndo:
		var res RestoreResult
		decodeResult(j, &res)
		verb := "Restore"
		if j.Kind == sitevault.JobUndo {
			verb = "Undo of the last restore"
		}
		if ok {
			name, summary = "sitevault__restore_finished", fmt.Sprintf("%s to point %s finished", verb, shortID(res.Point))
		} else {
			name, summary = "sitevault__restore_failed", verb+" failed: "+j.Error
		}
	case sitevault.JobDownload:
		if !ok {
			return
		}
		var res DownloadResult
		decodeResult(j, &res)
		name, summary = "sitevault__download_ready", fmt.Sprintf("Download of point %s is ready (%s)", shortID(res.Point), res.Format)
	default:
		return
	}
	s.ownEvent(ctx, j.Site, name, summary, map[string]any{"job": j.ID, "error_code": j.ErrorCode})
}

// plural is "1 file", "2 files".
func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
