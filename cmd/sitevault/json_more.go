package main

import (
	"cmp"
	"reflect"
	"time"

	"github.com/sitevault/sitevault/internal/archiver"
	"github.com/sitevault/sitevault/internal/backup"
	"github.com/sitevault/sitevault/internal/config"
	"github.com/sitevault/sitevault/internal/site"
	"github.com/sitevault/sitevault/internal/sitevault"
)

// The --json results of the commands below are documented in the README
// ("JSON output"); internal/e2e decodes each strictly. Times are RFC 3339
// with the offset, sizes in bytes, durations in seconds.

// keyAddJSON is `key add --json`.
type keyAddJSON struct {
	ID    string `json:"id"`
	Label string `json:"label"`
}

// keyRemoveJSON is `key remove --json`.
type keyRemoveJSON struct {
	Removed string `json:"removed"` // the id as given
}

// repairIndexJSON is `repair index --json`.
type repairIndexJSON struct {
	Packs         int      `json:"packs"`
	Blobs         int      `json:"blobs"`
	IndexFilesIn  int      `json:"index_files_replaced"`
	IndexFilesOut int      `json:"index_files_written"`
	DamagedPacks  []string `json:"damaged_packs"`
	Duration      float64  `json:"duration_seconds"`
}

// siteSSHJSON is the SSH part of siteJSON; secrets only say whether set.
type siteSSHJSON struct {
	User               string `json:"user"`
	Address            string `json:"address"`
	IdentityFile       string `json:"identity_file"`
	PassphraseSet      bool   `json:"passphrase_set"`
	PasswordSet        bool   `json:"password_set"`
	HostKeyFingerprint string `json:"host_key_fingerprint"`
}

// siteDBJSON holds a site's database overrides ("" = from wp-config.php).
type siteDBJSON struct {
	Host        string `json:"host"`
	Name        string `json:"name"`
	User        string `json:"user"`
	PasswordSet bool   `json:"password_set"`
	TablePrefix string `json:"table_prefix"`
}

// siteLoginJSON is the last database login that worked.
type siteLoginJSON struct {
	Host string `json:"host"`
	Name string `json:"name"`
	User string `json:"user"`
}

// siteJSON is `site show --json`, and the site of `site add|edit --json`:
// a site's settings, never its secrets.
type siteJSON struct {
	Name        string         `json:"name"`
	Connection  string         `json:"connection"` // local or ssh
	Path        string         `json:"path"`
	SSH         *siteSSHJSON   `json:"ssh"` // null for a local site
	DB          siteDBJSON     `json:"db"`
	LastDBLogin *siteLoginJSON `json:"last_db_login"` // null before the first backup
	Added       time.Time      `json:"added"`
	Changed     time.Time      `json:"changed"`
	// What backups and the service use: the site's own settings with the
	// config file's applied (config.File.ApplySite), and where each came
	// from: "config file", "site" (site add/edit, the dashboard) or
	// "default".
	Retention     sitevault.Retention `json:"retention"`
	RetentionFrom string              `json:"retention_from"`
	Schedule      siteScheduleJSON    `json:"schedule"`
	ScheduleFrom  string              `json:"schedule_from"`
	Excludes      []string            `json:"excludes"` // the config file's extra patterns
}

// siteScheduleJSON is a site's daily backup window, defaults filled in.
type siteScheduleJSON struct {
	Off      bool   `json:"off"`
	Start    string `json:"start"`  // "HH:MM"
	Window   string `json:"window"` // "2h"
	TimeZone string `json:"time_zone"`
}

// Where a site's setting comes from.
const (
	fromConfigFile = "config file"
	fromSite       = "site"
	fromDefault    = "default"
)

// newSiteJSON describes the catalog's site s with cfg's config file
// applied (cfg may be nil: no file).
func newSiteJSON(s sitevault.Site, cfg *config.Config) siteJSON {
	eff, excludes := s, []string{}
	if cfg != nil {
		eff = cfg.ApplySite(s)
		if e := cfg.Excludes(s.Name); e != nil {
			excludes = e
		}
	}
	out := siteJSON{
		Name: eff.Name, Connection: string(eff.Kind), Path: eff.Path,
		DB:    siteDBJSON{Host: eff.DB.Host, Name: eff.DB.Name, User: eff.DB.User, PasswordSet: eff.DB.Password.IsSet(), TablePrefix: eff.DB.TablePrefix},
		Added: s.Created, Changed: s.Updated,
		Retention: eff.RetentionOrDefault(), Excludes: excludes,
	}
	switch {
	case !reflect.DeepEqual(s.Retention, eff.Retention):
		out.RetentionFrom = fromConfigFile
	case s.Retention != nil:
		out.RetentionFrom = fromSite
	default:
		out.RetentionFrom = fromDefault
	}
	switch {
	case s.Schedule != eff.Schedule:
		out.ScheduleFrom = fromConfigFile
	case s.Schedule != (sitevault.Schedule{}):
		out.ScheduleFrom = fromSite
	default:
		out.ScheduleFrom = fromDefault
	}
	sc := eff.Schedule
	out.Schedule = siteScheduleJSON{Off: sc.Off, Start: cmp.Or(sc.Start, sitevault.DefaultStart),
		Window: shortDuration(cmp.Or(sc.Window, sitevault.DefaultWindow)), TimeZone: cmp.Or(sc.TimeZone, "UTC")}
	s = eff
	if s.Kind == sitevault.SSH {
		out.SSH = &siteSSHJSON{User: s.SSH.User, Address: s.SSHAddress(), IdentityFile: s.SSH.IdentityFile,
			PassphraseSet: s.SSH.Passphrase.IsSet(), PasswordSet: s.SSH.Password.IsSet(), HostKeyFingerprint: s.SSH.HostKeyFingerprint}
	}
	if s.LastDB != nil {
		out.LastDBLogin = &siteLoginJSON{Host: s.LastDB.Host, Name: s.LastDB.Name, User: s.LastDB.User}
	}
	return out
}

// siteCheckJSON is what `site add|edit --json` found on the site.
type siteCheckJSON struct {
	WordPressVersion   string `json:"wordpress_version"`
	Multisite          bool   `json:"multisite"`
	ConfigAbove        bool   `json:"config_above_root"`
	ContentDir         string `json:"content_dir"`
	ExternalContentDir string `json:"external_content_dir"` // not backed up; "" when inside the root
	Database           string `json:"database"`
	DatabaseAddress    string `json:"database_address"`
	DatabaseUser       string `json:"database_user"`
	TablePrefix        string `json:"table_prefix"`
}

// siteSavedJSON is `site add --json` and `site edit --json`.
type siteSavedJSON struct {
	Result string        `json:"result"` // added or changed
	Site   siteJSON      `json:"site"`
	Check  siteCheckJSON `json:"check"`
}

func newSiteSavedJSON(done string, s sitevault.Site, cfg *config.Config, c *site.CheckResult) siteSavedJSON {
	wp, db := c.Inspection.WordPress, c.Inspection.Database
	return siteSavedJSON{Result: done, Site: newSiteJSON(s, cfg), Check: siteCheckJSON{
		WordPressVersion: wp.Version, Multisite: wp.Multisite(), ConfigAbove: wp.ConfigAbove,
		ContentDir: wp.ContentDir, ExternalContentDir: wp.ExternalContentDir,
		Database: db.Name, DatabaseAddress: c.DBAddr.Network + ":" + c.DBAddr.Address, DatabaseUser: db.User, TablePrefix: db.TablePrefix,
	}}
}

// siteRemoveJSON is `site remove --json`.
type siteRemoveJSON struct {
	Removed string `json:"removed"` // the site's name
}

// siteFileJSON is one file `site files --json` takes.
type siteFileJSON struct {
	Path string `json:"path"`
	Size int64  `json:"size"`
	Item string `json:"item"`
}

// siteFilesJSON is `site files --json` (skipped_paths always filled,
// with or without --explain).
type siteFilesJSON struct {
	Site         string          `json:"site"`
	Files        []siteFileJSON  `json:"files"`
	Bytes        int64           `json:"bytes"`
	SkippedPaths []archiver.Skip `json:"skipped_paths"`
}

// siteTablesJSON is `site tables --json`.
type siteTablesJSON struct {
	Site          string                `json:"site"`
	Database      string                `json:"database"`
	TablePrefix   string                `json:"table_prefix"`
	Tables        []string              `json:"tables"`
	Views         []string              `json:"views"`
	SkippedTables []backup.SkippedTable `json:"skipped_tables"`
	Warnings      []string              `json:"warnings"`
}

// siteConnectJSON is `site connect --json`.
type siteConnectJSON struct {
	Site    string    `json:"site"`
	Code    string    `json:"code"`
	Expires time.Time `json:"expires"`
}

// dirBackupJSON is `dir backup --json`.
type dirBackupJSON struct {
	Point          string          `json:"point"`
	Site           string          `json:"site"`
	Time           time.Time       `json:"time"`
	Parent         string          `json:"parent,omitempty"`
	Partial        bool            `json:"partial"`
	FilesNew       int             `json:"files_new"`
	FilesChanged   int             `json:"files_changed"`
	FilesUnchanged int             `json:"files_unchanged"`
	Folders        int             `json:"folders"`
	BytesRead      int64           `json:"bytes_read"`
	BytesTotal     int64           `json:"bytes_total"`
	BytesAdded     int64           `json:"bytes_added"`
	Duration       float64         `json:"duration_seconds"`
	SkippedPaths   []archiver.Skip `json:"skipped_paths"`
	ChangedWhile   []string        `json:"changed_while_read"`
	Errors         []string        `json:"errors"`
}

// pathReasonJSON is a refused entry of a restore.
type pathReasonJSON struct {
	Path   string `json:"path"`
	Reason string `json:"reason"`
}

// dirRestoreJSON is `dir restore --json`.
type dirRestoreJSON struct {
	Point           string           `json:"point"`
	Site            string           `json:"site"`
	PointTime       time.Time        `json:"point_time"`
	Target          string           `json:"target"`
	FilesWritten    int              `json:"files_written"`
	FoldersCreated  int              `json:"folders_created"`
	SymlinksWritten int              `json:"symlinks_written"`
	BytesWritten    int64            `json:"bytes_written"`
	FilesUnchanged  int              `json:"files_unchanged"`
	Refused         []pathReasonJSON `json:"refused"`
	Failed          []string         `json:"failed"`
	Duration        float64          `json:"duration_seconds"`
}
