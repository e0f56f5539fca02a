package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"

	"github.com/sitevault/sitevault/internal/sitevault"
)

// The config file is TOML, read with pelletier/go-toml/v2: its strict mode
// names every unknown key with its line, and its type errors carry the line
// and key too, which is what an error about a hand-edited file must say
// (BurntSushi/toml reports unknown keys without a position).

// EnvConfig names the config file (as --config does).
const EnvConfig = "SITEVAULT_CONFIG"

// FileName is the config file looked for in the data home.
const FileName = "config.toml"

// maxConfigFile bounds what LoadFile reads.
const maxConfigFile = 1 << 20

// ErrConfigFile: the config file is unreadable or breaks a rule. The
// *FileError wrapping it names the file, line and key.
var ErrConfigFile = errors.New("invalid config file")

// FileError is a problem at one place of the config file.
type FileError struct {
	Path string
	Line int    // 0: the file as a whole
	Key  string // dotted key ("sites.blog.retention.keep_daily"), "" if none
	Msg  string
}

func (e *FileError) Error() string {
	var b strings.Builder
	b.WriteString("config file ")
	b.WriteString(e.Path)
	if e.Line > 0 {
		fmt.Fprintf(&b, ", line %d", e.Line)
	}
	if e.Key != "" {
		fmt.Fprintf(&b, ", key %s", e.Key)
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap makes errors.Is(err, ErrConfigFile) true.
func (e *FileError) Unwrap() error { return ErrConfigFile }

// File is a parsed, validated config file.
type File struct {
	Path string `toml:"-"`
	// Repository is the repository URL or path (as --repo).
	Repository string `toml:"repository"`
	// PasswordFile holds the repository password (as --password-file).
	PasswordFile string `toml:"password_file"`
	// Catalog is the catalog URL (as --catalog), without a password.
	Catalog string `toml:"catalog"`
	// Server is a running service's URL (as --server).
	Server string `toml:"server"`
	// TokenFile holds the service's API token (as --token-file).
	TokenFile string `toml:"token_file"`
	// Defaults apply to every site where the catalog leaves a setting at
	// its built-in default.
	Defaults SiteSettings `toml:"defaults"`
	// Sites are per-site settings; they win over the catalog's.
	Sites map[string]SiteSettings `toml:"sites"`

	lines map[string]int // dotted key → line
}

// SiteSettings are the settings the file may give a site (or all sites).
type SiteSettings struct {
	// Exclude adds glob patterns (path.Match, on the path relative to the
	// WordPress root or on the base name) to the backup rules.
	Exclude   []string       `toml:"exclude"`
	Retention *FileRetention `toml:"retention"`
	Schedule  *FileSchedule  `toml:"schedule"`
	SSH       *FileSSH       `toml:"ssh"`
	DB        *FileDB        `toml:"db"`
}

// FileRetention is a retention policy; a count left out is 0.
type FileRetention struct {
	KeepLast    int `toml:"keep_last"`
	KeepDaily   int `toml:"keep_daily"`
	KeepWeekly  int `toml:"keep_weekly"`
	KeepMonthly int `toml:"keep_monthly"`
}

// FileSchedule is a schedule window; a field left out keeps the catalog's.
type FileSchedule struct {
	Off      *bool   `toml:"off"`
	Start    *string `toml:"start"`
	Window   *string `toml:"window"` // a Go duration: "2h", "90m"
	TimeZone *string `toml:"time_zone"`
}

// FileSSH are an ssh site's login settings (never a password).
type FileSSH struct {
	User    string `toml:"user"`
	Host    string `toml:"host"`
	Port    int    `toml:"port"`
	KeyFile string `toml:"key_file"`
}

// FileDB replace wp-config.php's database settings (never a password).
type FileDB struct {
	Host string `toml:"host"`
	Name string `toml:"name"`
	User string `toml:"user"`
}

// secretKeys are keys that would hold a secret: refused, with where the
// secret goes instead.
var secretKeys = map[string]bool{"password": true, "passphrase": true, "token": true, "secret": true, "key": true}

// FindFile returns the config file to read: --config (flag), then
// $SITEVAULT_CONFIG, then <home>/config.toml if it exists. "" means none.
// A file named explicitly must exist.
func FindFile(flag, home string, env func(string) (string, bool)) (path, source string, err error) {
	if env == nil {
		env = os.LookupEnv
	}
	switch {
	case flag != "":
		path, source = flag, "flag"
	case nonEmpty(env, EnvConfig) != "":
		path, source = nonEmpty(env, EnvConfig), "env"
	default:
		p := filepath.Join(home, FileName)
		if _, err := os.Stat(p); err != nil {
			return "", "", nil
		}
		return p, "default", nil
	}
	if _, err := os.Stat(path); err != nil {
		what := "--config"
		if source == "env" {
			what = "$" + EnvConfig
		}
		return "", "", fmt.Errorf("%s %s: %w: the config file is missing; create it or remove %s", what, path, ErrConfigFile, what)
	}
	return path, source, nil
}

// LoadFile reads and validates the config file at path.
func LoadFile(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &FileError{Path: path, Msg: fmt.Sprintf("cannot read it: %v", err)}
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxConfigFile+1))
	if err != nil {
		return nil, &FileError{Path: path, Msg: fmt.Sprintf("cannot read it: %v", err)}
	}
	if len(b) > maxConfigFile {
		return nil, &FileError{Path: path, Msg: fmt.Sprintf("larger than %d bytes; is it the right file?", maxConfigFile)}
	}
	return ParseFile(path, b)
}

// ParseFile parses and validates a config file's contents (path names it
// in errors).
func ParseFile(path string, data []byte) (*File, error) {
	lines, perr := keyLines(data)
	if perr != nil {
		var fe *FileError
		if errors.As(perr, &fe) {
			fe.Path = path
			return nil, fe
		}
		return nil, tomlError(path, perr)
	}
	// Secrets first: a password in the file is refused even where the
	// key is unknown.
	keys := make([]string, 0, len(lines))
	for k := range lines {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		return lines[keys[i]] < lines[keys[j]] || lines[keys[i]] == lines[keys[j]] && keys[i] < keys[j]
	})
	for _, k := range keys {
		if msg := secretKey(k); msg != "" {
			return nil, &FileError{Path: path, Line: lines[k], Key: k, Msg: msg}
		}
	}
	f := &File{Path: path, lines: lines}
	dec := toml.NewDecoder(bytes.NewReader(data)).DisallowUnknownFields()
	if err := dec.Decode(f); err != nil {
		var sm *toml.StrictMissingError
		if errors.As(err, &sm) && len(sm.Errors) > 0 {
			de := sm.Errors[0]
			key := strings.Join(de.Key(), ".")
			line, _ := de.Position()
			return nil, &FileError{Path: path, Line: line, Key: key, Msg: unknownKeyMsg(de.Key())}
		}
		return nil, tomlError(path, err)
	}
	f.Path = path
	f.lines = lines
	if err := f.validate(); err != nil {
		return nil, err
	}
	return f, nil
}

func tomlError(path string, err error) error {
	var de *toml.DecodeError
	if errors.As(err, &de) {
		line, _ := de.Position()
		msg := strings.TrimPrefix(de.Error(), "toml: ")
		if m := typeMismatch.FindStringSubmatch(msg); m != nil {
			msg = fmt.Sprintf("wrong type: the value is a %s, the key wants %s", m[1], goType(m[2]))
		} else {
			msg += " (it is not valid TOML)"
		}
		return &FileError{Path: path, Line: line, Key: strings.Join(de.Key(), "."), Msg: msg}
	}
	return &FileError{Path: path, Msg: strings.TrimPrefix(err.Error(), "toml: ")}
}

var typeMismatch = regexp.MustCompile(`^cannot decode TOML (\w+) into .* of type (.+)$`)

func goType(t string) string {
	switch {
	case strings.HasPrefix(t, "int"):
		return "an integer"
	case t == "string" || t == "*string":
		return "a string (in quotes)"
	case t == "bool" || t == "*bool":
		return "true or false"
	case strings.HasPrefix(t, "[]"):
		return "an array such as [\"a\", \"b\"]"
	}
	return "a table"
}

// secretKey returns why a key may not be in the file ("" if it may).
func secretKey(k string) string {
	parts := strings.Split(k, ".")
	last := parts[len(parts)-1]
	if !secretKeys[last] {
		return ""
	}
	switch {
	case len(parts) == 1:
		return fmt.Sprintf("secrets are not kept in the config file; put the repository password in a file (mode 600) named by password_file, or in $%s", EnvPassword)
	case parts[len(parts)-2] == "db" || parts[len(parts)-2] == "ssh":
		site := "SITE"
		if len(parts) == 4 && parts[0] == "sites" {
			site = parts[1]
		}
		return fmt.Sprintf("secrets are not kept in the config file; `sitevault site edit %s` stores the %s password sealed in the catalog (asked on a terminal, or from a file: see `sitevault site edit --help`)", site, parts[len(parts)-2])
	}
	return "secrets are not kept in the config file; give the file that holds it instead (password_file, token_file, key_file)"
}

// known lists the keys the file accepts, for suggestions.
var (
	topKeys     = []string{"repository", "password_file", "catalog", "server", "token_file", "defaults", "sites"}
	siteKeys    = []string{"exclude", "retention", "schedule", "ssh", "db"}
	sectionKeys = map[string][]string{
		"retention": {"keep_last", "keep_daily", "keep_weekly", "keep_monthly"},
		"schedule":  {"off", "start", "window", "time_zone"},
		"ssh":       {"user", "host", "port", "key_file"},
		"db":        {"host", "name", "user"},
	}
)

func unknownKeyMsg(key []string) string {
	var candidates []string
	switch {
	case len(key) == 1:
		candidates = topKeys
	case key[0] == "defaults" && len(key) == 2, key[0] == "sites" && len(key) == 3:
		candidates = siteKeys
	default:
		candidates = sectionKeys[key[len(key)-2]]
	}
	last := key[len(key)-1]
	msg := fmt.Sprintf("unknown key %q", last)
	if s := closest(last, candidates); s != "" {
		return msg + fmt.Sprintf("; did you mean %q?", s)
	}
	if len(candidates) > 0 {
		return msg + "; the keys here are " + strings.Join(candidates, ", ")
	}
	return msg
}

// closest returns the candidate within edit distance 2 of s (or sharing
// its prefix), "" if none.
func closest(s string, candidates []string) string {
	best, bestD := "", 3
	for _, c := range candidates {
		d := editDistance(s, c)
		if d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// keyLines maps every dotted key of the document to its line.
func keyLines(data []byte) (map[string]int, error) {
	lines := make(map[string]int)
	var p unstable.Parser
	p.Reset(data)
	var table []string
	lineOf := func(n *unstable.Node) int {
		if len(n.Data) > 0 && p.Range(n.Data).Offset < uint32(len(data)) {
			return p.Shape(p.Range(n.Data)).Start.Line
		}
		return 0
	}
	keyOf := func(n *unstable.Node) ([]string, int) {
		var parts []string
		line := 0
		it := n.Key()
		for it.Next() {
			k := it.Node()
			if line == 0 {
				line = lineOf(k)
			}
			parts = append(parts, string(k.Data))
		}
		return parts, line
	}
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			k, line := keyOf(e)
			table = k
			for i := range k {
				name := strings.Join(k[:i+1], ".")
				if _, ok := lines[name]; !ok {
					lines[name] = line
				}
			}
		case unstable.KeyValue:
			k, line := keyOf(e)
			full := append(slices.Clone(table), k...)
			for i := len(table); i < len(full); i++ {
				name := strings.Join(full[:i+1], ".")
				if _, ok := lines[name]; !ok {
					lines[name] = line
				}
			}
			if v := e.Value(); v != nil && v.Kind == unstable.InlineTable {
				inlineLines(v, full, line, lines)
			}
		}
	}
	if err := p.Error(); err != nil {
		var pe *unstable.ParserError
		if errors.As(err, &pe) {
			sh := p.Shape(p.Range(pe.Highlight))
			return nil, &FileError{Line: sh.Start.Line, Msg: pe.Message + " (it is not valid TOML)"}
		}
		return nil, err
	}
	return lines, nil
}

// inlineLines records the keys of an inline table (on its key's line).
func inlineLines(v *unstable.Node, prefix []string, line int, lines map[string]int) {
	it := v.Children()
	for it.Next() {
		kv := it.Node()
		if kv.Kind != unstable.KeyValue {
			continue
		}
		var parts []string
		ki := kv.Key()
		for ki.Next() {
			parts = append(parts, string(ki.Node().Data))
		}
		full := append(slices.Clone(prefix), parts...)
		for i := len(prefix); i < len(full); i++ {
			name := strings.Join(full[:i+1], ".")
			if _, ok := lines[name]; !ok {
				lines[name] = line
			}
		}
		if c := kv.Value(); c != nil && c.Kind == unstable.InlineTable {
			inlineLines(c, full, line, lines)
		}
	}
}

// errAt is a FileError at key.
func (f *File) errAt(key, format string, args ...any) error {
	return &FileError{Path: f.Path, Line: f.lines[key], Key: key, Msg: fmt.Sprintf(format, args...)}
}

func (f *File) validate() error {
	if f.Catalog != "" {
		if u, err := url.Parse(f.Catalog); err == nil && u.User != nil {
			if _, ok := u.User.Password(); ok {
				return f.errAt("catalog", "the catalog URL holds a password; secrets are not kept in the config file: give it in $PGPASSWORD or ~/.pgpass")
			}
		}
	}
	if f.Server != "" {
		u, err := url.Parse(f.Server)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return f.errAt("server", "%q is not a service URL such as http://127.0.0.1:8570", f.Server)
		}
		if u.User != nil {
			return f.errAt("server", "the server URL holds a login; give the API token in token_file or $SITEVAULT_TOKEN")
		}
	}
	if u, err := url.Parse(f.Repository); err == nil && u.User != nil {
		if _, ok := u.User.Password(); ok {
			return f.errAt("repository", "the repository URL holds a password; secrets are not kept in the config file: use the backend's environment variables or key files")
		}
	}
	for _, k := range []struct{ key, v string }{{"password_file", f.PasswordFile}, {"token_file", f.TokenFile}} {
		if k.v != "" && !filepath.IsAbs(k.v) {
			return f.errAt(k.key, "%q must be an absolute path", k.v)
		}
	}
	if err := f.validateSite("defaults", f.Defaults, true); err != nil {
		return err
	}
	for name, s := range f.Sites {
		if err := sitevault.ValidateName(name); err != nil {
			return f.errAt("sites."+name, "%v", strings.TrimPrefix(err.Error(), sitevault.ErrInvalid.Error()+": "))
		}
		if err := f.validateSite("sites."+name, s, false); err != nil {
			return err
		}
	}
	return nil
}

func (f *File) validateSite(prefix string, s SiteSettings, defaults bool) error {
	for _, p := range s.Exclude {
		if _, err := path.Match(p, ""); err != nil || p == "" || strings.ContainsRune(p, 0) {
			return f.errAt(prefix+".exclude", "exclude pattern %q is not a valid glob (path.Match syntax: *, ?, [a-z])", p)
		}
	}
	if r := s.Retention; r != nil {
		for _, c := range []struct {
			key string
			n   int
		}{{"keep_last", r.KeepLast}, {"keep_daily", r.KeepDaily}, {"keep_weekly", r.KeepWeekly}, {"keep_monthly", r.KeepMonthly}} {
			if c.n < 0 {
				return f.errAt(prefix+".retention."+c.key, "a count cannot be negative (0 keeps none by this rule)")
			}
		}
	}
	if sc := s.Schedule; sc != nil {
		if sc.Start != nil {
			if _, err := (sitevault.Schedule{Start: *sc.Start}).StartMinute(); err != nil || *sc.Start == "" {
				return f.errAt(prefix+".schedule.start", "%q is not a time of day: use HH:MM, 24-hour clock", *sc.Start)
			}
		}
		if sc.Window != nil {
			d, err := time.ParseDuration(*sc.Window)
			if err != nil || d < time.Minute || d > 24*time.Hour {
				return f.errAt(prefix+".schedule.window", "%q: give a duration between 1m and 24h, such as \"2h\" or \"90m\"", *sc.Window)
			}
		}
		if sc.TimeZone != nil {
			if _, err := (sitevault.Schedule{TimeZone: *sc.TimeZone}).Location(); err != nil || *sc.TimeZone == "" {
				return f.errAt(prefix+".schedule.time_zone", "%q is not an IANA time zone name (such as Europe/Berlin or UTC)", *sc.TimeZone)
			}
		}
	}
	if s.SSH != nil {
		if defaults {
			return f.errAt(prefix+".ssh", "connection settings belong to one site: move them to [sites.NAME.ssh]")
		}
		if s.SSH.Port < 0 || s.SSH.Port > 65535 {
			return f.errAt(prefix+".ssh.port", "port %d is out of range (1-65535)", s.SSH.Port)
		}
		if s.SSH.KeyFile != "" && !filepath.IsAbs(s.SSH.KeyFile) {
			return f.errAt(prefix+".ssh.key_file", "%q must be an absolute path", s.SSH.KeyFile)
		}
		if strings.ContainsAny(s.SSH.User+s.SSH.Host, "@/ \t\r\n") {
			return f.errAt(prefix+".ssh", "user and host are plain names (no @, / or spaces)")
		}
	}
	if s.DB != nil && defaults {
		return f.errAt(prefix+".db", "connection settings belong to one site: move them to [sites.NAME.db]")
	}
	return nil
}

// Line returns the line of a dotted key (0 if it is not in the file).
func (f *File) Line(key string) int {
	if f == nil {
		return 0
	}
	return f.lines[key]
}

// Excludes returns the extra exclude patterns for site: the defaults',
// then the site's own.
func (f *File) Excludes(site string) []string {
	if f == nil {
		return nil
	}
	out := slices.Clone(f.Defaults.Exclude)
	return append(out, f.Sites[site].Exclude...)
}

// ApplySite returns st with the file's settings applied. The rule: a
// setting of [sites.NAME] wins over the catalog's (site add/edit, the
// dashboard); a setting of [defaults] fills in only what the catalog
// leaves at its built-in default (no retention, an empty schedule field).
func (f *File) ApplySite(st sitevault.Site) sitevault.Site {
	if f == nil {
		return st
	}
	if r := f.Defaults.Retention; r != nil && st.Retention == nil {
		st.Retention = &sitevault.Retention{KeepLast: r.KeepLast, KeepDaily: r.KeepDaily, KeepWeekly: r.KeepWeekly, KeepMonthly: r.KeepMonthly}
	}
	if d := f.Defaults.Schedule; d != nil {
		if d.Off != nil && !st.Schedule.Off {
			st.Schedule.Off = *d.Off
		}
		if d.Start != nil && st.Schedule.Start == "" {
			st.Schedule.Start = *d.Start
		}
		if d.Window != nil && st.Schedule.Window == 0 {
			st.Schedule.Window, _ = time.ParseDuration(*d.Window)
		}
		if d.TimeZone != nil && st.Schedule.TimeZone == "" {
			st.Schedule.TimeZone = *d.TimeZone
		}
	}
	s, ok := f.Sites[st.Name]
	if !ok {
		return st
	}
	if r := s.Retention; r != nil {
		st.Retention = &sitevault.Retention{KeepLast: r.KeepLast, KeepDaily: r.KeepDaily, KeepWeekly: r.KeepWeekly, KeepMonthly: r.KeepMonthly}
	}
	if sc := s.Schedule; sc != nil {
		if sc.Off != nil {
			st.Schedule.Off = *sc.Off
		}
		if sc.Start != nil {
			st.Schedule.Start = *sc.Start
		}
		if sc.Window != nil {
			st.Schedule.Window, _ = time.ParseDuration(*sc.Window)
		}
		if sc.TimeZone != nil {
			st.Schedule.TimeZone = *sc.TimeZone
		}
	}
	if c := s.SSH; c != nil && st.Kind == sitevault.SSH {
		if c.User != "" {
			st.SSH.User = c.User
		}
		if c.Host != "" {
			st.SSH.Host = c.Host
		}
		if c.Port != 0 {
			st.SSH.Port = c.Port
		}
		if c.KeyFile != "" {
			st.SSH.IdentityFile = c.KeyFile
		}
	}
	if c := s.DB; c != nil {
		if c.Host != "" {
			st.DB.Host = c.Host
		}
		if c.Name != "" {
			st.DB.Name = c.Name
		}
		if c.User != "" {
			st.DB.User = c.User
		}
	}
	return st
}
