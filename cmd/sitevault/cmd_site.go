package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"

	"github.com/sitevault/sitevault/internal/archiver"
	"github.com/sitevault/sitevault/internal/backup"
	"github.com/sitevault/sitevault/internal/catalog"
	"github.com/sitevault/sitevault/internal/catalog/postgres"
	"github.com/sitevault/sitevault/internal/catalog/sqlite"
	"github.com/sitevault/sitevault/internal/config"
	"github.com/sitevault/sitevault/internal/connection"
	"github.com/sitevault/sitevault/internal/connection/ssh"
	"github.com/sitevault/sitevault/internal/seal"
	"github.com/sitevault/sitevault/internal/site"
	"github.com/sitevault/sitevault/internal/sitevault"
	"github.com/sitevault/sitevault/internal/wordpress"
)

// envDBPassword supplies the database password to site add and edit.
const envDBPassword = "SITEVAULT_DB_PASSWORD"

// siteOptions are the flags of site add and site edit.
type siteOptions struct {
	Name           string
	Path           string
	SSH            string // user@host[:port]
	Identity       string
	Yes            bool
	JSON           bool
	DBHost         string
	DBName         string
	DBUser         string
	DBPasswordFile string
	TablePrefix    string
	// edit only
	Local        bool
	ResetHostKey bool
	// Changed reports whether a flag was given (edit applies only those);
	// nil means every non-empty field was given.
	Changed func(flag string) bool
}

func (o *siteOptions) changed(flag string, value string) bool {
	if o.Changed != nil {
		return o.Changed(flag)
	}
	return value != ""
}

type siteFilesOptions struct {
	Name    string
	Explain bool
	JSON    bool
}

func newSiteCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "site",
		Short: "Register WordPress sites (local or over SSH), list what a backup takes, back up and restore their files",
		Args:  unknownCommand,
		RunE:  showHelp,
	}
	addFlags := func(c *cobra.Command, o *siteOptions) {
		f := c.Flags()
		f.StringVar(&o.Path, "path", "", "the WordPress root (ABSPATH) on the site's machine")
		f.StringVar(&o.SSH, "ssh", "", "reach the site over SSH as user@host[:port] (files over SFTP, database through the tunnel)")
		f.StringVar(&o.Identity, "identity", "", "SSH private key file (passphrase from $SITEVAULT_SSH_PASSPHRASE or a prompt); without it, a password from $SITEVAULT_SSH_PASSWORD or a prompt")
		f.BoolVarP(&o.Yes, "yes", "y", false, "accept an unknown SSH host key without asking (its fingerprint is printed)")
		f.StringVar(&o.DBHost, "db-host", "", "database host, as DB_HOST is written (host, host:port, localhost:/socket); overrides wp-config.php")
		f.StringVar(&o.DBName, "db-name", "", "database name; overrides wp-config.php")
		f.StringVar(&o.DBUser, "db-user", "", "database user; overrides wp-config.php")
		f.StringVar(&o.DBPasswordFile, "db-password-file", "", "read the database password from this file (or set $SITEVAULT_DB_PASSWORD); overrides wp-config.php")
		f.StringVar(&o.TablePrefix, "table-prefix", "", "table prefix; overrides wp-config.php")
		f.BoolVar(&o.JSON, "json", false, "print the saved site and what the check found as JSON (see the README)")
	}

	var add siteOptions
	addCmd := &cobra.Command{
		Use:   "add NAME --path DIR [--ssh USER@HOST[:PORT] [--identity KEYFILE] [--yes]]",
		Short: "Register a site after checking its connection, its files and its database login",
		Args:  usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			add.Name = args[0]
			return runSiteAdd(cmd.Context(), add, g, cmd.OutOrStdout())
		},
	}
	addFlags(addCmd, &add)

	var edit siteOptions
	editCmd := &cobra.Command{
		Use:   "edit NAME [flags of add] [--local] [--reset-host-key]",
		Short: "Change a site's settings (only the flags given), then check it again",
		Args:  usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			edit.Name = args[0]
			edit.Changed = cmd.Flags().Changed
			return runSiteEdit(cmd.Context(), edit, g, cmd.OutOrStdout())
		},
	}
	addFlags(editCmd, &edit)
	editCmd.Flags().BoolVar(&edit.Local, "local", false, "make the site a local one (drops its SSH settings)")
	editCmd.Flags().BoolVar(&edit.ResetHostKey, "reset-host-key", false, "forget the recorded SSH host key and accept the server's current one (after checking its fingerprint)")

	var listJSON bool
	listCmd := &cobra.Command{
		Use:   "list [--json]",
		Short: "List the registered sites with their last backup and last error",
		Long: `List the registered sites: name, connection, location, and the columns of
` + "`sitevault status`" + ` (last good backup, its age, the latest result, size, last
error). The backup columns need the repository; when it cannot be opened,
they show what the catalog holds and a note says why.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runSiteList(cmd.Context(), g, listJSON, cmd.OutOrStdout())
		},
	}
	listCmd.Flags().BoolVar(&listJSON, "json", false, "print JSON: the objects of `sitevault status --json` (see the README)")
	var showJSON bool
	showCmd := &cobra.Command{
		Use:   "show NAME",
		Short: "Show a site's settings (never its secrets)",
		Args:  usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runSiteShow(cmd.Context(), args[0], g, showJSON, cmd.OutOrStdout())
		},
	}
	showCmd.Flags().BoolVar(&showJSON, "json", false, "print JSON (see the README)")
	var removeYes, removeJSON bool
	removeCmd := &cobra.Command{
		Use:   "remove NAME [--yes]",
		Short: "Forget a site (its restore points stay in the repository); asks first, or needs --yes without a terminal",
		Args:  usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := confirmDestructive(g, removeYes, false, "Remove site "+args[0]+" from the catalog? Its schedule, settings and stored credentials go; its restore points stay in the repository."); err != nil {
				return err
			}
			return runSiteRemove(cmd.Context(), args[0], g, removeJSON, cmd.OutOrStdout())
		},
	}
	removeCmd.Flags().BoolVarP(&removeYes, "yes", "y", false, "do not ask for confirmation (needed without a terminal)")
	removeCmd.Flags().BoolVar(&removeJSON, "json", false, "print the result as JSON (see the README)")

	var files siteFilesOptions
	filesCmd := &cobra.Command{
		Use:   "files NAME [--explain]",
		Short: "List the files a backup of the site takes; --explain adds every excluded path and the rule that excluded it",
		Args:  usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			files.Name = args[0]
			return runSiteFiles(cmd.Context(), files, g, cmd.OutOrStdout())
		},
	}
	filesCmd.Flags().BoolVar(&files.Explain, "explain", false, "also list excluded paths with the rule that excluded each")
	filesCmd.Flags().BoolVar(&files.JSON, "json", false, "print JSON: the files and every excluded path with its rule (see the README)")

	var tables siteFilesOptions
	tablesCmd := &cobra.Command{
		Use:   "tables NAME [--explain]",
		Short: "List the tables a backup of the site takes; --explain adds every table left out and why",
		Long: `List the database tables a backup of the site takes, found with the same
login and table prefix as a backup (wp-config.php, the site's --db-* settings,
else the last login that worked). --explain marks each "take" or "skip" and
gives the reason a table is left out.`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			tables.Name = args[0]
			return runSiteTables(cmd.Context(), tables, g, cmd.OutOrStdout())
		},
	}
	tablesCmd.Flags().BoolVar(&tables.Explain, "explain", false, "also list tables left out with the reason for each")
	tablesCmd.Flags().BoolVar(&tables.JSON, "json", false, "print JSON: the tables, views and every table left out with its rule (see the README)")

	cmd.AddCommand(addCmd, editCmd, listCmd, showCmd, removeCmd, filesCmd, tablesCmd, newSiteConnectCommand(g))
	return cmd
}

// openCatalog opens the catalog: PostgreSQL when --catalog or
// $SITEVAULT_CATALOG names one, else SQLite in the data home. Secrets are
// sealed with the data home's key either way (every worker of a shared
// catalog needs a copy of it).
func openCatalog(ctx context.Context, g *globalOptions) (*catalog.Catalog, *config.Config, error) {
	cfg, err := g.config()
	if err != nil {
		return nil, nil, err
	}
	where := g.Catalog
	if where != "" {
		if u, err := url.Parse(where); err == nil && u.User != nil {
			if _, ok := u.User.Password(); ok {
				return nil, nil, userErrorf(errUsage, "--catalog holds a password, which other users can read on the command line; give it in $PGPASSWORD or ~/.pgpass, or the whole URL in $%s", envCatalog)
			}
		}
	} else {
		where = cfg.Catalog // $SITEVAULT_CATALOG, then the config file
	}
	var c *catalog.Catalog
	switch {
	case where == "" && g.readOnly && !exists(filepath.Join(cfg.Home, sqlite.FileName)):
		// A command that only reads creates no catalog: it reads an
		// empty one, made outside the data home and removed at exit.
		var tmp string
		if tmp, err = os.MkdirTemp("", "sitevault-no-catalog-"); err == nil {
			atExit = append(atExit, func() { os.RemoveAll(tmp) })
			c, err = sqlite.Open(ctx, tmp)
		}
	case where == "":
		c, err = sqlite.Open(ctx, cfg.Home)
	case postgres.IsURL(where):
		var sealer *seal.Sealer
		keyFile := filepath.Join(cfg.Home, seal.KeyFileName)
		if g.readOnly && !exists(keyFile) {
			// A command that only reads creates no key file either: it
			// reads with a key of its own, kept in memory. Sites without
			// secrets read as they are; a sealed secret fails to open,
			// saying that this machine lacks the catalog's key file.
			sealer, err = seal.Ephemeral(keyFile)
		} else {
			sealer, err = seal.OpenKeyFile(keyFile)
		}
		if err == nil {
			c, err = postgres.Open(ctx, where, sealer)
		}
	default:
		return nil, nil, userErrorf(errUsage, "catalog %s: give a postgres://user@host[:port]/database URL (or nothing, for SQLite in the data home)", postgres.Redact(where))
	}
	if err != nil {
		return nil, nil, err
	}
	return c, cfg, nil
}

// envCatalog names the catalog, as --catalog does.
const envCatalog = "SITEVAULT_CATALOG"

// environ returns the environment lookup: the test seam, else the
// process's. Library calls that read secrets from the environment get it
// explicitly (for them nil means no environment, as in the service).
func (g *globalOptions) environ() func(string) (string, bool) {
	if g.env != nil {
		return g.env
	}
	return os.LookupEnv
}

func (g *globalOptions) lookupEnv(name string) string {
	v, _ := g.environ()(name)
	return v
}

// parseSSHTarget splits user@host[:port] ([v6]:port for IPv6).
func parseSSHTarget(s string) (user, host string, port int, err error) {
	user, hostport, ok := strings.Cut(s, "@")
	if !ok || user == "" || hostport == "" {
		return "", "", 0, fmt.Errorf("--ssh %q: write it as user@host or user@host:port", s)
	}
	host = hostport
	if h, p, err := net.SplitHostPort(hostport); err == nil {
		n, perr := strconv.Atoi(p)
		if perr != nil || n < 1 || n > 65535 {
			return "", "", 0, fmt.Errorf("--ssh %q: port %q is not a number from 1 to 65535", s, p)
		}
		host, port = h, n
	} else {
		host = strings.TrimSuffix(strings.TrimPrefix(hostport, "["), "]")
	}
	if host == "" || strings.ContainsAny(host, "/@ ") {
		return "", "", 0, fmt.Errorf("--ssh %q: invalid host", s)
	}
	return user, host, port, nil
}

// applySiteFlags changes entry as the flags say.
func applySiteFlags(entry *sitevault.Site, o siteOptions, g *globalOptions) error {
	if o.Local && o.changed("ssh", o.SSH) {
		return userErrorf(errUsage, "--local and --ssh contradict each other")
	}
	if o.changed("path", o.Path) {
		p := o.Path
		if entry.Kind == sitevault.Local && !o.changed("ssh", o.SSH) || o.Local {
			abs, err := filepath.Abs(p)
			if err != nil {
				return fmt.Errorf("--path %s: %w", p, err)
			}
			p = abs
		} else if !strings.HasPrefix(p, "/") {
			return userErrorf(errUsage, "--path %q: give the absolute path of the WordPress root on the server", p)
		}
		entry.Path = path.Clean(p)
	}
	if o.Local {
		entry.Kind = sitevault.Local
		entry.SSH = sitevault.SSHSettings{}
		if !strings.HasPrefix(entry.Path, "/") {
			return userErrorf(errUsage, "--local needs an absolute --path")
		}
	}
	if o.changed("ssh", o.SSH) {
		user, host, port, err := parseSSHTarget(o.SSH)
		if err != nil {
			return userErrorf(errUsage, "%v", err)
		}
		if entry.Kind != sitevault.SSH || entry.SSH.Host != host || entry.SSH.Port != port {
			// Another server: its key has to be accepted anew.
			entry.SSH.HostKey, entry.SSH.HostKeyFingerprint = "", ""
		}
		entry.Kind = sitevault.SSH
		entry.SSH.User, entry.SSH.Host, entry.SSH.Port = user, host, port
	}
	if o.changed("identity", o.Identity) {
		if entry.Kind != sitevault.SSH {
			return userErrorf(errUsage, "--identity is for sites reached with --ssh")
		}
		entry.SSH.IdentityFile = ""
		if o.Identity != "" {
			abs, err := filepath.Abs(o.Identity)
			if err != nil {
				return fmt.Errorf("--identity %s: %w", o.Identity, err)
			}
			entry.SSH.IdentityFile = abs
			entry.SSH.Passphrase = ""
		}
	}
	if o.ResetHostKey {
		entry.SSH.HostKey, entry.SSH.HostKeyFingerprint = "", ""
	}
	if entry.Kind == sitevault.SSH {
		if v := g.lookupEnv(connection.EnvSSHPassword); v != "" {
			entry.SSH.Password = sitevault.Secret(v)
		}
		if v := g.lookupEnv(connection.EnvSSHPassphrase); v != "" {
			entry.SSH.Passphrase = sitevault.Secret(v)
		}
	}
	if o.changed("db-host", o.DBHost) {
		entry.DB.Host = o.DBHost
	}
	if o.changed("db-name", o.DBName) {
		entry.DB.Name = o.DBName
	}
	if o.changed("db-user", o.DBUser) {
		entry.DB.User = o.DBUser
	}
	if o.changed("table-prefix", o.TablePrefix) {
		entry.DB.TablePrefix = o.TablePrefix
	}
	switch {
	case o.changed("db-password-file", o.DBPasswordFile) && o.DBPasswordFile != "":
		pw, err := config.ReadSecretFile(o.DBPasswordFile, "database password file")
		if err != nil {
			return userErrorf(err, "--db-password-file: %v", err)
		}
		entry.DB.Password = sitevault.Secret(pw)
	case o.changed("db-password-file", o.DBPasswordFile):
		entry.DB.Password = "" // --db-password-file "" drops the override
	case g.lookupEnv(envDBPassword) != "":
		entry.DB.Password = sitevault.Secret(g.lookupEnv(envDBPassword))
	}
	return nil
}

// connectSite opens a registered site's connection for a command that
// uses it (files, tables, backup, restore): an unknown host key is refused
// with the advice to accept it with site edit.
func connectSite(ctx context.Context, g *globalOptions, entry *sitevault.Site) (connection.Connection, error) {
	opts := connection.Options{Env: g.environ(), Logger: g.logger()}
	if p := g.prompt(); p.Interactive() {
		opts.PasswordPrompt, opts.PassphrasePrompt = sshPrompts(p)
	}
	conn, err := connection.Open(ctx, *entry, opts)
	var unknown *ssh.UnknownHostKeyError
	if errors.As(err, &unknown) {
		return nil, userErrorf(err, "site %s: no SSH host key is recorded for %s; accept it with `sitevault site edit %s --reset-host-key`",
			entry.Name, unknown.Addr, entry.Name)
	}
	if err != nil {
		return nil, connectError(entry, err)
	}
	return conn, nil
}

// sshPrompts asks for the SSH password and the identity file's passphrase.
func sshPrompts(p config.Prompter) (password func(user, addr string) (string, error), passphrase func(file string) (string, error)) {
	password = func(user, addr string) (string, error) {
		return p.Prompt(fmt.Sprintf("SSH password for %s@%s: ", user, addr))
	}
	passphrase = func(file string) (string, error) {
		return p.Prompt(fmt.Sprintf("Passphrase of %s: ", file))
	}
	return password, passphrase
}

func acceptHostKey(g *globalOptions, unknown *ssh.UnknownHostKeyError, yes bool) error {
	if yes {
		return nil
	}
	p := g.prompt()
	if !p.Interactive() {
		return userErrorf(ssh.ErrHostKeyUnknown, "%v; to accept it without a terminal, check the fingerprint and pass --yes", unknown)
	}
	fmt.Fprintf(g.errOut(), "The SSH host key of %s is not known:\n  %s %s\nCheck it on the server with: ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub\n",
		unknown.Addr, unknown.Key.Type(), unknown.Fingerprint())
	answer, err := p.Prompt("Accept and record this key? (yes/no): ")
	if err != nil {
		return fmt.Errorf("accept host key: %w", err)
	}
	if a := strings.ToLower(strings.TrimSpace(answer)); a != "yes" && a != "y" {
		return userErrorf(ssh.ErrHostKeyUnknown, "host key of %s not accepted; nothing was recorded", unknown.Addr)
	}
	return nil
}

// connectError says which part of connecting failed and what to do.
func connectError(entry *sitevault.Site, err error) error {
	switch {
	case errors.Is(err, ssh.ErrHostKeyChanged):
		return userErrorf(err, "site %s: %v with `sitevault site edit %s --reset-host-key`", entry.Name, err, entry.Name)
	case errors.Is(err, ssh.ErrUnreachable):
		return &userError{msg: fmt.Sprintf("site %s: cannot reach the SSH server: %v; check --ssh user@host[:port]", entry.Name, err),
			err: errors.Join(errUnreachable, err)}
	case errors.Is(err, ssh.ErrLogin):
		return userErrorf(err, "site %s: %v (--identity, $%s, $%s)", entry.Name, err, connection.EnvSSHPassphrase, connection.EnvSSHPassword)
	case errors.Is(err, ssh.ErrNoLoginMethod):
		return userErrorf(err, "site %s: %v: give an identity file (--identity) or a password ($%s)", entry.Name, err, connection.EnvSSHPassword)
	case errors.Is(err, ssh.ErrIdentity):
		return userErrorf(err, "site %s: %v", entry.Name, err)
	case errors.Is(err, fs.ErrNotExist):
		return userErrorf(err, "site %s: the folder %s does not exist; check --path", entry.Name, entry.Location())
	}
	return fmt.Errorf("site %s: connect: %w", entry.Name, err)
}

// inspectError says why the folder is not a usable site.
func inspectError(entry *sitevault.Site, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist) && !errors.Is(err, wordpress.ErrNoConfig):
		return userErrorf(err, "site %s: the folder %s does not exist; check --path", entry.Name, entry.Location())
	case errors.Is(err, wordpress.ErrNotWordPress):
		return userErrorf(err, "site %s: %s is not a WordPress site (it has neither wp-includes/version.php nor wp-settings.php); give the WordPress root with --path", entry.Name, entry.Location())
	case errors.Is(err, wordpress.ErrNoConfig):
		return userErrorf(err, "site %s: %v; give the WordPress root with --path", entry.Name, err)
	case errors.Is(err, fs.ErrPermission):
		return userErrorf(err, "site %s: %v; the %s user needs read access to the site's files", entry.Name, err, connectionUser(entry))
	}
	return fmt.Errorf("site %s: %w", entry.Name, err)
}

func connectionUser(entry *sitevault.Site) string {
	if entry.Kind == sitevault.SSH {
		return "SSH user " + entry.SSH.User
	}
	return "local"
}

// settingFlags are the flags that supply each database setting.
var settingFlags = map[string]string{
	"DB_NAME":       "--db-name",
	"DB_USER":       "--db-user",
	"DB_PASSWORD":   "--db-password-file FILE or $" + envDBPassword,
	"DB_HOST":       "--db-host",
	"$table_prefix": "--table-prefix",
}

// valueAdvice says what is wrong with a database setting and which flag
// supplies it.
func valueAdvice(ve *wordpress.ValueError) string {
	flag := settingFlags[ve.Name]
	if errors.Is(ve, wordpress.ErrBadTablePrefix) {
		return fmt.Sprintf("%v; pass the right one with %s", ve, flag)
	}
	how := ve.Err.Error()
	if ve.Expr != "" {
		how += " (" + ve.Expr + ")"
	}
	return fmt.Sprintf("%s is %s: pass it with %s", ve.Name, how, flag)
}

// settingsError lists every database setting that must be passed by flag.
func settingsError(entry *sitevault.Site, values []*wordpress.ValueError, err error) error {
	var lines []string
	for _, ve := range values {
		lines = append(lines, "  "+valueAdvice(ve))
	}
	if len(values) == 0 {
		lines = append(lines, "  "+err.Error())
	}
	return userErrorf(err, "site %s: wp-config.php does not say everything the database connection needs:\n%s", entry.Name, strings.Join(lines, "\n"))
}

// databaseError says why the database login failed and which flag changes
// the setting to check.
func databaseError(entry *sitevault.Site, err error) error {
	switch {
	case errors.Is(err, site.ErrDBUnreachable):
		return &userError{msg: fmt.Sprintf("site %s: %v; pass the right one with --db-host", entry.Name, err), err: errors.Join(errUnreachable, err)}
	case errors.Is(err, site.ErrDBLogin):
		return userErrorf(err, "site %s: %v, or pass --db-user and --db-password-file", entry.Name, err)
	case errors.Is(err, site.ErrDBName):
		return userErrorf(err, "site %s: %v, or pass --db-name", entry.Name, err)
	}
	return userErrorf(err, "site %s: %v", entry.Name, err)
}

// checkError turns a failed registration check into the message of the
// step that failed, with the flags that fix it.
func checkError(entry *sitevault.Site, err error) error {
	var ce *site.CheckError
	if !errors.As(err, &ce) {
		return err
	}
	switch ce.Step {
	case site.StepHostKey:
		var ue *userError
		if errors.As(ce.Err, &ue) {
			return ue // acceptHostKey's answer
		}
		return connectError(entry, ce.Err)
	case site.StepConnect:
		return connectError(entry, ce.Err)
	case site.StepFiles:
		return inspectError(entry, ce.Err)
	case site.StepConfig:
		return settingsError(entry, ce.Values, ce.Err)
	case site.StepDatabase:
		return databaseError(entry, ce.Err)
	}
	return err
}

// checkSite runs the registration check (site.Check): an unknown host key
// is shown and accepted (--yes, or the user's answer) and recorded in
// entry, and so are passwords the user typed, to be sealed.
func checkSite(ctx context.Context, g *globalOptions, entry *sitevault.Site, yes bool, stdout io.Writer) (connection.Connection, *site.CheckResult, error) {
	opts := site.CheckOptions{
		Env:    g.environ(),
		Logger: g.logger(),
		AcceptHostKey: func(unknown *ssh.UnknownHostKeyError) error {
			if err := acceptHostKey(g, unknown, yes); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "Recorded the SSH host key of %s: %s %s\n", unknown.Addr, unknown.Key.Type(), unknown.Fingerprint())
			return nil
		},
	}
	if p := g.prompt(); p.Interactive() {
		opts.PasswordPrompt, opts.PassphrasePrompt = sshPrompts(p)
	}
	conn, res, err := site.Check(ctx, entry, opts)
	if err != nil {
		return nil, nil, checkError(entry, err)
	}
	return conn, res, nil
}

func runSiteAdd(ctx context.Context, opts siteOptions, g *globalOptions, stdout io.Writer) error {
	if err := sitevault.ValidateName(opts.Name); err != nil {
		return userErrorf(errUsage, "%v", err)
	}
	if opts.Path == "" {
		return userErrorf(errUsage, "site add needs --path: the WordPress root (the folder holding wp-settings.php)")
	}
	if opts.Identity != "" && opts.SSH == "" {
		return userErrorf(errUsage, "--identity is for sites reached with --ssh")
	}
	cat, _, err := openCatalog(ctx, g)
	if err != nil {
		return err
	}
	defer cat.Close()
	if _, err := cat.Site(ctx, opts.Name); err == nil {
		return userErrorf(catalog.ErrSiteExists, "site %s already exists; change it with `sitevault site edit %s` or pick another name", opts.Name, opts.Name)
	} else if !errors.Is(err, catalog.ErrSiteNotFound) {
		return err
	}
	entry := sitevault.Site{Name: opts.Name, Kind: sitevault.Local}
	opts.Changed = nil
	return checkAndSave(ctx, g, &entry, opts, cat.AddSite, "added", stdout)
}

func runSiteEdit(ctx context.Context, opts siteOptions, g *globalOptions, stdout io.Writer) error {
	cat, _, err := openCatalog(ctx, g)
	if err != nil {
		return err
	}
	defer cat.Close()
	entry, err := cat.Site(ctx, opts.Name)
	if err != nil {
		return siteNotFound(ctx, cat, opts.Name, err)
	}
	return checkAndSave(ctx, g, &entry, opts, cat.UpdateSite, "changed", stdout)
}

// checkAndSave applies the flags to entry, checks that the site answers as
// configured (connection, files, database login) and only then saves it.
func checkAndSave(ctx context.Context, g *globalOptions, entry *sitevault.Site, opts siteOptions,
	save func(context.Context, sitevault.Site) (sitevault.Site, error), done string, stdout io.Writer) error {
	if err := applySiteFlags(entry, opts, g); err != nil {
		return err
	}
	if err := entry.Validate(); err != nil {
		return userErrorf(errUsage, "%v", err)
	}
	notes := stdout
	if opts.JSON {
		notes = g.errOut()
	}
	conn, check, err := checkSite(ctx, g, entry, opts.Yes, notes)
	if err != nil {
		return err
	}
	conn.Close()
	saved, err := save(ctx, *entry)
	if err != nil {
		return err
	}
	if opts.JSON {
		var cfg *config.Config
		if c, err := g.config(); err == nil {
			cfg = c
		}
		return writeJSON(stdout, newSiteSavedJSON(done, saved, cfg, check))
	}
	if !g.Quiet {
		fmt.Fprintf(stdout, "Site %s %s\n", saved.Name, done)
		printCheck(stdout, saved, check)
	}
	return nil
}

func printCheck(w io.Writer, s sitevault.Site, c *site.CheckResult) {
	wp := c.Inspection.WordPress
	version := wp.Version
	if version == "" {
		version = "version unknown"
	}
	kind := "single site"
	if wp.Multisite() {
		kind = "multisite"
	}
	where := "in the root"
	if wp.ConfigAbove {
		where = "in the folder above the root"
	}
	fmt.Fprintf(w, "  location:    %s (%s)\n", s.Location(), s.Kind)
	if s.Kind == sitevault.SSH {
		fmt.Fprintf(w, "  host key:    %s\n", s.SSH.HostKeyFingerprint)
	}
	fmt.Fprintf(w, "  WordPress:   %s, %s, wp-config.php %s, content in %s\n", version, kind, where, wp.ContentDir)
	if wp.ExternalContentDir != "" {
		fmt.Fprintf(w, "  WARNING:     WP_CONTENT_DIR (%s) lies outside the site root; its files are not backed up\n", wp.ExternalContentDir)
	}
	db := c.Inspection.Database
	fmt.Fprintf(w, "  database:    %q on %s:%s as %q, tables %s* — login OK\n", db.Name, c.DBAddr.Network, c.DBAddr.Address, db.User, db.TablePrefix)
}

func runSiteList(ctx context.Context, g *globalOptions, asJSON bool, stdout io.Writer) error {
	cat, cfg, err := openCatalog(ctx, g)
	if err != nil {
		return err
	}
	defer cat.Close()
	sites, err := cat.Sites(ctx)
	if err != nil {
		return err
	}
	if len(sites) == 0 && !asJSON && !g.JSON {
		if !g.Quiet {
			fmt.Fprintln(g.errOut(), "No sites yet; add one with `sitevault site add NAME --path DIR [--ssh USER@HOST]`.")
		}
		return nil
	}
	var s *session
	if len(sites) > 0 {
		if s, err = openRepository(ctx, g); err != nil {
			fmt.Fprintf(g.errOut(), "Note: backup columns from the catalog only (the repository: %v)\n", err)
			s = nil
		} else {
			defer s.Close()
		}
	}
	now := time.Now
	if g.now != nil {
		now = g.now
	}
	list, err := siteStatuses(ctx, cat, cfg, s, sites, now())
	if err != nil {
		return err
	}
	if asJSON || g.JSON {
		return writeJSON(stdout, list)
	}
	printStatuses(stdout, list, true)
	return nil
}

func runSiteShow(ctx context.Context, name string, g *globalOptions, asJSON bool, stdout io.Writer) error {
	cat, cfg, err := openCatalog(ctx, g)
	if err != nil {
		return err
	}
	defer cat.Close()
	s, err := cat.Site(ctx, name)
	if err != nil {
		return siteNotFound(ctx, cat, name, err)
	}
	j := newSiteJSON(s, cfg)
	if asJSON {
		return writeJSON(stdout, j)
	}
	s = cfg.ApplySite(s) // what backups use
	set := func(sec sitevault.Secret) string {
		if sec.IsSet() {
			return "set (sealed)"
		}
		return "not set"
	}
	orWP := func(v string) string {
		if v == "" {
			return "from wp-config.php"
		}
		return v
	}
	fmt.Fprintf(stdout, "name:          %s\n", s.Name)
	fmt.Fprintf(stdout, "connection:    %s\n", s.Kind)
	fmt.Fprintf(stdout, "path:          %s\n", s.Path)
	if s.Kind == sitevault.SSH {
		fmt.Fprintf(stdout, "ssh:           %s@%s\n", s.SSH.User, s.SSHAddress())
		identity := s.SSH.IdentityFile
		if identity == "" {
			identity = "none (password login)"
		}
		fmt.Fprintf(stdout, "identity file: %s\n", identity)
		fmt.Fprintf(stdout, "passphrase:    %s\n", set(s.SSH.Passphrase))
		fmt.Fprintf(stdout, "ssh password:  %s\n", set(s.SSH.Password))
		key := "none recorded"
		if s.SSH.HostKey != "" {
			key = s.SSH.HostKeyFingerprint + "  (" + strings.SplitN(s.SSH.HostKey, " ", 2)[0] + ")"
		}
		fmt.Fprintf(stdout, "host key:      %s\n", key)
	}
	fmt.Fprintf(stdout, "db host:       %s\n", orWP(s.DB.Host))
	fmt.Fprintf(stdout, "db name:       %s\n", orWP(s.DB.Name))
	fmt.Fprintf(stdout, "db user:       %s\n", orWP(s.DB.User))
	if s.DB.Password.IsSet() {
		fmt.Fprintf(stdout, "db password:   %s\n", set(s.DB.Password))
	} else {
		fmt.Fprintf(stdout, "db password:   from wp-config.php\n")
	}
	fmt.Fprintf(stdout, "table prefix:  %s\n", orWP(s.DB.TablePrefix))
	if s.LastDB != nil {
		fmt.Fprintf(stdout, "last db login: %s@%s, database %s\n", s.LastDB.User, s.LastDB.Host, s.LastDB.Name)
	}
	r := j.Retention
	fmt.Fprintf(stdout, "retention:     last %d, daily %d, weekly %d, monthly %d  (%s)\n", r.KeepLast, r.KeepDaily, r.KeepWeekly, r.KeepMonthly, j.RetentionFrom)
	if sc := j.Schedule; sc.Off {
		fmt.Fprintf(stdout, "schedule:      off  (%s)\n", j.ScheduleFrom)
	} else {
		fmt.Fprintf(stdout, "schedule:      daily, between %s and %s later, %s  (%s)\n", sc.Start, sc.Window, sc.TimeZone, j.ScheduleFrom)
	}
	if len(j.Excludes) > 0 {
		fmt.Fprintf(stdout, "excludes:      %s  (config file)\n", strings.Join(j.Excludes, ", "))
	}
	fmt.Fprintf(stdout, "added:         %s\n", s.Created.Local().Format(time.DateTime))
	fmt.Fprintf(stdout, "changed:       %s\n", s.Updated.Local().Format(time.DateTime))
	return nil
}

func runSiteRemove(ctx context.Context, name string, g *globalOptions, asJSON bool, stdout io.Writer) error {
	cat, _, err := openCatalog(ctx, g)
	if err != nil {
		return err
	}
	defer cat.Close()
	if err := cat.RemoveSite(ctx, name); err != nil {
		return siteNotFound(ctx, cat, name, err)
	}
	if asJSON {
		return writeJSON(stdout, siteRemoveJSON{Removed: name})
	}
	if !g.Quiet {
		fmt.Fprintf(stdout, "Site %s removed from the catalog; its restore points stay in the repository.\n", name)
	}
	return nil
}

// openSite loads a registered site, connects and inspects it.
func openSite(ctx context.Context, g *globalOptions, name string) (sitevault.Site, connection.Connection, *site.Inspection, error) {
	cat, _, err := openCatalog(ctx, g)
	if err != nil {
		return sitevault.Site{}, nil, nil, err
	}
	defer cat.Close()
	entry, err := cat.Site(ctx, name)
	if err != nil {
		return sitevault.Site{}, nil, nil, siteNotFound(ctx, cat, name, err)
	}
	conn, err := connectSite(ctx, g, &entry)
	if err != nil {
		return sitevault.Site{}, nil, nil, err
	}
	in, err := site.Inspect(ctx, conn, entry)
	if err != nil {
		conn.Close()
		return sitevault.Site{}, nil, nil, inspectError(&entry, err)
	}
	return entry, conn, in, nil
}

// quoteName prints a path as is unless it holds characters that would
// garble a listing (newlines, control bytes, invalid UTF-8).
func quoteName(p string) string {
	q := strconv.Quote(p)
	if q[1:len(q)-1] == p {
		return p
	}
	return q
}

func runSiteFiles(ctx context.Context, opts siteFilesOptions, g *globalOptions, stdout io.Writer) error {
	_, conn, in, err := openSite(ctx, g, opts.Name)
	if err != nil {
		return err
	}
	defer conn.Close()
	root, err := conn.FS(ctx)
	if err != nil {
		return err
	}
	defer root.Close()
	rules := in.WordPress.Rules(wordpress.HeadReader(ctx, root))
	var files, excluded int
	var bytes int64
	out := siteFilesJSON{Site: opts.Name, Files: []siteFileJSON{}, SkippedPaths: []archiver.Skip{}}
	err = wordpress.Explain(ctx, root, rules, func(d wordpress.Decision) error {
		switch {
		case opts.JSON && d.Taken && !d.Info.Mode.IsDir():
			out.Files = append(out.Files, siteFileJSON{Path: d.Path, Size: d.Info.Size, Item: d.Item})
			out.Bytes += d.Info.Size
			return nil
		case opts.JSON && !d.Taken:
			out.SkippedPaths = append(out.SkippedPaths, archiver.Skip{Path: d.Path, Rule: archiver.RuleOf(d.Reason), Reason: d.Reason})
			return nil
		case d.Taken && d.Info.Mode.IsDir():
			return nil
		case d.Taken:
			files++
			bytes += d.Info.Size
			if opts.Explain {
				_, err := fmt.Fprintf(stdout, "take  %s\n", quoteName(d.Path))
				return err
			}
			_, err := fmt.Fprintln(stdout, quoteName(d.Path))
			return err
		default:
			excluded++
			if !opts.Explain {
				return nil
			}
			name := quoteName(d.Path)
			if d.Info.Mode.IsDir() {
				name += "/"
			}
			_, err := fmt.Fprintf(stdout, "skip  %s  (%s)\n", name, d.Reason)
			return err
		}
	})
	if err != nil {
		return fmt.Errorf("site %s: %w", opts.Name, err)
	}
	if opts.JSON {
		return writeJSON(stdout, out)
	}
	if !g.Quiet {
		fmt.Fprintf(g.errOut(), "%d files (%s) would be backed up; %d paths excluded%s\n", files, humanize.IBytes(uint64(bytes)), excluded,
			map[bool]string{true: "", false: " (see --explain)"}[opts.Explain])
	}
	return nil
}

// runSiteTables lists the tables a backup would take (and, with --explain,
// those it would leave out and why), reaching the database as backup does.
func runSiteTables(ctx context.Context, opts siteFilesOptions, g *globalOptions, stdout io.Writer) error {
	entry, conn, in, err := openSite(ctx, g, opts.Name)
	if err != nil {
		return err
	}
	defer conn.Close()
	sel, err := backup.SelectTables(ctx, conn, entry, in)
	if err != nil {
		return jobError(fmt.Errorf("site %s: %w", opts.Name, err))
	}
	if opts.JSON {
		return writeJSON(stdout, siteTablesJSON{Site: opts.Name, Database: sel.Database, TablePrefix: sel.Prefix,
			Tables: emptyIfNil(sel.Tables), Views: emptyIfNil(sel.Views), SkippedTables: emptyIfNil(sel.Skipped), Warnings: emptyIfNil(sel.Warnings)})
	}
	for _, w := range sel.Warnings {
		fmt.Fprintf(g.errOut(), "warning: %s\n", w)
	}
	line := func(format string, args ...any) error {
		_, err := fmt.Fprintf(stdout, format, args...)
		return err
	}
	for _, t := range sel.Tables {
		if err := line(map[bool]string{true: "take  %s\n", false: "%s\n"}[opts.Explain], quoteName(t)); err != nil {
			return err
		}
	}
	for _, v := range sel.Views {
		if err := line(map[bool]string{true: "take  %s  (view)\n", false: "%s\n"}[opts.Explain], quoteName(v)); err != nil {
			return err
		}
	}
	if opts.Explain {
		for _, s := range sel.Skipped {
			if err := line("skip  %s  (%s)\n", quoteName(s.Table), s.Reason); err != nil {
				return err
			}
		}
	}
	if !g.Quiet {
		fmt.Fprintf(g.errOut(), "%d tables and %d views of database %s (prefix %q) would be backed up; %d tables left out%s\n",
			len(sel.Tables), len(sel.Views), sel.Database, sel.Prefix, len(sel.Skipped),
			map[bool]string{true: "", false: " (see --explain)"}[opts.Explain || len(sel.Skipped) == 0])
	}
	return nil
}

// exists reports whether path exists (an error other than "not there"
// counts as existing: the open that follows reports it).
func exists(path string) bool {
	_, err := os.Lstat(path)
	return !errors.Is(err, fs.ErrNotExist)
}
