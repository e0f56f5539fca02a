package main

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"time"

	"github.com/spf13/cobra"

	"github.com/sitevault/sitevault/internal/service"
)

type connectOptions struct {
	Name string
	URL  string
	JSON bool
}

// newSiteConnectCommand is `site connect NAME`: a pairing code for the
// site's connector plugin.
func newSiteConnectCommand(g *globalOptions) *cobra.Command {
	var opts connectOptions
	cmd := &cobra.Command{
		Use:   "connect SITE [--url SERVICE-URL]",
		Short: "Print a one-time pairing code for the site's sitevault-connector plugin",
		Long: `Connect prints a pairing code for the WordPress plugin sitevault-connector:
paste it on the plugin's screen (Tools → sitevault) or define it in the site's
wp-config.php as SITEVAULT_PAIRING_CODE. The plugin then reports what happens
on the site (the activity log) and the service backs the site up after each
burst of changes. The code works once, for one hour.

The code carries the URL the plugin reaches the service at: --url, or the
--server the command talks to.`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Name = args[0]
			return runSiteConnect(cmd.Context(), opts, g, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&opts.URL, "url", "", "the URL the site reaches the service at (default: --server)")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the code and its expiry as JSON (see the README)")
	return cmd
}

func runSiteConnect(ctx context.Context, opts connectOptions, g *globalOptions, stdout io.Writer) error {
	c, err := g.remote()
	if err != nil {
		return err
	}
	var code string
	var expires time.Time
	if c != nil {
		var ans struct {
			Code    string    `json:"code"`
			Expires time.Time `json:"expires"`
		}
		if err := c.Do(ctx, "POST", "/api/v1/sites/"+url.PathEscape(opts.Name)+"/connector", nil, &ans); err != nil {
			return remoteError(err)
		}
		code, expires = ans.Code, ans.Expires
	} else {
		if opts.URL == "" {
			return userErrorf(errUsage, "site connect needs the URL the site reaches the service at: --url https://… (or --server)")
		}
		if u, err := url.Parse(opts.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return userErrorf(errUsage, "--url %q: give http(s)://host[:port]", opts.URL)
		}
		cat, _, err := openCatalog(ctx, g)
		if err != nil {
			return err
		}
		defer cat.Close()
		code, expires, err = service.MakePairingCode(ctx, cat, opts.Name, opts.URL, time.Now())
		if err != nil {
			return siteNotFound(ctx, cat, opts.Name, err)
		}
	}
	if opts.JSON {
		return writeJSON(stdout, siteConnectJSON{Site: opts.Name, Code: code, Expires: expires})
	}
	if g.Quiet {
		fmt.Fprintln(stdout, code)
		return nil
	}
	fmt.Fprintf(stdout, "Pairing code for %s (valid once, until %s):\n\n    %s\n\n", opts.Name, expires.Local().Format(time.DateTime), code)
	fmt.Fprintf(stdout, "Paste it on the plugin's screen (Tools → sitevault), or add to wp-config.php:\n    define('SITEVAULT_PAIRING_CODE', '%s');\n", code)
	return nil
}
