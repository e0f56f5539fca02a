package wordpress

import (
	"errors"
	"fmt"
	"io/fs"
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
	// includes); a ValueError names it.
	ErrNotDefined = errors.New("not defined in wp-config.php")
	// ErrUnresolved means a setting is defined by an expression sitevault
	// cannot evaluate without running PHP; a ValueError names it.
	ErrUnresolved = errors.New("set by an expression sitevault cannot evaluate")
	// ErrBadTablePrefix means the table prefix holds characters WordPress
	// itself refuses (anything but letters, digits and underscores); a
	// ValueError for $table_prefix holds it in Expr.
	ErrBadTablePrefix = errors.New("invalid table prefix")
	// ErrConditional means a setting is defined inside a condition that
	// sitevault cannot decide from the site's files and environment; a
	// ValueError names the line and the condition.
	ErrConditional = errors.New("defined inside a condition sitevault cannot decide")
)

// ValueError reports a database setting that could not be determined or
// cannot be used. It says what is wrong, not how to supply the value: that
// depends on the caller (a flag of the CLI, a field of the service's form).
type ValueError struct {
	Name string // DB_NAME, DB_USER, DB_PASSWORD, DB_HOST or $table_prefix
	Expr string // the expression as written ("" when not defined); the value for ErrBadTablePrefix
	Err  error  // ErrNotDefined, ErrUnresolved, ErrConditional or ErrBadTablePrefix
	// Line and Cond, for ErrConditional: the line of the define and the
	// condition sitevault could not decide.
	Line int
	Cond string
}

func (e *ValueError) Error() string {
	switch {
	case errors.Is(e.Err, ErrBadTablePrefix):
		return fmt.Sprintf("table prefix %q: %v: WordPress allows only letters, digits and underscores", e.Expr, e.Err)
	case e.Line > 0:
		return fmt.Sprintf("wp-config.php line %d: %s is %s (%s)", e.Line, e.Name, e.Err, e.Cond)
	case e.Expr != "":
		return fmt.Sprintf("wp-config.php: %s is %s (%s)", e.Name, e.Err, e.Expr)
	}
	return fmt.Sprintf("wp-config.php: %s is %s", e.Name, e.Err)
}

func (e *ValueError) Unwrap() error { return e.Err }

// Reasons of a ValueError (ValueError.Reason), stable slugs for grouping
// and for a form to mark the field.
const (
	ReasonNotDefined     = "not_defined"
	ReasonUnresolved     = "unresolved"
	ReasonConditional    = "conditional"
	ReasonBadTablePrefix = "bad_table_prefix"
)

// Reason returns why the value is unusable as a slug (Reason… constants).
func (e *ValueError) Reason() string {
	switch {
	case errors.Is(e.Err, ErrNotDefined):
		return ReasonNotDefined
	case errors.Is(e.Err, ErrConditional):
		return ReasonConditional
	case errors.Is(e.Err, ErrBadTablePrefix):
		return ReasonBadTablePrefix
	}
	return ReasonUnresolved
}

// ValueErrors returns every *ValueError in err (a joined error as
// Config.Database returns it, or one wrapping such), in order.
func ValueErrors(err error) []*ValueError {
	var out []*ValueError
	var walk func(error)
	walk = func(e error) {
		switch x := e.(type) {
		case nil:
		case *ValueError:
			out = append(out, x)
		case interface{ Unwrap() []error }:
			for _, y := range x.Unwrap() {
				walk(y)
			}
		case interface{ Unwrap() error }:
			walk(x.Unwrap())
		}
	}
	walk(err)
	return out
}

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
	// Line and Cond are set on a KindUnknown value defined or assigned in a
	// branch sitevault could not decide: the line of the define and the
	// condition's source (shortened).
	Line int
	Cond string
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
	// Stat answers file_exists(), is_file() and is_dir() in conditions:
	// the mode of name, or an error wrapping fs.ErrNotExist when it is
	// missing. base is BaseABSPATH or BaseConfDir for a path relative to
	// the site root or wp-config.php's folder (name is then cleaned and
	// may start with "../"), or "" for an absolute name. Any other error
	// leaves the condition undecided. When nil, no such condition can be
	// decided.
	Stat func(base, name string) (fs.FileMode, error)
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

// Overrides replace settings read from wp-config.php (the site's database
// settings in the catalog). A nil field keeps the parsed value.
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
// A setting that is not defined, cannot be evaluated or (the table prefix)
// is invalid yields a *ValueError naming it; all such errors are joined so
// that the user sees every missing value at once (ValueErrors lists them).
func (c *Config) Database(o Overrides) (Database, error) {
	var errs []error
	get := func(name string, over *string, v Value, defined bool) string {
		switch {
		case over != nil:
			return *over
		case !defined:
			errs = append(errs, &ValueError{Name: name, Err: ErrNotDefined})
		case v.Line > 0:
			errs = append(errs, &ValueError{Name: name, Expr: v.Text, Err: ErrConditional, Line: v.Line, Cond: v.Cond})
		case v.Kind == KindUnknown || v.Base != "":
			expr := v.Text
			if v.Base != "" {
				expr = v.String()
			}
			errs = append(errs, &ValueError{Name: name, Expr: expr, Err: ErrUnresolved})
		default:
			return v.String()
		}
		return ""
	}
	constant := func(name string, over *string) string {
		v, ok := c.Constants[name]
		return get(name, over, v, ok)
	}
	var db Database
	db.Name = constant("DB_NAME", o.DBName)
	db.User = constant("DB_USER", o.DBUser)
	db.Password = constant("DB_PASSWORD", o.DBPassword)
	db.Host = constant("DB_HOST", o.DBHost)
	tp, ok := c.Vars["table_prefix"]
	db.TablePrefix = get("$table_prefix", o.TablePrefix, tp, ok)
	if db.TablePrefix != "" && !prefixRE.MatchString(db.TablePrefix) {
		errs = append(errs, &ValueError{Name: "$table_prefix", Expr: db.TablePrefix, Err: ErrBadTablePrefix})
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
// every define('NAME', value), const NAME = value and top-level $var = value
// that runs when the file is loaded. Values it cannot evaluate are kept as
// KindUnknown with their source text. Files the config includes are not
// read. Conditions (if/elseif/else in both syntaxes, ternaries, `a || define(…)`)
// are decided as PHP would where the files and environment tell:
// file_exists, is_file, is_dir (through opts.Stat), defined, getenv and
// $_ENV/$_SERVER (through opts.Env), with !, &&, ||, and, or and
// comparisons. A setting defined in a branch that cannot be decided is
// KindUnknown with Line and Cond set, and Database reports it with
// ErrConditional. The first define of a name wins, as in PHP. The error
// wraps ErrSyntax when the source cannot be tokenized.
func ParseConfig(src []byte, opts ParseOptions) (*Config, error) {
	toks, err := tokenize(string(src))
	if err != nil {
		return nil, fmt.Errorf("parse wp-config.php: %w", err)
	}
	p := &parser{toks: toks, env: opts.Env, stat: opts.Stat, cfg: &Config{Constants: map[string]Value{}, Vars: map[string]Value{}}}
	p.run(0, len(toks), nil, 0)
	return p.cfg, nil
}
