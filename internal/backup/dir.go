package backup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"time"

	"github.com/sitevault/sitevault/internal/archiver"
	"github.com/sitevault/sitevault/internal/fsys"
	"github.com/sitevault/sitevault/internal/repository"
)

// Meta keys of a plain-folder restore point (RunDir).
const (
	MetaSource = "source" // "dir"
	MetaPath   = "path"   // the folder's absolute path
)

// SourceDir is MetaSource of a plain-folder restore point.
const SourceDir = "dir"

// DirOptions say which folder RunDir backs up and how.
type DirOptions struct {
	// Site is the name the restore points are filed under (required); the
	// site's lock is taken for the backup.
	Site string
	// Dir is the folder's absolute path, stored with the point.
	Dir string
	// FS reads the folder; nil opens Dir on the local disk (and closes it).
	FS fsys.FS
	// Trigger is stored with the point; "" means manual.
	Trigger string
	// Excludes are glob patterns (path.Match) of entries to leave out,
	// matched against the slash-separated path relative to Dir and against
	// the entry's name; a matching folder is left out whole.
	Excludes []string
	// NoWait, Wait and OnWait: as in Options.
	NoWait bool
	Wait   time.Duration
	OnWait func(*BusyError)
	// Progress, if not nil, is updated while the files are read.
	Progress *archiver.Progress
}

// DirResult says what RunDir did.
type DirResult struct {
	Snapshot *repository.Snapshot // the saved point (ID set)
	Parent   *repository.Snapshot // the point it is incremental from, nil for a first backup
	Files    *archiver.Report
	// RecoveredPacks counts the packs an interrupted backup had left,
	// indexed first so that this backup reused their data.
	RecoveredPacks int
	// Partial is true when some files could not be read (Files.Errors);
	// the point is saved without them.
	Partial bool
}

// RunDir backs up a plain folder (no WordPress rules, no database) as one
// restore point of opts.Site, incremental from the site's newest point.
// The point's tree is the folder itself (no "files" node), and its Meta
// says source "dir" and the path. Unreadable files make the result
// Partial; errors are for what stops the whole backup (nothing is saved).
func RunDir(ctx context.Context, deps Deps, opts DirOptions) (*DirResult, error) {
	if opts.Site == "" {
		return nil, errors.New("back up a folder: no site name to file its restore points under")
	}
	if !filepath.IsAbs(opts.Dir) {
		return nil, fmt.Errorf("back up %s: the folder must be an absolute path", opts.Dir)
	}
	excl, err := newExcludes(opts.Excludes)
	if err != nil {
		return nil, fmt.Errorf("back up %s: %w", opts.Dir, err)
	}
	if opts.Trigger == "" {
		opts.Trigger = TriggerManual
	}
	log := deps.logger().With("site", opts.Site, "dir", opts.Dir)
	unlock, err := deps.Lock(ctx, opts.Site, "backup", opts.NoWait, opts.Wait, opts.OnWait)
	if err != nil {
		return nil, err
	}
	defer unlock()

	repo := deps.Repo
	res := &DirResult{}
	// See Run: learn what other writers and prunes did since the last load.
	if err := repo.Refresh(ctx); err != nil {
		return nil, fmt.Errorf("back up %s: %w", opts.Dir, err)
	}
	// Packs an interrupted backup left behind are indexed first, so that
	// this backup reuses them instead of uploading their data again.
	if res.RecoveredPacks, err = repo.RecoverOrphans(ctx); err != nil {
		return nil, fmt.Errorf("back up %s: %w", opts.Dir, err)
	} else if res.RecoveredPacks > 0 {
		log.Info("indexed packs of an interrupted backup", "packs", res.RecoveredPacks)
	}
	if res.Parent, err = newestPoint(ctx, repo, opts.Site); err != nil {
		return nil, err
	}
	var parentTree *repository.ID
	if res.Parent != nil {
		parentTree = &res.Parent.Tree
	}
	src := opts.FS
	if src == nil {
		l, err := fsys.NewLocal(opts.Dir)
		if err != nil {
			return nil, fmt.Errorf("back up %s: %w", opts.Dir, err)
		}
		defer l.Close()
		src = l
	}

	savedBefore := repo.Saved()
	aopts := archiver.Options{Progress: opts.Progress, Logger: log, Now: deps.Now}
	if excl != nil {
		aopts.Selector = excl
	}
	tree, rep, err := archiver.New(repo, src, aopts).Snapshot(ctx, "", parentTree)
	if err == nil {
		err = repo.Flush(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("back up %s: %w", opts.Dir, err)
	}
	res.Files, res.Partial = rep, rep.Partial

	sn := &repository.Snapshot{
		Time:     rep.Started,
		Site:     opts.Site,
		Hostname: deps.Hostname,
		Trigger:  opts.Trigger,
		Tree:     tree,
		Meta:     map[string]string{MetaSource: SourceDir, MetaPath: opts.Dir},
		Summary:  rep.Summary(),
	}
	if sn.Hostname == "" {
		sn.Hostname, _ = os.Hostname()
	}
	if res.Parent != nil {
		sn.Parent = &res.Parent.ID
	}
	// What this backup uploaded (counted by the repository: no listing of
	// data/, and other writers do not count).
	sn.Summary.BytesAddedSaved = repo.Saved().Sub(savedBefore).PackBytes
	if _, err := repo.SaveSnapshot(ctx, sn); err != nil {
		return nil, fmt.Errorf("back up %s: save the restore point: %w", opts.Dir, err)
	}
	res.Snapshot = sn
	log.Info("restore point saved", "point", sn.ID.Short(), "trigger", sn.Trigger, "partial", res.Partial)
	return res, nil
}

// newestPoint returns site's newest restore point of any trigger, or nil.
func newestPoint(ctx context.Context, repo *repository.Repository, site string) (*repository.Snapshot, error) {
	all, err := repo.Snapshots(ctx)
	if err != nil {
		return nil, fmt.Errorf("list the restore points of %s: %w", site, err)
	}
	var latest *repository.Snapshot
	for _, sn := range all {
		if sn.Site == site && (latest == nil || !sn.Time.Before(latest.Time)) {
			latest = sn
		}
	}
	return latest, nil
}

// excludes is the archiver.Selector of DirOptions.Excludes.
type excludes []string

func newExcludes(patterns []string) (excludes, error) {
	for _, p := range patterns {
		if _, err := path.Match(p, ""); err != nil {
			return nil, fmt.Errorf("exclude pattern %q: %w", p, err)
		}
	}
	if len(patterns) == 0 {
		return nil, nil
	}
	return excludes(patterns), nil
}

func (e excludes) match(p string) (bool, string) {
	for _, pat := range e {
		if ok, _ := path.Match(pat, p); ok {
			return false, fmt.Sprintf("excluded by pattern (%q)", pat)
		}
		if ok, _ := path.Match(pat, path.Base(p)); ok {
			return false, fmt.Sprintf("excluded by pattern (%q)", pat)
		}
	}
	return true, ""
}

// Entry leaves out entries a pattern matches.
func (e excludes) Entry(p string, _ fsys.FileInfo) (bool, string) { return e.match(p) }

// Dir leaves out folders a pattern matches (never the root).
func (e excludes) Dir(p string, _ []fsys.FileInfo) (bool, string) {
	if p == "" {
		return true, ""
	}
	return e.match(p)
}
