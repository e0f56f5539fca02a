package point

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sitevault/sitevault/internal/backend"
	"github.com/sitevault/sitevault/internal/repository"
)

// Triggers: what started a backup (Snapshot.Trigger). The values are
// stored in repositories; they never change.
const (
	TriggerManual     = "manual"
	TriggerDaily      = "daily"
	TriggerRealtime   = "realtime"
	TriggerPreRestore = "pre-restore"
	TriggerArchive    = "archive"
)

// Names of the parts in a site restore point's root tree.
const (
	FilesNode    = "files"
	DatabaseNode = "database"
)

// Meta keys of a restore point (all values are strings). They are stored
// in repositories: a key is never renamed, so that old repositories still
// read. Two pairs name the same thing, written by different code paths.
const (
	MetaWPVersion        = "wp_version"        // the WordPress version a site backup found
	MetaWordPressVersion = "wordpress_version" // the same, as site.BackupFiles names it
	MetaSitePath         = "site_path"         // the site's location: a path or user@host:path (site backup)
	MetaLocation         = "location"          // the same, as site.BackupFiles names it
	MetaTablePrefix      = "table_prefix"
	MetaMultisite        = "multisite" // "true" or "false"
	MetaContentDir       = "content_dir"
	MetaDBName           = "db_name"
	MetaTables           = "tables"         // number of tables backed up
	MetaTablesChanged    = "tables_changed" // tables with a segment written by this backup
	MetaFilesChanged     = "files_changed"  // new + changed files
	MetaDatabase         = "database"       // "missing" when the point holds no database
	// Pre-restore points.
	MetaRestoreOf  = "restore_of"      // the id of the point the restore wrote
	MetaItems      = "items"           // comma-separated
	MetaPaths      = "paths"           // JSON array
	MetaTableNames = "tables_restored" // JSON array of single tables the restore named
	// Imported points.
	MetaArchivePoint = "archive_point" // the downloaded point's id
	MetaArchiveSite  = "archive_site"  // the site it was of
	MetaArchiveTime  = "archive_time"  // when it was taken (RFC 3339)
)

// Kind is what a restore point is for (see the package documentation).
type Kind int

const (
	KindBackup     Kind = iota // manual, daily, realtime (and any other trigger)
	KindPreRestore             // the state a restore replaced
	KindImport                 // a downloaded archive imported to be restored
)

func (k Kind) String() string {
	switch k {
	case KindPreRestore:
		return "pre-restore"
	case KindImport:
		return "import"
	}
	return "backup"
}

// KindOf returns the kind of sn, from its trigger.
func KindOf(sn *repository.Snapshot) Kind {
	switch sn.Trigger {
	case TriggerPreRestore:
		return KindPreRestore
	case TriggerArchive:
		return KindImport
	}
	return KindBackup
}

// IsBackup reports whether sn is a backup point: one "latest" and a day
// may name and a retention policy counts.
func IsBackup(sn *repository.Snapshot) bool { return KindOf(sn) == KindBackup }

// Label describes sn's kind for people: its trigger for a backup point,
// "pre-restore (undo of restore to 1a2b3c4d)" for a pre-restore point and
// "imported archive (of site S, point 1a2b3c4d)" for an imported one.
func Label(sn *repository.Snapshot) string {
	switch KindOf(sn) {
	case KindPreRestore:
		if of := sn.Meta[MetaRestoreOf]; of != "" {
			return fmt.Sprintf("pre-restore (undo of restore to %.8s)", of)
		}
		return "pre-restore (undo of a restore)"
	case KindImport:
		var of []string
		if s := sn.Meta[MetaArchiveSite]; s != "" {
			of = append(of, "site "+s)
		}
		if p := sn.Meta[MetaArchivePoint]; p != "" {
			of = append(of, fmt.Sprintf("point %.8s", p))
		}
		if len(of) == 0 {
			return "imported archive"
		}
		return "imported archive (of " + strings.Join(of, ", ") + ")"
	}
	if sn.Trigger == "" {
		return TriggerManual
	}
	return sn.Trigger
}

// Errors Find returns; the wrapping error says which point and what to do.
var (
	// ErrNoPoint: no restore point matches the reference.
	ErrNoPoint = errors.New("no such restore point")
	// ErrBadRef: the reference is neither an id, "latest" nor a day.
	ErrBadRef = errors.New("not a restore point reference")
	// ErrAmbiguous: an id prefix matches several points.
	ErrAmbiguous = errors.New("ambiguous restore point id")
	// ErrOtherSite: the id names a point of another site.
	ErrOtherSite = errors.New("restore point of another site")
)

// Repo is what Find and List read from a repository.
type Repo interface {
	// Snapshots lists every snapshot, oldest first.
	Snapshots(ctx context.Context) ([]*repository.Snapshot, error)
	// FindSnapshot resolves a unique id prefix; no match wraps
	// backend.ErrNotExist.
	FindSnapshot(ctx context.Context, prefix, site string) (*repository.Snapshot, error)
}

var _ Repo = (*repository.Repository)(nil)

// Latest is the reference to a site's newest backup point.
const Latest = "latest"

// Find resolves ref, a reference to a restore point of site: an id or its
// first characters (any kind of point), "latest" (the newest backup
// point) or a day YYYY-MM-DD in loc (nil: time.Local; that day's newest
// backup point). Pre-restore and imported points are never named by
// "latest" or a day. An empty site accepts a point of any site (and
// "latest" is then the newest backup point of all).
func Find(ctx context.Context, repo Repo, site, ref string, loc *time.Location) (*repository.Snapshot, error) {
	if loc == nil {
		loc = time.Local
	}
	who := "the repository"
	if site != "" {
		who = "site " + site
	}
	switch {
	case ref == Latest:
		points, err := List(ctx, repo, site)
		if err != nil {
			return nil, err
		}
		for _, sn := range points {
			if IsBackup(sn) {
				return sn, nil
			}
		}
		return nil, noBackup(who, "", points)
	case isDay(ref):
		day, err := ParseDay(ref, loc)
		if err != nil {
			return nil, err
		}
		points, err := List(ctx, repo, site)
		if err != nil {
			return nil, err
		}
		points = OnDay(points, day)
		for _, sn := range points {
			if IsBackup(sn) {
				return sn, nil
			}
		}
		zone := "local time"
		if loc != time.Local {
			zone = loc.String() + " time"
		}
		return nil, noBackup(who, fmt.Sprintf(" on %s (%s)", ref, zone), points)
	case !isID(ref):
		return nil, fmt.Errorf("%w: %q: give a restore point id (at least 4 of its characters), %s, or a day YYYY-MM-DD", ErrBadRef, ref, Latest)
	}
	sn, err := findID(ctx, repo, site, strings.ToLower(ref))
	if err != nil {
		return nil, err
	}
	if site != "" && sn.Site != site {
		return nil, fmt.Errorf("%w: restore point %s belongs to site %q, not %s", ErrOtherSite, sn.ID.Short(), sn.Site, site)
	}
	return sn, nil
}

// noBackup is the error of "latest" or a day that names no backup point;
// points are the site's points (of that day).
func noBackup(who, when string, points []*repository.Snapshot) error {
	if len(points) == 0 {
		return fmt.Errorf("%w: %s has no restore point%s", ErrNoPoint, who, when)
	}
	return fmt.Errorf("%w: %s has no backup point%s, only %d pre-restore or imported points, which %q and a day never name: give one's id, or undo the last restore",
		ErrNoPoint, who, when, len(points), Latest)
}

// findID resolves an id prefix. When the repository's own lookup fails for
// another reason than no match, the site's points are searched, so that a
// prefix ambiguous in the repository but unique in the site still works.
func findID(ctx context.Context, repo Repo, site, prefix string) (*repository.Snapshot, error) {
	sn, err := repo.FindSnapshot(ctx, prefix, "")
	if err == nil {
		return sn, nil
	}
	if errors.Is(err, backend.ErrNotExist) {
		return nil, fmt.Errorf("%w: no restore point has an id beginning with %s", ErrNoPoint, prefix)
	}
	if errors.Is(err, repository.ErrDamaged) || errors.Is(err, context.Canceled) {
		return nil, fmt.Errorf("find restore point %s: %w", prefix, err)
	}
	all, lerr := repo.Snapshots(ctx)
	if lerr != nil {
		return nil, fmt.Errorf("find restore point %s: %w", prefix, err)
	}
	var match []*repository.Snapshot
	for _, s := range all {
		if strings.HasPrefix(s.ID.String(), prefix) && (site == "" || s.Site == site) {
			match = append(match, s)
		}
	}
	switch len(match) {
	case 0:
		return nil, fmt.Errorf("find restore point %s: %w", prefix, err)
	case 1:
		return match[0], nil
	}
	return nil, fmt.Errorf("%w: %d restore points have an id beginning with %s: give more of its characters", ErrAmbiguous, len(match), prefix)
}

// List returns the restore points of site (every site if empty), newest
// first.
func List(ctx context.Context, repo Repo, site string) ([]*repository.Snapshot, error) {
	all, err := repo.Snapshots(ctx)
	if err != nil {
		if site == "" {
			return nil, fmt.Errorf("list the restore points: %w", err)
		}
		return nil, fmt.Errorf("list the restore points of %s: %w", site, err)
	}
	var out []*repository.Snapshot
	for _, sn := range all {
		if site == "" || sn.Site == site {
			out = append(out, sn)
		}
	}
	slices.Reverse(out) // Snapshots is oldest first
	return out, nil
}

// ParseDay parses a day YYYY-MM-DD as its first moment in loc.
func ParseDay(s string, loc *time.Location) (time.Time, error) {
	if loc == nil {
		loc = time.Local
	}
	d, err := time.ParseInLocation(time.DateOnly, s, loc)
	if err != nil || !isDay(s) {
		return time.Time{}, fmt.Errorf("%w: %q is not a day: give it as YYYY-MM-DD", ErrBadRef, s)
	}
	return d, nil
}

// OnDay returns the points (in their order) taken on the day that starts
// at day (in day's location; a day is not always 24 hours).
func OnDay(points []*repository.Snapshot, day time.Time) []*repository.Snapshot {
	next := day.AddDate(0, 0, 1)
	var out []*repository.Snapshot
	for _, sn := range points {
		if !sn.Time.Before(day) && sn.Time.Before(next) {
			out = append(out, sn)
		}
	}
	return out
}

// Day is the day (YYYY-MM-DD) sn was taken on, in loc (nil: time.Local).
func Day(sn *repository.Snapshot, loc *time.Location) string {
	if loc == nil {
		loc = time.Local
	}
	return sn.Time.In(loc).Format(time.DateOnly)
}

func isDay(s string) bool {
	if len(s) != 10 || s[4] != '-' || s[7] != '-' {
		return false
	}
	for i, c := range s {
		if i != 4 && i != 7 && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

func isID(s string) bool {
	if len(s) < 4 || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}
