package wordpress

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
)

func parse(t *testing.T, src string, env map[string]string) *Config {
	t.Helper()
	var opts ParseOptions
	if env != nil {
		opts.Env = func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	}
	cfg, err := ParseConfig([]byte(src), opts)
	if err != nil {
		t.Fatalf("ParseConfig: %v", err)
	}
	return cfg
}

func TestParseConfigValues(t *testing.T) {
	tests := []struct {
		name string
		src  string // PHP after <?php
		env  map[string]string
		want Value // value of constant X
	}{
		// Single quotes: only \' and \\ are escapes.
		{"single plain", `define('X', 'abc');`, nil, Value{Kind: KindString, Text: "abc"}},
		{"single escaped quote", `define('X', 'it\'s');`, nil, Value{Kind: KindString, Text: "it's"}},
		{"single escaped backslash", `define('X', 'a\\b');`, nil, Value{Kind: KindString, Text: `a\b`}},
		{"single other escapes literal", `define('X', 'a\nb\t\x41\$');`, nil, Value{Kind: KindString, Text: `a\nb\t\x41\$`}},
		{"single lone trailing backslash kept", `define('X', 'a\ ');`, nil, Value{Kind: KindString, Text: `a\ `}},
		{"single dollar not interpolated", `define('X', 'p$ss');`, nil, Value{Kind: KindString, Text: "p$ss"}},
		{"single holds double quote and comment markers", `define('X', '"//#/*');`, nil, Value{Kind: KindString, Text: `"//#/*`}},
		// Double quotes: PHP escapes.
		{"double newline tab", `define('X', "a\nb\tc");`, nil, Value{Kind: KindString, Text: "a\nb\tc"}},
		{"double r v e f", `define('X', "\r\v\e\f");`, nil, Value{Kind: KindString, Text: "\r\v\x1b\f"}},
		{"double backslash quote dollar", `define('X', "\\\"\$");`, nil, Value{Kind: KindString, Text: `\"$`}},
		{"double hex", `define('X', "\x41\x4a\x7");`, nil, Value{Kind: KindString, Text: "AJ\x07"}},
		{"double hex without digits literal", `define('X', "\xZ");`, nil, Value{Kind: KindString, Text: `\xZ`}},
		{"double octal", `define('X', "\101\60\7");`, nil, Value{Kind: KindString, Text: "A0\x07"}},
		{"double octal overflow keeps low byte", `define('X', "\501");`, nil, Value{Kind: KindString, Text: "A"}},
		{"double unicode", `define('X', "\u{41}\u{e9}\u{1F600}");`, nil, Value{Kind: KindString, Text: "Aé😀"}},
		{"double u without brace literal", `define('X', "\u0041");`, nil, Value{Kind: KindString, Text: `\u0041`}},
		{"double unknown escape kept", `define('X', "\q\'");`, nil, Value{Kind: KindString, Text: `\q\'`}},
		{"double lone dollar", `define('X', "cost $5 $");`, nil, Value{Kind: KindString, Text: "cost $5 $"}},
		{"double interpolation unknown", `define('X', "pre$var");`, nil, Value{Kind: KindUnknown, Text: `"pre$var"`}},
		{"double brace interpolation unknown", `define('X', "{$a['b']}");`, nil, Value{Kind: KindUnknown, Text: `"{$a['b']}"`}},
		// Spacing, quoting and case of the call.
		{"spaces around", "define( \"X\" , 'v' ) ;", nil, Value{Kind: KindString, Text: "v"}},
		{"newlines inside", "define(\n\t'X',\n\t'v'\n);", nil, Value{Kind: KindString, Text: "v"}},
		{"upper case DEFINE", `DEFINE('X', 'v');`, nil, Value{Kind: KindString, Text: "v"}},
		{"namespaced \\define", `\define('X', 'v');`, nil, Value{Kind: KindString, Text: "v"}},
		{"third argument ignored", `define('X', 'v', true);`, nil, Value{Kind: KindString, Text: "v"}},
		{"const", `const X = 'v';`, nil, Value{Kind: KindString, Text: "v"}},
		{"const list", `const A = 1, X = 'v';`, nil, Value{Kind: KindString, Text: "v"}},
		{"first define wins", `define('X', 'one'); define('X', 'two');`, nil, Value{Kind: KindString, Text: "one"}},
		// Scalars.
		{"true", `define('X', true);`, nil, Value{Kind: KindBool, Text: "true"}},
		{"TRUE", `define('X', TRUE);`, nil, Value{Kind: KindBool, Text: "true"}},
		{"false", `define('X', False);`, nil, Value{Kind: KindBool, Text: "false"}},
		{"null", `define('X', null);`, nil, Value{Kind: KindNull, Text: "null"}},
		{"int", `define('X', 42);`, nil, Value{Kind: KindNumber, Text: "42"}},
		{"negative", `define('X', -1);`, nil, Value{Kind: KindNumber, Text: "-1"}},
		{"float exponent", `define('X', 1.5e-3);`, nil, Value{Kind: KindNumber, Text: "1.5e-3"}},
		{"hex number", `define('X', 0x1F);`, nil, Value{Kind: KindNumber, Text: "0x1F"}},
		{"underscore number", `define('X', 1_000);`, nil, Value{Kind: KindNumber, Text: "1_000"}},
		{"parenthesised", `define('X', ('v'));`, nil, Value{Kind: KindString, Text: "v"}},
		// Concatenation.
		{"concat", `define('X', 'a' . "b" . 'c');`, nil, Value{Kind: KindString, Text: "abc"}},
		{"concat number and bool", `define('X', 'v' . 2 . true . false);`, nil, Value{Kind: KindString, Text: "v21"}},
		{"concat earlier constant", `define('A', 'x'); define('X', A . 'y');`, nil, Value{Kind: KindString, Text: "xy"}},
		{"concat PHP_EOL", `define('X', 'a' . PHP_EOL);`, nil, Value{Kind: KindString, Text: "a\n"}},
		{"concat unknown constant", `define('X', FOO . 'y');`, nil, Value{Kind: KindUnknown, Text: "FOO . 'y'"}},
		{"ABSPATH base", `define('X', ABSPATH . 'wp-content');`, nil, Value{Kind: KindString, Base: BaseABSPATH, Text: "wp-content"}},
		{"__DIR__ base", `define('X', __DIR__ . '/content');`, nil, Value{Kind: KindString, Base: BaseConfDir, Text: "/content"}},
		{"dirname(__FILE__) base", `define('X', dirname(__FILE__) . '/content');`, nil, Value{Kind: KindString, Base: BaseConfDir, Text: "/content"}},
		{"path base on the right is unknown", `define('X', 'a' . ABSPATH);`, nil, Value{Kind: KindUnknown, Text: "'a' . ABSPATH"}},
		// Environment.
		{"getenv set", `define('X', getenv('DBH') ?: 'localhost');`, map[string]string{"DBH": "db"}, Value{Kind: KindString, Text: "db"}},
		{"getenv unset uses default", `define('X', getenv('DBH') ?: 'localhost');`, map[string]string{}, Value{Kind: KindString, Text: "localhost"}},
		{"getenv no env uses default", `define('X', getenv('DBH') ?: 'localhost');`, nil, Value{Kind: KindString, Text: "localhost"}},
		{"getenv empty falls to default", `define('X', getenv('DBH') ?: 'd');`, map[string]string{"DBH": ""}, Value{Kind: KindString, Text: "d"}},
		{"getenv alone unset is false", `define('X', getenv('DBH'));`, nil, Value{Kind: KindBool, Text: "false"}},
		{"getenv chain", `define('X', getenv('A') ?: getenv('B') ?: 'c');`, map[string]string{"B": "b"}, Value{Kind: KindString, Text: "b"}},
		{"getenv_docker set", `define('X', getenv_docker('WORDPRESS_DB_HOST', 'mysql'));`, map[string]string{"WORDPRESS_DB_HOST": "db:3307"}, Value{Kind: KindString, Text: "db:3307"}},
		{"getenv_docker default", `define('X', getenv_docker('WORDPRESS_DB_HOST', 'mysql'));`, nil, Value{Kind: KindString, Text: "mysql"}},
		{"getenv_docker set to empty", `define('X', getenv_docker('P', 'd'));`, map[string]string{"P": ""}, Value{Kind: KindString, Text: ""}},
		{"getenv_docker _FILE unknown", `define('X', getenv_docker('P', 'd'));`, map[string]string{"P_FILE": "/run/secrets/p"}, Value{Kind: KindUnknown, Text: "getenv_docker ( 'P' , 'd' )"}},
		{"$_ENV coalesce set", `define('X', $_ENV['H'] ?? 'd');`, map[string]string{"H": "h"}, Value{Kind: KindString, Text: "h"}},
		{"coalesce chain", `define('X', $_ENV['A'] ?? $_ENV['B'] ?? 'c');`, map[string]string{"B": "b"}, Value{Kind: KindString, Text: "b"}},
		{"coalesce keeps empty string", `define('X', $_ENV['A'] ?? 'c');`, map[string]string{"A": ""}, Value{Kind: KindString, Text: ""}},
		{"$_SERVER coalesce unset", `define('X', $_SERVER['H'] ?? 'd');`, nil, Value{Kind: KindString, Text: "d"}},
		// Expressions that cannot be evaluated.
		{"function call", `define('X', md5('a'));`, nil, Value{Kind: KindUnknown, Text: "md5 ( 'a' )"}},
		{"variable", `define('X', $x);`, nil, Value{Kind: KindUnknown, Text: "$x"}},
		{"arithmetic", `define('X', 1 + 2);`, nil, Value{Kind: KindUnknown, Text: "1 + 2"}},
		{"cast", `define('X', (int) '3');`, nil, Value{Kind: KindUnknown, Text: "( int ) '3'"}},
		{"heredoc", "define('X', <<<EOT\nabc\nEOT);", nil, Value{Kind: KindUnknown, Text: "<<<EOT\nabc\nEOT"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := parse(t, "<?php\n"+tt.src+"\n", tt.env)
			got, ok := cfg.Constant("X")
			if !ok {
				t.Fatalf("X not defined; constants: %v", cfg.Constants)
			}
			if got != tt.want {
				t.Errorf("X = %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestParseConfigComments(t *testing.T) {
	tests := []struct {
		name    string
		src     string
		defined bool
		want    string
	}{
		{"line comment //", "// define('X', 'no');", false, ""},
		{"line comment #", "# define('X', 'no');", false, ""},
		{"block comment", "/* define('X', 'no'); */", false, ""},
		{"doc comment", "/**\n * define('X', 'no');\n */", false, ""},
		{"block comment inside call", "define('X', /* 'no' */ 'yes');", true, "yes"},
		{"trailing line comment", "define('X', 'yes'); // define('X', 'no');", true, "yes"},
		{"comment then live define", "// define('X', 'no');\ndefine('X', 'yes');", true, "yes"},
		{"commented out then redefined", "/* define('X', 'old'); */ define('X', 'new');", true, "new"},
		{"comment marker inside string", "define('X', 'a//b#c/*d*/');", true, "a//b#c/*d*/"},
		{"line comment ends at ?>", "// comment ?>text<?php define('X', 'yes');", true, "yes"},
		{"html outside php ignored", "?>define('X', 'no');<?php define('Y', 1);", false, ""},
		{"unterminated block comment runs to end", "/* define('X', 'no');", false, ""},
		{"string in function body ignored", "function f() { define('X', 'no'); }", false, ""},
		{"class constant ignored", "class C { const X = 'no'; }", false, ""},
		{"method call named define ignored", "$o->define('X', 'no');", false, ""},
		{"attribute skipped", "#[Attr('x')]\ndefine('X', 'yes');", true, "yes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := parse(t, "<?php\n"+tt.src+"\n", nil)
			got, ok := cfg.Constant("X")
			if ok != tt.defined {
				t.Fatalf("X defined = %v, want %v (value %#v)", ok, tt.defined, got)
			}
			if ok && got.String() != tt.want {
				t.Errorf("X = %q, want %q", got.String(), tt.want)
			}
		})
	}
}

func TestParseConfigSyntaxErrors(t *testing.T) {
	tests := []struct{ name, src string }{
		{"unterminated single", "define('X', 'abc);"},
		{"unterminated double", `define('X', "abc);`},
		{"unicode escape without close", `define('X', "\u{41");`},
		{"unicode escape not hex", `define('X', "\u{zz}");`},
		{"unicode escape too big", `define('X', "\u{110000}");`},
		{"unterminated heredoc", "$x = <<<EOT\nabc\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfig([]byte("<?php\n"+tt.src), ParseOptions{})
			if !errors.Is(err, ErrSyntax) {
				t.Fatalf("err = %v, want ErrSyntax", err)
			}
		})
	}
}

func TestTablePrefix(t *testing.T) {
	tests := []struct {
		name, src string
		want      Value
	}{
		{"plain", `$table_prefix = 'wp_';`, Value{Kind: KindString, Text: "wp_"}},
		{"spacing", `$table_prefix  =  "site2_" ;`, Value{Kind: KindString, Text: "site2_"}},
		{"last assignment wins", `$table_prefix = 'a_'; $table_prefix = 'b_';`, Value{Kind: KindString, Text: "b_"}},
		{"commented out", `$table_prefix = 'a_'; // $table_prefix = 'b_';`, Value{Kind: KindString, Text: "a_"}},
		{"docker getenv_docker", `$table_prefix = getenv_docker('WORDPRESS_TABLE_PREFIX', 'wp_');`, Value{Kind: KindString, Text: "wp_"}},
		{"inside isset guard", `if (!isset($table_prefix)) { $table_prefix = 'g_'; }`, Value{Kind: KindString, Text: "g_"}},
		{"expression", `$table_prefix = $x . '_';`, Value{Kind: KindUnknown, Text: "$x . '_'"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := parse(t, "<?php\n"+tt.src, nil)
			if got := cfg.Vars["table_prefix"]; got != tt.want {
				t.Errorf("table_prefix = %#v, want %#v", got, tt.want)
			}
		})
	}
}

func ptr(s string) *string { return &s }

func TestDatabase(t *testing.T) {
	const full = `define('DB_NAME', 'db'); define('DB_USER', 'u'); define('DB_PASSWORD', 'p');
define('DB_HOST', 'h'); define('DB_CHARSET', 'utf8mb4'); define('DB_COLLATE', ''); $table_prefix = 'wp_';`
	tests := []struct {
		name    string
		src     string
		o       Overrides
		want    Database
		wantErr []string // names that must be reported
		is      error
	}{
		{name: "all defined", src: full,
			want: Database{Name: "db", User: "u", Password: "p", Host: "h", Charset: "utf8mb4", TablePrefix: "wp_"}},
		{name: "overrides win", src: full,
			o:    Overrides{DBName: ptr("n2"), DBUser: ptr("u2"), DBPassword: ptr(""), DBHost: ptr("h2:3307"), TablePrefix: ptr("x_")},
			want: Database{Name: "n2", User: "u2", Password: "", Host: "h2:3307", Charset: "utf8mb4", TablePrefix: "x_"}},
		{name: "missing password and prefix", src: `define('DB_NAME', 'db'); define('DB_USER', 'u'); define('DB_HOST', 'h');`,
			wantErr: []string{"DB_PASSWORD", "$table_prefix"}, is: ErrNotDefined},
		{name: "missing filled by override", src: `define('DB_NAME', 'db'); define('DB_USER', 'u'); define('DB_HOST', 'h');`,
			o:    Overrides{DBPassword: ptr("s"), TablePrefix: ptr("wp_")},
			want: Database{Name: "db", User: "u", Password: "s", Host: "h", TablePrefix: "wp_"}},
		{name: "unresolved host", src: strings.Replace(full, "'h'", "$_SERVER['DBH'] . ':' . $port", 1),
			wantErr: []string{"DB_HOST", "$port"}, is: ErrUnresolved},
		{name: "unresolved name", src: strings.Replace(full, "'db'", "some_fn()", 1),
			wantErr: []string{"DB_NAME"}, is: ErrUnresolved},
		{name: "unresolved user", src: strings.Replace(full, "'u'", "$u", 1),
			wantErr: []string{"DB_USER"}, is: ErrUnresolved},
		{name: "path-based value unresolved", src: strings.Replace(full, "'h'", "ABSPATH . 'x'", 1),
			wantErr: []string{"DB_HOST"}, is: ErrUnresolved},
		{name: "bad table prefix", src: strings.Replace(full, "'wp_'", "'wp-'", 1),
			wantErr: []string{"wp-", "table prefix"}, is: ErrBadTablePrefix},
		{name: "bad override prefix", src: full, o: Overrides{TablePrefix: ptr("x;drop")},
			wantErr: []string{`"x;drop"`}, is: ErrBadTablePrefix},
		{name: "numeric password", src: strings.Replace(full, "'p'", "1234", 1),
			want: Database{Name: "db", User: "u", Password: "1234", Host: "h", Charset: "utf8mb4", TablePrefix: "wp_"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, err := parse(t, "<?php\n"+tt.src, nil).Database(tt.o)
			if tt.is == nil {
				if err != nil {
					t.Fatalf("Database: %v", err)
				}
				if db != tt.want {
					t.Errorf("Database = %+v, want %+v", db, tt.want)
				}
				return
			}
			if !errors.Is(err, tt.is) {
				t.Fatalf("err = %v, want %v", err, tt.is)
			}
			for _, s := range tt.wantErr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
			// The library says what is wrong; only its callers know how
			// to supply a value (a flag, a form field).
			if strings.Contains(err.Error(), "--") {
				t.Errorf("error %q names a command-line flag", err)
			}
			if len(ValueErrors(err)) == 0 {
				t.Errorf("ValueErrors(%v) is empty", err)
			}
		})
	}
}

func TestValueErrorAs(t *testing.T) {
	_, err := parse(t, "<?php define('DB_NAME', 'db');", nil).Database(Overrides{
		DBUser: ptr("u"), DBPassword: ptr("p"), TablePrefix: ptr("wp_")})
	var ve *ValueError
	if !errors.As(err, &ve) || ve.Name != "DB_HOST" || ve.Reason() != ReasonNotDefined || !errors.Is(ve, ErrNotDefined) {
		t.Fatalf("err = %v, want a ValueError for DB_HOST", err)
	}
	// Every unusable value, as data.
	_, err = parse(t, "<?php define('DB_NAME', fn()); $table_prefix = 'wp-';", nil).Database(Overrides{DBUser: ptr("u"), DBPassword: ptr("p")})
	var got []string
	for _, ve := range ValueErrors(fmt.Errorf("wrapped: %w", err)) {
		got = append(got, ve.Name+" "+ve.Reason())
	}
	if want := []string{"DB_NAME unresolved", "DB_HOST not_defined", "$table_prefix bad_table_prefix"}; !slices.Equal(got, want) {
		t.Errorf("ValueErrors = %q, want %q", got, want)
	}
}

func TestMultisite(t *testing.T) {
	tests := []struct {
		name                    string
		src                     string
		multi, allow, subdomain bool
	}{
		{"single site", `define('DB_NAME', 'x');`, false, false, false},
		{"allow only", `define('WP_ALLOW_MULTISITE', true);`, false, true, false},
		{"subdirectory network", `define('MULTISITE', true); define('SUBDOMAIN_INSTALL', false);`, true, false, false},
		{"subdomain network", `define('WP_ALLOW_MULTISITE', true); define( 'MULTISITE', true ); define( 'SUBDOMAIN_INSTALL', true );`, true, true, true},
		{"multisite as 1", `define('MULTISITE', 1); define('SUBDOMAIN_INSTALL', '1');`, true, false, true},
		{"multisite false", `define('MULTISITE', false);`, false, false, false},
		{"multisite '0'", `define('MULTISITE', '0');`, false, false, false},
		{"legacy VHOST", `define('MULTISITE', true); define('VHOST', 'yes');`, true, false, true},
		{"commented out", `// define('MULTISITE', true);`, false, false, false},
		{"from env", `define('MULTISITE', getenv('MS') ?: false);`, true, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := parse(t, "<?php\n"+tt.src, map[string]string{"MS": "1"})
			if cfg.Multisite() != tt.multi || cfg.AllowMultisite() != tt.allow || cfg.SubdomainInstall() != tt.subdomain {
				t.Errorf("multisite, allow, subdomain = %v, %v, %v; want %v, %v, %v",
					cfg.Multisite(), cfg.AllowMultisite(), cfg.SubdomainInstall(), tt.multi, tt.allow, tt.subdomain)
			}
		})
	}
}

func TestContentDir(t *testing.T) {
	tests := []struct {
		name   string
		src    string
		above  bool
		want   string
		wantOK bool
	}{
		{"not defined", ``, false, "wp-content", true},
		{"ABSPATH relative", `define('WP_CONTENT_DIR', ABSPATH . 'content');`, false, "content", true},
		{"__DIR__ relative", `define('WP_CONTENT_DIR', __DIR__ . '/app/content/');`, false, "app/content", true},
		{"dirname(__FILE__) relative", `define('WP_CONTENT_DIR', dirname(__FILE__) . '/c');`, false, "c", true},
		{"__DIR__ with config above", `define('WP_CONTENT_DIR', __DIR__ . '/c');`, true, `__DIR__ . "/c"`, false},
		{"absolute under ABSPATH", `define('ABSPATH', '/srv/www/'); define('WP_CONTENT_DIR', '/srv/www/content');`, false, "content", true},
		{"absolute outside (Debian)", `define('ABSPATH', '/usr/share/wordpress/'); define('WP_CONTENT_DIR', '/var/lib/wordpress/wp-content');`, false, "/var/lib/wordpress/wp-content", false},
		{"absolute without ABSPATH", `define('WP_CONTENT_DIR', '/srv/c');`, false, "/srv/c", false},
		{"escapes the root", `define('WP_CONTENT_DIR', ABSPATH . '../content');`, false, "content", true},
		{"the root itself", `define('WP_CONTENT_DIR', ABSPATH);`, false, `ABSPATH . ""`, false},
		{"expression", `define('WP_CONTENT_DIR', $dir);`, false, "$dir", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := parse(t, "<?php\n"+tt.src, nil).ContentDir(tt.above)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("ContentDir = %q, %v; want %q, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestParseRealConfigs(t *testing.T) {
	tests := []struct {
		file string
		env  map[string]string
		want Database
	}{
		{"wp-config-sample.php", nil, Database{Name: "database_name_here", User: "username_here", Password: "password_here",
			Host: "localhost", Charset: "utf8", TablePrefix: "wp_"}},
		{"wp-config-docker.php", map[string]string{"WORDPRESS_DB_HOST": "mysql:3306", "WORDPRESS_DB_PASSWORD": "s3cret"},
			Database{Name: "wordpress", User: "example username", Password: "s3cret", Host: "mysql:3306", Charset: "utf8", TablePrefix: "wp_"}},
		{"wp-config-tricky.php", nil, Database{Name: "shop", User: "shop's user", Password: "p\"a\\ss$\n\x41é",
			Host: "localhost:/run/mysqld/mysqld.sock", Charset: "utf8mb4", Collate: "utf8mb4_unicode_ci", TablePrefix: "shop_"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			src, err := os.ReadFile("testdata/" + tt.file)
			if err != nil {
				t.Fatal(err)
			}
			env := func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok }
			cfg, err := ParseConfig(src, ParseOptions{Env: env})
			if err != nil {
				t.Fatalf("ParseConfig: %v", err)
			}
			db, err := cfg.Database(Overrides{})
			if err != nil {
				t.Fatalf("Database: %v", err)
			}
			if db != tt.want {
				t.Errorf("Database = %#v\nwant       %#v", db, tt.want)
			}
		})
	}
}

func FuzzParseConfig(f *testing.F) {
	for _, name := range []string{"wp-config-sample.php", "wp-config-docker.php", "wp-config-tricky.php"} {
		src, err := os.ReadFile("testdata/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(src)
	}
	for _, s := range []string{
		"<?php define('X', \"\\u{41}\\101\\x41\");",
		"<?php define(", "<?php define('X'", "<?php const", "<?php const X =", "<?php $a =",
		"<?php define('X', getenv('A') ?: getenv_docker('B', 'c') ?? $_ENV['D']);",
		"<?php <<<'EOT'\nx\nEOT;", "<?php #[", "<?php /*", "<?php \"\\", "<?php '\\",
		"<?php class { function define(", "<?php define('X', ((((", "<?php define('X', -);",
		"<?php if (file_exists(__DIR__ . '/a')): define('X', 1); elseif (!defined('Y') && is_dir(ABSPATH)): else: endif;",
		"<?php if (a) if (b) define('X', 1); else { define('X', 2); } else if (c) {} while (x): endwhile;",
		"<?php defined('X') || define('X', $a ? 'b' : (c ?: 'd')); if (isset($x) or empty($y)) {",
		"<?php if (", "<?php if (a):", "<?php if (a) else", "<?php else if (", "<?php ? : ? :",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		cfg, err := ParseConfig(src, ParseOptions{Env: func(k string) (string, bool) { return k, len(k)%2 == 0 }})
		if err != nil {
			if !errors.Is(err, ErrSyntax) {
				t.Fatalf("error %v does not wrap ErrSyntax", err)
			}
			return
		}
		_, _ = cfg.Database(Overrides{})
		_, _ = cfg.ContentDir(false)
		_ = cfg.Multisite() || cfg.SubdomainInstall()
	})
}

func TestParseConfigDeepNesting(t *testing.T) {
	tests := []struct{ name, open, close string }{
		{"parentheses", "(", ")"},
		{"calls", "getenv(", ")"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const n = 200000
			src := "<?php define('X', " + strings.Repeat(tt.open, n) + "'v'" + strings.Repeat(tt.close, n) + ");"
			cfg := parse(t, src, nil)
			if v := cfg.Constants["X"]; v.Known() {
				t.Errorf("X = %#v, want unknown beyond the nesting limit", v)
			}
			src = "<?php define('X', " + strings.Repeat("(", 10) + "'v'" + strings.Repeat(")", 10) + ");"
			if v := parse(t, src, nil).Constants["X"]; v.Text != "v" {
				t.Errorf("X = %#v, want v at a shallow depth", v)
			}
		})
	}
}

func TestIncludes(t *testing.T) {
	tests := []struct {
		name, src string
		want      []string
	}{
		{"wp-settings.php is not reported", `require_once ABSPATH . 'wp-settings.php';`, nil},
		{"wp-settings.php in parentheses", `require_once(ABSPATH . 'wp-settings.php');`, nil},
		{"Debian host config", `if (file_exists($debian_file)) { require_once($debian_file); }`, []string{"( $debian_file )"}},
		{"every form", `require 'a.php'; include_once __DIR__ . '/b.php'; include('c.php'); REQUIRE_ONCE "d.php";`,
			[]string{"'a.php'", "__DIR__ . '/b.php'", "( 'c.php' )", `"d.php"`}},
		{"commented out", `// require 'a.php';`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parse(t, "<?php\n"+tt.src, nil).Includes
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("Includes = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestNamespacedCalls(t *testing.T) {
	tests := []struct {
		name, src string
		want      Value
	}{
		{"\\getenv", `define('X', \getenv('H') ?: 'd');`, Value{Kind: KindString, Text: "d"}},
		{"\\PHP_EOL", `define('X', 'a' . \PHP_EOL);`, Value{Kind: KindString, Text: "a\n"}},
		{"backslashes before a string are not PHP", `define('X', \\'v');`, Value{Kind: KindUnknown, Text: `\ \ 'v'`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parse(t, "<?php\n"+tt.src, nil).Constants["X"]; got != tt.want {
				t.Errorf("X = %#v, want %#v", got, tt.want)
			}
		})
	}
	t.Run("a long ?? chain does not recurse", func(t *testing.T) {
		src := "<?php define('X', " + strings.Repeat("null ?? ", 1000000) + "'v');"
		if got := parse(t, src, nil).Constants["X"]; got.Text != "v" {
			t.Errorf("X = %#v, want v", got)
		}
	})
	t.Run("a million backslashes are not PHP and do not recurse", func(t *testing.T) {
		src := "<?php define('X', " + strings.Repeat(`\`, 1000000) + "getenv('H'));"
		if got := parse(t, src, nil).Constants["X"]; got.Kind != KindUnknown {
			t.Errorf("X kind = %v, want unknown", got.Kind)
		}
	})
}
