package wordpress

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

// statMap is a ParseOptions.Stat over a fixed set of paths, keyed
// "BASE:name" (BASE is ABSPATH, __DIR__ or "" for absolute paths).
func statMap(paths map[string]fs.FileMode) func(base, name string) (fs.FileMode, error) {
	return func(base, name string) (fs.FileMode, error) {
		if m, ok := paths[base+":"+name]; ok {
			return m, nil
		}
		return 0, fs.ErrNotExist
	}
}

func TestConditionalDefines(t *testing.T) {
	local := map[string]fs.FileMode{"__DIR__:local-config.php": 0, "ABSPATH:wp-content": fs.ModeDir, ":/etc/wp/on": 0}
	tests := []struct {
		name  string
		src   string
		paths map[string]fs.FileMode // nil: no Stat at all
		env   map[string]string
		want  string // DB_NAME
	}{
		{"if file_exists false takes else", `if (file_exists(__DIR__ . '/missing.php')) { define('DB_NAME', 'wrongdb'); } else { define('DB_NAME', 'wp'); }`, local, nil, "wp"},
		{"if file_exists true takes then", `if (file_exists(__DIR__ . '/local-config.php')) { define('DB_NAME', 'local'); } else { define('DB_NAME', 'wp'); }`, local, nil, "local"},
		{"dirname(__FILE__) and @", `if (@file_exists(dirname(__FILE__) . '/local-config.php')) { define('DB_NAME', 'local'); } else { define('DB_NAME', 'wp'); }`, local, nil, "local"},
		{"ABSPATH relative", `if ( file_exists( ABSPATH . 'gone.php' ) ) { define('DB_NAME', 'x'); } define('DB_NAME', 'wp');`, local, nil, "wp"},
		{"absolute path", `if (file_exists('/etc/wp/on')) { define('DB_NAME', 'abs'); } define('DB_NAME', 'wp');`, local, nil, "abs"},
		{"is_dir on a file is false", `if (is_dir(__DIR__ . '/local-config.php')) { define('DB_NAME', 'x'); } else { define('DB_NAME', 'wp'); }`, local, nil, "wp"},
		{"is_file on a dir is false", `if (is_file(ABSPATH . 'wp-content')) { define('DB_NAME', 'x'); } elseif (is_dir(ABSPATH . 'wp-content')) { define('DB_NAME', 'wp'); }`, local, nil, "wp"},
		{"elseif chain", `if (file_exists(__DIR__ . '/a')) { define('DB_NAME', 'a'); } elseif (file_exists(__DIR__ . '/b')) { define('DB_NAME', 'b'); } else if (file_exists(__DIR__ . '/local-config.php')) { define('DB_NAME', 'c'); } else { define('DB_NAME', 'd'); }`, local, nil, "c"},
		{"nested", `if (file_exists(__DIR__ . '/local-config.php')) { if (file_exists(__DIR__ . '/x')) { define('DB_NAME', 'x'); } else { define('DB_NAME', 'inner'); } } else { define('DB_NAME', 'outer'); }`, local, nil, "inner"},
		{"not", `if (!file_exists(__DIR__ . '/local-config.php')) { define('DB_NAME', 'x'); } else { define('DB_NAME', 'wp'); }`, local, nil, "wp"},
		{"and or", `if (file_exists(__DIR__ . '/local-config.php') && (file_exists(__DIR__ . '/nope') || !is_dir(ABSPATH . 'wp-content'))) { define('DB_NAME', 'x'); } else { define('DB_NAME', 'wp'); }`, local, nil, "wp"},
		{"false and undecidable is decided", `if (file_exists(__DIR__ . '/nope') && some_fn()) { define('DB_NAME', 'x'); } else { define('DB_NAME', 'wp'); }`, local, nil, "wp"},
		{"true or undecidable is decided", `if (file_exists(__DIR__ . '/local-config.php') or some_fn()) { define('DB_NAME', 'wp'); } else { define('DB_NAME', 'x'); }`, local, nil, "wp"},
		{"alternative syntax", "if (file_exists(__DIR__ . '/nope')):\n define('DB_NAME', 'x');\nelseif (file_exists(__DIR__ . '/local-config.php')):\n define('DB_NAME', 'wp');\nelse:\n define('DB_NAME', 'y');\nendif;", local, nil, "wp"},
		{"alternative syntax around a brace if/else", "if (file_exists(__DIR__ . '/nope')):\n if (some_fn()) { $x = 1; } else { $x = 2; }\n define('DB_NAME', 'x');\nelse:\n define('DB_NAME', 'wp');\nendif;", local, nil, "wp"},
		{"alternative syntax nested", "if (file_exists(__DIR__ . '/nope')):\n define('DB_NAME', 'x');\nelse:\n if (is_dir(ABSPATH . 'wp-content')):\n  define('DB_NAME', 'wp');\n else:\n  define('DB_NAME', 'y');\n endif;\nendif;", local, nil, "wp"},
		{"single statements", `if (file_exists(__DIR__ . '/nope')) define('DB_NAME', 'x'); else define('DB_NAME', 'wp');`, local, nil, "wp"},
		{"ternary value", `define('DB_NAME', file_exists(__DIR__ . '/nope') ? 'x' : 'wp');`, local, nil, "wp"},
		{"ternary value true", `define('DB_NAME', is_file(__DIR__ . '/local-config.php') ? 'wp' : 'x');`, local, nil, "wp"},
		{"nested ternary in parentheses", `define('DB_NAME', file_exists(__DIR__ . '/nope') ? 'x' : (is_dir(ABSPATH . 'wp-content') ? 'wp' : 'y'));`, local, nil, "wp"},
		{"defined or define, not yet defined", `defined('DB_NAME') || define('DB_NAME', 'wp');`, nil, nil, "wp"},
		{"defined or define, already defined", `define('DB_NAME', 'wp'); defined('DB_NAME') or define('DB_NAME', 'x');`, nil, nil, "wp"},
		{"not defined and define", `!defined('DB_NAME') && define('DB_NAME', 'wp'); define('DB_NAME', 'x');`, nil, nil, "wp"},
		{"if not defined", `if (!defined('DB_NAME')) { define('DB_NAME', 'wp'); }`, nil, nil, "wp"},
		{"if defined skips", `if (defined('WP_CLI')) { define('DB_NAME', 'x'); } define('DB_NAME', 'wp');`, nil, nil, "wp"},
		{"getenv comparison", `if (getenv('WP_ENV') === 'staging') { define('DB_NAME', 'x'); } else { define('DB_NAME', 'wp'); }`, nil, map[string]string{"WP_ENV": "production"}, "wp"},
		{"isset guard", `$table_prefix = 'wp_'; if (!isset($table_prefix)) { define('DB_NAME', 'x'); } else { define('DB_NAME', 'wp'); }`, nil, nil, "wp"},
		{"getenv truthy", `if (getenv('WP_ENV')) { define('DB_NAME', 'wp'); } else { define('DB_NAME', 'x'); }`, nil, map[string]string{"WP_ENV": "production"}, "wp"},
		{"undecided branch defines something else", `if (some_fn()) { define('WP_DEBUG', true); } define('DB_NAME', 'wp');`, nil, nil, "wp"},
		{"undecided branch after the define", `define('DB_NAME', 'wp'); if (some_fn()) { define('DB_NAME', 'x'); }`, nil, nil, "wp"},
		{"while body is not followed", `while (some_fn()) { } define('DB_NAME', 'wp');`, nil, nil, "wp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := ParseOptions{}
			if tt.paths != nil {
				opts.Stat = statMap(tt.paths)
			}
			if tt.env != nil {
				opts.Env = func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok }
			}
			cfg, err := ParseConfig([]byte("<?php\n"+tt.src+"\n"), opts)
			if err != nil {
				t.Fatalf("ParseConfig: %v", err)
			}
			db, err := cfg.Database(Overrides{DBUser: ptr("u"), DBPassword: ptr("p"), DBHost: ptr("h"), TablePrefix: ptr("wp_")})
			if err != nil {
				t.Fatalf("Database: %v", err)
			}
			if db.Name != tt.want {
				t.Errorf("DB_NAME = %q, want %q", db.Name, tt.want)
			}
		})
	}
}

func TestConditionalDefineUndecidable(t *testing.T) {
	tests := []struct {
		name, src string
		line      string
	}{
		{"file outside the site", "// config\nif (file_exists('/etc/wp/local.php')) {\n  define('DB_NAME', 'wrongdb');\n} else {\n  define('DB_NAME', 'wp');\n}", "line 4"},
		{"unknown function", "if (is_multisite_env()) {\n define('DB_NAME', 'a');\n}\ndefine('DB_NAME', 'wp');", "line 3"},
		{"ternary on unknown", "define('DB_NAME', $x ? 'a' : 'b');", ""},
		{"getenv without a recorded environment", "if (getenv('WP_ENV') === 'staging') {\n define('DB_NAME', 'staging');\n}\ndefine('DB_NAME', 'wp');", "line 3"},
		{"getenv ternary without a recorded environment", "define('DB_NAME', getenv('WP_ENV') ? 'a' : 'b');", ""},
		{"alternative syntax", "if (some_fn()):\n define('DB_NAME', 'a');\nendif;\ndefine('DB_NAME', 'wp');", "line 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Absolute paths lie outside the site: they cannot be checked.
			stat := func(base, name string) (fs.FileMode, error) {
				if base == "" {
					return 0, errors.New("outside the site")
				}
				return 0, fs.ErrNotExist
			}
			cfg, err := ParseConfig([]byte("<?php\n"+tt.src+"\n"), ParseOptions{Stat: stat})
			if err != nil {
				t.Fatalf("ParseConfig: %v", err)
			}
			_, err = cfg.Database(Overrides{DBUser: ptr("u"), DBPassword: ptr("p"), DBHost: ptr("h"), TablePrefix: ptr("wp_")})
			if err == nil {
				t.Fatal("Database succeeded, want an error naming DB_NAME")
			}
			for _, s := range []string{"DB_NAME", tt.line} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
			if tt.line != "" && !errors.Is(err, ErrConditional) {
				t.Errorf("error %v does not wrap ErrConditional", err)
			}
			var ve *ValueError
			if !errors.As(err, &ve) || ve.Name != "DB_NAME" {
				t.Errorf("error %v is not a ValueError for DB_NAME", err)
			}
			// The override still wins.
			if db, err := cfg.Database(Overrides{DBName: ptr("n"), DBUser: ptr("u"), DBPassword: ptr("p"), DBHost: ptr("h"), TablePrefix: ptr("wp_")}); err != nil || db.Name != "n" {
				t.Errorf("with --db-name: %v, %q", err, db.Name)
			}
		})
	}
}

// TestDiscoverConditionalDefine reads wp-config.php's conditions through
// the site's own files: issue 8 finding 7, where the first define of a
// conditional pair was taken and the wrong database was backed up.
func TestDiscoverConditionalDefine(t *testing.T) {
	const cond = "<?php\nif (file_exists(%s)) {\n  define('DB_NAME', 'wrongdb');\n} else {\n  define('DB_NAME', 'wp');\n}\n"
	tests := []struct {
		name  string
		check string            // the argument of file_exists
		files map[string]string // besides the core and the config
		above bool              // wp-config.php in the folder above
		want  string            // DB_NAME, "" for an ErrConditional
	}{
		{"missing beside the config", "__DIR__ . '/local-config.php'", nil, false, "wp"},
		{"present beside the config", "__DIR__ . '/local-config.php'", map[string]string{"site/local-config.php": "<?php"}, false, "wrongdb"},
		{"folder under ABSPATH", "ABSPATH . 'wp-content/local'", map[string]string{"site/wp-content/local/x": ""}, false, "wrongdb"},
		{"config above, beside it", "__DIR__ . '/secrets.php'", map[string]string{"secrets.php": ""}, true, "wrongdb"},
		{"config above, ABSPATH", "ABSPATH . 'secrets.php'", map[string]string{"secrets.php": ""}, true, "wp"},
		{"dot-dot to the folder above", "ABSPATH . '../secrets.php'", map[string]string{"secrets.php": ""}, false, "wrongdb"},
		{"absolute inside the root", "'ROOT/local-config.php'", map[string]string{"site/local-config.php": ""}, false, "wrongdb"},
		{"absolute in the folder above", "'PARENT/nothing.php'", nil, false, "wp"},
		{"absolute elsewhere", "'/etc/wordpress/config-default.php'", nil, false, ""},
		{"file used as a folder", "__DIR__ . '/wp-settings.php/x'", nil, false, "wp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			top := t.TempDir()
			root := filepath.Join(top, "site")
			check := strings.NewReplacer("ROOT", root, "PARENT", top).Replace(tt.check)
			tree := map[string]string{"site/wp-includes/version.php": versionPHP, "site/wp-settings.php": "<?php"}
			cfgPath := "site/wp-config.php"
			if tt.above {
				cfgPath = "wp-config.php"
			}
			tree[cfgPath] = fmt.Sprintf(cond, check)
			for k, v := range tt.files {
				tree[k] = v
			}
			writeTree(t, top, tree)
			site, err := Discover(context.Background(), openLocal(t, root), DiscoverOptions{Parent: openLocal(t, top), RootPath: root})
			if err != nil {
				t.Fatalf("Discover: %v", err)
			}
			db, err := site.Config.Database(Overrides{DBUser: ptr("u"), DBPassword: ptr("p"), DBHost: ptr("h"), TablePrefix: ptr("wp_")})
			if tt.want == "" {
				if !errors.Is(err, ErrConditional) || !strings.Contains(err.Error(), "line 3") || !strings.Contains(err.Error(), "DB_NAME") {
					t.Fatalf("Database: %v, want ErrConditional naming line 3 and DB_NAME", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Database: %v", err)
			}
			if db.Name != tt.want {
				t.Errorf("DB_NAME = %q, want %q", db.Name, tt.want)
			}
		})
	}
}

func TestConditionalNestingBounded(t *testing.T) {
	const n = 20000
	for _, open := range []string{"if (a) { ", "if (a): ", "while (a) { ", "if (a) if (b) ", "(", "! (", "a ? "} {
		src := "<?php define('X', 'v'); " + strings.Repeat(open, n) + "define('DB_NAME', 'x');"
		cfg := parse(t, src, nil)
		if v := cfg.Constants["X"]; v.Text != "v" {
			t.Errorf("%q: X = %#v", open, v)
		}
		if v, ok := cfg.Constants["DB_NAME"]; ok && v.Known() && strings.HasPrefix(open, "if") {
			t.Errorf("%q: DB_NAME = %#v, want unknown or undefined", open, v)
		}
	}
}
