package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"

	"github.com/sitevault/sitevault/internal/archiver"
	"github.com/sitevault/sitevault/internal/backup"
	"github.com/sitevault/sitevault/internal/fsys"
	"github.com/sitevault/sitevault/internal/repository"
	"github.com/sitevault/sitevault/internal/restorer"
)

// The dir commands run the engine on a plain folder: the demo and the
// benchmarks use them, and they are handy to back up anything that is not a
// WordPress site. A folder's restore points carry a site name like a site's.

type dirBackupOptions struct {
	Dir      string
	Site     string
	Trigger  string
	Excludes []string // glob patterns (path.Match) of paths or names to leave out
	JSON     bool
}

type dirRestoreOptions struct {
	Snapshot string // id prefix or "latest"
	Target   string
	Site     string
	JSON     bool
}

func newDirCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dir",
		Short: "Back up and restore a plain folder (the engine without WordPress)",
		Args:  unknownCommand,
		RunE:  showHelp,
	}

	var b dirBackupOptions
	backupCmd := &cobra.Command{
		Use:   "backup DIR --site NAME",
		Short: "Back up a folder as a restore point of site NAME (incremental from NAME's latest)",
		Args:  usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			b.Dir = args[0]
			return runDirBackup(cmd.Context(), b, g, cmd.OutOrStdout())
		},
	}
	backupCmd.Flags().StringVar(&b.Site, "site", "", "the name the restore point is filed under (required)")
	backupCmd.Flags().StringVar(&b.Trigger, "trigger", "manual", "what started this backup (stored with it)")
	backupCmd.Flags().StringArrayVar(&b.Excludes, "exclude", nil, "leave out entries whose path (relative to DIR) or name matches this glob pattern; repeatable")
	backupCmd.Flags().BoolVar(&b.JSON, "json", false, "print the result as JSON (see the README)")

	var r dirRestoreOptions
	restoreCmd := &cobra.Command{
		Use:   "restore SNAPSHOT|latest|YYYY-MM-DD TARGET",
		Short: "Restore a restore point into a folder (files of the same name are overwritten, others kept)",
		Long: `Restore a restore point into a folder: files of the same name are
overwritten, others kept. SNAPSHOT is an id (or its first characters), latest
(the newest backup point, of --site if given) or a day YYYY-MM-DD (local time:
that day's newest backup point). Pre-restore points (trigger pre-restore) and
imported archives are never named by latest or a day: give their id.`,
		Args: usageArgs(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			r.Snapshot, r.Target = args[0], args[1]
			return runDirRestore(cmd.Context(), r, g, cmd.OutOrStdout())
		},
	}
	restoreCmd.Flags().StringVar(&r.Site, "site", "", "with latest or a day: a backup point of this site; with an id: check that the point is this site's")
	restoreCmd.Flags().BoolVar(&r.JSON, "json", false, "print the result as JSON (see the README)")

	cmd.AddCommand(backupCmd, restoreCmd)
	return cmd
}

func runDirBackup(ctx context.Context, opts dirBackupOptions, g *globalOptions, stdout io.Writer) error {
	if opts.Site == "" {
		return userErrorf(errUsage, "dir backup needs --site NAME: the name its restore points are filed under")
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return fmt.Errorf("back up %s: %w", opts.Dir, err)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		if err == nil {
			err = errors.New("not a folder")
		}
		return userErrorf(errUsage, "back up %s: %v", dir, err)
	}
	for _, p := range opts.Excludes {
		if _, err := path.Match(p, ""); err != nil {
			return userErrorf(errUsage, "--exclude %q: %v", p, err)
		}
	}
	s, err := openRepository(ctx, g)
	if err != nil {
		return err
	}
	defer s.Close()

	var src fsys.FS
	if g.openDir != nil {
		if src, err = g.openDir(dir); err != nil {
			return fmt.Errorf("back up %s: %w", dir, err)
		}
		defer src.Close()
	}
	progress := new(archiver.Progress)
	bar := startProgress(g.progressTTY(), g.errOut(), func(el time.Duration) string {
		done, total := progress.BytesDone.Load(), progress.BytesTotal.Load()
		return fmt.Sprintf("%s  %d/%d files  %s/%s  %s", formatDuration(el),
			progress.FilesDone.Load(), progress.FilesTotal.Load(),
			humanize.IBytes(uint64(done)), humanize.IBytes(uint64(total)), rate(done, el))
	})
	deps := backup.Deps{
		Repo: s.repo, Locker: backup.FileLocker{Dir: filepath.Join(s.cfg.Home, "locks")}, Logger: g.logger(), Now: g.now,
	}
	res, err := backup.RunDir(ctx, deps, backup.DirOptions{
		Site: opts.Site, Dir: dir, FS: src, Trigger: opts.Trigger, Excludes: opts.Excludes,
		OnWait: g.onWait, Progress: progress,
	})
	bar.Stop()
	if errors.Is(err, backup.ErrBusy) || errors.Is(err, context.Canceled) {
		return err
	} else if err != nil {
		return fmt.Errorf("%w (repository %s)", err, s.where)
	}
	if res.RecoveredPacks > 0 && !g.Quiet {
		fmt.Fprintf(g.errOut(), "Reusing %d packs left by an interrupted backup.\n", res.RecoveredPacks)
	}
	sn, rep := res.Snapshot, res.Files
	if opts.JSON {
		out := dirBackupJSON{Point: sn.ID.String(), Site: sn.Site, Time: sn.Time, Partial: res.Partial,
			FilesNew: rep.FilesNew, FilesChanged: rep.FilesChanged, FilesUnchanged: rep.FilesUnchanged, Folders: rep.DirsTotal,
			BytesRead: rep.BytesRead, BytesTotal: rep.BytesTotal, BytesAdded: sn.Summary.BytesAddedSaved,
			Duration: rep.Finished.Sub(rep.Started).Seconds(), SkippedPaths: emptyIfNil(rep.Skipped),
			ChangedWhile: emptyIfNil(rep.Changed), Errors: []string{}}
		if res.Parent != nil {
			out.Parent = res.Parent.ID.String()
		}
		for _, e := range rep.Errors {
			out.Errors = append(out.Errors, e.Error())
		}
		if err := writeJSON(stdout, out); err != nil {
			return err
		}
	} else if !g.Quiet {
		printBackupSummary(stdout, sn.ID, res.Parent, sn, rep)
	}
	if res.Partial {
		return userErrorf(errPartial, "backup of %s saved as %s, but %d files could not be read (listed above); fix their permissions and back up again",
			dir, sn.ID.Short(), len(rep.Errors))
	}
	return nil
}

func printBackupSummary(w io.Writer, id repository.ID, parent *repository.Snapshot, sn *repository.Snapshot, rep *archiver.Report) {
	from := "a full backup"
	if parent != nil {
		from = "incremental from " + parent.ID.Short()
	}
	took := rep.Finished.Sub(rep.Started)
	fmt.Fprintf(w, "Restore point %s saved for site %q (%s)\n", id.Short(), sn.Site, from)
	fmt.Fprintf(w, "  files:   %d new, %d changed, %d unchanged; %d folders\n",
		rep.FilesNew, rep.FilesChanged, rep.FilesUnchanged, rep.DirsTotal)
	fmt.Fprintf(w, "  read:    %s of %s in %s (%s)\n", humanize.IBytes(uint64(rep.BytesRead)),
		humanize.IBytes(uint64(rep.BytesTotal)), formatDuration(took), rate(rep.BytesTotal, took))
	fmt.Fprintf(w, "  added:   %s to the repository\n", humanize.IBytes(uint64(sn.Summary.BytesAddedSaved)))
	if len(rep.Skipped) > 0 {
		fmt.Fprintf(w, "  skipped: %d entries\n", len(rep.Skipped))
		for i, sk := range rep.Skipped {
			if i == 20 {
				fmt.Fprintf(w, "    … and %d more\n", len(rep.Skipped)-i)
				break
			}
			fmt.Fprintf(w, "    %s\n", sk)
		}
	}
	for _, p := range rep.Changed {
		fmt.Fprintf(w, "  changed while read (stored as read): %q\n", p)
	}
	for _, e := range rep.Errors {
		fmt.Fprintf(w, "  NOT BACKED UP: %v\n", e)
	}
}

func runDirRestore(ctx context.Context, opts dirRestoreOptions, g *globalOptions, stdout io.Writer) error {
	target, err := filepath.Abs(opts.Target)
	if err != nil {
		return fmt.Errorf("restore into %s: %w", opts.Target, err)
	}
	s, err := openRepository(ctx, g)
	if err != nil {
		return err
	}
	defer s.Close()

	sn, err := findPoint(ctx, g, s, opts.Site, opts.Snapshot)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(target, 0o755); err != nil {
		return fmt.Errorf("restore into %s: %w", target, err)
	}
	dst, err := fsys.NewLocal(target)
	if err != nil {
		return fmt.Errorf("restore into %s: %w", target, err)
	}
	defer dst.Close()

	progress := new(restorer.Progress)
	var total int64
	if sn.Summary != nil {
		total = sn.Summary.BytesTotal
	}
	bar := startProgress(g.progressTTY(), g.errOut(), func(el time.Duration) string {
		done := progress.BytesDone.Load()
		return fmt.Sprintf("%s  %d files  %s/%s  %s", formatDuration(el), progress.FilesDone.Load(),
			humanize.IBytes(uint64(done)), humanize.IBytes(uint64(total)), rate(done, el))
	})
	start := time.Now()
	absTarget, err := filepath.Abs(target)
	if err != nil {
		return fmt.Errorf("restore into %s: %w", target, err)
	}
	rep, err := restorer.New(s.repo, dst, restorer.Options{Progress: progress, Logger: g.logger(), Root: absTarget}).Restore(ctx, sn.Tree, "")
	bar.Stop()
	took := time.Since(start)
	if err != nil {
		return fmt.Errorf("restore %s into %s: %w", sn.ID.Short(), target, err)
	}
	if opts.JSON {
		out := dirRestoreJSON{Point: sn.ID.String(), Site: sn.Site, PointTime: sn.Time, Target: target,
			FilesWritten: rep.FilesWritten, FoldersCreated: rep.DirsCreated, SymlinksWritten: rep.Symlinks,
			BytesWritten: rep.BytesWritten, FilesUnchanged: rep.FilesUnchanged,
			Refused: []pathReasonJSON{}, Failed: []string{}, Duration: took.Seconds()}
		for _, sk := range rep.Skipped {
			out.Refused = append(out.Refused, pathReasonJSON{Path: sk.Path, Reason: sk.Reason})
		}
		for _, e := range rep.Errors {
			out.Failed = append(out.Failed, e.Error())
		}
		if err := writeJSON(stdout, out); err != nil {
			return err
		}
	} else if !g.Quiet {
		fmt.Fprintf(stdout, "Restored %s (site %q, %s) into %s\n", sn.ID.Short(), sn.Site,
			sn.Time.Local().Format(time.DateTime), target)
		fmt.Fprintf(stdout, "  %d files, %d folders, %d links; %s in %s (%s)\n", rep.FilesWritten, rep.DirsCreated,
			rep.Symlinks, humanize.IBytes(uint64(rep.BytesWritten)), formatDuration(took), rate(rep.BytesWritten, took))
		if rep.FilesUnchanged > 0 {
			fmt.Fprintf(stdout, "  %d files already right (%s), left in place (%s read to compare)\n", rep.FilesUnchanged,
				humanize.IBytes(uint64(rep.BytesUnchanged)), humanize.IBytes(uint64(rep.BytesHashed)))
		}
		for _, sk := range rep.Skipped {
			fmt.Fprintf(stdout, "  refused: %s\n", sk)
		}
		for _, e := range rep.Errors {
			fmt.Fprintf(stdout, "  FAILED: %v\n", e)
		}
	}
	if !rep.OK() {
		return fmt.Errorf("restore into %s finished, but %d entries were refused and %d failed (listed above)",
			target, len(rep.Skipped), len(rep.Errors))
	}
	return nil
}
