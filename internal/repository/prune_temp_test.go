package repository

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sitevault/sitevault/internal/backend/local"
	"github.com/sitevault/sitevault/internal/backend/retry"
)

// TestPruneCleansTemp: prune removes the temporary files of saves
// interrupted longer than Grace ago (a killed process) through the retry
// decorator, as a real repository is opened; a dry run and a young file
// (a save that may still run) are left alone.
func TestPruneCleansTemp(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "repo")
	lbe, err := local.Create(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	r := TestRepositoryWith(t, retry.New(lbe, retry.Options{}), Options{})
	now := time.Now()
	write := func(rel string, mtime time.Time) string {
		t.Helper()
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.WriteFile(p, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
		return p
	}
	old := write("data/3c/.tmp-killed", now.Add(-2*time.Hour))
	young := write("index/.tmp-running", now.Add(-time.Minute))

	res, err := r.Prune(ctx, PruneOptions{Grace: time.Hour, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(old); err != nil || res.TempFilesRemoved != 0 {
		t.Fatalf("dry run: removed %d temporary files, stat old one: %v", res.TempFilesRemoved, err)
	}
	res, err = r.Prune(ctx, PruneOptions{Grace: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if res.TempFilesRemoved != 1 {
		t.Errorf("prune removed %d temporary files, want 1", res.TempFilesRemoved)
	}
	if _, err := os.Stat(old); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("old temporary file still there: %v", err)
	}
	if _, err := os.Stat(young); err != nil {
		t.Errorf("young temporary file removed: %v", err)
	}
}
