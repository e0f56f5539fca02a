// Package schedule computes when a site's daily backup is due: once per
// day of the site's own calendar, at a moment inside its window.
//
// Each site gets a fixed offset into the window, derived from its name
// (not random, so that every worker computes the same moment), which
// spreads a thousand sites with one window over the whole window instead
// of starting them in the same second.
//
// Daylight saving time: the moment is built from the local calendar day
// and wall-clock time. A wall-clock time that does not exist on a
// spring-forward day (02:30 when clocks jump from 02:00 to 03:00) runs at
// the same distance after the jump (03:30); a time that exists twice on a
// fall-back day runs once, at the one time.Date picks.
// Either way each local day has exactly one moment, and the next moment
// is always the one of a later day, so no day runs twice or is skipped.
package schedule

import (
	"fmt"
	"hash/fnv"
	"time"
	_ "time/tzdata" // zones work on a machine without tzdata

	"github.com/sitevault/sitevault/internal/sitevault"
)

// Offset returns the site's fixed offset into a window of length window,
// in whole seconds.
func Offset(site string, window time.Duration) time.Duration {
	secs := int64(window / time.Second)
	if secs <= 0 {
		return 0
	}
	h := fnv.New64a()
	h.Write([]byte(site))
	return time.Duration(h.Sum64()%uint64(secs)) * time.Second
}

// Next returns the site's first scheduled moment after after, and the
// local day (YYYY-MM-DD in the schedule's zone) it belongs to: a
// scheduled backup's identity, so that one day is never backed up twice.
func Next(s sitevault.Schedule, site string, after time.Time) (time.Time, string, error) {
	loc, err := s.Location()
	if err != nil {
		return time.Time{}, "", err
	}
	startMin, err := s.StartMinute()
	if err != nil {
		return time.Time{}, "", err
	}
	offset := int(Offset(site, s.WindowOrDefault()) / time.Second)
	local := after.In(loc)
	// The moment of the day before may still lie after after (a window
	// that runs past midnight); three days always hold the next one.
	for d := -1; d <= 2; d++ {
		day := time.Date(local.Year(), local.Month(), local.Day()+d, 0, 0, 0, 0, loc)
		at := wallClock(day, time.Duration(startMin)*time.Minute+time.Duration(offset)*time.Second, loc)
		if at.After(after) {
			return at, day.Format(time.DateOnly), nil
		}
	}
	return time.Time{}, "", fmt.Errorf("schedule of %s: no moment found after %s", site, after)
}

// wallClock returns the moment of day (local midnight's date) when the
// clock shows wall (a time of day, which may exceed 24 hours for a window
// past midnight). time.Date's choice inside a spring-forward gap differs
// between zones, so a wall-clock time that does not exist is taken as
// the same elapsed time after midnight, which lands as far after the jump.
func wallClock(day time.Time, wall time.Duration, loc *time.Location) time.Time {
	secs := int(wall / time.Second)
	at := time.Date(day.Year(), day.Month(), day.Day(), 0, 0, secs, 0, loc)
	want := time.Date(day.Year(), day.Month(), day.Day(), 0, 0, secs, 0, time.UTC) // the wall clock, zone-free
	got := at.In(loc)
	if got.Year() == want.Year() && got.YearDay() == want.YearDay() && got.Hour() == want.Hour() &&
		got.Minute() == want.Minute() && got.Second() == want.Second() {
		return at
	}
	return time.Date(day.Year(), day.Month(), day.Day(), 0, 0, 0, 0, loc).Add(wall)
}
