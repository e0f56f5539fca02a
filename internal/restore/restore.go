// Package restore brings a site back to a restore point: its files (package
// restorer, with a filter built from items and paths) and its database
// (mysql.Restore, which swaps the point's tables in at once).
//
// The product's restore rules (ARCHITECTURE.md) are kept here:
//
//   - before anything changes, a pre-restore point of the current state is
//     saved (backup.Run, trigger pre-restore, Meta restore_of and items),
//     so every restore can be undone (Undo);
//   - files of the point overwrite files of the same name; nothing else is
//     deleted (except by Undo, see there); each file goes through a
//     temporary name, nothing is written outside the root or through a link;
//   - the database's backed-up tables are replaced completely (tables the
//     point does not hold are dropped) unless single tables are named;
//   - it needs only the connection and the recorded database login, never
//     the site's PHP, so it works while the site is down;
//   - no helper file stays behind (the restorer removes its temporaries,
//     mysql drops its temporary tables).
//
// Nothing is recorded in the catalog: the repository alone says what a
// restore did (the pre-restore point's Meta), so Undo works from any
// machine that opens the repository.
package restore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sitevault/sitevault/internal/archive"
	"github.com/sitevault/sitevault/internal/sitevault"

	"github.com/sitevault/sitevault/internal/backup"
	"github.com/sitevault/sitevault/internal/fsys"
	"github.com/sitevault/sitevault/internal/mysql"
	"github.com/sitevault/sitevault/internal/point"
	"github.com/sitevault/sitevault/internal/repository"
	"github.com/sitevault/sitevault/internal/restorer"
	"github.com/sitevault/sitevault/internal/site"
	"github.com/sitevault/sitevault/internal/wordpress"
)

// Errors callers branch on.
var (
	// ErrUsage: the items, paths, tables or point reference are wrong; the
	// wrapping error says which and why.
	ErrUsage = errors.New("invalid restore request")
	// ErrNoPoint: no restore point matches the reference (point.Find's
	// error, the same value).
	ErrNoPoint = point.ErrNoPoint
	// ErrNothingToUndo: the site has no pre-restore point.
	ErrNothingToUndo = errors.New("nothing to undo: the site has no pre-restore point")
	// ErrPreRestore: the pre-restore point could not be saved, so the
	// restore did not start.
	ErrPreRestore = errors.New("the pre-restore point could not be saved; nothing was changed")
)

// Phases of a restore, as Progress.Phase reports them.
const (
	PhasePreRestore int32 = iota
	PhaseDatabase
	PhaseFiles
	PhaseDone
)

// Progress holds counters a caller may poll while a restore runs.
type Progress struct {
	PreRestore backup.Progress
	Files      restorer.Progress
	Phase      atomic.Int32
	// FilesTotal is the size of the files the restore covers when it is
	// known before they are walked (a restore of every file item: the
	// point's size); 0 otherwise.
	FilesTotal atomic.Int64
}

// FilesShare returns how many bytes of the files are done (written or
// found already right) and of how many (0: not known).
func (p *Progress) FilesShare() (done, total int64) {
	return p.Files.BytesDone.Load() + p.Files.BytesRight.Load(), p.FilesTotal.Load()
}

// Options tune Run.
type Options struct {
	// Items to restore (see backup.AllItems); empty means what Paths and
	// Tables name, or everything when they are empty too (ResolveItems).
	Items []string
	// Paths restores only these paths (relative to the site root) of the
	// files; Tables only these tables (full names) of the database.
	Paths  []string
	Tables []string
	// NoWait fails at once when another job of the site runs; otherwise
	// the restore waits up to Wait (0: backup.DefaultWait).
	NoWait bool
	Wait   time.Duration
	OnWait func(*backup.BusyError)
	// Delete makes the restore exact: files and links inside the restored
	// items (or paths) that the point does not hold are removed, as are
	// folders they leave empty. Only what a backup takes can be removed
	// (the pre-restore point's files, as the backup rules select them:
	// never WordPress core, caches or excluded folders), and only when
	// unchanged since that point was taken, which keeps them: undo brings
	// them back. Without Delete they are left in place and listed
	// (Result.Left).
	Delete bool
	// Progress, if not nil, is updated while the restore runs.
	Progress *Progress
}

// Result says what a restore did.
type Result struct {
	Point      *repository.Snapshot // the point restored
	PreRestore *backup.Result       // the point saved before anything changed
	Items      []string
	Paths      []string
	Tables     []string
	Files      *restorer.Report // nil when no file was to be restored
	Removed    []string         // Undo: files the undone restore had created, removed
	// Deleted (Options.Delete) are the files, links and emptied folders
	// (ending in "/") the restore removed because the point does not hold
	// them; Left are those it found and left in place without Delete.
	Deleted, Left []string
	Database      *mysql.RestoreReport // nil when the database was not restored
	Warnings      []string
	Duration      time.Duration
}

// OK reports whether everything selected was restored.
func (r *Result) OK() bool {
	return (r.Files == nil || r.Files.OK()) && (r.Database == nil || len(r.Database.Failed) == 0)
}

// ResolveItems checks and completes a restore's selection. With no items,
// the items are those of the paths (by the WordPress layout with
// contentDir) plus database when tables are named, or everything when
// nothing is named. With items, every path must lie in a file item and
// tables need the database item. Returned paths are cleaned.
func ResolveItems(items, paths, tables []string, contentDir string) ([]string, []string, error) {
	all := backup.AllItems()
	for _, it := range items {
		if !slices.Contains(all, it) {
			return nil, nil, fmt.Errorf("%w: unknown item %q: choose from %s", ErrUsage, it, strings.Join(all, ", "))
		}
	}
	rules := wordpress.NewRules(wordpress.RulesOptions{ContentDir: contentDir})
	var clean []string
	var implied []string
	for _, p := range paths {
		c := strings.Trim(path.Clean("/"+p), "/")
		if slices.Contains(strings.Split(p, "/"), "..") || strings.ContainsRune(p, 0) {
			return nil, nil, fmt.Errorf("%w: path %q: give a path inside the site root, relative to it, without \"..\"", ErrUsage, p)
		}
		if c == "" {
			return nil, nil, fmt.Errorf("%w: path %q names the whole site; choose items instead", ErrUsage, p)
		}
		it := rules.Item(c)
		if len(items) > 0 && !slices.Contains(items, it) {
			return nil, nil, fmt.Errorf("%w: path %q belongs to %s, which the chosen items leave out", ErrUsage, p, it)
		}
		if !slices.Contains(implied, it) {
			implied = append(implied, it)
		}
		clean = append(clean, c)
	}
	if len(tables) > 0 {
		if len(items) > 0 && !slices.Contains(items, backup.ItemDatabase) {
			return nil, nil, fmt.Errorf("%w: single tables need the database item, which the chosen items leave out", ErrUsage)
		}
		implied = append(implied, backup.ItemDatabase)
	}
	switch {
	case len(items) > 0:
	case len(implied) > 0:
		items = implied
	default:
		items = all
	}
	// Keep the users' order.
	var out []string
	for _, it := range all {
		if slices.Contains(items, it) {
			out = append(out, it)
		}
	}
	return out, clean, nil
}

// Run restores point into site (see the package documentation for the
// rules it keeps). The error is for what stops the restore; entries the
// restorer refused or failed to write are in Result.Files.
func Run(ctx context.Context, deps backup.Deps, entry sitevault.Site, point *repository.Snapshot, opts Options) (*Result, error) {
	return run(ctx, deps, entry, point, opts, nil, "restore")
}

// run is Run and Undo; undone is the point Undo takes back (the files it
// created are removed), nil for a plain restore.
func run(ctx context.Context, deps backup.Deps, entry sitevault.Site, point *repository.Snapshot, opts Options, undone *repository.Snapshot, job string) (*Result, error) {
	start := time.Now()
	if deps.Now != nil {
		start = deps.Now()
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("site", entry.Name, "point", point.ID.Short())
	if point.Site != entry.Name {
		return nil, fmt.Errorf("%w: restore point %s belongs to site %q, not %s", ErrUsage, point.ID.Short(), point.Site, entry.Name)
	}
	p := opts.Progress
	if p == nil {
		p = new(Progress)
	}
	contentDir := point.Meta[backup.MetaContentDir]
	items, paths, err := ResolveItems(opts.Items, opts.Paths, opts.Tables, contentDir)
	if err != nil {
		return nil, err
	}
	res := &Result{Point: point, Items: items, Paths: paths, Tables: opts.Tables}
	repo := deps.Repo
	dbItem := slices.Contains(items, backup.ItemDatabase)
	fileItems := slices.DeleteFunc(slices.Clone(items), func(s string) bool { return s == backup.ItemDatabase })

	// Check the point before anything else.
	var filesTree, dbTree repository.ID
	if len(fileItems) > 0 {
		if filesTree, err = site.FilesTree(ctx, repo, point); err != nil {
			return nil, err
		}
	}
	if dbItem {
		dbTree, err = backup.DatabaseTree(ctx, repo, point)
		if errors.Is(err, backup.ErrNoDatabase) && len(opts.Items) == 0 && len(opts.Tables) == 0 && undone == nil {
			// "Everything" of a point without a database: the files.
			res.Warnings = append(res.Warnings, fmt.Sprintf("restore point %s holds no database (%s); only the files are restored", point.ID.Short(), point.Meta[backup.MetaDatabase]))
			dbItem = false
			items = fileItems
			res.Items = items
		} else if err != nil {
			return nil, err
		}
	}
	if dbItem && len(opts.Tables) > 0 {
		m, err := mysql.LoadManifest(ctx, repo, dbTree)
		if err != nil {
			return nil, fmt.Errorf("restore point %s: %w", point.ID.Short(), err)
		}
		for _, t := range opts.Tables {
			if m.Table(t) == nil {
				return nil, fmt.Errorf("%w: table %s is not in restore point %s", ErrUsage, t, point.ID.Short())
			}
		}
	}
	var undoneFiles *repository.ID
	if undone != nil && len(fileItems) > 0 {
		if id, err := site.FilesTree(ctx, repo, undone); err == nil {
			undoneFiles = &id
		} else {
			res.Warnings = append(res.Warnings, fmt.Sprintf("the undone restore point %s cannot be read (%v): files it created are left in place", undone.ID.Short(), err))
		}
	}

	unlock, err := deps.Lock(ctx, entry.Name, job, opts.NoWait, opts.Wait, opts.OnWait)
	if err != nil {
		return nil, err
	}
	defer unlock()

	conn, err := deps.Connection(ctx, entry)
	if err != nil {
		return nil, fmt.Errorf("%s %s: connect: %w", job, entry.Name, err)
	}
	defer conn.Close()

	// The pre-restore point: every restore can be undone.
	p.Phase.Store(PhasePreRestore)
	meta := map[string]string{backup.MetaRestoreOf: point.ID.String(), backup.MetaItems: strings.Join(items, ",")}
	if len(paths) > 0 {
		meta[backup.MetaPaths] = jsonList(paths)
	}
	if len(opts.Tables) > 0 {
		meta[backup.MetaTableNames] = jsonList(opts.Tables)
	}
	pre, err := backup.Run(ctx, deps, entry, backup.Options{
		Trigger: backup.TriggerPreRestore, Meta: meta, Locked: true,
		AllowNoDatabase: !dbItem, Conn: conn, Progress: &p.PreRestore,
	})
	if err != nil {
		if dbItem && (errors.Is(err, site.ErrDBUnreachable) || errors.Is(err, site.ErrDBLogin) || errors.Is(err, site.ErrDBName)) {
			return nil, fmt.Errorf("%w: %w (the database is among the items to restore; to restore only files, choose the items %s)",
				ErrPreRestore, err, strings.Join(wordpress.Items(), ","))
		}
		return nil, fmt.Errorf("%w: %w", ErrPreRestore, err)
	}
	res.PreRestore = pre
	if pre.DatabaseErr != nil {
		res.Warnings = append(res.Warnings, fmt.Sprintf("the pre-restore point %s holds the files only: %v", pre.Snapshot.ID.Short(), pre.DatabaseErr))
	}
	if pre.Partial {
		res.Warnings = append(res.Warnings, fmt.Sprintf("the pre-restore point %s is partial: %d files could not be read", pre.Snapshot.ID.Short(), len(pre.Files.Errors)))
	}

	// The database first: its swap is atomic, so a failure here leaves
	// the whole site as it was.
	if dbItem {
		p.Phase.Store(PhaseDatabase)
		prefix := point.Meta[backup.MetaTablePrefix]
		if point.Trigger == archive.TriggerArchive && prefix != pre.DB.Prefix {
			// An imported download was confined to the prefix the site had
			// then; restoring it under another would reach other tables.
			return res, fmt.Errorf("%w: restore point %s was imported for table prefix %q, but site %s now uses %q (nothing was changed; import the download again)",
				ErrUsage, point.ID.Short(), prefix, entry.Name, pre.DB.Prefix)
		}
		if prefix == "" {
			prefix = pre.DB.Prefix
		} else if prefix != pre.DB.Prefix {
			res.Warnings = append(res.Warnings, fmt.Sprintf("the restore point's table prefix %q differs from the site's current %q: the point's tables are restored under their own names", prefix, pre.DB.Prefix))
		}
		rep := &mysql.RestoreReport{}
		// With no table on either side there is nothing to do (and
		// mysql.Restore would issue an empty RENAME TABLE).
		if len(opts.Tables) > 0 || len(pre.Database.Tables) > 0 || len(pre.Database.Views) > 0 || !emptyDatabase(ctx, repo, dbTree) {
			rep, err = mysql.Restore(ctx, pre.DB.Config, repo, dbTree, mysql.RestoreOptions{Prefix: prefix, EmptyPrefix: prefix == "", Tables: opts.Tables, Logger: log})
		}
		if err != nil {
			return res, fmt.Errorf("%s the database of %s from %s (the database is unchanged; the pre-restore point is %s): %w",
				job, entry.Name, point.ID.Short(), pre.Snapshot.ID.Short(), err)
		}
		res.Database = rep
		for _, w := range rep.Warnings {
			res.Warnings = append(res.Warnings, "database: "+w)
		}
	}

	if len(fileItems) > 0 {
		p.Phase.Store(PhaseFiles)
		root, err := conn.FS(ctx)
		if err != nil {
			return res, fmt.Errorf("%s %s: open the site folder: %w", job, entry.Name, err)
		}
		defer root.Close()
		filter, err := fileFilter(fileItems, paths, contentDir)
		if err != nil {
			return res, err
		}
		if origin := foreignOrigin(point, entry.Name); origin != "" && len(paths) == 0 {
			// A download of another site carries that site's database
			// settings; restoring them would point this site at the other
			// site's database. Keep this site's own wp-config.php unless the
			// user names it with --path.
			filter = keepOwnConfig(filter)
			res.Warnings = append(res.Warnings, fmt.Sprintf("kept %s's own %s: the restore point comes from site %q (name it with --path %s to restore it too)", entry.Name, wpConfig, origin, wpConfig))
		}
		if undoneFiles != nil {
			removed, err := removeCreated(ctx, repo, root, *undoneFiles, &filesTree, filter, "", false)
			res.Removed = removed
			if err != nil {
				return res, fmt.Errorf("%s %s: remove the files the undone restore created: %w", job, entry.Name, err)
			}
		}
		if filter == nil && point.Summary != nil {
			p.FilesTotal.Store(point.Summary.BytesTotal)
		}
		ropts := restorer.Options{Progress: &p.Files, Logger: log, Root: entry.Path}
		rep, err := site.RestoreFiles(ctx, repo, root, filesTree, filter, ropts)
		res.Files = rep
		if err == nil && undone == nil {
			// What the site holds beyond the point: the pre-restore point's
			// files (as the backup rules select them) that the point lacks.
			if preFiles, perr := site.FilesTree(ctx, repo, pre.Snapshot); perr != nil {
				res.Warnings = append(res.Warnings, fmt.Sprintf("files not in the point could not be listed: %v", perr))
			} else {
				extra, derr := removeCreated(ctx, repo, root, preFiles, &filesTree, filter, "", !opts.Delete)
				if opts.Delete {
					res.Deleted = extra
				} else {
					res.Left = extra
				}
				if derr != nil {
					return res, fmt.Errorf("%s %s: remove the files the point does not hold (the pre-restore point %s keeps them): %w", job, entry.Name, pre.Snapshot.ID.Short(), derr)
				}
			}
		}
		if err == nil && len(paths) > 0 && rep.FilesWritten == 0 && rep.FilesUnchanged == 0 && rep.Symlinks == 0 && rep.DirsCreated == 0 {
			res.Warnings = append(res.Warnings, fmt.Sprintf("restore point %s holds nothing under %s", point.ID.Short(), strings.Join(paths, ", ")))
		}
		if err != nil {
			return res, fmt.Errorf("%s the files of %s from %s (the pre-restore point is %s): %w", job, entry.Name, point.ID.Short(), pre.Snapshot.ID.Short(), err)
		}
	}
	p.Phase.Store(PhaseDone)
	end := time.Now()
	if deps.Now != nil {
		end = deps.Now()
	}
	res.Duration = end.Sub(start)
	return res, nil
}

// SiteTablePrefix returns the table prefix of site entry, as its
// wp-config.php says (or the catalog's override): the prefix a download
// imported for it is confined to (archive.ImportOptions.TablePrefix).
func SiteTablePrefix(ctx context.Context, deps backup.Deps, entry sitevault.Site) (string, error) {
	conn, err := deps.Connection(ctx, entry)
	if err != nil {
		return "", fmt.Errorf("read the table prefix of %s: connect: %w", entry.Name, err)
	}
	defer conn.Close()
	in, err := site.Inspect(ctx, conn, entry)
	switch {
	case err == nil && in.Database.TablePrefix != "":
		return in.Database.TablePrefix, nil
	case entry.DB.TablePrefix != "":
		return entry.DB.TablePrefix, nil
	case err != nil:
		return "", fmt.Errorf("read the table prefix of %s: %w (set the site's table prefix in its database settings)", entry.Name, err)
	}
	return "", fmt.Errorf("read the table prefix of %s: wp-config.php sets no $table_prefix (set the site's table prefix in its database settings)", entry.Name)
}

// emptyDatabase reports whether a database tree holds no table and no view.
func emptyDatabase(ctx context.Context, st mysql.Store, id repository.ID) bool {
	m, err := mysql.LoadManifest(ctx, st, id)
	return err == nil && len(m.Tables) == 0 && len(m.Views) == 0
}

// wpConfig is the file that holds a site's database settings.
const wpConfig = "wp-config.php"

// foreignOrigin returns the site a point was imported from (a download
// restored with --from-archive) when that is not siteName, else "".
func foreignOrigin(point *repository.Snapshot, siteName string) string {
	if origin := point.Meta[archive.MetaArchiveSite]; origin != "" && origin != siteName {
		return origin
	}
	return ""
}

// keepOwnConfig wraps filter so that the root wp-config.php is not written.
func keepOwnConfig(filter restorer.Filter) restorer.Filter {
	return func(path string, n *repository.Node) bool {
		if path == wpConfig {
			return false
		}
		return filter == nil || filter(path, n)
	}
}

// fileFilter selects the files a restore writes: the paths when any are
// named, else the file items (nil: everything).
func fileFilter(fileItems, paths []string, contentDir string) (restorer.Filter, error) {
	if len(paths) > 0 {
		return restorer.Paths(paths...), nil
	}
	if len(fileItems) == len(wordpress.Items()) {
		return nil, nil
	}
	return site.Filter(fileItems, nil, contentDir)
}

func jsonList(l []string) string {
	b, _ := json.Marshal(l)
	return string(b)
}

func parseList(s string) []string {
	if s == "" {
		return nil
	}
	var l []string
	if json.Unmarshal([]byte(s), &l) != nil {
		return nil
	}
	return l
}

// UndoPlan is what Undo would do.
type UndoPlan struct {
	// Point is the newest pre-restore point of the site: what Undo restores.
	Point *repository.Snapshot
	// Undone is the point that restore wrote (nil if no longer in the
	// repository: the files it created are then left in place).
	Undone *repository.Snapshot
	Items  []string
	Paths  []string
	Tables []string
}

// PlanUndo finds the newest pre-restore point of the site and the items of
// the restore it preceded.
func PlanUndo(ctx context.Context, repo *repository.Repository, siteName string) (*UndoPlan, error) {
	points, err := backup.PointsOf(ctx, repo, siteName)
	if err != nil {
		return nil, err
	}
	for _, sn := range points {
		if sn.Trigger != backup.TriggerPreRestore {
			continue
		}
		plan := &UndoPlan{Point: sn, Paths: parseList(sn.Meta[backup.MetaPaths]), Tables: parseList(sn.Meta[backup.MetaTableNames])}
		if it := sn.Meta[backup.MetaItems]; it != "" {
			plan.Items = strings.Split(it, ",")
		}
		if len(plan.Items) == 0 {
			plan.Items = backup.AllItems()
		}
		if sn.Meta[backup.MetaDatabase] == "missing" {
			plan.Items = slices.DeleteFunc(plan.Items, func(s string) bool { return s == backup.ItemDatabase })
		}
		if !slices.Contains(plan.Items, backup.ItemDatabase) {
			plan.Tables = nil
		}
		if ref := sn.Meta[backup.MetaRestoreOf]; ref != "" {
			if id, err := repository.ParseID(ref); err == nil {
				if u, err := repo.LoadSnapshot(ctx, id); err == nil {
					u.ID = id
					plan.Undone = u
				}
			}
		}
		return plan, nil
	}
	return nil, fmt.Errorf("site %s: %w", siteName, ErrNothingToUndo)
}

// Undo restores the newest pre-restore point of the site over the same
// items (paths, tables) as the restore it preceded, and removes the files
// that restore created: files of the restored point, within those items,
// absent from the pre-restore point, whose size and modification time are
// still what the restore wrote. The site is then as it was before that
// restore (the database is replaced completely, as by any restore). Undo
// takes its own pre-restore point, so it can be undone too.
func Undo(ctx context.Context, deps backup.Deps, entry sitevault.Site, opts Options) (*Result, error) {
	plan, err := PlanUndo(ctx, deps.Repo, entry.Name)
	if err != nil {
		return nil, err
	}
	opts.Items, opts.Paths, opts.Tables = plan.Items, plan.Paths, plan.Tables
	res, err := run(ctx, deps, entry, plan.Point, opts, plan.Undone, "undo")
	if res != nil && plan.Undone == nil {
		res.Warnings = append(res.Warnings, "the restore point that restore wrote is gone: files it created (if any) were left in place")
	}
	return res, err
}

// removeCreated removes, under dir, the files of tree undone (as filter
// selects them) that the tree before lacks (nil: the folder was absent),
// when they still have the size and modification time the restore gave
// them; folders that held nothing else are removed too. It never follows a
// symbolic link. With list, it removes nothing and returns what it would
// remove (files and links; not folders).
func removeCreated(ctx context.Context, repo restorer.Repo, root fsys.FS, undone repository.ID, before *repository.ID, filter restorer.Filter, dir string, list bool) ([]string, error) {
	ut, err := repo.LoadTree(ctx, undone)
	if err != nil {
		return nil, err
	}
	var bt *repository.Tree
	if before != nil {
		if bt, err = repo.LoadTree(ctx, *before); err != nil {
			return nil, err
		}
	}
	var removed []string
	for _, n := range ut.Nodes {
		if err := ctx.Err(); err != nil {
			return removed, err
		}
		if n.Name == "" || n.Name == "." || n.Name == ".." || strings.ContainsAny(n.Name, "/\x00") {
			continue
		}
		np := n.Name
		if dir != "" {
			np = dir + "/" + n.Name
		}
		if filter != nil && !filter(np, n) {
			continue
		}
		var bn *repository.Node
		if bt != nil {
			bn = bt.Find(n.Name)
		}
		fi, err := root.Lstat(ctx, np)
		if err != nil {
			continue // gone already, or unreadable: leave it
		}
		switch n.Type {
		case repository.NodeDir:
			if n.Subtree == nil || !fi.Mode.IsDir() { // a link or a file: never descend
				continue
			}
			var sub *repository.ID
			if bn != nil && bn.Type == repository.NodeDir {
				sub = bn.Subtree
			}
			r, err := removeCreated(ctx, repo, root, *n.Subtree, sub, filter, np, list)
			removed = append(removed, r...)
			if err != nil {
				return removed, err
			}
			if bn == nil && !list && root.Remove(ctx, np) == nil { // only when empty
				removed = append(removed, np+"/")
			}
		case repository.NodeFile:
			if bn != nil || !fi.Mode.IsRegular() || fi.Size != n.Size || !sameTime(fi.ModTime, n.ModTime) {
				continue
			}
			if list {
				removed = append(removed, np)
				continue
			}
			if err := root.Remove(ctx, np); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return removed, fmt.Errorf("remove %q: %w", np, err)
			}
			removed = append(removed, np)
		case repository.NodeSymlink:
			if bn != nil || fi.Mode&fs.ModeSymlink == 0 {
				continue
			}
			if target, err := root.Readlink(ctx, np); err != nil || target != n.LinkTarget {
				continue
			}
			if list {
				removed = append(removed, np)
				continue
			}
			if err := root.Remove(ctx, np); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return removed, fmt.Errorf("remove %q: %w", np, err)
			}
			removed = append(removed, np)
		}
	}
	return removed, nil
}

// sameTime compares a file's modification time with the one a restore
// set; file systems that keep whole seconds only (SFTP) count as equal.
func sameTime(got, want time.Time) bool {
	return got.Equal(want) || got.Nanosecond() == 0 && got.Unix() == want.Unix()
}

// Preview is what Run would do, found by DryRun without changing anything.
type Preview struct {
	Point  *repository.Snapshot
	Items  []string
	Paths  []string
	Tables []string
	// Files is the restorer's dry run (restorer.Options.DryRun): the files
	// and links it would write (Planned, new or replacing), those already
	// right, the folders it would create, what it would refuse. Nil when
	// no file item is restored.
	Files *restorer.Report
	// Extra are the files and links inside the restored items (or paths)
	// that a backup takes and the point does not hold: a restore with
	// Options.Delete removes them, one without leaves them in place.
	Extra  []string
	Delete bool
	// Database is mysql.PlanRestore's answer: the tables written, the
	// live tables and views dropped or kept. Nil when the database is not
	// restored.
	Database *mysql.RestoreReport
	Warnings []string
}

// DryRun answers, for the same arguments, what Run would write, replace,
// remove and drop, and changes nothing: no lock, no pre-restore point, no
// write to the site or its database. It reads the site as a backup does
// (wp-config.php, the backup rules) and the database's table list. Like
// Run, it needs only the connection: it works while the site is down,
// except that a database it cannot reach is an error when the database is
// among the items.
func DryRun(ctx context.Context, deps backup.Deps, entry sitevault.Site, point *repository.Snapshot, opts Options) (*Preview, error) {
	if point.Site != entry.Name {
		return nil, fmt.Errorf("%w: restore point %s belongs to site %q, not %s", ErrUsage, point.ID.Short(), point.Site, entry.Name)
	}
	contentDir := point.Meta[backup.MetaContentDir]
	items, paths, err := ResolveItems(opts.Items, opts.Paths, opts.Tables, contentDir)
	if err != nil {
		return nil, err
	}
	plan := &Preview{Point: point, Items: items, Paths: paths, Tables: opts.Tables, Delete: opts.Delete}
	repo := deps.Repo
	dbItem := slices.Contains(items, backup.ItemDatabase)
	fileItems := slices.DeleteFunc(slices.Clone(items), func(s string) bool { return s == backup.ItemDatabase })
	var filesTree, dbTree repository.ID
	if len(fileItems) > 0 {
		if filesTree, err = site.FilesTree(ctx, repo, point); err != nil {
			return nil, err
		}
	}
	if dbItem {
		dbTree, err = backup.DatabaseTree(ctx, repo, point)
		if errors.Is(err, backup.ErrNoDatabase) && len(opts.Items) == 0 && len(opts.Tables) == 0 {
			plan.Warnings = append(plan.Warnings, fmt.Sprintf("restore point %s holds no database (%s); only the files are restored", point.ID.Short(), point.Meta[backup.MetaDatabase]))
			dbItem = false
			plan.Items = fileItems
		} else if err != nil {
			return nil, err
		}
	}

	conn, err := deps.Connection(ctx, entry)
	if err != nil {
		return nil, fmt.Errorf("plan the restore of %s: connect: %w", entry.Name, err)
	}
	defer conn.Close()
	root, err := conn.FS(ctx)
	if err != nil {
		return nil, fmt.Errorf("plan the restore of %s: open the site folder: %w", entry.Name, err)
	}
	defer root.Close()
	in, inErr := site.Inspect(ctx, conn, entry)

	if dbItem {
		db, _, err := backup.ResolveDatabase(ctx, conn, entry, in, inErr, point.Meta)
		if err != nil {
			return nil, fmt.Errorf("plan the restore of %s: %w", entry.Name, err)
		}
		prefix := point.Meta[backup.MetaTablePrefix]
		if prefix == "" {
			prefix = db.Prefix
		} else if prefix != db.Prefix {
			if point.Trigger == archive.TriggerArchive {
				return nil, fmt.Errorf("%w: restore point %s was imported for table prefix %q, but site %s now uses %q (import the download again)",
					ErrUsage, point.ID.Short(), prefix, entry.Name, db.Prefix)
			}
			plan.Warnings = append(plan.Warnings, fmt.Sprintf("the restore point's table prefix %q differs from the site's current %q: the point's tables are restored under their own names", prefix, db.Prefix))
		}
		if plan.Database, err = mysql.PlanRestore(ctx, db.Config, repo, dbTree, mysql.RestoreOptions{Prefix: prefix, EmptyPrefix: prefix == "", Tables: opts.Tables}); err != nil {
			return nil, fmt.Errorf("plan the restore of the database of %s from %s: %w", entry.Name, point.ID.Short(), err)
		}
	}

	if len(fileItems) > 0 {
		filter, err := fileFilter(fileItems, paths, contentDir)
		if err != nil {
			return nil, err
		}
		if origin := foreignOrigin(point, entry.Name); origin != "" && len(paths) == 0 {
			filter = keepOwnConfig(filter)
			plan.Warnings = append(plan.Warnings, fmt.Sprintf("%s's own %s is kept: the restore point comes from site %q", entry.Name, wpConfig, origin))
		}
		if plan.Files, err = site.RestoreFiles(ctx, repo, root, filesTree, filter, restorer.Options{Root: entry.Path, DryRun: true}); err != nil {
			return nil, fmt.Errorf("plan the restore of the files of %s from %s: %w", entry.Name, point.ID.Short(), err)
		}
		if in == nil {
			plan.Warnings = append(plan.Warnings, fmt.Sprintf("files not in the point are not listed: %v", inErr))
		} else if plan.Extra, err = extraFiles(ctx, repo, root, in, filesTree, filter); err != nil {
			return nil, fmt.Errorf("plan the restore of %s: list the files the point does not hold: %w", entry.Name, err)
		}
	}
	return plan, nil
}

// extraFiles lists the files and links a backup of the site takes now (its
// rules) that pass filter and that the files tree does not hold: what the
// pre-restore point would hold beyond the point (see run).
func extraFiles(ctx context.Context, repo restorer.Repo, root fsys.FS, in *site.Inspection, tree repository.ID, filter restorer.Filter) ([]string, error) {
	held := map[string]bool{}
	var walk func(id repository.ID, dir string) error
	walk = func(id repository.ID, dir string) error {
		t, err := repo.LoadTree(ctx, id)
		if err != nil {
			return err
		}
		for _, n := range t.Nodes {
			p := n.Name
			if dir != "" {
				p = dir + "/" + n.Name
			}
			held[p] = true
			if n.Type == repository.NodeDir && n.Subtree != nil {
				if err := walk(*n.Subtree, p); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := walk(tree, ""); err != nil {
		return nil, err
	}
	rules := in.WordPress.Rules(wordpress.HeadReader(ctx, root))
	var extra []string
	err := wordpress.Explain(ctx, root, rules, func(d wordpress.Decision) error {
		if !d.Taken || d.Info.Mode.IsDir() || held[d.Path] {
			return nil
		}
		n := &repository.Node{Name: path.Base(d.Path), Type: repository.NodeFile}
		if d.Info.Mode&fs.ModeSymlink != 0 {
			n.Type = repository.NodeSymlink
		}
		if filter == nil || filter(d.Path, n) {
			extra = append(extra, d.Path)
		}
		return nil
	})
	return extra, err
}
