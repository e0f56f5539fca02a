package jobs

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sitevault/sitevault/internal/catalog"
	"github.com/sitevault/sitevault/internal/catalog/sqlite"
	"github.com/sitevault/sitevault/internal/sitevault"
)

func openCatalog(t *testing.T) *catalog.Catalog {
	t.Helper()
	c, err := sqlite.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// start runs r until the test ends.
func start(t *testing.T, r *Runner) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	stop = func() { cancel(); <-done }
	t.Cleanup(stop)
	return stop
}

// waitJob waits until job id is in a final state (or queued again when
// queued is true) and returns it.
func waitJob(t *testing.T, c *catalog.Catalog, id int64, want func(*sitevault.Job) bool) *sitevault.Job {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		j, err := c.Job(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if want(j) {
			return j
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %d stays %s: %+v", id, j.State, j)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func final(j *sitevault.Job) bool { return j.State.Final() }

func fast(r *Runner) *Runner {
	r.Poll, r.HeartbeatEvery, r.StaleAfter = 20*time.Millisecond, 50*time.Millisecond, 300*time.Millisecond
	r.Backoff = func(int) time.Duration { return 10 * time.Millisecond }
	return r
}

func TestRunSucceedsRetriesAndFails(t *testing.T) {
	c := openCatalog(t)
	ctx := context.Background()
	var runs atomic.Int32
	r := fast(&Runner{Catalog: c, Worker: "w1", Handlers: map[sitevault.JobKind]Handler{
		sitevault.JobBackup: func(ctx context.Context, j *sitevault.Job, p *Reporter) (any, error) {
			p.Set(sitevault.Progress{Phase: "files", Percent: 50})
			if runs.Add(1) < 3 {
				return nil, &testErr{"cannot reach the server"}
			}
			return map[string]string{"point": "abc"}, nil
		},
		sitevault.JobCheck: func(ctx context.Context, j *sitevault.Job, p *Reporter) (any, error) {
			return nil, errors.New("damaged")
		},
		sitevault.JobPrune: func(ctx context.Context, j *sitevault.Job, p *Reporter) (any, error) {
			panic("a bug")
		},
	}})
	var ended atomic.Int32
	r.OnFinish = func(ctx context.Context, j *sitevault.Job, err error) { ended.Add(1) }
	start(t, r)
	b, _ := c.EnqueueJob(ctx, catalog.NewJob{Kind: sitevault.JobBackup, Site: "blog", MaxAttempts: 3})
	ch, _ := c.EnqueueJob(ctx, catalog.NewJob{Kind: sitevault.JobCheck, MaxAttempts: 3})
	pr, _ := c.EnqueueJob(ctx, catalog.NewJob{Kind: sitevault.JobPrune})
	r.Wake()
	j := waitJob(t, c, b.ID, final)
	if j.State != sitevault.JobSucceeded || j.Attempt != 3 || string(j.Result) != `{"point":"abc"}` || j.Progress.Percent != 100 {
		t.Fatalf("backup after two failures: %+v", j)
	}
	// A check is not retried (only backups are), whatever MaxAttempts says.
	j = waitJob(t, c, ch.ID, final)
	if j.State != sitevault.JobFailed || j.Attempt != 1 || j.Error != "damaged" || j.ErrorCode != "error" {
		t.Fatalf("check: %+v", j)
	}
	j = waitJob(t, c, pr.ID, final)
	if j.State != sitevault.JobFailed || j.Error != "internal error: a bug" {
		t.Fatalf("a panicking handler: %+v", j)
	}
	if n := ended.Load(); n < 5 {
		t.Errorf("OnFinish called %d times, want one per end and per retry (≥ 5)", n)
	}
}

type testErr struct{ msg string }

func (e *testErr) Error() string { return e.msg }
func (e *testErr) Code() string  { return "unreachable" }

func TestCancelRunningJob(t *testing.T) {
	c := openCatalog(t)
	ctx := context.Background()
	started := make(chan struct{})
	r := fast(&Runner{Catalog: c, Worker: "w1", Handlers: map[sitevault.JobKind]Handler{
		sitevault.JobRestore: func(ctx context.Context, j *sitevault.Job, p *Reporter) (any, error) {
			close(started)
			<-ctx.Done()
			return nil, ctx.Err()
		},
	}})
	start(t, r)
	j, _ := c.EnqueueJob(ctx, catalog.NewJob{Kind: sitevault.JobRestore, Site: "blog"})
	<-started
	if _, err := c.CancelJob(ctx, j.ID); err != nil {
		t.Fatal(err)
	}
	got := waitJob(t, c, j.ID, final)
	if got.State != sitevault.JobCancelled || got.ErrorCode != "cancelled" {
		t.Fatalf("cancelled job: %+v", got)
	}
}

func TestShutdownQueuesRunningJobsAgain(t *testing.T) {
	c := openCatalog(t)
	ctx := context.Background()
	started := make(chan struct{})
	r := fast(&Runner{Catalog: c, Worker: "w1", ShutdownGrace: 50 * time.Millisecond, Handlers: map[sitevault.JobKind]Handler{
		sitevault.JobBackup: func(ctx context.Context, j *sitevault.Job, p *Reporter) (any, error) {
			close(started)
			<-ctx.Done()
			return nil, ctx.Err()
		},
	}})
	stop := start(t, r)
	j, _ := c.EnqueueJob(ctx, catalog.NewJob{Kind: sitevault.JobBackup, Site: "blog"})
	<-started
	stop()
	got, _ := c.Job(ctx, j.ID)
	if got.State != sitevault.JobQueued || got.Attempt != 0 || got.ErrorCode != "shutdown" {
		t.Fatalf("after a shutdown the job is %+v, want queued again without a used attempt", got)
	}
}

func TestLostWorkerIsNoticed(t *testing.T) {
	c := openCatalog(t)
	ctx := context.Background()
	// A worker claims a backup and a restore, then dies (no heartbeats).
	b, _ := c.EnqueueJob(ctx, catalog.NewJob{Kind: sitevault.JobBackup, Site: "a", MaxAttempts: 3})
	rs, _ := c.EnqueueJob(ctx, catalog.NewJob{Kind: sitevault.JobRestore, Site: "b"})
	for range 2 {
		if j, err := c.ClaimJob(ctx, "dead"); j == nil || err != nil {
			t.Fatal(j, err)
		}
	}
	var lost atomic.Int32
	r := fast(&Runner{Catalog: c, Worker: "alive", Handlers: map[sitevault.JobKind]Handler{
		sitevault.JobBackup: func(ctx context.Context, j *sitevault.Job, p *Reporter) (any, error) { return "ok", nil },
	}})
	r.OnFinish = func(ctx context.Context, j *sitevault.Job, err error) {
		if j.ErrorCode == "worker_lost" {
			lost.Add(1)
		}
	}
	start(t, r)
	got := waitJob(t, c, b.ID, final)
	if got.State != sitevault.JobSucceeded || got.Worker != "alive" || got.Attempt != 2 {
		t.Fatalf("the lost backup: %+v, want retried by the live worker", got)
	}
	got = waitJob(t, c, rs.ID, final)
	if got.State != sitevault.JobFailed || got.ErrorCode != "worker_lost" {
		t.Fatalf("the lost restore: %+v, want failed (a restore is not repeated behind the user's back)", got)
	}
	if lost.Load() != 1 {
		t.Errorf("OnFinish saw %d lost jobs, want the failed restore", lost.Load())
	}
}

func TestConcurrencyBound(t *testing.T) {
	c := openCatalog(t)
	ctx := context.Background()
	var running, peak atomic.Int32
	r := fast(&Runner{Catalog: c, Worker: "w1", Concurrency: 3, Handlers: map[sitevault.JobKind]Handler{
		sitevault.JobDownload: func(ctx context.Context, j *sitevault.Job, p *Reporter) (any, error) {
			n := running.Add(1)
			for {
				old := peak.Load()
				if n <= old || peak.CompareAndSwap(old, n) {
					break
				}
			}
			time.Sleep(30 * time.Millisecond)
			running.Add(-1)
			return nil, nil
		},
	}})
	var ids []int64
	for range 12 {
		j, _ := c.EnqueueJob(ctx, catalog.NewJob{Kind: sitevault.JobDownload, Site: "s"})
		ids = append(ids, j.ID)
	}
	start(t, r)
	for _, id := range ids {
		waitJob(t, c, id, final)
	}
	if p := peak.Load(); p != 3 {
		t.Errorf("peak concurrency %d, want 3", p)
	}
}

// A running job's progress is stored every ProgressEvery when it changes,
// though heartbeats are an hour apart.
func TestProgressStoredBetweenHeartbeats(t *testing.T) {
	c := openCatalog(t)
	ctx := context.Background()
	step := make(chan float64)
	r := &Runner{Catalog: c, Worker: "w1", Poll: 20 * time.Millisecond, HeartbeatEvery: time.Hour, StaleAfter: 2 * time.Hour,
		ProgressEvery: 20 * time.Millisecond, Handlers: map[sitevault.JobKind]Handler{
			sitevault.JobBackup: func(ctx context.Context, j *sitevault.Job, p *Reporter) (any, error) {
				for pc := range step {
					p.Set(sitevault.Progress{Phase: "files", Percent: pc})
				}
				return nil, nil
			},
		}}
	start(t, r)
	j, _ := c.EnqueueJob(ctx, catalog.NewJob{Kind: sitevault.JobBackup, Site: "blog"})
	for _, pc := range []float64{10, 55, 90} {
		step <- pc
		waitJob(t, c, j.ID, func(j *sitevault.Job) bool { return j.Progress.Percent == pc })
	}
	close(step)
	if got := waitJob(t, c, j.ID, final); got.State != sitevault.JobSucceeded {
		t.Fatalf("job: %+v", got)
	}
}
