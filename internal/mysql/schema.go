package mysql

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// Temporary name prefixes of restores: svtmp_ holds tables being loaded,
// svold_ the live tables swapped out. A restore names them
// <prefix><scope>_<run>_<n>, scope being tempScope of the site's table
// prefix, so that the next restore of the same site drops them and a
// restore of another site sharing the database leaves them alone.
const (
	tmpPrefix = "svtmp_"
	oldPrefix = "svold_"
)

// tempScope ties temporary table names to a site's table prefix: 8 hex
// digits of its SHA-256 (a prefix may be long or hold any character).
func tempScope(prefix string) string {
	h := sha256.Sum256([]byte(prefix))
	return hex.EncodeToString(h[:4])
}

// restoreLockName is the GET_LOCK name a restore of the site's tables
// holds for its duration (lock names are server-wide, so it names the
// database too; MariaDB and MySQL take up to 64 characters).
func restoreLockName(database, prefix string) string {
	h := sha256.Sum256([]byte(database + "\x00" + prefix))
	return "sitevault-restore-" + hex.EncodeToString(h[:12])
}

// NoteWhole is what a backup report says of a table without a primary or
// unique key over NOT NULL columns: it is backed up whole, outside segment
// reuse (see TableReport.Whole).
const NoteWhole = "backed up whole (no key)"

// NoteVersioned is what a backup report says of a system-versioned table:
// backed up whole, current and history rows.
const NoteVersioned = "backed up whole with its history (system-versioned)"

// Skip reasons.
const (
	ReasonNoPrefix  = "no prefix"
	ReasonNoKey     = "no primary or unique key over NOT NULL columns"
	ReasonTemporary = "sitevault temporary table"
	ReasonType      = "not a base table"
)

// Skipped is a table left out of a backup and why.
type Skipped struct {
	Name   string
	Reason string
}

// Selection is what a backup of prefix would hold.
type Selection struct {
	Tables  []string // selected tables, sorted
	Views   []string // views whose names carry the prefix
	Skipped []Skipped
	// Whole are the selected tables without a key, backed up whole (NoteWhole).
	Whole []string
}

// querier is a *sql.Conn, *sql.DB or *sql.Tx.
type querier interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
	ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
}

// colKind says how a column's values are written as SQL.
type colKind int

const (
	kindNumber   colKind = iota // integers, DECIMAL, DOUBLE, YEAR: the server's text is exact
	kindFloat                   // FLOAT: read as DOUBLE, whose text round-trips
	kindString                  // text types, ENUM, SET, JSON: quoted, escaped bytes
	kindBinary                  // BINARY, BLOB, geometry: 0x…
	kindBit                     // BIT: b'…'
	kindTemporal                // DATE, TIME, DATETIME, TIMESTAMP: quoted
	// kindNative: MariaDB's type plugins (INET4, INET6, UUID) and any
	// other type without a character set this package does not know. A
	// binary session receives their text form, which they do not take
	// back from a binary string (they load NULL with a warning); so they
	// are read as CAST(… AS BINARY), their fixed binary form, and written
	// as 0x…, which they take exactly.
	kindNative
	// kindEnum: ENUM and SET. A binary session loads a member name with a
	// 4-byte character (an emoji) as no member at all, so they are read
	// and written as their numbers (ENUM index, SET bit mask), which are
	// exact whatever the character set.
	kindEnum
)

type column struct {
	Name      string
	DataType  string
	Charset   string // "" for non-text columns
	Collation string
	Nullable  bool
	Generated bool
	Kind      colKind
}

// tableInfo is one table as found in information_schema.
type tableInfo struct {
	Name      string
	Engine    string
	AvgRowLen int64
	Columns   []column
	Key       []int // indexes into Columns
	KeyName   string
	// Versioned: a system-versioned table (MariaDB). It is backed up
	// whole with its history: read FOR SYSTEM_TIME ALL, its period
	// columns included as data columns (see withPeriod).
	Versioned bool
}

// from returns the table as a FROM clause reads it: a system-versioned
// table with all its history rows.
func (t *tableInfo) from() string {
	if t.Versioned {
		return quoteIdent(t.Name) + " FOR SYSTEM_TIME ALL"
	}
	return quoteIdent(t.Name)
}

var periodRe = regexp.MustCompile("(?m)^\\s*PERIOD FOR SYSTEM_TIME \\(`((?:[^`]|``)+)`, `((?:[^`]|``)+)`\\)")

// withPeriod makes a system-versioned table's period columns data columns
// (create is its CREATE TABLE): explicit ones (PERIOD FOR SYSTEM_TIME
// (rs, re)) show as generated, and are no longer; the implicit ones
// (row_start, row_end, TIMESTAMP(6), not in information_schema) are added.
// A restore loads them with system_versioning_insert_history (MariaDB
// 10.11+), so current and history rows come back with their times.
func (t *tableInfo) withPeriod(create string) {
	start, end := "row_start", "row_end"
	if m := periodRe.FindStringSubmatch(create); m != nil {
		start, end = strings.ReplaceAll(m[1], "``", "`"), strings.ReplaceAll(m[2], "``", "`")
	}
	for _, name := range []string{start, end} {
		found := false
		for i := range t.Columns {
			if t.Columns[i].Name == name {
				t.Columns[i].Generated = false
				found = true
			}
		}
		if !found {
			t.Columns = append(t.Columns, column{Name: name, DataType: "timestamp", Kind: kindTemporal})
		}
	}
}

// whole reports whether the table is backed up whole: it has no key, or
// it is system-versioned.
func (t *tableInfo) whole() bool { return len(t.Key) == 0 }

func (t *tableInfo) transactional() bool { return strings.EqualFold(t.Engine, "InnoDB") }

// keyNames returns the key's column names.
func (t *tableInfo) keyNames() []string {
	var n []string
	for _, i := range t.Key {
		n = append(n, t.Columns[i].Name)
	}
	return n
}

// dataColumns are the columns written in INSERTs: all but generated ones.
func (t *tableInfo) dataColumns() []int {
	var c []int
	for i, col := range t.Columns {
		if !col.Generated {
			c = append(c, i)
		}
	}
	return c
}

func kindOf(dataType, charset string) colKind {
	switch strings.ToLower(dataType) {
	case "tinyint", "smallint", "mediumint", "int", "integer", "bigint", "decimal", "numeric", "double", "real", "year":
		return kindNumber
	case "float":
		return kindFloat
	case "binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob",
		"geometry", "point", "linestring", "polygon", "multipoint", "multilinestring", "multipolygon", "geometrycollection":
		return kindBinary
	case "bit":
		return kindBit
	case "date", "time", "datetime", "timestamp":
		return kindTemporal
	case "enum", "set":
		return kindEnum
	case "char", "varchar", "tinytext", "text", "mediumtext", "longtext", "json":
		// MySQL's JSON has no character set; it is utf8mb4 text.
		if charset == "binary" {
			return kindBinary
		}
		return kindString
	}
	if charset == "binary" {
		return kindBinary
	}
	if charset == "" {
		return kindNative
	}
	return kindString
}

// keyUsable reports whether a column can order and bound segments: its
// ORDER BY order must agree with comparisons against literals.
func keyUsable(c column) bool {
	switch c.DataType {
	case "float", "double", "real", "enum", "set", "bit",
		"geometry", "point", "linestring", "polygon", "multipoint", "multilinestring", "multipolygon", "geometrycollection":
		return false
	}
	return true
}

// inventory lists the database's tables and views and selects those of prefix.
func inventory(ctx context.Context, q querier, prefix string) (tables []*tableInfo, views []string, skipped []Skipped, err error) {
	type trow struct {
		name, typ, engine string
		avg               int64
	}
	var all []trow
	rows, err := q.QueryContext(ctx, `SELECT TABLE_NAME, TABLE_TYPE, IFNULL(ENGINE,''), IFNULL(AVG_ROW_LENGTH,0)
		FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()`)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("list tables: %w", err)
	}
	for rows.Next() {
		var r trow
		if err := rows.Scan(&r.name, &r.typ, &r.engine, &r.avg); err != nil {
			rows.Close()
			return nil, nil, nil, fmt.Errorf("list tables: %w", err)
		}
		all = append(all, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, nil, fmt.Errorf("list tables: %w", err)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].name < all[j].name })

	cols, err := columnsOf(ctx, q)
	if err != nil {
		return nil, nil, nil, err
	}
	keys, err := uniqueKeys(ctx, q)
	if err != nil {
		return nil, nil, nil, err
	}
	for _, r := range all {
		switch {
		case strings.HasPrefix(r.name, tmpPrefix) || strings.HasPrefix(r.name, oldPrefix):
			skipped = append(skipped, Skipped{r.name, ReasonTemporary})
		case !strings.HasPrefix(r.name, prefix):
			skipped = append(skipped, Skipped{r.name, ReasonNoPrefix})
		case r.typ == "VIEW":
			views = append(views, r.name)
		case r.typ == "SYSTEM VERSIONED":
			// Backed up whole: a key's value repeats in the history rows.
			tables = append(tables, &tableInfo{Name: r.name, Engine: r.engine, AvgRowLen: r.avg, Columns: cols[r.name], Versioned: true})
		case r.typ != "BASE TABLE":
			skipped = append(skipped, Skipped{r.name, ReasonType + " (" + strings.ToLower(r.typ) + ")"})
		default:
			t := &tableInfo{Name: r.name, Engine: r.engine, AvgRowLen: r.avg, Columns: cols[r.name]}
			// A table without a usable key is backed up whole (Key nil):
			// its rows have no order to cut segments by, so it takes no
			// part in segment reuse.
			chooseKey(t, keys[r.name])
			tables = append(tables, t)
		}
	}
	return tables, views, skipped, nil
}

func columnsOf(ctx context.Context, q querier, only ...string) (map[string][]column, error) {
	query := `SELECT TABLE_NAME, COLUMN_NAME, DATA_TYPE, IFNULL(CHARACTER_SET_NAME,''),
		IFNULL(COLLATION_NAME,''), IS_NULLABLE, EXTRA
		FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE()`
	var args []any
	if len(only) == 1 {
		query += " AND TABLE_NAME = ?"
		args = append(args, only[0])
	}
	rows, err := q.QueryContext(ctx, query+" ORDER BY TABLE_NAME, ORDINAL_POSITION", args...)
	if err != nil {
		return nil, fmt.Errorf("list columns: %w", err)
	}
	defer rows.Close()
	m := map[string][]column{}
	for rows.Next() {
		var table, nullable, extra string
		var c column
		if err := rows.Scan(&table, &c.Name, &c.DataType, &c.Charset, &c.Collation, &nullable, &extra); err != nil {
			return nil, fmt.Errorf("list columns: %w", err)
		}
		c.DataType = strings.ToLower(c.DataType)
		c.Nullable = nullable == "YES"
		// MariaDB says VIRTUAL GENERATED, STORED GENERATED (PERSISTENT
		// before 10.2), MySQL the same; MySQL's DEFAULT_GENERATED (an
		// expression default) is not a generated column.
		ex := strings.ToUpper(extra)
		c.Generated = strings.Contains(ex, "VIRTUAL") || strings.Contains(ex, "STORED GENERATED") || strings.Contains(ex, "PERSISTENT")
		c.Kind = kindOf(c.DataType, c.Charset)
		m[table] = append(m[table], c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list columns: %w", err)
	}
	return m, nil
}

type index struct {
	name    string
	columns []string
}

// uniqueKeys returns each table's unique indexes, PRIMARY first.
func uniqueKeys(ctx context.Context, q querier) (map[string][]index, error) {
	rows, err := q.QueryContext(ctx, `SELECT TABLE_NAME, INDEX_NAME, COLUMN_NAME FROM information_schema.STATISTICS
		WHERE TABLE_SCHEMA = DATABASE() AND NON_UNIQUE = 0 ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX`)
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	defer rows.Close()
	m := map[string][]index{}
	for rows.Next() {
		var table, name, col string
		if err := rows.Scan(&table, &name, &col); err != nil {
			return nil, fmt.Errorf("list keys: %w", err)
		}
		ix := m[table]
		if len(ix) == 0 || ix[len(ix)-1].name != name {
			ix = append(ix, index{name: name})
		}
		ix[len(ix)-1].columns = append(ix[len(ix)-1].columns, col)
		m[table] = ix
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	for _, ix := range m {
		sort.SliceStable(ix, func(i, j int) bool {
			if (ix[i].name == "PRIMARY") != (ix[j].name == "PRIMARY") {
				return ix[i].name == "PRIMARY"
			}
			return len(ix[i].columns) < len(ix[j].columns)
		})
	}
	return m, nil
}

// chooseKey sets t.Key to the primary key, else the narrowest unique key
// over NOT NULL columns; it reports false if there is none.
func chooseKey(t *tableInfo, ixs []index) bool {
	pos := map[string]int{}
	for i, c := range t.Columns {
		pos[c.Name] = i
	}
next:
	for _, ix := range ixs {
		var key []int
		for _, name := range ix.columns {
			i, ok := pos[name]
			if !ok || t.Columns[i].Nullable || !keyUsable(t.Columns[i]) {
				continue next
			}
			key = append(key, i)
		}
		t.Key, t.KeyName = key, ix.name
		return true
	}
	return false
}

var (
	definerRe  = regexp.MustCompile("(?s)^(CREATE\\s+(?:OR\\s+REPLACE\\s+)?(?:ALGORITHM\\s*=\\s*\\w+\\s+)?)DEFINER\\s*=\\s*(?:`(?:[^`]|``)*`|'(?:[^']|'')*'|[^@\\s]+)@(?:`(?:[^`]|``)*`|'(?:[^']|'')*'|\\S+)\\s+")
	securityRe = regexp.MustCompile(`(?i)\bSQL\s+SECURITY\s+DEFINER\b`)
	autoIncRe  = regexp.MustCompile(`\s+AUTO_INCREMENT=\d+`)
)

// stripDefiner removes a DEFINER clause (which fails on another server or
// for another user) and makes SQL SECURITY DEFINER views INVOKER.
func stripDefiner(stmt string) string {
	stmt = definerRe.ReplaceAllString(stmt, "$1")
	return securityRe.ReplaceAllString(stmt, "SQL SECURITY INVOKER")
}

// showCreateTable returns a table's CREATE TABLE statement.
func showCreateTable(ctx context.Context, q querier, name string) (string, error) {
	var n, create string
	if err := q.QueryRowContext(ctx, "SHOW CREATE TABLE "+quoteIdent(name)).Scan(&n, &create); err != nil {
		return "", err
	}
	return create, nil
}

// triggersOf returns a table's CREATE TRIGGER statements, in firing order, without DEFINER.
func triggersOf(ctx context.Context, q querier, table string) ([]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT TRIGGER_NAME FROM information_schema.TRIGGERS
		WHERE EVENT_OBJECT_SCHEMA = DATABASE() AND EVENT_OBJECT_TABLE = ? ORDER BY EVENT_MANIPULATION, ACTION_TIMING, ACTION_ORDER`, table)
	if err != nil {
		return nil, fmt.Errorf("list triggers: %w", err)
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return nil, err
		}
		names = append(names, n)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list triggers: %w", err)
	}
	var out []string
	for _, n := range names {
		rows, err := q.QueryContext(ctx, "SHOW CREATE TRIGGER "+quoteIdent(n))
		if err != nil {
			return nil, fmt.Errorf("show trigger %s: %w", n, err)
		}
		cols, _ := rows.Columns()
		vals := make([]sql.RawBytes, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		var stmt string
		if rows.Next() {
			if err := rows.Scan(ptrs...); err != nil {
				rows.Close()
				return nil, err
			}
			stmt = string(vals[2]) // SQL Original Statement
		}
		rows.Close()
		if stmt == "" {
			return nil, fmt.Errorf("show trigger %s: no statement", n)
		}
		out = append(out, stripDefiner(stmt))
	}
	return out, nil
}

// showCreateView returns a view's definition without DEFINER.
func showCreateView(ctx context.Context, q querier, name string) (string, error) {
	rows, err := q.QueryContext(ctx, "SHOW CREATE VIEW "+quoteIdent(name))
	if err != nil {
		return "", err
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	vals := make([]sql.RawBytes, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if !rows.Next() {
		return "", fmt.Errorf("show create view %s: no row", name)
	}
	if err := rows.Scan(ptrs...); err != nil {
		return "", err
	}
	return stripDefiner(string(vals[1])), rows.Err()
}

// definitionHash identifies a table's definition and key choice; a change
// means the previous backup's segments cannot be compared.
func definitionHash(create string, t *tableInfo) string {
	h := sha256.New()
	h.Write([]byte(autoIncRe.ReplaceAllString(create, "")))
	h.Write([]byte{0})
	h.Write([]byte(strings.Join(t.keyNames(), "\x00")))
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// Select reports which tables and views a backup of prefix would hold, and
// which tables it would leave out and why.
func Select(ctx context.Context, cfg Config, prefix string) (*Selection, error) {
	db, err := connect(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	tables, views, skipped, err := inventory(ctx, db, prefix)
	if err != nil {
		return nil, err
	}
	s := &Selection{Views: views, Skipped: skipped}
	for _, t := range tables {
		s.Tables = append(s.Tables, t.Name)
		if t.whole() {
			s.Whole = append(s.Whole, t.Name)
		}
	}
	return s, nil
}
