package backup

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

func TestLock(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	first, err := AcquireLock(ctx, dir, "shop", "backup", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Another site is independent.
	other, err := AcquireLock(ctx, dir, "blog", "backup", 0, nil)
	if err != nil {
		t.Fatalf("lock of another site: %v", err)
	}
	other.Release()

	_, err = AcquireLock(ctx, dir, "shop", "restore", 0, nil)
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
		first.Release()
	}()
	second, err := AcquireLock(ctx, dir, "shop", "restore", 10*time.Second, func(*BusyError) { notices++ })
	if err != nil || notices != 1 {
		t.Fatalf("waiting lock: %v, %d notices", err, notices)
	}
	// A timeout says how long it waited; a cancelled wait stops at once.
	_, err = AcquireLock(ctx, dir, "shop", "backup", 300*time.Millisecond, nil)
	if !errors.As(err, &busy) || busy.Job != "restore" || busy.Waited < 300*time.Millisecond {
		t.Errorf("timed-out wait: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := AcquireLock(cctx, dir, "shop", "backup", time.Minute, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled wait: %v", err)
	}
	second.Release()
	second.Release() // twice is fine
	third, err := AcquireLock(ctx, dir, "shop", "backup", 0, nil)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	third.Release()
}
