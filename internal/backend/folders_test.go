package backend_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sitevault/sitevault/internal/backend"
)

// barrier holds callers until n of them wait, then lets that round go.
type barrier struct {
	mu      sync.Mutex
	n       int
	waiting int
	rounds  int
	ch      chan struct{}
}

func newBarrier(n int) *barrier { return &barrier{n: n, ch: make(chan struct{})} }

// wait reports false if the round did not fill within a while: fewer than
// n callers were ever in flight together.
func (b *barrier) wait() bool {
	b.mu.Lock()
	ch := b.ch
	b.waiting++
	if b.waiting == b.n {
		b.waiting = 0
		b.rounds++
		close(ch)
		b.ch = make(chan struct{})
		b.mu.Unlock()
		return true
	}
	b.mu.Unlock()
	select {
	case <-ch:
		return true
	case <-time.After(10 * time.Second):
		return false
	}
}

func dataFolders() []string {
	var dirs []string
	for _, d := range backend.Dirs() {
		if len(d) == len("data/00") {
			dirs = append(dirs, d)
		}
	}
	return dirs
}

// TestEachFolderBounded: the 256 data folders are read 16 at a time, so
// a listing costs 16 sequential rounds of round trips instead of 256, and
// use sees the results one at a time.
func TestEachFolderBounded(t *testing.T) {
	const n = 16
	folders := dataFolders()
	b := newBarrier(n)
	var inFlight, maxInFlight, using atomic.Int32
	var stuck atomic.Bool
	seen := map[string]bool{}
	err := backend.EachFolder(context.Background(), folders, n, func(ctx context.Context, f string) (string, error) {
		cur := inFlight.Add(1)
		defer inFlight.Add(-1)
		for {
			m := maxInFlight.Load()
			if cur <= m || maxInFlight.CompareAndSwap(m, cur) {
				break
			}
		}
		if !b.wait() {
			stuck.Store(true)
		}
		return f, nil
	}, func(f string) error {
		if using.Add(1) != 1 {
			t.Error("use called concurrently")
		}
		defer using.Add(-1)
		if seen[f] {
			t.Errorf("%s used twice", f)
		}
		seen[f] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if stuck.Load() {
		t.Errorf("a round of %d concurrent reads never filled: reads are not concurrent", n)
	}
	if len(seen) != len(folders) {
		t.Errorf("used %d folders, want %d", len(seen), len(folders))
	}
	want := (len(folders) + n - 1) / n
	if b.rounds != want || maxInFlight.Load() != n {
		t.Errorf("%d folders: %d sequential rounds with at most %d reads in flight, want %d rounds of %d", len(folders), b.rounds, maxInFlight.Load(), want, n)
	}
}

// TestEachFolderStops: the first error, read's or use's, ends the walk:
// it comes back unchanged, use is not called again, and no read is left
// running.
func TestEachFolderStops(t *testing.T) {
	boom := errors.New("boom")
	folders := dataFolders()
	for _, tt := range []struct {
		name      string
		readErrAt string
		useErrAt  int
	}{
		{"read", "data/20", -1},
		{"use", "", 10},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var running atomic.Int32
			uses := 0
			err := backend.EachFolder(context.Background(), folders, 16, func(ctx context.Context, f string) (string, error) {
				running.Add(1)
				defer running.Add(-1)
				if f == tt.readErrAt {
					return "", boom
				}
				return f, nil
			}, func(f string) error {
				uses++
				if uses == tt.useErrAt {
					return boom
				}
				return nil
			})
			if err != boom {
				t.Errorf("err = %v, want %v unchanged", err, boom)
			}
			if tt.useErrAt > 0 && uses != tt.useErrAt {
				t.Errorf("use called %d times, want %d (none after its error)", uses, tt.useErrAt)
			}
			if running.Load() != 0 {
				t.Errorf("%d reads still running after EachFolder returned", running.Load())
			}
		})
	}
}

// TestEachFolderCancel: a ctx cancelled by the caller reaches the reads
// in flight and comes back as the error.
func TestEachFolderCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var running atomic.Int32
	err := backend.EachFolder(ctx, dataFolders(), 16, func(ctx context.Context, f string) (int, error) {
		running.Add(1)
		defer running.Add(-1)
		if f == "data/05" {
			cancel()
		}
		<-ctx.Done() // a read that ends only when cancelled
		return 0, fmt.Errorf("read %s: %w", f, ctx.Err())
	}, func(int) error {
		t.Error("use called for a failed read")
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if running.Load() != 0 {
		t.Errorf("%d reads still running after EachFolder returned", running.Load())
	}
}
