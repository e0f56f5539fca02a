package main

import (
	"github.com/spf13/cobra"
)

// globalOptions are the flags every command shares. Defaults come first,
// then the environment, then flags (validated in one place: resolve).
type globalOptions struct {
	Home         string // data home: $SITEVAULT_HOME, default ~/.local/share/sitevault
	Repo         string // repository URL; default: the embedded repository in the data home
	PasswordFile string // a file holding the repository password
	JSON         bool   // machine-readable output where a command supports it
	Quiet        bool
	Verbose      bool
}

func newRootCommand() *cobra.Command {
	g := &globalOptions{}
	root := &cobra.Command{
		Use:           "sitevault",
		Short:         "Back up and restore WordPress sites into an encrypted, deduplicated repository",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	f := root.PersistentFlags()
	f.StringVar(&g.Home, "home", "", "data home (default $SITEVAULT_HOME or ~/.local/share/sitevault)")
	f.StringVarP(&g.Repo, "repo", "r", "", "repository: a path, sftp://user@host[:port]/path, s3://host[:port]/bucket[/prefix] or s3+http://… (default $SITEVAULT_REPOSITORY or the embedded repository)")
	f.StringVar(&g.PasswordFile, "password-file", "", "read the repository password from this file (else $SITEVAULT_PASSWORD, the embedded key file, or a prompt)")
	f.BoolVarP(&g.Quiet, "quiet", "q", false, "print only errors")
	f.BoolVarP(&g.Verbose, "verbose", "v", false, "log details to stderr")

	// Commands are registered here, in one place.
	for _, add := range commandConstructors {
		root.AddCommand(add(g))
	}
	return root
}

// commandConstructors lists every top-level command. Each cmd_*.go file
// defines a newXxxCommand(g *globalOptions) *cobra.Command; add it here.
var commandConstructors = []func(g *globalOptions) *cobra.Command{
	// newInitCommand, newKeyCommand, newCheckCommand, newForgetCommand, newPruneCommand,
	// newSnapshotsCommand, newDirCommand, newSiteCommand, …
}
