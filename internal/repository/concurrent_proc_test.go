package repository

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Timing of the multi-process test: short, real clocks. A round of a
// helper backup takes well under procGrace.
const (
	procGrace   = 4 * time.Second
	procStale   = 2 * time.Second
	procRefresh = 200 * time.Millisecond
	procRounds  = 6
)

func procPruneOptions() PruneOptions {
	return PruneOptions{Grace: procGrace, LockStale: procStale, LockRefresh: procRefresh}
}

// procFiles is what round i of backup worker w saves: a file of its own
// and one from a pool shared by workers and rounds (deduplicated, and
// tombstoned and revived as snapshots come and go).
func procFiles(w, i int) map[string][]byte {
	return map[string][]byte{
		"own":  randBytes(uint64(1000*w+i), 30<<10+i*1000),
		"pool": randBytes(uint64(100+i%3), 80<<10),
	}
}

// TestHelperProcess is not a test: TestConcurrentProcesses runs this test
// binary again with SITEVAULT_TEST_PROC set to make it a backup or a
// prune process on a real backend.
func TestHelperProcess(t *testing.T) {
	role := os.Getenv("SITEVAULT_TEST_PROC")
	if role == "" {
		return
	}
	ctx := context.Background()
	be := openReal(t, os.Getenv("SITEVAULT_TEST_KIND"), os.Getenv("SITEVAULT_TEST_WHERE"))
	r := TestOpen(t, be, Options{})
	switch role {
	case "backup":
		w, _ := strconv.Atoi(os.Getenv("SITEVAULT_TEST_WORKER"))
		var ids []ID
		for i := range procRounds {
			if _, err := r.RecoverOrphans(ctx); err != nil {
				t.Fatal(err)
			}
			sn, err := SaveTestSnapshot(ctx, r, "site"+strconv.Itoa(w), time.Now(), procFiles(w, i))
			if err != nil {
				t.Fatalf("backup round %d: %v", i, err)
			}
			ids = append(ids, sn.ID)
			if i >= 2 { // forget round i-2: garbage for prune
				if err := r.RemoveSnapshot(ctx, ids[i-2]); err != nil {
					t.Fatal(err)
				}
			}
		}
		for i := procRounds - 2; i < procRounds; i++ {
			fmt.Printf("SNAP %s %d %d\n", ids[i], w, i)
		}
	case "prune-loop":
		stop := os.Getenv("SITEVAULT_TEST_STOP")
		for {
			res, err := r.Prune(ctx, procPruneOptions())
			switch {
			case errors.Is(err, ErrPruneRunning), errors.Is(err, ErrPruneLockLost):
			case err != nil:
				t.Fatalf("prune: %v", err)
			default:
				fmt.Printf("PRUNED %d\n", res.PacksDeleted)
			}
			if _, err := os.Stat(stop); err == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	case "prune-paused":
		opts := procPruneOptions()
		// a real suspend: every thread stops, the lock refresher too
		opts.beforeDestroy = func() { syscall.Kill(os.Getpid(), syscall.SIGSTOP) }
		for {
			_, err := r.Prune(ctx, opts)
			if errors.Is(err, ErrPruneRunning) {
				time.Sleep(50 * time.Millisecond)
				continue
			}
			if errors.Is(err, ErrPruneLockLost) {
				fmt.Println("PAUSED lost its lock")
			} else {
				fmt.Printf("PAUSED %v\n", err)
			}
			return
		}
	default:
		t.Fatalf("unknown role %q", role)
	}
}

// helperProc starts this test binary as a helper process.
func helperProc(t *testing.T, kind, where, role string, env ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), "SITEVAULT_TEST_PROC="+role, "SITEVAULT_TEST_KIND="+kind, "SITEVAULT_TEST_WHERE="+where)
	cmd.Env = append(cmd.Env, env...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return cmd, &out
}

// stopped waits until process pid is stopped (Linux /proc).
func stopped(t *testing.T, pid int) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			t.Fatal(err)
		}
		// pid (comm) state ...
		switch f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:])); {
		case len(f) > 0 && f[0] == "T":
			return
		case len(f) > 0 && (f[0] == "Z" || f[0] == "X"):
			t.Fatal("the paused prune ended before its destructive steps")
		}
	}
	t.Fatal("the paused prune never reached its destructive steps")
}

// TestConcurrentProcesses is issue 9, finding 8: backups in two processes
// and prunes in two others (one suspended with SIGSTOP past its lock's
// staleness at its first destructive step), with real clocks and a short
// grace, on local, SFTP and S3; afterwards every snapshot the backups
// kept restores exactly, prunes did delete packs, and check --read-data
// passes.
func TestConcurrentProcesses(t *testing.T) {
	ctx := context.Background()
	for _, rb := range realBackends(t) {
		t.Run(rb.name, func(t *testing.T) {
			where := rb.new(t)
			r := TestRepositoryWith(t, rb.open(t, where), Options{})
			old := TestSnapshot(t, r, "old", time.Now(), map[string][]byte{"x": randBytes(7, 100<<10)})
			if err := r.RemoveSnapshot(ctx, old.ID); err != nil {
				t.Fatal(err)
			}
			stop := filepath.Join(t.TempDir(), "stop")
			// old's pack is no longer young: the paused prune has work
			time.Sleep(procGrace)

			paused, pausedOut := helperProc(t, rb.name, where, "prune-paused")
			stopped(t, paused.Process.Pid)
			var backups []*exec.Cmd
			var backupOuts []*bytes.Buffer
			for w := range 2 {
				c, out := helperProc(t, rb.name, where, "backup", "SITEVAULT_TEST_WORKER="+strconv.Itoa(w))
				backups = append(backups, c)
				backupOuts = append(backupOuts, out)
			}
			loop, loopOut := helperProc(t, rb.name, where, "prune-loop", "SITEVAULT_TEST_STOP="+stop)

			// suspended past the staleness (mtimes have a second's resolution)
			time.Sleep(procStale + 1500*time.Millisecond)
			paused.Process.Signal(syscall.SIGCONT)
			if err := paused.Wait(); err != nil {
				t.Fatalf("paused prune: %v\n%s", err, pausedOut)
			}
			if !strings.Contains(pausedOut.String(), "PAUSED lost its lock") {
				t.Fatalf("paused prune did not stop for its lost lock:\n%s", pausedOut)
			}
			kept := map[ID][2]int{}
			for i, c := range backups {
				if err := c.Wait(); err != nil {
					t.Fatalf("backup %d: %v\n%s", i, err, backupOuts[i])
				}
				sc := bufio.NewScanner(bytes.NewReader(backupOuts[i].Bytes()))
				for sc.Scan() {
					var id string
					var w, round int
					if n, _ := fmt.Sscanf(sc.Text(), "SNAP %s %d %d", &id, &w, &round); n == 3 {
						sid, err := ParseID(id)
						if err != nil {
							t.Fatal(err)
						}
						kept[sid] = [2]int{w, round}
					}
				}
			}
			if len(kept) != 4 {
				t.Fatalf("backups reported %d kept snapshots, want 4", len(kept))
			}
			if err := os.WriteFile(stop, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := loop.Wait(); err != nil {
				t.Fatalf("prune loop: %v\n%s", err, loopOut)
			}
			deleted := 0
			for _, line := range strings.Split(loopOut.String(), "\n") {
				var n int
				if k, _ := fmt.Sscanf(line, "PRUNED %d", &n); k == 1 {
					deleted += n
				}
			}
			// the grace of the last tombstones passes; prune collects them
			r = TestOpen(t, rb.open(t, where), Options{})
			for range 2 {
				time.Sleep(procGrace + procStale/4)
				res, err := r.Prune(ctx, procPruneOptions())
				if err != nil {
					t.Fatal(err)
				}
				deleted += res.PacksDeleted
			}
			if deleted == 0 {
				t.Fatal("no prune deleted a pack: the test exercised nothing")
			}
			r = TestOpen(t, rb.open(t, where), Options{})
			for id, wr := range kept {
				mustRestore(t, r, &Snapshot{ID: id}, procFiles(wr[0], wr[1]))
			}
			sns, err := r.Snapshots(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(sns) != len(kept) {
				t.Fatalf("%d snapshots in the repository, want %d", len(sns), len(kept))
			}
			mustCheck(t, r)
		})
	}
}
