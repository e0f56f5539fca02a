package backup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/sitevault/sitevault/internal/sitevault"
)

// ErrBusy means another backup or restore of the site is running.
var ErrBusy = sitevault.ErrBusy

// BusyError says which job holds a site's lock (see sitevault.BusyError).
type BusyError = sitevault.BusyError

// Locker grants per-site locks (see sitevault.Locker).
type Locker = sitevault.Locker

// DefaultWait is how long a job waits for a site's lock by default.
const DefaultWait = 30 * time.Minute

// FileLocker locks a site with flock(2) on Dir/site-NAME.lock (NAME
// escaped as a URL path segment; the file and Dir are created when
// missing) and writes the holder (job, pid, host, start) into the file for
// the BusyError of the next one. The kernel drops the
// lock when the holding process ends, so a crash never leaves a site
// locked. It works between processes of one machine.
type FileLocker struct {
	Dir string
}

var _ Locker = FileLocker{}

type lockInfo struct {
	Job     string    `json:"job"`
	PID     int       `json:"pid"`
	Host    string    `json:"host"`
	Started time.Time `json:"started"`
}

// Lock takes site's lock file (see Locker).
func (l FileLocker) Lock(ctx context.Context, site, job string, wait time.Duration, onWait func(*BusyError)) (func() error, error) {
	if err := os.MkdirAll(l.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("lock site %s: %w", site, err)
	}
	// A registered site's name is a plain word; a dir backup may file
	// its points under any name, so the name is escaped ("/" included).
	path := filepath.Join(l.Dir, "site-"+url.PathEscape(site)+".lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock site %s: %w", site, err)
	}
	start := time.Now()
	notified := false
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("lock site %s (%s): %w", site, path, err)
		}
		waited := time.Since(start)
		if waited >= wait {
			be := readBusy(f, site)
			if wait > 0 {
				be.Waited = waited
			}
			f.Close()
			return nil, be
		}
		if !notified && onWait != nil {
			notified = true
			onWait(readBusy(f, site))
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(min(200*time.Millisecond, wait-waited)):
		}
	}
	host, _ := os.Hostname()
	b, _ := json.Marshal(lockInfo{Job: job, PID: os.Getpid(), Host: host, Started: time.Now()})
	if err := f.Truncate(0); err == nil {
		f.WriteAt(append(b, '\n'), 0)
	}
	var once sync.Once
	var closeErr error
	return func() error {
		once.Do(func() {
			f.Truncate(0)
			closeErr = f.Close() // closing the last descriptor releases the flock
		})
		return closeErr
	}, nil
}

func readBusy(f *os.File, site string) *BusyError {
	be := &BusyError{Site: site}
	b, err := io.ReadAll(io.NewSectionReader(f, 0, 4096))
	if err != nil {
		return be
	}
	var li lockInfo
	if json.Unmarshal(b, &li) == nil {
		be.Job, be.PID, be.Host, be.Started = li.Job, li.PID, li.Host, li.Started
	}
	return be
}
