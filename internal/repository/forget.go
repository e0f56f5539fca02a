package repository

import (
	"fmt"
	"time"
)

// Policy is a retention policy, applied to each site's snapshots
// separately. Each rule keeps the newest snapshot in each of its last N
// buckets (KeepLast: each snapshot is its own bucket; KeepDaily: calendar
// days; KeepWeekly: ISO weeks; KeepMonthly: calendar months), counted from
// the newest snapshot backwards, as restic does. Buckets are computed in
// the time zone stored with each snapshot's time. A snapshot is kept if any
// rule keeps it. A policy with every count zero keeps everything.
type Policy struct {
	KeepLast    int
	KeepDaily   int
	KeepWeekly  int
	KeepMonthly int
}

// Empty reports whether p keeps everything.
func (p Policy) Empty() bool { return p == Policy{} }

type rule struct {
	name   string
	count  int
	bucket func(time.Time) string
}

// ApplyPolicy splits snaps into those to keep and those to remove. reasons
// holds, for every kept snapshot, the rules that keep it ("last",
// "daily", "weekly", "monthly"). keep and remove are oldest first.
func ApplyPolicy(snaps []*Snapshot, p Policy) (keep, remove []*Snapshot, reasons map[ID][]string) {
	reasons = make(map[ID][]string)
	sorted := make([]*Snapshot, len(snaps))
	copy(sorted, snaps)
	sortSnapshots(sorted)
	if p.Empty() {
		for _, sn := range sorted {
			reasons[sn.ID] = append(reasons[sn.ID], "no policy")
		}
		return sorted, nil, reasons
	}
	bySite := make(map[string][]*Snapshot)
	var sites []string
	for _, sn := range sorted {
		if _, ok := bySite[sn.Site]; !ok {
			sites = append(sites, sn.Site)
		}
		bySite[sn.Site] = append(bySite[sn.Site], sn)
	}
	kept := make(map[*Snapshot]bool)
	for _, site := range sites {
		group := bySite[site]
		n := 0
		rules := []rule{
			{"last", p.KeepLast, func(time.Time) string { n++; return fmt.Sprint(n) }},
			{"daily", p.KeepDaily, func(t time.Time) string { return t.Format("2006-01-02") }},
			{"weekly", p.KeepWeekly, func(t time.Time) string { y, w := t.ISOWeek(); return fmt.Sprintf("%d-W%02d", y, w) }},
			{"monthly", p.KeepMonthly, func(t time.Time) string { return t.Format("2006-01") }},
		}
		for _, ru := range rules {
			left, last := ru.count, "\x00none"
			for i := len(group) - 1; i >= 0 && left > 0; i-- {
				sn := group[i]
				b := ru.bucket(sn.Time)
				if b == last {
					continue
				}
				last = b
				left--
				kept[sn] = true
				reasons[sn.ID] = append(reasons[sn.ID], ru.name)
			}
		}
	}
	for _, sn := range sorted {
		if kept[sn] {
			keep = append(keep, sn)
		} else {
			remove = append(remove, sn)
		}
	}
	return keep, remove, reasons
}
