package archive

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// A download's SQL is hostile input: Import parses every statement it
// keeps into tokens, accepts only the shapes sitevault writes (see
// checkCreate, checkTrigger, checkView and valuesChecker) and renders what
// it stores from those tokens, table names translated to the registered
// site's prefix. Nothing else of the archive's text reaches a server.

// tokKind is a token's kind.
type tokKind int

const (
	tokWord   tokKind = iota + 1 // a keyword, type, function or bare name
	tokIdent                     // a `quoted` identifier; text is its name
	tokString                    // a string literal, with its introducer (b'…', x'…', _utf8mb4'…')
	tokNumber                    // a number or 0x… literal
	tokPunct                     // ( ) , ; . = + - * / % < > <= >= <> != ! := | || & &&
)

type token struct {
	kind       tokKind
	text       string // words upper-cased; identifiers unquoted
	start, end int    // the token's bytes in the statement
}

// isName tells a token that can name a table or trigger: `quoted`, or a
// bare word (the statement as its author wrote it).
func isName(t token) bool { return t.kind == tokIdent || t.kind == tokWord }

// nameOf returns the name a token spells (a bare word as written).
func nameOf(s string, t token) string {
	if t.kind == tokWord {
		return s[t.start:t.end]
	}
	return t.text
}

// errToken is the reason a statement does not tokenize.
var errToken = errors.New("token")

// tokenize splits s into tokens. Comments (including /*! … */, which the
// server executes), double quotes, variables (@) and anything else outside
// the grammar above are refused.
func tokenize(s string) ([]token, error) {
	var toks []token
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '`':
			var b strings.Builder
			j := i + 1
			for {
				if j >= len(s) {
					return nil, fmt.Errorf("%w: unterminated `identifier`", errToken)
				}
				if s[j] == '`' {
					if j+1 < len(s) && s[j+1] == '`' {
						b.WriteByte('`')
						j += 2
						continue
					}
					break
				}
				b.WriteByte(s[j])
				j++
			}
			toks = append(toks, token{tokIdent, b.String(), i, j + 1})
			i = j + 1
		case c == '\'':
			j, err := stringEnd(s, i)
			if err != nil {
				return nil, err
			}
			toks = append(toks, token{tokString, s[i:j], i, j})
			i = j
		case c >= '0' && c <= '9' || c == '.' && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9':
			j := i
			if c == '0' && i+1 < len(s) && (s[i+1] == 'x' || s[i+1] == 'X') {
				j = i + 2
				for j < len(s) && isHex(s[j]) {
					j++
				}
			} else {
				for j < len(s) && (s[j] >= '0' && s[j] <= '9' || s[j] == '.') {
					j++
				}
				if j < len(s) && (s[j] == 'e' || s[j] == 'E') {
					j++
					if j < len(s) && (s[j] == '+' || s[j] == '-') {
						j++
					}
					for j < len(s) && s[j] >= '0' && s[j] <= '9' {
						j++
					}
				}
			}
			if j < len(s) && isWordByte(s[j]) {
				return nil, fmt.Errorf("%w: malformed number %.20q", errToken, s[i:min(len(s), j+1)])
			}
			toks = append(toks, token{tokNumber, s[i:j], i, j})
			i = j
		case isWordByte(c):
			j := i
			for j < len(s) && isWordByte(s[j]) {
				j++
			}
			w := s[i:j]
			if j < len(s) && s[j] == '\'' && (strings.EqualFold(w, "b") || strings.EqualFold(w, "x") || w[0] == '_') {
				k, err := stringEnd(s, j)
				if err != nil {
					return nil, err
				}
				toks = append(toks, token{tokString, s[i:k], i, k})
				i = k
				continue
			}
			toks = append(toks, token{tokWord, strings.ToUpper(w), i, j})
			i = j
		default:
			p := string(c)
			if i+1 < len(s) {
				switch two := s[i : i+2]; two {
				case "<=", ">=", "<>", "!=", ":=", "||", "&&":
					p = two
				case "/*", "--":
					return nil, fmt.Errorf("%w: a comment inside a statement", errToken)
				}
			}
			if !strings.Contains("(),;.=+-*/%<>!|&:", p[:1]) || p == ":" {
				return nil, fmt.Errorf("%w: unexpected character %q", errToken, c)
			}
			toks = append(toks, token{tokPunct, p, i, i + len(p)})
			i += len(p)
		}
	}
	return toks, nil
}

// stringEnd returns the index after the string literal whose opening
// quote is at s[i].
func stringEnd(s string, i int) (int, error) {
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case '\\':
			j++
		case '\'':
			if j+1 < len(s) && s[j+1] == '\'' {
				j++
				continue
			}
			return j + 1, nil
		}
	}
	return 0, fmt.Errorf("%w: unterminated 'string'", errToken)
}

func isWordByte(c byte) bool {
	return c == '_' || c == '$' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c >= 0x80
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// render writes toks back as text: identifiers named in rename (by token
// index) get the new name; the rest is the statement's own bytes, which
// are only tokens and the whitespace between them.
func render(s string, toks []token, rename map[int]string) string {
	var b strings.Builder
	last := 0
	for i, t := range toks {
		if n, ok := rename[i]; ok {
			b.WriteString(s[last:t.start])
			b.WriteString(quoteIdent(n))
			last = t.end
		}
	}
	b.WriteString(s[last:])
	return b.String()
}

// Renamer maps a table name of the download to the registered site's.
type renamer func(name string) (string, error)

// sameName is the renamer of a first, name-blind check.
func sameName(name string) (string, error) { return name, nil }

// set builds a lookup set of upper-case words.
func set(words string) map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(words) {
		m[w] = true
	}
	return m
}

// Words a CREATE TABLE may hold (as SHOW CREATE TABLE writes it).
var createWords = set(`
TINYINT SMALLINT MEDIUMINT INT INTEGER BIGINT DECIMAL NUMERIC DEC FLOAT DOUBLE REAL PRECISION BIT BOOL BOOLEAN SERIAL
CHAR VARCHAR NCHAR NVARCHAR NATIONAL VARYING BINARY VARBINARY TINYBLOB BLOB MEDIUMBLOB LONGBLOB TINYTEXT TEXT MEDIUMTEXT LONGTEXT
ENUM SET DATE TIME DATETIME TIMESTAMP YEAR JSON UUID INET4 INET6
GEOMETRY POINT LINESTRING POLYGON MULTIPOINT MULTILINESTRING MULTIPOLYGON GEOMETRYCOLLECTION
UNSIGNED SIGNED ZEROFILL CHARACTER CHARSET COLLATE NOT NULL DEFAULT AUTO_INCREMENT COMMENT
PRIMARY UNIQUE KEY INDEX FULLTEXT SPATIAL CONSTRAINT FOREIGN REFERENCES ON UPDATE DELETE CASCADE RESTRICT NO ACTION
MATCH FULL PARTIAL SIMPLE CHECK GENERATED ALWAYS AS VIRTUAL PERSISTENT STORED INVISIBLE IGNORED USING BTREE HASH RTREE
ASC DESC KEY_BLOCK_SIZE
ENGINE ROW_FORMAT PAGE_CHECKSUM TRANSACTIONAL STATS_PERSISTENT STATS_AUTO_RECALC STATS_SAMPLE_PAGES PACK_KEYS CHECKSUM
DELAY_KEY_WRITE AVG_ROW_LENGTH MIN_ROWS MAX_ROWS PAGE_COMPRESSED PAGE_COMPRESSION_LEVEL
TRUE FALSE AND OR IS CURRENT_TIMESTAMP`)

var plainName = regexp.MustCompile(`^[A-Z0-9_]+$`)

// Functions an expression in a definition (DEFAULT, ON UPDATE, CHECK,
// generated column, trigger body, view) may call: none reads a table, the
// server's state or the session's user.
var safeFuncs = set(`
CURRENT_TIMESTAMP NOW LOCALTIME LOCALTIMESTAMP CURDATE CURTIME CURRENT_DATE CURRENT_TIME UTC_TIMESTAMP UTC_DATE UNIX_TIMESTAMP
FROM_UNIXTIME DATE_FORMAT DATE_ADD DATE_SUB DATEDIFF
JSON_VALID CONCAT CONCAT_WS IFNULL COALESCE NULLIF IF LOWER UPPER LCASE UCASE TRIM LTRIM RTRIM SUBSTRING SUBSTR LEFT RIGHT
LENGTH CHAR_LENGTH OCTET_LENGTH REPLACE ROUND FLOOR CEIL CEILING ABS GREATEST LEAST MD5 SHA1 SHA2 HEX UNHEX LPAD RPAD
COUNT SUM MIN MAX AVG`)

// Engines an imported table may use: table data in the server's own
// files (no FEDERATED/CONNECT link to elsewhere, no MERGE over other tables).
var safeEngines = set(`INNODB MYISAM ARIA`)

// Words after which a word is a value, not a keyword (a character set,
// a collation, a row format).
var valueAfter = set(`CHARSET COLLATE ROW_FORMAT`)

// checkCreate validates a CREATE TABLE statement of table from (SHOW
// CREATE TABLE's shape: columns, keys, foreign keys, table options) and
// renders it for table name to, the tables its foreign keys reference
// renamed by rename. It refuses anything that could read another table
// or the server's state, or put data elsewhere: CREATE … SELECT/LIKE,
// function calls but a few pure ones, engines other than InnoDB, MyISAM
// and Aria, DATA/INDEX DIRECTORY, UNION, CONNECTION, partitions. It also
// requires a primary or unique key: a backup (and so the pre-restore
// point undo uses) holds only such tables.
func checkCreate(stmt, from, to string, rename renamer) (string, error) {
	toks, err := tokenize(stmt)
	if err != nil {
		return "", err
	}
	if len(toks) < 5 || toks[0].text != "CREATE" || toks[1].text != "TABLE" || toks[2].kind != tokIdent || toks[3].text != "(" {
		return "", errors.New("not a CREATE TABLE `name` (…) statement")
	}
	if toks[2].text != from {
		return "", fmt.Errorf("CREATE TABLE %s in the file of table %s", quoteIdent(toks[2].text), quoteIdent(from))
	}
	ren := map[int]string{2: to}
	depth := 0
	for i := 3; i < len(toks); i++ {
		t := toks[i]
		prev := toks[i-1]
		switch t.kind {
		case tokPunct:
			switch t.text {
			case "(":
				depth++
			case ")":
				depth--
				if depth < 0 {
					return "", errors.New("unbalanced parentheses")
				}
			case ",", "=", "-", "+":
			default:
				return "", fmt.Errorf("unexpected %q", t.text)
			}
		case tokString, tokNumber:
		case tokIdent:
			if prev.text == "REFERENCES" && prev.kind == tokWord {
				n, err := rename(t.text)
				if err != nil {
					return "", fmt.Errorf("foreign key: %w", err)
				}
				ren[i] = n
			} else if i+1 < len(toks) && toks[i+1].text == "." {
				return "", fmt.Errorf("qualified name %s", quoteIdent(t.text))
			}
		case tokWord:
			next := ""
			if i+1 < len(toks) {
				next = toks[i+1].text
			}
			switch {
			case valueAfter[prev.text] || prev.text == "=" && valueAfter[toks[i-2].text] || prev.text == "SET" && toks[i-2].text == "CHARACTER":
				// a character set, collation or row format name
				if !plainName.MatchString(t.text) {
					return "", fmt.Errorf("unexpected name %q", t.text)
				}
			case prev.text == "=" && toks[i-2].text == "ENGINE":
				if !safeEngines[t.text] {
					return "", fmt.Errorf("ENGINE=%s (an imported table must be InnoDB, MyISAM or Aria)", t.text)
				}
			case next == "(" && safeFuncs[t.text]:
			case createWords[t.text]:
			default:
				return "", fmt.Errorf("%s is not allowed in a table definition of a download", t.text)
			}
		}
	}
	if depth != 0 {
		return "", errors.New("unbalanced parentheses")
	}
	return render(stmt, toks, ren), nil
}

// Words a trigger body may hold besides safeFuncs and NEW./OLD. columns:
// assignments to the row, conditions and SIGNAL; no statement that reads
// or writes a table, calls a procedure or sets a variable.
var triggerWords = set(`BEGIN END SET IF THEN ELSE ELSEIF CASE WHEN NULL AND OR NOT XOR IS IN BETWEEN LIKE TRUE FALSE DIV MOD
INTERVAL MICROSECOND SECOND MINUTE HOUR DAY WEEK MONTH QUARTER YEAR SIGNAL SQLSTATE VALUE MESSAGE_TEXT`)

var definerRe = regexp.MustCompile("(?is)^CREATE\\s+DEFINER\\s*=\\s*(?:`[^`]*`|'[^']*'|[\\w.%-]+)@(?:`[^`]*`|'[^']*'|[\\w.%-]+)\\s+")

// checkTrigger validates a CREATE TRIGGER statement found in the file of
// table from and renders it for table to (trigger name renamed by
// rename, DEFINER left out so the trigger runs as the restoring user). A
// trigger's body runs later, on every change of the row, so it is held
// to a small grammar: it may only be on its own table and only assign to
// and test NEW./OLD. columns with literals and the pure functions of
// safeFuncs. A trigger that reads or writes any table is refused.
func checkTrigger(stmt, from, to string, rename renamer) (string, error) {
	if loc := definerRe.FindStringIndex(stmt); loc != nil {
		stmt = "CREATE " + stmt[loc[1]:]
	}
	toks, err := tokenize(stmt)
	if err != nil {
		return "", err
	}
	if len(toks) < 11 || toks[0].text != "CREATE" || toks[1].text != "TRIGGER" || !isName(toks[2]) {
		return "", errors.New("not a CREATE TRIGGER `name` statement")
	}
	trName := nameOf(stmt, toks[2])
	if (toks[3].text != "BEFORE" && toks[3].text != "AFTER") || (toks[4].text != "INSERT" && toks[4].text != "UPDATE" && toks[4].text != "DELETE") ||
		toks[5].text != "ON" || toks[5].kind != tokWord {
		return "", errors.New("not a CREATE TRIGGER `name` BEFORE|AFTER INSERT|UPDATE|DELETE ON `table` statement")
	}
	if !isName(toks[6]) || nameOf(stmt, toks[6]) != from || toks[7].text == "." {
		return "", fmt.Errorf("trigger %s is on another table than %s, whose file holds it", quoteIdent(trName), quoteIdent(from))
	}
	if toks[7].text != "FOR" || toks[8].text != "EACH" || toks[9].text != "ROW" {
		return "", fmt.Errorf("trigger %s: FOLLOWS, PRECEDES or another clause before FOR EACH ROW", quoteIdent(trName))
	}
	name, err := rename(trName)
	if err != nil {
		return "", fmt.Errorf("trigger: %w", err)
	}
	body := toks[10:]
	for i, t := range body {
		var prev, next token
		if i > 0 {
			prev = body[i-1]
		}
		if i+1 < len(body) {
			next = body[i+1]
		}
		rowRef := prev.text == "." && i >= 2 && (body[i-2].text == "NEW" || body[i-2].text == "OLD") && body[i-2].kind == tokWord
		switch t.kind {
		case tokString, tokNumber:
		case tokPunct:
			if t.text == ":=" {
				return "", fmt.Errorf("trigger %s: %q is not allowed in a trigger of a download", quoteIdent(trName), t.text)
			}
		case tokIdent:
			if !rowRef {
				return "", fmt.Errorf("trigger %s: %s is not a NEW. or OLD. column (a trigger of a download may not name tables or variables)", quoteIdent(trName), quoteIdent(t.text))
			}
		case tokWord:
			switch {
			case rowRef:
			case t.text == "NEW" || t.text == "OLD":
				if next.text != "." {
					return "", fmt.Errorf("trigger %s: %s without a column", quoteIdent(trName), t.text)
				}
			case next.text == "(" && safeFuncs[t.text]:
			case triggerWords[t.text]:
			default:
				return "", fmt.Errorf("trigger %s: %s is not allowed in a trigger of a download (its body may only set and test NEW./OLD. columns)", quoteIdent(trName), t.text)
			}
		}
	}
	ren := map[int]string{}
	if name != trName {
		ren[2] = name
	}
	if to != from {
		ren[6] = to
	}
	return render(stmt, toks, ren), nil
}

// Words a view's SELECT may hold besides safeFuncs, names and literals.
var viewWords = set(`SELECT DISTINCT ALL AS FROM WHERE JOIN INNER LEFT RIGHT OUTER CROSS STRAIGHT_JOIN NATURAL ON USING
GROUP BY ORDER HAVING LIMIT OFFSET ASC DESC AND OR NOT XOR IS NULL IN BETWEEN LIKE ESCAPE TRUE FALSE DIV MOD CASE WHEN THEN ELSE END
INTERVAL MICROSECOND SECOND MINUTE HOUR DAY WEEK MONTH QUARTER YEAR UNION`)

var viewHeadRe = regexp.MustCompile("(?is)^CREATE\\s+(?:OR\\s+REPLACE\\s+)?(?:ALGORITHM\\s*=\\s*(UNDEFINED|MERGE|TEMPTABLE)\\s+)?(?:DEFINER\\s*=\\s*(?:`[^`]*`|'[^']*'|[\\w.%-]+)@(?:`[^`]*`|'[^']*'|[\\w.%-]+)\\s+)?(?:SQL\\s+SECURITY\\s+(?:DEFINER|INVOKER)\\s+)?VIEW\\s+")

// checkView validates a CREATE VIEW statement and returns the view's
// renamed name and the statement rendered with the
// view and every table it reads renamed by rename, as SQL SECURITY
// INVOKER without DEFINER: the view reads with the rights of whoever
// queries it. Every table after FROM, JOIN or a comma of a FROM list must
// be one rename accepts (a table of the site); qualified names
// (`db`.`table`) and functions but the pure ones are refused.
func checkView(stmt string, rename renamer) (name, out string, err error) {
	m := viewHeadRe.FindStringSubmatchIndex(stmt)
	if m == nil {
		return "", "", errors.New("not a CREATE VIEW statement")
	}
	alg := "UNDEFINED"
	if m[2] >= 0 {
		alg = strings.ToUpper(stmt[m[2]:m[3]])
	}
	rest := stmt[m[1]:]
	toks, err := tokenize(rest)
	if err != nil {
		return "", "", err
	}
	if len(toks) < 3 || toks[0].kind != tokIdent || toks[1].text != "AS" {
		return "", "", errors.New("not a CREATE VIEW `name` AS SELECT statement")
	}
	name = toks[0].text
	n, err := rename(name)
	if err != nil {
		return "", "", fmt.Errorf("view: %w", err)
	}
	ren := map[int]string{0: n}
	// fromAt marks the parenthesis depths at which a FROM list is open:
	// there, a name after FROM, JOIN, "," or "(" is a table.
	fromAt := map[int]bool{}
	depth := 0
	for i := 2; i < len(toks); i++ {
		t := toks[i]
		prev := toks[i-1]
		next := token{}
		if i+1 < len(toks) {
			next = toks[i+1]
		}
		afterTableWord := prev.kind == tokWord && (prev.text == "FROM" || prev.text == "JOIN" || prev.text == "STRAIGHT_JOIN")
		switch t.kind {
		case tokString, tokNumber:
		case tokPunct:
			switch t.text {
			case ";", ":=":
				return "", "", fmt.Errorf("view %s: %q is not allowed", quoteIdent(name), t.text)
			case "(":
				if afterTableWord || fromAt[depth] && (prev.text == "," || prev.text == "(") {
					fromAt[depth+1] = true
				}
				depth++
			case ")":
				delete(fromAt, depth)
				depth--
				if depth < 0 {
					return "", "", fmt.Errorf("view %s: unbalanced parentheses", quoteIdent(name))
				}
			}
		case tokWord:
			switch t.text {
			case "FROM", "JOIN", "STRAIGHT_JOIN":
				fromAt[depth] = true
			case "WHERE", "GROUP", "ORDER", "HAVING", "LIMIT", "UNION", "SELECT":
				delete(fromAt, depth)
			}
			if !(next.text == "(" && safeFuncs[t.text]) && !viewWords[t.text] {
				return "", "", fmt.Errorf("view %s: %s is not allowed in a view of a download", quoteIdent(name), t.text)
			}
		case tokIdent:
			if next.text == "." && i+3 < len(toks) && toks[i+3].text == "." {
				return "", "", fmt.Errorf("view %s: qualified name %s.%s.…", quoteIdent(name), quoteIdent(t.text), quoteIdent(toks[i+2].text))
			}
			tablePos := afterTableWord || fromAt[depth] && (prev.text == "," || prev.text == "(")
			switch {
			case tablePos:
				if next.text == "." {
					return "", "", fmt.Errorf("view %s: qualified table name %s.%s", quoteIdent(name), quoteIdent(t.text), quoteIdent(toks[i+2].text))
				}
				tn, err := rename(t.text)
				if err != nil {
					return "", "", fmt.Errorf("view %s: %w", quoteIdent(name), err)
				}
				ren[i] = tn
			case next.text == "." && prev.text != ".":
				// `table`.`column`: a qualifier is a table of the FROM list or
				// its alias; names of the site's tables follow the rename.
				if tn, err := rename(t.text); err == nil {
					ren[i] = tn
				}
			}
		}
	}
	if depth != 0 {
		return "", "", fmt.Errorf("view %s: unbalanced parentheses", quoteIdent(name))
	}
	return n, "CREATE ALGORITHM=" + alg + " SQL SECURITY INVOKER VIEW " + render(rest, toks, ren), nil
}

// valuesChecker checks, fed in pieces, the rest of an INSERT line after
// its head: tuples of literals only — NULL, numbers, 'strings' (backslash
// escapes), 0x… and b'…' — separated by commas and ended by ";" and the
// end of the line. It counts the tuples. An expression, a function call
// or a subquery (anything the server would evaluate) is refused.
type valuesChecker struct {
	st     int
	groups int64
	word   []byte // the bare literal being read (number, NULL, 0x…)
	err    error
}

// valuesChecker states.
const (
	vcTupleStart = iota // expects "("
	vcValue             // expects a value
	vcWord              // inside a bare literal
	vcString            // inside '…'
	vcEscape            // after a backslash in a string
	vcStringEnd         // after a closing quote ('' continues the string)
	vcBitString         // inside b'…'
	vcAfterValue        // expects "," or ")"
	vcAfterTuple        // expects "," or ";"
	vcEnd               // after ";": only the newline
)

var numberRe = regexp.MustCompile(`^[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$`)
var hexRe = regexp.MustCompile(`^0x(?:[0-9A-Fa-f]{2})+$`)

func (v *valuesChecker) fail(format string, args ...any) {
	if v.err == nil {
		v.err = fmt.Errorf(format, args...)
	}
}

func (v *valuesChecker) endWord() {
	w := string(v.word)
	v.word = v.word[:0]
	if !strings.EqualFold(w, "NULL") && !numberRe.MatchString(w) && !hexRe.MatchString(w) {
		v.fail("value %.40q is not a literal (a download's rows hold only NULL, numbers, 'strings', 0x… and b'…')", w)
	}
	v.st = vcAfterValue
}

func (v *valuesChecker) feed(b []byte) {
	for i := 0; i < len(b) && v.err == nil; i++ {
		c := b[i]
		switch v.st {
		case vcTupleStart:
			if c != '(' {
				v.fail("expected ( at %.20q", b[i:])
				return
			}
			v.groups++
			v.st = vcValue
		case vcValue:
			switch {
			case c == '\'':
				v.st = vcString
			case c == 'b' && i+1 < len(b) && b[i+1] == '\'':
				v.st = vcBitString
				i++
			case c == '-' || c == '+' || c == '.' || c >= '0' && c <= '9' || c == 'N' || c == 'n':
				v.word = append(v.word[:0], c)
				v.st = vcWord
			default:
				v.fail("value %.40q is not a literal (a download's rows hold only NULL, numbers, 'strings', 0x… and b'…')", b[i:])
			}
		case vcWord:
			if c == ',' || c == ')' {
				v.endWord()
				i--
				continue
			}
			if len(v.word) > 1024 && !bytes.HasPrefix(v.word, []byte("0x")) {
				v.fail("value too long for a number")
				return
			}
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '.' || c == '-' || c == '+') {
				v.fail("value %.40q is not a literal (a download's rows hold only NULL, numbers, 'strings', 0x… and b'…')", append(v.word, b[i:]...))
				return
			}
			if len(v.word) >= 2 && v.word[0] == '0' && v.word[1] == 'x' {
				if !isHex(c) {
					v.fail("bad hex literal")
					return
				}
				if len(v.word) > 4096 { // validated in pieces: keep "0x" and a parity byte
					if (len(v.word)-2)%2 != 0 {
						v.word = append(v.word[:2], v.word[len(v.word)-1])
					} else {
						v.word = v.word[:2]
					}
				}
			}
			v.word = append(v.word, c)
		case vcString:
			switch c {
			case '\\':
				v.st = vcEscape
			case '\'':
				v.st = vcStringEnd
			case '\n':
				v.fail("a string holds a raw line break (a download writes it as \\n)")
			}
		case vcEscape:
			v.st = vcString
		case vcStringEnd:
			if c == '\'' {
				v.st = vcString
				continue
			}
			v.st = vcAfterValue
			i--
		case vcBitString:
			switch c {
			case '0', '1':
			case '\'':
				v.st = vcAfterValue
			default:
				v.fail("bad b'…' literal")
			}
		case vcAfterValue:
			switch c {
			case ',':
				v.st = vcValue
			case ')':
				v.st = vcAfterTuple
			default:
				v.fail("expected , or ) after a value at %.20q", b[i:])
			}
		case vcAfterTuple:
			switch c {
			case ',':
				v.st = vcTupleStart
			case ';':
				v.st = vcEnd
			default:
				v.fail("expected , or ; after a row at %.20q", b[i:])
			}
		case vcEnd:
			if c != '\n' && c != '\r' {
				v.fail("text after the end of an INSERT: %.20q", b[i:])
			}
		}
	}
}

// done reports whether the INSERT ended properly.
func (v *valuesChecker) done() error {
	if v.err == nil && v.st != vcEnd {
		v.fail("the INSERT does not end with ; on its line")
	}
	return v.err
}
