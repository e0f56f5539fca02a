package mysql

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sitevault/sitevault/internal/repository"
)

// RestoreOptions tune a database restore.
type RestoreOptions struct {
	// Prefix is the site's table prefix. A whole-database restore removes
	// the live tables a backup of Prefix would select, and the views named
	// with it, that are not in the restore point.
	Prefix string
	// Tables, if not empty, restores only these tables (full names) and
	// removes nothing else.
	Tables []string
	// EmptyPrefix says that the site's prefix truly is "" (every table of
	// the database is the site's). Without it, an empty Prefix is refused
	// (ErrNoPrefix): it would let a restore point replace any table.
	EmptyPrefix bool
	// Parallel is the number of connections loading at once; 0 means 2.
	Parallel int
	// Logger receives debug logs; nil discards them.
	Logger *slog.Logger

	// beforeSwap, in tests, runs after loading and before the swap.
	beforeSwap func() error
}

// RestoreReport says what a restore did.
type RestoreReport struct {
	Tables  []string // tables replaced or created
	Rows    int64
	Removed []string // live tables and views not in the restore point, dropped
	// NotInPoint are the site's live tables (prefixed, base tables) the
	// restore point never held, sorted: those a whole-database restore
	// dropped (also in Removed) and those left in place (Kept).
	NotInPoint []string
	// Kept are live tables the restore point never held that the restore
	// left in place, with the reason.
	Kept []Skipped
	// Failed are tables of the restore point whose stored rows are damaged
	// or missing: not restored, the live table (if any) left as it was,
	// while every other table is restored.
	Failed   []FailedTable
	Views    []string
	Warnings []string
}

// FailedTable is a table a restore could not read from the restore point.
type FailedTable struct {
	Table string
	Err   error
}

func (f FailedTable) Error() string { return fmt.Sprintf("table %s: %v", f.Table, f.Err) }
func (f FailedTable) Unwrap() error { return f.Err }

// Restore replaces the site's tables with the restore point's (the
// database tree id that Backup returned). The tables are loaded under
// temporary names beside the live ones and swapped in with one RENAME
// TABLE, so an error or interruption before the swap leaves the live
// tables untouched; temporary tables left by an interrupted run are
// dropped at the start of the next restore of the same site (same
// Prefix). Restores of sites sharing a database with different prefixes
// may run at the same time; a second restore of the same site fails with
// ErrRestoreRunning while the first runs.
func Restore(ctx context.Context, cfg Config, st Store, id repository.ID, opts RestoreOptions) (*RestoreReport, error) {
	if opts.Parallel <= 0 {
		opts.Parallel = 2
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m, err := LoadManifest(ctx, st, id)
	if err != nil {
		return nil, err
	}
	tables := m.Tables
	full := len(opts.Tables) == 0
	if opts.Prefix == "" && !opts.EmptyPrefix {
		// Without it, every table of the database would count as the
		// site's: replaced, or removed by a whole-database restore.
		return nil, ErrNoPrefix
	}
	// The restore point may come from an imported archive: refuse any
	// object that is not the site's before touching anything.
	if err := checkOwnNames(m, opts.Prefix, full); err != nil {
		return nil, err
	}
	if !full {
		tables = nil
		for _, name := range opts.Tables {
			t := m.Table(name)
			if t == nil {
				return nil, fmt.Errorf("restore table %s: %w", name, ErrNotFound)
			}
			tables = append(tables, t)
		}
	}
	db, err := connect(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	db.SetMaxIdleConns(opts.Parallel + 1)
	// Definitions (CREATE TABLE, triggers, views) are utf8 text; rows are
	// loaded by the workers' binary sessions.
	conn, err := session(ctx, db, "SET SESSION foreign_key_checks = 0", "SET NAMES utf8mb4")
	if err != nil {
		return nil, fmt.Errorf("database session: %w", err)
	}
	defer conn.Close()
	rep := &RestoreReport{}
	unlock, err := lockRestore(ctx, conn, opts.Prefix)
	if err != nil {
		return nil, err
	}
	defer unlock()
	scope := tempScope(opts.Prefix)
	if err := cleanupLeftovers(ctx, conn, scope); err != nil {
		return nil, err
	}
	run := make([]byte, 4)
	rand.Read(run)
	runID := scope + "_" + hex.EncodeToString(run)
	tmpNames := make([]string, len(tables))
	for i := range tables {
		tmpNames[i] = fmt.Sprintf("%s%s_%d", tmpPrefix, runID, i)
	}
	dropTemps := func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		c, err := session(cctx, db, "SET SESSION foreign_key_checks = 0")
		if err != nil {
			log.Warn("drop temporary tables", "error", err)
			return
		}
		defer c.Close()
		for _, n := range tmpNames {
			if _, err := c.ExecContext(cctx, "DROP TABLE IF EXISTS "+quoteIdent(n)); err != nil {
				log.Warn("drop temporary table", "table", n, "error", err)
			}
		}
	}

	// Create the temporary tables, then load every segment, adding a
	// table's secondary indexes after its last segment.
	foreignKeys := make(map[string][]string, len(tables))
	deferredKeys := make([][]string, len(tables))
	for i, t := range tables {
		var create string
		create, foreignKeys[t.Name] = splitForeignKeys(t.Create)
		if len(t.Segments) > 0 { // the last segment's loader adds them
			create, deferredKeys[i] = splitSecondaryKeys(create)
		}
		create, ok := renameCreate(create, t.Name, tmpNames[i])
		if !ok {
			dropTemps()
			return nil, fmt.Errorf("restore table %s: unexpected CREATE statement", t.Name)
		}
		if _, err := conn.ExecContext(ctx, create); err != nil {
			dropTemps()
			return nil, fmt.Errorf("create table %s (as %s): %w", t.Name, tmpNames[i], err)
		}
	}
	loadData, enums, err := canLoadData(ctx, conn, tables, tmpNames)
	if err != nil {
		dropTemps()
		return nil, err
	}
	started := time.Now()
	failed, err := load(ctx, db, st, tables, tmpNames, loadData, enums, deferredKeys, opts.Parallel)
	if err != nil {
		dropTemps()
		return nil, err
	}
	if len(failed) > 0 {
		// Restore the rest; a damaged table keeps its live version.
		var keep []*TableManifest
		var keepTmp []string
		for i, t := range tables {
			if ferr, bad := failed[t.Name]; bad {
				rep.Failed = append(rep.Failed, FailedTable{Table: t.Name, Err: ferr})
				if _, err := conn.ExecContext(ctx, "DROP TABLE IF EXISTS "+quoteIdent(tmpNames[i])); err != nil {
					log.Warn("drop temporary table", "table", tmpNames[i], "error", err)
				}
				continue
			}
			keep = append(keep, t)
			keepTmp = append(keepTmp, tmpNames[i])
		}
		tables, tmpNames = keep, keepTmp
	}
	log.Debug("database restore loaded", "tables", len(tables), "duration", time.Since(started))
	if opts.beforeSwap != nil {
		if err := opts.beforeSwap(); err != nil {
			dropTemps()
			return nil, err
		}
	}

	// One RENAME TABLE swaps everything.
	live, liveViews, _, err := inventory(ctx, conn, opts.Prefix)
	if err != nil {
		dropTemps()
		return nil, err
	}
	exists, err := baseTables(ctx, conn)
	if err != nil {
		dropTemps()
		return nil, err
	}
	var renames, olds []string
	oldName := func() string {
		n := fmt.Sprintf("%s%s_%d", oldPrefix, runID, len(olds))
		olds = append(olds, n)
		return n
	}
	restored := map[string]bool{}
	for _, f := range rep.Failed {
		restored[f.Table] = true // kept as it is, never dropped
	}
	for i, t := range tables {
		restored[t.Name] = true
		if exists[t.Name] {
			renames = append(renames, quoteIdent(t.Name)+" TO "+quoteIdent(oldName()))
		}
		renames = append(renames, quoteIdent(tmpNames[i])+" TO "+quoteIdent(t.Name))
		rep.Tables = append(rep.Tables, t.Name)
		rep.Rows += t.Rows()
	}
	for _, name := range classifyLive(rep, m, live, full, restored) {
		renames = append(renames, quoteIdent(name)+" TO "+quoteIdent(oldName()))
	}
	if len(renames) > 0 {
		if _, err := conn.ExecContext(ctx, "RENAME TABLE "+strings.Join(renames, ", ")); err != nil {
			dropTemps()
			return nil, fmt.Errorf("swap restored tables in: %w", err)
		}
	}
	log.Debug("database restore swapped", "tables", len(tables))

	// The restore has happened; what follows only tidies and recreates.
	for _, n := range olds {
		if _, err := conn.ExecContext(ctx, "DROP TABLE IF EXISTS "+quoteIdent(n)); err != nil {
			rep.Warnings = append(rep.Warnings, fmt.Sprintf("drop replaced table %s: %v (the next restore drops it)", n, err))
		}
	}
	for _, t := range tables {
		for _, fk := range foreignKeys[t.Name] {
			if _, err := conn.ExecContext(ctx, "ALTER TABLE "+quoteIdent(t.Name)+" ADD "+fk); err != nil {
				rep.Warnings = append(rep.Warnings, fmt.Sprintf("add foreign key to %s: %v", t.Name, err))
			}
		}
	}
	for _, t := range tables {
		for _, tr := range t.Triggers {
			if _, err := conn.ExecContext(ctx, tr); err != nil {
				rep.Warnings = append(rep.Warnings, fmt.Sprintf("create trigger on %s: %v", t.Name, err))
			}
		}
	}
	if full {
		want := map[string]bool{}
		for _, v := range m.Views {
			want[v.Name] = true
		}
		for _, v := range liveViews {
			if !want[v] {
				if _, err := conn.ExecContext(ctx, "DROP VIEW IF EXISTS "+quoteIdent(v)); err != nil {
					rep.Warnings = append(rep.Warnings, fmt.Sprintf("drop view %s: %v", v, err))
				} else {
					rep.Removed = append(rep.Removed, v)
				}
			}
		}
		rep.Views, rep.Warnings = createViews(ctx, conn, m.Views, rep.Warnings)
	}
	return rep, nil
}

var (
	identRe    = "(?:`(?:[^`]|``)+`|[^\\s`.();]+)"
	triggerRe  = regexp.MustCompile("(?is)^CREATE\\s+(?:OR\\s+REPLACE\\s+)?(?:DEFINER\\s*=\\s*\\S+\\s+)?TRIGGER\\s+(?:IF\\s+NOT\\s+EXISTS\\s+)?(" + identRe + ")\\s+(?:BEFORE|AFTER)\\s+(?:INSERT|UPDATE|DELETE)\\s+ON\\s+(" + identRe + ")\\s")
	viewHeadRe = regexp.MustCompile("(?is)^CREATE\\s+(?:OR\\s+REPLACE\\s+)?(?:ALGORITHM\\s*=\\s*\\w+\\s+)?(?:DEFINER\\s*=\\s*\\S+\\s+)?(?:SQL\\s+SECURITY\\s+\\w+\\s+)?VIEW\\s+(" + identRe + ")[\\s(]")
)

// unquoteIdent returns an identifier as matched by identRe, unquoted.
func unquoteIdent(s string) string {
	if strings.HasPrefix(s, "`") {
		return strings.ReplaceAll(s[1:len(s)-1], "``", "`")
	}
	return s
}

// ownName reports whether name is one of the site's (prefix) and not one
// of a restore's temporary names.
func ownName(name, prefix string) bool {
	return strings.HasPrefix(name, prefix) && !strings.HasPrefix(name, tmpPrefix) && !strings.HasPrefix(name, oldPrefix) && name != ""
}

// classifyLive records in rep the live tables the point does not hold
// (NotInPoint), and which of them a restore keeps and why (Kept) or drops
// (Removed, also returned). restored are the tables the restore writes.
func classifyLive(rep *RestoreReport, m *Manifest, live []*tableInfo, full bool, restored map[string]bool) (drop []string) {
	for _, t := range live {
		if m.Table(t.Name) != nil {
			continue
		}
		rep.NotInPoint = append(rep.NotInPoint, t.Name)
		switch {
		case !full:
			rep.Kept = append(rep.Kept, Skipped{t.Name, "not in the restore point; a restore of single tables removes nothing"})
		case slices.Contains(m.LeftOut, t.Name):
			rep.Kept = append(rep.Kept, Skipped{t.Name, "not in the restore point, whose backup could not take it (a row over max_allowed_packet)"})
		case t.whole() && !m.Whole:
			// The backup left keyless tables out by the rules of its
			// time; the table may well have existed then.
			rep.Kept = append(rep.Kept, Skipped{t.Name, "not in the restore point, whose backup left tables without a key out"})
		case !restored[t.Name]:
			drop = append(drop, t.Name)
			rep.Removed = append(rep.Removed, t.Name)
		}
	}
	return drop
}

// PlanRestore says what Restore would do with the same arguments, and
// changes nothing: Tables (and Rows) are the point's tables it would write,
// NotInPoint, Kept and Removed the live tables the point lacks, and with a
// whole restore Removed also names the live views it would drop. It
// refuses what Restore refuses (another site's names, unknown tables).
func PlanRestore(ctx context.Context, cfg Config, st Store, id repository.ID, opts RestoreOptions) (*RestoreReport, error) {
	m, err := LoadManifest(ctx, st, id)
	if err != nil {
		return nil, err
	}
	full := len(opts.Tables) == 0
	if opts.Prefix == "" && !opts.EmptyPrefix {
		return nil, ErrNoPrefix
	}
	if err := checkOwnNames(m, opts.Prefix, full); err != nil {
		return nil, err
	}
	tables := m.Tables
	if !full {
		tables = nil
		for _, name := range opts.Tables {
			t := m.Table(name)
			if t == nil {
				return nil, fmt.Errorf("restore table %s: %w", name, ErrNotFound)
			}
			tables = append(tables, t)
		}
	}
	db, err := connect(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	live, liveViews, _, err := inventory(ctx, db, opts.Prefix)
	if err != nil {
		return nil, err
	}
	rep := &RestoreReport{}
	restored := map[string]bool{}
	for _, t := range tables {
		restored[t.Name] = true
		rep.Tables = append(rep.Tables, t.Name)
		rep.Rows += t.Rows()
	}
	classifyLive(rep, m, live, full, restored)
	if full {
		want := map[string]bool{}
		for _, v := range m.Views {
			want[v.Name] = true
		}
		for _, v := range liveViews {
			if !want[v] {
				rep.Removed = append(rep.Removed, v)
			}
		}
		for _, v := range m.Views {
			rep.Views = append(rep.Views, v.Name)
		}
	}
	return rep, nil
}

// checkOwnNames refuses a restore point that would create, replace or
// drop a table, view or trigger that is not the site's: every table and
// view name carries the prefix, every CREATE TABLE creates its own table,
// every trigger carries the prefix and is on its own table, and every
// view statement creates the view it is stored as.
func checkOwnNames(m *Manifest, prefix string, full bool) error {
	for _, t := range m.Tables {
		if !ownName(t.Name, prefix) {
			return fmt.Errorf("restore table %q (site prefix %q): %w", t.Name, prefix, ErrForeignName)
		}
		if !strings.HasPrefix(t.Create, "CREATE TABLE "+quoteIdent(t.Name)+" (") {
			return fmt.Errorf("restore table %q: its CREATE statement is for another table: %w", t.Name, ErrForeignName)
		}
		for _, tr := range t.Triggers {
			g := triggerRe.FindStringSubmatch(tr)
			if g == nil {
				return fmt.Errorf("restore table %q: unreadable trigger statement %.60q: %w", t.Name, tr, ErrForeignName)
			}
			if name, on := unquoteIdent(g[1]), unquoteIdent(g[2]); !ownName(name, prefix) || on != t.Name {
				return fmt.Errorf("restore table %q: trigger %q on table %q: %w", t.Name, name, on, ErrForeignName)
			}
		}
	}
	if !full {
		return nil
	}
	for _, v := range m.Views {
		g := viewHeadRe.FindStringSubmatch(v.Create)
		if !ownName(v.Name, prefix) || g == nil || unquoteIdent(g[1]) != v.Name {
			return fmt.Errorf("restore view %q (site prefix %q): %w", v.Name, prefix, ErrForeignName)
		}
	}
	return nil
}

// canLoadData tells, per table, whether its rows can go in with LOAD DATA
// LOCAL INFILE: the server allows it and the table has no BIT, YEAR or
// geometry column. It also returns each table's ENUM columns.
func canLoadData(ctx context.Context, q querier, tables []*TableManifest, tmpNames []string) ([]bool, []map[string]bool, error) {
	ok := make([]bool, len(tables))
	cols, err := columnsOf(ctx, q)
	if err != nil {
		return nil, nil, err
	}
	enums := make([]map[string]bool, len(tables))
	for i := range tables {
		enums[i] = map[string]bool{}
		for _, c := range cols[tmpNames[i]] {
			if c.DataType == "enum" {
				enums[i][c.Name] = true
			}
		}
	}
	var local int
	if err := q.QueryRowContext(ctx, "SELECT @@local_infile").Scan(&local); err != nil || local != 1 {
		return ok, enums, nil
	}
next:
	for i := range tables {
		for _, c := range cols[tmpNames[i]] {
			// YEAR: LOAD DATA reads 0 as the string '0', which is 2000.
			if c.Kind == kindBit || c.Kind == kindNative || c.Kind == kindEnum || c.DataType == "year" || (c.Kind == kindBinary && c.DataType != "binary" && c.DataType != "varbinary" &&
				!strings.HasSuffix(c.DataType, "blob")) {
				continue next
			}
		}
		ok[i] = true
	}
	return ok, enums, nil
}

// createViews creates views in passes, so a view over another view waits for it.
func createViews(ctx context.Context, conn *sql.Conn, views []View, warnings []string) ([]string, []string) {
	var done []string
	pending := slices.Clone(views)
	errs := map[string]error{}
	for len(pending) > 0 {
		var next []View
		for _, v := range pending {
			stmt := v.Create
			if strings.HasPrefix(stmt, "CREATE ") && !strings.HasPrefix(stmt, "CREATE OR REPLACE ") {
				stmt = "CREATE OR REPLACE " + stmt[len("CREATE "):]
			}
			if _, err := conn.ExecContext(ctx, stmt); err != nil {
				errs[v.Name] = err
				next = append(next, v)
				continue
			}
			done = append(done, v.Name)
		}
		if len(next) == len(pending) {
			for _, v := range next {
				warnings = append(warnings, fmt.Sprintf("create view %s: %v", v.Name, errs[v.Name]))
			}
			break
		}
		pending = next
	}
	return done, warnings
}

// renameCreate points a CREATE TABLE statement at another table name.
func renameCreate(create, from, to string) (string, bool) {
	head := "CREATE TABLE " + quoteIdent(from)
	if !strings.HasPrefix(create, head) {
		return "", false
	}
	return "CREATE TABLE " + quoteIdent(to) + create[len(head):], true
}

// splitForeignKeys removes the FOREIGN KEY clauses from a CREATE TABLE
// statement as SHOW CREATE TABLE writes it (one clause per line) and
// returns them. Foreign key names are unique in a database, so the
// temporary tables are created without them and the restore adds them
// after the swap, when the old tables and their constraints are gone.
func splitForeignKeys(create string) (string, []string) {
	lines := strings.Split(create, "\n")
	var kept, fks []string
	for i, l := range lines {
		t := strings.TrimSpace(l)
		if i > 0 && strings.HasPrefix(t, "CONSTRAINT ") && strings.Contains(t, " FOREIGN KEY ") {
			fks = append(fks, strings.TrimSuffix(t, ","))
			continue
		}
		if strings.HasPrefix(l, ")") && len(kept) > 1 && len(fks) > 0 {
			kept[len(kept)-1] = strings.TrimSuffix(kept[len(kept)-1], ",")
		}
		kept = append(kept, l)
	}
	return strings.Join(kept, "\n"), fks
}

// splitSecondaryKeys removes the secondary indexes (KEY and UNIQUE KEY
// lines) from an InnoDB table's CREATE TABLE statement as SHOW CREATE
// TABLE writes it, and returns them as ALTER TABLE clauses ("ADD KEY …")
// in their order. Adding them after the load builds each index from
// sorted rows instead of by one random insert per row (what myloader
// does too): 1M WordPress postmeta rows took 3.9 s to load with their
// two indexes, 2.0 s without and 1.2 s to add them (MariaDB 10.11), and
// the index build of a big table overlaps with the loading of the
// others (see load). The PRIMARY KEY stays (it is the clustered index), and so does
// everything of a table that has FULLTEXT or SPATIAL indexes (InnoDB
// adds those one at a time with a rebuild) or no PRIMARY KEY (its first
// unique key may be the clustered index). Added in the original order,
// the indexes come out in SHOW CREATE TABLE as they were.
func splitSecondaryKeys(create string) (string, []string) {
	lines := strings.Split(create, "\n")
	last := lines[len(lines)-1]
	if !strings.HasPrefix(last, ")") || !strings.Contains(last, " ENGINE=InnoDB") {
		return create, nil
	}
	var kept, keys []string
	primary := false
	for i, l := range lines {
		t := strings.TrimSpace(l)
		switch {
		case i == 0 || i == len(lines)-1:
		case strings.HasPrefix(t, "PRIMARY KEY "):
			primary = true
		case strings.HasPrefix(t, "KEY ") || strings.HasPrefix(t, "UNIQUE KEY "):
			keys = append(keys, "ADD "+strings.TrimSuffix(t, ","))
			continue
		case strings.HasPrefix(t, "FULLTEXT ") || strings.HasPrefix(t, "SPATIAL ") || strings.HasPrefix(t, "VECTOR "):
			return create, nil
		}
		kept = append(kept, l)
	}
	if !primary || len(keys) == 0 {
		return create, nil
	}
	// The line before ")" may now end with the comma of a removed key.
	kept[len(kept)-2] = strings.TrimSuffix(kept[len(kept)-2], ",")
	return strings.Join(kept, "\n"), keys
}

// baseTables returns the names of the database's tables (not views).
func baseTables(ctx context.Context, q querier) (map[string]bool, error) {
	rows, err := q.QueryContext(ctx, "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE <> 'VIEW'")
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	defer rows.Close()
	m := map[string]bool{}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		m[n] = true
	}
	return m, rows.Err()
}

// lockRestore takes the site's restore lock (restoreLockName) on conn, for
// as long as conn lives or until the returned function releases it: a
// second restore of the same site fails with ErrRestoreRunning instead of
// dropping the first one's temporary tables. It waits 2 s, so that the
// session of a restore that has just died has ended on the server.
func lockRestore(ctx context.Context, conn *sql.Conn, prefix string) (func(), error) {
	var dbName sql.NullString
	if err := conn.QueryRowContext(ctx, "SELECT DATABASE()").Scan(&dbName); err != nil {
		return nil, fmt.Errorf("restore lock: %w", err)
	}
	name := restoreLockName(dbName.String, prefix) // hex: no quoting needed
	var got sql.NullInt64
	if err := conn.QueryRowContext(ctx, "SELECT GET_LOCK('"+name+"', 2)").Scan(&got); err != nil {
		return nil, fmt.Errorf("restore lock: %w", err)
	}
	if got.Int64 != 1 {
		return nil, fmt.Errorf("restore tables %s* of database %s: %w", prefix, dbName.String, ErrRestoreRunning)
	}
	return func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		conn.ExecContext(cctx, "DO RELEASE_LOCK('"+name+"')")
	}, nil
}

// cleanupLeftovers drops the temporary tables that interrupted restores of
// the same site (scope, see tempScope) left. The caller holds the site's
// restore lock, so none of them belongs to a running restore.
func cleanupLeftovers(ctx context.Context, q querier, scope string) error {
	names, err := baseTables(ctx, q)
	if err != nil {
		return err
	}
	for n := range names {
		if strings.HasPrefix(n, tmpPrefix+scope+"_") || strings.HasPrefix(n, oldPrefix+scope+"_") {
			if _, err := q.ExecContext(ctx, "DROP TABLE IF EXISTS "+quoteIdent(n)); err != nil {
				return fmt.Errorf("drop leftover table %s: %w", n, err)
			}
		}
	}
	return nil
}

type loadJob struct {
	table *TableManifest
	tmp   string
	seg   *Segment
	first bool
	ready chan struct{} // closed when the table's first segment is in
	// loadData loads with LOAD DATA LOCAL INFILE instead of INSERTs.
	loadData bool
	// left counts the table's segments not loaded yet; whoever loads the
	// last one adds the table's deferred secondary indexes, keys.
	left *atomic.Int64
	keys []string
	// enums are the table's ENUM columns (see checkWarnings).
	enums map[string]bool
	// lower and upper bound the segment's key range for its check
	// (verifySegment); nil is open.
	lower, upper [][]byte
	check        *tableCheck
}

// tableCheck is what the checks of one keyed table's segments share: the
// temporary table's columns, read once.
type tableCheck struct {
	once sync.Once
	ti   *tableInfo
	err  error
}

// load loads every segment into its temporary table on parallel
// connections, autocommitting each INSERT. A table's first segment goes in
// alone: MariaDB (10.6+) takes a table lock for an INSERT into an empty
// table with unique and foreign key checks off, and concurrent first
// INSERTs would deadlock. (Loading a whole table in one transaction to use
// that bulk path measured 2.5× slower than autocommit here.)
//
// When a table's last segment is in, the worker that loaded it adds the
// table's deferred secondary indexes (see splitSecondaryKeys) while the
// other workers go on loading: the biggest tables come first, so their
// index builds overlap with the loading of the others.
func load(ctx context.Context, db *sql.DB, st Store, tables []*TableManifest, tmpNames []string, loadData []bool, enums []map[string]bool, keys [][]string, parallel int) (map[string]error, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs := make(chan loadJob)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		failed   = map[string]error{} // tables whose stored data is damaged
	)
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
		cancel()
	}
	// failTable gives up j's table when its data is damaged (the others
	// load on), and fails the whole load otherwise.
	failTable := func(j loadJob, err error) {
		if !repository.IsDamage(err) {
			fail(err)
			return
		}
		mu.Lock()
		if failed[j.table.Name] == nil {
			failed[j.table.Name] = err
		}
		mu.Unlock()
		if j.first {
			close(j.ready) // the table's other segments skip themselves
		}
	}
	isFailed := func(j loadJob) bool {
		mu.Lock()
		defer mu.Unlock()
		return failed[j.table.Name] != nil
	}
	for w := 0; w < parallel; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := session(ctx, db, "SET SESSION foreign_key_checks = 0", "SET SESSION unique_checks = 0")
			if err != nil {
				fail(fmt.Errorf("database session: %w", err))
				for range jobs {
				}
				return
			}
			defer conn.Close()
			history := false
			for j := range jobs {
				if ctx.Err() != nil {
					continue
				}
				if !j.first {
					select {
					case <-j.ready:
					case <-ctx.Done():
						continue
					}
				}
				if j.table.Versioned && !history {
					// Lets the INSERTs give the period columns (MariaDB 10.11+).
					if _, err := conn.ExecContext(ctx, "SET SESSION system_versioning_insert_history = 1"); err != nil {
						fail(fmt.Errorf("load system-versioned table %s (needs MariaDB 10.11 or later): %w", j.table.Name, err))
						continue
					}
					history = true
				}
				if isFailed(j) {
					continue
				}
				loadFn := loadSegment
				if j.loadData && !j.table.Versioned && !j.seg.hasParts() {
					loadFn = loadSegmentData
				}
				if err := loadFn(ctx, conn, st, j); err != nil {
					failTable(j, err)
					continue
				}
				if j.first {
					close(j.ready)
				}
				if err := verifySegment(ctx, conn, j); err != nil {
					fail(err)
					continue
				}
				if j.left.Add(-1) == 0 && !isFailed(j) {
					if err := finishTable(ctx, conn, j); err != nil {
						fail(err)
						continue
					}
				}
			}
		}()
	}
	// Every table's first segment first, biggest tables first.
	var firsts, rest []loadJob
	for i, t := range tables {
		if len(t.Segments) == 0 {
			// Nothing to load; still check the table is as recorded.
			if err := verifyTable(ctx, db, t, tmpNames[i]); err != nil {
				return nil, err
			}
			continue
		}
		ready := make(chan struct{})
		check := &tableCheck{}
		left := new(atomic.Int64)
		left.Store(int64(len(t.Segments)))
		for k, s := range t.Segments {
			j := loadJob{table: t, tmp: tmpNames[i], seg: s, first: k == 0, ready: ready, loadData: loadData[i], left: left, keys: keys[i], enums: enums[i]}
			if segmentChecks(t) {
				j.check = check
				if k > 0 {
					j.lower = t.Segments[k-1].Last
				}
				if k < len(t.Segments)-1 {
					j.upper = s.Last
				}
			}
			if k == 0 {
				firsts = append(firsts, j)
			} else {
				rest = append(rest, j)
			}
		}
	}
	bigFirst := func(a, b loadJob) int { return cmpInt64(int64(len(b.table.Segments)), int64(len(a.table.Segments))) }
	slices.SortStableFunc(firsts, bigFirst)
	slices.SortStableFunc(rest, bigFirst)
feed:
	for _, j := range append(firsts, rest...) {
		select {
		case jobs <- j:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	return failed, ctx.Err()
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// finishTable runs after a table's last segment is in: it adds the
// table's deferred secondary indexes and checks its rows against the
// backup's checksums (verifyTable).
func finishTable(ctx context.Context, conn *sql.Conn, j loadJob) error {
	if len(j.keys) > 0 {
		stmt := "ALTER TABLE " + quoteIdent(j.tmp) + " " + strings.Join(j.keys, ", ")
		if _, err := conn.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("add indexes to %s: %w", j.table.Name, err)
		}
	}
	if segmentChecks(j.table) {
		return nil // checked segment by segment
	}
	return verifyTable(ctx, conn, j.table, j.tmp)
}

// segmentChecks reports whether a table's rows are checked segment by
// segment as they are loaded (verifySegment), spreading the checks over
// the loading connections: a keyed table whose segments all hold a
// checksum. Others are checked whole after their last segment.
func segmentChecks(t *TableManifest) bool {
	if len(t.Key) == 0 || t.Versioned {
		return false
	}
	_, ok := tableChecksum(t)
	return ok
}

// verifySegment compares the rows of a loaded segment's key range (the
// first segment's open below, the last's open above, so that every row of
// the table is counted once) with the checksum the backup recorded for
// it; see verifyTable.
func verifySegment(ctx context.Context, conn *sql.Conn, j loadJob) error {
	if j.check == nil {
		return nil
	}
	c := j.check
	c.once.Do(func() {
		cols, err := columnsOf(ctx, conn, j.tmp)
		if err != nil {
			c.err = fmt.Errorf("check restored table %s: %w", j.table.Name, err)
			return
		}
		ti := &tableInfo{Name: j.tmp, Columns: cols[j.tmp]}
		pos := map[string]int{}
		for i, col := range ti.Columns {
			pos[col.Name] = i
		}
		for _, k := range j.table.Key {
			i, ok := pos[k]
			if !ok {
				c.err = fmt.Errorf("check restored table %s: key column %s missing: %w", j.table.Name, k, ErrChecksumMismatch)
				return
			}
			ti.Key = append(ti.Key, i)
		}
		c.ti = ti
	})
	if c.err != nil {
		return c.err
	}
	if (j.lower != nil && len(j.lower) != len(c.ti.Key)) || (j.upper != nil && len(j.upper) != len(c.ti.Key)) {
		return fmt.Errorf("check restored table %s: segment bounds do not match its key: %w", j.table.Name, ErrChecksumMismatch)
	}
	var got string
	if err := conn.QueryRowContext(ctx, checksumQuery(c.ti, j.lower, j.upper)).Scan(&got); err != nil {
		return fmt.Errorf("check restored table %s: %w", j.table.Name, err)
	}
	if got != j.seg.Checksum {
		return fmt.Errorf("restore table %s: rows:checksum %s loaded in a segment's key range, %s backed up: %w", j.table.Name, got, j.seg.Checksum, ErrChecksumMismatch)
	}
	return nil
}

// tableChecksum is what the backup recorded of a table's rows: the row
// count and the XOR of every row hash (rowHashExpr) over all its segments.
// ok is false when a segment holds no checksum that can be read.
func tableChecksum(t *TableManifest) (string, bool) {
	var rows, xor uint64
	for _, s := range t.Segments {
		n, x, found := strings.Cut(s.Checksum, ":")
		if !found {
			return "", false
		}
		var nv, xv uint64
		if _, err := fmt.Sscan(n, &nv); err != nil {
			return "", false
		}
		if _, err := fmt.Sscan(x, &xv); err != nil {
			return "", false
		}
		rows += nv
		xor ^= xv
	}
	return fmt.Sprintf("%d:%d", rows, xor), true
}

// verifyTable compares a loaded temporary table with the checksum the
// backup recorded for the table (tableChecksum): a value the server
// stored differently from the backup's (a type loaded as NULL, a
// character lost) fails the restore with ErrChecksumMismatch before
// anything is swapped. It costs one scan of the table, on the worker that
// loaded its last segment.
func verifyTable(ctx context.Context, q querier, t *TableManifest, tmp string) error {
	want, ok := tableChecksum(t)
	if !ok {
		return nil // no usable checksums recorded: nothing to compare with
	}
	cols, err := columnsOf(ctx, q, tmp)
	if err != nil {
		return fmt.Errorf("check restored table %s: %w", t.Name, err)
	}
	ti := &tableInfo{Name: tmp, Columns: cols[tmp], Versioned: t.Versioned}
	if t.Versioned {
		ti.withPeriod(t.Create)
	}
	var got string
	if err := q.QueryRowContext(ctx, checksumQuery(ti, nil, nil)).Scan(&got); err != nil {
		return fmt.Errorf("check restored table %s: %w", t.Name, err)
	}
	if got != want {
		return fmt.Errorf("restore table %s: rows:checksum %s loaded, %s backed up: %w", t.Name, got, want, ErrChecksumMismatch)
	}
	return nil
}

// checkWarnings turns the warnings of the statement just run on conn (a
// value truncated, NULL put in a NOT NULL column, a conversion) into an
// error naming the table and, as the server's messages do, the column.
//
// One warning is expected: an ENUM column's invalid value (index 0, which
// a non-strict server stores for a value that is no member) can only be
// loaded with warning 1265 on that column. Those are let through for the
// ENUM columns listed in enums; verifyTable still compares every value.
func checkWarnings(ctx context.Context, conn *sql.Conn, table string, enums map[string]bool) error {
	var n int64
	if err := conn.QueryRowContext(ctx, "SELECT @@warning_count").Scan(&n); err != nil {
		return fmt.Errorf("load table %s: read warnings: %w", table, err)
	}
	if n == 0 {
		return nil
	}
	rows, err := conn.QueryContext(ctx, "SHOW WARNINGS LIMIT 5")
	if err != nil {
		return fmt.Errorf("load table %s: %d warnings: %w", table, n, ErrLoadWarning)
	}
	defer rows.Close()
	var msgs []string
	expected := 0
	for rows.Next() {
		var level, msg string
		var code int
		if err := rows.Scan(&level, &code, &msg); err != nil {
			break
		}
		if code == 1265 && enums[warningColumn(msg)] {
			expected++
			continue
		}
		msgs = append(msgs, fmt.Sprintf("%s %d: %s", level, code, msg))
	}
	if len(msgs) == 0 && int64(expected) == n {
		return nil
	}
	return fmt.Errorf("load table %s: %w (%d warnings: %s)", table, ErrLoadWarning, n, strings.Join(msgs, "; "))
}

// warningColumn returns the column a server warning names ("… for column
// 'x' at row 5"), or "".
func warningColumn(msg string) string {
	_, rest, ok := strings.Cut(msg, "for column '")
	if !ok {
		return ""
	}
	i := strings.LastIndex(rest, "' at row ")
	if i < 0 {
		return ""
	}
	return rest[:i]
}

// eachInsert calls fn with the VALUES part of every INSERT line of a
// segment ("(…),(…);"), checking that each one is for the table.
func eachInsert(ctx context.Context, st Store, j loadJob, fn func(values []byte) error, upd func(rest []byte) error) error {
	updHead := []byte("UPDATE " + quoteIdent(j.table.Name) + " SET ")
	head := []byte(insertHeadNames(j.table.Name, j.table.Columns))
	write := func(w io.Writer) error { return SegmentSQL(ctx, st, j.table, j.seg, w) }
	return eachLine(j.table.Name, write, func(line []byte) error {
		if bytes.HasPrefix(line, []byte("UPDATE ")) {
			// A large value appended in parts (Segment.Parts).
			if upd == nil || !bytes.HasPrefix(line, updHead) {
				return fmt.Errorf("load %s: segment holds an UPDATE this load cannot run", j.table.Name)
			}
			return upd(bytes.TrimRight(line[len(updHead):], ";\n"))
		}
		if !bytes.HasPrefix(line, []byte("INSERT ")) {
			return nil // comments and the session settings this session already has
		}
		if !bytes.HasPrefix(line, head) {
			return fmt.Errorf("load %s: segment holds a statement for another table or columns", j.table.Name)
		}
		return fn(bytes.TrimRight(line[len(head):], ";\n"))
	})
}

// loadSegment runs a segment's INSERT statements (one per line) against
// the temporary table.
func loadSegment(ctx context.Context, conn *sql.Conn, st Store, j loadJob) error {
	to := insertHeadNames(j.tmp, j.table.Columns)
	return eachInsert(ctx, st, j, func(values []byte) error {
		if _, err := conn.ExecContext(ctx, to+string(values)); err != nil {
			return fmt.Errorf("load table %s: %w", j.table.Name, err)
		}
		return checkWarnings(ctx, conn, j.table.Name, j.enums)
	}, func(rest []byte) error {
		if _, err := conn.ExecContext(ctx, "UPDATE "+quoteIdent(j.tmp)+" SET "+string(rest)); err != nil {
			return fmt.Errorf("load table %s: %w", j.table.Name, err)
		}
		return checkWarnings(ctx, conn, j.table.Name, j.enums)
	})
}

// loadSegmentData loads a segment with LOAD DATA LOCAL INFILE, converting
// its INSERTs to LOAD DATA text as the driver sends it.
func loadSegmentData(ctx context.Context, conn *sql.Conn, st Store, j loadJob) error {
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		bw := bufio.NewWriterSize(pw, 256<<10)
		err := eachInsert(ctx, st, j, func(values []byte) error { return insertToTSV(values, bw) }, nil)
		if err == nil {
			err = bw.Flush()
		}
		pw.CloseWithError(err)
		done <- err
	}()
	name, unregister := registerReader(pr)
	defer unregister()
	_, err := conn.ExecContext(ctx, loadDataSQL(name, j.tmp, j.table.Columns))
	pr.CloseWithError(errors.New("load abandoned"))
	cerr := <-done
	if cerr != nil {
		return fmt.Errorf("load table %s: %w", j.table.Name, cerr)
	}
	if err != nil {
		return fmt.Errorf("load table %s: %w", j.table.Name, err)
	}
	return checkWarnings(ctx, conn, j.table.Name, j.enums)
}
