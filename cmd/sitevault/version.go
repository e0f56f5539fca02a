package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Set at release with -ldflags "-X main.version=v1.2.3 -X main.commit=… -X
// main.buildDate=…"; a plain go build fills them from the build info.
var (
	version   = ""
	commit    = ""
	buildDate = ""
)

// versionString is what `sitevault --version` prints: the version, the
// commit (marked "+dirty" when built from a modified tree), the build date
// and the Go version.
func versionString() string {
	v, c, d := version, commit, buildDate
	if info, ok := debug.ReadBuildInfo(); ok {
		if v == "" {
			v = info.Main.Version
		}
		dirty := false
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				if c == "" {
					c = s.Value
				}
			case "vcs.time":
				if d == "" {
					d = s.Value
				}
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if dirty && c != "" && commit == "" {
			c += "+dirty"
		}
	}
	if v == "" || v == "(devel)" {
		v = "devel"
	}
	if c == "" {
		c = "unknown"
	}
	if d == "" {
		d = "unknown"
	}
	return fmt.Sprintf("%s (commit %s, built %s, %s)", v, c, d, runtime.Version())
}
