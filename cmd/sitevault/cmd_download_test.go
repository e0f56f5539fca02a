package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sitevault/sitevault/internal/archive"
	"github.com/sitevault/sitevault/internal/archiver"
	"github.com/sitevault/sitevault/internal/fsys"
	"github.com/sitevault/sitevault/internal/repository"
	"github.com/sitevault/sitevault/internal/site"
)

func downloadCmd(siteName, to, out string) func(context.Context, *globalOptions, *bytes.Buffer) error {
	return func(ctx context.Context, g *globalOptions, buf *bytes.Buffer) error {
		return runDownload(ctx, downloadOptions{Site: siteName, To: to, Output: out}, g, buf)
	}
}

// saveDownloadPoints saves site restore points (files only) of dir at the given times.
func saveDownloadPoints(t *testing.T, e *testEnv, siteName, dir string, times ...time.Time) []*repository.Snapshot {
	t.Helper()
	ctx := context.Background()
	s, err := openRepository(ctx, e.global(""))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	local, err := fsys.NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()
	files, _, err := archiver.New(s.repo, local, archiver.Options{}).Snapshot(ctx, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	var out []*repository.Snapshot
	for _, tm := range times {
		root, err := site.SaveRoot(ctx, s.repo, &files, nil, tm)
		if err != nil {
			t.Fatal(err)
		}
		sn := &repository.Snapshot{Time: tm, Site: siteName, Trigger: "manual", Tree: root, Meta: map[string]string{"table_prefix": "wp_"}}
		if _, err := s.repo.SaveSnapshot(ctx, sn); err != nil {
			t.Fatal(err)
		}
		out = append(out, sn)
	}
	return out
}

// downloadedPointID reads the point id from a download's manifest (via import's checks).
func downloadedPointID(t *testing.T, e *testEnv, path string) string {
	t.Helper()
	ctx := context.Background()
	s, err := openRepository(ctx, e.global(""))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	sn, err := archive.Import(ctx, s.repo, path, "imported", archive.ImportOptions{})
	if err != nil {
		t.Fatalf("import %s: %v", path, err)
	}
	return sn.Meta[archive.MetaArchivePoint]
}

func TestDownloadCommand(t *testing.T) {
	e := newTestEnv(t)
	e.mustRun("", initCmd)
	src := t.TempDir()
	writeTree(t, src, map[string]string{"index.php": "<?php\n", "wp-content/uploads/a.txt": "a"})
	day1 := time.Date(2025, 6, 1, 0, 0, 0, 0, time.Local)
	points := saveDownloadPoints(t, e, "blog", src, day1.Add(10*time.Hour), day1.Add(15*time.Hour), day1.Add(33*time.Hour))
	others := saveDownloadPoints(t, e, "other", src, day1.Add(16*time.Hour))
	outDir := t.TempDir()

	t.Run("day", func(t *testing.T) {
		out := filepath.Join(outDir, "day.tar.gz")
		stdout := e.mustRun("", downloadCmd("blog", "2025-06-01", out))
		if got := downloadedPointID(t, e, out); got != points[1].ID.String() {
			t.Errorf("day's download is of %s, want %s (the day's latest)", got, points[1].ID)
		}
		if !strings.Contains(stdout, "Downloaded restore point "+points[1].ID.Short()) || !strings.Contains(stdout, "2 files") {
			t.Errorf("summary:\n%s", stdout)
		}
		fi, err := os.Stat(out)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("download: %v, mode %v; want 0600", err, fi.Mode())
		}
	})
	t.Run("latest zip", func(t *testing.T) {
		out := filepath.Join(outDir, "latest.zip")
		e.mustRun("", downloadCmd("blog", "latest", out))
		if got := downloadedPointID(t, e, out); got != points[2].ID.String() {
			t.Errorf("latest is %s, want %s", got, points[2].ID)
		}
	})
	t.Run("id", func(t *testing.T) {
		out := filepath.Join(outDir, "id.tgz")
		e.mustRun("", downloadCmd("blog", points[0].ID.String()[:8], out))
		if got := downloadedPointID(t, e, out); got != points[0].ID.String() {
			t.Errorf("download is of %s, want %s", got, points[0].ID)
		}
	})
	for _, c := range []struct {
		name, site, to, out string
		code                int
	}{
		{"bad extension", "blog", "latest", "x.rar", exitUsage},
		{"other site's point", "blog", others[0].ID.String()[:8], "x.zip", exitUsage},
		{"no point that day", "blog", "1999-01-01", "x.zip", exitError},
		{"no such site", "nosite", "latest", "x.zip", exitError},
	} {
		t.Run(c.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), c.out)
			_, err := e.run("", downloadCmd(c.site, c.to, out))
			if err == nil || exitCode(err) != c.code {
				t.Errorf("error %v (exit %d), want exit %d", err, exitCode(err), c.code)
			}
			for _, p := range []string{out, out + ".partial"} {
				if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s left behind", filepath.Base(p))
				}
			}
		})
	}
	// Without --to: latest. An existing file is refused without --force
	// (and left as it was), replaced with it.
	t.Run("default latest, no overwrite without force", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "site.tar.gz")
		e.mustRun("", downloadCmd("blog", "", out))
		if got := downloadedPointID(t, e, out); got != points[2].ID.String() {
			t.Errorf("download without --to is of %s, want the latest %s", got, points[2].ID)
		}
		if err := os.WriteFile(out, []byte("keep me"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := e.run("", downloadCmd("blog", "latest", out))
		if exitCode(err) != exitUsage || !strings.Contains(fmt.Sprint(err), "--force") {
			t.Errorf("over an existing file: %v (exit %d), want exit 2 naming --force", err, exitCode(err))
		}
		if b, _ := os.ReadFile(out); string(b) != "keep me" {
			t.Errorf("the existing file was changed")
		}
		e.mustRun("", func(ctx context.Context, g *globalOptions, buf *bytes.Buffer) error {
			return runDownload(ctx, downloadOptions{Site: "blog", To: "latest", Output: out, Force: true}, g, buf)
		})
		if got := downloadedPointID(t, e, out); got != points[2].ID.String() {
			t.Errorf("--force: the file holds %s, want %s", got, points[2].ID)
		}
	})
	// -o - writes the archive (and nothing else) to stdout, in --format.
	t.Run("stdout", func(t *testing.T) {
		for _, format := range []string{"", "zip"} {
			var buf bytes.Buffer
			e.mustRun("", func(ctx context.Context, g *globalOptions, _ *bytes.Buffer) error {
				return runDownload(ctx, downloadOptions{Site: "blog", To: points[0].ID.String()[:8], Output: "-", Format: format}, g, &buf)
			})
			name := filepath.Join(t.TempDir(), "piped.tar.gz")
			if format == "zip" {
				name = filepath.Join(t.TempDir(), "piped.zip")
			}
			if err := os.WriteFile(name, buf.Bytes(), 0o600); err != nil {
				t.Fatal(err)
			}
			if got := downloadedPointID(t, e, name); got != points[0].ID.String() {
				t.Errorf("-o - --format %q: holds %s, want %s", format, got, points[0].ID)
			}
		}
		_, err := e.run("", func(ctx context.Context, g *globalOptions, buf *bytes.Buffer) error {
			return runDownload(ctx, downloadOptions{Site: "blog", Output: "x.zip", Format: "zip"}, g, buf)
		})
		if exitCode(err) != exitUsage {
			t.Errorf("--format with a file name: %v, want a usage error", err)
		}
	})
	// An interrupted download leaves neither FILE nor FILE.partial.
	t.Run("interrupted", func(t *testing.T) {
		s, err := openRepository(context.Background(), e.global(""))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		out := filepath.Join(t.TempDir(), "x.tar.gz")
		_, err = writeDownload(ctx, s, points[0], out, archive.TarGz, new(archive.Progress), false)
		if !errors.Is(err, context.Canceled) || exitCode(err) != exitInterrupted {
			t.Errorf("error %v (exit %d), want interrupted", err, exitCode(err))
		}
		if entries, _ := os.ReadDir(filepath.Dir(out)); len(entries) != 0 {
			t.Errorf("left behind: %v", entries)
		}
	})
	// A point that is not a site's (made by dir backup) fails after the
	// partial file was created: nothing is left behind.
	t.Run("failure leaves nothing", func(t *testing.T) {
		e.mustRun("", backupCmd(src, "plain"))
		out := filepath.Join(t.TempDir(), "plain.zip")
		_, err := e.run("", downloadCmd("plain", "latest", out))
		if err == nil || !strings.Contains(err.Error(), "not a site restore point") {
			t.Errorf("error %v", err)
		}
		entries, _ := os.ReadDir(filepath.Dir(out))
		if len(entries) != 0 {
			t.Errorf("left behind: %v", entries)
		}
	})
}
