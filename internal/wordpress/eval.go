package wordpress

import (
	"strconv"
	"strings"
)

// evaluator is a recursive-descent evaluator over one expression's tokens
// for: literals, constants already defined, ".", "? :", "?:", "??", "!",
// "&&", "||", "and", "or", comparisons, parentheses, unary minus, getenv,
// getenv_docker, $_ENV/$_SERVER, defined, file_exists, is_file, is_dir,
// ABSPATH, __DIR__ and dirname(__FILE__).
//
// Each rule returns ok=false when the tokens are not an expression it can
// parse, and a KindUnknown value when it parses but cannot be evaluated
// (a variable, an unknown function), so that `false && unknown` is still
// decided as PHP would.
type evaluator struct {
	p     *parser
	toks  []token
	i     int
	depth int // nesting of parentheses, calls and ternaries, bounded by maxDepth
}

// maxDepth bounds expression and statement nesting so that a hostile file
// cannot exhaust the stack; real configs nest two or three levels.
const maxDepth = 64

var unknown = Value{Kind: KindUnknown}

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

func (e *evaluator) takeKeyword(s string) bool {
	if isKeyword(e.peek(), s) {
		e.i++
		return true
	}
	return false
}

// expr: lowAnd ( "or" lowAnd )*
func (e *evaluator) expr() (Value, bool) {
	v, ok := e.lowAnd()
	for ok && (e.takeKeyword("or") || e.takeKeyword("xor")) {
		xor := isKeyword(e.toks[e.i-1], "xor")
		r, rok := e.lowAnd()
		if !rok {
			return Value{}, false
		}
		if xor {
			if !v.Known() || !r.Known() {
				v = unknown
			} else {
				v = boolValue(v.Truthy() != r.Truthy())
			}
			continue
		}
		v = or(v, r)
	}
	return v, ok
}

// lowAnd: ternary ( "and" ternary )*
func (e *evaluator) lowAnd() (Value, bool) {
	v, ok := e.ternary()
	for ok && e.takeKeyword("and") {
		r, rok := e.ternary()
		if !rok {
			return Value{}, false
		}
		v = and(v, r)
	}
	return v, ok
}

func or(a, b Value) Value {
	switch {
	case a.Known() && a.Truthy(), b.Known() && b.Truthy():
		return boolValue(true)
	case a.Known() && b.Known():
		return boolValue(false)
	}
	return unknown
}

func and(a, b Value) Value {
	switch {
	case a.Known() && !a.Truthy(), b.Known() && !b.Truthy():
		return boolValue(false)
	case a.Known() && b.Known():
		return boolValue(true)
	}
	return unknown
}

// ternary: coalesce ( "?:" coalesce | "?" ternary ":" coalesce )*
func (e *evaluator) ternary() (Value, bool) {
	guesses := e.p.envGuesses
	v, ok := e.coalesce()
	for ok {
		switch {
		case e.take("?:"):
			r, rok := e.coalesce()
			if !rok {
				return Value{}, false
			}
			switch {
			case !v.Known():
			case !v.Truthy():
				v = r
			}
		case e.take("?"):
			if e.depth++; e.depth > maxDepth {
				return Value{}, false
			}
			a, aok := e.ternary()
			e.depth--
			if !aok || !e.take(":") {
				return Value{}, false
			}
			b, bok := e.coalesce()
			if !bok {
				return Value{}, false
			}
			switch {
			case !v.Known() || e.p.envGuesses != guesses:
				v = unknown
			case v.Truthy():
				v = a
			default:
				v = b
			}
		default:
			return v, true
		}
	}
	return v, ok
}

// coalesce: orOp ( "??" orOp )*, the first operand that is not null
// (a missing $_ENV or $_SERVER entry is null here). ?? is right-associative
// in PHP, but with side-effect-free operands a loop gives the same value
// without recursion.
func (e *evaluator) coalesce() (Value, bool) {
	v, ok := e.orOp()
	for ok && e.take("??") {
		r, rok := e.orOp()
		if !rok {
			return Value{}, false
		}
		if v.Kind == KindNull {
			v = r
		}
	}
	return v, ok
}

// orOp: andOp ( "||" andOp )*
func (e *evaluator) orOp() (Value, bool) {
	v, ok := e.andOp()
	for ok && e.take("||") {
		r, rok := e.andOp()
		if !rok {
			return Value{}, false
		}
		v = or(v, r)
	}
	return v, ok
}

// andOp: equality ( "&&" equality )*
func (e *evaluator) andOp() (Value, bool) {
	v, ok := e.equality()
	for ok && e.take("&&") {
		r, rok := e.equality()
		if !rok {
			return Value{}, false
		}
		v = and(v, r)
	}
	return v, ok
}

// equality: concat ( ("==="|"!=="|"=="|"!="|"<>") concat )?
func (e *evaluator) equality() (Value, bool) {
	v, ok := e.concat()
	if !ok {
		return v, ok
	}
	for _, op := range []string{"===", "!==", "==", "!=", "<>"} {
		if !e.take(op) {
			continue
		}
		r, rok := e.concat()
		if !rok {
			return Value{}, false
		}
		if !v.Known() || !r.Known() || v.Base != "" || r.Base != "" {
			return unknown, true
		}
		var eq bool
		if op == "===" || op == "!==" {
			eq = v.Kind == r.Kind && v.Text == r.Text
		} else {
			eq = looseEqual(v, r)
		}
		return boolValue(eq != (op == "!==" || op == "!=" || op == "<>")), true
	}
	return v, true
}

// looseEqual is PHP 8's == for scalars: with a bool or null both sides are
// compared as booleans, two numeric values as numbers, otherwise as strings.
func looseEqual(a, b Value) bool {
	if a.Kind == KindBool || b.Kind == KindBool || a.Kind == KindNull || b.Kind == KindNull {
		if a.Kind == KindNull && b.Kind == KindString || b.Kind == KindNull && a.Kind == KindString {
			return a.String() == b.String()
		}
		return a.Truthy() == b.Truthy()
	}
	x, xerr := strconv.ParseFloat(strings.TrimSpace(strings.ReplaceAll(a.String(), "_", "")), 64)
	y, yerr := strconv.ParseFloat(strings.TrimSpace(strings.ReplaceAll(b.String(), "_", "")), 64)
	if xerr == nil && yerr == nil {
		return x == y
	}
	return a.String() == b.String()
}

// concat: unary ( "." unary )*
func (e *evaluator) concat() (Value, bool) {
	v, ok := e.unary()
	for ok && e.take(".") {
		r, rok := e.unary()
		if !rok || r.Base != "" {
			return Value{}, false
		}
		if !v.Known() || !r.Known() {
			v = unknown
			continue
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
	// "!" and "@" (error suppression) repeat without recursion.
	not := false
	for {
		if e.take("!") {
			not = !not
			continue
		}
		if e.take("@") {
			continue
		}
		break
	}
	v, ok := e.operand()
	if !ok || !not {
		return v, ok
	}
	if !v.Known() {
		return unknown, true
	}
	return boolValue(!v.Truthy()), true
}

func (e *evaluator) operand() (Value, bool) {
	t := e.peek()
	switch {
	case isPunct(t, "("):
		e.i++
		if e.depth++; e.depth > maxDepth {
			return Value{}, false
		}
		defer func() { e.depth-- }()
		// A cast such as (string) is not supported; it fails below.
		v, ok := e.expr()
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
	case tInterp:
		return unknown, true
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
		if isPunct(e.peek(), "[") || isPunct(e.peek(), "->") || isPunct(e.peek(), "(") {
			return Value{}, false
		}
		return unknown, true
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
	if isPunct(e.peek(), "::") || isPunct(e.peek(), `\`) {
		return Value{}, false
	}
	if v, ok := e.p.cfg.Constants[name]; ok && v.Known() {
		return v, true
	}
	return unknown, true
}

// call evaluates the few functions wp-config.php files use; any other
// call is unknown.
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
	if fn := strings.ToLower(name); (fn == "isset" || fn == "empty") && end == open+2 && e.toks[open+1].kind == tVar {
		// Language constructs over a variable assigned earlier in the config.
		e.i = end + 1
		v, set := e.p.cfg.Vars[e.toks[open+1].text]
		switch {
		case set && !v.Known():
			return unknown, true
		case fn == "isset":
			return boolValue(set && v.Kind != KindNull), true
		}
		return boolValue(!set || !v.Truthy()), true
	}
	var args []Value
	inner := e.toks[open+1 : end]
	for len(inner) > 0 {
		sub := &evaluator{p: e.p, toks: inner, depth: e.depth + 1}
		v, ok := sub.expr()
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
	switch fn := strings.ToLower(name); fn {
	case "getenv":
		if len(args) < 1 || !str(args[0]) {
			return unknown, true
		}
		if v, ok := e.lookup(args[0].Text); ok {
			return Value{Kind: KindString, Text: v}, true
		}
		return Value{Kind: KindBool, Text: "false"}, true
	case "getenv_docker":
		// The official image's helper: NAME_FILE names a file holding the
		// value (unreadable from here), else NAME, else the default.
		if len(args) != 2 || !str(args[0]) {
			return unknown, true
		}
		if _, ok := e.lookup(args[0].Text + "_FILE"); ok {
			return unknown, true
		}
		if v, ok := e.lookup(args[0].Text); ok {
			return Value{Kind: KindString, Text: v}, true
		}
		return args[1], true
	case "defined":
		if len(args) != 1 || !str(args[0]) {
			return unknown, true
		}
		return e.defined(strings.TrimPrefix(args[0].Text, `\`)), true
	case "file_exists", "is_file", "is_dir":
		if len(args) != 1 {
			return unknown, true
		}
		return e.p.statPath(fn, args[0]), true
	}
	return unknown, true
}

// defined answers defined(name) at this point of the config.
func (e *evaluator) defined(name string) Value {
	if name == "ABSPATH" {
		return boolValue(true) // wp-load.php defines it first
	}
	if v, ok := e.p.cfg.Constants[name]; ok {
		if v.Line > 0 {
			return unknown // defined in a branch that may not have run
		}
		return boolValue(true)
	}
	if strings.HasPrefix(name, "PHP_") || strings.HasPrefix(name, "E_") || strings.Contains(name, `\`) {
		return unknown // PHP's own constants and the runtime's
	}
	return boolValue(false)
}

func (e *evaluator) lookup(name string) (string, bool) {
	if e.p.env == nil {
		// No environment was recorded: "unset" is an assumption, good for
		// a default (getenv('X') ?: 'd') but not for choosing a branch.
		e.p.envGuesses++
		return "", false
	}
	return e.p.env(name)
}
