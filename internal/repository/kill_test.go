package repository

import (
	"bufio"
	"context"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sitevault/sitevault/internal/backend"
	"github.com/sitevault/sitevault/internal/backend/local"
)

const killEnv = "SITEVAULT_REPOSITORY_KILL_WRITER"

// killData is what the writer backs up: the same bytes in every process.
func killData() map[string][]byte {
	return map[string][]byte{"big": randBytes(500, 24<<20), "text": compressible(501, 4<<20)}
}

// TestKillWriterHelper is the subprocess of TestKill: it backs up
// killData into the repository named by the environment variable.
func TestKillWriterHelper(t *testing.T) {
	dir := os.Getenv(killEnv)
	if dir == "" {
		t.Skip("subprocess of TestKill only")
	}
	ctx := context.Background()
	be, err := local.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	r := TestOpen(t, be, Options{IndexEvery: 2})
	if _, err := r.RecoverOrphans(ctx); err != nil {
		t.Fatal(err)
	}
	os.Stdout.WriteString("started\n")
	TestSnapshot(t, r, "killed", time.Now(), killData())
	os.Stdout.WriteString("finished\n")
}

// TestKill SIGKILLs a writer at random moments, then checks the repository
// and runs a backup that must reuse what the killed writers uploaded.
func TestKill(t *testing.T) {
	if os.Getenv(killEnv) != "" {
		t.Skip("in the subprocess")
	}
	ctx := context.Background()
	dir := t.TempDir()
	be, err := local.Create(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	TestRepositoryWith(t, be, Options{})
	rnd := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 3))
	killed := 0
	for round := range 4 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestKillWriterHelper$", "-test.count=1")
		cmd.Env = append(os.Environ(), killEnv+"="+dir)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		for sc.Scan() && !strings.Contains(sc.Text(), "started") {
		}
		// The first round kills at once, so at least one writer always
		// dies mid-backup; the others at random moments.
		delay := 5 * time.Millisecond
		if round > 0 {
			delay = time.Duration(20+rnd.IntN(150)*(round+1)) * time.Millisecond
		}
		time.Sleep(delay)
		_ = cmd.Process.Signal(syscall.SIGKILL)
		for sc.Scan() {
		}
		err = cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			killed++
		} else if err != nil {
			t.Fatalf("writer failed on its own: %v", err)
		}
		// after every kill the repository is consistent
		res, err := TestOpen(t, be, Options{}).Check(ctx, CheckOptions{})
		if err != nil || !res.OK() {
			t.Fatalf("check after kill %d: %v %v", round, err, res.Problems)
		}
	}
	if killed == 0 {
		t.Fatal("no writer was killed mid-backup: the test proved nothing")
	}
	before := repoBytes(t, be, backend.PackFile)
	r := TestOpen(t, be, Options{})
	n, err := r.RecoverOrphans(ctx)
	if err != nil {
		t.Fatal(err)
	}
	files := killData()
	sn := TestSnapshot(t, r, "after", time.Now(), files)
	uploaded := repoBytes(t, be, backend.PackFile) - before
	var total int64
	for _, b := range files {
		total += int64(len(b))
	}
	t.Logf("%d kills, %d orphan packs recovered, %d of ~%d bytes uploaded by the final backup", killed, n, uploaded, total)
	if before > 0 && uploaded >= total*9/10 {
		t.Errorf("final backup uploaded %d bytes of %d: it did not reuse the killed writers' packs (%d bytes)", uploaded, total, before)
	}
	mustCheck(t, r)
	mustRestore(t, TestOpen(t, be, Options{}), sn, files)
}
