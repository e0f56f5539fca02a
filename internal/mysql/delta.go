package mysql

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/sitevault/sitevault/internal/repository"
)

// Row-level incremental backups.
//
// A segment whose checksum changed since the previous backup is brought up
// to date row by row (refresh) instead of being read again whole: the
// server sends each row's key and hash for the segment's range (about 20
// bytes a row instead of the row), the backup compares them with the
// segment's row indexes (see rowIndex), reads only the rows that are new
// or changed, by key, and stores them as a delta: their SQL, and an index
// of their keys and hashes with the rows of the segment's earlier streams
// they supersede (changed or deleted). When changes are scattered over a
// table (WooCommerce stock meta, _edit_lock, transients) every segment
// changes, but each stores only its changed rows.
//
// A segment is read again whole, as a new base with no deltas, when:
//   - it has no row index (backed up before row indexes existed);
//   - more than a quarter of its rows changed (reading them by key would
//     cost more than reading the range);
//   - its deltas are due (compactDue): maxDeltas of them, or their stored
//     SQL and indexes past deltaShare of the base's size, a share scaled per
//     segment between 1/2 and 3/2 (by a hash of its upper bound) so that
//     the segments of a table that changes evenly are not all read again
//     in the same backup.
// Deltas cost a restore little: their rows are merged as the segment is
// read (SegmentSQL), and bound what it merges.

// refreshMaxShare: a segment whose changed rows pass this share of its rows
// is read again whole.
const refreshMaxShare = 4

// compactDue reports whether a segment's deltas should be folded into a
// new base (see above).
func compactDue(s *Segment) bool {
	if len(s.Deltas) >= maxDeltas {
		return true
	}
	var size int64
	for _, dl := range s.Deltas {
		size += dl.Size + dl.IndexSize
	}
	scale := 0.5 + float64(crc32.ChecksumIEEE([]byte(encodeKey(s.Last)))%1000)/1000
	return float64(size) > deltaShare*scale*float64(s.Size)
}

// incremental backs up a table whose previous backup prev has the same
// definition: each previous segment is reused when its rows are unchanged,
// brought up to date row by row (refresh), or read again whole; rows past
// the last one are read as new segments. The segments are spread over the
// snapshot's connections qs.
//
// Usually the server first gives each segment's checksum (no rows sent),
// and only the changed segments are looked at row by row. When the backup
// that made prev found most segments changed (Changed; changes scattered
// over the table), that pass is skipped: each segment's rows' keys and
// hashes are read directly, which tells both whether and what changed, in
// one pass over the table instead of two.
func (d *dumper) incremental(ctx context.Context, qs []querier, t *tableInfo, prev, tm *TableManifest, tr *TableReport) error {
	segs := prev.Segments
	hints := d.hints[t.Name]
	sums, err := d.probe(ctx, qs, t, prev, hints != nil)
	if err != nil {
		return err
	}
	tr.Scanned = slices.Contains(sums, "")
	const (
		reused = iota
		patched
		reread
	)
	var hashed, hinted, missed atomic.Int64
	type result struct {
		kind int
		segs []*Segment
	}
	res := make([]result, len(segs))
	var work []int
	for i, s := range segs {
		if sums[i] != "" && sums[i] == s.Checksum {
			res[i] = result{reused, []*Segment{s}}
		} else {
			work = append(work, i)
		}
	}
	err = eachOn(ctx, qs, len(work), func(q querier, w int) error {
		i := work[w]
		s := segs[i]
		var lower [][]byte
		if i > 0 {
			lower = segs[i-1].Last
		}
		if sums[i] == "" && (s.Index == nil || compactDue(s)) {
			var got string
			if err := q.QueryRowContext(ctx, checksumQuery(t, lower, s.Last)).Scan(&got); err != nil {
				return fmt.Errorf("checksum table %s: %w", t.Name, err)
			}
			if got == s.Checksum {
				res[i] = result{reused, []*Segment{s}}
				return nil
			}
		} else {
			if hints != nil && sums[i] != "" {
				ns, read, err := d.hinted(ctx, q, t, hints, lower, s, sums[i])
				hashed.Add(read)
				if err != nil {
					return err
				}
				if ns != nil {
					hinted.Add(1)
					res[i] = result{patched, []*Segment{ns}}
					return nil
				}
				missed.Add(1)
			}
			ns, read, err := d.refresh(ctx, q, t, lower, s)
			hashed.Add(read)
			if err != nil {
				return err
			}
			if ns == s {
				res[i] = result{reused, []*Segment{s}}
				return nil
			}
			if ns != nil {
				res[i] = result{patched, []*Segment{ns}}
				return nil
			}
		}
		out, err := d.dump(ctx, q, t, lower, s.Last)
		if err != nil {
			return err
		}
		res[i] = result{reread, out}
		return nil
	})
	tr.RowsHashed, tr.Hinted, tr.HintsMissed = hashed.Load(), int(hinted.Load()), int(missed.Load())
	if err != nil {
		return err
	}
	for _, r := range res {
		tm.Segments = append(tm.Segments, r.segs...)
		switch r.kind {
		case reused:
			tr.Reused++
		case patched:
			tr.Patched++
			dl := r.segs[0].Deltas[len(r.segs[0].Deltas)-1]
			tr.Bytes += dl.Size
			tr.RowsChanged += dl.Rows
		case reread:
			tr.Reread++
			tr.addWritten(r.segs)
		}
	}
	var last [][]byte // rows past the last segment's, or all for a table that was empty
	if len(segs) > 0 {
		last = segs[len(segs)-1].Last
	}
	tail, err := d.dump(ctx, qs[0], t, last, nil)
	if err != nil {
		return err
	}
	tm.Segments = append(tm.Segments, tail...)
	tr.addWritten(tail)
	tm.Changed = tr.Patched + tr.Reread
	return nil
}

// probe returns the checksums of the previous segments' ranges now, as
// far as the backup needs them ("" for those it does not ask for). For a
// table with hints (all, see hint.go) it asks for all of them. When
// the backup that made prev found most segments changed, it asks for
// none; otherwise it asks for those of 8 segments spread over the table
// first, and for none of the others when most of those changed: the
// changes are scattered, and reading the row hashes of every segment
// (refresh) costs one pass over the table where checksums and then row
// hashes cost two (see incremental).
func (d *dumper) probe(ctx context.Context, qs []querier, t *tableInfo, prev *TableManifest, all bool) ([]string, error) {
	segs := prev.Segments
	sums := make([]string, len(segs))
	if !all && len(segs) > 1 && prev.Changed*2 > len(segs) {
		return sums, nil
	}
	var ask []int
	if !all && len(segs) >= 32 {
		for k := range probeSegments {
			ask = append(ask, (2*k+1)*len(segs)/(2*probeSegments))
		}
	}
	check := func(ask []int) (changed int, err error) {
		err = eachOn(ctx, qs, len(ask), func(q querier, k int) error {
			i := ask[k]
			var lower [][]byte
			if i > 0 {
				lower = segs[i-1].Last
			}
			if err := q.QueryRowContext(ctx, checksumQuery(t, lower, segs[i].Last)).Scan(&sums[i]); err != nil {
				return fmt.Errorf("checksum table %s: %w", t.Name, err)
			}
			return nil
		})
		for _, i := range ask {
			if sums[i] != segs[i].Checksum {
				changed++
			}
		}
		return changed, err
	}
	if len(ask) > 0 {
		changed, err := check(ask)
		if err != nil {
			return nil, err
		}
		if changed*2 > len(ask) {
			return sums, nil
		}
	}
	var rest []int
	for i := range segs {
		if sums[i] == "" {
			rest = append(rest, i)
		}
	}
	_, err := check(rest)
	return sums, err
}

// probeSegments is how many segments probe asks about first.
const probeSegments = 8

// eachOn calls fn for 0 ≤ i < n, spread over the connections qs (one call
// at a time on each), and returns the first error, after which no new call
// starts.
func eachOn(ctx context.Context, qs []querier, n int, fn func(q querier, i int) error) error {
	var (
		next atomic.Int64
		wg   sync.WaitGroup
		errs = make([]error, len(qs))
	)
	for w, q := range qs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := fn(q, i); err != nil {
					errs[w] = err
					next.Store(int64(n))
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return ctx.Err()
}

// refresh brings a segment up to date row by row, reading the rows in
// (lower, s.Last] through q, and returns the segment with one more delta,
// or s itself when no row changed. It returns nil (and no error) when the
// segment is better read again whole (see above). read is how many rows'
// keys and hashes it read.
func (d *dumper) refresh(ctx context.Context, q querier, t *tableInfo, lower [][]byte, s *Segment) (_ *Segment, read int64, err error) {
	ns, err := d.refreshCounting(ctx, q, t, lower, s, &read)
	return ns, read, err
}

func (d *dumper) refreshCounting(ctx context.Context, q querier, t *tableInfo, lower [][]byte, s *Segment, read *int64) (*Segment, error) {
	if s.Index == nil || compactDue(s) {
		return nil, nil
	}
	live, _, ok, err := segmentRows(ctx, d.st, s)
	if err != nil {
		return nil, fmt.Errorf("back up table %s: %w", t.Name, err)
	}
	if !ok {
		return nil, nil
	}
	query := "SELECT " + keyList(t) + ", " + rowHashExpr(t) + " FROM " + t.from() + " WHERE " + rangeWhere(t, lower, s.Last)
	rows, err := q.QueryContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("read table %s: %w", t.Name, err)
	}
	defer rows.Close()
	nk := len(t.Key)
	vals := make([]sql.RawBytes, nk+1)
	ptrs := make([]any, nk+1)
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	var (
		fetch      [][][]byte
		drops      []rowRef
		count, xor uint64
		rk         []byte
		key        = make([][]byte, nk)
		limit      = int(s.Rows/refreshMaxShare) + 16
	)
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return nil, fmt.Errorf("read table %s: %w", t.Name, err)
		}
		hash, ok := parseUint32(vals[nk])
		if !ok {
			return nil, fmt.Errorf("read table %s: bad row hash %q", t.Name, vals[nk])
		}
		count++
		*read++
		xor ^= hash
		for i := range key {
			key[i] = vals[i]
		}
		rk = appendRowKey(rk[:0], key)
		if lr, found := live[string(rk)]; found {
			delete(live, string(rk))
			if uint64(lr.hash) == hash {
				continue
			}
			drops = append(drops, lr.at)
		}
		fetch = append(fetch, cloneKey(key))
		if len(fetch) > limit {
			return nil, nil
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read table %s: %w", t.Name, err)
	}
	rows.Close()
	for _, lr := range live {
		drops = append(drops, lr.at) // deleted since
	}
	checksum := fmt.Sprintf("%d:%d", count, xor)
	if len(fetch) == 0 && len(drops) == 0 {
		if checksum == s.Checksum {
			return s, nil // unchanged
		}
		return nil, nil // the index disagrees with the checksum: read it whole
	}
	return d.patch(ctx, q, t, s, fetch, drops, count, checksum)
}

// patch returns s with a new delta that adds the rows of the keys fetch
// (in key order) and drops the rows drops, and the count and checksum of
// the segment it then holds; nil (and no error) when the rows read are not
// the rows asked for (readDelta): the segment is then read whole.
func (d *dumper) patch(ctx context.Context, q querier, t *tableInfo, s *Segment, fetch [][][]byte, drops []rowRef, count uint64, checksum string) (*Segment, error) {
	slices.SortFunc(drops, func(a, b rowRef) int {
		return cmp.Or(cmp.Compare(a.stream, b.stream), cmp.Compare(a.row, b.row))
	})
	dl, err := d.readDelta(ctx, q, t, fetch, drops)
	if err != nil || dl == nil {
		return nil, err
	}
	ns := *s
	ns.Deltas = append(slices.Clip(s.Deltas), dl)
	ns.Rows = int64(count)
	ns.Checksum = checksum
	return &ns, nil
}

// readDelta reads the rows with the given keys, in batches, and stores
// them as a delta that also drops the given rows. It returns nil (and no
// error) when the rows read are not the rows asked for (a table changed
// under a backup that could not lock it): the segment is then read whole.
func (d *dumper) readDelta(ctx context.Context, q querier, t *tableInfo, keys [][][]byte, drops []rowRef) (*Delta, error) {
	list, _, _ := selectList(t)
	sk := d.newSink(ctx, t, false)
	sk.drops = drops
	for len(keys) > 0 {
		n, size := 0, 0
		for n < len(keys) && n < 1000 && size < d.stmtMax/2 {
			for _, v := range keys[n] {
				size += 2*len(v) + 32
			}
			n++
		}
		query := "SELECT " + list + " FROM " + t.from() + " WHERE " + keysWhere(t, keys[:n]) + " ORDER BY " + orderBy(t)
		if err := sk.read(q, query); err != nil {
			sk.abort(err)
			return nil, err
		}
		keys = keys[n:]
	}
	want := sk.rows()
	segs, err := sk.close()
	if err != nil {
		return nil, err
	}
	dl := &Delta{}
	switch len(segs) {
	case 0:
		x := &rowIndex{drops: drops}
		if dl.Index, dl.IndexSize, err = saveIndex(ctx, d.st, x); err != nil {
			return nil, fmt.Errorf("save table %s: %w", t.Name, err)
		}
	case 1:
		s := segs[0]
		dl.Rows, dl.Size, dl.Content, dl.Parts, dl.Index, dl.IndexSize = s.Rows, s.Size, s.Content, s.Parts, s.Index, s.IndexSize
	default:
		return nil, fmt.Errorf("save table %s: a delta was cut in %d segments", t.Name, len(segs))
	}
	if dl.Rows != want {
		return nil, nil
	}
	return dl, nil
}

// SegmentSQL writes a segment's SQL: its content as stored or, for a
// segment with deltas, the merged rows (the base's and each delta's rows
// less those a later delta drops) as one plain segment any mysql client
// loads into an existing table: the segment header, INSERT (and UPDATE
// parts) lines, the footer.
//
// The stored SQL is hostile input (a repository may come from an imported
// archive): a merged segment is rebuilt from INSERT lines for the table's
// own columns and UPDATE lines for the table only, each INSERT's rows
// checked as this package writes them; anything else fails with
// repository.ErrDamaged.
func SegmentSQL(ctx context.Context, st Store, t *TableManifest, s *Segment, w io.Writer) error {
	if len(s.Deltas) == 0 {
		return st.WriteContent(ctx, s.Content, w)
	}
	dead, err := droppedRows(ctx, st, s)
	if err != nil {
		return fmt.Errorf("segment of %s: %w", t.Name, err)
	}
	bw := bufio.NewWriterSize(w, 256<<10)
	bw.WriteString(segmentHeader)
	m := merger{w: bw, head: []byte(insertHeadNames(t.Name, t.Columns)), upd: []byte("UPDATE " + quoteIdent(t.Name) + " SET "), table: t.Name}
	for k := range dead {
		content := s.Content
		if k > 0 {
			content = s.Deltas[k-1].Content
		}
		m.dead, m.row, m.lastDead = dead[k], 0, false
		if err := m.stream(ctx, st, content); err != nil {
			return err
		}
		if m.row != len(dead[k]) {
			return fmt.Errorf("segment of %s: %d rows in a stream whose index lists %d: %w", t.Name, m.row, len(dead[k]), repository.ErrDamaged)
		}
	}
	bw.WriteString(segmentFooter)
	return bw.Flush()
}

// merger copies one stream's rows but the dead ones.
type merger struct {
	w         *bufio.Writer
	head, upd []byte
	table     string
	dead      []bool
	row       int
	lastDead  bool // the row before an UPDATE line was dropped
	kept      [][]byte
}

func (m *merger) stream(ctx context.Context, st Store, content []repository.ID) error {
	write := func(w io.Writer) error { return st.WriteContent(ctx, content, w) }
	return eachLine(m.table, write, func(line []byte) error {
		switch {
		case bytes.HasPrefix(line, m.head):
			return m.insert(bytes.TrimRight(line[len(m.head):], ";\n"))
		case bytes.HasPrefix(line, m.upd):
			if !m.lastDead {
				m.w.Write(line)
			}
		case bytes.HasPrefix(line, []byte("INSERT ")), bytes.HasPrefix(line, []byte("UPDATE ")):
			return fmt.Errorf("segment of %s holds a statement for another table or columns: %w", m.table, repository.ErrDamaged)
		}
		// Other lines (the stream's own header and footer) are left out:
		// the merged segment has one of each.
		return nil
	})
}

// eachLine calls fn with each line (newline included) of what write
// writes, read through a pipe as it is written; table names the segment's
// table in errors. Text after the last newline is a statement cut short
// (repository.ErrDamaged).
func eachLine(table string, write func(io.Writer) error, fn func(line []byte) error) (err error) {
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := write(pw)
		pw.CloseWithError(err)
		done <- err
	}()
	defer func() {
		pr.CloseWithError(errors.New("segment read abandoned"))
		if werr := <-done; err == nil && werr != nil {
			err = fmt.Errorf("read segment of %s: %w", table, werr)
		}
	}()
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
					return fmt.Errorf("segment of %s ends in the middle of a statement: %w", table, repository.ErrDamaged)
				}
				return nil
			}
			if rerr != nil {
				return fmt.Errorf("read segment of %s: %w", table, rerr)
			}
			break
		}
		if err := fn(line); err != nil {
			return err
		}
	}
}

// insert writes the VALUES of one INSERT line ("(…),(…)") less its dead rows.
func (m *merger) insert(values []byte) error {
	m.kept = m.kept[:0]
	err := splitRows(values, func(row []byte) {
		dead := m.row < len(m.dead) && m.dead[m.row]
		m.lastDead = dead
		m.row++
		if !dead {
			m.kept = append(m.kept, row)
		}
	})
	if err != nil {
		return fmt.Errorf("segment of %s: %v: %w", m.table, err, repository.ErrDamaged)
	}
	if len(m.kept) == 0 {
		return nil
	}
	m.w.Write(m.head)
	for i, r := range m.kept {
		if i > 0 {
			m.w.WriteByte(',')
		}
		m.w.Write(r)
	}
	_, err = m.w.WriteString(";\n")
	return err
}

// splitRows calls fn with each row "(…)" of an INSERT's VALUES as this
// package writes them: rows separated by commas, values that are quoted
// strings (with backslash escapes), b'…' bits, or runs of characters
// without quotes, commas or parentheses (numbers, 0x… hex, NULL).
func splitRows(s []byte, fn func(row []byte)) error {
	i := 0
	for {
		if i >= len(s) || s[i] != '(' {
			return fmt.Errorf("bad INSERT at byte %d", i)
		}
		start := i
		i++
	values:
		for {
			if i >= len(s) {
				return errors.New("bad INSERT: truncated")
			}
			switch c := s[i]; {
			case c == '\'' || (c == 'b' && i+1 < len(s) && s[i+1] == '\''):
				if c == 'b' {
					i++
				}
				j, err := skipQuoted(s, i+1)
				if err != nil {
					return err
				}
				i = j
			default:
				for i < len(s) && s[i] != ',' && s[i] != ')' && s[i] != '\'' && s[i] != '(' {
					i++
				}
			}
			if i >= len(s) {
				return errors.New("bad INSERT: truncated")
			}
			switch s[i] {
			case ',':
				i++
			case ')':
				i++
				break values
			default:
				return fmt.Errorf("bad INSERT at byte %d", i)
			}
		}
		fn(s[start:i])
		if i == len(s) {
			return nil
		}
		if s[i] != ',' {
			return fmt.Errorf("bad INSERT at byte %d", i)
		}
		i++
	}
}

// skipQuoted returns the index after the quoted literal whose body starts
// at s[i].
func skipQuoted(s []byte, i int) (int, error) {
	for i < len(s) {
		switch s[i] {
		case '\'':
			return i + 1, nil
		case '\\':
			i += 2
		default:
			i++
		}
	}
	return 0, errors.New("bad INSERT: unterminated string")
}

// hasParts reports whether a segment, or one of its deltas, holds UPDATE
// lines appending large values (see Segment.Parts).
func (s *Segment) hasParts() bool {
	if s.Parts {
		return true
	}
	for _, dl := range s.Deltas {
		if dl.Parts {
			return true
		}
	}
	return false
}
