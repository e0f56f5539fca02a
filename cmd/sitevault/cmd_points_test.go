package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sitevault/sitevault/internal/repository"
)

func dirBackupTrigger(dir, site, trigger string) func(context.Context, *globalOptions, *bytes.Buffer) error {
	return func(ctx context.Context, g *globalOptions, out *bytes.Buffer) error {
		return runDirBackup(ctx, dirBackupOptions{Dir: dir, Site: site, Trigger: trigger}, g, out)
	}
}

// TestDirRestoreLatestIsABackup: a pre-restore point is never "latest"
// nor a day's point; it is reached by id, and snapshots marks it.
func TestDirRestoreLatestIsABackup(t *testing.T) {
	e := newTestEnv(t)
	clock := repository.NewFakeClock(time.Date(2026, 3, 2, 12, 0, 0, 0, time.Local))
	e.now = clock.Now
	e.mustRun("", initCmd)
	src := t.TempDir()
	writeTree(t, src, map[string]string{"f.txt": "backed up"})
	e.mustRun("", dirBackupTrigger(src, "demo", "manual"))
	clock.Advance(time.Hour)
	writeTree(t, src, map[string]string{"f.txt": "hacked"})
	e.mustRun("", dirBackupTrigger(src, "demo", "pre-restore"))
	ids := snapshotIDs(t, e) // oldest first
	if len(ids) != 2 {
		t.Fatalf("%d restore points, want 2", len(ids))
	}

	for _, ref := range []string{"latest", "2026-03-02"} {
		for _, site := range []string{"demo", ""} {
			dst := t.TempDir()
			e.mustRun("", restoreCmd(ref, dst, site))
			if b, _ := os.ReadFile(filepath.Join(dst, "f.txt")); string(b) != "backed up" {
				t.Errorf("dir restore %s (--site %q) restored %q, want the backup point's \"backed up\"", ref, site, b)
			}
		}
	}
	dst := t.TempDir()
	e.mustRun("", restoreCmd(ids[1].String()[:8], dst, "demo"))
	if b, _ := os.ReadFile(filepath.Join(dst, "f.txt")); string(b) != "hacked" {
		t.Errorf("dir restore of the pre-restore point by id restored %q", b)
	}

	list := e.mustRun("", snapshotsCmd)
	if !strings.Contains(list, "pre-restore (undo of") {
		t.Errorf("snapshots does not mark the pre-restore point:\n%s", list)
	}
}

// TestForgetCountsBackupsOnly: retention counts backup points only; a
// pre-restore point is kept while it is the undo of the latest restore and
// for 7 days after it was taken.
func TestForgetCountsBackupsOnly(t *testing.T) {
	e := newTestEnv(t)
	clock := repository.NewFakeClock(time.Date(2026, 3, 2, 8, 0, 0, 0, time.Local))
	e.now = clock.Now
	e.mustRun("", initCmd)
	src := t.TempDir()
	backupAs := func(trigger, content string) {
		writeTree(t, src, map[string]string{"f.txt": content})
		e.mustRun("", dirBackupTrigger(src, "s", trigger))
		clock.Advance(time.Hour)
	}
	forget := func(p repository.Policy) string {
		return e.mustRun("", func(ctx context.Context, g *globalOptions, out *bytes.Buffer) error {
			return runForget(ctx, forgetOptions{Site: "s", Policy: p}, g, out)
		})
	}
	backupAs("manual", "full 1")
	backupAs("daily", "full 2")
	backupAs("pre-restore", "files only, database down") // an old restore's
	backupAs("pre-restore", "before the latest restore")

	out := forget(repository.Policy{KeepDaily: 1})
	ids := snapshotIDs(t, e)
	if len(ids) != 3 {
		t.Fatalf("forget --keep-daily 1 left %d points, want 3 (the newest backup, two young pre-restore points):\n%s", len(ids), out)
	}
	dst := t.TempDir()
	e.mustRun("", restoreCmd("latest", dst, "s"))
	if b, _ := os.ReadFile(filepath.Join(dst, "f.txt")); string(b) != "full 2" {
		t.Errorf("after forget --keep-daily 1, latest holds %q, want the newest full backup:\n%s", b, out)
	}
	for _, want := range []string{"undo of the latest restore", "pre-restore, kept 7 days"} {
		if !strings.Contains(out, want) {
			t.Errorf("forget output lacks the reason %q:\n%s", want, out)
		}
	}

	// Eight days later: the older pre-restore point goes, the one of the
	// latest restore stays.
	clock.Advance(8 * 24 * time.Hour)
	backupAs("daily", "full 3")
	out = forget(repository.Policy{KeepDaily: 1})
	if ids := snapshotIDs(t, e); len(ids) != 2 {
		t.Fatalf("8 days later forget --keep-daily 1 left %d points, want 2 (the newest backup, the undo of the latest restore):\n%s", len(ids), out)
	}
	if !strings.Contains(out, "pre-restore, older than 7 days") || !strings.Contains(out, "undo of the latest restore") {
		t.Errorf("forget output lacks the reasons:\n%s", out)
	}
}
