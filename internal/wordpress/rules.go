package wordpress

import (
	"bytes"
	"io/fs"
	"path"
	"strings"

	"github.com/sitevault/sitevault/internal/fsys"
)

// Item names: the restorable parts of a restore point that live in files.
const (
	ItemThemes   = "themes"
	ItemPlugins  = "plugins" // wp-content/plugins and wp-content/mu-plugins
	ItemUploads  = "uploads"
	ItemRoots    = "roots"    // files in the WordPress root, wp-config.php and custom folders included
	ItemContents = "contents" // the rest of wp-content: drop-ins, languages …
)

// Items returns the file item names in the order users see them.
func Items() []string {
	return []string{ItemThemes, ItemPlugins, ItemUploads, ItemRoots, ItemContents}
}

// Rule names, as Entry and Dir report them. Plugin-specific rules read
// "cache folder (PLUGIN)" and "backup folder (PLUGIN)".
const (
	RuleOutside       = "path outside the site root"
	RuleNotRegular    = "not a regular file"
	RuleCore          = "WordPress core"
	RuleOtherInstall  = "another WordPress install"
	RuleDoNotBackup   = "folder holds .donotbackup"
	RuleNamedDoNot    = "folder named donotbackup"
	RuleCacheDirTag   = "cache folder (CACHEDIR.TAG)"
	RuleContentCache  = "cache folder (wp-content/cache)"
	RuleUpdateFolders = "cache folder (WordPress updates)"
)

// CoreRootFiles are the files WordPress ships in its root folder (checked
// against WordPress 6.x; Debian's package drops license.txt).
var CoreRootFiles = []string{
	"index.php", "license.txt", "readme.html", "wp-activate.php", "wp-blog-header.php",
	"wp-comments-post.php", "wp-config-sample.php", "wp-cron.php", "wp-links-opml.php",
	"wp-load.php", "wp-login.php", "wp-mail.php", "wp-settings.php", "wp-signup.php",
	"wp-trackback.php", "xmlrpc.php",
}

// CoreRootDirs are the core folders in the WordPress root.
var CoreRootDirs = []string{"wp-admin", "wp-includes"}

// folderRule excludes a folder at a fixed place. In Path, "{content}" stands
// for the content dir; a trailing "*" matches any suffix of the last name.
type folderRule struct {
	Path string
	Rule string
}

// folderRules lists the cache and backup folders of WordPress itself and of
// well-known plugins. wp-content/cache alone covers W3 Total Cache, WP Super
// Cache, WP Rocket, WP Fastest Cache, Autoptimize, Comet Cache, WP-Optimize,
// Breeze, Cache Enabler and Swift Performance, which all write below it.
// Plugins' configuration folders (w3tc-config, wp-rocket-config,
// breeze-config) hold settings and are backed up.
var folderRules = []folderRule{
	{"{content}/cache", RuleContentCache},
	{"{content}/upgrade", RuleUpdateFolders},
	{"{content}/upgrade-temp-backup", RuleUpdateFolders},
	{"{content}/litespeed", "cache folder (LiteSpeed Cache)"},
	{"{content}/wphb-cache", "cache folder (Hummingbird)"},
	{"{content}/uploads/hummingbird-assets", "cache folder (Hummingbird)"},
	{"{content}/uploads/siteground-optimizer-assets", "cache folder (SiteGround Optimizer)"},
	{"{content}/w3tc", "cache folder (W3 Total Cache)"},
	{"{content}/et-cache", "cache folder (Divi)"},

	{"{content}/updraft", "backup folder (UpdraftPlus)"},
	{"{content}/uploads/backwpup-*", "backup folder (BackWPup)"},
	{"{content}/backwpup-*", "backup folder (BackWPup)"},
	{"{content}/ai1wm-backups", "backup folder (All-in-One WP Migration)"},
	{"wp-snapshots", "backup folder (Duplicator)"},
	{"{content}/backups-dup-lite", "backup folder (Duplicator)"},
	{"{content}/backups-dup-pro", "backup folder (Duplicator)"},
	{"{content}/uploads/backupbuddy_backups", "backup folder (Solid Backups / BackupBuddy)"},
	{"{content}/uploads/backupbuddy_temp", "backup folder (Solid Backups / BackupBuddy)"},
	{"{content}/uploads/pb_backupbuddy", "backup folder (Solid Backups / BackupBuddy)"},
	{"{content}/wpvividbackups", "backup folder (WPvivid)"},
	{"{content}/backupwordpress-*", "backup folder (BackupWordPress)"},
	{"jetpack-temp", "backup folder (Jetpack Backup)"},
	{"{content}/jetpack-temp", "backup folder (Jetpack Backup)"},
	{"{content}/uploads/jetpack-temp", "backup folder (Jetpack Backup)"},
	{"boldgrid_backup*", "backup folder (Total Upkeep)"},
	{"{content}/boldgrid_backup*", "backup folder (Total Upkeep)"},
	{"{content}/xcloner-*", "backup folder (XCloner)"},
	{"{content}/uploads/wp-staging", "backup folder (WP Staging)"},
	{"{content}/ebwp-backups", "backup folder (Everest Backup)"},
	{"{content}/backup-migration-*", "backup folder (Backup Migration)"},
	{"{content}/uploads/backup-guard", "backup folder (Backup Guard)"},
	{"{content}/managewp/backups", "backup folder (ManageWP)"},
	{"{content}/uploads/db-backup", "backup folder (WP Database Backup)"},
}

// cacheDirTagSignature opens every valid CACHEDIR.TAG
// (https://bford.info/cachedir/).
const cacheDirTagSignature = "Signature: 8a477f597d28d172789f06886806bc55"

// RulesOptions configures NewRules.
type RulesOptions struct {
	// ContentDir is the content folder relative to the root (Site.ContentDir);
	// "" means "wp-content".
	ContentDir string
	// ReadHead, when set, returns the first n bytes of a file so that a
	// CACHEDIR.TAG's signature is checked (HeadReader builds one over an
	// FS). When nil, any regular CACHEDIR.TAG of at least the signature's
	// length marks a cache folder.
	ReadHead func(name string, n int) ([]byte, error)
}

// Rules decides which files of a site a backup takes, and explains every
// exclusion by naming its rule. It satisfies the archiver's selection
// interface (Entry and Dir). Its methods are safe for concurrent use.
type Rules struct {
	content  string
	readHead func(string, int) ([]byte, error)
	exact    map[string]string // path → rule
	prefix   map[string][]folderRule
}

var coreRoot = func() map[string]bool {
	m := map[string]bool{}
	for _, n := range CoreRootFiles {
		m[n] = true
	}
	for _, n := range CoreRootDirs {
		m[n] = true
	}
	return m
}()

// NewRules returns the selection rules for a site.
func NewRules(opts RulesOptions) *Rules {
	content := strings.Trim(path.Clean("/"+opts.ContentDir), "/")
	if content == "" {
		content = "wp-content"
	}
	r := &Rules{content: content, readHead: opts.ReadHead, exact: map[string]string{}, prefix: map[string][]folderRule{}}
	for _, fr := range folderRules {
		p := strings.ReplaceAll(fr.Path, "{content}", content)
		if strings.HasSuffix(p, "*") {
			dir := path.Dir(p)
			if dir == "." {
				dir = ""
			}
			r.prefix[dir] = append(r.prefix[dir], folderRule{Path: strings.TrimSuffix(path.Base(p), "*"), Rule: fr.Rule})
			continue
		}
		if _, dup := r.exact[p]; !dup {
			r.exact[p] = fr.Rule
		}
	}
	return r
}

// ContentDir returns the content folder the rules use.
func (r *Rules) ContentDir() string { return r.content }

func split(p string) (dir, base string) {
	i := strings.LastIndexByte(p, '/')
	if i < 0 {
		return "", p
	}
	return p[:i], p[i+1:]
}

// outside reports a path that is absolute or climbs out with "..".
func outside(p string) bool {
	if strings.HasPrefix(p, "/") {
		return true
	}
	for _, part := range strings.Split(p, "/") {
		if part == ".." {
			return true
		}
	}
	return false
}

// Entry reports whether the entry at p (slash-separated, relative to the
// site root, "" = root) is taken; if not, reason names the rule. Symbolic
// links are taken as links. Folder rules that depend on a folder's
// contents are applied by Dir.
func (r *Rules) Entry(p string, fi fsys.FileInfo) (take bool, reason string) {
	if outside(p) {
		return false, RuleOutside
	}
	if p == "" {
		return true, ""
	}
	mode := fi.Mode.Type()
	if mode&(fs.ModeSocket|fs.ModeNamedPipe|fs.ModeDevice|fs.ModeCharDevice|fs.ModeIrregular) != 0 {
		return false, RuleNotRegular
	}
	dir, base := split(p)
	if dir == "" && coreRoot[base] {
		return false, RuleCore
	}
	if !fi.Mode.IsDir() {
		return true, ""
	}
	if base == "donotbackup" {
		return false, RuleNamedDoNot
	}
	if rule, ok := r.exact[p]; ok {
		return false, rule
	}
	for _, fr := range r.prefix[dir] {
		if strings.HasPrefix(base, fr.Path) {
			return false, fr.Rule
		}
	}
	return true, ""
}

// Dir is called with a directory's full listing before descending (also
// for the root ""); false excludes the whole directory, and reason names
// the rule: another WordPress install (a wp-config.php, or wp-load.php
// beside a wp-includes folder), a .donotbackup file, a CACHEDIR.TAG.
func (r *Rules) Dir(p string, entries []fsys.FileInfo) (take bool, reason string) {
	if outside(p) {
		return false, RuleOutside
	}
	var hasConfig, hasLoad, hasIncludes, hasTag bool
	for _, e := range entries {
		switch e.Name {
		case ".donotbackup":
			return false, RuleDoNotBackup
		case "wp-config.php":
			hasConfig = true
		case "wp-load.php":
			hasLoad = true
		case "wp-includes":
			hasIncludes = e.Mode.IsDir()
		case "CACHEDIR.TAG":
			hasTag = e.Mode.IsRegular() && e.Size >= int64(len(cacheDirTagSignature))
		}
	}
	if p != "" && (hasConfig || hasLoad && hasIncludes) {
		return false, RuleOtherInstall
	}
	if hasTag && r.isCacheDirTag(path.Join(p, "CACHEDIR.TAG")) {
		return false, RuleCacheDirTag
	}
	return true, ""
}

func (r *Rules) isCacheDirTag(name string) bool {
	if r.readHead == nil {
		return true
	}
	head, err := r.readHead(name, len(cacheDirTagSignature))
	// An unreadable tag does not exclude: taking too much is the safe side.
	return err == nil && bytes.Equal(head, []byte(cacheDirTagSignature))
}

// Item names the restorable item p belongs to: themes, plugins (including
// mu-plugins), uploads, contents (the rest of the content dir, the content
// dir itself included) or roots (everything else). The root itself ("")
// belongs to no item and yields "".
func (r *Rules) Item(p string) string {
	p = strings.Trim(p, "/")
	if p == "" || p == "." {
		return ""
	}
	if p != r.content && !strings.HasPrefix(p, r.content+"/") {
		return ItemRoots
	}
	rest := strings.TrimPrefix(strings.TrimPrefix(p, r.content), "/")
	first, _, _ := strings.Cut(rest, "/")
	switch first {
	case "themes":
		return ItemThemes
	case "plugins", "mu-plugins":
		return ItemPlugins
	case "uploads":
		return ItemUploads
	}
	return ItemContents
}
