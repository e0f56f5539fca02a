package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// Set at release with -ldflags "-X main.version=v1.2.3 -X main.commit=… -X
// main.buildDate=…"; a plain go build fills them from the build info.
var (
	version   = ""
	commit    = ""
	buildDate = ""
)

// versionJSON is `sitevault version --json`.
type versionJSON struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`     // "+dirty" when built from a modified tree
	BuildDate string `json:"build_date"` // RFC 3339, or "unknown"
	Go        string `json:"go"`
}

// versionString is what `sitevault --version` prints: the version, the
// commit (marked "+dirty" when built from a modified tree), the build date
// and the Go version.
func versionString() string {
	v := versionInfo()
	return fmt.Sprintf("%s (commit %s, built %s, %s)", v.Version, v.Commit, v.BuildDate, v.Go)
}

// newVersionCommand is `sitevault version`: --version as a command, with
// --json.
func newVersionCommand(*globalOptions) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit and build date (as --version does); --json for scripts",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runVersion(cmd.OutOrStdout(), asJSON)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, `print {"version", "commit", "build_date", "go"}`)
	return cmd
}

func runVersion(w io.Writer, asJSON bool) error {
	if asJSON {
		return writeJSON(w, versionInfo())
	}
	_, err := fmt.Fprintf(w, "sitevault %s\n", versionString())
	return err
}

func versionInfo() versionJSON {
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
	return versionJSON{Version: v, Commit: c, BuildDate: d, Go: runtime.Version()}
}
