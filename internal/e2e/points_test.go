package e2e_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// parsePoints reads `points --json`: an array of points, an object that
// holds one under some key, or an array of days that each hold points. A
// point is an object with an id ("id", "ID", "short_id") and a time
// ("time", RFC 3339). Points are returned in the order printed.
func parsePoints(data []byte) ([]point, error) {
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, err
	}
	var pts []point
	if err := collectPoints(v, &pts); err != nil {
		return nil, err
	}
	return pts, nil
}

func collectPoints(v any, pts *[]point) error {
	switch x := v.(type) {
	case []any:
		for _, e := range x {
			if err := collectPoints(e, pts); err != nil {
				return err
			}
		}
		return nil
	case map[string]any:
		if p, ok, err := asPoint(x); ok || err != nil {
			if err == nil {
				*pts = append(*pts, p)
			}
			return err
		}
		// A wrapper: look into its arrays ("points", "days" …) in a stable order.
		for _, k := range []string{"points", "Points", "days", "Days", "restore_points"} {
			if a, ok := x[k].([]any); ok {
				return collectPoints(a, pts)
			}
		}
		for _, e := range x {
			if a, ok := e.([]any); ok {
				return collectPoints(a, pts)
			}
		}
		return nil
	case nil:
		return nil
	}
	return fmt.Errorf("unexpected JSON value %T", v)
}

func asPoint(m map[string]any) (point, bool, error) {
	var p point
	for _, k := range []string{"id", "ID", "Id", "point", "short_id"} {
		if s, ok := m[k].(string); ok && s != "" {
			p.ID = s
			break
		}
	}
	ts, hasTime := m["time"].(string)
	if !hasTime {
		ts, hasTime = m["Time"].(string)
	}
	if p.ID == "" || !hasTime {
		return p, false, nil
	}
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return p, true, fmt.Errorf("point %s: time %q: %w", p.ID, ts, err)
	}
	p.Time = t
	for _, k := range []string{"trigger", "Trigger"} {
		if s, ok := m[k].(string); ok {
			p.Trigger = s
		}
	}
	return p, true, nil
}

// checkNewestFirst reports points that are not newest first.
func checkNewestFirst(pts []point) error {
	var errs []string
	for i := 1; i < len(pts); i++ {
		if pts[i].Time.After(pts[i-1].Time) {
			errs = append(errs, fmt.Sprintf("point %d (%s, %s) is newer than point %d (%s, %s)",
				i, pts[i].ID, pts[i].Time.Format(time.RFC3339Nano), i-1, pts[i-1].ID, pts[i-1].Time.Format(time.RFC3339Nano)))
		}
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "\n"))
	}
	return nil
}
