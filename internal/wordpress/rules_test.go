package wordpress

import (
	"errors"
	"io/fs"
	"path"
	"strings"
	"testing"

	"github.com/sitevault/sitevault/internal/fsys"
)

// selector is the archiver's selection interface, declared here as the
// archiver declares it, to check that Rules satisfies it.
type selector interface {
	Entry(path string, fi fsys.FileInfo) (take bool, reason string)
	Dir(path string, entries []fsys.FileInfo) (take bool, reason string)
}

var _ selector = (*Rules)(nil)

func file(name string) fsys.FileInfo { return fsys.FileInfo{Name: name, Mode: 0o644} }
func dir(name string) fsys.FileInfo  { return fsys.FileInfo{Name: name, Mode: fs.ModeDir | 0o755} }
func link(name string) fsys.FileInfo { return fsys.FileInfo{Name: name, Mode: fs.ModeSymlink | 0o777} }
func special(name string, m fs.FileMode) fsys.FileInfo {
	return fsys.FileInfo{Name: name, Mode: m | 0o644}
}

func TestRulesEntry(t *testing.T) {
	tests := []struct {
		path   string
		fi     fsys.FileInfo // Name is filled from path
		take   bool
		reason string
	}{
		// Taken.
		{"", dir(""), true, ""},
		{"wp-config.php", file(""), true, ""},
		{".htaccess", file(""), true, ""},
		{".htaccess-link", link(""), true, ""},
		{"robots.txt", file(""), true, ""},
		{"custom", dir(""), true, ""},
		{"custom/index.php", file(""), true, ""},
		{"custom/wp-admin", dir(""), true, ""}, // core names count only in the root
		{"wp-content", dir(""), true, ""},
		{"wp-content/object-cache.php", file(""), true, ""},
		{"wp-content/advanced-cache.php", file(""), true, ""},
		{"wp-content/languages", dir(""), true, ""},
		{"wp-content/plugins/akismet/akismet.php", file(""), true, ""},
		{"wp-content/mu-plugins/loader.php", file(""), true, ""},
		{"wp-content/themes/twentytwentythree", dir(""), true, ""},
		{"wp-content/uploads/2024/01/a.jpg", file(""), true, ""},
		{"wp-content/w3tc-config", dir(""), true, ""},
		{"wp-content/wp-rocket-config", dir(""), true, ""},
		{"wp-content/cache", file(""), true, ""}, // folder rules apply to folders
		{"wp-content/plugins/cache", dir(""), true, ""},
		{"wp-content/uploads/cache", dir(""), true, ""},
		{"wp-content/themes/t/cache", dir(""), true, ""},
		{"wp-content/donotbackup.txt", file(""), true, ""},
		{"wp-content/cache-link", link(""), true, ""},
		{"wp-content/cache", link(""), true, ""}, // a link is taken as a link
		{"wp-contentx/cache", dir(""), true, ""},
		// Outside the root.
		{"../etc/passwd", file(""), false, RuleOutside},
		{"wp-content/../../x", file(""), false, RuleOutside},
		{"/etc/passwd", file(""), false, RuleOutside},
		// Not regular files.
		{"mysql.sock", special("", fs.ModeSocket), false, RuleNotRegular},
		{"wp-content/fifo", special("", fs.ModeNamedPipe), false, RuleNotRegular},
		{"dev/sda", special("", fs.ModeDevice), false, RuleNotRegular},
		{"dev/tty", special("", fs.ModeDevice|fs.ModeCharDevice), false, RuleNotRegular},
		{"weird", special("", fs.ModeIrregular), false, RuleNotRegular},
		// Core.
		{"wp-admin", dir(""), false, RuleCore},
		{"wp-includes", dir(""), false, RuleCore},
		{"wp-admin", link(""), false, RuleCore},
		// donotbackup by name.
		{"donotbackup", dir(""), false, RuleNamedDoNot},
		{"wp-content/uploads/private/donotbackup", dir(""), false, RuleNamedDoNot},
		// Cache folders.
		{"wp-content/cache", dir(""), false, RuleContentCache},
		{"wp-content/upgrade", dir(""), false, RuleUpdateFolders},
		{"wp-content/upgrade-temp-backup", dir(""), false, RuleUpdateFolders},
		{"wp-content/litespeed", dir(""), false, "cache folder (LiteSpeed Cache)"},
		{"wp-content/wphb-cache", dir(""), false, "cache folder (Hummingbird)"},
		{"wp-content/uploads/hummingbird-assets", dir(""), false, "cache folder (Hummingbird)"},
		{"wp-content/uploads/siteground-optimizer-assets", dir(""), false, "cache folder (SiteGround Optimizer)"},
		{"wp-content/w3tc", dir(""), false, "cache folder (W3 Total Cache)"},
		{"wp-content/et-cache", dir(""), false, "cache folder (Divi)"},
		// Backup folders.
		{"wp-content/updraft", dir(""), false, "backup folder (UpdraftPlus)"},
		{"wp-content/uploads/backwpup-1a2b3c-backups", dir(""), false, "backup folder (BackWPup)"},
		{"wp-content/uploads/backwpup-1a2b3c-logs", dir(""), false, "backup folder (BackWPup)"},
		{"wp-content/backwpup-1a2b3c-temp", dir(""), false, "backup folder (BackWPup)"},
		{"wp-content/ai1wm-backups", dir(""), false, "backup folder (All-in-One WP Migration)"},
		{"wp-snapshots", dir(""), false, "backup folder (Duplicator)"},
		{"wp-content/backups-dup-lite", dir(""), false, "backup folder (Duplicator)"},
		{"wp-content/backups-dup-pro", dir(""), false, "backup folder (Duplicator)"},
		{"wp-content/uploads/backupbuddy_backups", dir(""), false, "backup folder (Solid Backups / BackupBuddy)"},
		{"wp-content/uploads/backupbuddy_temp", dir(""), false, "backup folder (Solid Backups / BackupBuddy)"},
		{"wp-content/uploads/pb_backupbuddy", dir(""), false, "backup folder (Solid Backups / BackupBuddy)"},
		{"wp-content/wpvividbackups", dir(""), false, "backup folder (WPvivid)"},
		{"wp-content/backupwordpress-0123abcd-backups", dir(""), false, "backup folder (BackupWordPress)"},
		{"jetpack-temp", dir(""), false, "backup folder (Jetpack Backup)"},
		{"wp-content/jetpack-temp", dir(""), false, "backup folder (Jetpack Backup)"},
		{"wp-content/uploads/jetpack-temp", dir(""), false, "backup folder (Jetpack Backup)"},
		{"boldgrid_backup", dir(""), false, "backup folder (Total Upkeep)"},
		{"wp-content/boldgrid_backup_1234", dir(""), false, "backup folder (Total Upkeep)"},
		{"wp-content/xcloner-a1b2c", dir(""), false, "backup folder (XCloner)"},
		{"wp-content/uploads/wp-staging", dir(""), false, "backup folder (WP Staging)"},
		{"wp-content/ebwp-backups", dir(""), false, "backup folder (Everest Backup)"},
		{"wp-content/backup-migration-xYz12", dir(""), false, "backup folder (Backup Migration)"},
		{"wp-content/uploads/backup-guard", dir(""), false, "backup folder (Backup Guard)"},
		{"wp-content/managewp/backups", dir(""), false, "backup folder (ManageWP)"},
		{"wp-content/uploads/db-backup", dir(""), false, "backup folder (WP Database Backup)"},
		// Backup plugin names elsewhere are ordinary folders.
		{"wp-content/plugins/updraft", dir(""), true, ""},
		{"wp-content/uploads/2024/updraft", dir(""), true, ""},
		{"custom/wp-snapshots", dir(""), true, ""},
		{"wp-content/managewp", dir(""), true, ""},
	}
	for _, name := range CoreRootFiles {
		tests = append(tests, struct {
			path   string
			fi     fsys.FileInfo
			take   bool
			reason string
		}{name, file(""), false, RuleCore})
	}
	r := NewRules(RulesOptions{})
	for _, tt := range tests {
		t.Run(strings.ReplaceAll(tt.path, "/", "|")+"/"+tt.fi.Mode.Type().String(), func(t *testing.T) {
			fi := tt.fi
			fi.Name = path.Base(tt.path)
			take, reason := r.Entry(tt.path, fi)
			if take != tt.take || reason != tt.reason {
				t.Errorf("Entry(%q) = %v, %q; want %v, %q", tt.path, take, reason, tt.take, tt.reason)
			}
		})
	}
}

func TestRulesEntryContentDir(t *testing.T) {
	r := NewRules(RulesOptions{ContentDir: "app/content/"})
	tests := []struct {
		path   string
		take   bool
		reason string
	}{
		{"app/content/cache", false, RuleContentCache},
		{"app/content/updraft", false, "backup folder (UpdraftPlus)"},
		{"app/content/uploads/backwpup-1-backups", false, "backup folder (BackWPup)"},
		{"wp-content/cache", true, ""}, // not the content dir here: a custom root folder
		{"wp-snapshots", false, "backup folder (Duplicator)"},
	}
	for _, tt := range tests {
		t.Run(strings.ReplaceAll(tt.path, "/", "|"), func(t *testing.T) {
			take, reason := r.Entry(tt.path, dir(path.Base(tt.path)))
			if take != tt.take || reason != tt.reason {
				t.Errorf("Entry(%q) = %v, %q; want %v, %q", tt.path, take, reason, tt.take, tt.reason)
			}
		})
	}
}

func TestRulesDir(t *testing.T) {
	tag := fsys.FileInfo{Name: "CACHEDIR.TAG", Mode: 0o644, Size: 43}
	shortTag := fsys.FileInfo{Name: "CACHEDIR.TAG", Mode: 0o644, Size: 10}
	tests := []struct {
		name    string
		path    string
		entries []fsys.FileInfo
		head    string // what ReadHead returns for CACHEDIR.TAG; "" = no ReadHead
		take    bool
		reason  string
	}{
		{"the root is a WordPress install", "", []fsys.FileInfo{file("wp-config.php"), file("wp-load.php"), dir("wp-includes")}, "", true, ""},
		{"plain folder", "custom", []fsys.FileInfo{file("a.txt"), dir("b")}, "", true, ""},
		{"empty folder", "custom", nil, "", true, ""},
		{"nested install by wp-config.php", "blog", []fsys.FileInfo{file("wp-config.php"), file("index.php")}, "", false, RuleOtherInstall},
		{"nested install by wp-config.php link", "blog", []fsys.FileInfo{link("wp-config.php")}, "", false, RuleOtherInstall},
		{"nested install by wp-load.php and wp-includes", "staging", []fsys.FileInfo{file("wp-load.php"), dir("wp-includes"), dir("wp-admin")}, "", false, RuleOtherInstall},
		{"wp-load.php alone is not an install", "x", []fsys.FileInfo{file("wp-load.php")}, "", true, ""},
		{"wp-includes alone is not an install", "x", []fsys.FileInfo{dir("wp-includes")}, "", true, ""},
		{"wp-includes file is not an install", "x", []fsys.FileInfo{file("wp-load.php"), file("wp-includes")}, "", true, ""},
		{".donotbackup", "wp-content/uploads/private", []fsys.FileInfo{file("a.pdf"), file(".donotbackup")}, "", false, RuleDoNotBackup},
		{".donotbackup in the root", "", []fsys.FileInfo{file(".donotbackup"), file("wp-config.php")}, "", false, RuleDoNotBackup},
		{".donotbackup folder counts too", "x", []fsys.FileInfo{dir(".donotbackup")}, "", false, RuleDoNotBackup},
		{"CACHEDIR.TAG checked by size", "wp-content/x-cache", []fsys.FileInfo{tag}, "", false, RuleCacheDirTag},
		{"CACHEDIR.TAG with signature", "wp-content/x-cache", []fsys.FileInfo{tag}, cacheDirTagSignature, false, RuleCacheDirTag},
		{"CACHEDIR.TAG with wrong signature", "wp-content/x-cache", []fsys.FileInfo{tag}, "Signature: 00000000000000000000000000000000", true, ""},
		{"CACHEDIR.TAG too short", "wp-content/x-cache", []fsys.FileInfo{shortTag}, "", true, ""},
		{"CACHEDIR.TAG folder", "wp-content/x-cache", []fsys.FileInfo{dir("CACHEDIR.TAG")}, "", true, ""},
		{"outside", "../x", nil, "", false, RuleOutside},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var opts RulesOptions
			if tt.head != "" {
				opts.ReadHead = func(name string, n int) ([]byte, error) {
					if name != tt.path+"/CACHEDIR.TAG" {
						t.Errorf("ReadHead(%q), want %q", name, tt.path+"/CACHEDIR.TAG")
					}
					return []byte(tt.head[:min(n, len(tt.head))]), nil
				}
			}
			take, reason := NewRules(opts).Dir(tt.path, tt.entries)
			if take != tt.take || reason != tt.reason {
				t.Errorf("Dir(%q) = %v, %q; want %v, %q", tt.path, take, reason, tt.take, tt.reason)
			}
		})
	}
	t.Run("unreadable CACHEDIR.TAG does not exclude", func(t *testing.T) {
		r := NewRules(RulesOptions{ReadHead: func(string, int) ([]byte, error) { return nil, errors.New("boom") }})
		if take, reason := r.Dir("x", []fsys.FileInfo{tag}); !take {
			t.Errorf("Dir = false, %q; want true", reason)
		}
	})
}

func TestRulesItem(t *testing.T) {
	tests := []struct {
		content, path, want string
	}{
		{"", "", ""},
		{"", "wp-config.php", ItemRoots},
		{"", ".htaccess", ItemRoots},
		{"", "custom/deep/file.txt", ItemRoots},
		{"", "wp-content", ItemContents},
		{"", "wp-content/object-cache.php", ItemContents},
		{"", "wp-content/languages/de_DE.mo", ItemContents},
		{"", "wp-content/themes", ItemThemes},
		{"", "wp-content/themes/t/style.css", ItemThemes},
		{"", "wp-content/plugins/akismet/akismet.php", ItemPlugins},
		{"", "wp-content/mu-plugins/x.php", ItemPlugins},
		{"", "wp-content/uploads/2024/a.jpg", ItemUploads},
		{"", "wp-contentx/themes", ItemRoots},
		{"", "wp-content/uploadsx", ItemContents},
		{"content", "content/themes/t", ItemThemes},
		{"content", "wp-content/themes/t", ItemRoots},
		{"app/content", "app/content/plugins/p", ItemPlugins},
		{"app/content", "app/index.php", ItemRoots},
	}
	for _, tt := range tests {
		t.Run(tt.content+"|"+strings.ReplaceAll(tt.path, "/", "|"), func(t *testing.T) {
			if got := NewRules(RulesOptions{ContentDir: tt.content}).Item(tt.path); got != tt.want {
				t.Errorf("Item(%q) = %q, want %q", tt.path, got, tt.want)
			}
		})
	}
	t.Run("Items", func(t *testing.T) {
		want := []string{"themes", "plugins", "uploads", "roots", "contents"}
		if got := Items(); strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("Items() = %v, want %v", got, want)
		}
	})
}
