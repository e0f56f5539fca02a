package main

import (
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/sitevault/sitevault/internal/config"
	"github.com/sitevault/sitevault/internal/fsys"
)

// globalOptions are the flags every command shares. Defaults come first,
// then the environment, then flags (validated in one place: config.Resolve).
type globalOptions struct {
	Home         string // data home: $SITEVAULT_HOME, default ~/.local/share/sitevault
	Repo         string // repository URL; default: the embedded repository in the data home
	PasswordFile string // a file holding the repository password
	Catalog      string // catalog URL: postgres://…; default $SITEVAULT_CATALOG or SQLite in the data home
	Server       string // a running service to ask (--server); default $SITEVAULT_SERVER
	TokenFile    string // a file holding the service's API token
	ConfigFile   string // --config: the config file (default $SITEVAULT_CONFIG or <data home>/config.toml)
	JSON         bool   // machine-readable output where a command supports it
	Quiet        bool
	Verbose      bool

	// Seams for tests; the zero values are the real thing.
	env       func(string) (string, bool)   // nil: os.LookupEnv
	prompter  config.Prompter               // nil: the terminal
	stderr    io.Writer                     // nil: os.Stderr (progress, notices)
	scryptN   int                           // KDF cost for new key slots; 0: the engine's default
	now       func() time.Time              // the repository's clock; nil: time.Now
	openDir   func(string) (fsys.FS, error) // the folder dir backup reads; nil: fsys.NewLocal
	stdoutTTY func() bool                   // whether a person reads stdout; nil: whether it is a terminal
	readOnly  bool                          // the command only reads: it creates nothing in the data home (readOnlyCommands)
	log       *slog.Logger
}

func newRootCommand() *cobra.Command {
	g := &globalOptions{}
	root := &cobra.Command{
		Use:           "sitevault",
		Short:         "Back up and restore WordPress sites into an encrypted, deduplicated repository",
		SilenceUsage:  true,
		SilenceErrors: true,
		// Arguments the root does not know are a usage error (exit code 2).
		Args:    unknownCommand,
		RunE:    showHelp,
		Version: versionString(),
	}
	root.SetVersionTemplate("sitevault {{.Version}}\n")
	f := root.PersistentFlags()
	f.StringVar(&g.Home, "home", "", "data home (default $SITEVAULT_HOME or ~/.local/share/sitevault)")
	f.StringVarP(&g.Repo, "repo", "r", "", "repository: a path, sftp://user@host[:port]/path, s3://host[:port]/bucket[/prefix] or s3+http://… (default $SITEVAULT_REPOSITORY or the embedded repository)")
	f.StringVar(&g.PasswordFile, "password-file", "", "read the repository password from this file (else $SITEVAULT_PASSWORD, the embedded key file, or a prompt)")
	f.StringVar(&g.Catalog, "catalog", "", "catalog: postgres://user@host/db for several workers (password from $PGPASSWORD or ~/.pgpass, never here); default $SITEVAULT_CATALOG or SQLite in the data home")
	f.StringVar(&g.Server, "server", "", "ask a running `sitevault serve` at this URL to do backup, restore, undo, download and jobs (default $SITEVAULT_SERVER; token from $SITEVAULT_TOKEN or --token-file)")
	f.StringVar(&g.TokenFile, "token-file", "", "read the service's API token from this file (mode 600)")
	f.StringVar(&g.ConfigFile, "config", "", "read settings from this TOML file (default $SITEVAULT_CONFIG or <data home>/config.toml if present; see `sitevault config show`)")
	f.BoolVarP(&g.Quiet, "quiet", "q", false, "print only errors")
	f.BoolVarP(&g.Verbose, "verbose", "v", false, "log details to stderr")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError(err) })

	// Commands are registered here, in one place.
	for _, add := range commandConstructors {
		root.AddCommand(add(g))
	}
	addCompletions(root, g)
	root.PersistentPreRun = func(cmd *cobra.Command, _ []string) {
		g.readOnly = readOnlyCommands[cmd.CommandPath()]
	}
	return root
}

// readOnlyCommands only read: they create nothing in the data home (no
// data home, catalog or key when there is none yet).
var readOnlyCommands = map[string]bool{
	"sitevault snapshots": true, "sitevault points": true, "sitevault status": true, "sitevault check": true,
	"sitevault site list": true, "sitevault site show": true, "sitevault site files": true, "sitevault site tables": true,
	"sitevault key list": true, "sitevault jobs": true, "sitevault jobs show": true,
	"sitevault config show": true, "sitevault config check": true, "sitevault version": true,
}

// commandConstructors lists every top-level command. Each cmd_*.go file
// defines a newXxxCommand(g *globalOptions) *cobra.Command; add it here.
var commandConstructors = []func(g *globalOptions) *cobra.Command{
	newInitCommand,
	newKeyCommand,
	newSnapshotsCommand,
	newCheckCommand,
	newForgetCommand,
	newPruneCommand,
	newRepairCommand,
	newDirCommand,
	newSiteCommand,
	newDownloadCommand,
	newBackupCommand, newPointsCommand, newRestoreCommand, newUndoCommand,
	newServeCommand, newJobsCommand, newStatusCommand,
	newConfigCommand,
	newVersionCommand,
}

// usageArgs turns an argument validator's error into a usage error.
func usageArgs(v cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := v(cmd, args); err != nil {
			return usageError(err)
		}
		return nil
	}
}

// showHelp is the RunE of commands that only group others: without a
// subcommand they print help; with an unknown one, cobra.NoArgs makes it a
// usage error instead of a silent help page.
func showHelp(cmd *cobra.Command, _ []string) error { return cmd.Help() }

// config resolves the data home, the config file, the repository and
// password sources (defaults → file → environment → flags, in one place).
func (g *globalOptions) config() (*config.Config, error) {
	return config.Resolve(g.configFlags(g.readOnly), g.env)
}

// settings is config without creating the data home.
func (g *globalOptions) settings() (*config.Config, error) {
	return config.Resolve(g.configFlags(true), g.env)
}

func (g *globalOptions) configFlags(readOnly bool) config.Flags {
	return config.Flags{Home: g.Home, Repo: g.Repo, PasswordFile: g.PasswordFile, Catalog: g.Catalog,
		Server: g.Server, TokenFile: g.TokenFile, ConfigFile: g.ConfigFile, ReadOnly: readOnly}
}

func (g *globalOptions) prompt() config.Prompter {
	if g.prompter != nil {
		return g.prompter
	}
	return config.Terminal{}
}

// errOut is where notices and progress go: never stdout, which holds results.
func (g *globalOptions) errOut() io.Writer {
	if g.stderr != nil {
		return g.stderr
	}
	return os.Stderr
}

// logger logs to stderr with --verbose and nowhere otherwise.
func (g *globalOptions) logger() *slog.Logger {
	if g.log == nil {
		if g.Verbose {
			g.log = slog.New(slog.NewTextHandler(g.errOut(), &slog.HandlerOptions{Level: slog.LevelDebug}))
		} else {
			g.log = slog.New(slog.DiscardHandler)
		}
	}
	return g.log
}

// cronQuiet reports whether summaries are kept short: stdout is not a
// terminal (cron, a pipe) and -v was not given.
func (g *globalOptions) cronQuiet() bool {
	if g.Verbose {
		return false
	}
	if g.stdoutTTY != nil {
		return !g.stdoutTTY()
	}
	return !term.IsTerminal(int(os.Stdout.Fd()))
}

// progressTTY reports whether live progress should be drawn on stderr.
func (g *globalOptions) progressTTY() bool {
	if g.Quiet || g.stderr != nil {
		return false
	}
	return term.IsTerminal(int(os.Stderr.Fd()))
}
