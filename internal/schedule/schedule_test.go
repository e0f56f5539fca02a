package schedule

import (
	"fmt"
	"testing"
	"time"

	"github.com/sitevault/sitevault/internal/sitevault"
)

// run follows the schedule from from for days days and returns each
// moment with its day.
func run(t *testing.T, s sitevault.Schedule, site string, from time.Time, days int) ([]time.Time, []string) {
	t.Helper()
	var at []time.Time
	var keys []string
	cur := from
	for range days {
		next, day, err := Next(s, site, cur)
		if err != nil {
			t.Fatal(err)
		}
		if !next.After(cur) {
			t.Fatalf("Next(%s) = %s, not after", cur, next)
		}
		at, keys = append(at, next), append(keys, day)
		cur = next
	}
	return at, keys
}

func TestDST(t *testing.T) {
	cases := []struct {
		zone, start string
		from        string // local day before the change
		changeDay   string
		wantLocal   string // the wall-clock time it runs on the change day
	}{
		// Spring forward: 02:30 does not exist; it runs at 03:30.
		{"Europe/Berlin", "02:30", "2026-03-27", "2026-03-29", "03:30"},
		{"America/New_York", "02:30", "2026-03-06", "2026-03-08", "03:30"},
		// Fall back: 01:30 (New York) and 02:30 (Berlin) exist twice; one run.
		{"Europe/Berlin", "02:30", "2026-10-23", "2026-10-25", "02:30"},
		{"America/New_York", "01:30", "2026-10-30", "2026-11-01", "01:30"},
	}
	for _, c := range cases {
		t.Run(c.zone+"/"+c.changeDay, func(t *testing.T) {
			loc, err := time.LoadLocation(c.zone)
			if err != nil {
				t.Fatal(err)
			}
			// A one-second window puts every site at the window's start.
			s := sitevault.Schedule{Start: c.start, Window: time.Second, TimeZone: c.zone}
			from, _ := time.ParseInLocation(time.DateOnly, c.from, loc)
			at, days := run(t, s, "blog", from, 5)
			seen := map[string]int{}
			for i, a := range at {
				seen[days[i]]++
				if got := a.In(loc).Format(time.DateOnly); got != days[i] {
					t.Errorf("moment %s is on %s, its key says %s", a.In(loc), got, days[i])
				}
				if days[i] == c.changeDay {
					if got := a.In(loc).Format("15:04"); got != c.wantLocal {
						t.Errorf("on %s it runs at %s local, want %s", c.changeDay, got, c.wantLocal)
					}
				}
			}
			for d, n := range seen {
				if n != 1 {
					t.Errorf("day %s runs %d times", d, n)
				}
			}
			if len(seen) != 5 {
				t.Errorf("5 moments cover %d days: %v", len(seen), days)
			}
			for i := 1; i < len(days); i++ {
				prev, _ := time.ParseInLocation(time.DateOnly, days[i-1], loc)
				cur, _ := time.ParseInLocation(time.DateOnly, days[i], loc)
				if cur.AddDate(0, 0, -1).Format(time.DateOnly) != prev.Format(time.DateOnly) {
					t.Errorf("a day was skipped between %s and %s", days[i-1], days[i])
				}
			}
		})
	}
}

func TestWindowAndSpread(t *testing.T) {
	s := sitevault.Schedule{Start: "23:30", Window: 2 * time.Hour, TimeZone: "Europe/Berlin"}
	loc, _ := time.LoadLocation("Europe/Berlin")
	from := time.Date(2026, 6, 1, 12, 0, 0, 0, loc)
	perSecond := map[time.Time]int{}
	firstHalf := 0
	for i := 0; i < 1000; i++ {
		site := fmt.Sprintf("site-%d", i)
		at, day, err := Next(s, site, from)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Date(2026, 6, 1, 23, 30, 0, 0, loc)
		if at.Before(start) || !at.Before(start.Add(2*time.Hour)) {
			t.Fatalf("%s runs at %s, outside the window", site, at.In(loc))
		}
		if day != "2026-06-01" {
			t.Fatalf("%s: a window past midnight belongs to the day it starts: %s", site, day)
		}
		if at.Before(start.Add(time.Hour)) {
			firstHalf++
		}
		perSecond[at]++
		// The same site always gets the same moment (every worker agrees).
		again, _, _ := Next(s, site, from)
		if !again.Equal(at) {
			t.Fatalf("%s: %s then %s", site, at, again)
		}
	}
	most := 0
	for _, n := range perSecond {
		most = max(most, n)
	}
	if most > 4 {
		t.Errorf("%d sites start in the same second", most)
	}
	if firstHalf < 400 || firstHalf > 600 {
		t.Errorf("%d of 1000 sites in the window's first half: not spread", firstHalf)
	}
}

func TestMissedWindowRunsOnReturn(t *testing.T) {
	// The scheduler stores the next moment; a service down past it finds
	// it due on return (DueBackups), then moves to the next day. Here: the
	// next moment after a moment is the next day's, never the same day's.
	s := sitevault.Schedule{Start: "02:00", Window: time.Hour}
	at, day, err := Next(s, "blog", time.Date(2026, 12, 4, 1, 0, 0, 0, time.UTC))
	if err != nil || day != "2026-12-04" {
		t.Fatalf("%s %s %v", at, day, err)
	}
	_, day2, _ := Next(s, "blog", at)
	if day2 != "2026-12-05" {
		t.Fatalf("after the moment of %s the next is on %s", day, day2)
	}
}

func TestInvalid(t *testing.T) {
	for _, s := range []sitevault.Schedule{{Start: "25:00"}, {TimeZone: "Mars/Olympus"}, {Start: "2pm"}} {
		if _, _, err := Next(s, "x", time.Now()); err == nil {
			t.Errorf("%+v accepted", s)
		}
	}
}
