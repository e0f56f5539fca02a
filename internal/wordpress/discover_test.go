package wordpress

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sitevault/sitevault/internal/fsys"
	"github.com/sitevault/sitevault/internal/testsrv"
)

// writeTree creates files under root: a key ending in "/" is a folder, a
// value starting with "->" makes a symbolic link to the rest, anything else
// is the file's content.
func writeTree(tb testing.TB, root string, tree map[string]string) {
	tb.Helper()
	for name, content := range tree {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			tb.Fatal(err)
		}
		var err error
		switch {
		case strings.HasSuffix(name, "/"):
			err = os.MkdirAll(p, 0o755)
		case strings.HasPrefix(content, "->"):
			err = os.Symlink(content[2:], p)
		default:
			err = os.WriteFile(p, []byte(content), 0o644)
		}
		if err != nil {
			tb.Fatal(err)
		}
	}
}

func openLocal(tb testing.TB, root string) *fsys.Local {
	tb.Helper()
	l, err := fsys.NewLocal(root)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { l.Close() })
	return l
}

const (
	versionPHP = "<?php\n/**\n * @global string $wp_version\n */\n$wp_version = '6.4.2';\n$wp_db_version = 56657;\n"
	configPHP  = "<?php\ndefine('DB_NAME', 'site');\ndefine('DB_USER', 'u');\ndefine('DB_PASSWORD', 'p');\ndefine('DB_HOST', 'localhost');\n$table_prefix = 'wp_';\n"
)

func TestDiscover(t *testing.T) {
	core := map[string]string{"site/wp-includes/version.php": versionPHP, "site/wp-settings.php": "<?php"}
	with := func(extra map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range core {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	tests := []struct {
		name      string
		tree      map[string]string // under a temporary folder; the site is site/
		noParent  bool
		env       map[string]string
		err       error
		errText   string
		version   string
		above     bool
		content   string
		external  string
		multisite bool
		dbHost    string
	}{
		{name: "config in the root", tree: with(map[string]string{"site/wp-config.php": configPHP}),
			version: "6.4.2", content: "wp-content", dbHost: "localhost"},
		{name: "config in the root wins over the one above", tree: with(map[string]string{
			"site/wp-config.php": configPHP, "wp-config.php": strings.Replace(configPHP, "'localhost'", "'above'", 1)}),
			version: "6.4.2", content: "wp-content", dbHost: "localhost"},
		{name: "config one folder above", tree: with(map[string]string{"wp-config.php": configPHP}),
			version: "6.4.2", above: true, content: "wp-content", dbHost: "localhost"},
		{name: "config above ignored when that folder is WordPress", tree: with(map[string]string{
			"wp-config.php": configPHP, "wp-settings.php": "<?php"}), err: ErrNoConfig, errText: "wp-settings.php"},
		{name: "config above without a parent reader", tree: with(map[string]string{"wp-config.php": configPHP}),
			noParent: true, err: ErrNoConfig},
		{name: "no config", tree: core, err: ErrNoConfig},
		{name: "not WordPress", tree: map[string]string{"site/index.html": "hi", "site/wp-config.php": configPHP}, err: ErrNotWordPress},
		{name: "wp-settings.php without version.php", tree: map[string]string{"site/wp-settings.php": "<?php", "site/wp-config.php": configPHP},
			version: "", content: "wp-content", dbHost: "localhost"},
		{name: "environment reaches getenv", tree: with(map[string]string{
			"site/wp-config.php": strings.Replace(configPHP, "'localhost'", "getenv_docker('WORDPRESS_DB_HOST', 'mysql')", 1)}),
			env: map[string]string{"WORDPRESS_DB_HOST": "db:3307"}, version: "6.4.2", content: "wp-content", dbHost: "db:3307"},
		{name: "content dir inside the root", tree: with(map[string]string{
			"site/wp-config.php": configPHP + "define('WP_CONTENT_DIR', ABSPATH . 'content');"}),
			version: "6.4.2", content: "content", dbHost: "localhost"},
		{name: "content dir outside the root", tree: with(map[string]string{
			"site/wp-config.php": configPHP + "define('WP_CONTENT_DIR', '/var/lib/wordpress/wp-content');"}),
			version: "6.4.2", content: "wp-content", external: "/var/lib/wordpress/wp-content", dbHost: "localhost"},
		{name: "multisite", tree: with(map[string]string{
			"site/wp-config.php": configPHP + "define('MULTISITE', true);\ndefine('SUBDOMAIN_INSTALL', false);"}),
			version: "6.4.2", content: "wp-content", multisite: true, dbHost: "localhost"},
		{name: "config is a link out of the root", tree: with(map[string]string{
			"real-config.php": configPHP, "site/wp-config.php": "->../real-config.php"}), err: nil, errText: "symbolic link"},
		{name: "config syntax error", tree: with(map[string]string{"site/wp-config.php": "<?php define('DB_NAME', 'x);"}), err: ErrSyntax},
		{name: "config too large", tree: with(map[string]string{"site/wp-config.php": "<?php\n" + strings.Repeat("//", maxPHPSize)}), err: ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tmp := t.TempDir()
			writeTree(t, tmp, tt.tree)
			if err := os.MkdirAll(filepath.Join(tmp, "site"), 0o755); err != nil {
				t.Fatal(err)
			}
			opts := DiscoverOptions{Env: func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok }}
			if !tt.noParent {
				opts.Parent = openLocal(t, tmp)
			}
			site, err := Discover(context.Background(), openLocal(t, filepath.Join(tmp, "site")), opts)
			if tt.err != nil || tt.errText != "" {
				if err == nil {
					t.Fatalf("Discover succeeded, want error %v %q", tt.err, tt.errText)
				}
				if tt.err != nil && !errors.Is(err, tt.err) {
					t.Errorf("err = %v, want %v", err, tt.err)
				}
				if !strings.Contains(err.Error(), tt.errText) {
					t.Errorf("err = %v, want it to mention %q", err, tt.errText)
				}
				return
			}
			if err != nil {
				t.Fatalf("Discover: %v", err)
			}
			if site.Version != tt.version || site.ConfigAbove != tt.above || site.ContentDir != tt.content ||
				site.ExternalContentDir != tt.external || site.Multisite() != tt.multisite {
				t.Errorf("site = version %q above %v content %q external %q multisite %v; want %q %v %q %q %v",
					site.Version, site.ConfigAbove, site.ContentDir, site.ExternalContentDir, site.Multisite(),
					tt.version, tt.above, tt.content, tt.external, tt.multisite)
			}
			db, err := site.Config.Database(Overrides{})
			if err != nil {
				t.Fatalf("Database: %v", err)
			}
			if db.Host != tt.dbHost {
				t.Errorf("DB host = %q, want %q", db.Host, tt.dbHost)
			}
		})
	}
}

// explainAll runs Explain and returns every decision by path.
func explainAll(t *testing.T, l *fsys.Local, rules *Rules) map[string]Decision {
	t.Helper()
	got := map[string]Decision{}
	var order []string
	err := Explain(context.Background(), l, rules, func(d Decision) error {
		if _, dup := got[d.Path]; dup {
			t.Errorf("%q reported twice", d.Path)
		}
		got[d.Path] = d
		order = append(order, d.Path)
		return nil
	})
	if err != nil {
		t.Fatalf("Explain: %v", err)
	}
	// Depth-first in name order: siblings come in increasing byte order.
	last := map[string]string{}
	for _, p := range order {
		parent, base := parentOf(p), p[len(parentOf(p)):]
		if prev, ok := last[parent]; ok && prev >= base {
			t.Errorf("order: %q reported after sibling %q", p, parent+prev)
		}
		last[parent] = base
	}
	return got
}

func parentOf(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[:i]
	}
	return ""
}

func TestExplain(t *testing.T) {
	tmp := t.TempDir()
	writeTree(t, tmp, map[string]string{
		"wp-config.php":                   configPHP,
		"wp-load.php":                     "<?php",
		"wp-includes/version.php":         versionPHP,
		"wp-content/plugins/p/p.php":      "<?php",
		"wp-content/cache/page.html":      "x",
		"wp-content/x/CACHEDIR.TAG":       cacheDirTagSignature + "\n",
		"wp-content/y/CACHEDIR.TAG":       "Signature: not a real tag, just some text\n",
		"wp-content/y/keep.txt":           "y",
		"wp-content/uploads/a.jpg":        "a",
		"wp-content/uploads/link.jpg":     "->a.jpg",
		"wp-content/uploads/dirlink":      "->../plugins",
		"blog/wp-config.php":              configPHP,
		"blog/wp-content/uploads/b.jpg":   "b",
		"empty/":                          "",
		"private/.donotbackup":            "",
		"private/secret.txt":              "s",
		"wp-content/uploads/donotbackup/": "",
	})
	l := openLocal(t, tmp)
	got := explainAll(t, l, NewRules(RulesOptions{ReadHead: HeadReader(context.Background(), l)}))
	want := map[string]struct {
		take   bool
		reason string
		item   string
	}{
		"blog":                           {false, RuleOtherInstall, ItemRoots},
		"empty":                          {true, "", ItemRoots},
		"private":                        {false, RuleDoNotBackup, ItemRoots},
		"wp-config.php":                  {true, "", ItemRoots},
		"wp-content":                     {true, "", ItemContents},
		"wp-content/cache":               {false, RuleContentCache, ItemContents},
		"wp-content/plugins":             {true, "", ItemPlugins},
		"wp-content/plugins/p":           {true, "", ItemPlugins},
		"wp-content/plugins/p/p.php":     {true, "", ItemPlugins},
		"wp-content/uploads":             {true, "", ItemUploads},
		"wp-content/uploads/a.jpg":       {true, "", ItemUploads},
		"wp-content/uploads/dirlink":     {true, "", ItemUploads},
		"wp-content/uploads/donotbackup": {false, RuleNamedDoNot, ItemUploads},
		"wp-content/uploads/link.jpg":    {true, "", ItemUploads},
		"wp-content/x":                   {false, RuleCacheDirTag, ItemContents},
		"wp-content/y":                   {true, "", ItemContents},
		"wp-content/y/CACHEDIR.TAG":      {true, "", ItemContents},
		"wp-content/y/keep.txt":          {true, "", ItemContents},
		"wp-includes":                    {false, RuleCore, ItemRoots},
		"wp-load.php":                    {false, RuleCore, ItemRoots},
	}
	for p, w := range want {
		d, ok := got[p]
		if !ok {
			t.Errorf("%q not reported", p)
			continue
		}
		if d.Taken != w.take || d.Reason != w.reason || d.Item != w.item {
			t.Errorf("%q: taken %v reason %q item %q; want %v %q %q", p, d.Taken, d.Reason, d.Item, w.take, w.reason, w.item)
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("unexpected %q reported", p)
		}
	}

	t.Run("excluded root", func(t *testing.T) {
		tmp := t.TempDir()
		writeTree(t, tmp, map[string]string{".donotbackup": "", "a.txt": "a"})
		got := explainAll(t, openLocal(t, tmp), NewRules(RulesOptions{}))
		if len(got) != 1 || got[""].Taken || got[""].Reason != RuleDoNotBackup {
			t.Errorf("got %v, want only the root excluded by %q", got, RuleDoNotBackup)
		}
	})
	t.Run("callback error stops the walk", func(t *testing.T) {
		stop := errors.New("stop")
		n := 0
		err := Explain(context.Background(), l, NewRules(RulesOptions{}), func(Decision) error { n++; return stop })
		if !errors.Is(err, stop) || n != 1 {
			t.Errorf("err = %v after %d calls, want stop after 1", err, n)
		}
	})
	t.Run("cancelled context", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		err := Explain(ctx, l, NewRules(RulesOptions{}), func(Decision) error { return nil })
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
	})
}

// copyDeref copies src to dst, following symbolic links (Debian links
// .htaccess to /etc/wordpress and some wp-includes files to other packages).
// Links that lead nowhere are skipped.
func copyDeref(tb testing.TB, src, dst string) {
	tb.Helper()
	fi, err := os.Stat(src)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err != nil {
		tb.Fatal(err)
	}
	if !fi.IsDir() {
		data, err := os.ReadFile(src)
		if err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			tb.Fatal(err)
		}
		return
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		tb.Fatal(err)
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		tb.Fatal(err)
	}
	for _, e := range entries {
		copyDeref(tb, filepath.Join(src, e.Name()), filepath.Join(dst, e.Name()))
	}
}

// TestDebianWordPress runs discovery and the rules over a copy of Debian's
// WordPress plus a fixture set, and checks every decision.
func TestDebianWordPress(t *testing.T) {
	const debian = "/usr/share/wordpress"
	if _, err := os.Stat(filepath.Join(debian, "wp-includes", "version.php")); err != nil {
		testsrv.Missing(t, "WordPress", "apt-get install wordpress")
	}
	root := filepath.Join(t.TempDir(), "site")
	copyDeref(t, debian, root)
	writeTree(t, root, map[string]string{
		// Taken.
		"custom/app.php":                                "<?php",
		"custom/wp-admin/notes.txt":                     "core names count only in the root",
		"robots.txt":                                    "User-agent: *",
		"wp-content/object-cache.php":                   "<?php // drop-in",
		"wp-content/advanced-cache.php":                 "<?php // drop-in",
		"wp-content/mu-plugins/loader.php":              "<?php",
		"wp-content/uploads/2024/05/photo.jpg":          "jpg",
		"wp-content/languages/plugins/akismet-de_DE.mo": "mo",
		"wp-content/w3tc-config/master.php":             "<?php",
		// Excluded.
		"blog/wp-config.php":                               configPHP,
		"blog/wp-content/uploads/b.jpg":                    "b",
		"staging/wp-load.php":                              "<?php",
		"staging/wp-includes/version.php":                  versionPHP,
		"staging/notes.txt":                                "n",
		"private/.donotbackup":                             "",
		"private/contract.pdf":                             "pdf",
		"wp-content/uploads/donotbackup/raw.psd":           "psd",
		"wp-content/cache/wp-rocket/index.html":            "html",
		"wp-content/cache/autoptimize/css/a.css":           "css",
		"wp-content/litespeed/css/b.css":                   "css",
		"wp-content/wphb-cache/c.html":                     "html",
		"wp-content/upgrade/tmp.zip":                       "zip",
		"wp-content/updraft/backup_2024-db.gz":             "gz",
		"wp-content/ai1wm-backups/site.wpress":             "wpress",
		"wp-content/uploads/backwpup-abc123-backups/b.zip": "zip",
		"wp-content/backups-dup-lite/pkg.zip":              "zip",
		"wp-snapshots/pkg.zip":                             "zip",
		"wp-content/wpvividbackups/w.zip":                  "zip",
		"wp-content/uploads/thumbs-cache/CACHEDIR.TAG":     cacheDirTagSignature + "\n# thumbnails\n",
		"wp-content/uploads/thumbs-cache/t.png":            "png",
	})
	ctx := context.Background()
	l := openLocal(t, root)

	site, err := Discover(ctx, l, DiscoverOptions{Parent: openLocal(t, filepath.Dir(root))})
	if err != nil {
		t.Fatalf("Discover: %v", err)
	}
	versionSrc, err := os.ReadFile(filepath.Join(debian, "wp-includes", "version.php"))
	if err != nil {
		t.Fatal(err)
	}
	if site.Version == "" || !strings.Contains(string(versionSrc), "$wp_version = '"+site.Version+"';") {
		t.Errorf("Version = %q, not the $wp_version of %s", site.Version, debian)
	}
	if site.ConfigAbove || site.ContentDir != "wp-content" || site.ExternalContentDir != "/var/lib/wordpress/wp-content" {
		t.Errorf("site = above %v content %q external %q; want false, wp-content, /var/lib/wordpress/wp-content",
			site.ConfigAbove, site.ContentDir, site.ExternalContentDir)
	}
	// Debian's config reads the password from /etc/wordpress/config-HOST.php.
	db, err := site.Config.Database(Overrides{})
	var ve *ValueError
	if !errors.As(err, &ve) || ve.Name != "DB_PASSWORD" || !errors.Is(err, ErrNotDefined) {
		t.Errorf("Database error = %v, want DB_PASSWORD not defined", err)
	}
	if len(site.Config.Includes) == 0 {
		t.Errorf("Includes is empty; Debian's config requires /etc/wordpress/config-*.php")
	}
	if db.Name != "wordpress" || db.User != "wordpress" || db.Host != "localhost" || db.TablePrefix != "wp_" {
		t.Errorf("Database = %+v, want Debian's defaults", db)
	}

	got := explainAll(t, l, site.Rules(HeadReader(ctx, l)))

	excluded := map[string]string{
		"wp-admin":                       RuleCore,
		"wp-includes":                    RuleCore,
		"blog":                           RuleOtherInstall,
		"staging":                        RuleOtherInstall,
		"private":                        RuleDoNotBackup,
		"wp-content/uploads/donotbackup": RuleNamedDoNot,
		"wp-content/cache":               RuleContentCache,
		"wp-content/litespeed":           "cache folder (LiteSpeed Cache)",
		"wp-content/wphb-cache":          "cache folder (Hummingbird)",
		"wp-content/upgrade":             RuleUpdateFolders,
		"wp-content/updraft":             "backup folder (UpdraftPlus)",
		"wp-content/ai1wm-backups":       "backup folder (All-in-One WP Migration)",
		"wp-content/uploads/backwpup-abc123-backups": "backup folder (BackWPup)",
		"wp-content/backups-dup-lite":                "backup folder (Duplicator)",
		"wp-snapshots":                               "backup folder (Duplicator)",
		"wp-content/wpvividbackups":                  "backup folder (WPvivid)",
		"wp-content/uploads/thumbs-cache":            RuleCacheDirTag,
	}
	for _, name := range CoreRootFiles {
		if _, err := os.Lstat(filepath.Join(root, name)); err == nil {
			excluded[name] = RuleCore
		}
	}
	for p, reason := range excluded {
		d, ok := got[p]
		if !ok || d.Taken || d.Reason != reason {
			t.Errorf("%q: %+v; want excluded by %q", p, d, reason)
		}
	}
	isExcluded := func(p string) bool {
		for q := range excluded {
			if p == q || strings.HasPrefix(p, q+"/") {
				return true
			}
		}
		return false
	}
	// Every other path in the copy is taken, and nothing else is reported.
	want := map[string]bool{}
	err = filepath.WalkDir(root, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		if rel != "." && !isExcluded(rel) {
			want[rel] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for p := range want {
		if d, ok := got[p]; !ok || !d.Taken {
			t.Errorf("%q: %+v; want taken", p, d)
		}
	}
	for p, d := range got {
		if !want[p] && excluded[p] == "" {
			t.Errorf("unexpected %q reported: %+v", p, d)
		}
	}
	// The items of some known paths.
	items := map[string]string{
		"wp-config.php":  ItemRoots,
		".htaccess":      ItemRoots,
		"robots.txt":     ItemRoots,
		"custom/app.php": ItemRoots,
		"wp-content/themes/twentytwentythree/style.css": ItemThemes,
		"wp-content/plugins/akismet/akismet.php":        ItemPlugins,
		"wp-content/mu-plugins/loader.php":              ItemPlugins,
		"wp-content/uploads/2024/05/photo.jpg":          ItemUploads,
		"wp-content/object-cache.php":                   ItemContents,
		"wp-content/languages/plugins/akismet-de_DE.mo": ItemContents,
		"wp-content/w3tc-config/master.php":             ItemContents,
	}
	for p, item := range items {
		if d := got[p]; !d.Taken || d.Item != item {
			t.Errorf("%q: %+v; want taken as %s", p, d, item)
		}
	}
	t.Logf("%d paths taken, %d excluded", len(want), len(excluded))
}
