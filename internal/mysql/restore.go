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
	"slices"
	"strings"
	"sync"
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
	// Parallel is the number of connections loading at once; 0 means 2.
	Parallel int
	// Logger receives debug logs; nil discards them.
	Logger *slog.Logger

	// beforeSwap, in tests, runs after loading and before the swap.
	beforeSwap func() error
}

// RestoreReport says what a restore did.
type RestoreReport struct {
	Tables   []string // tables replaced or created
	Rows     int64
	Removed  []string // live tables and views not in the restore point, dropped
	Views    []string
	Warnings []string
}

// Restore replaces the site's tables with the restore point's (the
// database tree id that Backup returned). The tables are loaded under
// temporary names beside the live ones and swapped in with one RENAME
// TABLE, so an error or interruption before the swap leaves the live
// tables untouched; temporary tables left by an interrupted run are
// dropped at the start of the next one.
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
	if full && opts.Prefix == "" {
		// Without it, every keyed table of the database would count as the
		// site's and be removed.
		return nil, ErrNoPrefix
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
	if err := cleanupLeftovers(ctx, conn); err != nil {
		return nil, err
	}
	run := make([]byte, 4)
	rand.Read(run)
	runID := hex.EncodeToString(run)
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

	// Create the temporary tables, then load every segment.
	foreignKeys := make([][]string, len(tables))
	for i, t := range tables {
		var create string
		create, foreignKeys[i] = splitForeignKeys(t.Create)
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
	if err := load(ctx, db, st, tables, tmpNames, opts.Parallel); err != nil {
		dropTemps()
		return nil, err
	}
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
	for i, t := range tables {
		restored[t.Name] = true
		if exists[t.Name] {
			renames = append(renames, quoteIdent(t.Name)+" TO "+quoteIdent(oldName()))
		}
		renames = append(renames, quoteIdent(tmpNames[i])+" TO "+quoteIdent(t.Name))
		rep.Tables = append(rep.Tables, t.Name)
		rep.Rows += t.Rows()
	}
	if full {
		for _, t := range live {
			if !restored[t.Name] {
				renames = append(renames, quoteIdent(t.Name)+" TO "+quoteIdent(oldName()))
				rep.Removed = append(rep.Removed, t.Name)
			}
		}
	}
	if _, err := conn.ExecContext(ctx, "RENAME TABLE "+strings.Join(renames, ", ")); err != nil {
		dropTemps()
		return nil, fmt.Errorf("swap restored tables in: %w", err)
	}
	log.Debug("database restore swapped", "tables", len(tables))

	// The restore has happened; what follows only tidies and recreates.
	for _, n := range olds {
		if _, err := conn.ExecContext(ctx, "DROP TABLE IF EXISTS "+quoteIdent(n)); err != nil {
			rep.Warnings = append(rep.Warnings, fmt.Sprintf("drop replaced table %s: %v (the next restore drops it)", n, err))
		}
	}
	for i, t := range tables {
		for _, fk := range foreignKeys[i] {
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

// cleanupLeftovers drops the temporary tables of interrupted restores.
func cleanupLeftovers(ctx context.Context, q querier) error {
	names, err := baseTables(ctx, q)
	if err != nil {
		return err
	}
	for n := range names {
		if strings.HasPrefix(n, tmpPrefix) || strings.HasPrefix(n, oldPrefix) {
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
}

// load loads every segment into its temporary table on parallel
// connections, autocommitting each INSERT. A table's first segment goes in
// alone: MariaDB (10.6+) takes a table lock for an INSERT into an empty
// table with unique and foreign key checks off, and concurrent first
// INSERTs would deadlock. (Loading a whole table in one transaction to use
// that bulk path measured 2.5× slower than autocommit here.)
func load(ctx context.Context, db *sql.DB, st Store, tables []*TableManifest, tmpNames []string, parallel int) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs := make(chan loadJob)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
		cancel()
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
				if err := loadSegment(ctx, conn, st, j); err != nil {
					fail(err)
					continue
				}
				if j.first {
					close(j.ready)
				}
			}
		}()
	}
	// Every table's first segment first, biggest tables first.
	var firsts, rest []loadJob
	for i, t := range tables {
		ready := make(chan struct{})
		for k, s := range t.Segments {
			j := loadJob{t, tmpNames[i], s, k == 0, ready}
			if k == 0 {
				firsts = append(firsts, j)
			} else {
				rest = append(rest, j)
			}
		}
	}
	slices.SortStableFunc(firsts, func(a, b loadJob) int { return cmpInt64(int64(len(b.table.Segments)), int64(len(a.table.Segments))) })
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
		return firstErr
	}
	return ctx.Err()
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

// loadSegment runs a segment's INSERT statements (one per line) against
// the temporary table.
func loadSegment(ctx context.Context, conn *sql.Conn, st Store, j loadJob) (err error) {
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := st.WriteContent(ctx, j.seg.Content, pw)
		pw.CloseWithError(err)
		done <- err
	}()
	defer func() {
		pr.CloseWithError(errors.New("load abandoned"))
		if werr := <-done; err == nil && werr != nil {
			err = fmt.Errorf("read segment of %s: %w", j.table.Name, werr)
		}
	}()
	from := []byte("INSERT INTO " + quoteIdent(j.table.Name) + " ")
	to := "INSERT INTO " + quoteIdent(j.tmp) + " "
	br := bufio.NewReaderSize(pr, 1<<20)
	var line []byte
	for {
		line = line[:0]
		for {
			chunk, rerr := br.ReadSlice('\n')
			line = append(line, chunk...)
			if rerr == bufio.ErrBufferFull {
				continue
			}
			if rerr == io.EOF {
				if len(bytes.TrimSpace(line)) > 0 {
					return fmt.Errorf("load %s: segment ends in the middle of a statement", j.table.Name)
				}
				return nil
			}
			if rerr != nil {
				return fmt.Errorf("read segment of %s: %w", j.table.Name, rerr)
			}
			break
		}
		if !bytes.HasPrefix(line, []byte("INSERT ")) {
			continue // comments and the session settings this session already has
		}
		if !bytes.HasPrefix(line, from) {
			return fmt.Errorf("load %s: segment holds a statement for another table", j.table.Name)
		}
		stmt := to + string(bytes.TrimRight(line[len(from):], ";\n"))
		if _, err := conn.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("load table %s: %w", j.table.Name, err)
		}
	}
}
