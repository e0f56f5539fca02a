package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/sitevault/sitevault/internal/archiver"
	"github.com/sitevault/sitevault/internal/connection"
	"github.com/sitevault/sitevault/internal/fsys"
	"github.com/sitevault/sitevault/internal/mysql"
	"github.com/sitevault/sitevault/internal/repository"
	"github.com/sitevault/sitevault/internal/site"
	"github.com/sitevault/sitevault/internal/sitevault"
	"github.com/sitevault/sitevault/internal/wordpress"
)

// Triggers: what started a backup (Snapshot.Trigger).
const (
	TriggerManual     = "manual"
	TriggerPreRestore = "pre-restore"
	TriggerDaily      = "daily"
	TriggerRealtime   = "realtime"
	TriggerArchive    = "archive"
)

// Names of the parts in a restore point's root tree.
const (
	FilesNode    = site.FilesNode
	DatabaseNode = site.DatabaseNode
)

// ItemDatabase is the database item (the file items are wordpress.Items()).
const ItemDatabase = "database"

// AllItems returns every item in the order users see them.
func AllItems() []string { return append(wordpress.Items(), ItemDatabase) }

// Snapshot Meta keys (see doc.go).
const (
	MetaWPVersion     = "wp_version"
	MetaTablePrefix   = "table_prefix"
	MetaMultisite     = "multisite"
	MetaSitePath      = "site_path"
	MetaContentDir    = site.MetaContentDir
	MetaDBName        = "db_name"
	MetaTables        = "tables"
	MetaTablesChanged = "tables_changed"
	MetaFilesChanged  = "files_changed"
	MetaDatabase      = "database" // "missing" when the point has no database part
	MetaRestoreOf     = "restore_of"
	MetaItems         = "items"
	MetaPaths         = "paths"           // JSON array
	MetaTableNames    = "tables_restored" // JSON array of single tables a restore named
)

// Catalog is the slice of the catalog a backup writes to.
type Catalog interface {
	SetLastDB(ctx context.Context, name string, cred sitevault.DBCredentials) error
}

// Deps are what backups and restores work with. Repo is required.
type Deps struct {
	Repo *repository.Repository
	// Catalog records the last database login that worked; nil records nothing.
	Catalog Catalog
	// Connect opens a site's connection; nil means connection.Open with
	// the site's stored secrets only (no environment: Options.Env nil).
	Connect func(ctx context.Context, s sitevault.Site) (connection.Connection, error)
	// Locker takes the per-site lock of each backup and restore; nil
	// takes none (the caller guarantees one job per site).
	Locker Locker
	// Logger receives logs; nil discards them.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Hostname is stored with each point; "" means os.Hostname.
	Hostname string
}

func (d *Deps) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

func (d *Deps) logger() *slog.Logger {
	if d.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return d.Logger
}

// Connection opens s's connection with d.Connect or connection.Open.
func (d *Deps) Connection(ctx context.Context, s sitevault.Site) (connection.Connection, error) {
	if d.Connect != nil {
		return d.Connect(ctx, s)
	}
	return connection.Open(ctx, s, connection.Options{Logger: d.logger()})
}

// Lock takes site's lock for job with d.Locker: at once or not at all
// with noWait, else waiting up to wait (0: DefaultWait). With no Locker it
// returns an unlock that does nothing.
func (d *Deps) Lock(ctx context.Context, siteName, job string, noWait bool, wait time.Duration, onWait func(*BusyError)) (unlock func() error, err error) {
	if d.Locker == nil {
		return func() error { return nil }, nil
	}
	if noWait {
		wait = 0
	} else if wait <= 0 {
		wait = DefaultWait
	}
	return d.Locker.Lock(ctx, siteName, job, wait, onWait)
}

// Phases of a backup, as Progress.Phase reports them.
const (
	PhaseStarting int32 = iota
	PhaseFiles
	PhaseDatabase
	PhaseSaving
	PhaseDone
)

// Progress holds counters a caller may poll while a backup runs.
type Progress struct {
	Files  archiver.Progress
	Tables atomic.Int64 // tables saved so far
	Phase  atomic.Int32
	// Expected is the size of the files of the site's previous point:
	// what an incremental backup is expected to walk (0: a first backup,
	// whose total is known only at its end). Files.BytesDone over it is
	// the share done.
	Expected atomic.Int64
}

// Total is the size of the files the backup is expected to walk, as best
// known now: the previous point's size, or for a first backup the scan's
// count once it has finished; never less than what the backup has found
// so far. 0 means not known yet: show no share done or ETA.
func (p *Progress) Total() int64 {
	t := p.Expected.Load()
	if t == 0 {
		if !p.Files.ScanDone.Load() {
			return 0
		}
		t = p.Files.ScanBytes.Load()
	}
	return max(t, p.Files.BytesTotal.Load())
}

// Options tune Run.
type Options struct {
	// Trigger is stored with the point; "" means manual.
	Trigger string
	// Meta is added to the point's Meta (restore_of, items …).
	Meta map[string]string
	// NoWait fails at once when another job of the site runs; otherwise
	// Run waits up to Wait (0: DefaultWait) for it.
	NoWait bool
	Wait   time.Duration
	OnWait func(*BusyError)
	// Locked says the caller holds the site's lock (a restore).
	Locked bool
	// AllowNoDatabase saves the files alone, with a warning, when the
	// database cannot be reached (Result.DatabaseErr says why).
	AllowNoDatabase bool
	// Conn, if set, is used instead of opening a connection (not closed).
	Conn connection.Connection
	// Progress, if not nil, is updated while the backup runs.
	Progress *Progress
	// Excludes are glob patterns (path.Match, on the path relative to the
	// WordPress root or on the base name) left out besides the site
	// rules' (the config file's exclude).
	Excludes []string
	// Hints name database rows that changed since the previous point (the
	// connector's events); the database backup looks at them first (see
	// mysql.Hint). They are hostile input, checked there.
	Hints []mysql.Hint
}

// Database is how a site's database was reached. It holds the password:
// never print or log it.
type Database struct {
	Config mysql.Config
	Prefix string
	// Login is the login that worked, as the catalog records it.
	Login sitevault.DBCredentials
	// Fallback is true when wp-config.php's login could not be used and
	// the catalog's last working login was.
	Fallback bool
}

// Warning rules (Warning.Rule): which check raised a warning, for grouping.
const (
	WarnConfigUnusable  = "config_unusable"    // wp-config.php could not be used
	WarnLoginFallback   = "db_login_fallback"  // the last login that worked was used
	WarnDatabaseMissing = "database_missing"   // the point holds no database
	WarnDatabase        = "database"           // a warning of the database dump
	WarnCatalog         = "catalog_not_update" // the login that worked was not recorded
	WarnTableCountDrop  = "table_count_drop"   // far fewer tables than the previous point
)

// Warning is one thing a backup wants its user to know, as data that a
// dashboard can group by Rule; Message says it in English.
type Warning struct {
	Rule    string `json:"rule"`
	Message string `json:"message"`
	// For WarnTableCountDrop: the tables now, in the previous point, and that point.
	Tables         int    `json:"tables,omitempty"`
	PreviousTables int    `json:"previous_tables,omitempty"`
	PreviousPoint  string `json:"previous_point,omitempty"`
}

// SkippedTable is a table with the site's prefix (or in its database) that
// a backup left out, and why.
type SkippedTable struct {
	Table  string `json:"table"`
	Rule   string `json:"rule"`   // Reason as a slug ("no-prefix" …), for grouping
	Reason string `json:"reason"` // as the database layer says it
}

// TableDropWarns reports whether a point holding now tables, after one
// holding prev, gets a WarnTableCountDrop: when more than half of the
// tables are gone (to zero included). A site rarely loses half its tables;
// a wrong DB_NAME or table prefix does exactly that.
func TableDropWarns(prev, now int) bool { return prev > 0 && now*2 < prev }

// Result says what a backup did.
type Result struct {
	Snapshot *repository.Snapshot // the saved point (ID set)
	Parent   *repository.Snapshot // the previous point, nil for a first backup
	Files    *archiver.Report
	Database *mysql.BackupReport // nil when the database was not backed up
	// DatabaseErr says why the database is missing (AllowNoDatabase only).
	DatabaseErr error
	// DB is the database login that worked (nil with DatabaseErr).
	DB       *Database `json:"-"`
	Warnings []string
	// Details holds every warning of Warnings, in order, as data.
	Details []Warning
	// SkippedTables lists every table left out, each with its reason.
	SkippedTables []SkippedTable
	Partial       bool // some files could not be read (see Files.Errors), or a table (see Database.Partial)
	Duration      time.Duration
}

// Run backs up site into deps.Repo as one restore point (see the package
// documentation for its layout). A point whose files could not all be read
// is saved and reported with Result.Partial; errors are for what stops the
// whole backup (nothing is saved then).
func Run(ctx context.Context, deps Deps, entry sitevault.Site, opts Options) (*Result, error) {
	start := deps.now()
	log := deps.logger().With("site", entry.Name)
	p := opts.Progress
	if p == nil {
		p = new(Progress)
	}
	if opts.Trigger == "" {
		opts.Trigger = TriggerManual
	}
	if !opts.Locked {
		unlock, err := deps.Lock(ctx, entry.Name, "backup", opts.NoWait, opts.Wait, opts.OnWait)
		if err != nil {
			return nil, err
		}
		defer unlock()
		// The point's time is when it really started (after the wait).
		start = deps.now()
	}
	repo := deps.Repo
	// A long-lived repository (the service's) learns what other writers
	// and prunes did since its last load (see repository.Refresh).
	if err := repo.Refresh(ctx); err != nil {
		return nil, fmt.Errorf("back up %s: %w", entry.Name, err)
	}
	if n, err := repo.RecoverOrphans(ctx); err != nil {
		return nil, fmt.Errorf("back up %s: %w", entry.Name, err)
	} else if n > 0 {
		log.Info("indexed packs of an interrupted backup", "packs", n)
	}
	savedBefore := repo.Saved()

	conn := opts.Conn
	if conn == nil {
		c, err := deps.Connection(ctx, entry)
		if err != nil {
			return nil, fmt.Errorf("back up %s: connect: %w", entry.Name, err)
		}
		defer c.Close()
		conn = c
	}
	root, err := conn.FS(ctx)
	if err != nil {
		return nil, fmt.Errorf("back up %s: open the site folder %s: %w", entry.Name, entry.Location(), err)
	}
	defer root.Close()

	points, err := PointsOf(ctx, repo, entry.Name)
	if err != nil {
		return nil, err
	}
	res := &Result{}
	var prevMeta map[string]string
	if len(points) > 0 {
		res.Parent = points[0]
		if sum := points[0].Summary; sum != nil {
			p.Expected.Store(sum.BytesTotal)
		}
		prevMeta = points[0].Meta
	}

	wp, in, cfgErr := discover(ctx, conn, root, entry, prevMeta)
	if cfgErr != nil {
		if errors.Is(cfgErr, wordpress.ErrNotWordPress) || ctx.Err() != nil {
			return nil, fmt.Errorf("back up %s: %w", entry.Name, cfgErr)
		}
		res.warn(Warning{Rule: WarnConfigUnusable, Message: fmt.Sprintf("wp-config.php could not be used (%v); files are selected with the content folder %q", cfgErr, wp.ContentDir)})
	}

	// The database login first: a manual backup of a site whose database
	// is unreachable fails before it reads any file.
	db, dbWarn, dbErr := ResolveDatabase(ctx, conn, entry, in, cfgErr, prevMeta)
	for _, w := range dbWarn {
		res.warn(Warning{Rule: WarnLoginFallback, Message: w})
	}
	if dbErr != nil {
		if !opts.AllowNoDatabase || ctx.Err() != nil {
			return nil, fmt.Errorf("back up the database of %s: %w", entry.Name, dbErr)
		}
		res.DatabaseErr = dbErr
		res.warn(Warning{Rule: WarnDatabaseMissing, Message: fmt.Sprintf("the database was not backed up: %v", dbErr)})
	}
	res.DB = db

	// Files.
	p.Phase.Store(PhaseFiles)
	var parentFiles *repository.ID
	if res.Parent != nil {
		if id, err := site.FilesTree(ctx, repo, res.Parent); err == nil {
			parentFiles = &id
		}
	}
	// Without a previous point's size, a scan ahead of the backup finds
	// the total (Progress.Total).
	aopts := archiver.Options{Progress: &p.Files, Logger: log, RemoveTemps: true, Scan: p.Expected.Load() == 0}
	if excl, err := newExcludes(opts.Excludes); err != nil {
		return nil, fmt.Errorf("back up the files of %s: %w", entry.Name, err)
	} else if excl != nil {
		aopts.Selector = excl
	}
	filesID, frep, err := site.BackupFiles(ctx, repo, root, wp, parentFiles, aopts)
	if err != nil {
		return nil, fmt.Errorf("back up the files of %s: %w", entry.Name, err)
	}
	res.Files = frep
	res.Partial = frep.Partial

	// Database.
	var dbID *repository.ID
	if db != nil {
		p.Phase.Store(PhaseDatabase)
		prev := previousDatabase(ctx, repo, points)
		st := &markingStore{Repository: repo, tables: &p.Tables}
		id, drep, err := mysql.Backup(ctx, db.Config, st, mysql.BackupOptions{Prefix: db.Prefix, Previous: prev, Logger: log, Hints: opts.Hints})
		if err != nil {
			return nil, fmt.Errorf("back up the database of %s (%s): %w", entry.Name, db.Login.Name, err)
		}
		dbID = &id
		res.Database = drep
		// A table left out (a row over max_allowed_packet, named in
		// Skipped with the setting to raise): the point holds the rest.
		res.Partial = res.Partial || drep.Partial
	}

	// The point.
	p.Phase.Store(PhaseSaving)
	tree, err := site.SaveRoot(ctx, repo, &filesID, dbID, start)
	if err == nil {
		err = repo.Flush(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("back up %s: %w", entry.Name, err)
	}
	sn := &repository.Snapshot{
		Time: start, Site: entry.Name, Hostname: deps.Hostname, Trigger: opts.Trigger, Tree: tree,
		Summary: frep.Summary(),
	}
	if sn.Hostname == "" {
		sn.Hostname, _ = os.Hostname()
	}
	if res.Parent != nil {
		sn.Parent = &res.Parent.ID
	}
	sn.Summary.Started = start
	sn.Meta = map[string]string{
		MetaWPVersion:    wp.Version,
		MetaMultisite:    strconv.FormatBool(multisite(wp, in, prevMeta)),
		MetaSitePath:     entry.Location(),
		MetaContentDir:   wp.ContentDir,
		MetaFilesChanged: strconv.Itoa(frep.FilesNew + frep.FilesChanged),
	}
	if db != nil {
		sn.Meta[MetaTablePrefix] = db.Prefix
		sn.Meta[MetaDBName] = db.Login.Name
		changed := 0
		for _, t := range res.Database.Tables {
			// A table read in full (new, or its definition changed) has
			// changed even when it holds no rows.
			if t.Written > 0 || t.Patched > 0 || t.Full {
				changed++
			}
		}
		sn.Meta[MetaTables] = strconv.Itoa(len(res.Database.Tables))
		sn.Meta[MetaTablesChanged] = strconv.Itoa(changed)
		for _, s := range res.Database.Skipped {
			res.SkippedTables = append(res.SkippedTables, SkippedTable{Table: s.Name, Rule: slug(s.Reason), Reason: s.Reason})
			sn.Summary.Skipped = append(sn.Summary.Skipped, fmt.Sprintf("table %s: %s", s.Name, s.Reason))
		}
		if res.Database.Partial {
			sn.Summary.Partial = true
		}
		for _, w := range res.Database.Warnings {
			res.warn(Warning{Rule: WarnDatabase, Message: "database: " + w})
		}
		if prev, prevN, ok := previousTableCount(points); ok && TableDropWarns(prevN, len(res.Database.Tables)) {
			res.warn(Warning{
				Rule: WarnTableCountDrop, Tables: len(res.Database.Tables), PreviousTables: prevN, PreviousPoint: prev.ID.String(),
				Message: fmt.Sprintf("the database holds %d tables with prefix %q, down from %d in restore point %s: check DB_NAME and the table prefix (`sitevault site tables %s --explain`)",
					len(res.Database.Tables), db.Prefix, prevN, prev.ID.Short(), entry.Name),
			})
		}
	} else {
		sn.Meta[MetaDatabase] = "missing"
		if prefix := prevMeta[MetaTablePrefix]; prefix != "" {
			sn.Meta[MetaTablePrefix] = prefix
		}
	}
	for k, v := range opts.Meta {
		sn.Meta[k] = v
	}
	sn.Summary.Warnings = append(sn.Summary.Warnings, res.Warnings...)
	// what this process uploaded since the start (no listing of data/;
	// other processes' backups do not count)
	sn.Summary.BytesAddedSaved = repo.Saved().Sub(savedBefore).PackBytes
	sn.Summary.Finished = deps.now()
	if _, err := repo.SaveSnapshot(ctx, sn); err != nil {
		return nil, fmt.Errorf("back up %s: save the restore point: %w", entry.Name, err)
	}
	res.Snapshot = sn
	res.Duration = sn.Summary.Finished.Sub(start)
	p.Phase.Store(PhaseDone)

	if db != nil && deps.Catalog != nil {
		if err := deps.Catalog.SetLastDB(ctx, entry.Name, db.Login); err != nil {
			log.Warn("cannot record the database login that worked", "err", err)
			res.warn(Warning{Rule: WarnCatalog, Message: fmt.Sprintf("the database login that worked was not recorded in the catalog: %v", err)})
		}
	}
	log.Info("restore point saved", "point", sn.ID.Short(), "trigger", sn.Trigger, "partial", res.Partial)
	return res, nil
}

// warn records a warning as text and as data.
func (r *Result) warn(w Warning) {
	r.Warnings = append(r.Warnings, w.Message)
	r.Details = append(r.Details, w)
}

// previousTableCount returns the newest point with a database part and
// the number of tables it holds.
func previousTableCount(points []*repository.Snapshot) (*repository.Snapshot, int, bool) {
	for _, sn := range points {
		if sn.Meta[MetaDatabase] == "missing" {
			continue
		}
		if n, err := strconv.Atoi(sn.Meta[MetaTables]); err == nil {
			return sn, n, true
		}
	}
	return nil, 0, false
}

// slug turns a reason into a rule name, as the archiver's skips get theirs
// (archiver.RuleOf).
func slug(reason string) string { return archiver.RuleOf(reason) }

func multisite(wp *wordpress.Site, in *site.Inspection, prevMeta map[string]string) bool {
	if in != nil && wp.Config != nil {
		return wp.Multisite()
	}
	return prevMeta[MetaMultisite] == "true"
}

// discover reads the site's WordPress install. When wp-config.php cannot be
// used it returns a site good enough for selecting files (the content dir
// of the previous point, else wp-content) together with the reason; a
// folder that is not WordPress at all yields wordpress.ErrNotWordPress.
func discover(ctx context.Context, conn connection.Connection, root fsys.FS, entry sitevault.Site, prevMeta map[string]string) (*wordpress.Site, *site.Inspection, error) {
	in, err := site.Inspect(ctx, conn, entry)
	if err == nil {
		return in.WordPress, in, nil
	}
	wp := &wordpress.Site{ContentDir: prevMeta[MetaContentDir], Config: &wordpress.Config{}}
	if wp.ContentDir == "" {
		wp.ContentDir = "wp-content"
	}
	wp.Version = readVersion(ctx, root)
	return wp, nil, err
}

// readVersion reads $wp_version without wp-config.php.
func readVersion(ctx context.Context, root fsys.FS) string {
	f, err := root.Open(ctx, "wp-includes/version.php")
	if err != nil {
		return ""
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 1<<20))
	if err != nil {
		return ""
	}
	cfg, err := wordpress.ParseConfig(b, wordpress.ParseOptions{})
	if err != nil {
		return ""
	}
	if v, ok := cfg.Vars["wp_version"]; ok && v.Kind == wordpress.KindString {
		return v.Text
	}
	return ""
}

// ResolveDatabase finds a database login that works: wp-config.php's (with
// the catalog's overrides), else the last one that worked (also with the
// overrides), with a warning. in is nil when wp-config.php could not be
// read (cfgErr says why). The table prefix comes from the overrides,
// wp-config.php or the previous point, in that order. The error wraps
// site.ErrDBUnreachable, ErrDBLogin or ErrDBName when the server said no.
func ResolveDatabase(ctx context.Context, conn connection.Connection, entry sitevault.Site, in *site.Inspection, cfgErr error, prevMeta map[string]string) (*Database, []string, error) {
	var first error
	prefix := entry.DB.TablePrefix
	switch {
	case in != nil && in.DatabaseErr == nil:
		addr, err := site.CheckDatabase(ctx, conn, in.Database)
		if err == nil {
			return newDatabase(conn, addr, in.Database, false), nil, nil
		}
		first = err
		prefix = in.Database.TablePrefix
	case in != nil && errors.Is(in.DatabaseErr, wordpress.ErrConditional):
		// wp-config.php may mean another database than the last one that
		// worked (which may itself come from a wrong guess): only the user
		// can say which.
		return nil, nil, fmt.Errorf("wp-config.php does not say which database the site uses: %w (set what is missing in the site's database settings)", in.DatabaseErr)
	case in != nil:
		first = fmt.Errorf("wp-config.php does not give every database setting: %w", in.DatabaseErr)
		if prefix == "" {
			prefix = in.Database.TablePrefix
		}
	default:
		first = fmt.Errorf("wp-config.php cannot be read: %w", cfgErr)
	}
	if prefix == "" {
		prefix = prevMeta[MetaTablePrefix]
	}
	if entry.LastDB == nil {
		return nil, nil, fmt.Errorf("%w; no earlier database login is recorded for %s: fix wp-config.php or set the site's database settings", first, entry.Name)
	}
	if prefix == "" {
		return nil, nil, fmt.Errorf("%w; the table prefix is unknown: set it with `sitevault site edit %s --table-prefix`", first, entry.Name)
	}
	last := wordpress.Database{
		Host: entry.LastDB.Host, Name: entry.LastDB.Name, User: entry.LastDB.User,
		Password: entry.LastDB.Password.Reveal(), TablePrefix: prefix,
	}
	o := entry.DB
	for _, x := range []struct {
		dst *string
		v   string
	}{{&last.Host, o.Host}, {&last.Name, o.Name}, {&last.User, o.User}, {&last.Password, o.Password.Reveal()}} {
		if x.v != "" {
			*x.dst = x.v
		}
	}
	if in != nil && in.DatabaseErr == nil && sameLogin(in.Database, last) {
		return nil, nil, first // nothing else to try
	}
	addr, err := site.CheckDatabase(ctx, conn, last)
	if err != nil {
		return nil, nil, fmt.Errorf("%w (the last login that worked, user %q on %s, failed too: %v)", first, last.User, last.Host, err)
	}
	warn := fmt.Sprintf("used the last database login that worked (user %q, database %q on %s) because %v", last.User, last.Name, last.Host, first)
	return newDatabase(conn, addr, last, true), []string{warn}, nil
}

func sameLogin(a, b wordpress.Database) bool {
	return a.Host == b.Host && a.Name == b.Name && a.User == b.User && a.Password == b.Password
}

func newDatabase(conn connection.Connection, addr wordpress.DBAddr, db wordpress.Database, fallback bool) *Database {
	return &Database{
		Config: mysql.Config{
			Dial: conn.Dial, Network: addr.Network, Addr: addr.Address,
			User: db.User, Password: db.Password, Database: db.Name,
		},
		Prefix: db.TablePrefix,
		Login: sitevault.DBCredentials{
			Host: site.DBHostFor(addr), Name: db.Name, User: db.User, Password: sitevault.Secret(db.Password),
		},
		Fallback: fallback,
	}
}

// previousDatabase returns the database tree of the newest of the site's
// recent points that has one (a pre-restore point may lack it).
func previousDatabase(ctx context.Context, repo *repository.Repository, points []*repository.Snapshot) *repository.ID {
	for i, sn := range points {
		if i == 5 {
			break
		}
		if id, err := DatabaseTree(ctx, repo, sn); err == nil {
			return &id
		}
	}
	return nil
}

// ErrNoDatabase means a restore point holds no database part.
var ErrNoDatabase = errors.New("restore point holds no database")

// DatabaseTree returns the "database" tree of a point, or an error
// wrapping ErrNoDatabase.
func DatabaseTree(ctx context.Context, repo site.TreeLoader, sn *repository.Snapshot) (repository.ID, error) {
	t, err := repo.LoadTree(ctx, sn.Tree)
	if err != nil {
		return repository.ID{}, fmt.Errorf("load restore point %s: %w", sn.ID.Short(), err)
	}
	n := t.Find(DatabaseNode)
	if n == nil || n.Type != repository.NodeDir || n.Subtree == nil {
		return repository.ID{}, fmt.Errorf("restore point %s: %w", sn.ID.Short(), ErrNoDatabase)
	}
	return *n.Subtree, nil
}

// PointsOf returns the restore points of site, newest first.
func PointsOf(ctx context.Context, repo *repository.Repository, siteName string) ([]*repository.Snapshot, error) {
	all, err := repo.Snapshots(ctx)
	if err != nil {
		return nil, fmt.Errorf("list the restore points of %s: %w", siteName, err)
	}
	var out []*repository.Snapshot
	for _, sn := range all {
		if sn.Site == siteName {
			out = append(out, sn)
		}
	}
	slices.Reverse(out) // Snapshots is oldest first
	return out, nil
}

// markingStore is the repository as mysql.Backup sees it. mysql reuses
// unchanged segments of the previous point without saving them; marking
// the blobs of every tree it saves protects them against a concurrent
// prune (see repository's doc, "Prune"): SaveSnapshot re-saves them or
// fails with ErrBlobNotFound.
type markingStore struct {
	*repository.Repository
	tables *atomic.Int64
}

func (s *markingStore) SaveTree(ctx context.Context, t *repository.Tree) (repository.ID, error) {
	for _, n := range t.Nodes {
		if n.Type == repository.NodeFile && len(n.Content) > 0 {
			// Blobs saved moments ago are not indexed yet, so the result
			// says nothing; SaveSnapshot fails if a marked blob is gone.
			s.MarkUsed(repository.DataBlob, n.Content...)
		}
	}
	if t.Find("schema.sql") != nil {
		s.tables.Add(1)
	}
	return s.Repository.SaveTree(ctx, t)
}

// TableSelection is what a backup of a site would do with its database:
// the tables and views it takes and the tables it leaves out, with why.
type TableSelection struct {
	Database string // the database name
	Prefix   string
	Tables   []string
	Views    []string
	Skipped  []SkippedTable
	// Warnings says how the database was reached when that was not
	// wp-config.php's login (the fallback on the last login that worked).
	Warnings []string
}

// SelectTables reaches the site's database as Run does (wp-config.php's
// login with the catalog's overrides, else the last login that worked)
// and reports which tables a backup would take. in is the site's
// inspection (site.Inspect).
func SelectTables(ctx context.Context, conn connection.Connection, entry sitevault.Site, in *site.Inspection) (*TableSelection, error) {
	db, warns, err := ResolveDatabase(ctx, conn, entry, in, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("the database of %s: %w", entry.Name, err)
	}
	sel, err := mysql.Select(ctx, db.Config, db.Prefix)
	if err != nil {
		return nil, fmt.Errorf("list the tables of database %s: %w", db.Login.Name, err)
	}
	ts := &TableSelection{Database: db.Login.Name, Prefix: db.Prefix, Tables: sel.Tables, Views: sel.Views, Warnings: warns}
	for _, s := range sel.Skipped {
		ts.Skipped = append(ts.Skipped, SkippedTable{Table: s.Name, Rule: slug(s.Reason), Reason: s.Reason})
	}
	return ts, nil
}
