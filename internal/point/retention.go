package point

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/sitevault/sitevault/internal/repository"
)

// Grace is how long a pre-restore point (and an imported point) is kept
// after it was taken, once it is no longer part of the latest restore.
const Grace = 7 * 24 * time.Hour

// Reasons Plan gives, besides the policy's rules ("last", "daily",
// "weekly", "monthly", see repository.ApplyPolicy).
const (
	WhyUndo          = "undo of the latest restore"
	WhyRestored      = "written by the latest restore (undo needs it)"
	WhyGrace         = "pre-restore, kept 7 days"
	WhyImportGrace   = "imported, kept 7 days"
	WhyNotKept       = "no rule keeps it"
	WhyGraceOver     = "pre-restore, older than 7 days"
	WhyImportOver    = "imported, older than 7 days"
	whyNoPolicyKeeps = "no policy"
)

// Plan splits snaps (of any sites) into the points a retention policy
// keeps and those it removes, as the package documentation says: the
// policy counts backup points only; a pre-restore point is kept while it
// is the undo of its site's latest restore or younger than Grace at now;
// an imported point (or the pre-restore point an undo restored) while the
// latest restore wrote it or younger than Grace. why holds the reasons for every point, kept or removed. keep and
// remove are oldest first. An empty policy keeps everything.
func Plan(snaps []*repository.Snapshot, p repository.Policy, now time.Time) (keep, remove []*repository.Snapshot, why map[repository.ID][]string) {
	why = make(map[repository.ID][]string)
	if p.Empty() {
		keep = oldestFirst(snaps)
		for _, sn := range keep {
			why[sn.ID] = []string{whyNoPolicyKeeps}
		}
		return keep, nil, why
	}
	var backups []*repository.Snapshot
	latestPre := make(map[string]*repository.Snapshot) // site → its newest pre-restore point
	for _, sn := range snaps {
		switch KindOf(sn) {
		case KindBackup:
			backups = append(backups, sn)
		case KindPreRestore:
			if l := latestPre[sn.Site]; l == nil || newer(sn, l) {
				latestPre[sn.Site] = sn
			}
		}
	}
	kept := make(map[repository.ID]bool)
	bk, _, reasons := repository.ApplyPolicy(backups, p)
	for _, sn := range bk {
		kept[sn.ID] = true
		why[sn.ID] = reasons[sn.ID]
	}
	restored := make(map[string]bool) // ids the latest restores wrote
	for _, pre := range latestPre {
		if of := pre.Meta[MetaRestoreOf]; of != "" {
			restored[of] = true
		}
	}
	for _, sn := range snaps {
		switch k := KindOf(sn); {
		case k == KindBackup:
			if !kept[sn.ID] {
				why[sn.ID] = []string{WhyNotKept}
			}
		case k == KindPreRestore && latestPre[sn.Site] == sn:
			kept[sn.ID] = true
			why[sn.ID] = append(why[sn.ID], WhyUndo)
		case restored[sn.ID.String()]: // an import, or the pre-restore point an undo restored
			kept[sn.ID] = true
			why[sn.ID] = append(why[sn.ID], WhyRestored)
		case now.Sub(sn.Time) < Grace:
			kept[sn.ID] = true
			why[sn.ID] = append(why[sn.ID], graceWhy(k, true, sn.Time))
		default:
			why[sn.ID] = append(why[sn.ID], graceWhy(k, false, sn.Time))
		}
	}
	for _, sn := range oldestFirst(snaps) {
		if kept[sn.ID] {
			keep = append(keep, sn)
		} else {
			remove = append(remove, sn)
		}
	}
	return keep, remove, why
}

func graceWhy(k Kind, within bool, t time.Time) string {
	until := t.Add(Grace).Format(time.DateOnly)
	switch {
	case k == KindImport && within:
		return fmt.Sprintf("%s (until %s)", WhyImportGrace, until)
	case k == KindImport:
		return WhyImportOver
	case within:
		return fmt.Sprintf("%s (until %s)", WhyGrace, until)
	}
	return WhyGraceOver
}

// oldestFirst returns snaps sorted oldest first (ties by id).
func oldestFirst(snaps []*repository.Snapshot) []*repository.Snapshot {
	out := slices.Clone(snaps)
	slices.SortStableFunc(out, func(a, b *repository.Snapshot) int {
		if newer(b, a) {
			return -1
		}
		if newer(a, b) {
			return 1
		}
		return 0
	})
	return out
}

// newer reports whether a is newer than b (ties by id, as the repository
// sorts them).
func newer(a, b *repository.Snapshot) bool {
	if !a.Time.Equal(b.Time) {
		return a.Time.After(b.Time)
	}
	return a.ID.String() > b.ID.String()
}

// Remover is what Forget needs of a repository.
type Remover interface {
	Repo
	RemoveSnapshot(ctx context.Context, id repository.ID) error
}

// Forget applies policy p to site's points (Plan) and removes the points
// it does not keep, returning both lists. The CLI's forget and the
// service's retention after each backup call it; an empty policy removes
// nothing.
func Forget(ctx context.Context, repo Remover, site string, p repository.Policy, now time.Time) (keep, removed []*repository.Snapshot, err error) {
	if p.Empty() {
		return nil, nil, nil
	}
	points, err := List(ctx, repo, site)
	if err != nil {
		return nil, nil, err
	}
	keep, remove, _ := Plan(points, p, now)
	for i, sn := range remove {
		if err := repo.RemoveSnapshot(ctx, sn.ID); err != nil {
			return keep, removed, fmt.Errorf("forget %s of %s (%d of %d removed): %w", sn.ID.Short(), site, i, len(remove), err)
		}
		removed = append(removed, sn)
	}
	return keep, removed, nil
}
