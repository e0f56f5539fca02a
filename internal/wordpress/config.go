package wordpress

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"
)

var (
	// ErrSyntax means wp-config.php (or version.php) could not be tokenized:
	// an unterminated string or heredoc, or an invalid \u{} escape.
	ErrSyntax = errors.New("PHP syntax error")
	// ErrNotDefined means a setting the database connection needs is not
	// defined in wp-config.php (it may come from a file the config
	// includes); a ValueError names it and the flag that supplies it.
	ErrNotDefined = errors.New("not defined in wp-config.php")
	// ErrUnresolved means a setting is defined by an expression sitevault
	// cannot evaluate without running PHP; a ValueError names it and the
	// flag that supplies it.
	ErrUnresolved = errors.New("set by an expression sitevault cannot evaluate")
	// ErrBadTablePrefix means the table prefix holds characters WordPress
	// itself refuses (anything but letters, digits and underscores).
	ErrBadTablePrefix = errors.New("invalid table prefix")
)

// ValueError reports a database setting that could not be determined.
type ValueError struct {
	Name string // DB_HOST, $table_prefix …
	Flag string // the command-line flag that supplies it: --db-host …
	Expr string // the expression as written, "" when not defined
	Err  error  // ErrNotDefined or ErrUnresolved
}

func (e *ValueError) Error() string {
	if e.Expr != "" {
		return fmt.Sprintf("wp-config.php: %s is %s (%s); pass it with %s", e.Name, e.Err, e.Expr, e.Flag)
	}
	return fmt.Sprintf("wp-config.php: %s is %s; pass it with %s", e.Name, e.Err, e.Flag)
}

func (e *ValueError) Unwrap() error { return e.Err }

// Kind says what sort of PHP value a Value holds.
type Kind int

// The kinds of Value. KindUnknown is an expression that was not evaluated.
const (
	KindUnknown Kind = iota
	KindString
	KindNumber
	KindBool
	KindNull
)

// Path bases a string Value may be relative to (Value.Base).
const (
	BaseABSPATH = "ABSPATH" // the site root
	BaseConfDir = "__DIR__" // the folder holding wp-config.php
)

// Value is the value of a constant or variable in wp-config.php.
type Value struct {
	Kind Kind
	// Text is the decoded string, the number as written, "true" or "false",
	// "null", or for KindUnknown the expression's source text.
	Text string
	// Base, when set, says the string is Text appended to a path sitevault
	// knows only relative to the site: ABSPATH . 'x' or __DIR__ . '/x'.
	Base string
}

// Known reports whether the value was evaluated.
func (v Value) Known() bool { return v.Kind != KindUnknown }

// Truthy applies PHP's boolean conversion ("", "0", 0, false and null are false).
func (v Value) Truthy() bool {
	switch v.Kind {
	case KindBool:
		return v.Text == "true"
	case KindNull, KindUnknown:
		return false
	case KindNumber:
		f, err := strconv.ParseFloat(strings.ReplaceAll(v.Text, "_", ""), 64)
		if err != nil {
			if n, err := strconv.ParseInt(strings.ReplaceAll(v.Text, "_", ""), 0, 64); err == nil {
				return n != 0
			}
			return true
		}
		return f != 0
	}
	return v.Base != "" || v.Text != "" && v.Text != "0"
}

// String applies PHP's string conversion (true is "1", false and null are
// ""). A path-based value reads `ABSPATH . "rest"`, for messages.
func (v Value) String() string {
	switch v.Kind {
	case KindBool:
		if v.Text == "true" {
			return "1"
		}
		return ""
	case KindNull:
		return ""
	}
	if v.Base != "" {
		return v.Base + " . " + strconv.Quote(v.Text)
	}
	return v.Text
}

// ParseOptions tunes ParseConfig.
type ParseOptions struct {
	// Env looks up an environment variable of the site's PHP process for
	// getenv(), getenv_docker(), $_ENV and $_SERVER. When nil, every
	// variable is unset and their defaults apply.
	Env func(name string) (string, bool)
}

// Config is what ParseConfig read from wp-config.php.
type Config struct {
	// Constants holds every define() and const, by name, with the first
	// definition's value (PHP keeps the first; later ones only warn).
	Constants map[string]Value
	// Vars holds top-level variable assignments ($table_prefix …), last one winning.
	Vars map[string]Value
	// Includes lists the files the config requires or includes, as written
	// (wp-settings.php left out). sitevault does not read them; settings
	// they define take precedence over guarded defaults such as Debian's
	// `if (!defined('DB_NAME')) define('DB_NAME', 'wordpress');`, so callers
	// should mention them when the database settings turn out wrong.
	Includes []string
}

// Constant returns a constant's value and whether it is defined.
func (c *Config) Constant(name string) (Value, bool) {
	v, ok := c.Constants[name]
	return v, ok
}

// Multisite reports whether the site is a multisite network (MULTISITE is true).
func (c *Config) Multisite() bool { return c.Constants["MULTISITE"].Truthy() }

// AllowMultisite reports whether WP_ALLOW_MULTISITE is true: the network
// setup screen is enabled, the site may not be a network yet.
func (c *Config) AllowMultisite() bool { return c.Constants["WP_ALLOW_MULTISITE"].Truthy() }

// SubdomainInstall reports whether a network's sites live on subdomains
// (SUBDOMAIN_INSTALL true, or the legacy VHOST 'yes').
func (c *Config) SubdomainInstall() bool {
	if v, ok := c.Constants["SUBDOMAIN_INSTALL"]; ok {
		return v.Truthy()
	}
	return strings.EqualFold(c.Constants["VHOST"].String(), "yes")
}

// ContentDir returns the content folder relative to the site root:
// "wp-content" when WP_CONTENT_DIR is not defined, the folder it names when
// that lies inside the root. ok is false when WP_CONTENT_DIR points outside
// the root or cannot be evaluated; dir is then its value as written.
// configAbove says wp-config.php sits one folder above the root.
func (c *Config) ContentDir(configAbove bool) (dir string, ok bool) {
	v, defined := c.Constants["WP_CONTENT_DIR"]
	if !defined {
		return "wp-content", true
	}
	if v.Kind != KindString {
		return v.Text, false
	}
	rel := ""
	switch {
	case v.Base == BaseABSPATH || v.Base == BaseConfDir && !configAbove:
		rel = v.Text
	case v.Base == "" && path.IsAbs(v.Text):
		// Absolute: inside the root only if ABSPATH is defined absolute too.
		abs, ok := c.Constants["ABSPATH"]
		if !ok || abs.Kind != KindString || abs.Base != "" || !path.IsAbs(abs.Text) {
			return v.Text, false
		}
		root := path.Clean(abs.Text)
		p := path.Clean(v.Text)
		if !strings.HasPrefix(p, root+"/") {
			return v.Text, false
		}
		rel = p[len(root)+1:]
	default:
		return v.String(), false
	}
	rel = path.Clean("/" + rel)[1:]
	if rel == "" {
		return v.String(), false
	}
	return rel, true
}

// Overrides replace settings read from wp-config.php (the --db-* and
// --table-prefix flags). A nil field keeps the parsed value.
type Overrides struct {
	DBName, DBUser, DBPassword, DBHost, TablePrefix *string
}

// Database is what a site's database connection needs.
type Database struct {
	Name, User, Password string
	Host                 string // as written; ParseDBHost turns it into an address
	Charset, Collate     string // "" when not defined
	TablePrefix          string
}

var prefixRE = regexp.MustCompile(`^[A-Za-z0-9_]+$`)

// Database returns the database settings, o applied over the parsed values.
// A setting that is not defined or cannot be evaluated yields a *ValueError
// naming it and its flag; all such errors are joined so that the user sees
// every missing flag at once.
func (c *Config) Database(o Overrides) (Database, error) {
	var errs []error
	get := func(name, flag string, over *string, v Value, defined bool) string {
		switch {
		case over != nil:
			return *over
		case !defined:
			errs = append(errs, &ValueError{Name: name, Flag: flag, Err: ErrNotDefined})
		case v.Kind == KindUnknown || v.Base != "":
			expr := v.Text
			if v.Base != "" {
				expr = v.String()
			}
			errs = append(errs, &ValueError{Name: name, Flag: flag, Expr: expr, Err: ErrUnresolved})
		default:
			return v.String()
		}
		return ""
	}
	constant := func(name, flag string, over *string) string {
		v, ok := c.Constants[name]
		return get(name, flag, over, v, ok)
	}
	var db Database
	db.Name = constant("DB_NAME", "--db-name", o.DBName)
	db.User = constant("DB_USER", "--db-user", o.DBUser)
	db.Password = constant("DB_PASSWORD", "--db-password", o.DBPassword)
	db.Host = constant("DB_HOST", "--db-host", o.DBHost)
	tp, ok := c.Vars["table_prefix"]
	db.TablePrefix = get("$table_prefix", "--table-prefix", o.TablePrefix, tp, ok)
	if db.TablePrefix != "" && !prefixRE.MatchString(db.TablePrefix) {
		errs = append(errs, fmt.Errorf("table prefix %q: %w: WordPress allows only letters, digits and underscores; pass the right one with --table-prefix", db.TablePrefix, ErrBadTablePrefix))
	}
	if v, ok := c.Constants["DB_CHARSET"]; ok && v.Known() {
		db.Charset = v.String()
	}
	if v, ok := c.Constants["DB_COLLATE"]; ok && v.Known() {
		db.Collate = v.String()
	}
	return db, errors.Join(errs...)
}

// ParseConfig reads wp-config.php source without running it. It records
// every define('NAME', value), const NAME = value and top-level $var = value.
// Values it cannot evaluate are kept as KindUnknown with their source text.
// Code is never followed: files the config includes are not read, and
// conditions are not evaluated (the first define of a name wins, as PHP
// keeps the first). The error wraps ErrSyntax when the source cannot be
// tokenized.
func ParseConfig(src []byte, opts ParseOptions) (*Config, error) {
	toks, err := tokenize(string(src))
	if err != nil {
		return nil, fmt.Errorf("parse wp-config.php: %w", err)
	}
	p := &parser{toks: toks, env: opts.Env, cfg: &Config{Constants: map[string]Value{}, Vars: map[string]Value{}}}
	p.run()
	return p.cfg, nil
}

type parser struct {
	toks []token
	env  func(string) (string, bool)
	cfg  *Config
}

func (p *parser) at(i int) token {
	if i < 0 || i >= len(p.toks) {
		return token{kind: tEOF}
	}
	return p.toks[i]
}

func isPunct(t token, s string) bool { return t.kind == tPunct && t.text == s }

func isKeyword(t token, s string) bool { return t.kind == tIdent && strings.EqualFold(t.text, s) }

// matching returns the index of the bracket closing the one at i, or len(toks).
func (p *parser) matching(i int) int {
	depth := 0
	for j := i; j < len(p.toks); j++ {
		switch {
		case isPunct(p.toks[j], "(") || isPunct(p.toks[j], "[") || isPunct(p.toks[j], "{"):
			depth++
		case isPunct(p.toks[j], ")") || isPunct(p.toks[j], "]") || isPunct(p.toks[j], "}"):
			depth--
			if depth == 0 {
				return j
			}
		}
	}
	return len(p.toks)
}

// until returns the index of the first top-level token in [i, len) that is
// one of stops, or len(toks).
func (p *parser) until(i int, stops ...string) int {
	for j := i; j < len(p.toks); j++ {
		t := p.toks[j]
		if t.kind == tPunct {
			for _, s := range stops {
				if t.text == s {
					return j
				}
			}
			if t.text == "(" || t.text == "[" || t.text == "{" {
				j = p.matching(j)
			}
		}
	}
	return len(p.toks)
}

func (p *parser) run() {
	for i := 0; i < len(p.toks); i++ {
		t := p.toks[i]
		prev := p.at(i - 1)
		member := isPunct(prev, "->") || isPunct(prev, "?->") || isPunct(prev, "::") || isKeyword(prev, "function") || isKeyword(prev, "new")
		switch {
		case t.kind == tIdent && !member && (isKeyword(t, "class") || isKeyword(t, "interface") || isKeyword(t, "trait") || isKeyword(t, "enum")) && p.at(i+1).kind == tIdent,
			isKeyword(t, "function") && !member:
			// Code in class and function bodies does not run when the
			// config is loaded; skip to the end of the body.
			j := i + 1
			for j < len(p.toks) && !isPunct(p.toks[j], "{") && !isPunct(p.toks[j], ";") {
				if isPunct(p.toks[j], "(") {
					j = p.matching(j)
				}
				j++
			}
			if j < len(p.toks) && isPunct(p.toks[j], "{") {
				j = p.matching(j)
			}
			i = j
		case !member && (isKeyword(t, "require") || isKeyword(t, "require_once") || isKeyword(t, "include") || isKeyword(t, "include_once")):
			end := p.until(i+1, ";")
			expr := p.toks[i+1 : end]
			if v := p.eval(expr); !(v.Kind == KindString && v.Base == BaseABSPATH && v.Text == "wp-settings.php") {
				p.cfg.Includes = append(p.cfg.Includes, source(expr))
			}
			i = end
		case isKeyword(t, "define") && !member && isPunct(p.at(i+1), "("):
			end := p.matching(i + 1)
			args := p.split(i+2, end)
			if len(args) >= 2 {
				name := p.eval(args[0])
				if name.Kind == KindString && name.Base == "" {
					if _, dup := p.cfg.Constants[name.Text]; !dup {
						p.cfg.Constants[name.Text] = p.eval(args[1])
					}
				}
			}
			i = end
		case isKeyword(t, "const") && !member:
			// const A = 1, B = 2;
			j := i + 1
			for p.at(j).kind == tIdent && isPunct(p.at(j+1), "=") {
				end := p.until(j+2, ",", ";")
				if _, dup := p.cfg.Constants[p.toks[j].text]; !dup {
					p.cfg.Constants[p.toks[j].text] = p.eval(p.toks[j+2 : end])
				}
				j = end + 1
				if !isPunct(p.at(end), ",") {
					break
				}
			}
			i = j - 1
		case t.kind == tVar && isPunct(p.at(i+1), "=") && !isPunct(prev, "->") && !isPunct(prev, "::") && !isPunct(prev, "$"):
			end := p.until(i+2, ";", ")", "]", "}", ",")
			p.cfg.Vars[t.text] = p.eval(p.toks[i+2 : end])
			i = end - 1
		}
	}
}

// split divides toks[from:to] at top-level commas.
func (p *parser) split(from, to int) [][]token {
	if to > len(p.toks) {
		to = len(p.toks)
	}
	var args [][]token
	for from < to {
		end := p.until(from, ",")
		if end > to {
			end = to
		}
		args = append(args, p.toks[from:end])
		from = end + 1
	}
	return args
}

func source(toks []token) string {
	parts := make([]string, len(toks))
	for i, t := range toks {
		parts[i] = t.raw
	}
	return strings.Join(parts, " ")
}

// eval evaluates an expression, or returns KindUnknown with its source.
func (p *parser) eval(toks []token) Value {
	e := &evaluator{p: p, toks: toks}
	v, ok := e.ternary()
	if !ok || e.i != len(toks) {
		return Value{Kind: KindUnknown, Text: source(toks)}
	}
	return v
}

// evaluator is a recursive-descent evaluator over one expression's tokens
// for: literals, constants already defined, ".", "?:", "??", parentheses,
// unary minus, getenv, getenv_docker, $_ENV/$_SERVER, ABSPATH, __DIR__ and
// dirname(__FILE__).
type evaluator struct {
	p     *parser
	toks  []token
	i     int
	depth int // nesting of parentheses and calls, bounded by maxDepth
}

// maxDepth bounds expression nesting so that a hostile file cannot
// exhaust the stack; real configs nest two or three levels.
const maxDepth = 64

func (e *evaluator) peek() token {
	if e.i >= len(e.toks) {
		return token{kind: tEOF}
	}
	return e.toks[e.i]
}

func (e *evaluator) take(s string) bool {
	if isPunct(e.peek(), s) {
		e.i++
		return true
	}
	return false
}

// ternary: coalesce ( "?:" coalesce )*
func (e *evaluator) ternary() (Value, bool) {
	v, ok := e.coalesce()
	for ok && e.take("?:") {
		r, rok := e.coalesce()
		if !rok {
			return Value{}, false
		}
		if !v.Truthy() {
			v = r
		}
	}
	return v, ok
}

// coalesce: concat ( "??" concat )*, the first operand that is not null
// (a missing $_ENV or $_SERVER entry is null here). ?? is right-associative
// in PHP, but with side-effect-free operands a loop gives the same value
// without recursion.
func (e *evaluator) coalesce() (Value, bool) {
	v, ok := e.concat()
	for ok && e.take("??") {
		r, rok := e.concat()
		if !rok {
			return Value{}, false
		}
		if v.Kind == KindNull {
			v = r
		}
	}
	return v, ok
}

// concat: unary ( "." unary )*
func (e *evaluator) concat() (Value, bool) {
	v, ok := e.unary()
	for ok && e.take(".") {
		r, rok := e.unary()
		if !rok || r.Base != "" {
			return Value{}, false
		}
		v = Value{Kind: KindString, Text: v.textForConcat() + r.String(), Base: v.Base}
	}
	return v, ok
}

// textForConcat is the string a value contributes to a concatenation,
// keeping a path base aside.
func (v Value) textForConcat() string {
	if v.Base != "" {
		return v.Text
	}
	return v.String()
}

func (e *evaluator) unary() (Value, bool) {
	t := e.peek()
	switch {
	case isPunct(t, "("):
		e.i++
		if e.depth++; e.depth > maxDepth {
			return Value{}, false
		}
		defer func() { e.depth-- }()
		// A cast such as (string) is not supported; it fails below.
		v, ok := e.ternary()
		if !ok || !e.take(")") {
			return Value{}, false
		}
		return v, true
	case isPunct(t, "-") || isPunct(t, "+"):
		e.i++
		n := e.peek()
		if n.kind != tNumber {
			return Value{}, false
		}
		e.i++
		if t.text == "-" {
			return Value{Kind: KindNumber, Text: "-" + n.text}, true
		}
		return Value{Kind: KindNumber, Text: n.text}, true
	}
	return e.primary()
}

func (e *evaluator) primary() (Value, bool) {
	t := e.peek()
	e.i++
	for isPunct(t, `\`) && e.peek().kind == tIdent { // \getenv(…), \PHP_EOL
		t = e.peek()
		e.i++
	}
	switch t.kind {
	case tString:
		return Value{Kind: KindString, Text: t.text}, true
	case tNumber:
		return Value{Kind: KindNumber, Text: t.text}, true
	case tVar:
		if (t.text == "_ENV" || t.text == "_SERVER") && isPunct(e.peek(), "[") {
			e.i++
			k := e.peek()
			if k.kind != tString {
				return Value{}, false
			}
			e.i++
			if !e.take("]") {
				return Value{}, false
			}
			if v, ok := e.lookup(k.text); ok {
				return Value{Kind: KindString, Text: v}, true
			}
			return Value{Kind: KindNull, Text: "null"}, true
		}
		return Value{}, false
	case tIdent:
	default:
		return Value{}, false
	}
	name := t.text
	if isPunct(e.peek(), "(") {
		return e.call(name)
	}
	switch strings.ToLower(name) {
	case "true":
		return Value{Kind: KindBool, Text: "true"}, true
	case "false":
		return Value{Kind: KindBool, Text: "false"}, true
	case "null":
		return Value{Kind: KindNull, Text: "null"}, true
	}
	switch name {
	case "ABSPATH":
		// wp-load.php defines ABSPATH as the site root before it loads
		// wp-config.php, so the config's own define never takes effect.
		return Value{Kind: KindString, Base: BaseABSPATH}, true
	case "__DIR__":
		return Value{Kind: KindString, Base: BaseConfDir, Text: ""}, true
	case "PHP_EOL":
		return Value{Kind: KindString, Text: "\n"}, true
	case "DIRECTORY_SEPARATOR":
		return Value{Kind: KindString, Text: "/"}, true
	}
	if v, ok := e.p.cfg.Constants[name]; ok && v.Known() {
		return v, true
	}
	return Value{}, false
}

// call evaluates the few functions wp-config.php files use for values.
func (e *evaluator) call(name string) (Value, bool) {
	open := e.i
	end := open
	depth := 0
	for ; end < len(e.toks); end++ {
		if isPunct(e.toks[end], "(") {
			depth++
		} else if isPunct(e.toks[end], ")") {
			depth--
			if depth == 0 {
				break
			}
		}
	}
	if end >= len(e.toks) || e.depth >= maxDepth {
		return Value{}, false
	}
	if strings.EqualFold(name, "dirname") && end == open+2 && isKeyword(e.toks[open+1], "__FILE__") {
		e.i = end + 1
		return Value{Kind: KindString, Base: BaseConfDir}, true
	}
	var args []Value
	inner := e.toks[open+1 : end]
	for len(inner) > 0 {
		sub := &evaluator{p: e.p, toks: inner, depth: e.depth + 1}
		v, ok := sub.ternary()
		if !ok {
			return Value{}, false
		}
		args = append(args, v)
		inner = inner[sub.i:]
		if len(inner) > 0 {
			if !isPunct(inner[0], ",") {
				return Value{}, false
			}
			inner = inner[1:]
		}
	}
	e.i = end + 1
	str := func(v Value) bool { return v.Kind == KindString && v.Base == "" }
	switch strings.ToLower(name) {
	case "getenv":
		if len(args) < 1 || !str(args[0]) {
			return Value{}, false
		}
		if v, ok := e.lookup(args[0].Text); ok {
			return Value{Kind: KindString, Text: v}, true
		}
		return Value{Kind: KindBool, Text: "false"}, true
	case "getenv_docker":
		// The official image's helper: NAME_FILE names a file holding the
		// value (unreadable from here), else NAME, else the default.
		if len(args) != 2 || !str(args[0]) {
			return Value{}, false
		}
		if _, ok := e.lookup(args[0].Text + "_FILE"); ok {
			return Value{}, false
		}
		if v, ok := e.lookup(args[0].Text); ok {
			return Value{Kind: KindString, Text: v}, true
		}
		return args[1], true
	}
	return Value{}, false
}

func (e *evaluator) lookup(name string) (string, bool) {
	if e.p.env == nil {
		return "", false
	}
	return e.p.env(name)
}
