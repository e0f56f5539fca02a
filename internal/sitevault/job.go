package sitevault

import (
	"encoding/json"
	"time"
)

// JobKind is what a job does.
type JobKind string

// Job kinds.
const (
	JobBackup   JobKind = "backup"
	JobRestore  JobKind = "restore"
	JobUndo     JobKind = "undo"
	JobDownload JobKind = "download"
	JobCheck    JobKind = "check"
	JobPrune    JobKind = "prune"
	JobForget   JobKind = "forget"
)

// Exclusive reports whether a job of this kind changes a site or reads it
// for a point, so that at most one such job runs per site at a time,
// across every worker.
func (k JobKind) Exclusive() bool {
	switch k {
	case JobBackup, JobRestore, JobUndo:
		return true
	}
	return false
}

// Valid reports whether k is a known kind.
func (k JobKind) Valid() bool {
	switch k {
	case JobBackup, JobRestore, JobUndo, JobDownload, JobCheck, JobPrune, JobForget:
		return true
	}
	return false
}

// JobState is where a job is in its life.
type JobState string

// Job states. Queued and running are live; the others are final.
const (
	JobQueued    JobState = "queued"
	JobRunning   JobState = "running"
	JobSucceeded JobState = "succeeded"
	JobFailed    JobState = "failed"
	JobCancelled JobState = "cancelled"
)

// Final reports whether a job in state s will not change again.
func (s JobState) Final() bool {
	return s == JobSucceeded || s == JobFailed || s == JobCancelled
}

// Job is one piece of work of the service, and its history: the row stays
// after it ends, for the retention the service is configured with.
type Job struct {
	ID   int64   `json:"id"`
	Kind JobKind `json:"kind"`
	// Site is the site the job works on ("" for repository jobs: check, prune).
	Site string `json:"site,omitempty"`
	// Trigger says who asked: "manual", "daily", "realtime", "api", "retry".
	Trigger string   `json:"trigger"`
	State   JobState `json:"state"`
	// Params are the kind's parameters (for a restore: point, items …).
	Params json.RawMessage `json:"params,omitempty"`
	// Result is what the job did, as the kind reports it.
	Result json.RawMessage `json:"result,omitempty"`
	// Error says why a failed job failed and what to do; ErrorCode is a
	// stable slug for grouping ("connect", "database", "worker_lost" …).
	Error     string   `json:"error,omitempty"`
	ErrorCode string   `json:"error_code,omitempty"`
	Progress  Progress `json:"progress"`
	// Attempt counts runs (1 for the first); MaxAttempts bounds retries.
	Attempt     int `json:"attempt"`
	MaxAttempts int `json:"max_attempts"`
	// CancelRequested is set by a cancel of a running job; the worker
	// stops it at its next safe point.
	CancelRequested bool `json:"cancel_requested,omitempty"`
	// Worker names the process running (or that ran) the job.
	Worker    string    `json:"worker,omitempty"`
	CreatedBy string    `json:"created_by,omitempty"`
	Created   time.Time `json:"created"`
	// RunAfter is when a queued job may start (retries wait for it).
	RunAfter  time.Time  `json:"run_after"`
	Started   *time.Time `json:"started,omitempty"`
	Finished  *time.Time `json:"finished,omitempty"`
	Heartbeat *time.Time `json:"heartbeat,omitempty"`
}

// Progress is how far a running job is.
type Progress struct {
	Phase   string  `json:"phase,omitempty"`   // "files", "database", "saving" …
	Percent float64 `json:"percent"`           // 0–100; an estimate
	Current string  `json:"current,omitempty"` // the file or table being worked on
	Bytes   int64   `json:"bytes"`             // bytes done
	Total   int64   `json:"total,omitempty"`   // bytes expected (0: unknown)
	Files   int64   `json:"files,omitempty"`
	Tables  int64   `json:"tables,omitempty"`
}

// Role is what a user may do.
type Role string

// Roles: an owner does everything; a viewer sees everything and changes,
// restores and downloads nothing.
const (
	RoleOwner  Role = "owner"
	RoleViewer Role = "viewer"
)

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return r == RoleOwner || r == RoleViewer }

// User is a person who signs in to the service.
type User struct {
	ID      int64     `json:"id"`
	Email   string    `json:"email"`
	Name    string    `json:"name,omitempty"`
	Role    Role      `json:"role"`
	Created time.Time `json:"created"`
}

// Token is an API token's public part (its secret is shown once, at
// creation, and stored hashed).
type Token struct {
	ID       int64      `json:"id"`
	UserID   int64      `json:"user_id"`
	Name     string     `json:"name"`
	Prefix   string     `json:"prefix"` // the first characters, to recognise it
	Created  time.Time  `json:"created"`
	LastUsed *time.Time `json:"last_used,omitempty"`
	Expires  *time.Time `json:"expires,omitempty"`
}
