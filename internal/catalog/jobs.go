package catalog

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sitevault/sitevault/internal/sitevault"
)

// The jobs table is the queue and the history at once: a job is claimed
// by setting its row to running in a transaction (on PostgreSQL the
// candidate row is picked FOR UPDATE SKIP LOCKED, so that workers do not
// wait for each other), and a unique index on (site) over running
// exclusive jobs makes a second backup or restore of one site impossible
// whatever the number of workers.

const jobColumns = `id, kind, site, trigger, state, params, result, error, error_code, progress,
	attempt, max_attempts, cancel_requested, worker, created_by, created_at, run_after,
	started_at, finished_at, heartbeat_at`

// NewJob is a job to enqueue.
type NewJob struct {
	Kind      sitevault.JobKind
	Site      string
	Trigger   string
	Params    any // encoded as JSON; nil for none
	CreatedBy string
	// MaxAttempts bounds automatic retries (0 means 1: no retry).
	MaxAttempts int
	// RunAfter delays the start (zero: now).
	RunAfter time.Time
	// DedupeKey, when set, makes a second job with the same key a no-op
	// (EnqueueJob returns ErrExists): a site's daily backup of one day.
	DedupeKey string
}

// EnqueueJob adds a queued job and returns it.
func (c *Catalog) EnqueueJob(ctx context.Context, j NewJob) (*sitevault.Job, error) {
	var id int64
	err := c.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		id, err = c.enqueue(ctx, tx, j)
		return err
	})
	if err != nil {
		return nil, err
	}
	return c.Job(ctx, id)
}

func (c *Catalog) enqueue(ctx context.Context, tx *sql.Tx, j NewJob) (int64, error) {
	if !j.Kind.Valid() {
		return 0, fmt.Errorf("enqueue: unknown job kind %q", j.Kind)
	}
	params := ""
	if j.Params != nil {
		b, err := json.Marshal(j.Params)
		if err != nil {
			return 0, fmt.Errorf("enqueue %s: %w", j.Kind, err)
		}
		params = string(b)
	}
	if j.MaxAttempts < 1 {
		j.MaxAttempts = 1
	}
	now := c.now()
	runAfter := j.RunAfter
	if runAfter.IsZero() {
		runAfter = now
	}
	var dedupe any
	if j.DedupeKey != "" {
		dedupe = j.DedupeKey
	}
	var id int64
	err := tx.QueryRowContext(ctx, c.q(`INSERT INTO jobs (kind, site, trigger, state, exclusive, params, max_attempts,
		created_by, dedupe_key, created_at, run_after) VALUES (?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?) RETURNING id`),
		string(j.Kind), j.Site, j.Trigger, boolInt(j.Kind.Exclusive()), params, j.MaxAttempts,
		j.CreatedBy, dedupe, formatTime(now), formatTime(runAfter)).Scan(&id)
	if err != nil {
		if c.isUnique(err) {
			return 0, fmt.Errorf("enqueue %s of %s: %w", j.Kind, j.Site, ErrExists)
		}
		return 0, fmt.Errorf("enqueue %s of %s: %w", j.Kind, j.Site, err)
	}
	return id, nil
}

// Job returns the job with the given id, or ErrNotFound.
func (c *Catalog) Job(ctx context.Context, id int64) (*sitevault.Job, error) {
	j, err := scanJob(c.db.QueryRowContext(ctx, c.q(`SELECT `+jobColumns+` FROM jobs WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("job %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read job %d: %w", id, err)
	}
	return j, nil
}

// JobFilter selects jobs to list; zero fields select everything.
type JobFilter struct {
	Site   string
	Kind   sitevault.JobKind
	States []sitevault.JobState
	// Before lists jobs with a smaller id (paging, newest first).
	Before int64
	Limit  int // 0 means 100
}

// Jobs lists jobs, newest first.
func (c *Catalog) Jobs(ctx context.Context, f JobFilter) ([]*sitevault.Job, error) {
	var where []string
	var args []any
	if f.Site != "" {
		where, args = append(where, "site = ?"), append(args, f.Site)
	}
	if f.Kind != "" {
		where, args = append(where, "kind = ?"), append(args, string(f.Kind))
	}
	if len(f.States) > 0 {
		ph := make([]string, len(f.States))
		for i, s := range f.States {
			ph[i] = "?"
			args = append(args, string(s))
		}
		where = append(where, "state IN ("+strings.Join(ph, ", ")+")")
	}
	if f.Before > 0 {
		where, args = append(where, "id < ?"), append(args, f.Before)
	}
	query := `SELECT ` + jobColumns + ` FROM jobs`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	limit := f.Limit
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	query += " ORDER BY id DESC LIMIT ?"
	args = append(args, limit)
	rows, err := c.db.QueryContext(ctx, c.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	defer rows.Close()
	var out []*sitevault.Job
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, fmt.Errorf("list jobs: %w", err)
		}
		out = append(out, j)
	}
	return out, rows.Err()
}

// ClaimJob starts the oldest runnable queued job for worker and returns it
// (nil when there is none). A job is runnable when its run-after time has
// come and, for a backup, restore or undo, no such job of its site runs.
func (c *Catalog) ClaimJob(ctx context.Context, worker string) (*sitevault.Job, error) {
	now := formatTime(c.now())
	var id int64
	err := c.inTx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, c.q(`SELECT id FROM jobs j
			WHERE state = 'queued' AND run_after <= ?
			AND (exclusive = 0 OR NOT EXISTS (
				SELECT 1 FROM jobs r WHERE r.site = j.site AND r.state = 'running' AND r.exclusive = 1))
			ORDER BY run_after, id LIMIT 1 `+c.d.SkipLocked), now).Scan(&id)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, c.q(`UPDATE jobs SET state = 'running', worker = ?, attempt = attempt + 1,
			started_at = ?, heartbeat_at = ?, error = '', error_code = '' WHERE id = ? AND state = 'queued'`),
			worker, now, now, id)
		return err
	})
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, nil
	case c.isUnique(err):
		// Another worker started a job of the same site in the meantime:
		// this one waits for it.
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("claim a job: %w", err)
	}
	return c.Job(ctx, id)
}

// ErrJobLost means the job is no longer running on this worker: it was
// taken for dead (no heartbeat) and requeued or failed by another.
var ErrJobLost = errors.New("the job is no longer running on this worker")

// Heartbeat records that worker still runs job id, with its progress, and
// says whether a cancel was requested. ErrJobLost if it no longer owns it.
func (c *Catalog) Heartbeat(ctx context.Context, id int64, worker string, p sitevault.Progress) (cancel bool, err error) {
	b, err := json.Marshal(p)
	if err != nil {
		return false, err
	}
	var flag int
	err = c.db.QueryRowContext(ctx, c.q(`UPDATE jobs SET heartbeat_at = ?, progress = ?
		WHERE id = ? AND worker = ? AND state = 'running' RETURNING cancel_requested`),
		formatTime(c.now()), string(b), id, worker).Scan(&flag)
	if errors.Is(err, sql.ErrNoRows) {
		return false, fmt.Errorf("job %d: %w", id, ErrJobLost)
	}
	if err != nil {
		return false, fmt.Errorf("heartbeat of job %d: %w", id, err)
	}
	return flag != 0, nil
}

// JobOutcome is how a run of a job ended.
type JobOutcome struct {
	State     sitevault.JobState // succeeded, failed or cancelled
	Result    any                // encoded as JSON; nil for none
	Error     string
	ErrorCode string
	Progress  sitevault.Progress
	// RetryAt, for a failed job with attempts left, queues it again to
	// run at that time instead of failing it.
	RetryAt time.Time
}

// FinishJob records the end of worker's run of job id. ErrJobLost if the
// worker no longer owns it. It returns the job as stored.
func (c *Catalog) FinishJob(ctx context.Context, id int64, worker string, o JobOutcome) (*sitevault.Job, error) {
	result := ""
	if o.Result != nil {
		b, err := json.Marshal(o.Result)
		if err != nil {
			return nil, fmt.Errorf("finish job %d: %w", id, err)
		}
		result = string(b)
	}
	progress, _ := json.Marshal(o.Progress)
	now := formatTime(c.now())
	var res sql.Result
	var err error
	if o.State == sitevault.JobFailed && !o.RetryAt.IsZero() {
		res, err = c.db.ExecContext(ctx, c.q(`UPDATE jobs SET state = 'queued', worker = '', run_after = ?,
			result = ?, error = ?, error_code = ?, progress = ?, heartbeat_at = ''
			WHERE id = ? AND worker = ? AND state = 'running' AND attempt < max_attempts`),
			formatTime(o.RetryAt), result, o.Error, o.ErrorCode, string(progress), id, worker)
		if err == nil {
			if n, _ := res.RowsAffected(); n == 1 {
				return c.Job(ctx, id)
			}
		}
	}
	if err == nil {
		res, err = c.db.ExecContext(ctx, c.q(`UPDATE jobs SET state = ?, result = ?, error = ?, error_code = ?,
			progress = ?, finished_at = ? WHERE id = ? AND worker = ? AND state = 'running'`),
			string(o.State), result, o.Error, o.ErrorCode, string(progress), now, id, worker)
	}
	if err != nil {
		return nil, fmt.Errorf("finish job %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil, fmt.Errorf("finish job %d: %w", id, ErrJobLost)
	}
	return c.Job(ctx, id)
}

// CancelJob cancels a queued job at once and asks the worker of a running
// one to stop it. It returns the job as stored; a job already ended is
// returned unchanged.
func (c *Catalog) CancelJob(ctx context.Context, id int64) (*sitevault.Job, error) {
	now := formatTime(c.now())
	_, err := c.db.ExecContext(ctx, c.q(`UPDATE jobs SET state = 'cancelled', finished_at = ?,
		error = 'cancelled before it started', error_code = 'cancelled' WHERE id = ? AND state = 'queued'`), now, id)
	if err == nil {
		_, err = c.db.ExecContext(ctx, c.q(`UPDATE jobs SET cancel_requested = 1 WHERE id = ? AND state = 'running'`), id)
	}
	if err != nil {
		return nil, fmt.Errorf("cancel job %d: %w", id, err)
	}
	return c.Job(ctx, id)
}

// LostJob is a running job whose worker stopped sending heartbeats.
type LostJob struct {
	Job *sitevault.Job
	// Requeued is true when it was queued again (attempts left), false
	// when it was failed.
	Requeued bool
}

// ReapLostJobs finds running jobs whose last heartbeat is older than
// staleAfter: each is queued again at retryAt(job) when retryAt gives a
// time and attempts are left, and failed otherwise. Several workers may
// reap at once; each job is reaped once.
func (c *Catalog) ReapLostJobs(ctx context.Context, staleAfter time.Duration, retryAt func(*sitevault.Job) time.Time) ([]LostJob, error) {
	cutoff := formatTime(c.now().Add(-staleAfter))
	rows, err := c.db.QueryContext(ctx, c.q(`SELECT `+jobColumns+` FROM jobs
		WHERE state = 'running' AND heartbeat_at < ? ORDER BY id LIMIT 100`), cutoff)
	if err != nil {
		return nil, fmt.Errorf("find lost jobs: %w", err)
	}
	var stale []*sitevault.Job
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("find lost jobs: %w", err)
		}
		stale = append(stale, j)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find lost jobs: %w", err)
	}
	var out []LostJob
	now := formatTime(c.now())
	for _, j := range stale {
		msg := fmt.Sprintf("the worker %s stopped while running it (no heartbeat since %s)", j.Worker, j.Heartbeat.Format(time.RFC3339))
		var at time.Time
		if retryAt != nil && j.Attempt < j.MaxAttempts {
			at = retryAt(j)
		}
		var res sql.Result
		if !at.IsZero() {
			res, err = c.db.ExecContext(ctx, c.q(`UPDATE jobs SET state = 'queued', worker = '', run_after = ?,
				error = ?, error_code = 'worker_lost', heartbeat_at = ''
				WHERE id = ? AND state = 'running' AND heartbeat_at < ?`), formatTime(at), msg, j.ID, cutoff)
		} else {
			res, err = c.db.ExecContext(ctx, c.q(`UPDATE jobs SET state = 'failed', finished_at = ?,
				error = ?, error_code = 'worker_lost'
				WHERE id = ? AND state = 'running' AND heartbeat_at < ?`), now, msg, j.ID, cutoff)
		}
		if err != nil {
			return out, fmt.Errorf("reap job %d: %w", j.ID, err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			nj, err := c.Job(ctx, j.ID)
			if err != nil {
				return out, err
			}
			out = append(out, LostJob{Job: nj, Requeued: !at.IsZero()})
		}
	}
	return out, nil
}

// DeleteJobsBefore removes ended jobs that finished before t (history
// retention) and returns how many.
func (c *Catalog) DeleteJobsBefore(ctx context.Context, t time.Time) (int64, error) {
	res, err := c.db.ExecContext(ctx, c.q(`DELETE FROM jobs WHERE state IN ('succeeded', 'failed', 'cancelled')
		AND finished_at != '' AND finished_at < ?`), formatTime(t))
	if err != nil {
		return 0, fmt.Errorf("delete old jobs: %w", err)
	}
	return res.RowsAffected()
}

// JobCount is the number of jobs of a kind in a state.
type JobCount struct {
	Kind  sitevault.JobKind
	State sitevault.JobState
	N     int64
}

// CountJobs counts jobs by kind and state (for metrics).
func (c *Catalog) CountJobs(ctx context.Context) ([]JobCount, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT kind, state, count(*) FROM jobs GROUP BY kind, state ORDER BY kind, state`)
	if err != nil {
		return nil, fmt.Errorf("count jobs: %w", err)
	}
	defer rows.Close()
	var out []JobCount
	for rows.Next() {
		var jc JobCount
		var kind, state string
		if err := rows.Scan(&kind, &state, &jc.N); err != nil {
			return nil, err
		}
		jc.Kind, jc.State = sitevault.JobKind(kind), sitevault.JobState(state)
		out = append(out, jc)
	}
	return out, rows.Err()
}

func scanJob(r scanner) (*sitevault.Job, error) {
	var (
		j                                               sitevault.Job
		kind, state, params, result, progress           string
		created, runAfter, started, finished, heartbeat string
		cancel                                          int
	)
	err := r.Scan(&j.ID, &kind, &j.Site, &j.Trigger, &state, &params, &result, &j.Error, &j.ErrorCode, &progress,
		&j.Attempt, &j.MaxAttempts, &cancel, &j.Worker, &j.CreatedBy, &created, &runAfter,
		&started, &finished, &heartbeat)
	if err != nil {
		return nil, err
	}
	j.Kind, j.State, j.CancelRequested = sitevault.JobKind(kind), sitevault.JobState(state), cancel != 0
	if params != "" {
		j.Params = json.RawMessage(params)
	}
	if result != "" {
		j.Result = json.RawMessage(result)
	}
	if progress != "" {
		if err := json.Unmarshal([]byte(progress), &j.Progress); err != nil {
			return nil, fmt.Errorf("job %d: progress: %w", j.ID, err)
		}
	}
	j.Created, j.RunAfter = parseTime(created), parseTime(runAfter)
	j.Started, j.Finished, j.Heartbeat = parseOptTime(started), parseOptTime(finished), parseOptTime(heartbeat)
	return &j, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// RequeueJob puts worker's running job back in the queue without counting
// the run as an attempt (the worker is shutting down).
func (c *Catalog) RequeueJob(ctx context.Context, id int64, worker, reason string) error {
	res, err := c.db.ExecContext(ctx, c.q(`UPDATE jobs SET state = 'queued', worker = '', attempt = attempt - 1,
		run_after = ?, error = ?, error_code = 'shutdown', heartbeat_at = ''
		WHERE id = ? AND worker = ? AND state = 'running'`), formatTime(c.now()), reason, id, worker)
	if err != nil {
		return fmt.Errorf("requeue job %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("requeue job %d: %w", id, ErrJobLost)
	}
	return nil
}
