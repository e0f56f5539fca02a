// Package retry wraps a backend.Backend so that transient failures (a
// dropped connection, a server error, a timeout) are retried with
// exponential backoff and jitter, while permanent ones (backend.IsPermanent:
// missing files, refused credentials, a full disk, a cancelled context) are
// returned at once.
//
// Retrying is safe because backends write atomically: a failed Save leaves
// no file, so Save simply runs again after rewinding its reader. Load calls
// fn again for each attempt (as restic does), with a fresh reader from the
// start of the range: fn must be ready to be called more than once and must
// discard what it got from an earlier, failed call. Load is retried only
// when the backend failed — before fn ran, or while fn was reading; an
// error fn makes itself is returned unchanged.
package retry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/sitevault/sitevault/internal/backend"
)

var (
	_ backend.Backend     = (*Backend)(nil)
	_ backend.TempCleaner = (*Backend)(nil)
)

// Options bound the retries. Zero fields take the defaults.
type Options struct {
	// MaxAttempts is the number of attempts per call, the first included
	// (default 8).
	MaxAttempts int
	// MaxElapsed stops retrying once this much time has passed since the
	// first attempt (default 5 minutes).
	MaxElapsed time.Duration
	// InitialDelay is the wait before the second attempt (default 500ms);
	// each later wait doubles, up to MaxDelay (default 30s), and is
	// randomised by ±25% so that clients do not retry in step.
	InitialDelay time.Duration
	MaxDelay     time.Duration
	// Logger receives a warning for each retry and an error when a call
	// gives up; nil logs nothing.
	Logger *slog.Logger
	// sleep waits d or until ctx is done; tests replace it.
	sleep func(ctx context.Context, d time.Duration) error
}

// Backend is a backend.Backend that retries its inner backend's transient
// failures.
type Backend struct {
	be   backend.Backend
	opts Options
}

// New wraps be.
func New(be backend.Backend, opts Options) *Backend {
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 8
	}
	if opts.MaxElapsed <= 0 {
		opts.MaxElapsed = 5 * time.Minute
	}
	if opts.InitialDelay <= 0 {
		opts.InitialDelay = 500 * time.Millisecond
	}
	if opts.MaxDelay <= 0 {
		opts.MaxDelay = 30 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.sleep == nil {
		opts.sleep = sleep
	}
	return &Backend{be: be, opts: opts}
}

// Unwrap returns the wrapped backend.
func (b *Backend) Unwrap() backend.Backend { return b.be }

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// fnError marks an error made by a caller's callback, never retried and
// returned unchanged.
type fnError struct{ err error }

func (e *fnError) Error() string { return e.err.Error() }

// retry calls op until it succeeds, fails permanently or the bounds are
// reached, and returns its last error.
func (b *Backend) retry(ctx context.Context, op string, file fmt.Stringer, fn func(attempt int) error) error {
	start := time.Now()
	delay := b.opts.InitialDelay
	for attempt := 1; ; attempt++ {
		err := fn(attempt)
		if err == nil {
			if attempt > 1 {
				b.opts.Logger.Info("backend operation succeeded after retries", "op", op, "file", file.String(), "attempts", attempt)
			}
			return nil
		}
		var fe *fnError
		if errors.As(err, &fe) {
			return fe.err
		}
		if backend.IsPermanent(err) || ctx.Err() != nil {
			return err
		}
		if attempt >= b.opts.MaxAttempts || time.Since(start)+delay > b.opts.MaxElapsed {
			b.opts.Logger.Error("backend operation failed, giving up", "op", op, "file", file.String(), "attempts", attempt, "err", err)
			return fmt.Errorf("%w (gave up after %d attempts in %v)", err, attempt, time.Since(start).Round(time.Millisecond))
		}
		wait := jitter(delay)
		b.opts.Logger.Warn("backend operation failed, retrying", "op", op, "file", file.String(), "attempt", attempt, "delay", wait, "err", err)
		if serr := b.opts.sleep(ctx, wait); serr != nil {
			return err
		}
		delay = min(2*delay, b.opts.MaxDelay)
	}
}

// label names what a call works on where no handle does, in logs.
type label string

func (l label) String() string { return string(l) }

// jitter returns d randomised by ±25%.
func jitter(d time.Duration) time.Duration {
	return d*3/4 + rand.N(d/2+1)
}

// Location implements backend.Backend.
func (b *Backend) Location() string { return b.be.Location() }

// Save implements backend.Backend; it rewinds rd before every attempt.
func (b *Backend) Save(ctx context.Context, h backend.Handle, rd io.ReadSeeker, size int64) error {
	return b.retry(ctx, "save", h, func(int) error {
		if _, err := rd.Seek(0, io.SeekStart); err != nil {
			return backend.Permanent(fmt.Errorf("save %v: rewind: %w", h, err))
		}
		return b.be.Save(ctx, h, rd, size)
	})
}

// Load implements backend.Backend; see the package comment for how fn is
// called again.
func (b *Backend) Load(ctx context.Context, h backend.Handle, length int, offset int64, fn func(io.Reader) error) error {
	return b.retry(ctx, "load", h, func(int) error {
		var readErr error
		err := b.be.Load(ctx, h, length, offset, func(rd io.Reader) error {
			err := fn(&errReader{rd: rd, err: &readErr})
			if err != nil && readErr == nil {
				// fn failed on its own, not because the backend did.
				return &fnError{err: err}
			}
			return err
		})
		if err != nil && readErr != nil && !backend.IsPermanent(readErr) {
			// fn stopped because reading failed: retry with the read error.
			return readErr
		}
		return err
	})
}

// errReader records the first error its reader returns, io.EOF aside.
type errReader struct {
	rd  io.Reader
	err *error
}

func (r *errReader) Read(p []byte) (int, error) {
	n, err := r.rd.Read(p)
	if err != nil && err != io.EOF && *r.err == nil {
		*r.err = err
	}
	return n, err
}

// Stat implements backend.Backend.
func (b *Backend) Stat(ctx context.Context, h backend.Handle) (fi backend.FileInfo, err error) {
	err = b.retry(ctx, "stat", h, func(int) error {
		fi, err = b.be.Stat(ctx, h)
		return err
	})
	return fi, err
}

// List implements backend.Backend. A retried listing skips the files an
// earlier attempt already passed to fn, so fn sees each file once.
func (b *Backend) List(ctx context.Context, t backend.FileType, fn func(backend.FileInfo) error) error {
	seen := map[string]bool{}
	return b.retry(ctx, "list", backend.Handle{Type: t}, func(int) error {
		return b.be.List(ctx, t, func(fi backend.FileInfo) error {
			if seen[fi.Name] {
				return nil
			}
			seen[fi.Name] = true
			if err := fn(fi); err != nil {
				return &fnError{err: err}
			}
			return nil
		})
	})
}

// Remove implements backend.Backend. When an attempt fails after the file
// may already be gone (a connection dropped before the answer) and the
// next attempt finds no file, Remove succeeds.
func (b *Backend) Remove(ctx context.Context, h backend.Handle) error {
	return b.retry(ctx, "remove", h, func(attempt int) error {
		err := b.be.Remove(ctx, h)
		if attempt > 1 && errors.Is(err, backend.ErrNotExist) {
			return nil
		}
		return err
	})
}

// CleanTemp implements backend.TempCleaner by forwarding to the wrapped
// backend; one that does not implement it has nothing to clean (0, nil).
// A cleanup is idempotent, so it is retried like any call; the count sums
// what every attempt removed.
func (b *Backend) CleanTemp(ctx context.Context, olderThan time.Time) (int, error) {
	tc, ok := b.be.(backend.TempCleaner)
	if !ok {
		return 0, nil
	}
	removed := 0
	err := b.retry(ctx, "clean temp", label("temporary files"), func(int) error {
		n, err := tc.CleanTemp(ctx, olderThan)
		removed += n
		return err
	})
	return removed, err
}

// Close implements backend.Backend.
func (b *Backend) Close() error { return b.be.Close() }
