package repository

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

func TestApplyPolicy(t *testing.T) {
	day := func(d, h int) time.Time { return time.Date(2025, 1, d, h, 0, 0, 0, time.UTC) }
	mk := func(site string, times ...time.Time) []*Snapshot {
		var out []*Snapshot
		for i, tm := range times {
			id := ID{byte(len(site)), byte(i)}
			out = append(out, &Snapshot{ID: id, Site: site, Time: tm})
		}
		return out
	}
	// 2025-01-01 is a Wednesday: Jan 1–5 are ISO week 1, Jan 6–12 week 2
	week := mk("s", day(1, 1), day(1, 5), day(2, 3), day(3, 9), day(6, 1), day(7, 2), day(7, 8), day(13, 0))
	cases := []struct {
		name    string
		snaps   []*Snapshot
		policy  Policy
		keep    []int // indexes into snaps
		reasons map[int][]string
	}{
		{"empty policy keeps all", week, Policy{}, []int{0, 1, 2, 3, 4, 5, 6, 7}, nil},
		{"last 2", week, Policy{KeepLast: 2}, []int{6, 7}, map[int][]string{7: {"last"}}},
		{"daily 3", week, Policy{KeepDaily: 3}, []int{4, 6, 7}, map[int][]string{6: {"daily"}}},
		{"daily 100 keeps newest per day", week, Policy{KeepDaily: 100}, []int{1, 2, 3, 4, 6, 7}, nil},
		{"weekly 2", week, Policy{KeepWeekly: 2}, []int{6, 7}, nil},
		{"weekly 3", week, Policy{KeepWeekly: 3}, []int{3, 6, 7}, map[int][]string{3: {"weekly"}}},
		{"monthly 1", week, Policy{KeepMonthly: 1}, []int{7}, map[int][]string{7: {"monthly"}}},
		{"rules combine", week, Policy{KeepLast: 1, KeepDaily: 2, KeepWeekly: 3}, []int{3, 6, 7}, map[int][]string{7: {"last", "daily", "weekly"}, 6: {"daily", "weekly"}}},
		{"per site", append(mk("a", day(1, 1), day(2, 1)), mk("bb", day(1, 2), day(3, 1))...), Policy{KeepLast: 1}, []int{1, 3}, nil},
		{"nothing", nil, Policy{KeepLast: 3}, nil, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			keep, remove, reasons := ApplyPolicy(tc.snaps, tc.policy)
			var want []ID
			for _, i := range tc.keep {
				want = append(want, tc.snaps[i].ID)
			}
			var got []ID
			for _, sn := range keep {
				got = append(got, sn.ID)
			}
			slices.SortFunc(want, compareID)
			slices.SortFunc(got, compareID)
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("keep %v, want %v", short(got), short(want))
			}
			if len(keep)+len(remove) != len(tc.snaps) {
				t.Errorf("keep %d + remove %d != %d", len(keep), len(remove), len(tc.snaps))
			}
			for _, sn := range remove {
				if slices.Contains(got, sn.ID) {
					t.Errorf("%v both kept and removed", sn.ID.Short())
				}
			}
			for i, rs := range tc.reasons {
				if fmt.Sprint(reasons[tc.snaps[i].ID]) != fmt.Sprint(rs) {
					t.Errorf("reasons for %d = %v, want %v", i, reasons[tc.snaps[i].ID], rs)
				}
			}
		})
	}
}

func short(ids []ID) []string {
	var out []string
	for _, id := range ids {
		out = append(out, fmt.Sprintf("%x", id[:2]))
	}
	return out
}
