package main

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/sitevault/sitevault/internal/config"
)

type configOptions struct {
	JSON bool
}

// configSettingJSON is one effective setting of `sitevault config show --json`.
type configSettingJSON struct {
	Key    string `json:"key"`
	Value  any    `json:"value"`
	Source string `json:"source"`         // default, file, env or flag
	Line   int    `json:"line,omitempty"` // in the config file, for source file
}

// configShowJSON is `sitevault config show --json`.
type configShowJSON struct {
	File     string              `json:"file"` // "" without a config file
	Settings []configSettingJSON `json:"settings"`
}

func newConfigCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Show or check the effective settings (defaults → config file → environment → flags)",
		Args:  usageArgs(cobra.NoArgs),
		RunE:  showHelp,
	}
	var opts configOptions
	var checkJSON bool
	show := &cobra.Command{
		Use:   "show",
		Short: "Print the effective settings and where each came from (default, file, env, flag); secrets masked",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runConfigShow(cmd.Context(), opts, g, cmd.OutOrStdout())
		},
	}
	show.Flags().BoolVar(&opts.JSON, "json", false, "print JSON (see the README)")
	check := &cobra.Command{
		Use:   "check",
		Short: "Check the config file: syntax, keys, values, and that every [sites.NAME] is a registered site",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runConfigCheck(cmd.Context(), g, checkJSON, cmd.OutOrStdout())
		},
	}
	check.Flags().BoolVar(&checkJSON, "json", false, `print {"file": PATH, "sites": N} when the file is valid; an error object (see the README) when not`)
	cmd.AddCommand(show, check)
	return cmd
}

// maskURL hides a password in a URL.
func maskURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
		return u.String()
	}
	return s
}

func configSettings(cfg *config.Config) configShowJSON {
	out := configShowJSON{Settings: []configSettingJSON{}}
	add := func(key string, v any, src config.Source, line int) {
		if src != config.SourceFile {
			line = 0
		}
		out.Settings = append(out.Settings, configSettingJSON{Key: key, Value: v, Source: string(src), Line: line})
	}
	f := cfg.File
	if f != nil {
		out.File = f.Path
	}
	add("home", cfg.Home, cfg.Sources["home"], 0)
	add("repository", maskURL(cfg.Repo), cfg.Sources["repository"], f.Line("repository"))
	pw := "key file " + cfg.KeyFile() + " (embedded repository) or a prompt"
	switch cfg.Sources["password"] {
	case config.SourceFlag:
		pw = "--password-file " + cfg.PasswordFile
	case config.SourceEnv:
		pw = "$" + config.EnvPassword + " (masked)"
	case config.SourceFile:
		pw = "password_file " + cfg.FilePasswordFile
	}
	add("password", pw, cfg.Sources["password"], f.Line("password_file"))
	add("catalog", orDefault(maskURL(cfg.Catalog), "SQLite in the data home"), cfg.Sources["catalog"], f.Line("catalog"))
	add("server", orDefault(cfg.Server, "none: commands work alone"), cfg.Sources["server"], f.Line("server"))
	add("token_file", cfg.TokenFile, cfg.Sources["token_file"], f.Line("token_file"))
	if f == nil {
		return out
	}
	site := func(prefix string, s config.SiteSettings) {
		if len(s.Exclude) > 0 {
			add(prefix+".exclude", s.Exclude, config.SourceFile, f.Line(prefix+".exclude"))
		}
		if r := s.Retention; r != nil {
			add(prefix+".retention", map[string]int{"keep_last": r.KeepLast, "keep_daily": r.KeepDaily, "keep_weekly": r.KeepWeekly, "keep_monthly": r.KeepMonthly},
				config.SourceFile, f.Line(prefix+".retention"))
		}
		if sc := s.Schedule; sc != nil {
			m := map[string]any{}
			if sc.Off != nil {
				m["off"] = *sc.Off
			}
			for k, v := range map[string]*string{"start": sc.Start, "window": sc.Window, "time_zone": sc.TimeZone} {
				if v != nil {
					m[k] = *v
				}
			}
			add(prefix+".schedule", m, config.SourceFile, f.Line(prefix+".schedule"))
		}
		if c := s.SSH; c != nil {
			add(prefix+".ssh", map[string]any{"user": c.User, "host": c.Host, "port": c.Port, "key_file": c.KeyFile}, config.SourceFile, f.Line(prefix+".ssh"))
		}
		if c := s.DB; c != nil {
			add(prefix+".db", map[string]any{"host": c.Host, "name": c.Name, "user": c.User}, config.SourceFile, f.Line(prefix+".db"))
		}
	}
	site("defaults", f.Defaults)
	names := make([]string, 0, len(f.Sites))
	for n := range f.Sites {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		site("sites."+n, f.Sites[n])
	}
	return out
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func runConfigShow(_ context.Context, opts configOptions, g *globalOptions, stdout io.Writer) error {
	cfg, err := g.settings()
	if err != nil {
		return err
	}
	out := configSettings(cfg)
	if opts.JSON || g.JSON {
		return writeJSON(stdout, out)
	}
	if out.File == "" {
		fmt.Fprintf(stdout, "No config file (--config, $%s or %s/%s).\n", config.EnvConfig, cfg.Home, config.FileName)
	} else {
		fmt.Fprintf(stdout, "Config file %s (%s).\n", out.File, cfg.Sources["config"])
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tVALUE\tFROM")
	for _, s := range out.Settings {
		from := s.Source
		if s.Line > 0 {
			from = fmt.Sprintf("file, line %d", s.Line)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", s.Key, showValue(s.Value), from)
	}
	return tw.Flush()
}

func showValue(v any) string {
	switch v := v.(type) {
	case string:
		if v == "" {
			return "-"
		}
		return v
	case []string:
		return strings.Join(v, ", ")
	case map[string]int:
		return fmt.Sprintf("keep_last %d, keep_daily %d, keep_weekly %d, keep_monthly %d", v["keep_last"], v["keep_daily"], v["keep_weekly"], v["keep_monthly"])
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var parts []string
		for _, k := range keys {
			if x := fmt.Sprint(v[k]); x != "" && x != "0" {
				parts = append(parts, k+" "+x)
			}
		}
		return strings.Join(parts, ", ")
	}
	return fmt.Sprint(v)
}

func runConfigCheck(ctx context.Context, g *globalOptions, asJSON bool, stdout io.Writer) error {
	cfg, err := g.settings()
	if err != nil {
		return err
	}
	if cfg.File == nil {
		return userErrorf(errUsage, "no config file to check (--config FILE, $%s or %s/%s)", config.EnvConfig, cfg.Home, config.FileName)
	}
	if len(cfg.File.Sites) > 0 {
		cat, _, err := openCatalog(ctx, g)
		if err != nil {
			return err
		}
		defer cat.Close()
		sites, err := cat.Sites(ctx)
		if err != nil {
			return err
		}
		known := map[string]bool{}
		var names []string
		for _, s := range sites {
			known[s.Name] = true
			names = append(names, s.Name)
		}
		for name := range cfg.File.Sites {
			if !known[name] {
				hint := "`sitevault site add " + name + "` registers it"
				if s := closestName(name, names); s != "" {
					hint = fmt.Sprintf("did you mean %s?", s)
				}
				return userErrorf(errUsage, "config file %s, line %d: [sites.%s]: no site %s is registered; %s", cfg.File.Path, cfg.File.Line("sites."+name), name, name, hint)
			}
		}
	}
	if asJSON {
		return writeJSON(stdout, struct {
			File  string `json:"file"`
			Sites int    `json:"sites"`
		}{cfg.File.Path, len(cfg.File.Sites)})
	}
	fmt.Fprintf(stdout, "Config file %s is valid (%d site sections).\n", cfg.File.Path, len(cfg.File.Sites))
	return nil
}
