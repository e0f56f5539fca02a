package mysql

import (
	"encoding/hex"
	"strings"
)

const hexDigits = "0123456789ABCDEF"

// appendValue appends v (raw bytes as the server sent them in a binary
// session; nil is NULL) as an SQL literal that loads back to the same value.
// Binary values are written as hex unless compact is set: then as escaped
// bytes, half the size, for rows whose hex would not fit in a statement.
func appendValue(b []byte, c *column, v []byte, compact bool) []byte {
	if v == nil {
		return append(b, "NULL"...)
	}
	switch c.Kind {
	case kindNumber, kindFloat, kindEnum:
		return append(b, v...)
	case kindBinary, kindNative:
		if compact {
			return appendQuoted(b, v)
		}
		if len(v) == 0 {
			return append(b, "''"...)
		}
		b = append(b, '0', 'x')
		for _, x := range v {
			b = append(b, hexDigits[x>>4], hexDigits[x&15])
		}
		return b
	case kindBit:
		b = append(b, "b'"...)
		for _, x := range v {
			for i := 7; i >= 0; i-- {
				b = append(b, '0'+(x>>uint(i))&1)
			}
		}
		return append(b, '\'')
	}
	return appendQuoted(b, v)
}

// appendQuoted appends v as a quoted string literal whose bytes are taken
// literally by a session with SET NAMES binary. The literal never holds a
// raw newline, so every statement fits on one line.
func appendQuoted(b, v []byte) []byte {
	b = append(b, '\'')
	start := 0
	for i, x := range v {
		if !needsEscape[x] {
			continue
		}
		b = append(b, v[start:i]...)
		start = i + 1
		switch x {
		case 0:
			b = append(b, '\\', '0')
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case 0x1a:
			b = append(b, '\\', 'Z')
		default: // backslash, quote
			b = append(b, '\\', x)
		}
	}
	b = append(b, v[start:]...)
	return append(b, '\'')
}

var needsEscape = [256]bool{0: true, '\n': true, '\r': true, '\\': true, '\'': true, 0x1a: true}

// keyLiteral writes a key value as a literal that compares with the column
// the way ORDER BY orders it: strings in the column's own collation.
func keyLiteral(c *column, v []byte) string {
	switch c.Kind {
	case kindNumber:
		return string(v)
	case kindTemporal:
		return string(appendQuoted(nil, v))
	case kindString:
		if c.Charset == "" || c.Charset == "binary" {
			return "X'" + hex.EncodeToString(v) + "'"
		}
		return "CONVERT(X'" + hex.EncodeToString(v) + "' USING " + c.Charset + ") COLLATE " + c.Collation
	}
	return "X'" + hex.EncodeToString(v) + "'"
}

// rangeWhere returns the condition for keys in (lower, upper]; nil bounds
// are open. It returns "1" for the whole table.
func rangeWhere(t *tableInfo, lower, upper [][]byte) string {
	var conds []string
	if lower != nil {
		conds = append(conds, boundCond(t, lower, ">"))
	}
	if upper != nil {
		conds = append(conds, boundCond(t, upper, "<="))
	}
	if len(conds) == 0 {
		return "1"
	}
	return strings.Join(conds, " AND ")
}

// boundCond expands a row comparison (k1,…,kn) op (v1,…,vn) for op ">" or
// "<=" into ORs of equalities, with a leading single-column bound the
// optimizer turns into a range scan.
func boundCond(t *tableInfo, vals [][]byte, op string) string {
	strict := "<"
	lead := "<="
	if op == ">" {
		strict, lead = ">", ">="
	}
	cols := make([]string, len(t.Key))
	lits := make([]string, len(t.Key))
	for i, ci := range t.Key {
		cols[i] = quoteIdent(t.Columns[ci].Name)
		lits[i] = keyLiteral(&t.Columns[ci], vals[i])
	}
	if len(cols) == 1 {
		return cols[0] + " " + op + " " + lits[0]
	}
	var ors []string
	for i := range cols {
		var ands []string
		for j := 0; j < i; j++ {
			ands = append(ands, cols[j]+" = "+lits[j])
		}
		o := strict
		if i == len(cols)-1 {
			o = op
		}
		ands = append(ands, cols[i]+" "+o+" "+lits[i])
		ors = append(ors, "("+strings.Join(ands, " AND ")+")")
	}
	return "(" + cols[0] + " " + lead + " " + lits[0] + " AND (" + strings.Join(ors, " OR ") + "))"
}

// orderBy returns the key's ORDER BY list.
func orderBy(t *tableInfo) string {
	var s []string
	for _, i := range t.Key {
		s = append(s, quoteIdent(t.Columns[i].Name))
	}
	return strings.Join(s, ", ")
}

// rowHashExpr is the per-row hash both the dump (per row) and the checksum
// query (aggregated) compute, so that they agree exactly: the CRC32 of the
// data columns joined by '#', each string-like column preceded by its
// length (N for NULL) so that no two different rows join alike, and each
// TEXT or BLOB column replaced by its own CRC32 so that the joined string
// stays small (CONCAT returns NULL past max_allowed_packet).
//
// CRC32 is fast on every MySQL and MariaDB version (MD5 costs 3× more
// server time) but linear: the XOR of the CRCs of two rows changed the same
// way (both amounts going from …8 to …7) cancels out. The outer CRC32 of the
// inner one's decimal text breaks that linearity for a few percent more
// time. With the row count and the XOR of the row hashes, a change goes
// unnoticed with odds of about 2^-32 per changed segment.
func rowHashExpr(t *tableInfo) string {
	var parts []string
	for _, i := range t.dataColumns() {
		c := &t.Columns[i]
		e := quoteIdent(c.Name)
		switch c.Kind {
		case kindFloat:
			parts = append(parts, "CAST("+e+" AS DOUBLE)")
		case kindNumber, kindTemporal:
			parts = append(parts, e)
		default:
			if strings.HasSuffix(c.DataType, "text") || strings.HasSuffix(c.DataType, "blob") || c.DataType == "json" {
				parts = append(parts, "IFNULL(LENGTH("+e+"),'N')", "CRC32("+e+")")
			} else {
				parts = append(parts, "IFNULL(LENGTH("+e+"),'N')", e)
			}
		}
	}
	return "CRC32(CRC32(CONCAT_WS('#'," + strings.Join(parts, ",") + ")))"
}

// checksumQuery returns the segment checksum of a key range: COUNT(*) and
// the XOR of the row hashes, as "count:xor". (A SUM beside the XOR would
// make the server compute every row hash twice, for little: a changed row
// escapes either way only if its CRC32 collides.)
func checksumQuery(t *tableInfo, lower, upper [][]byte) string {
	return "SELECT CONCAT(COUNT(*), ':', IFNULL(BIT_XOR(" + rowHashExpr(t) + "),0)) FROM " +
		t.from() + " WHERE " + rangeWhere(t, lower, upper)
}

// selectList returns the columns a dump reads: data columns, then key
// columns that are generated (needed for boundaries), then the row hash.
// keyAt maps each key column to its position in the list.
func selectList(t *tableInfo) (list string, cols []int, keyAt []int) {
	var exprs []string
	pos := map[int]int{}
	for _, i := range t.dataColumns() {
		pos[i] = len(exprs)
		exprs = append(exprs, readExpr(&t.Columns[i]))
		cols = append(cols, i)
	}
	for _, i := range t.Key {
		if _, ok := pos[i]; !ok {
			pos[i] = len(exprs)
			exprs = append(exprs, readExpr(&t.Columns[i]))
		}
		keyAt = append(keyAt, pos[i])
	}
	exprs = append(exprs, rowHashExpr(t))
	return strings.Join(exprs, ", "), cols, keyAt
}

// readExpr is how a dump reads a column: the raw bytes appendValue writes
// back exactly.
func readExpr(c *column) string {
	e := quoteIdent(c.Name)
	switch c.Kind {
	case kindFloat:
		return "CAST(" + e + " AS DOUBLE)"
	case kindNative:
		return "CAST(" + e + " AS BINARY)"
	case kindEnum:
		return "(" + e + "+0)"
	}
	return e
}

// keyList reads a table's key columns as selectList reads them, so that
// their values are the same bytes as a dump's.
func keyList(t *tableInfo) string {
	s := make([]string, len(t.Key))
	for i, ci := range t.Key {
		s[i] = readExpr(&t.Columns[ci])
	}
	return strings.Join(s, ", ")
}

// keysWhere returns the condition for rows whose keys are among keys.
func keysWhere(t *tableInfo, keys [][][]byte) string {
	var b strings.Builder
	if len(t.Key) == 1 {
		c := &t.Columns[t.Key[0]]
		b.WriteString(quoteIdent(c.Name) + " IN (")
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(keyLiteral(c, k[0]))
		}
		b.WriteByte(')')
		return b.String()
	}
	b.WriteByte('(')
	for i, k := range keys {
		if i > 0 {
			b.WriteString(" OR ")
		}
		b.WriteByte('(')
		for j, ci := range t.Key {
			if j > 0 {
				b.WriteString(" AND ")
			}
			b.WriteString(quoteIdent(t.Columns[ci].Name) + " = " + keyLiteral(&t.Columns[ci], k[j]))
		}
		b.WriteByte(')')
	}
	b.WriteByte(')')
	return b.String()
}

// insertHead returns "INSERT INTO `t` (`a`,`b`) VALUES ".
func insertHead(table string, t *tableInfo) string {
	var names []string
	for _, i := range t.dataColumns() {
		names = append(names, t.Columns[i].Name)
	}
	return insertHeadNames(table, names)
}

func insertHeadNames(table string, columns []string) string {
	s := make([]string, len(columns))
	for i, c := range columns {
		s[i] = quoteIdent(c)
	}
	return "INSERT INTO " + quoteIdent(table) + " (" + strings.Join(s, ",") + ") VALUES "
}

// segmentHeader and segmentFooter make a segment file loadable by any
// mysql client into an existing table, restoring the session afterwards.
const segmentHeader = "/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT, @OLD_CHARACTER_SET_RESULTS=@@CHARACTER_SET_RESULTS, @OLD_COLLATION_CONNECTION=@@COLLATION_CONNECTION */;\n" +
	"/*!40101 SET NAMES binary */;\n" +
	"/*!40103 SET @OLD_TIME_ZONE=@@TIME_ZONE, TIME_ZONE='+00:00' */;\n" +
	"/*!40014 SET @OLD_UNIQUE_CHECKS=@@UNIQUE_CHECKS, UNIQUE_CHECKS=0 */;\n" +
	"/*!40014 SET @OLD_FOREIGN_KEY_CHECKS=@@FOREIGN_KEY_CHECKS, FOREIGN_KEY_CHECKS=0 */;\n" +
	"/*!40101 SET @OLD_SQL_MODE=@@SQL_MODE, SQL_MODE='NO_AUTO_VALUE_ON_ZERO' */;\n"

const segmentFooter = "/*!40101 SET SQL_MODE=@OLD_SQL_MODE */;\n" +
	"/*!40014 SET FOREIGN_KEY_CHECKS=@OLD_FOREIGN_KEY_CHECKS */;\n" +
	"/*!40014 SET UNIQUE_CHECKS=@OLD_UNIQUE_CHECKS */;\n" +
	"/*!40103 SET TIME_ZONE=@OLD_TIME_ZONE */;\n" +
	"/*!40101 SET CHARACTER_SET_CLIENT=@OLD_CHARACTER_SET_CLIENT, CHARACTER_SET_RESULTS=@OLD_CHARACTER_SET_RESULTS, COLLATION_CONNECTION=@OLD_COLLATION_CONNECTION */;\n"

// schemaHeader and schemaFooter wrap schema.sql: definitions are text in the
// server's metadata character set (utf8), and zero-date defaults need a
// permissive sql_mode.
const schemaHeader = "/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT, @OLD_CHARACTER_SET_RESULTS=@@CHARACTER_SET_RESULTS, @OLD_COLLATION_CONNECTION=@@COLLATION_CONNECTION */;\n" +
	"/*!40101 SET NAMES utf8mb4 */;\n" +
	"/*!40014 SET @OLD_FOREIGN_KEY_CHECKS=@@FOREIGN_KEY_CHECKS, FOREIGN_KEY_CHECKS=0 */;\n" +
	"/*!40101 SET @OLD_SQL_MODE=@@SQL_MODE, SQL_MODE='NO_AUTO_VALUE_ON_ZERO' */;\n"

const schemaFooter = "/*!40101 SET SQL_MODE=@OLD_SQL_MODE */;\n" +
	"/*!40014 SET FOREIGN_KEY_CHECKS=@OLD_FOREIGN_KEY_CHECKS */;\n" +
	"/*!40101 SET CHARACTER_SET_CLIENT=@OLD_CHARACTER_SET_CLIENT, CHARACTER_SET_RESULTS=@OLD_CHARACTER_SET_RESULTS, COLLATION_CONNECTION=@OLD_COLLATION_CONNECTION */;\n"
