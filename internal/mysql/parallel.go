package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/big"
	"sort"
	"strings"
	"sync"
)

// A full backup reads the InnoDB tables on all the snapshot's connections
// at once, as mydumper does: each connection is a worker that takes jobs
// from one queue. A job is a whole table, or one key range of a big table.
// All the connections started their transactions under the same brief
// LOCK TABLES … READ (see snapshot), so whichever connection reads a row,
// it reads it as of the same moment.
//
// A big table (by information_schema's estimate) whose key is one integer
// column is cut into key ranges: [MIN, MAX] split evenly into about
// rangeBytes of rows each, the first range open below and the last open
// above, so that the ranges tile the key space and every row falls in
// exactly one. Each range is dumped into segments as a sequential read
// would; the table's segments are its ranges' segments in key order. A
// segment stands for the keys from the previous segment's Last to its own
// Last, and no row lies between a range's bound and the first key the
// range holds, so the manifest means what a sequential backup's means
// (only the cuts between segments differ).
const (
	// rangesPerWorker: a big table is cut into about this many ranges per
	// connection, so that the connections finish together.
	rangesPerWorker = 4
	// minRangeSegments: a range is at least this many segments' worth of
	// bytes (a smaller table is read whole, on one connection).
	minRangeSegments = 8
	// maxRanges caps the ranges of one table.
	maxRanges = 256
)

// tableSize is a table's size as information_schema estimates it (for
// InnoDB, from sampled statistics: a guide for cutting, never a count).
type tableSize struct {
	rows, bytes int64
}

// tableSizes returns the estimated size of every table of the database.
func tableSizes(ctx context.Context, q querier) (map[string]tableSize, error) {
	rows, err := q.QueryContext(ctx, `SELECT TABLE_NAME, IFNULL(TABLE_ROWS,0), IFNULL(DATA_LENGTH,0)
		FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE <> 'VIEW'`)
	if err != nil {
		return nil, fmt.Errorf("read table sizes: %w", err)
	}
	defer rows.Close()
	m := map[string]tableSize{}
	for rows.Next() {
		var name string
		var s tableSize
		if err := rows.Scan(&name, &s.rows, &s.bytes); err != nil {
			return nil, fmt.Errorf("read table sizes: %w", err)
		}
		m[name] = s
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read table sizes: %w", err)
	}
	return m, nil
}

// fullTable is one table of a parallel full backup and what its jobs made.
type fullTable struct {
	t    *tableInfo
	size tableSize
	// tm is the table's manifest: complete for a table read whole; for a
	// split one, its schema, the segments coming from ranges.
	tm     *TableManifest
	split  bool
	ranges [][]*Segment // segments of each key range, in key order

	mu  sync.Mutex
	err error // the first error of the table's jobs
}

func (ft *fullTable) fail(err error) {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	if ft.err == nil {
		ft.err = err
	}
}

func (ft *fullTable) failed() bool {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	return ft.err != nil
}

// fullJob reads a table (rangeAt < 0: its schema, then its rows whole or
// by queueing its ranges) or one key range of it, (lower, upper].
type fullJob struct {
	ft           *fullTable
	rangeAt      int
	lower, upper [][]byte
}

// jobQueue hands jobs to workers; a running job may queue more. next
// returns false once the queue is empty and no job runs.
type jobQueue struct {
	mu      sync.Mutex
	cond    *sync.Cond
	jobs    []fullJob
	running int
}

func newJobQueue(jobs []fullJob) *jobQueue {
	q := &jobQueue{jobs: jobs}
	q.cond = sync.NewCond(&q.mu)
	return q
}

// pushFront queues jobs ahead of the others: a big table's ranges go
// first, and the small tables fill in at the end.
func (q *jobQueue) pushFront(jobs []fullJob) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.jobs = append(jobs, q.jobs...)
	q.cond.Broadcast()
}

func (q *jobQueue) next() (fullJob, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.jobs) == 0 && q.running > 0 {
		q.cond.Wait()
	}
	if len(q.jobs) == 0 {
		return fullJob{}, false
	}
	j := q.jobs[0]
	q.jobs = q.jobs[1:]
	q.running++
	return j, true
}

func (q *jobQueue) done() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.running--
	q.cond.Broadcast()
}

// parallelFull backs up the InnoDB tables of a full backup in the open
// snapshot, on all its connections. It returns their manifests in the
// order of tables and the tables left out (see leaveOut). A table whose
// definition changed since the snapshot began is read again after the
// others, in a new snapshot (see tableAttempts); a table dropped meanwhile
// is skipped.
func (d *dumper) parallelFull(ctx context.Context, snap *snapshot, tables []*tableInfo, sizes map[string]tableSize) ([]*TableManifest, []string, error) {
	fts := make([]*fullTable, len(tables))
	jobs := make([]fullJob, len(tables))
	for i, t := range tables {
		fts[i] = &fullTable{t: t, size: sizes[t.Name]}
		jobs[i] = fullJob{ft: fts[i], rangeAt: -1}
	}
	// Biggest first: the long jobs start early, the short ones fill in.
	sort.SliceStable(jobs, func(a, b int) bool { return jobs[a].ft.size.bytes > jobs[b].ft.size.bytes })
	queue := newJobQueue(jobs)
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		fatalMu sync.Mutex
		fatal   error
	)
	workers := len(snap.conns)
	var wg sync.WaitGroup
	for _, c := range snap.conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				j, ok := queue.next()
				if !ok {
					return
				}
				if pctx.Err() == nil && !j.ft.failed() {
					if err := d.fullJob(pctx, c, j, workers, queue); err != nil {
						j.ft.fail(err)
						if !recoverable(err) {
							fatalMu.Lock()
							if fatal == nil {
								fatal = err
							}
							fatalMu.Unlock()
							cancel()
						}
					}
				}
				queue.done()
			}
		}()
	}
	wg.Wait()
	if fatal != nil {
		return nil, nil, fatal
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}

	tms := make([]*TableManifest, len(fts))
	var left []string
	for i, ft := range fts {
		err := ft.err
		switch {
		case err == nil:
			tms[i] = ft.manifest(d)
		case d.leaveOut(ft.t, err):
			left = append(left, ft.t.Name)
		case d.dropped(ft.t, err):
		case definitionChanged(err):
			nt, err := d.renew(ctx, snap, ft.t)
			if err != nil {
				return nil, nil, err
			}
			if nt == nil {
				continue
			}
			tm, err := d.tableAttempts(ctx, snap, nt, nil, 1)
			if d.leaveOut(nt, err) {
				left = append(left, nt.Name)
				continue
			}
			if err != nil {
				return nil, nil, err
			}
			tms[i] = tm
		default:
			return nil, nil, err
		}
	}
	out := tms[:0]
	for _, tm := range tms {
		if tm != nil {
			out = append(out, tm)
		}
	}
	// The report lists the tables in name order, as a sequential backup's.
	d.mu.Lock()
	sort.SliceStable(d.rep.Tables, func(a, b int) bool { return d.rep.Tables[a].Name < d.rep.Tables[b].Name })
	d.mu.Unlock()
	return out, left, nil
}

// recoverable reports whether err, from a job, leaves the rest of the
// backup going: the table is left out (a row too large), skipped
// (dropped), or read again later (a changed definition).
func recoverable(err error) bool {
	return errors.Is(err, ErrRowTooLarge) || errNumber(err) == 1146 || definitionChanged(err)
}

// fullJob runs one job on the connection c.
func (d *dumper) fullJob(ctx context.Context, c *sql.Conn, j fullJob, workers int, queue *jobQueue) error {
	ft, t := j.ft, j.ft.t
	if j.rangeAt >= 0 {
		segs, err := d.dump(ctx, c, t, j.lower, j.upper)
		if err != nil {
			return err
		}
		ft.mu.Lock()
		ft.ranges[j.rangeAt] = segs
		ft.mu.Unlock()
		return nil
	}
	if d.opts.beforeTable != nil {
		d.opts.beforeTable(t.Name, 0)
	}
	n := d.rangeCount(ft.size, workers)
	if n < 2 || !splittable(t) {
		tm, err := d.table(ctx, []querier{c}, t, nil)
		ft.tm = tm
		return err
	}
	tm, err := d.tableHead(ctx, c, t)
	if err != nil {
		return err
	}
	bounds, err := keyBounds(ctx, c, t, n)
	if err != nil {
		return err
	}
	ft.tm, ft.split = tm, true
	ft.ranges = make([][]*Segment, len(bounds)+1)
	d.log.Debug("database backup cuts a table into key ranges", "table", t.Name, "ranges", len(ft.ranges),
		"estimated_rows", ft.size.rows, "estimated_bytes", ft.size.bytes)
	if d.opts.onRanges != nil {
		d.opts.onRanges(t.Name, len(ft.ranges))
	}
	if len(bounds) == 0 {
		segs, err := d.dump(ctx, c, t, nil, nil)
		ft.ranges[0] = segs
		return err
	}
	jobs := make([]fullJob, len(ft.ranges))
	for i := range jobs {
		jobs[i] = fullJob{ft: ft, rangeAt: i}
		if i > 0 {
			jobs[i].lower = bounds[i-1]
		}
		if i < len(bounds) {
			jobs[i].upper = bounds[i]
		}
	}
	queue.pushFront(jobs)
	return nil
}

// manifest returns the table's manifest, its ranges' segments joined, and
// records its report.
func (ft *fullTable) manifest(d *dumper) *TableManifest {
	if !ft.split {
		return ft.tm
	}
	tm := ft.tm
	tr := TableReport{Name: tm.Name, Full: true}
	for _, segs := range ft.ranges {
		tm.Segments = append(tm.Segments, segs...)
		tr.addWritten(segs)
	}
	tr.Segments = len(tm.Segments)
	tr.Rows = tm.Rows()
	d.addTable(tr)
	return tm
}

// rangeCount returns into how many key ranges a table of size is cut on
// workers connections (below 2: read whole).
func (d *dumper) rangeCount(size tableSize, workers int) int {
	if workers < 2 && d.opts.rangeRows == 0 {
		return 1
	}
	var n int64
	if d.opts.rangeRows > 0 {
		n = (size.rows + d.opts.rangeRows - 1) / d.opts.rangeRows
	} else {
		per := max(int64(minRangeSegments)*int64(d.opts.SegmentSize), size.bytes/int64(rangesPerWorker*workers))
		n = (size.bytes + per - 1) / per
	}
	return int(min(n, maxRanges))
}

// splittable reports whether t's key is one integer column, whose
// [MIN, MAX] cuts evenly into ranges.
func splittable(t *tableInfo) bool {
	if len(t.Key) != 1 || t.Versioned {
		return false
	}
	switch strings.ToLower(t.Columns[t.Key[0]].DataType) {
	case "tinyint", "smallint", "mediumint", "int", "integer", "bigint":
		return true
	}
	return false
}

// keyBounds reads the key's MIN and MAX in the snapshot and returns up to
// n-1 increasing upper bounds that cut [MIN, MAX] into n ranges of about
// equal key span; none for an empty table or a span too narrow.
func keyBounds(ctx context.Context, q querier, t *tableInfo, n int) ([][][]byte, error) {
	k := quoteIdent(t.Columns[t.Key[0]].Name)
	var lo, hi sql.NullString
	if err := q.QueryRowContext(ctx, "SELECT MIN("+k+"), MAX("+k+") FROM "+t.from()).Scan(&lo, &hi); err != nil {
		return nil, fmt.Errorf("read key range of table %s: %w", t.Name, err)
	}
	if !lo.Valid || !hi.Valid {
		return nil, nil
	}
	first, ok1 := new(big.Int).SetString(lo.String, 10)
	last, ok2 := new(big.Int).SetString(hi.String, 10)
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("read key range of table %s: not integers: %q, %q", t.Name, lo.String, hi.String)
	}
	return splitSpan(first, last, n), nil
}

// splitSpan returns the upper bounds first + (last-first)·i/n for i in
// 1…n-1, each above the one before and below last: the ranges (·, b1],
// (b1, b2] … (bn-1, ·) then tile the key space.
func splitSpan(first, last *big.Int, n int) [][][]byte {
	span := new(big.Int).Sub(last, first)
	var bounds [][][]byte
	prev := new(big.Int).Sub(first, big.NewInt(1))
	for i := 1; i < n; i++ {
		b := new(big.Int).Mul(span, big.NewInt(int64(i)))
		b.Quo(b, big.NewInt(int64(n)))
		b.Add(b, first)
		if b.Cmp(prev) <= 0 || b.Cmp(last) >= 0 {
			continue
		}
		bounds = append(bounds, [][]byte{[]byte(b.String())})
		prev = b
	}
	return bounds
}
