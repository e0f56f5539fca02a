package backup

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sitevault/sitevault/internal/archiver"
	"github.com/sitevault/sitevault/internal/backend/local"
	"github.com/sitevault/sitevault/internal/repository"
)

func writeFiles(t testing.TB, root string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// treeFiles lists the regular files of a tree, slash-separated.
func treeFiles(t testing.TB, repo *repository.Repository, id repository.ID, dir string) []string {
	t.Helper()
	tree, err := repo.LoadTree(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, n := range tree.Nodes {
		p := strings.TrimPrefix(dir+"/"+n.Name, "/")
		switch {
		case n.Type == repository.NodeDir && n.Subtree != nil:
			out = append(out, treeFiles(t, repo, *n.Subtree, p)...)
		case n.Type == repository.NodeFile:
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// TestRunDir backs up a plain folder into a repository on the local disk:
// a first full point, an incremental one with an exclude pattern, the
// site's lock, and a folder that does not exist.
func TestRunDir(t *testing.T) {
	ctx := context.Background()
	be, err := local.Create(ctx, filepath.Join(t.TempDir(), "repo"))
	if err != nil {
		t.Fatal(err)
	}
	repo := repository.TestRepositoryWith(t, be, repository.Options{})
	locker := FileLocker{Dir: t.TempDir()}
	deps := Deps{Repo: repo, Locker: locker, Hostname: "test-host"}
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"index.html": "hello", "css/site.css": "body{}", "cache/page.html": "cached", "notes.tmp": "scratch",
	})

	progress := new(archiver.Progress)
	first, err := RunDir(ctx, deps, DirOptions{Site: "static", Dir: dir, Progress: progress})
	if err != nil {
		t.Fatalf("RunDir: %v", err)
	}
	sn := first.Snapshot
	if sn.ID.IsNull() || sn.Site != "static" || sn.Trigger != TriggerManual || sn.Hostname != "test-host" || first.Parent != nil || first.Partial {
		t.Errorf("first point %+v, result %+v", sn, first)
	}
	if sn.Meta[MetaSource] != SourceDir || sn.Meta[MetaPath] != dir || sn.Summary.BytesAddedSaved == 0 {
		t.Errorf("meta %v, summary %+v", sn.Meta, sn.Summary)
	}
	if first.Files.FilesNew != 4 || progress.FilesDone.Load() != 4 {
		t.Errorf("files new %d, progress %d; want 4", first.Files.FilesNew, progress.FilesDone.Load())
	}
	if got, want := treeFiles(t, repo, sn.Tree, ""), []string{"cache/page.html", "css/site.css", "index.html", "notes.tmp"}; !slices.Equal(got, want) {
		t.Errorf("point holds %q, want %q", got, want)
	}

	// Incremental, with patterns on a folder path and on names.
	writeFiles(t, dir, map[string]string{"index.html": "hello again"})
	second, err := RunDir(ctx, deps, DirOptions{Site: "static", Dir: dir, Trigger: "daily", Excludes: []string{"cache", "*.tmp"}})
	if err != nil {
		t.Fatalf("second RunDir: %v", err)
	}
	if second.Parent == nil || second.Parent.ID != sn.ID || *second.Snapshot.Parent != sn.ID || second.Snapshot.Trigger != "daily" {
		t.Errorf("second point %+v, parent %v", second.Snapshot, second.Parent)
	}
	if f := second.Files; f.FilesChanged != 1 || f.FilesUnchanged != 1 || f.FilesNew != 0 {
		t.Errorf("second backup: %d changed, %d unchanged, %d new; want 1, 1, 0", f.FilesChanged, f.FilesUnchanged, f.FilesNew)
	}
	if got, want := treeFiles(t, repo, second.Snapshot.Tree, ""), []string{"css/site.css", "index.html"}; !slices.Equal(got, want) {
		t.Errorf("point with excludes holds %q, want %q", got, want)
	}
	var skipped []string
	for _, s := range second.Files.Skipped {
		skipped = append(skipped, s.Path+" "+s.Rule+": "+s.Reason)
	}
	if want := []string{`cache excluded-by-pattern: excluded by pattern ("cache")`, `notes.tmp excluded-by-pattern: excluded by pattern ("*.tmp")`}; !slices.Equal(skipped, want) {
		t.Errorf("skipped %q, want %q", skipped, want)
	}

	// One job per site: a dir backup waits for the site's lock like any backup.
	unlock, err := locker.Lock(ctx, "static", "restore", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = RunDir(ctx, deps, DirOptions{Site: "static", Dir: dir, NoWait: true})
	var busy *BusyError
	if !errors.As(err, &busy) || busy.Job != "restore" {
		t.Errorf("RunDir while the site is locked: %v, want a BusyError naming the restore", err)
	}
	unlock()

	for name, opts := range map[string]DirOptions{
		"missing folder":  {Site: "static", Dir: filepath.Join(dir, "nope")},
		"relative folder": {Site: "static", Dir: "relative"},
		"no site":         {Dir: dir},
		"bad pattern":     {Site: "static", Dir: dir, Excludes: []string{"["}},
	} {
		if _, err := RunDir(ctx, deps, opts); err == nil {
			t.Errorf("%s: RunDir succeeded", name)
		}
	}
	if points, err := PointsOf(ctx, repo, "static"); err != nil || len(points) != 2 {
		t.Errorf("the site has %d points (%v), want 2: a failed RunDir saved one", len(points), err)
	}
}
