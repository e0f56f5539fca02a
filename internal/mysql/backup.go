package mysql

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/sitevault/sitevault/internal/repository"
)

// Defaults for BackupOptions.
const (
	DefaultSegmentSize   = 1 << 20
	DefaultStatementSize = 1 << 20
)

// BackupOptions tune a database backup.
type BackupOptions struct {
	// Prefix is the site's table prefix; only tables named with it are selected.
	Prefix string
	// Previous is the database tree of the previous backup of the site
	// (as returned by Backup); nil makes a full backup.
	Previous *repository.ID
	// SegmentSize is the target size of a segment's SQL; 0 means DefaultSegmentSize.
	SegmentSize int
	// StatementSize bounds an INSERT statement (it is also kept below the
	// server's max_allowed_packet); 0 means DefaultStatementSize.
	StatementSize int
	// Parallel is the number of connections reading the InnoDB tables,
	// all in one consistent snapshot (see snapshot): a full backup reads
	// tables, and key ranges of big tables, on them at once (see
	// parallelFull); an incremental one asks for segment checksums on
	// them. 0 means 2.
	Parallel int
	// Logger receives debug logs; nil discards them.
	Logger *slog.Logger
	// Hints name rows that changed since Previous, as the site's
	// connector reported them (see hint.go); they are hostile input,
	// validated against the selected tables, and a wrong or missing hint
	// costs time, never exactness.
	Hints []Hint

	// beforeTable, in tests, runs before each attempt to read a table.
	beforeTable func(table string, attempt int)
	// rangeRows, in tests, replaces the rows per key range of a full
	// backup (see parallelFull) and lets any table with more rows split.
	rangeRows int64
	// onRanges, in tests, learns into how many key ranges a full backup
	// cut a table it split.
	onRanges func(table string, ranges int)
}

// BackupReport says what a backup did.
type BackupReport struct {
	Tables   []TableReport
	Views    []string
	Skipped  []Skipped
	Warnings []string
	// Partial: a selected table could not be backed up (a row larger than
	// the server's max_allowed_packet) and is left out, named in Skipped
	// with what to do; every other table is in the backup, and a restore
	// of it leaves the live table alone (Manifest.LeftOut).
	Partial bool
	// BytesWritten is the SQL handed to the repository for new segments and
	// schemas (before deduplication and compression).
	BytesWritten int64
	// HintsIgnored says which of BackupOptions.Hints were ignored, and
	// why (at most a few notes).
	HintsIgnored []string
}

// TableReport says what a backup did with one table.
type TableReport struct {
	Name     string
	Rows     int64
	Segments int // segments in the backup
	Reused   int // previous segments referenced unchanged, without reading rows
	Reread   int // previous segments whose checksum changed and whose range was read again whole
	// Patched are previous segments whose checksum changed and that were
	// brought up to date row by row: only their changed rows were read,
	// and stored as a delta (see refresh). RowsChanged counts those rows.
	Patched     int
	RowsChanged int64
	// Scanned: the changes looked scattered over the table, so the row
	// hashes of every segment were read without asking for segment
	// checksums first (see incremental).
	Scanned bool
	// RowsHashed counts the rows whose key and hash were read to find the
	// changed rows of changed segments (by refresh, or by hints).
	RowsHashed int64
	// Hinted are the patched segments whose change the hints explained
	// (only the hinted rows were looked at); HintsMissed the changed
	// segments of a hinted table whose change they did not explain, which
	// were then looked at row by row as without hints.
	Hinted, HintsMissed int
	Written             int  // segments written by this backup
	Full                bool // read entirely (first backup or changed definition)
	Bytes               int64
	// Whole: the table has no primary or unique key over NOT NULL
	// columns; it was backed up whole, as one unordered run of rows cut
	// into segments by size, and reused only when the whole table's
	// checksum is unchanged. Note says so (NoteWhole).
	Whole bool
	Note  string
}

func (t *TableReport) addWritten(segs []*Segment) {
	t.Written += len(segs)
	for _, s := range segs {
		t.Bytes += s.Size
	}
}

// Segments returns the totals over all tables.
func (r *BackupReport) Segments() (total, reused, reread, written int) {
	for _, t := range r.Tables {
		total += t.Segments
		reused += t.Reused
		reread += t.Reread
		written += t.Written
	}
	return
}

// Patched returns the totals over all tables of the segments brought up to
// date row by row and of the rows read for them (see TableReport.Patched).
func (r *BackupReport) Patched() (segments int, rows int64) {
	for _, t := range r.Tables {
		segments += t.Patched
		rows += t.RowsChanged
	}
	return
}

type dumper struct {
	st        Store
	opts      BackupOptions
	stmtMax   int
	maxPacket int
	log       *slog.Logger
	hints     map[string]*tableHints
	// mu guards rep: tables are read on several connections at once.
	mu  sync.Mutex
	rep *BackupReport
}

// addTable records a table's report and its new bytes.
func (d *dumper) addTable(tr TableReport) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.rep.BytesWritten += tr.Bytes
	d.rep.Tables = append(d.rep.Tables, tr)
}

func (d *dumper) addBytes(n int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.rep.BytesWritten += n
}

func (d *dumper) skip(table, reason string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.rep.Skipped = append(d.rep.Skipped, Skipped{table, reason})
}

// Backup backs up the selected tables of the database cfg reaches (see
// Select) into st and returns the id of the database tree (see Manifest).
// With opts.Previous it re-reads only segments whose checksum changed. On
// error nothing is returned; blobs already saved are left for prune.
func Backup(ctx context.Context, cfg Config, st Store, opts BackupOptions) (repository.ID, *BackupReport, error) {
	if opts.SegmentSize <= 0 {
		opts.SegmentSize = DefaultSegmentSize
	}
	if opts.StatementSize <= 0 {
		opts.StatementSize = DefaultStatementSize
	}
	if opts.Parallel <= 0 {
		opts.Parallel = 2
	}
	d := &dumper{st: st, opts: opts, log: opts.Logger, rep: &BackupReport{}}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	var prev *Manifest
	if opts.Previous != nil {
		var err error
		if prev, err = LoadManifest(ctx, st, *opts.Previous); err != nil {
			return repository.ID{}, nil, fmt.Errorf("previous database backup: %w", err)
		}
	}
	db, err := connect(ctx, cfg)
	if err != nil {
		return repository.ID{}, nil, err
	}
	defer db.Close()
	conn, err := session(ctx, db)
	if err != nil {
		return repository.ID{}, nil, fmt.Errorf("database session: %w", err)
	}
	defer conn.Close()
	if err := conn.QueryRowContext(ctx, "SELECT @@max_allowed_packet").Scan(&d.maxPacket); err != nil {
		return repository.ID{}, nil, fmt.Errorf("read max_allowed_packet: %w", err)
	}
	d.stmtMax = min(opts.StatementSize, d.maxPacket-1024)

	tables, views, skipped, err := inventory(ctx, conn, opts.Prefix)
	if err != nil {
		return repository.ID{}, nil, err
	}
	d.rep.Skipped = skipped
	if prev != nil {
		d.hints, d.rep.HintsIgnored = prepareHints(tables, opts.Hints)
	}
	prevTable := func(name string) *TableManifest {
		if prev == nil {
			return nil
		}
		return prev.Table(name)
	}
	m := &Manifest{Whole: true}
	var tx, nontx []*tableInfo
	for _, t := range tables {
		if t.transactional() {
			tx = append(tx, t)
		} else {
			nontx = append(nontx, t)
		}
	}
	snap := &snapshot{db: db, conns: []*sql.Conn{conn}, log: d.log}
	for _, t := range tx {
		snap.tables = append(snap.tables, t.Name)
	}
	defer snap.close()
	if opts.Parallel > 1 && len(tx) > 0 {
		for i := 1; i < opts.Parallel; i++ {
			c, err := session(ctx, db)
			if err != nil {
				return repository.ID{}, nil, fmt.Errorf("database session: %w", err)
			}
			snap.conns = append(snap.conns, c)
		}
	}
	var sizes map[string]tableSize
	if prev == nil && len(tx) > 0 {
		// Estimates for cutting big tables, read before the snapshot
		// begins (like the inventory).
		if sizes, err = tableSizes(ctx, conn); err != nil {
			return repository.ID{}, nil, err
		}
	}
	if err := snap.begin(ctx); err != nil {
		return repository.ID{}, nil, fmt.Errorf("start consistent snapshot: %w", err)
	}
	if prev == nil {
		tms, left, err := d.parallelFull(ctx, snap, tx, sizes)
		if err != nil {
			return repository.ID{}, nil, err
		}
		m.Tables = append(m.Tables, tms...)
		m.LeftOut = append(m.LeftOut, left...)
	} else {
		// One table at a time; its segment checksums spread over the
		// snapshot's connections (see incremental).
		for _, t := range tx {
			tm, err := d.tableWithRetry(ctx, snap, t, prevTable(t.Name))
			if d.leaveOut(t, err) {
				m.LeftOut = append(m.LeftOut, t.Name)
				continue
			}
			if err != nil {
				return repository.ID{}, nil, err
			}
			if tm != nil {
				m.Tables = append(m.Tables, tm)
			}
		}
	}
	if err := snap.end(ctx); err != nil {
		return repository.ID{}, nil, fmt.Errorf("end snapshot: %w", err)
	}
	if len(nontx) > 0 {
		tms, left, err := d.nonTransactional(ctx, db, nontx, prevTable)
		if err != nil {
			return repository.ID{}, nil, err
		}
		m.Tables = append(m.Tables, tms...)
		m.LeftOut = append(m.LeftOut, left...)
	}
	for _, v := range views {
		create, err := showCreateView(ctx, conn, v)
		if err != nil {
			d.warn(fmt.Sprintf("view %s left out: %v", v, err))
			continue
		}
		m.Views = append(m.Views, View{Name: v, Create: create})
		d.rep.Views = append(d.rep.Views, v)
	}
	id, err := m.Save(ctx, st)
	if err != nil {
		return repository.ID{}, nil, fmt.Errorf("save database backup: %w", err)
	}
	return id, d.rep, nil
}

// ReasonRowTooLarge starts the skip reason of a table left out because a
// row does not fit in a statement below max_allowed_packet.
const ReasonRowTooLarge = "a row is larger than the server's max_allowed_packet"

// leaveOut reports whether err (from backing up t) leaves only t out of
// the backup instead of failing it: a row too large for
// max_allowed_packet. It records the table as skipped, with the setting
// to raise, and marks the backup partial.
func (d *dumper) leaveOut(t *tableInfo, err error) bool {
	var big *rowTooLargeError
	if !errors.As(err, &big) {
		return false
	}
	reason := fmt.Sprintf("%s (%d): the row with key %s needs %d bytes of SQL; raise max_allowed_packet on the database server (to at least %d) and back up again",
		ReasonRowTooLarge, d.maxPacket, big.key, big.size, (big.size+1024+(1<<20)-1)&^((1<<20)-1))
	d.skip(t.Name, reason)
	d.mu.Lock()
	d.rep.Partial = true
	d.mu.Unlock()
	d.warn(fmt.Sprintf("table %s left out: %s", t.Name, reason))
	return true
}

// rowTooLargeError is ErrRowTooLarge with the row's key and SQL size.
type rowTooLargeError struct {
	table, key string
	size       int
}

func (e *rowTooLargeError) Error() string {
	return fmt.Sprintf("table %s, row with key %s (%d bytes of SQL): %v", e.table, e.key, e.size, ErrRowTooLarge)
}

func (e *rowTooLargeError) Unwrap() error { return ErrRowTooLarge }

func (d *dumper) warn(msg string) {
	d.mu.Lock()
	d.rep.Warnings = append(d.rep.Warnings, msg)
	d.mu.Unlock()
	d.log.Warn("database backup", "warning", msg)
}

// snapshot is one or more connections reading the same consistent
// snapshot of the InnoDB tables. With several connections, a coordinating
// connection holds LOCK TABLES … READ on the tables while each connection
// starts its transaction WITH CONSISTENT SNAPSHOT: no write to those tables
// can be in flight or commit meanwhile, so all the snapshots see the same
// state. The lock lasts milliseconds (its wait is capped at 2 s, during
// which writers queue behind it) and needs only the LOCK TABLES
// privilege (FLUSH TABLES WITH READ LOCK would need RELOAD); if it is
// refused or times out, the backup reads on one connection.
type snapshot struct {
	db     *sql.DB
	conns  []*sql.Conn
	tables []string
	log    *slog.Logger
}

func startSnapshot(ctx context.Context, c *sql.Conn) error {
	if _, err := c.ExecContext(ctx, "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ"); err != nil {
		return err
	}
	_, err := c.ExecContext(ctx, "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
	return err
}

// begin starts (or restarts) the snapshot on every connection.
func (s *snapshot) begin(ctx context.Context) error {
	if len(s.conns) > 1 {
		if err := s.coordinate(ctx); err == nil {
			return nil
		} else if ctx.Err() != nil {
			return err
		} else {
			s.log.Debug("database backup reads on one connection", "reason", err)
			for _, c := range s.conns[1:] {
				c.Close()
			}
			s.conns = s.conns[:1]
		}
	}
	return startSnapshot(ctx, s.conns[0])
}

func (s *snapshot) coordinate(ctx context.Context) error {
	lc, err := session(ctx, s.db, "SET SESSION lock_wait_timeout = 2")
	if err != nil {
		return err
	}
	defer lc.Close()
	var locks []string
	for _, t := range s.tables {
		locks = append(locks, quoteIdent(t)+" READ")
	}
	if _, err := lc.ExecContext(ctx, "LOCK TABLES "+strings.Join(locks, ", ")); err != nil {
		return err
	}
	defer lc.ExecContext(context.WithoutCancel(ctx), "UNLOCK TABLES")
	for _, c := range s.conns {
		if err := startSnapshot(ctx, c); err != nil {
			return err
		}
	}
	return nil
}

func (s *snapshot) end(ctx context.Context) error {
	for _, c := range s.conns {
		if _, err := c.ExecContext(ctx, "COMMIT"); err != nil {
			return err
		}
	}
	return nil
}

func (s *snapshot) queriers() []querier {
	q := make([]querier, len(s.conns))
	for i, c := range s.conns {
		q[i] = c
	}
	return q
}

// close releases the extra connections (the first belongs to the caller).
func (s *snapshot) close() {
	for _, c := range s.conns[1:] {
		c.Close()
	}
}

// tableWithRetry backs up an InnoDB table in the open snapshot. If its
// definition changed since the snapshot began (error 1412), it takes a new
// snapshot and reads the table once more.
func (d *dumper) tableWithRetry(ctx context.Context, snap *snapshot, t *tableInfo, prev *TableManifest) (*TableManifest, error) {
	return d.tableAttempts(ctx, snap, t, prev, 0)
}

// tableAttempts reads t from attempt on (0 first, 1 the last, in a
// snapshot renewed after a definition change).
func (d *dumper) tableAttempts(ctx context.Context, snap *snapshot, t *tableInfo, prev *TableManifest, attempt int) (*TableManifest, error) {
	for ; ; attempt++ {
		if d.opts.beforeTable != nil {
			d.opts.beforeTable(t.Name, attempt)
		}
		tm, err := d.table(ctx, snap.queriers(), t, prev)
		if err == nil {
			return tm, nil
		}
		if d.dropped(t, err) {
			return nil, nil
		}
		if !definitionChanged(err) {
			return nil, err
		}
		if attempt == 1 {
			return nil, fmt.Errorf("back up table %s: %w", t.Name, ErrDefinitionChanged)
		}
		if t, err = d.renew(ctx, snap, t); t == nil || err != nil {
			return nil, err
		}
	}
}

// definitionChanged reports whether err, from reading a table, calls for
// reading it again in a new snapshot: its definition changed (1412) or a
// column went away (1054) since the snapshot began.
func definitionChanged(err error) bool {
	switch errNumber(err) {
	case 1412, 1054: // ER_TABLE_DEF_CHANGED; a column gone since the inventory
		return true
	}
	return false
}

// dropped reports whether err says that t was dropped since the
// inventory (1146); it records the table as skipped.
func (d *dumper) dropped(t *tableInfo, err error) bool {
	if errNumber(err) != 1146 {
		return false
	}
	d.skip(t.Name, "dropped during the backup")
	return true
}

// renew warns that t changed definition, restarts the snapshot and
// returns t as the new snapshot's inventory has it; nil (recorded as
// skipped) when it was dropped or lost its key meanwhile.
func (d *dumper) renew(ctx context.Context, snap *snapshot, t *tableInfo) (*tableInfo, error) {
	d.warn(fmt.Sprintf("table %s changed definition during the backup; read again in a new snapshot", t.Name))
	if err := snap.begin(ctx); err != nil {
		return nil, fmt.Errorf("restart snapshot: %w", err)
	}
	tables, _, _, err := inventory(ctx, snap.conns[0], d.opts.Prefix)
	if err != nil {
		return nil, err
	}
	for _, nt := range tables {
		if nt.Name == t.Name {
			return nt, nil
		}
	}
	d.skip(t.Name, "dropped or lost its key during the backup")
	return nil, nil
}

// nonTransactional backs up MyISAM, Aria… tables on a second connection
// under LOCK TABLES … READ, or as they are when locking is not allowed.
func (d *dumper) nonTransactional(ctx context.Context, db *sql.DB, tables []*tableInfo, prev func(string) *TableManifest) (out []*TableManifest, left []string, err error) {
	conn, err := session(ctx, db)
	if err != nil {
		return nil, nil, fmt.Errorf("database session: %w", err)
	}
	defer conn.Close()
	var locks []string
	for _, t := range tables {
		locks = append(locks, quoteIdent(t.Name)+" READ")
	}
	locked := true
	if _, err := conn.ExecContext(ctx, "LOCK TABLES "+strings.Join(locks, ", ")); err != nil {
		switch errNumber(err) {
		case 1044, 1142, 1227:
			locked = false
			for _, t := range tables {
				d.warn(fmt.Sprintf("table %s (%s) read without a lock (the database user may not LOCK TABLES): rows changed meanwhile may be inconsistent", t.Name, t.Engine))
			}
		default:
			return nil, nil, fmt.Errorf("lock non-transactional tables: %w", err)
		}
	}
	for _, t := range tables {
		if d.opts.beforeTable != nil {
			d.opts.beforeTable(t.Name, 0)
		}
		tm, err := d.table(ctx, []querier{conn}, t, prev(t.Name))
		if d.leaveOut(t, err) {
			left = append(left, t.Name)
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		out = append(out, tm)
	}
	if locked {
		if _, err := conn.ExecContext(ctx, "UNLOCK TABLES"); err != nil {
			return nil, nil, fmt.Errorf("unlock tables: %w", err)
		}
	}
	return out, left, nil
}

// tableHead reads a table's definition and triggers, saves its schema
// and returns its manifest without segments.
func (d *dumper) tableHead(ctx context.Context, q querier, t *tableInfo) (*TableManifest, error) {
	create, err := showCreateTable(ctx, q, t.Name)
	if err != nil {
		return nil, fmt.Errorf("back up table %s: %w", t.Name, err)
	}
	triggers, err := triggersOf(ctx, q, t.Name)
	if err != nil {
		return nil, fmt.Errorf("back up table %s: %w", t.Name, err)
	}
	if t.Versioned {
		t.withPeriod(create)
	}
	tm := &TableManifest{Name: t.Name, Engine: t.Engine, Create: create, Triggers: triggers,
		Key: t.keyNames(), Definition: definitionHash(create, t), Versioned: t.Versioned}
	for _, i := range t.dataColumns() {
		tm.Columns = append(tm.Columns, t.Columns[i].Name)
	}
	var schema strings.Builder
	schema.WriteString(schemaHeader)
	schema.WriteString(create + ";\n")
	if len(triggers) > 0 {
		schema.WriteString("DELIMITER ;;\n")
		for _, tr := range triggers {
			schema.WriteString(tr + ";;\n")
		}
		schema.WriteString("DELIMITER ;\n")
	}
	schema.WriteString(schemaFooter)
	ids, size, err := d.st.SaveStream(ctx, strings.NewReader(schema.String()))
	if err != nil {
		return nil, fmt.Errorf("save schema of %s: %w", t.Name, err)
	}
	d.addBytes(size)
	tm.Schema = &repository.Node{Size: size, Content: ids}
	return tm, nil
}

// table backs up one table: schema, then segments, reusing the previous
// backup's unchanged segments when the definition is the same.
func (d *dumper) table(ctx context.Context, qs []querier, t *tableInfo, prev *TableManifest) (*TableManifest, error) {
	q := qs[0]
	tm, err := d.tableHead(ctx, q, t)
	if err != nil {
		return nil, err
	}
	tr := TableReport{Name: t.Name}
	if t.Versioned {
		tr.Whole, tr.Note = true, NoteVersioned
		if err := d.wholeTable(ctx, q, t, prev, tm, &tr); err != nil {
			return nil, err
		}
	} else if t.whole() {
		tr.Whole, tr.Note = true, NoteWhole
		if err := d.wholeTable(ctx, q, t, prev, tm, &tr); err != nil {
			return nil, err
		}
	} else if prev != nil && prev.Definition == tm.Definition && len(prev.Key) > 0 {
		if err := d.incremental(ctx, qs, t, prev, tm, &tr); err != nil {
			return nil, err
		}
	} else {
		tr.Full = true
		segs, err := d.dump(ctx, q, t, nil, nil)
		if err != nil {
			return nil, err
		}
		tm.Segments = segs
		tr.addWritten(segs)
	}
	tr.Segments = len(tm.Segments)
	tr.Rows = tm.Rows()
	d.addTable(tr)
	return tm, nil
}

// wholeTable backs up a table without a key: all its rows, in the order
// the server reads them, as segments of about SegmentSize without key
// bounds. When the previous backup holds the table with the same
// definition and the table's checksum equals the previous segments'
// combined one, those segments are reused without reading rows.
func (d *dumper) wholeTable(ctx context.Context, q querier, t *tableInfo, prev *TableManifest, tm *TableManifest, tr *TableReport) error {
	if prev != nil && prev.Definition == tm.Definition && len(prev.Key) == 0 {
		if want, ok := tableChecksum(prev); ok {
			var got string
			if err := q.QueryRowContext(ctx, checksumQuery(t, nil, nil)).Scan(&got); err != nil {
				return fmt.Errorf("checksum table %s: %w", t.Name, err)
			}
			if got == want {
				tm.Segments = prev.Segments
				tr.Reused = len(prev.Segments)
				return nil
			}
		}
	}
	tr.Full = true
	segs, err := d.dump(ctx, q, t, nil, nil)
	if err != nil {
		return err
	}
	tm.Segments = segs
	tr.addWritten(segs)
	return nil
}

// dump reads the rows with keys in (lower, upper] in key order and writes
// them as segments of about SegmentSize bytes.
func (d *dumper) dump(ctx context.Context, q querier, t *tableInfo, lower, upper [][]byte) ([]*Segment, error) {
	list, _, _ := selectList(t)
	query := "SELECT " + list + " FROM " + t.from()
	if !t.whole() {
		query += " WHERE " + rangeWhere(t, lower, upper) + " ORDER BY " + orderBy(t)
	}
	sk := d.newSink(ctx, t, true)
	if err := sk.read(q, query); err != nil {
		sk.abort(err)
		return nil, err
	}
	return sk.close()
}

// sink writes rows read from the server as segments (split: cut by
// SegmentSize) or as one stream (a delta), with their row index when the
// table has a key.
type sink struct {
	d     *dumper
	ctx   context.Context
	t     *tableInfo
	split bool
	head  string
	cols  []int
	keyAt []int
	vals  []sql.RawBytes
	ptrs  []any
	row   []byte
	key   [][]byte
	rkey  []byte
	w     *segWriter
	idx   *rowIndex
	segs  []*Segment
	// drops go in the index of the (one) stream a delta sink writes.
	drops []rowRef
}

// rows is the number of rows added so far.
func (sk *sink) rows() int64 {
	var n int64
	for _, s := range sk.segs {
		n += s.Rows
	}
	if sk.w != nil {
		n += sk.w.seg.Rows
	}
	return n
}

func (d *dumper) newSink(ctx context.Context, t *tableInfo, split bool) *sink {
	_, cols, keyAt := selectList(t)
	n := len(cols) + 1
	for _, p := range keyAt {
		n = max(n, p+2)
	}
	sk := &sink{d: d, ctx: ctx, t: t, split: split, head: insertHead(t.Name, t), cols: cols, keyAt: keyAt,
		vals: make([]sql.RawBytes, n), ptrs: make([]any, n), key: make([][]byte, len(keyAt))}
	for i := range sk.vals {
		sk.ptrs[i] = &sk.vals[i]
	}
	return sk
}

// read runs a query returning selectList's columns and adds its rows.
func (sk *sink) read(q querier, query string) error {
	t := sk.t
	rows, err := q.QueryContext(sk.ctx, query)
	if err != nil {
		return fmt.Errorf("read table %s: %w", t.Name, err)
	}
	defer rows.Close()
	if rc, _ := rows.Columns(); len(rc) != len(sk.vals) {
		return fmt.Errorf("read table %s: %d columns, want %d", t.Name, len(rc), len(sk.vals))
	}
	for rows.Next() {
		if err := rows.Scan(sk.ptrs...); err != nil {
			return fmt.Errorf("read table %s: %w", t.Name, err)
		}
		if err := sk.add(); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read table %s: %w", t.Name, err)
	}
	return nil
}

// add writes the row in sk.vals.
func (sk *sink) add() error {
	d, t, vals := sk.d, sk.t, sk.vals
	nvals := len(vals)
	sk.row = encodeRow(sk.row[:0], t, sk.cols, vals, false)
	hash, ok := parseUint32(vals[nvals-1])
	if !ok {
		return fmt.Errorf("read table %s: bad row hash %q", t.Name, vals[nvals-1])
	}
	for i, p := range sk.keyAt {
		sk.key[i] = append(sk.key[i][:0], vals[p]...)
	}
	if sk.w == nil {
		sk.w = d.startSegment(sk.ctx, sk.head)
		sk.w.seg.First = cloneKey(sk.key)
		if !t.whole() {
			sk.idx = &rowIndex{}
		}
	}
	w := sk.w
	if len(sk.head)+len(sk.row)+2 > d.maxPacket-1024 {
		sk.row = encodeRow(sk.row[:0], t, sk.cols, vals, true)
	}
	var parts []string
	if len(sk.head)+len(sk.row)+2 > d.maxPacket-1024 {
		size := len(sk.head) + len(sk.row) + 2
		sk.row, parts = d.splitRow(sk.row[:0], t, sk.cols, vals, sk.keyAt, len(sk.head))
		if parts == nil {
			return &rowTooLargeError{table: t.Name, key: keyText(sk.key), size: size}
		}
	}
	if err := w.add(sk.row, d.stmtMax); err != nil {
		return fmt.Errorf("save table %s: %w", t.Name, err)
	}
	for _, p := range parts {
		w.line(p)
		w.seg.Parts = true
	}
	w.seg.Rows++
	w.xor ^= hash
	if sk.idx != nil {
		sk.rkey = appendRowKey(sk.rkey[:0], sk.key)
		sk.idx.add(sk.rkey, hash)
	}
	if sk.split && w.size >= int64(d.opts.SegmentSize) {
		return sk.finish()
	}
	return nil
}

// finish ends the open segment.
func (sk *sink) finish() error {
	w := sk.w
	sk.w = nil
	w.seg.Last = cloneKey(sk.key)
	s, err := w.finish()
	if err == nil && sk.idx != nil {
		sk.idx.drops = sk.drops
		s.Index, s.IndexSize, err = saveIndex(sk.ctx, sk.d.st, sk.idx)
	}
	sk.idx = nil
	if err != nil {
		return fmt.Errorf("save table %s: %w", sk.t.Name, err)
	}
	sk.segs = append(sk.segs, s)
	return nil
}

// close ends the open segment and returns the segments written.
func (sk *sink) close() ([]*Segment, error) {
	if sk.w != nil {
		if err := sk.finish(); err != nil {
			return nil, err
		}
	}
	return sk.segs, nil
}

// abort drops the open segment after an error.
func (sk *sink) abort(err error) {
	if sk.w != nil {
		sk.w.abort(err)
		sk.w = nil
	}
}

// splitRow writes a row too large for one statement below
// max_allowed_packet as a row whose largest values are empty, and
// statements that append those values in parts:
// UPDATE `t` SET `c` = CONCAT(`c`, 0x…) WHERE <key>, one per line, each
// below the statement size. It returns nil parts when that cannot work: a
// table without a key (or system-versioned, where an UPDATE adds
// history), or a single value larger than max_allowed_packet (the
// server's CONCAT cannot build it).
func (d *dumper) splitRow(row []byte, t *tableInfo, cols []int, vals []sql.RawBytes, keyAt []int, headLen int) ([]byte, []string) {
	if t.whole() {
		return row, nil
	}
	limit := d.maxPacket - 1024
	// Empty the largest values until the row fits.
	order := make([]int, len(cols))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return len(vals[order[a]]) > len(vals[order[b]]) })
	emptied := map[int]bool{}
	encode := func() []byte {
		r := append(row[:0], '(')
		for i, ci := range cols {
			if i > 0 {
				r = append(r, ',')
			}
			if emptied[i] {
				r = append(r, "''"...)
				continue
			}
			r = appendValue(r, &t.Columns[ci], vals[i], true)
		}
		return append(r, ')')
	}
	for _, i := range order {
		c := &t.Columns[cols[i]]
		if vals[i] == nil || (c.Kind != kindString && c.Kind != kindBinary) || len(vals[i]) > limit {
			continue
		}
		emptied[i] = true
		if row = encode(); headLen+len(row)+2 <= limit {
			break
		}
	}
	if len(emptied) == 0 || headLen+len(row)+2 > limit {
		return row, nil
	}
	var where []string
	for k, ci := range t.Key {
		where = append(where, quoteIdent(t.Columns[ci].Name)+" = "+keyLiteral(&t.Columns[ci], vals[keyAt[k]]))
	}
	tail := " WHERE " + strings.Join(where, " AND ")
	var parts []string
	for _, i := range order {
		if !emptied[i] {
			continue
		}
		name := quoteIdent(t.Columns[cols[i]].Name)
		head := "UPDATE " + quoteIdent(t.Name) + " SET " + name + " = CONCAT(" + name + ", 0x"
		chunk := (min(d.stmtMax, limit) - len(head) - len(tail) - 16) / 2
		if chunk < 1024 {
			return row, nil
		}
		v := vals[i]
		for off := 0; off < len(v); off += chunk {
			var b strings.Builder
			b.Grow(len(head) + 2*chunk + len(tail) + 3)
			b.WriteString(head)
			for _, x := range v[off:min(len(v), off+chunk)] {
				b.WriteByte(hexDigits[x>>4])
				b.WriteByte(hexDigits[x&15])
			}
			b.WriteString(")" + tail + ";\n")
			parts = append(parts, b.String())
		}
	}
	return row, parts
}

// encodeRow appends a row as "(v1,v2,…)".
func encodeRow(row []byte, t *tableInfo, cols []int, vals []sql.RawBytes, compact bool) []byte {
	row = append(row, '(')
	for i, ci := range cols {
		if i > 0 {
			row = append(row, ',')
		}
		row = appendValue(row, &t.Columns[ci], vals[i], compact)
	}
	return append(row, ')')
}

func cloneKey(k [][]byte) [][]byte {
	c := make([][]byte, len(k))
	for i, v := range k {
		c[i] = append([]byte{}, v...)
	}
	return c
}

// parseUint32 parses the decimal row hash without allocating.
func parseUint32(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 10 {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	return n, n <= 0xFFFFFFFF
}

// keyText shows a key in an error message.
func keyText(key [][]byte) string {
	var s []string
	for _, v := range key {
		if len(v) > 40 {
			v = v[:40]
		}
		s = append(s, strconv.Quote(string(v)))
	}
	return "(" + strings.Join(s, ", ") + ")"
}

// segWriter streams one segment's SQL into the store.
type segWriter struct {
	pw      *io.PipeWriter
	bw      *bufio.Writer
	done    chan error
	head    string
	stmtLen int
	size    int64
	xor     uint64
	seg     *Segment
}

func (d *dumper) startSegment(ctx context.Context, head string) *segWriter {
	pr, pw := io.Pipe()
	w := &segWriter{pw: pw, bw: bufio.NewWriterSize(pw, 256<<10), done: make(chan error, 1), head: head, seg: &Segment{}}
	go func() {
		ids, size, err := d.st.SaveStream(ctx, pr)
		pr.CloseWithError(err)
		w.seg.Content, w.seg.Size = ids, size
		w.done <- err
	}()
	w.write(segmentHeader)
	return w
}

func (w *segWriter) write(s string) {
	n, _ := w.bw.WriteString(s)
	w.size += int64(n)
}

// line ends the open INSERT, if any, and writes a whole statement line.
func (w *segWriter) line(stmt string) {
	if w.stmtLen > 0 {
		w.write(";\n")
		w.stmtLen = 0
	}
	w.write(stmt)
}

// add appends a row to the open INSERT, or ends it and starts another when
// the row would take it past stmtMax.
func (w *segWriter) add(row []byte, stmtMax int) error {
	if w.stmtLen > 0 && w.stmtLen+1+len(row)+2 > stmtMax {
		w.write(";\n")
		w.stmtLen = 0
	}
	if w.stmtLen == 0 {
		w.write(w.head)
		w.stmtLen = len(w.head)
	} else {
		w.write(",")
		w.stmtLen++
	}
	n, err := w.bw.Write(row)
	w.size += int64(n)
	w.stmtLen += n
	return err
}

func (w *segWriter) finish() (*Segment, error) {
	if w.stmtLen > 0 {
		w.write(";\n")
	}
	w.write(segmentFooter)
	if err := w.bw.Flush(); err != nil {
		w.pw.CloseWithError(err)
		<-w.done
		return nil, err
	}
	w.pw.Close()
	if err := <-w.done; err != nil {
		return nil, err
	}
	w.seg.Checksum = fmt.Sprintf("%d:%d", w.seg.Rows, w.xor)
	return w.seg, nil
}

func (w *segWriter) abort(err error) {
	if err == nil {
		err = errors.New("segment abandoned")
	}
	w.pw.CloseWithError(err)
	<-w.done
}
