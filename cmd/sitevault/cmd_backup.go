package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"

	"github.com/sitevault/sitevault/internal/archiver"
	"github.com/sitevault/sitevault/internal/backup"
	"github.com/sitevault/sitevault/internal/catalog"
	"github.com/sitevault/sitevault/internal/connection"
	"github.com/sitevault/sitevault/internal/repository"
	"github.com/sitevault/sitevault/internal/restore"
	"github.com/sitevault/sitevault/internal/sitevault"
	"github.com/sitevault/sitevault/internal/wordpress"
)

type backupOptions struct {
	Name     string
	Sites    []string // several sites, names or globs (backup --all, backup 'shop-*' blog)
	All      bool
	Parallel int
	JSON     bool
	NoWait   bool
}

func newBackupCommand(g *globalOptions) *cobra.Command {
	var opts backupOptions
	cmd := &cobra.Command{
		Use:   "backup SITE… | backup --all [--parallel N] [--json] [--no-wait]",
		Short: "Back up sites' files and databases into restore points (incremental)",
		Long: `Back up a registered site: its files (as the WordPress rules select them) and
its database tables (those with the site's prefix and a key) into one restore
point, incremental from the site's previous point. One backup per site runs at
a time: a second one waits for the first (or fails at once with --no-wait).

Several sites — names, globs ('shop-*', quoted for the shell) or --all —
are backed up --parallel at a time (default 2), each printing one summary
line ("blog: saved 1a2b3c4d, …" or "shop: FAILED: …"); a failed site does
not stop the others. A name or glob that matches no site is an error before
any backup starts.

Exit codes: 0 saved; 3 saved, but some files could not be read (listed);
13 the site or its database cannot be reached; 16 the site is busy (another
backup or restore of it runs); see the README for the rest.
With several sites the code is the worst of the sites' codes (any failure
outranks 3).`,
		Args: usageArgs(cobra.ArbitraryArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case opts.All && len(args) > 0:
				return usageError(errors.New("backup takes sites or --all, not both"))
			case !opts.All && len(args) == 0:
				return usageError(errors.New("backup needs a SITE (or several, or --all); `sitevault site list` shows the sites"))
			case opts.Parallel < 1:
				return usageError(errors.New("--parallel must be at least 1"))
			}
			if opts.All || len(args) > 1 || hasGlob(args[0]) {
				opts.Sites = args
				return runBackupMany(cmd.Context(), opts, g, cmd.OutOrStdout())
			}
			opts.Name = args[0]
			return runBackup(cmd.Context(), opts, g, cmd.OutOrStdout())
		},
	}
	cmd.Flags().BoolVar(&opts.All, "all", false, "back up every registered site")
	cmd.Flags().IntVar(&opts.Parallel, "parallel", 2, "with several sites: how many are backed up at once")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the result as JSON (see the README)")
	cmd.Flags().BoolVar(&opts.NoWait, "no-wait", false, "fail at once if another backup or restore of the site is running")
	return cmd
}

// siteJob is what backup, restore and undo work with: the site's catalog
// entry, the open catalog and repository, and the library's dependencies.
type siteJob struct {
	entry sitevault.Site
	cat   *catalog.Catalog
	s     *session
	deps  backup.Deps
	// excludes are the config file's extra exclude patterns.
	excludes []string
}

func (j *siteJob) Close() {
	j.s.Close()
	j.cat.Close()
}

// openSiteJob loads the site from the catalog and opens the repository. It
// does not read the site: a restore must work while wp-config.php is broken.
func openSiteJob(ctx context.Context, g *globalOptions, name string) (*siteJob, error) {
	cat, cfg, err := openCatalog(ctx, g)
	if err != nil {
		return nil, err
	}
	entry, err := cat.Site(ctx, name)
	if err != nil {
		err = siteNotFound(ctx, cat, name, err)
		cat.Close()
		return nil, err
	}
	entry = cfg.ApplySite(entry) // the config file's settings win
	s, err := openRepository(ctx, g)
	if err != nil {
		cat.Close()
		return nil, err
	}
	return &siteJob{entry: entry, cat: cat, s: s, deps: jobDeps(g, cfg.Home, cat, s), excludes: cfg.Excludes(name)}, nil
}

// jobDeps are the library's dependencies for jobs on the open catalog
// and repository.
func jobDeps(g *globalOptions, home string, cat *catalog.Catalog, s *session) backup.Deps {
	return backup.Deps{
		Repo: s.repo, Catalog: cat, Locker: siteLocker(home, cat), Logger: g.logger(), Now: g.now,
		Connect: func(ctx context.Context, e sitevault.Site) (connection.Connection, error) {
			return connectSite(ctx, g, &e)
		},
	}
}

// onWait tells the user why nothing happens yet.
func (g *globalOptions) onWait(b *backup.BusyError) {
	if !g.Quiet {
		fmt.Fprintf(g.errOut(), "Waiting: %s…\n", b.Running())
	}
}

// jobError turns the library's errors into messages and exit codes.
func jobError(err error) error {
	switch {
	case errors.Is(err, restore.ErrUsage):
		return userErrorf(errUsage, "%v (see --help)", err)
	case errors.Is(err, restore.ErrNoPoint), errors.Is(err, restore.ErrNothingToUndo):
		return userErrorf(err, "%v; `sitevault points SITE` lists the restore points", err)
	}
	if ves := wordpress.ValueErrors(err); len(ves) > 0 {
		// wp-config.php left a database setting open: name the flags of
		// site edit that supply them.
		var flags []string
		for _, ve := range ves {
			flags = append(flags, ve.Name+" with "+settingFlags[ve.Name])
		}
		return userErrorf(err, "%v; record the missing settings in the site's registration: `sitevault site edit SITE` with %s", err, strings.Join(flags, ", "))
	}
	return err
}

// backupJSON is the stable JSON of `sitevault backup --json`.
type backupJSON struct {
	Point         string    `json:"point"`
	Site          string    `json:"site"`
	Time          time.Time `json:"time"`
	Trigger       string    `json:"trigger"`
	Parent        string    `json:"parent,omitempty"`
	Partial       bool      `json:"partial"`
	FilesNew      int       `json:"files_new"`
	FilesChanged  int       `json:"files_changed"`
	FilesSame     int       `json:"files_unchanged"`
	Tables        int       `json:"tables"`
	TablesChanged int       `json:"tables_changed"`
	BytesRead     int64     `json:"bytes_read"`
	BytesTotal    int64     `json:"bytes_total"`
	BytesAdded    int64     `json:"bytes_added"`
	Duration      float64   `json:"duration_seconds"`
	Skipped       []string  `json:"skipped"`
	Warnings      []string  `json:"warnings"`
	Errors        []string  `json:"errors"`
	// SkippedTables names every table left out with its rule and reason;
	// WarningDetails holds every warning of Warnings as data (rule …);
	// SkippedPaths names every path the rules left out, with its rule.
	SkippedTables  []backup.SkippedTable `json:"skipped_tables"`
	WarningDetails []backup.Warning      `json:"warning_details"`
	SkippedPaths   []archiver.Skip       `json:"skipped_paths"`
}

func newBackupJSON(res *backup.Result) backupJSON {
	sn := res.Snapshot
	out := backupJSON{
		Point: sn.ID.String(), Site: sn.Site, Time: sn.Time, Trigger: sn.Trigger, Partial: res.Partial,
		FilesNew: res.Files.FilesNew, FilesChanged: res.Files.FilesChanged, FilesSame: res.Files.FilesUnchanged,
		BytesRead: sn.Summary.BytesRead, BytesTotal: sn.Summary.BytesTotal, BytesAdded: sn.Summary.BytesAddedSaved,
		Duration: res.Duration.Seconds(), Skipped: sn.Summary.Skipped, Warnings: res.Warnings, Errors: []string{},
		SkippedTables: emptyIfNil(res.SkippedTables), WarningDetails: emptyIfNil(res.Details),
		SkippedPaths: emptyIfNil(res.Files.Skipped),
	}
	if sn.Parent != nil {
		out.Parent = sn.Parent.String()
	}
	if res.Database != nil {
		out.Tables = len(res.Database.Tables)
		for _, t := range res.Database.Tables {
			if t.Written > 0 {
				out.TablesChanged++
			}
		}
	}
	for _, e := range res.Files.Errors {
		out.Errors = append(out.Errors, e.Error())
	}
	if out.Skipped == nil {
		out.Skipped = []string{}
	}
	if out.Warnings == nil {
		out.Warnings = []string{}
	}
	return out
}

// jsonWritten records that the command printed its JSON result: when it
// then fails (check found problems, a backup is partial), the result says
// so and main prints no second document.
var jsonWritten bool

func writeJSON(w io.Writer, v any) error {
	jsonWritten = true
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// backupLine draws a backup's progress.
func backupLine(p *backup.Progress) func(time.Duration) string {
	return func(el time.Duration) string {
		f := &p.Files
		done, total := f.BytesDone.Load(), f.BytesTotal.Load()
		files := fmt.Sprintf("%d/%d files  %s/%s  %s%s", f.FilesDone.Load(), f.FilesTotal.Load(),
			humanize.IBytes(uint64(done)), humanize.IBytes(uint64(total)), rate(done, el), percentETA(done, p.Total(), el))
		switch p.Phase.Load() {
		case backup.PhaseStarting:
			return formatDuration(el) + "  connecting…"
		case backup.PhaseDatabase:
			return fmt.Sprintf("%s  %s  database: %d tables", formatDuration(el), files, p.Tables.Load())
		case backup.PhaseSaving, backup.PhaseDone:
			return fmt.Sprintf("%s  %s  saving the restore point…", formatDuration(el), files)
		}
		return formatDuration(el) + "  " + files
	}
}

func runBackup(ctx context.Context, opts backupOptions, g *globalOptions, stdout io.Writer) error {
	if c, err := g.remote(); err != nil || c != nil {
		if err != nil {
			return err
		}
		return runBackupRemote(ctx, c, opts, g, stdout)
	}
	j, err := openSiteJob(ctx, g, opts.Name)
	if err != nil {
		return err
	}
	defer j.Close()
	progress := new(backup.Progress)
	bar := startProgress(g.progressTTY() && !opts.JSON, g.errOut(), backupLine(progress))
	res, err := backup.Run(ctx, j.deps, j.entry, backup.Options{
		Trigger: backup.TriggerManual, NoWait: opts.NoWait, OnWait: g.onWait, Progress: progress, Excludes: j.excludes,
	})
	bar.Stop()
	if err != nil {
		return jobError(err)
	}
	switch {
	case opts.JSON || g.JSON:
		if err := writeJSON(stdout, newBackupJSON(res)); err != nil {
			return err
		}
	case !g.Quiet && g.cronQuiet():
		printBackupBrief(stdout, res)
	case !g.Quiet:
		printSiteBackup(stdout, res)
	}
	if res.Partial {
		return userErrorf(errPartial, "backup of %s saved as %s, but %d files could not be read (listed); fix their permissions and back up again",
			j.entry.Name, res.Snapshot.ID.Short(), len(res.Files.Errors))
	}
	return nil
}

// printBackupBrief is a backup's summary when nobody watches (cron: stdout
// is not a terminal, no -v): one line and the point's id, then warnings and
// unreadable files, and the paths and tables the rules left out only when
// they differ from the previous point's.
func printBackupBrief(w io.Writer, res *backup.Result) {
	b := &siteBackup{Site: res.Snapshot.Site, res: res, Backup: ptr(newBackupJSON(res))}
	fmt.Fprintf(w, "%s; point %s\n", b.line(), res.Snapshot.ID)
	if skipsChanged(res) {
		for _, sk := range res.Snapshot.Summary.Skipped {
			fmt.Fprintf(w, "  skipped:   %s\n", sk)
		}
	}
	for _, warn := range res.Warnings {
		fmt.Fprintf(w, "  warning:   %s\n", warn)
	}
	for _, e := range res.Files.Errors {
		fmt.Fprintf(w, "  NOT BACKED UP: %v\n", e)
	}
}

// skipsChanged reports whether the rules left out other paths or tables
// than in the previous restore point (always, for a first backup).
func skipsChanged(res *backup.Result) bool {
	if res.Parent == nil || res.Parent.Summary == nil {
		return len(res.Snapshot.Summary.Skipped) > 0
	}
	a, b := slices.Clone(res.Snapshot.Summary.Skipped), slices.Clone(res.Parent.Summary.Skipped)
	slices.Sort(a)
	slices.Sort(b)
	return !slices.Equal(a, b)
}

func ptr[T any](v T) *T { return &v }

// printSiteBackup prints a backup's summary.
func printSiteBackup(w io.Writer, res *backup.Result) {
	sn := res.Snapshot
	from := "a full backup"
	if res.Parent != nil {
		from = "incremental from " + res.Parent.ID.Short()
	}
	fmt.Fprintf(w, "Restore point %s saved for site %s (%s, %s)\n", sn.ID.Short(), sn.Site, sn.Trigger, from)
	r := res.Files
	fmt.Fprintf(w, "  files:     %d new, %d changed, %d unchanged\n", r.FilesNew, r.FilesChanged, r.FilesUnchanged)
	if d := res.Database; d != nil {
		total, reused, _, written := d.Segments()
		patched, rows := d.Patched()
		fmt.Fprintf(w, "  database:  %d tables, %s changed (%d of %d segments written, %d updated row by row (%d rows), %d reused)\n",
			len(d.Tables), sn.Meta[backup.MetaTablesChanged], written, total, patched, rows, reused)
	} else {
		fmt.Fprintf(w, "  database:  NOT backed up\n")
	}
	fmt.Fprintf(w, "  read:      %s of %s\n", humanize.IBytes(uint64(sn.Summary.BytesRead)), humanize.IBytes(uint64(sn.Summary.BytesTotal)))
	fmt.Fprintf(w, "  added:     %s to the repository\n", humanize.IBytes(uint64(sn.Summary.BytesAddedSaved)))
	fmt.Fprintf(w, "  duration:  %s\n", formatDuration(res.Duration))
	// Paths may be many and are folded; tables never are: a table left
	// out is data missing from the restore point.
	if n := len(r.Skipped); n > 0 {
		fmt.Fprintf(w, "  skipped:   %s (by the backup rules)\n", plural(n, "path"))
		for i, sk := range r.Skipped {
			if i == 20 {
				fmt.Fprintf(w, "    … and %d more (`sitevault site files %s --explain` lists every rule)\n", n-i, sn.Site)
				break
			}
			fmt.Fprintf(w, "    %s\n", sk.String())
		}
	}
	if n := len(res.SkippedTables); n > 0 {
		fmt.Fprintf(w, "  skipped:   %s, NOT in this restore point (`sitevault site tables %s --explain`)\n", plural(n, "table"), sn.Site)
		for _, t := range res.SkippedTables {
			fmt.Fprintf(w, "    table %s: %s\n", quoteName(t.Table), t.Reason)
		}
	}
	for _, warn := range res.Warnings {
		fmt.Fprintf(w, "  warning:   %s\n", warn)
	}
	for _, e := range r.Errors {
		fmt.Fprintf(w, "  NOT BACKED UP: %v\n", e)
	}
	fmt.Fprintf(w, "  point:     %s\n", sn.ID)
}

// shortID prints an id short, or "-".
func shortID(id *repository.ID) string {
	if id == nil {
		return "-"
	}
	return id.Short()
}

// emptyIfNil makes a JSON list print as [] rather than null.
func emptyIfNil[T any](l []T) []T {
	if l == nil {
		return []T{}
	}
	return l
}

// siteLocker is the per-site lock of backups and restores: a file lock in
// the data home against processes of this machine, and, when the catalog
// is shared (PostgreSQL), the catalog's lock against other machines.
func siteLocker(home string, cat *catalog.Catalog) backup.Locker {
	file := backup.FileLocker{Dir: filepath.Join(home, "locks")}
	if cat == nil || cat.Dialect() != "postgres" {
		return file
	}
	return catalog.Both{file, &catalog.Locker{Catalog: cat}}
}
