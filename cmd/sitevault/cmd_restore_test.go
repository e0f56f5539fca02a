package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sitevault/sitevault/internal/archive"
	"github.com/sitevault/sitevault/internal/backup"
)

// TestBackupPointsRestoreUndo runs the issue-5 commands on a real site:
// backup (text and JSON), points, restore without --yes (refused), restore,
// undo, and the --no-wait refusal.
func TestBackupPointsRestoreUndo(t *testing.T) {
	ts := newTestSite(t)
	e := newTestEnv(t)
	e.mustRun("", siteAddCmd(siteOptions{Name: "blog", Path: ts.root}))
	e.mustRun("", initCmd)

	out := e.mustRun("", func(ctx context.Context, g *globalOptions, out *bytes.Buffer) error {
		return runBackup(ctx, backupOptions{Name: "blog"}, g, out)
	})
	for _, want := range []string{"saved for site blog (manual, a full backup)", "files:", "database:  ", "tables", "skipped:", "point:"} {
		if !strings.Contains(out, want) {
			t.Errorf("backup output lacks %q:\n%s", want, out)
		}
	}
	out = e.mustRun("", func(ctx context.Context, g *globalOptions, out *bytes.Buffer) error {
		return runBackup(ctx, backupOptions{Name: "blog", JSON: true}, g, out)
	})
	var bj backupJSON
	if err := json.Unmarshal([]byte(out), &bj); err != nil {
		t.Fatalf("backup --json: %v\n%s", err, out)
	}
	if bj.Parent == "" || bj.FilesNew != 0 || bj.FilesChanged != 0 || bj.TablesChanged != 0 || bj.Trigger != "manual" {
		t.Errorf("second backup --json: %+v", bj)
	}

	out = e.mustRun("", func(ctx context.Context, g *globalOptions, out *bytes.Buffer) error {
		return runPoints(ctx, pointsOptions{Name: "blog"}, g, out)
	})
	if !strings.Contains(out, "manual") || !strings.Contains(out, "0 files, 0 tables") || !strings.Contains(out, "2 restore points") {
		t.Errorf("points:\n%s", out)
	}

	robots := filepath.Join(ts.root, "robots.txt")
	orig, _ := os.ReadFile(robots)
	os.WriteFile(robots, []byte("broken"), 0o644)

	// No terminal, no --yes: refused before anything happens.
	_, err := e.run("", func(ctx context.Context, g *globalOptions, out *bytes.Buffer) error {
		return runRestore(ctx, restoreOptions{Name: "blog", To: "latest"}, g, out)
	})
	if exitCode(err) != exitUsage {
		t.Errorf("restore without --yes: %v (exit %d)", err, exitCode(err))
	}
	_, err = e.run("", func(ctx context.Context, g *globalOptions, out *bytes.Buffer) error {
		return runRestore(ctx, restoreOptions{Name: "blog", To: "latest", Only: []string{"plugins", "nope"}, Yes: true}, g, out)
	})
	if exitCode(err) != exitUsage || !strings.Contains(err.Error(), "nope") {
		t.Errorf("restore --only nope: %v", err)
	}

	out = e.mustRun("", func(ctx context.Context, g *globalOptions, out *bytes.Buffer) error {
		return runRestore(ctx, restoreOptions{Name: "blog", To: "latest", Yes: true}, g, out)
	})
	if got, _ := os.ReadFile(robots); !bytes.Equal(got, orig) {
		t.Errorf("robots.txt not restored:\n%s", out)
	}
	for _, want := range []string{"Restored site blog", "database:", "pre-restore:"} {
		if !strings.Contains(out, want) {
			t.Errorf("restore output lacks %q:\n%s", want, out)
		}
	}

	out = e.mustRun("", func(ctx context.Context, g *globalOptions, out *bytes.Buffer) error {
		return runUndo(ctx, undoOptions{Name: "blog", Yes: true, JSON: true}, g, out)
	})
	var rj restoreJSON
	if err := json.Unmarshal([]byte(out), &rj); err != nil {
		t.Fatalf("undo --json: %v\n%s", err, out)
	}
	if got, _ := os.ReadFile(robots); string(got) != "broken" {
		t.Errorf("undo did not bring the edit back: %q", got)
	}
	if rj.PreRestore == "" || len(rj.Items) != 6 {
		t.Errorf("undo --json: %+v", rj)
	}
	out = e.mustRun("", func(ctx context.Context, g *globalOptions, out *bytes.Buffer) error {
		return runPoints(ctx, pointsOptions{Name: "blog", JSON: true}, g, out)
	})
	var points []pointJSON
	if err := json.Unmarshal([]byte(out), &points); err != nil || len(points) != 4 {
		t.Fatalf("points --json: %v, %d points\n%s", err, len(points), out)
	}
	if points[0].Trigger != "pre-restore" || points[0].RestoreOf == "" || points[1].Trigger != "pre-restore" {
		t.Errorf("points --json: newest first should be the two pre-restore points: %+v", points[:2])
	}

	// --from-archive: a download of the first point, restored like any point.
	archiveFile := filepath.Join(t.TempDir(), "blog.tar.gz")
	func() {
		s, err := openRepository(context.Background(), e.global(""))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		first := points[len(points)-1]
		sn, err := findPoint(context.Background(), e.global(""), s, "blog", first.ID)
		if err != nil {
			t.Fatal(err)
		}
		f, err := os.Create(archiveFile)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := archive.Write(context.Background(), s.repo, sn, f, archive.TarGz, archive.Options{}); err != nil {
			t.Fatal(err)
		}
	}()
	out = e.mustRun("", func(ctx context.Context, g *globalOptions, out *bytes.Buffer) error {
		return runRestore(ctx, restoreOptions{Name: "blog", FromArchive: archiveFile, Only: []string{"roots", "database"}, Yes: true}, g, out)
	})
	if got, _ := os.ReadFile(robots); !bytes.Equal(got, orig) {
		t.Errorf("robots.txt not restored from the archive:\n%s", out)
	}
	out = e.mustRun("", func(ctx context.Context, g *globalOptions, out *bytes.Buffer) error {
		return runPoints(ctx, pointsOptions{Name: "blog"}, g, out)
	})
	if !strings.Contains(out, " archive ") {
		t.Errorf("points lacks the imported archive point:\n%s", out)
	}
	_, err = e.run("", func(ctx context.Context, g *globalOptions, out *bytes.Buffer) error {
		return runRestore(ctx, restoreOptions{Name: "blog", FromArchive: archiveFile, To: "latest", Yes: true}, g, out)
	})
	if exitCode(err) != exitUsage {
		t.Errorf("--to with --from-archive: %v", err)
	}

	// One backup per site: --no-wait refuses while another job runs.
	unlock, err := backup.FileLocker{Dir: filepath.Join(e.home, "locks")}.Lock(context.Background(), "blog", "restore", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	_, err = e.run("", func(ctx context.Context, g *globalOptions, out *bytes.Buffer) error {
		return runBackup(ctx, backupOptions{Name: "blog", NoWait: true}, g, out)
	})
	if !errors.Is(err, backup.ErrBusy) || !strings.Contains(err.Error(), "another restore of blog is running, started at") || exitCode(err) != exitBusy {
		t.Errorf("backup --no-wait during a restore: %v (exit code %d, want %d)", err, exitCode(err), exitBusy)
	}
}
