package main

import (
	"bytes"
	"strings"
	"testing"
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
