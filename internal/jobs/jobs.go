// Package jobs runs the service's jobs: it claims queued jobs from the
// catalog (never from an in-memory queue, so that several workers on
// several machines share one queue), runs each with the handler of its
// kind, sends a heartbeat with its progress while it runs, stops it when
// a cancel is requested, retries failed backups with backoff, and notices
// jobs whose worker died (no heartbeat) to retry or fail them.
//
// A worker holds one goroutine per running job, at most Concurrency, and
// none per site or per scheduled job: its memory does not grow with the
// number of sites.
package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/sitevault/sitevault/internal/catalog"
	"github.com/sitevault/sitevault/internal/sitevault"
)

// Handler runs one job. It reports progress through p and returns the
// job's result (encoded as JSON) or an error. It must stop soon after ctx
// is cancelled (a cancel, a lost job or a shutdown), leaving the site and
// the repository whole.
type Handler func(ctx context.Context, job *sitevault.Job, p *Reporter) (result any, err error)

// Reporter holds a running job's latest progress; the runner stores it
// with each heartbeat.
type Reporter struct {
	mu sync.Mutex
	p  sitevault.Progress
	// poll, when set, is called before each heartbeat to refresh p from
	// the counters of the flow running (see Poll).
	poll func() sitevault.Progress
}

// Set replaces the progress.
func (r *Reporter) Set(p sitevault.Progress) {
	r.mu.Lock()
	r.p = p
	r.mu.Unlock()
}

// Poll makes the reporter read the progress from f at each heartbeat
// (and at the end), for flows that keep atomic counters.
func (r *Reporter) Poll(f func() sitevault.Progress) {
	r.mu.Lock()
	r.poll = f
	r.mu.Unlock()
}

// Progress returns the latest progress.
func (r *Reporter) Progress() sitevault.Progress {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.poll != nil {
		r.p = r.poll()
	}
	return r.p
}

// Coded is an error that carries a stable code for grouping and for the
// API ("connect", "database", "busy" …).
type Coded interface {
	error
	Code() string
}

// ErrorCode returns err's code: the Code of a Coded error in its chain,
// "cancelled" for a cancel, "error" otherwise.
func ErrorCode(err error) string {
	var c Coded
	switch {
	case errors.As(err, &c):
		return c.Code()
	case errors.Is(err, context.Canceled):
		return "cancelled"
	}
	return "error"
}

// Finished is called after a job ends (or is queued again for a retry),
// with the job as stored: the service updates the site's status, sends
// alerts and metrics from it.
type Finished func(ctx context.Context, job *sitevault.Job, err error)

// Runner claims and runs jobs. Set the fields, then call Run.
type Runner struct {
	Catalog  *catalog.Catalog
	Worker   string // this process's name in the jobs table
	Handlers map[sitevault.JobKind]Handler
	// Concurrency is how many jobs run at once (0: 2).
	Concurrency int
	Logger      *slog.Logger
	// Poll is how often the queue is read when idle (0: 1 s).
	Poll time.Duration
	// HeartbeatEvery (0: 10 s) and StaleAfter (0: 45 s): a job whose
	// worker sent no heartbeat for StaleAfter is taken for lost; with the
	// defaults a dead worker's job is noticed within a minute.
	HeartbeatEvery time.Duration
	StaleAfter     time.Duration
	// ProgressEvery (0: 1 s) is how often a running job's progress is
	// stored when it changed, between heartbeats, so that a progress page
	// (the dashboard's, `jobs show`) follows the job within a second or
	// two. Storing it is a heartbeat too.
	ProgressEvery time.Duration
	// Backoff is the wait before retry attempt n+1 after attempt n failed
	// (nil: DefaultBackoff).
	Backoff func(attempt int) time.Duration
	// Retryable says whether a failed job may run again; nil retries
	// backups only (a restore is not repeated behind the user's back).
	Retryable func(job *sitevault.Job, err error) bool
	// ShutdownGrace is how long running jobs may go on after Run's ctx is
	// cancelled before they are stopped and queued again (0: 20 s).
	ShutdownGrace time.Duration
	OnFinish      Finished

	wake chan struct{}
	once sync.Once
}

// DefaultBackoff waits 1, 4, 16 … minutes (at most an hour), with jitter.
func DefaultBackoff(attempt int) time.Duration {
	d := time.Minute
	for i := 1; i < attempt && d < time.Hour; i++ {
		d *= 4
	}
	d = min(d, time.Hour)
	return d/2 + rand.N(d/2+1)
}

func (r *Runner) init() {
	r.once.Do(func() {
		r.wake = make(chan struct{}, 1)
		if r.Concurrency <= 0 {
			r.Concurrency = 2
		}
		if r.Poll <= 0 {
			r.Poll = time.Second
		}
		if r.HeartbeatEvery <= 0 {
			r.HeartbeatEvery = 10 * time.Second
		}
		if r.StaleAfter <= 0 {
			r.StaleAfter = 45 * time.Second
		}
		if r.ProgressEvery <= 0 {
			r.ProgressEvery = time.Second
		}
		r.ProgressEvery = min(r.ProgressEvery, r.HeartbeatEvery)
		if r.Backoff == nil {
			r.Backoff = DefaultBackoff
		}
		if r.ShutdownGrace <= 0 {
			r.ShutdownGrace = 20 * time.Second
		}
		if r.Logger == nil {
			r.Logger = slog.New(slog.DiscardHandler)
		}
		if r.Retryable == nil {
			r.Retryable = func(j *sitevault.Job, err error) bool { return j.Kind == sitevault.JobBackup }
		}
	})
}

// Wake makes an idle runner read the queue now (after an enqueue).
func (r *Runner) Wake() {
	r.init()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run claims and runs jobs until ctx is cancelled, then lets running jobs
// go on for ShutdownGrace, stops the rest and queues them again, and
// returns.
func (r *Runner) Run(ctx context.Context) error {
	r.init()
	// Jobs run under their own context, cancelled after the grace period
	// of a shutdown, not at once.
	jobsCtx, stopJobs := context.WithCancel(context.WithoutCancel(ctx))
	defer stopJobs()
	slots := make(chan struct{}, r.Concurrency)
	var wg sync.WaitGroup
	reap := time.NewTicker(r.StaleAfter / 3)
	defer reap.Stop()
	poll := time.NewTimer(0)
	defer poll.Stop()
	r.reap(ctx)
	for {
		select {
		case <-ctx.Done():
			return r.drain(&wg, stopJobs)
		case <-reap.C:
			r.reap(ctx)
			continue
		case <-poll.C:
		case <-r.wake:
		}
		// Claim while there are free slots and runnable jobs.
		for {
			select {
			case slots <- struct{}{}:
			default:
				goto wait
			}
			job, err := r.Catalog.ClaimJob(ctx, r.Worker)
			if err != nil || job == nil {
				<-slots
				if err != nil && ctx.Err() == nil {
					r.Logger.Error("claim a job", "err", err)
				}
				goto wait
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-slots }()
				r.run(jobsCtx, job)
				r.Wake() // a slot is free: look again
			}()
		}
	wait:
		// A random phase, so that idle workers share the queue instead of
		// the one whose tick comes first taking every job.
		poll.Reset(r.Poll/2 + rand.N(r.Poll))
	}
}

func (r *Runner) drain(wg *sync.WaitGroup, stopJobs context.CancelFunc) error {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-time.After(r.ShutdownGrace):
	}
	r.Logger.Info("stopping running jobs at their next safe point; they are queued again")
	stopJobs()
	<-done
	return nil
}

func (r *Runner) reap(ctx context.Context) {
	lost, err := r.Catalog.ReapLostJobs(ctx, r.StaleAfter, func(j *sitevault.Job) time.Time {
		if !r.Retryable(j, nil) {
			return time.Time{}
		}
		return time.Now().Add(r.Backoff(j.Attempt))
	})
	if err != nil && ctx.Err() == nil {
		r.Logger.Error("find lost jobs", "err", err)
	}
	for _, l := range lost {
		r.Logger.Warn("job lost its worker", "job", l.Job.ID, "kind", l.Job.Kind, "site", l.Job.Site,
			"requeued", l.Requeued, "worker", l.Job.Worker)
		if !l.Requeued && r.OnFinish != nil {
			r.OnFinish(ctx, l.Job, errors.New(l.Job.Error))
		}
	}
}

// errShutdown stops a job because the service is stopping.
var errShutdown = errors.New("the service is stopping")

func (r *Runner) run(ctx context.Context, job *sitevault.Job) {
	log := r.Logger.With("job", job.ID, "kind", job.Kind, "site", job.Site, "attempt", job.Attempt)
	log.Info("job started")
	start := time.Now()
	h := r.Handlers[job.Kind]
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	rep := new(Reporter)

	// The heartbeat stores progress and carries cancels and lost jobs: every
	// HeartbeatEvery, and every ProgressEvery when the progress changed.
	hbDone := make(chan struct{})
	go func() {
		defer close(hbDone)
		t := time.NewTicker(r.ProgressEvery)
		defer t.Stop()
		var stored sitevault.Progress
		last := time.Now()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			p := rep.Progress()
			if p == stored && time.Since(last) < r.HeartbeatEvery {
				continue
			}
			stored, last = p, time.Now()
			hctx, hcancel := context.WithTimeout(context.WithoutCancel(ctx), r.HeartbeatEvery)
			stop, err := r.Catalog.Heartbeat(hctx, job.ID, r.Worker, p)
			hcancel()
			switch {
			case errors.Is(err, catalog.ErrJobLost):
				log.Warn("job taken over: stopping it", "err", err)
				cancel(err)
				return
			case err != nil:
				log.Error("heartbeat", "err", err)
			case stop:
				log.Info("cancel requested")
				cancel(errCancelled)
				return
			}
		}
	}()

	var result any
	var err error
	if h == nil {
		err = fmt.Errorf("this worker has no handler for %s jobs", job.Kind)
	} else {
		result, err = safeRun(ctx, h, job, rep)
	}
	cause := context.Cause(ctx) // nil unless the job was stopped
	cancel(nil)
	<-hbDone

	bg := context.WithoutCancel(ctx)
	var o catalog.JobOutcome
	o.Result, o.Progress = result, rep.Progress()
	switch {
	case errors.Is(cause, catalog.ErrJobLost):
		log.Warn("job result dropped: another worker owns it now")
		return
	case err != nil && errors.Is(cause, errCancelled):
		o.State, o.Error, o.ErrorCode = sitevault.JobCancelled, "cancelled while running", "cancelled"
	case err != nil && cause != nil:
		// A shutdown: queue it again, not counting this attempt.
		if rerr := r.Catalog.RequeueJob(bg, job.ID, r.Worker, errShutdown.Error()); rerr != nil {
			log.Error("queue the job again", "err", rerr)
		} else {
			log.Info("job stopped by the shutdown; queued again")
		}
		return
	case err != nil:
		o.State, o.Error, o.ErrorCode = sitevault.JobFailed, err.Error(), ErrorCode(err)
		if r.Retryable(job, err) && job.Attempt < job.MaxAttempts {
			o.RetryAt = time.Now().Add(r.Backoff(job.Attempt))
		}
	default:
		o.State = sitevault.JobSucceeded
		o.Progress.Percent = 100
	}
	stored, ferr := r.Catalog.FinishJob(bg, job.ID, r.Worker, o)
	if ferr != nil {
		log.Error("record the job's end", "err", ferr)
		return
	}
	log.Info("job ended", "state", stored.State, "took", time.Since(start).Round(time.Millisecond), "err", o.Error)
	if r.OnFinish != nil {
		r.OnFinish(bg, stored, err)
	}
}

var errCancelled = errors.New("cancelled")

// safeRun turns a handler's panic into the job's error, so that one bad
// job does not stop the worker.
func safeRun(ctx context.Context, h Handler, job *sitevault.Job, rep *Reporter) (result any, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("internal error: %v", p)
		}
	}()
	return h(ctx, job, rep)
}
