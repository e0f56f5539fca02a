package repository

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/sitevault/sitevault/internal/backend"
)

// ErrPruneRunning: another prune holds the repository's prune lock. Two
// prunes at once could each delete what the other's repacking still needs.
var ErrPruneRunning = errors.New("another prune is running on this repository")

// The prune lock is a file locks/prune-<random>, encrypted like every
// metadata file, that a running prune re-writes every pruneLockRefresh. A
// lock not re-written for pruneLockStale (by the backend's clock) is left
// by a prune that died, and is ignored and removed. Backups never look at
// it: they need no lock.
const (
	pruneLockPrefix  = "prune-"
	pruneLockRefresh = 5 * time.Minute
	pruneLockStale   = 30 * time.Minute
)

type pruneLockInfo struct {
	Host    string    `json:"host"`
	PID     int       `json:"pid"`
	Started time.Time `json:"started"`
}

// lockPrune takes the prune lock. Two prunes starting at the same moment
// may both give up (each sees the other's lock); neither ever proceeds
// while another runs. release removes the lock.
func (r *Repository) lockPrune(ctx context.Context) (release func(), err error) {
	host, _ := os.Hostname()
	info := pruneLockInfo{Host: host, PID: os.Getpid(), Started: r.now()}
	plain, err := json.Marshal(info)
	if err != nil {
		return nil, err
	}
	write := func(ctx context.Context) (backend.Handle, error) {
		var rnd [8]byte
		rand.Read(rnd[:])
		h := backend.Handle{Type: backend.LockFile, Name: pruneLockPrefix + hex.EncodeToString(rnd[:])}
		b := r.crypt.sealFile(kindLock, plain)
		return h, r.be.Save(ctx, h, bytes.NewReader(b), int64(len(b)))
	}
	own, err := write(ctx)
	if err != nil {
		return nil, fmt.Errorf("take the prune lock: %w", err)
	}
	if err := r.otherPrune(ctx, own); err != nil {
		r.be.Remove(context.WithoutCancel(ctx), own)
		return nil, err
	}

	// Keep the lock fresh while the prune runs.
	var (
		mu   sync.Mutex
		done = make(chan struct{})
		wg   sync.WaitGroup
	)
	wg.Go(func() {
		t := time.NewTicker(pruneLockRefresh)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				h, err := write(ctx)
				if err != nil {
					r.log.Warn("refresh the prune lock", "err", err)
					continue
				}
				mu.Lock()
				old := own
				own = h
				mu.Unlock()
				r.be.Remove(ctx, old)
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
		if err := r.be.Remove(context.WithoutCancel(ctx), own); err != nil {
			r.log.Warn("remove the prune lock", "lock", own.String(), "err", err)
		}
	}, nil
}

// otherPrune returns ErrPruneRunning, saying whose, if a live prune lock
// other than own exists; stale locks are removed.
func (r *Repository) otherPrune(ctx context.Context, own backend.Handle) error {
	var live []backend.FileInfo
	err := r.be.List(ctx, backend.LockFile, func(fi backend.FileInfo) error {
		if fi.Name == own.Name || !strings.HasPrefix(fi.Name, pruneLockPrefix) {
			return nil
		}
		h := backend.Handle{Type: backend.LockFile, Name: fi.Name}
		if ownFi, err := r.be.Stat(ctx, own); err == nil && ownFi.ModTime.Sub(fi.ModTime) > pruneLockStale {
			r.log.Info("removing a stale prune lock", "lock", h.String(), "written", fi.ModTime)
			r.be.Remove(ctx, h)
			return nil
		}
		live = append(live, fi)
		return nil
	})
	if err != nil {
		return fmt.Errorf("list locks: %w", err)
	}
	if len(live) == 0 {
		return nil
	}
	who := fmt.Sprintf("lock %s written %s", live[0].Name, live[0].ModTime.Format(time.RFC3339))
	h := backend.Handle{Type: backend.LockFile, Name: live[0].Name}
	if b, err := loadFile(ctx, r.be, h); err == nil {
		if plain, err := r.crypt.openFile(kindLock, b); err == nil {
			var info pruneLockInfo
			if json.Unmarshal(plain, &info) == nil {
				who = fmt.Sprintf("host %s, pid %d, started %s", info.Host, info.PID, info.Started.Format(time.RFC3339))
			}
		}
	}
	return fmt.Errorf("%w (%s); wait for it to finish, or remove %s if that prune is dead", ErrPruneRunning, who, h)
}
