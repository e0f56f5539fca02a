package wordpress

import (
	"errors"
	"io/fs"
	"path"
	"strings"
)

// This file walks wp-config.php's tokens the way PHP would run them, as far
// as that can be known without running anything: top-level statements run,
// function and class bodies do not, and the branches of if/elseif/else run
// or not as their conditions say. A branch whose condition cannot be
// decided is walked as "undecided": what it defines is recorded as unknown,
// with the line and the condition, so a caller never takes a guess for a
// fact.

type parser struct {
	toks []token
	env  func(string) (string, bool)
	stat func(base, name string) (fs.FileMode, error)
	cfg  *Config
	// envGuesses counts environment lookups answered "unset" for want of
	// a recorded environment; a condition that made one is undecided.
	envGuesses int
}

// evalCond evaluates a condition; one that depends on an environment
// that was not recorded is unknown.
func (p *parser) evalCond(toks []token) Value {
	before := p.envGuesses
	v := p.eval(toks)
	if p.envGuesses != before {
		return Value{Kind: KindUnknown, Text: v.Text}
	}
	return v
}

// undecided says why the code being walked may or may not run.
type undecided struct {
	cond string // the condition's source, shortened
}

// maxCondLen bounds a condition quoted in an error message.
const maxCondLen = 80

func shorten(s string) string {
	if len(s) > maxCondLen {
		return s[:maxCondLen] + "…"
	}
	return s
}

func (p *parser) at(i int) token {
	if i < 0 || i >= len(p.toks) {
		return token{kind: tEOF}
	}
	return p.toks[i]
}

func isPunct(t token, s string) bool { return t.kind == tPunct && t.text == s }

func isKeyword(t token, s string) bool { return t.kind == tIdent && strings.EqualFold(t.text, s) }

func isKeywordIn(t token, words ...string) bool {
	for _, w := range words {
		if isKeyword(t, w) {
			return true
		}
	}
	return false
}

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

// setConstant records a define or const; the first definition wins. In an
// undecided branch a name not yet defined becomes unknown, since PHP may
// or may not define it there (and a later define would then not count).
func (p *parser) setConstant(name string, v Value, line int, u *undecided) {
	if _, dup := p.cfg.Constants[name]; dup {
		return
	}
	if u != nil {
		v = Value{Kind: KindUnknown, Text: v.String(), Line: line, Cond: u.cond}
	}
	p.cfg.Constants[name] = v
}

// setVar records a top-level assignment; the last one wins.
func (p *parser) setVar(name string, v Value, line int, u *undecided) {
	if u != nil {
		v = Value{Kind: KindUnknown, Text: v.String(), Line: line, Cond: u.cond}
	}
	p.cfg.Vars[name] = v
}

// run walks the statements in toks[from:to]. u is non-nil inside a branch
// that may or may not run; depth counts nested control structures.
func (p *parser) run(from, to int, u *undecided, depth int) {
	to = min(to, len(p.toks))
	stmt := from // where the current statement began
	for i := from; i < to; i++ {
		t := p.toks[i]
		prev := p.at(i - 1)
		member := isPunct(prev, "->") || isPunct(prev, "?->") || isPunct(prev, "::") || isKeyword(prev, "function") || isKeyword(prev, "new")
		switch {
		case t.kind == tPunct && (t.text == ";" || t.text == "{" || t.text == "}"):
			stmt = i + 1
		case t.kind == tIdent && !member && (isKeyword(t, "class") || isKeyword(t, "interface") || isKeyword(t, "trait") || isKeyword(t, "enum")) && p.at(i+1).kind == tIdent,
			isKeyword(t, "function") && !member:
			// Code in class and function bodies does not run when the
			// config is loaded; skip to the end of the body.
			j := i + 1
			for j < to && !isPunct(p.toks[j], "{") && !isPunct(p.toks[j], ";") {
				if isPunct(p.toks[j], "(") {
					j = p.matching(j)
				}
				j++
			}
			if j < to && isPunct(p.toks[j], "{") {
				j = p.matching(j)
			}
			i = j
			stmt = i + 1
		case !member && isKeyword(t, "if") && isPunct(p.at(i+1), "("):
			if depth >= maxDepth {
				// Deeper than any real config: what follows is not
				// followed as PHP would, so none of it is trusted.
				u = &undecided{cond: "conditions nested too deeply"}
				continue
			}
			i = p.runIf(i, to, u, depth) - 1
			stmt = i + 1
		case !member && isKeywordIn(t, "while", "for", "foreach", "switch") && isPunct(p.at(i+1), "("):
			// A loop or switch body may run any number of times or not at
			// all: walk it as undecided.
			cend := min(p.matching(i+1), to)
			cond := &undecided{cond: shorten(strings.ToLower(t.text) + " " + source(p.toks[i+1:min(cend+1, to)]))}
			bodyFrom, bodyTo, next := p.body(cend+1, to, "end"+strings.ToLower(t.text), depth)
			if depth < maxDepth {
				p.run(bodyFrom, bodyTo, cond, depth+1)
			}
			i = next - 1
			stmt = next
		case !member && (isKeyword(t, "require") || isKeyword(t, "require_once") || isKeyword(t, "include") || isKeyword(t, "include_once")):
			end := min(p.until(i+1, ";"), to)
			expr := p.toks[i+1 : end]
			if v := p.eval(expr); !(v.Kind == KindString && v.Base == BaseABSPATH && v.Text == "wp-settings.php") {
				p.cfg.Includes = append(p.cfg.Includes, source(expr))
			}
			i = end
			stmt = i + 1
		case isKeyword(t, "define") && !member && isPunct(p.at(i+1), "("):
			end := min(p.matching(i+1), to)
			du := u
			if i > stmt && p.guardOp(prev) {
				// `defined('X') || define('X', …)`: the define runs as
				// the operator and the guard before it say.
				guard := p.evalCond(p.toks[stmt : i-1])
				and := isPunct(prev, "&&") || isKeyword(prev, "and")
				switch {
				case !guard.Known():
					du = &undecided{cond: shorten(source(p.toks[stmt : i-1]))}
				case guard.Truthy() != and:
					i = end
					continue
				}
			}
			args := p.split(i+2, end)
			if len(args) >= 2 {
				name := p.eval(args[0])
				if name.Kind == KindString && name.Base == "" {
					p.setConstant(name.Text, p.eval(args[1]), t.line, du)
				}
			}
			i = end
		case isKeyword(t, "const") && !member:
			// const A = 1, B = 2;
			j := i + 1
			for j < to && p.at(j).kind == tIdent && isPunct(p.at(j+1), "=") {
				end := min(p.until(j+2, ",", ";"), to)
				p.setConstant(p.toks[j].text, p.eval(p.toks[j+2:end]), p.toks[j].line, u)
				j = end + 1
				if !isPunct(p.at(end), ",") {
					break
				}
			}
			i = j - 1
			stmt = j
		case t.kind == tVar && isPunct(p.at(i+1), "=") && !isPunct(prev, "->") && !isPunct(prev, "::") && !isPunct(prev, "$"):
			end := min(p.until(i+2, ";", ")", "]", "}", ","), to)
			p.setVar(t.text, p.eval(p.toks[i+2:end]), t.line, u)
			i = end - 1
		}
	}
}

// guardOp reports whether t joins a guard to a define: && || and or.
func (p *parser) guardOp(t token) bool {
	return isPunct(t, "&&") || isPunct(t, "||") || isKeyword(t, "and") || isKeyword(t, "or")
}

// body finds the body of a control structure starting at i (just after its
// condition): a {…} block, `:` … endword (the alternative syntax, ending
// before a same-level elseif/else/endword), or one statement. It returns
// the body's tokens [from, to) and where the structure goes on (after the
// block or statement; at the elseif/else/endword for the alternative syntax).
func (p *parser) body(i, limit int, endword string, depth int) (from, to, next int) {
	switch {
	case i >= limit:
		return limit, limit, limit
	case isPunct(p.toks[i], "{"):
		end := min(p.matching(i), limit)
		return i + 1, end, min(end+1, limit)
	case isPunct(p.toks[i], ":"):
		end := p.altEnd(i+1, limit, endword)
		return i + 1, end, end
	case isKeyword(p.toks[i], "if") && isPunct(p.at(i+1), "("):
		// A nested if as the single statement: its whole chain.
		end := p.skipIf(i, limit, depth+1)
		return i, end, end
	}
	end := min(p.until(i, ";")+1, limit)
	return i, end, end
}

// skipIf returns where the if statement starting at i ends, without running it.
func (p *parser) skipIf(i, limit, depth int) int {
	if depth >= maxDepth {
		return limit
	}
	next := i
	for {
		// next is at `if` or `elseif`: skip its condition and body.
		cend := min(p.matching(next+1), limit)
		alt := isPunct(p.at(cend+1), ":")
		_, _, next = p.body(cend+1, limit, "endif", depth)
		if next >= limit {
			return limit
		}
		t := p.toks[next]
		switch {
		case isKeyword(t, "elseif") && isPunct(p.at(next+1), "("):
			continue
		case isKeyword(t, "else") && isKeyword(p.at(next+1), "if") && isPunct(p.at(next+2), "(") && !alt:
			next++
			continue
		case isKeyword(t, "else"):
			_, _, next = p.body(next+1, limit, "endif", depth)
			if alt && isKeyword(p.at(next), "endif") {
				return p.endStatement(next, limit)
			}
			return next
		case alt && isKeyword(t, "endif"):
			return p.endStatement(next, limit)
		}
		return next
	}
}

// endStatement returns the index after the `;` that ends the statement at i.
func (p *parser) endStatement(i, limit int) int {
	return min(p.until(i, ";")+1, limit)
}

// altEnd returns the index of the elseif, else or endword that ends an
// alternative-syntax body starting at i, skipping nested structures.
func (p *parser) altEnd(i, limit int, endword string) int {
	depth := 0
	for j := i; j < limit; j++ {
		t := p.toks[j]
		switch {
		case isPunct(t, "(") || isPunct(t, "[") || isPunct(t, "{"):
			j = p.matching(j)
		case isKeywordIn(t, "if", "while", "for", "foreach", "switch") && isPunct(p.at(j+1), "("):
			cend := p.matching(j + 1)
			switch {
			case isPunct(p.at(cend+1), ":"):
				depth++
				j = cend
			case isKeyword(t, "if"):
				// A brace-style if: its own else is not this body's end.
				j = p.skipIf(j, limit, 0) - 1
			default:
				j = cend
			}
		case isKeywordIn(t, "endif", "endwhile", "endfor", "endforeach", "endswitch"):
			if depth == 0 {
				return j
			}
			depth--
		case depth == 0 && endword == "endif" && isKeywordIn(t, "elseif", "else"):
			return j
		}
	}
	return limit
}

// runIf runs the if statement starting at i as PHP would: the first branch
// whose condition holds. A branch after an undecided condition is itself
// undecided. It returns the index after the statement.
func (p *parser) runIf(i, limit int, u *undecided, depth int) int {
	taken := false // a branch surely ran: the rest cannot
	var maybe *undecided
	next := i
	alt := false
	for {
		var cond Value
		var condSrc string
		var bodyAt int
		t := p.at(next)
		switch {
		case isKeyword(t, "if") || isKeyword(t, "elseif"):
			cend := min(p.matching(next+1), limit)
			condToks := p.toks[min(next+2, cend):cend]
			cond, condSrc = p.evalCond(condToks), shorten(source(condToks))
			bodyAt = cend + 1
			if isKeyword(t, "if") {
				alt = isPunct(p.at(bodyAt), ":")
			}
		default: // else
			cond, condSrc = Value{Kind: KindBool, Text: "true"}, ""
			bodyAt = next + 1
		}
		from, to, after := p.body(bodyAt, limit, "endif", depth)
		switch {
		case taken:
		case !cond.Known():
			bu := &undecided{cond: condSrc}
			p.run(from, to, bu, depth+1)
			if maybe == nil {
				maybe = bu
			}
		case cond.Truthy():
			// The branches before may have run (maybe) or surely did not;
			// the branches after surely do not.
			bu := u
			if maybe != nil {
				bu = maybe
			}
			p.run(from, to, bu, depth+1)
			taken = true
		}
		next = after
		if next >= limit {
			return limit
		}
		t = p.toks[next]
		switch {
		case isKeyword(t, "elseif") && isPunct(p.at(next+1), "("):
			continue
		case isKeyword(t, "else") && !alt && isKeyword(p.at(next+1), "if") && isPunct(p.at(next+2), "("):
			next++
			continue
		case isKeyword(t, "else"):
			continue
		case alt && isKeyword(t, "endif"):
			return p.endStatement(next, limit)
		}
		return next
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
	v, ok := e.expr()
	if !ok || e.i != len(toks) || !v.Known() {
		return Value{Kind: KindUnknown, Text: source(toks)}
	}
	return v
}

// statPath answers file_exists, is_file and is_dir for a path value:
// known true or false, or unknown.
func (p *parser) statPath(fn string, v Value) Value {
	unknown := Value{Kind: KindUnknown}
	if v.Kind != KindString || p.stat == nil {
		return unknown
	}
	var base, name string
	switch v.Base {
	case BaseABSPATH:
		// ABSPATH ends with a slash.
		base, name = BaseABSPATH, path.Clean(strings.TrimPrefix(v.Text, "/"))
	case BaseConfDir:
		// __DIR__ has no trailing slash: __DIR__ . 'x' names a sibling.
		if v.Text != "" && !strings.HasPrefix(v.Text, "/") {
			return unknown
		}
		base, name = BaseConfDir, path.Clean(strings.TrimPrefix(v.Text, "/"))
	default:
		// A relative path depends on PHP's working directory.
		if !path.IsAbs(v.Text) {
			return unknown
		}
		name = path.Clean(v.Text)
	}
	mode, err := p.stat(base, name)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return boolValue(false)
	case err != nil:
		return unknown
	case mode&fs.ModeSymlink != 0:
		return unknown
	}
	switch fn {
	case "is_file":
		return boolValue(mode.IsRegular())
	case "is_dir":
		return boolValue(mode.IsDir())
	}
	return boolValue(true)
}

func boolValue(b bool) Value {
	if b {
		return Value{Kind: KindBool, Text: "true"}
	}
	return Value{Kind: KindBool, Text: "false"}
}
