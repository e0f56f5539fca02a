package sitevault

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrBusy means another backup or restore of the site is running.
var ErrBusy = errors.New("another job of the site is running")

// BusyError says which job holds a site's lock.
type BusyError struct {
	Site    string
	Job     string    // backup, restore, undo ("" if unknown)
	PID     int       // 0 if unknown
	Host    string    // "" if unknown
	Started time.Time // zero if unknown
	Waited  time.Duration
}

func (e *BusyError) Error() string {
	msg := e.Running()
	if e.Waited > 0 {
		msg += fmt.Sprintf(" (waited %s)", e.Waited.Round(time.Second))
	}
	return msg + "; wait for it to finish and try again"
}

// Running says which job holds the lock: "another backup of SITE is
// running, started at …, pid …".
func (e *BusyError) Running() string {
	job := e.Job
	if job == "" {
		job = "backup or restore"
	}
	msg := fmt.Sprintf("another %s of %s is running", job, e.Site)
	if !e.Started.IsZero() {
		msg += ", started at " + e.Started.Local().Format("2006-01-02 15:04:05")
	}
	if e.PID != 0 {
		msg += fmt.Sprintf(", pid %d", e.PID)
		if e.Host != "" {
			msg += " on " + e.Host
		}
	}
	return msg
}

func (e *BusyError) Unwrap() error { return ErrBusy }

// Locker grants per-site locks: one backup, restore or undo of a site runs
// at a time. backup.FileLocker excludes the processes of one machine;
// catalog.Locker those of every machine sharing a catalog.
type Locker interface {
	// Lock takes site's exclusive lock for job ("backup", "restore",
	// "undo"). While another job holds it, Lock waits up to wait (0: not
	// at all), calling onWait (if not nil) once when it starts waiting,
	// and then fails with a *BusyError (errors.Is ErrBusy) naming the
	// holder as far as it is known; a cancelled ctx ends the wait with
	// ctx.Err(). unlock releases the lock; calling it again does nothing.
	Lock(ctx context.Context, site, job string, wait time.Duration, onWait func(*BusyError)) (unlock func() error, err error)
}
