package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"
	"time"

	"github.com/sitevault/sitevault/internal/memlimit"
	"github.com/sitevault/sitevault/internal/repository"
)

// TestPruneRefusesShortGrace: the CLI accepts only graces the prune
// protocol is documented safe for (issue 9, finding 2).
func TestPruneRefusesShortGrace(t *testing.T) {
	for _, grace := range []time.Duration{-time.Hour, 0, time.Minute, 59 * time.Minute} {
		err := runPrune(context.Background(), pruneOptions{Grace: grace, MaxUnused: 0.2}, &globalOptions{}, io.Discard)
		if !errors.Is(err, errUsage) {
			t.Errorf("--grace %s: %v, want a usage error", grace, err)
		}
	}
}

// TestPruneLiftsMemoryLimit: prune's working set is a multiple of the
// index, so the index-sized soft limit that other commands get would make
// it collect continuously (a 10M-blob prune made no progress under it).
func TestPruneLiftsMemoryLimit(t *testing.T) {
	if _, ok := os.LookupEnv(memlimit.Env); ok {
		t.Fatalf("%s is set: this test checks the limit sitevault chooses", memlimit.Env)
	}
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	e := newTestEnv(t)
	e.mustRun("", initCmd)
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "f"), []byte("data"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.mustRun("", backupCmd(src, "s"))
	if got := debug.SetMemoryLimit(-1); got == math.MaxInt64 {
		t.Fatalf("a backup left no memory limit")
	}
	e.mustRun("", func(ctx context.Context, g *globalOptions, out *bytes.Buffer) error {
		return runPrune(ctx, pruneOptions{Grace: repository.MinGrace, MaxUnused: 0.2}, g, out)
	})
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Errorf("prune ran under a soft memory limit of %d bytes", got)
	}
}
