package mysql

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Hinted incremental backups.
//
// The site's connector plugin sends, with each event, the rows the event
// changed (a post's ID in wp_posts, meta_ids or the post_id of wp_postmeta,
// an option's name in wp_options…). An incremental backup given those
// hints (BackupOptions.Hints) still asks the server for every segment's
// checksum (the safety net: a write that bypassed WordPress's hooks
// changes a checksum no hint explains), but for a changed segment it first
// reads only the hinted rows' keys and hashes, by index, instead of the
// keys and hashes of the whole range (refresh). The hints explain the
// change exactly when
//
//	new count = old count − hinted rows the segment held + hinted rows found now
//	new hash  = old hash ⊕ their stored hashes ⊕ the hashes read now
//
// (the segment checksum is a count and the XOR of row hashes, see
// checksumQuery). Then only the hinted rows that differ are read and
// stored as a delta, as refresh would have stored them. Otherwise (a hint
// wrong or missing, a row deleted that a column hint cannot name) the
// segment is brought up to date by refresh as without hints. A wrong hint
// therefore costs one indexed query; it never changes what is stored.
//
// Hints are hostile input (they come from a plugin on the site): a hint
// naming a table that is not selected or has no single-column key, a
// column the table lacks or one that is neither an integer nor text, a
// value that is not of the column's type, or a table with more than
// MaxHintValues values, is ignored (BackupReport.HintsIgnored says why);
// values reach SQL only as canonical integers or hex literals.

// Hint names rows of one table that changed since the previous backup.
type Hint struct {
	// Table is the table's full name (with the site's prefix).
	Table string
	// Column is "" when Values are values of the table's key (a
	// single-column primary or unique key); otherwise Values are values of
	// this column (wp_postmeta's post_id, wp_options's option_name), and
	// every row holding one of them is hinted.
	Column string
	Values []string
}

// Bounds on hints.
const (
	// MaxHintValues bounds the values hinted for one table: past it the
	// table's hints are ignored (reading that many rows by key costs about
	// what reading the changed segments' row hashes does).
	MaxHintValues = 2000
	// MaxHintTables bounds the tables hinted in one backup.
	MaxHintTables = 64
	// maxHintValueBytes bounds one text value.
	maxHintValueBytes = 1024
	// maxHints bounds the Hint values of one backup (the service sends
	// one per table and column).
	maxHints = MaxHintTables * 16
	// maxHintNotes bounds BackupReport.HintsIgnored.
	maxHintNotes = 20
)

// tableHints are a table's validated hints: SQL literals per column
// ("" for the key), sorted and without repeats.
type tableHints struct {
	cols map[string][]string
	keys [][]byte // the key hints' values, as the server writes them
	n    int
}

// where returns the condition that selects the hinted rows.
func (h *tableHints) where(t *tableInfo) string {
	var conds []string
	names := make([]string, 0, len(h.cols))
	for c := range h.cols {
		names = append(names, c)
	}
	slices.Sort(names)
	for _, c := range names {
		name := c
		if name == "" {
			name = t.Columns[t.Key[0]].Name
		}
		conds = append(conds, quoteIdent(name)+" IN ("+strings.Join(h.cols[c], ",")+")")
	}
	return "(" + strings.Join(conds, " OR ") + ")"
}

// prepareHints validates hints against the selected tables and returns
// them by table, with a note for each hint (or table) ignored.
func prepareHints(tables []*tableInfo, hints []Hint) (map[string]*tableHints, []string) {
	if len(hints) == 0 {
		return nil, nil
	}
	if len(hints) > maxHints {
		return nil, []string{fmt.Sprintf("hints ignored: %d of them, more than %d", len(hints), maxHints)}
	}
	byName := make(map[string]*tableInfo, len(tables))
	for _, t := range tables {
		byName[t.Name] = t
	}
	var notes []string
	note := func(format string, args ...any) {
		if len(notes) < maxHintNotes {
			notes = append(notes, fmt.Sprintf(format, args...))
		}
	}
	out := map[string]*tableHints{}
	refused := map[string]bool{}
	seen := map[string]map[string]bool{}
	for _, h := range hints {
		if refused[h.Table] {
			continue
		}
		t := byName[h.Table]
		switch {
		case t == nil:
			note("hint for %q ignored: not a table of the site's backup", clip(h.Table))
			continue
		case t.whole() || t.Versioned || len(t.Key) != 1:
			note("hint for %s ignored: the table has no single-column key", t.Name)
			continue
		}
		c := &t.Columns[t.Key[0]]
		if h.Column != "" {
			c = nil
			for i := range t.Columns {
				if t.Columns[i].Name == h.Column && !t.Columns[i].Generated {
					c = &t.Columns[i]
				}
			}
			if c == nil {
				note("hint for %s ignored: no column %q", t.Name, clip(h.Column))
				continue
			}
			if i := t.Key[0]; t.Columns[i].Name == h.Column {
				h.Column = "" // the key, named
			}
		}
		th := out[t.Name]
		if th == nil {
			th = &tableHints{cols: map[string][]string{}}
			out[t.Name] = th
			seen[t.Name] = map[string]bool{}
		}
		for _, v := range h.Values {
			if th.n > MaxHintValues {
				break // refused below; the rest need not be looked at
			}
			lit, ok := hintLiteral(c, v)
			if !ok {
				note("hint for %s ignored: %q is not a value of column %s (%s)", t.Name, clip(v), c.Name, c.DataType)
				continue
			}
			k := h.Column + "\x00" + lit
			if seen[t.Name][k] {
				continue
			}
			seen[t.Name][k] = true
			th.cols[h.Column] = append(th.cols[h.Column], lit)
			if h.Column == "" {
				th.keys = append(th.keys, []byte(v))
			}
			th.n++
		}
		if th.n > MaxHintValues {
			note("hints for %s ignored: more than %d values", t.Name, MaxHintValues)
			delete(out, t.Name)
			refused[t.Name] = true
		}
	}
	for name, th := range out {
		if th.n == 0 {
			delete(out, name)
		}
	}
	if len(out) > MaxHintTables {
		note("hints ignored: %d tables, more than %d", len(out), MaxHintTables)
		return nil, notes
	}
	for _, th := range out {
		for _, lits := range th.cols {
			slices.Sort(lits)
		}
	}
	return out, notes
}

// hintLiteral returns v as a SQL literal of column c's type, or false
// when v is not a value of it: integers must be written as the server
// writes them; text must be valid UTF-8 of at most maxHintValueBytes (it
// is written as a hex literal in the column's collation).
func hintLiteral(c *column, v string) (string, bool) {
	switch strings.ToLower(c.DataType) {
	case "tinyint", "smallint", "mediumint", "int", "integer", "bigint":
		if len(v) == 0 || len(v) > 20 {
			return "", false
		}
		if v[0] == '-' {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || strconv.FormatInt(n, 10) != v {
				return "", false
			}
			return v, true
		}
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || strconv.FormatUint(n, 10) != v {
			return "", false
		}
		return v, true
	case "char", "varchar", "tinytext", "text", "mediumtext", "longtext":
		if c.Kind != kindString || len(v) > maxHintValueBytes || !utf8.ValidString(v) {
			return "", false
		}
		return keyLiteral(c, []byte(v)), true
	}
	return "", false
}

// clip shortens a hostile name for a note.
func clip(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}

// hinted brings a changed segment up to date from hints (see above): it
// returns the segment with one more delta, or nil (and no error) when the
// hints do not explain the change (now is the segment's checksum read in
// this backup) and the segment must be refreshed. read is how many rows'
// keys and hashes it read.
func (d *dumper) hinted(ctx context.Context, q querier, t *tableInfo, h *tableHints, lower [][]byte, s *Segment, now string) (ns *Segment, read int64, err error) {
	if s.Index == nil || compactDue(s) {
		return nil, 0, nil
	}
	oldCount, oldXor, ok := parseChecksum(s.Checksum)
	if !ok {
		return nil, 0, nil
	}
	live, _, ok, err := segmentRows(ctx, d.st, s)
	if err != nil {
		return nil, 0, fmt.Errorf("back up table %s: %w", t.Name, err)
	}
	if !ok {
		return nil, 0, nil
	}
	query := "SELECT " + keyList(t) + ", " + rowHashExpr(t) + " FROM " + t.from() +
		" WHERE " + rangeWhere(t, lower, s.Last) + " AND " + h.where(t)
	rows, err := q.QueryContext(ctx, query)
	if err != nil {
		return nil, 0, fmt.Errorf("read table %s: %w", t.Name, err)
	}
	defer rows.Close()
	var keyVal, hashVal sql.RawBytes
	type found struct {
		key  [][]byte
		hash uint32
	}
	var (
		now0  = map[string]found{}
		limit = int(s.Rows/refreshMaxShare) + 16
	)
	for rows.Next() {
		if err := rows.Scan(&keyVal, &hashVal); err != nil {
			return nil, read, fmt.Errorf("read table %s: %w", t.Name, err)
		}
		read++
		hash, ok := parseUint32(hashVal)
		if !ok {
			return nil, read, fmt.Errorf("read table %s: bad row hash %q", t.Name, hashVal)
		}
		key := cloneKey([][]byte{keyVal})
		now0[string(appendRowKey(nil, key))] = found{key, uint32(hash)}
		if len(now0) > limit {
			return nil, read, nil
		}
	}
	if err := rows.Err(); err != nil {
		return nil, read, fmt.Errorf("read table %s: %w", t.Name, err)
	}
	rows.Close()

	// The hinted set: the rows found now and the hinted key values
	// (a key hint naming a row deleted since is found only in the index).
	var (
		count = oldCount
		xor   = oldXor
		fetch [][][]byte
		drops []rowRef
	)
	hintedOld := map[string]bool{}
	for _, v := range h.keys {
		hintedOld[string(appendRowKey(nil, [][]byte{v}))] = true
	}
	for rk := range now0 {
		hintedOld[rk] = true
	}
	for rk := range hintedOld {
		if lr, ok := live[rk]; ok {
			count--
			xor ^= uint64(lr.hash)
		}
	}
	for rk, f := range now0 {
		count++
		xor ^= uint64(f.hash)
		if lr, ok := live[rk]; ok {
			if lr.hash == f.hash {
				continue
			}
			drops = append(drops, lr.at)
		}
		fetch = append(fetch, f.key)
	}
	for rk := range hintedOld {
		if _, still := now0[rk]; still {
			continue
		}
		if lr, ok := live[rk]; ok {
			drops = append(drops, lr.at) // deleted since
		}
	}
	checksum := fmt.Sprintf("%d:%d", count, xor)
	if checksum != now || (len(fetch) == 0 && len(drops) == 0) {
		return nil, read, nil
	}
	slices.SortFunc(fetch, func(a, b [][]byte) int { return compareKeyText(a[0], b[0]) })
	ns, err = d.patch(ctx, q, t, s, fetch, drops, count, checksum)
	return ns, read, err
}

// parseChecksum reads a segment checksum "count:xor".
func parseChecksum(s string) (count, xor uint64, ok bool) {
	a, b, found := strings.Cut(s, ":")
	if !found {
		return 0, 0, false
	}
	count, err1 := strconv.ParseUint(a, 10, 64)
	xor, err2 := strconv.ParseUint(b, 10, 64)
	return count, xor, err1 == nil && err2 == nil
}

// compareKeyText orders key values as read: integers by value, anything
// else by bytes (the order of rows in a delta matters only to how a
// restore loads them).
func compareKeyText(a, b []byte) int {
	x, err1 := strconv.ParseInt(string(a), 10, 64)
	y, err2 := strconv.ParseInt(string(b), 10, 64)
	if err1 == nil && err2 == nil {
		return cmp.Compare(x, y)
	}
	return bytes.Compare(a, b)
}
