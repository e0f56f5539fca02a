package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestVersion(t *testing.T) {
	version, commit, buildDate = "v1.2.3", "0123abc", "2026-12-04T00:00:00Z"
	defer func() { version, commit, buildDate = "", "", "" }()
	root := newRootCommand()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetArgs([]string{"--version"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); !strings.HasPrefix(got, "sitevault v1.2.3 (commit 0123abc, built 2026-12-04T00:00:00Z, go") {
		t.Errorf("--version printed %q", got)
	}
}

// `version` prints what --version prints; --json the same as an object.
func TestVersionCommand(t *testing.T) {
	version, commit, buildDate = "v1.2.3", "0123abc", "2026-12-04T00:00:00Z"
	defer func() { version, commit, buildDate = "", "", "" }()
	for _, args := range [][]string{{"version"}, {"version", "--json"}} {
		root := newRootCommand()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetArgs(args)
		if err := root.Execute(); err != nil {
			t.Fatal(err)
		}
		if len(args) == 1 {
			if !strings.HasPrefix(out.String(), "sitevault v1.2.3 (commit 0123abc, built 2026-12-04T00:00:00Z, go") {
				t.Errorf("version printed %q", out.String())
			}
			continue
		}
		var v versionJSON
		dec := json.NewDecoder(&out)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&v); err != nil || v.Version != "v1.2.3" || v.Commit != "0123abc" || v.BuildDate != "2026-12-04T00:00:00Z" || !strings.HasPrefix(v.Go, "go") {
			t.Errorf("version --json: %+v, %v", v, err)
		}
	}
}

func TestShortDuration(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		want string
	}{
		{0, "0"}, {24 * time.Hour, "1d"}, {7 * 24 * time.Hour, "7d"}, {26 * time.Hour, "26h"},
		{90 * time.Minute, "1h30m"}, {time.Hour, "1h"}, {45 * time.Second, "45s"}, {30 * time.Minute, "30m"},
	} {
		if got := shortDuration(c.d); got != c.want {
			t.Errorf("shortDuration(%v) = %q, want %q", c.d, got, c.want)
		}
	}
	var d time.Duration
	f := durationFlag{&d}
	for in, want := range map[string]time.Duration{"7d": 7 * 24 * time.Hour, "26h": 26 * time.Hour, "90m": 90 * time.Minute} {
		if err := f.Set(in); err != nil || d != want {
			t.Errorf("Set(%q) = %v, %v; want %v", in, d, err, want)
		}
	}
	for _, bad := range []string{"d", "-1d", "7 days", "x"} {
		if err := f.Set(bad); err == nil {
			t.Errorf("Set(%q) accepted", bad)
		}
	}
}

func TestPercentETA(t *testing.T) {
	for _, c := range []struct {
		done, total int64
		el          time.Duration
		want        string
	}{
		{50, 100, 10 * time.Second, "  50%  ETA 10s"},
		{25, 100, 4 * time.Second, "  25%  ETA 12s"},
		{200, 100, 10 * time.Second, "  99%  ETA 0s"}, // past the estimate: never 100 % early
		{0, 100, 10 * time.Second, ""},
		{50, 0, 10 * time.Second, ""},
		{50, 100, time.Second, ""},
	} {
		if got := percentETA(c.done, c.total, c.el); got != c.want {
			t.Errorf("percentETA(%d, %d, %v) = %q, want %q", c.done, c.total, c.el, got, c.want)
		}
	}
}
