package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/sitevault/sitevault/internal/catalog"
)

func TestClosestName(t *testing.T) {
	known := []string{"blog", "shop-de", "shop-fr", "intranet"}
	for name, want := range map[string]string{
		"blgo": "blog", "blo": "blog", "shop-dr": "shop-de", "intrnaet": "intranet", "zzz": "", "intra": "intranet",
	} {
		if got := closestName(name, known); got != want {
			t.Errorf("closestName(%q) = %q, want %q", name, got, want)
		}
	}
	err := unknownSite("blgo", known)
	if !errors.Is(err, catalog.ErrSiteNotFound) || exitCode(err) != exitError {
		t.Errorf("unknownSite: %v (exit %d)", err, exitCode(err))
	}
	if !strings.Contains(err.Error(), "no site blgo; did you mean blog?") {
		t.Errorf("unknownSite: %v", err)
	}
}

func TestMistypedCommandSuggests(t *testing.T) {
	for _, args := range [][]string{{"bakcup"}, {"site", "lsit"}} {
		root := newRootCommand()
		root.SetArgs(args)
		root.SetOut(new(bytes.Buffer))
		err := root.Execute()
		if exitCode(err) != exitUsage || err == nil || !strings.Contains(err.Error(), "did you mean") {
			t.Errorf("%v: %v (exit %d), want a usage error with suggestions", args, err, exitCode(err))
		}
	}
}

func TestWorstCode(t *testing.T) {
	for _, c := range []struct {
		codes []int
		want  int
	}{
		{nil, 0}, {[]int{0, 0}, 0}, {[]int{0, 3}, 3}, {[]int{3, 1, 0}, 1}, {[]int{13, 3, 1}, 13}, {[]int{1, 3}, 1},
	} {
		if got := worstCode(c.codes); got != c.want {
			t.Errorf("worstCode(%v) = %d, want %d", c.codes, got, c.want)
		}
	}
}
