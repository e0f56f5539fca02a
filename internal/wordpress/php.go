package wordpress

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// This file holds a tokenizer for the subset of PHP that wp-config.php and
// wp-includes/version.php are written in. It recognises every token class
// well enough to skip what it does not understand (comments, heredocs,
// interpolated strings), so a commented-out define is never mistaken for a
// live one.

type tokKind int

const (
	tEOF    tokKind = iota
	tIdent          // define, true, ABSPATH, getenv …
	tVar            // $table_prefix (text without the $)
	tString         // a constant string literal (text is the decoded value)
	tInterp         // a string whose value depends on variables (double quotes with $x, heredoc)
	tNumber         // a number as written
	tPunct          // ( ) , ; . = ?: ?? …
)

type token struct {
	kind tokKind
	text string // decoded value, identifier, number or punctuation
	raw  string // source text, for messages
	line int
}

// lexer turns PHP source into tokens. Text outside <?php … ?> is skipped.
type lexer struct {
	src  string
	pos  int
	line int
	php  bool // inside <?php … ?>
}

// tokenize returns the tokens of src, or an error wrapping ErrSyntax for an
// unterminated string or a malformed escape.
func tokenize(src string) ([]token, error) {
	lx := &lexer{src: src, line: 1}
	var toks []token
	for {
		t, err := lx.next()
		if err != nil {
			return nil, err
		}
		if t.kind == tEOF {
			return toks, nil
		}
		toks = append(toks, t)
	}
}

func (lx *lexer) errorf(format string, args ...any) error {
	return fmt.Errorf("line %d: %s: %w", lx.line, fmt.Sprintf(format, args...), ErrSyntax)
}

func (lx *lexer) advance(n int) {
	lx.line += strings.Count(lx.src[lx.pos:lx.pos+n], "\n")
	lx.pos += n
}

func (lx *lexer) rest() string { return lx.src[lx.pos:] }

// skipHTML moves past text outside PHP up to the next opening tag.
func (lx *lexer) skipHTML() bool {
	i := strings.Index(lx.rest(), "<?")
	if i < 0 {
		lx.advance(len(lx.rest()))
		return false
	}
	lx.advance(i + 2)
	r := lx.rest()
	switch {
	case len(r) >= 3 && strings.EqualFold(r[:3], "php"):
		lx.advance(3)
	case strings.HasPrefix(r, "="):
		lx.advance(1)
	}
	lx.php = true
	return true
}

func isIdentStart(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80
}

func isIdentChar(c byte) bool { return isIdentStart(c) || c >= '0' && c <= '9' }

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// puncts lists multi-character operators, longest first; the parser only
// needs to tell ?: ?? = == => -> :: apart, the rest are skipped.
var puncts = []string{"<<=", ">>=", "**=", "...", "<=>", "===", "!==", "??=", "?->",
	"?:", "??", "==", "!=", "<>", "<=", ">=", "=>", "->", "::", "&&", "||", "++", "--",
	".=", "+=", "-=", "*=", "/=", "%=", "&=", "|=", "^=", "<<", ">>", "**"}

func (lx *lexer) next() (token, error) {
	for {
		if !lx.php && !lx.skipHTML() {
			return token{kind: tEOF, line: lx.line}, nil
		}
		r := lx.rest()
		if r == "" {
			return token{kind: tEOF, line: lx.line}, nil
		}
		c := r[0]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			lx.advance(1)
			continue
		case strings.HasPrefix(r, "?>"):
			lx.advance(2)
			lx.php = false
			// A closing tag ends a statement like ";".
			return token{kind: tPunct, text: ";", raw: "?>", line: lx.line}, nil
		case c == '#' && !strings.HasPrefix(r, "#["), strings.HasPrefix(r, "//"):
			lx.skipLineComment()
			continue
		case c == '#': // #[Attribute]: skip to the matching ]
			lx.skipAttribute()
			continue
		case strings.HasPrefix(r, "/*"):
			end := strings.Index(r[2:], "*/")
			if end < 0 {
				// PHP treats an unterminated comment as running to the end.
				lx.advance(len(r))
				continue
			}
			lx.advance(end + 4)
			continue
		}
		line := lx.line
		start := lx.pos
		switch {
		case c == '\'':
			s, err := lx.singleQuoted()
			if err != nil {
				return token{}, err
			}
			return token{kind: tString, text: s, raw: lx.src[start:lx.pos], line: line}, nil
		case c == '"':
			s, interp, err := lx.doubleQuoted()
			if err != nil {
				return token{}, err
			}
			k := tString
			if interp {
				k = tInterp
			}
			return token{kind: k, text: s, raw: lx.src[start:lx.pos], line: line}, nil
		case strings.HasPrefix(r, "<<<"):
			if err := lx.heredoc(); err != nil {
				return token{}, err
			}
			return token{kind: tInterp, raw: lx.src[start:lx.pos], line: line}, nil
		case c == '$' && len(r) > 1 && isIdentStart(r[1]):
			n := 2
			for n < len(r) && isIdentChar(r[n]) {
				n++
			}
			lx.advance(n)
			return token{kind: tVar, text: r[1:n], raw: r[:n], line: line}, nil
		case isIdentStart(c):
			n := 1
			for n < len(r) && isIdentChar(r[n]) {
				n++
			}
			lx.advance(n)
			return token{kind: tIdent, text: r[:n], raw: r[:n], line: line}, nil
		case isDigit(c) || c == '.' && len(r) > 1 && isDigit(r[1]):
			n := 1
			for n < len(r) {
				d := r[n]
				if isIdentChar(d) || d == '.' && n+1 < len(r) && isDigit(r[n+1]) {
					n++
					continue
				}
				if (d == '-' || d == '+') && (r[n-1] == 'e' || r[n-1] == 'E') && !strings.HasPrefix(strings.ToLower(r[:n]), "0x") {
					n++
					continue
				}
				break
			}
			lx.advance(n)
			return token{kind: tNumber, text: r[:n], raw: r[:n], line: line}, nil
		}
		for _, p := range puncts {
			if strings.HasPrefix(r, p) {
				lx.advance(len(p))
				return token{kind: tPunct, text: p, raw: p, line: line}, nil
			}
		}
		_, size := utf8.DecodeRuneInString(r)
		lx.advance(size)
		return token{kind: tPunct, text: r[:size], raw: r[:size], line: line}, nil
	}
}

// skipLineComment skips a // or # comment, which ends at a newline or just
// before a closing tag.
func (lx *lexer) skipLineComment() {
	r := lx.rest()
	end := len(r)
	if i := strings.IndexByte(r, '\n'); i >= 0 {
		end = i
	}
	if i := strings.Index(r[:end], "?>"); i >= 0 {
		end = i
	}
	lx.advance(end)
}

func (lx *lexer) skipAttribute() {
	depth := 0
	for lx.pos < len(lx.src) {
		c := lx.src[lx.pos]
		lx.advance(1)
		switch c {
		case '[':
			depth++
		case ']':
			depth--
			if depth == 0 {
				return
			}
		}
	}
}

// singleQuoted decodes '…': only \' and \\ are escapes.
func (lx *lexer) singleQuoted() (string, error) {
	r := lx.rest()
	var b strings.Builder
	for i := 1; i < len(r); i++ {
		switch r[i] {
		case '\\':
			if i+1 < len(r) && (r[i+1] == '\'' || r[i+1] == '\\') {
				b.WriteByte(r[i+1])
				i++
				continue
			}
			b.WriteByte('\\')
		case '\'':
			lx.advance(i + 1)
			return b.String(), nil
		default:
			b.WriteByte(r[i])
		}
	}
	return "", lx.errorf("unterminated string")
}

// doubleQuoted decodes "…" with PHP's escapes. interp reports a variable
// inside ("$x", "{$x}"), whose value the reader cannot know.
func (lx *lexer) doubleQuoted() (s string, interp bool, err error) {
	r := lx.rest()
	var b strings.Builder
	for i := 1; i < len(r); i++ {
		c := r[i]
		switch {
		case c == '"':
			lx.advance(i + 1)
			return b.String(), interp, nil
		case c == '$' && i+1 < len(r) && isIdentStart(r[i+1]),
			c == '{' && i+1 < len(r) && r[i+1] == '$':
			interp = true
			b.WriteByte(c)
		case c == '\\' && i+1 < len(r):
			n, err := lx.escape(&b, r[i+1:])
			if err != nil {
				return "", false, err
			}
			i += n
		default:
			b.WriteByte(c)
		}
	}
	return "", false, lx.errorf("unterminated string")
}

// escape decodes the escape sequence after a backslash in a double-quoted
// string into b and returns how many bytes after the backslash it used.
func (lx *lexer) escape(b *strings.Builder, r string) (int, error) {
	switch r[0] {
	case 'n':
		b.WriteByte('\n')
	case 't':
		b.WriteByte('\t')
	case 'r':
		b.WriteByte('\r')
	case 'v':
		b.WriteByte('\v')
	case 'e':
		b.WriteByte(0x1b)
	case 'f':
		b.WriteByte('\f')
	case '\\', '$', '"':
		b.WriteByte(r[0])
	case 'x':
		n := 0
		v := 0
		for n < 2 && n+1 < len(r) && hexVal(r[n+1]) >= 0 {
			v = v*16 + hexVal(r[n+1])
			n++
		}
		if n == 0 {
			b.WriteString(`\x`)
			return 1, nil
		}
		b.WriteByte(byte(v))
		return n + 1, nil
	case 'u':
		if len(r) < 2 || r[1] != '{' {
			b.WriteString(`\u`)
			return 1, nil
		}
		end := strings.IndexByte(r, '}')
		if end < 0 {
			return 0, lx.errorf(`invalid \u{} escape: missing "}"`)
		}
		digits := r[2:end]
		if digits == "" || len(digits) > 8 {
			return 0, lx.errorf(`invalid \u{%s} escape`, digits)
		}
		v := 0
		for i := 0; i < len(digits); i++ {
			h := hexVal(digits[i])
			if h < 0 {
				return 0, lx.errorf(`invalid \u{%s} escape`, digits)
			}
			v = v*16 + h
		}
		if v > 0x10FFFF {
			return 0, lx.errorf(`\u{%s} is beyond U+10FFFF`, digits)
		}
		// PHP encodes surrogates too (as CESU-like bytes); Go's encoder
		// would write U+FFFD instead, so encode by hand.
		b.WriteString(encodeCodepoint(v))
		return end + 1, nil
	default:
		if r[0] >= '0' && r[0] <= '7' {
			n, v := 0, 0
			for n < 3 && n < len(r) && r[n] >= '0' && r[n] <= '7' {
				v = v*8 + int(r[n]-'0')
				n++
			}
			b.WriteByte(byte(v)) // PHP keeps the low byte of \400…\777
			return n, nil
		}
		// Unknown escapes stay as written, backslash included.
		b.WriteByte('\\')
		return 0, nil
	}
	return 1, nil
}

func hexVal(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// encodeCodepoint writes v as UTF-8 the way PHP does, surrogates included.
func encodeCodepoint(v int) string {
	switch {
	case v < 0x80:
		return string([]byte{byte(v)})
	case v < 0x800:
		return string([]byte{0xC0 | byte(v>>6), 0x80 | byte(v&0x3F)})
	case v < 0x10000:
		return string([]byte{0xE0 | byte(v>>12), 0x80 | byte(v>>6&0x3F), 0x80 | byte(v&0x3F)})
	default:
		return string([]byte{0xF0 | byte(v>>18), 0x80 | byte(v>>12&0x3F), 0x80 | byte(v>>6&0x3F), 0x80 | byte(v&0x3F)})
	}
}

// heredoc skips a heredoc or nowdoc (<<<ID … ID); its value is never used.
func (lx *lexer) heredoc() error {
	r := lx.rest()
	i := 3
	for i < len(r) && (r[i] == ' ' || r[i] == '\t') {
		i++
	}
	if i < len(r) && (r[i] == '\'' || r[i] == '"') {
		i++
	}
	j := i
	for j < len(r) && isIdentChar(r[j]) {
		j++
	}
	id := r[i:j]
	if id == "" {
		return lx.errorf("malformed heredoc")
	}
	nl := strings.IndexByte(r[j:], '\n')
	if nl < 0 {
		return lx.errorf("unterminated heredoc")
	}
	p := j + nl + 1
	for p <= len(r) {
		line := r[p:]
		if k := strings.IndexByte(line, '\n'); k >= 0 {
			line = line[:k]
		}
		t := strings.TrimLeft(line, " \t")
		if strings.HasPrefix(t, id) && (len(t) == len(id) || !isIdentChar(t[len(id)])) {
			lx.advance(p + (len(line) - len(t)) + len(id))
			return nil
		}
		if p+len(line) >= len(r) {
			break
		}
		p += len(line) + 1
	}
	return lx.errorf("unterminated heredoc %s", id)
}
