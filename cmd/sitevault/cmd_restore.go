package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"

	"github.com/sitevault/sitevault/internal/archive"
	"github.com/sitevault/sitevault/internal/backup"
	"github.com/sitevault/sitevault/internal/repository"
	"github.com/sitevault/sitevault/internal/restore"
	"github.com/sitevault/sitevault/internal/restorer"
)

type restoreOptions struct {
	Name        string
	To          string
	Only        []string
	Paths       []string
	Tables      []string
	Yes         bool
	Delete      bool
	NoWait      bool
	JSON        bool
	FromArchive string
	DryRun      bool
}

func newRestoreCommand(g *globalOptions) *cobra.Command {
	var opts restoreOptions
	cmd := &cobra.Command{
		Use:   "restore SITE --to POINT|latest|YYYY-MM-DD [--only ITEMS] [--path P]… [--table T]… [--yes]",
		Short: "Restore a site (files and database) to a restore point; undo with `sitevault undo`",
		Long: `Restore a site to a restore point: an id (prefix) of any point, latest (the
newest backup point: manual, daily or realtime), or a day (YYYY-MM-DD, local
time: that day's newest backup point). latest and a day never name a
pre-restore point (the state a restore replaced) nor an imported archive, so
the same restore run twice restores the same state; those are reached by id,
and the newest pre-restore point by ` + "`sitevault undo`" + `. Items: themes, plugins,
uploads, roots (files in the WordPress root, wp-config.php included), contents
(the rest of wp-content) and database; default all. --path restores single
paths of the files, --table single tables of the database.

Files of the point overwrite files of the same name; no other file is
deleted: the summary lists the files the point does not hold, left in place.
With --delete the restore is exact: inside the restored items (or paths)
only, it removes those files (what a backup takes, as the backup rules
select it: never WordPress core, caches or excluded folders); the
pre-restore point keeps them, so undo brings them back. The database's backed-up tables are replaced completely (tables the
point does not hold are dropped) unless --table names single ones. Before
anything changes, the current state is saved as a pre-restore point, so
` + "`sitevault undo SITE`" + ` brings it back. The restore needs only the connection and
the recorded database login: it works while the site is down.

Without --yes it shows what will happen (the plan of --dry-run) and asks;
answering anything but yes exits with code 1 and changes nothing; without a
terminal it refuses. --dry-run shows the plan and changes nothing: the files
it would write (new, or replacing a file of the same name), those already
right, the files not in the point (deleted with --delete, else left), the
tables it would replace and drop.`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Name = args[0]
			return runRestore(cmd.Context(), opts, g, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.To, "to", "", "the restore point: an id (prefix), latest (the newest backup point), or a day YYYY-MM-DD (its newest backup point)")
	f.StringSliceVar(&opts.Only, "only", nil, "restore only these items: "+strings.Join(backup.AllItems(), ","))
	f.StringArrayVar(&opts.Paths, "path", nil, "restore only this path of the files (relative to the site root; repeatable)")
	f.StringArrayVar(&opts.Tables, "table", nil, "restore only this table (full name; repeatable)")
	f.BoolVarP(&opts.Yes, "yes", "y", false, "do not ask for confirmation")
	f.BoolVar(&opts.Delete, "delete", false, "exact restore: remove, inside the restored items only, files the point does not hold (the pre-restore point keeps them)")
	f.BoolVar(&opts.NoWait, "no-wait", false, "fail at once if another backup or restore of the site is running")
	f.BoolVar(&opts.JSON, "json", false, "print the result as JSON (see the README)")
	f.StringVar(&opts.FromArchive, "from-archive", "", "restore from a downloaded `ARCHIVE` (.tar.gz or .zip of sitevault download) instead of --to")
	f.BoolVarP(&opts.DryRun, "dry-run", "n", false, "show what the restore would write, replace, delete and drop, and change nothing")
	return cmd
}

// restoreJSON is the stable JSON of `sitevault restore --json` and `sitevault undo --json`.
type restoreJSON struct {
	Site         string   `json:"site"`
	Point        string   `json:"point"`
	PointTime    string   `json:"point_time"`
	PreRestore   string   `json:"pre_restore_point"`
	Items        []string `json:"items"`
	Paths        []string `json:"paths"`
	Tables       []string `json:"tables"`
	FilesWritten int      `json:"files_written"`
	BytesWritten int64    `json:"bytes_written"`
	LinksWritten int      `json:"symlinks_written"`
	// FilesUnchanged counts files already right on disk, left in place.
	FilesUnchanged int      `json:"files_unchanged"`
	BytesUnchanged int64    `json:"bytes_unchanged"`
	FilesRemoved   []string `json:"files_removed"`
	// FilesDeleted (--delete) and FilesLeft (without it) are the files the
	// point does not hold, removed or left in place.
	FilesDeleted  []string `json:"files_deleted"`
	FilesLeft     []string `json:"files_not_in_point"`
	TablesWritten []string `json:"tables_restored"`
	TablesDropped []string `json:"tables_removed"`
	Rows          int64    `json:"rows"`
	NotInPoint    []string `json:"tables_not_in_point"`
	TablesKept    []string `json:"tables_kept"`
	Refused       []string `json:"refused"`
	Failed        []string `json:"failed"`
	Warnings      []string `json:"warnings"`
	Duration      float64  `json:"duration_seconds"`
}

func newRestoreJSON(entry string, res *restore.Result) restoreJSON {
	out := restoreJSON{
		Site: entry, Point: res.Point.ID.String(), PointTime: res.Point.Time.Format(time.RFC3339),
		Items: res.Items, Paths: nonNil(res.Paths), Tables: nonNil(res.Tables), FilesRemoved: nonNil(res.Removed),
		FilesDeleted: nonNil(res.Deleted), FilesLeft: nonNil(res.Left),
		TablesWritten: []string{}, TablesDropped: []string{}, NotInPoint: []string{}, TablesKept: []string{}, Refused: []string{}, Failed: []string{},
		Warnings: nonNil(res.Warnings), Duration: res.Duration.Seconds(),
	}
	if res.PreRestore != nil {
		out.PreRestore = res.PreRestore.Snapshot.ID.String()
	}
	if f := res.Files; f != nil {
		out.FilesWritten, out.BytesWritten, out.LinksWritten = f.FilesWritten, f.BytesWritten, f.Symlinks
		out.FilesUnchanged, out.BytesUnchanged = f.FilesUnchanged, f.BytesUnchanged
		for _, s := range f.Skipped {
			out.Refused = append(out.Refused, s.String())
		}
		for _, e := range f.Errors {
			out.Failed = append(out.Failed, e.Error())
		}
	}
	if d := res.Database; d != nil {
		out.TablesWritten, out.TablesDropped, out.Rows = nonNil(d.Tables), nonNil(d.Removed), d.Rows
		for _, f := range d.Failed {
			out.Failed = append(out.Failed, f.Error())
		}
		out.NotInPoint = nonNil(d.NotInPoint)
		for _, k := range d.Kept {
			out.TablesKept = append(out.TablesKept, k.Name)
		}
	}
	return out
}

func nonNil(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

func runRestore(ctx context.Context, opts restoreOptions, g *globalOptions, stdout io.Writer) error {
	switch {
	case opts.To == "" && opts.FromArchive == "":
		return userErrorf(errUsage, "restore needs --to POINT|latest|YYYY-MM-DD (or --from-archive FILE); `sitevault points %s` lists the points", opts.Name)
	case opts.To != "" && opts.FromArchive != "":
		return userErrorf(errUsage, "give either --to or --from-archive, not both")
	}
	if _, _, err := restore.ResolveItems(opts.Only, nil, opts.Tables, ""); err != nil {
		return jobError(err) // unknown items: before opening anything
	}
	if c, err := g.remote(); err != nil || c != nil {
		if err != nil {
			return err
		}
		if opts.DryRun {
			return userErrorf(errUsage, "--dry-run reads the site from this machine: run it without --server")
		}
		return runRestoreRemote(ctx, c, opts, g, stdout)
	}
	if opts.DryRun && opts.FromArchive != "" {
		return userErrorf(errUsage, "--dry-run works with --to: import the archive first (restore --from-archive asks before it changes anything)")
	}
	if !opts.Yes && !opts.DryRun && !g.prompt().Interactive() {
		return userErrorf(errUsage, "a restore changes the site: pass --yes to confirm it without a terminal")
	}
	j, err := openSiteJob(ctx, g, opts.Name)
	if err != nil {
		return err
	}
	defer j.Close()

	var point *repository.Snapshot
	if opts.FromArchive != "" {
		prefix, err := restore.SiteTablePrefix(ctx, j.deps, j.entry)
		if err != nil {
			return fmt.Errorf("%w; nothing was changed on the site", err)
		}
		point, err = archive.Import(ctx, j.s.repo, opts.FromArchive, j.entry.Name, archive.ImportOptions{Now: g.now, TablePrefix: prefix})
		if err != nil {
			return fmt.Errorf("%w; nothing was changed on the site", err)
		}
		if !g.Quiet && !opts.JSON {
			fmt.Fprintf(g.errOut(), "Imported %s as restore point %s (trigger %s)\n", opts.FromArchive, point.ID.Short(), point.Trigger)
			if from := point.Meta[archive.MetaArchivePrefix]; from != "" {
				fmt.Fprintf(g.errOut(), "Its tables were renamed from prefix %s to the site's %s\n", from, prefix)
			}
			for _, s := range point.Summary.Skipped {
				fmt.Fprintf(g.errOut(), "Not imported: %s\n", s)
			}
		}
	} else if point, err = findPoint(ctx, g, j.s, j.entry.Name, opts.To); err != nil {
		return err
	}
	items, paths, err := restore.ResolveItems(opts.Only, opts.Paths, opts.Tables, point.Meta[backup.MetaContentDir])
	if err != nil {
		return jobError(err)
	}
	ropts := restore.Options{Items: opts.Only, Paths: opts.Paths, Tables: opts.Tables, Delete: opts.Delete}
	if opts.DryRun || !opts.Yes {
		pv, err := restore.DryRun(ctx, j.deps, j.entry, point, ropts)
		if err != nil {
			return jobError(fmt.Errorf("%w; nothing was changed", err))
		}
		if opts.DryRun && (opts.JSON || g.JSON) {
			return writeJSON(stdout, newPreviewJSON(j.entry.Name, pv))
		}
		w := g.errOut()
		if opts.DryRun {
			w = stdout
		}
		showRestorePlan(w, j.entry.Name, point, items, paths, opts.Tables, false, opts.Delete, nil)
		showPreview(w, pv)
		if opts.DryRun {
			fmt.Fprintln(w, "Dry run: nothing was changed.")
			return nil
		}
		if err := confirm(g, "Restore now? (yes/no): "); err != nil {
			return err
		}
	}
	progress := new(restore.Progress)
	bar := startProgress(g.progressTTY() && !opts.JSON, g.errOut(), restoreLine(progress))
	ropts.NoWait, ropts.OnWait, ropts.Progress = opts.NoWait, g.onWait, progress
	res, err := restore.Run(ctx, j.deps, j.entry, point, ropts)
	bar.Stop()
	return finishRestore(g, opts.JSON, stdout, j.entry.Name, "restore", res, err)
}

// confirmDestructive guards a command that removes something: with yes
// (or a dry run) it goes on; on a terminal it asks question; without one
// it refuses with the flag to pass (exit code 2). A "no" exits with 1.
func confirmDestructive(g *globalOptions, yes, dryRun bool, question string) error {
	if yes || dryRun {
		return nil
	}
	if !g.prompt().Interactive() {
		return userErrorf(errUsage, "%s needs confirmation: pass --yes to do it without a terminal", strings.TrimSuffix(question, "?"))
	}
	return confirm(g, question+" (yes/no): ")
}

// confirm asks on the terminal; anything but yes cancels.
func confirm(g *globalOptions, question string) error {
	answer, err := g.prompt().Prompt(question)
	if err != nil {
		return fmt.Errorf("confirm: %w", err)
	}
	if a := strings.ToLower(strings.TrimSpace(answer)); a != "yes" && a != "y" {
		return userErrorf(errCancelled, "cancelled; nothing was changed")
	}
	return nil
}

// showRestorePlan says what a restore (or undo, with undone) will do.
func showRestorePlan(w io.Writer, siteName string, point *repository.Snapshot, items, paths, tables []string, undo, exact bool, undone *repository.Snapshot) {
	when := point.Time.Local().Format("2006-01-02 15:04:05")
	if undo {
		what := "the last restore"
		if undone != nil {
			what = "the restore of " + undone.ID.Short()
		}
		fmt.Fprintf(w, "Undo %s into site %s: bring back the state saved just before it (point %s, %s).\n",
			what, siteName, point.ID.Short(), when)
	} else {
		fmt.Fprintf(w, "Restore site %s to point %s (%s, %s).\n", siteName, point.ID.Short(), when, point.Trigger)
	}
	var fileItems []string
	for _, it := range items {
		if it != backup.ItemDatabase {
			fileItems = append(fileItems, it)
		}
	}
	others := "no other file is deleted"
	if exact {
		others = "files the point does not hold are deleted (--delete)"
	}
	switch {
	case len(paths) > 0:
		fmt.Fprintf(w, "  files:    only %s; %s\n", strings.Join(paths, ", "), others)
	case len(fileItems) > 0:
		fmt.Fprintf(w, "  files:    %s — files of the point overwrite the site's; %s\n", strings.Join(fileItems, ", "), others)
	default:
		fmt.Fprintf(w, "  files:    none\n")
	}
	if undo && len(fileItems) > 0 {
		fmt.Fprintf(w, "            files that restore created (and nobody changed since) are removed\n")
	}
	switch {
	case !slices.Contains(items, backup.ItemDatabase):
		fmt.Fprintf(w, "  database: unchanged\n")
	case len(tables) > 0:
		fmt.Fprintf(w, "  database: tables %s are replaced by the point's; rows changed since %s in them are lost\n", strings.Join(tables, ", "), when)
	default:
		fmt.Fprintf(w, "  database: REPLACED by the point's — posts, comments, orders and settings changed since %s are lost,\n", when)
		fmt.Fprintf(w, "            and backed-up tables created since are dropped\n")
	}
	fmt.Fprintf(w, "The current state is saved first (a pre-restore point): `sitevault undo %s` takes this back.\n", siteName)
}

func restoreLine(p *restore.Progress) func(time.Duration) string {
	pre := backupLine(&p.PreRestore)
	filesStart := time.Duration(-1) // when the files phase began
	return func(el time.Duration) string {
		switch p.Phase.Load() {
		case restore.PhasePreRestore:
			return "saving the current state: " + pre(el)
		case restore.PhaseDatabase:
			return formatDuration(el) + "  restoring the database…"
		}
		if filesStart < 0 {
			filesStart = el
		}
		written := p.Files.BytesDone.Load()
		done, total := p.FilesShare()
		return fmt.Sprintf("%s  restoring files: %d files  %s written  %s%s", formatDuration(el), p.Files.FilesDone.Load(),
			humanize.IBytes(uint64(written)), rate(written, el-filesStart), percentETA(done, total, el-filesStart))
	}
}

// finishRestore prints the result of a restore or undo and chooses the error.
func finishRestore(g *globalOptions, asJSON bool, stdout io.Writer, siteName, job string, res *restore.Result, err error) error {
	if err != nil {
		if res != nil && res.PreRestore != nil && !g.Quiet {
			fmt.Fprintf(g.errOut(), "The state before the %s is saved as point %s.\n", job, res.PreRestore.Snapshot.ID.Short())
		}
		return jobError(err)
	}
	switch {
	case asJSON || g.JSON:
		if err := writeJSON(stdout, newRestoreJSON(siteName, res)); err != nil {
			return err
		}
	case !g.Quiet:
		printRestore(stdout, siteName, job, res)
	}
	if !res.OK() {
		var refused, failed, tables int
		if f := res.Files; f != nil {
			refused, failed = len(f.Skipped), len(f.Errors)
		}
		if d := res.Database; d != nil {
			tables = len(d.Failed)
		}
		err := fmt.Errorf("%s of site %s is incomplete: %d files were refused, %d files and %d tables failed (listed above); `sitevault undo %s` takes it back",
			job, siteName, refused, failed, tables, siteName)
		if tables > 0 || damagedFiles(res.Files) {
			// exit code 15: `sitevault check --read-data` tells what else is damaged
			err = fmt.Errorf("%w; run `sitevault check --read-data`: %w", err, repository.ErrDamaged)
		}
		return err
	}
	return nil
}

// damagedFiles reports whether a file of the restore failed because the
// repository's data is damaged or missing.
func damagedFiles(r *restorer.Report) bool {
	if r == nil {
		return false
	}
	for _, e := range r.Errors {
		if repository.IsDamage(e) {
			return true
		}
	}
	return false
}

func printRestore(w io.Writer, siteName, job string, res *restore.Result) {
	verb := "Restored"
	if job == "undo" {
		verb = "Undone: restored"
	}
	if !res.OK() {
		// Never the success headline when something was not restored.
		verb = "INCOMPLETE " + job + ": restored part of"
	}
	fmt.Fprintf(w, "%s site %s to point %s (%s)\n", verb, siteName, res.Point.ID.Short(), res.Point.Time.Local().Format("2006-01-02 15:04:05"))
	fmt.Fprintf(w, "  items:       %s\n", strings.Join(res.Items, ", "))
	if len(res.Paths) > 0 {
		fmt.Fprintf(w, "  paths:       %s\n", strings.Join(res.Paths, ", "))
	}
	if f := res.Files; f != nil {
		fmt.Fprintf(w, "  files:       %d written (%s), %d already right (%s), %d symbolic links, %d folders created\n", f.FilesWritten, humanize.IBytes(uint64(f.BytesWritten)),
			f.FilesUnchanged, humanize.IBytes(uint64(f.BytesUnchanged)), f.Symlinks, f.DirsCreated)
	}
	if len(res.Removed) > 0 {
		fmt.Fprintf(w, "  removed:     %d files the undone restore had created\n", len(res.Removed))
	}
	if len(res.Deleted) > 0 {
		fmt.Fprintf(w, "  deleted:     %s not in the point (--delete; undo brings them back)\n", plural(len(res.Deleted), "file"))
		listSome(w, res.Deleted)
	}
	if len(res.Left) > 0 {
		fmt.Fprintf(w, "  left:        %s not in the point left in place (--delete removes them)\n", plural(len(res.Left), "file"))
		listSome(w, res.Left)
	}
	if d := res.Database; d != nil {
		fmt.Fprintf(w, "  database:    %s restored (%s)", plural(len(d.Tables), "table"), plural(int(d.Rows), "row"))
		if len(d.Tables) == 1 {
			fmt.Fprintf(w, ": %s", d.Tables[0])
		}
		if len(d.Removed) > 0 {
			fmt.Fprintf(w, "; dropped %s (not in the point)", strings.Join(d.Removed, ", "))
		}
		fmt.Fprintln(w)
		for _, k := range d.Kept {
			fmt.Fprintf(w, "  kept:        table %s: %s\n", k.Name, k.Reason)
		}
		// What the backup left out never comes back: say so, so that a
		// restore into an empty database does not lose a table silently.
		if sum := res.Point.Summary; sum != nil {
			for _, sk := range sum.Skipped {
				if strings.HasPrefix(sk, "table ") {
					fmt.Fprintf(w, "  never held:  %s (left out by the backup)\n", sk)
				}
			}
		}
	}
	if res.PreRestore != nil {
		fmt.Fprintf(w, "  pre-restore: %s (`sitevault undo %s` takes this %s back)\n", res.PreRestore.Snapshot.ID.Short(), siteName, job)
	}
	fmt.Fprintf(w, "  duration:    %s\n", formatDuration(res.Duration))
	for _, warn := range res.Warnings {
		fmt.Fprintf(w, "  warning:     %s\n", warn)
	}
	if f := res.Files; f != nil {
		for _, sk := range f.Skipped {
			fmt.Fprintf(w, "  refused:     %s\n", sk)
		}
		for _, e := range f.Errors {
			fmt.Fprintf(w, "  FAILED:      %v\n", e)
		}
	}
	if d := res.Database; d != nil {
		for _, f := range d.Failed {
			fmt.Fprintf(w, "  FAILED:      %v (the live table was left as it was)\n", f)
		}
	}
}

// listSome prints up to ten paths, one a line, and how many more there are.
func listSome(w io.Writer, paths []string) {
	for i, p := range paths {
		if i == 10 {
			fmt.Fprintf(w, "               … and %d more (--json lists them all)\n", len(paths)-10)
			return
		}
		fmt.Fprintf(w, "               %s\n", p)
	}
}

// showPreview prints what restore.DryRun found, with counts.
func showPreview(w io.Writer, pv *restore.Preview) {
	if f := pv.Files; f != nil {
		fmt.Fprintf(w, "  would write %s (%s): %d new, %d replacing a file of the same name; %s already right",
			plural(f.FilesWritten, "file"), humanize.IBytes(uint64(f.BytesWritten)), f.FilesWritten-f.FilesReplaced, f.FilesReplaced,
			plural(f.FilesUnchanged, "file"))
		if f.AttrsFixed > 0 {
			fmt.Fprintf(w, " (%d with their mode or time set)", f.AttrsFixed)
		}
		fmt.Fprintln(w)
		if f.Symlinks > 0 || f.DirsCreated > 0 {
			fmt.Fprintf(w, "  would create %s and write %s\n", plural(f.DirsCreated, "folder"), plural(f.Symlinks, "symbolic link"))
		}
		var paths []string
		for _, p := range f.Planned {
			what := "new      "
			if p.Replace {
				what = "replace  "
			}
			paths = append(paths, what+p.Path)
		}
		listSome(w, paths)
		for _, sk := range f.Skipped {
			fmt.Fprintf(w, "  refused:     %s\n", sk)
		}
		for _, e := range f.Errors {
			fmt.Fprintf(w, "  FAILED:      %v\n", e)
		}
	}
	switch {
	case len(pv.Extra) == 0:
	case pv.Delete:
		fmt.Fprintf(w, "  would delete %s not in the point (--delete; undo brings them back):\n", plural(len(pv.Extra), "file"))
		listSome(w, pv.Extra)
	default:
		fmt.Fprintf(w, "  would leave %s not in the point in place (--delete removes them):\n", plural(len(pv.Extra), "file"))
		listSome(w, pv.Extra)
	}
	if d := pv.Database; d != nil {
		fmt.Fprintf(w, "  would replace %s (%s rows from the point)", plural(len(d.Tables), "table"), humanize.Comma(d.Rows))
		if len(d.Tables) == 1 {
			fmt.Fprintf(w, ": %s", d.Tables[0])
		}
		fmt.Fprintln(w)
		if len(d.Removed) > 0 {
			fmt.Fprintf(w, "  would drop %d of the site's tables and views, not in the point: %s\n", len(d.Removed), strings.Join(d.Removed, ", "))
		}
		for _, k := range d.Kept {
			fmt.Fprintf(w, "  would keep table %s: %s\n", k.Name, k.Reason)
		}
	}
	for _, warn := range pv.Warnings {
		fmt.Fprintf(w, "  warning:     %s\n", warn)
	}
}

// previewJSON is the stable JSON of `sitevault restore --dry-run --json`.
type previewJSON struct {
	Site            string        `json:"site"`
	Point           string        `json:"point"`
	PointTime       string        `json:"point_time"`
	Items           []string      `json:"items"`
	Paths           []string      `json:"paths"`
	Tables          []string      `json:"tables"`
	Delete          bool          `json:"delete"`
	FilesToWrite    []plannedJSON `json:"files_to_write"`
	FilesNew        int           `json:"files_new"`
	FilesReplaced   int           `json:"files_replaced"`
	BytesToWrite    int64         `json:"bytes_to_write"`
	FilesUnchanged  int           `json:"files_unchanged"`
	FoldersCreated  int           `json:"folders_created"`
	FilesNotInPoint []string      `json:"files_not_in_point"`
	TablesReplaced  []string      `json:"tables_replaced"`
	Rows            int64         `json:"rows"`
	TablesDropped   []string      `json:"tables_dropped"`
	TablesKept      []string      `json:"tables_kept"`
	Refused         []string      `json:"refused"`
	Warnings        []string      `json:"warnings"`
}

type plannedJSON struct {
	Path    string `json:"path"`
	Size    int64  `json:"size"`
	Replace bool   `json:"replace"`
	Link    bool   `json:"symlink"`
}

func newPreviewJSON(siteName string, pv *restore.Preview) previewJSON {
	out := previewJSON{
		Site: siteName, Point: pv.Point.ID.String(), PointTime: pv.Point.Time.Format(time.RFC3339),
		Items: nonNil(pv.Items), Paths: nonNil(pv.Paths), Tables: nonNil(pv.Tables), Delete: pv.Delete,
		FilesToWrite: []plannedJSON{}, FilesNotInPoint: nonNil(pv.Extra), TablesReplaced: []string{}, TablesDropped: []string{},
		TablesKept: []string{}, Refused: []string{}, Warnings: nonNil(pv.Warnings),
	}
	if f := pv.Files; f != nil {
		for _, p := range f.Planned {
			out.FilesToWrite = append(out.FilesToWrite, plannedJSON{Path: p.Path, Size: p.Size, Replace: p.Replace, Link: p.Link})
		}
		out.FilesNew, out.FilesReplaced, out.BytesToWrite = f.FilesWritten-f.FilesReplaced, f.FilesReplaced, f.BytesWritten
		out.FilesUnchanged, out.FoldersCreated = f.FilesUnchanged, f.DirsCreated
		for _, sk := range f.Skipped {
			out.Refused = append(out.Refused, sk.String())
		}
	}
	if d := pv.Database; d != nil {
		out.TablesReplaced, out.Rows, out.TablesDropped = nonNil(d.Tables), d.Rows, nonNil(d.Removed)
		for _, k := range d.Kept {
			out.TablesKept = append(out.TablesKept, k.Name)
		}
	}
	return out
}
