package point_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sitevault/sitevault/internal/archive"
	"github.com/sitevault/sitevault/internal/backup"
	"github.com/sitevault/sitevault/internal/point"
	"github.com/sitevault/sitevault/internal/repository"
	"github.com/sitevault/sitevault/internal/site"
)

// save writes a point of site with trigger and meta at t (an empty tree:
// Find and Plan read only the snapshot).
func save(t *testing.T, r *repository.Repository, siteName, trigger string, at time.Time, meta map[string]string) *repository.Snapshot {
	t.Helper()
	ctx := context.Background()
	tree, err := r.SaveTree(ctx, &repository.Tree{})
	if err != nil {
		t.Fatal(err)
	}
	sn := &repository.Snapshot{Time: at, Site: siteName, Trigger: trigger, Tree: tree, Meta: meta}
	if _, err := r.SaveSnapshot(ctx, sn); err != nil {
		t.Fatal(err)
	}
	return sn
}

func TestFind(t *testing.T) {
	ctx := context.Background()
	r := repository.TestRepository(t)
	loc := time.FixedZone("test", 2*3600)
	at := func(day, hour int) time.Time { return time.Date(2026, 3, day, hour, 0, 0, 0, loc) }

	// Day 1: a daily backup, then a restore of it (its pre-restore point).
	d1 := save(t, r, "blog", point.TriggerDaily, at(1, 3), nil)
	pre1 := save(t, r, "blog", point.TriggerPreRestore, at(1, 10), map[string]string{point.MetaRestoreOf: d1.ID.String()})
	// Day 2: a manual and a real-time backup, a restore from an imported
	// archive, and the restore's pre-restore point; another site later.
	m2 := save(t, r, "blog", point.TriggerManual, at(2, 8), nil)
	rt2 := save(t, r, "blog", point.TriggerRealtime, at(2, 9), nil)
	imp := save(t, r, "blog", point.TriggerArchive, at(2, 11), map[string]string{point.MetaArchiveSite: "old"})
	pre2 := save(t, r, "blog", point.TriggerPreRestore, at(2, 11).Add(time.Second), map[string]string{point.MetaRestoreOf: imp.ID.String()})
	other := save(t, r, "shop", point.TriggerManual, at(3, 1), nil)
	// Day 4: only a pre-restore point.
	pre4 := save(t, r, "blog", point.TriggerPreRestore, at(4, 1), map[string]string{point.MetaRestoreOf: rt2.ID.String()})
	// A site with no backup point at all.
	onlyPre := save(t, r, "new", point.TriggerPreRestore, at(1, 1), nil)
	_ = m2

	for _, tc := range []struct {
		site, ref string
		want      *repository.Snapshot
		err       error
	}{
		{"blog", "latest", rt2, nil},
		{"blog", "2026-03-02", rt2, nil},
		{"blog", "2026-03-01", d1, nil},
		{"blog", "2026-03-04", nil, point.ErrNoPoint}, // only a pre-restore point that day
		{"blog", "2026-03-05", nil, point.ErrNoPoint},
		{"blog", "2026-02-30", nil, point.ErrBadRef},
		{"blog", pre1.ID.String()[:8], pre1, nil}, // by id: any kind
		{"blog", strings.ToUpper(pre2.ID.String()[:10]), pre2, nil},
		{"blog", imp.ID.String(), imp, nil},
		{"blog", pre4.ID.String()[:6], pre4, nil},
		{"blog", other.ID.String()[:8], nil, point.ErrOtherSite},
		{"blog", "00000000", nil, point.ErrNoPoint},
		{"blog", "abc", nil, point.ErrBadRef},
		{"blog", "latest-ish", nil, point.ErrBadRef},
		{"blog", "", nil, point.ErrBadRef},
		{"new", "latest", nil, point.ErrNoPoint},
		{"new", onlyPre.ID.String()[:8], onlyPre, nil},
		{"nosuch", "latest", nil, point.ErrNoPoint},
		{"", "latest", other, nil},
		{"", pre1.ID.String()[:8], pre1, nil},
	} {
		got, err := point.Find(ctx, r, tc.site, tc.ref, loc)
		if !errors.Is(err, tc.err) || tc.want != nil && (got == nil || got.ID != tc.want.ID) {
			t.Errorf("Find(%q, %q) = %v, %v; want %v, %v", tc.site, tc.ref, id(got), err, id(tc.want), tc.err)
		}
	}

	// The errors say what to do.
	_, err := point.Find(ctx, r, "new", "latest", loc)
	if err == nil || !strings.Contains(err.Error(), "only 1 pre-restore") || !strings.Contains(err.Error(), "undo the last restore") {
		t.Errorf("latest of a site with only a pre-restore point: %v", err)
	}
}

func id(sn *repository.Snapshot) string {
	if sn == nil {
		return "<nil>"
	}
	return sn.ID.Short() + " (" + sn.Trigger + ")"
}

func TestKindAndLabel(t *testing.T) {
	for _, tc := range []struct {
		sn    repository.Snapshot
		kind  point.Kind
		label string
	}{
		{repository.Snapshot{Trigger: "manual"}, point.KindBackup, "manual"},
		{repository.Snapshot{Trigger: "daily"}, point.KindBackup, "daily"},
		{repository.Snapshot{Trigger: "realtime"}, point.KindBackup, "realtime"},
		{repository.Snapshot{Trigger: ""}, point.KindBackup, "manual"},
		{repository.Snapshot{Trigger: "bench"}, point.KindBackup, "bench"},
		{repository.Snapshot{Trigger: "pre-restore", Meta: map[string]string{"restore_of": "1a2b3c4d5e6f"}}, point.KindPreRestore, "pre-restore (undo of restore to 1a2b3c4d)"},
		{repository.Snapshot{Trigger: "archive", Meta: map[string]string{"archive_site": "old", "archive_point": "abcdef0123"}}, point.KindImport, "imported archive (of site old, point abcdef01)"},
	} {
		if k := point.KindOf(&tc.sn); k != tc.kind {
			t.Errorf("KindOf(trigger %q) = %v, want %v", tc.sn.Trigger, k, tc.kind)
		}
		if l := point.Label(&tc.sn); l != tc.label {
			t.Errorf("Label(trigger %q) = %q, want %q", tc.sn.Trigger, l, tc.label)
		}
	}
}

// TestNamesAgree keeps the names gathered here equal to those the writers
// of restore points use, until those use this package's.
func TestNamesAgree(t *testing.T) {
	for _, p := range [][2]string{
		{point.TriggerManual, backup.TriggerManual},
		{point.TriggerDaily, backup.TriggerDaily},
		{point.TriggerRealtime, backup.TriggerRealtime},
		{point.TriggerPreRestore, backup.TriggerPreRestore},
		{point.TriggerArchive, backup.TriggerArchive},
		{point.TriggerArchive, archive.TriggerArchive},
		{point.FilesNode, backup.FilesNode},
		{point.DatabaseNode, backup.DatabaseNode},
		{point.MetaWPVersion, backup.MetaWPVersion},
		{point.MetaWordPressVersion, site.MetaVersion},
		{point.MetaSitePath, backup.MetaSitePath},
		{point.MetaLocation, site.MetaLocation},
		{point.MetaTablePrefix, backup.MetaTablePrefix},
		{point.MetaMultisite, backup.MetaMultisite},
		{point.MetaContentDir, backup.MetaContentDir},
		{point.MetaDBName, backup.MetaDBName},
		{point.MetaTables, backup.MetaTables},
		{point.MetaTablesChanged, backup.MetaTablesChanged},
		{point.MetaFilesChanged, backup.MetaFilesChanged},
		{point.MetaDatabase, backup.MetaDatabase},
		{point.MetaRestoreOf, backup.MetaRestoreOf},
		{point.MetaItems, backup.MetaItems},
		{point.MetaPaths, backup.MetaPaths},
		{point.MetaTableNames, backup.MetaTableNames},
		{point.MetaArchivePoint, archive.MetaArchivePoint},
		{point.MetaArchiveSite, archive.MetaArchiveSite},
		{point.MetaArchiveTime, archive.MetaArchiveTime},
	} {
		if p[0] != p[1] {
			t.Errorf("point's name %q differs from the writer's %q", p[0], p[1])
		}
	}
}

func TestPlan(t *testing.T) {
	now := time.Date(2026, 3, 20, 12, 0, 0, 0, time.UTC)
	n := 0
	mk := func(siteName, trigger string, at time.Time, meta map[string]string) *repository.Snapshot {
		n++
		return &repository.Snapshot{ID: repository.ID{byte(n)}, Site: siteName, Trigger: trigger, Time: at, Meta: meta}
	}
	day := func(d, h int) time.Time { return time.Date(2026, 3, d, h, 0, 0, 0, time.UTC) }

	// The case: a full backup, then (the same day) a files-only
	// pre-restore point: --keep-daily 1 must keep the backup.
	full := mk("blog", "manual", day(20, 8), nil)
	filesOnly := mk("blog", "pre-restore", day(20, 9), map[string]string{"restore_of": full.ID.String(), "database": "missing"})
	old := mk("blog", "daily", day(19, 3), nil)

	// Older restores: pre-restore points 3 and 10 days old, an import 10
	// days old, and an import the latest restore of "shop" wrote.
	pre3 := mk("blog", "pre-restore", day(17, 9), nil)
	pre10 := mk("blog", "pre-restore", day(10, 9), nil)
	imp10 := mk("blog", "archive", day(10, 8), nil)
	shopBackup := mk("shop", "daily", day(1, 3), nil)
	shopImp := mk("shop", "archive", day(2, 8), nil)
	shopPre := mk("shop", "pre-restore", day(2, 8).Add(time.Minute), map[string]string{"restore_of": shopImp.ID.String()})
	shopPreOld := mk("shop", "pre-restore", day(1, 9), nil)

	// An undo: "news" restored a backup (pre-restore point undone, 30
	// days old), then undid it (its own pre-restore point, restore_of the
	// undone one). Undo of the undo needs both.
	newsBackup := mk("news", "daily", day(1, 1), nil)
	undone := mk("news", "pre-restore", day(1, 2), map[string]string{"restore_of": newsBackup.ID.String()})
	undoPre := mk("news", "pre-restore", day(1, 3), map[string]string{"restore_of": undone.ID.String()})

	all := []*repository.Snapshot{full, filesOnly, old, pre3, pre10, imp10, shopBackup, shopImp, shopPre, shopPreOld, newsBackup, undone, undoPre}
	keep, remove, why := point.Plan(all, repository.Policy{KeepDaily: 1}, now)

	want := []*repository.Snapshot{shopBackup, shopImp, shopPre, pre3, full, filesOnly, newsBackup, undone, undoPre}
	if !sameIDs(keep, want) {
		t.Errorf("keep %v, want %v", ids(keep), ids(want))
	}
	if len(keep)+len(remove) != len(all) {
		t.Errorf("keep %d + remove %d != %d", len(keep), len(remove), len(all))
	}
	for sn, w := range map[*repository.Snapshot]string{
		full:       "daily",
		filesOnly:  point.WhyUndo,
		pre3:       point.WhyGrace + " (until 2026-03-24)",
		shopPre:    point.WhyUndo,
		shopImp:    point.WhyRestored,
		shopBackup: "daily",
		old:        point.WhyNotKept,
		pre10:      point.WhyGraceOver,
		imp10:      point.WhyImportOver,
		shopPreOld: point.WhyGraceOver,
		undone:     point.WhyRestored,
		undoPre:    point.WhyUndo,
	} {
		if !slices.Contains(why[sn.ID], w) {
			t.Errorf("why %s (%s %s) = %q, want %q among them", sn.ID.Short(), sn.Trigger, sn.Time, why[sn.ID], w)
		}
	}

	// An empty policy keeps everything.
	keep, remove, _ = point.Plan(all, repository.Policy{}, now)
	if len(keep) != len(all) || len(remove) != 0 {
		t.Errorf("empty policy: keep %d, remove %d", len(keep), len(remove))
	}
	// Oldest first.
	for i := 1; i < len(keep); i++ {
		if keep[i].Time.Before(keep[i-1].Time) {
			t.Errorf("keep is not oldest first: %v", ids(keep))
		}
	}
}

func sameIDs(a, b []*repository.Snapshot) bool {
	x, y := ids(a), ids(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}

func ids(l []*repository.Snapshot) []string {
	var out []string
	for _, sn := range l {
		out = append(out, sn.ID.Short()+"/"+sn.Trigger)
	}
	return out
}
