package backup

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestLock(t *testing.T) {
	ctx := context.Background()
	locker := FileLocker{Dir: t.TempDir()}
	first, err := locker.Lock(ctx, "shop", "backup", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Another site is independent.
	other, err := locker.Lock(ctx, "blog", "backup", 0, nil)
	if err != nil {
		t.Fatalf("lock of another site: %v", err)
	}
	other()
	// Any name works, even one that is no file name (dir backups).
	odd, err := locker.Lock(ctx, "../a/b", "backup", 0, nil)
	if err != nil {
		t.Fatalf("lock of an odd name: %v", err)
	}
	odd()

	_, err = locker.Lock(ctx, "shop", "restore", 0, nil)
	var busy *BusyError
	if !errors.As(err, &busy) || !errors.Is(err, ErrBusy) {
		t.Fatalf("second lock: %v", err)
	}
	if busy.Job != "backup" || busy.PID != os.Getpid() || busy.Started.IsZero() || busy.Waited != 0 ||
		!strings.HasPrefix(err.Error(), "another backup of shop is running, started at ") {
		t.Errorf("busy: %+v (%v)", busy, err)
	}

	// A waiting job is told once and gets the lock when it is free.
	notices := 0
	go func() {
		time.Sleep(300 * time.Millisecond)
		first()
	}()
	second, err := locker.Lock(ctx, "shop", "restore", 10*time.Second, func(*BusyError) { notices++ })
	if err != nil || notices != 1 {
		t.Fatalf("waiting lock: %v, %d notices", err, notices)
	}
	// A timeout says how long it waited; a cancelled wait stops at once.
	_, err = locker.Lock(ctx, "shop", "backup", 300*time.Millisecond, nil)
	if !errors.As(err, &busy) || busy.Job != "restore" || busy.Waited < 300*time.Millisecond {
		t.Errorf("timed-out wait: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := locker.Lock(cctx, "shop", "backup", time.Minute, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled wait: %v", err)
	}
	second()
	second() // twice is fine
	third, err := locker.Lock(ctx, "shop", "backup", 0, nil)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	third()
}

// recordingLocker is a Locker that grants every lock and remembers the
// wait it was asked for.
type recordingLocker struct{ waits []time.Duration }

func (r *recordingLocker) Lock(_ context.Context, _, _ string, wait time.Duration, _ func(*BusyError)) (func() error, error) {
	r.waits = append(r.waits, wait)
	return func() error { return nil }, nil
}

// TestDepsLock: Deps.Lock turns NoWait and a zero Wait into the wait the
// Locker gets, and without a Locker locks nothing.
func TestDepsLock(t *testing.T) {
	ctx := context.Background()
	unlock, err := (&Deps{}).Lock(ctx, "shop", "backup", false, 0, nil)
	if err != nil || unlock() != nil {
		t.Fatalf("no Locker: %v", err)
	}
	r := &recordingLocker{}
	d := &Deps{Locker: r}
	for _, c := range []struct {
		noWait bool
		wait   time.Duration
	}{{true, time.Minute}, {false, 0}, {false, time.Second}} {
		if _, err := d.Lock(ctx, "shop", "backup", c.noWait, c.wait, nil); err != nil {
			t.Fatal(err)
		}
	}
	if want := []time.Duration{0, DefaultWait, time.Second}; !slices.Equal(r.waits, want) {
		t.Errorf("waits = %v, want %v", r.waits, want)
	}
}
