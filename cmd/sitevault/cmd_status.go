package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"

	"github.com/sitevault/sitevault/internal/catalog"
	"github.com/sitevault/sitevault/internal/config"
	"github.com/sitevault/sitevault/internal/point"
	"github.com/sitevault/sitevault/internal/repository"
	"github.com/sitevault/sitevault/internal/sitevault"
)

type statusOptions struct {
	Sites  []string
	MaxAge time.Duration
	JSON   bool
}

func newStatusCommand(g *globalOptions) *cobra.Command {
	var opts statusOptions
	cmd := &cobra.Command{
		Use:   "status [SITE…] [--max-age 26h] [--json]",
		Short: "Show each site's last backup and last error; --max-age fails when one is too old",
		Long: `Show, for every registered site (or the sites named, globs allowed), its last
good backup (time, age, size, point), the result of its latest backup, and the
last error with since when backups fail. The service records each backup's
outcome in the catalog; a site backed up by hand only is read from its newest
backup point in the repository.

--max-age DURATION is for monitoring: exit code 14 when a site's last good
backup is older than DURATION (or it has none), 0 otherwise.`,
		Args: usageArgs(cobra.ArbitraryArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Sites = args
			return runStatus(cmd.Context(), opts, g, cmd.OutOrStdout())
		},
	}
	durationVar(cmd.Flags(), &opts.MaxAge, "max-age", 0, "exit with code 14 when a site's last good backup is older than this (e.g. 26h)")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print JSON (see the README)")
	return cmd
}

// siteStatusJSON is one site's status, the stable JSON of `status --json`
// and `site list --json`. Times are RFC 3339; absent ones are null.
type siteStatusJSON struct {
	Site     string `json:"site"`
	Kind     string `json:"kind"`
	Location string `json:"location"`
	// LastBackup is the last good backup (a saved point, maybe partial).
	LastBackup *time.Time `json:"last_backup"`
	AgeSeconds *float64   `json:"age_seconds"`
	LastPoint  string     `json:"last_point,omitempty"`
	Bytes      int64      `json:"bytes"` // the site's size in that backup
	// Result of the latest backup: ok, partial, failing (the latest
	// failed after the last good one) or none (never backed up).
	Result       string     `json:"result"`
	LastError    string     `json:"last_error,omitempty"`
	LastErrorAt  *time.Time `json:"last_error_at,omitempty"`
	FailingSince *time.Time `json:"failing_since,omitempty"`
	Failures     int        `json:"failures"`
	NextBackup   *time.Time `json:"next_backup,omitempty"`
	// Stale: older than --max-age (always false without it).
	Stale bool `json:"stale"`
}

// Results of a site's latest backup.
const (
	resultOK      = "ok"
	resultPartial = "partial"
	resultFailing = "failing"
	resultNone    = "none"
)

// siteStatuses joins the catalog's record of each site's backups with its
// newest backup point in the repository (s may be nil: catalog only).
func siteStatuses(ctx context.Context, cat *catalog.Catalog, cfg *config.Config, s *session, sites []sitevault.Site, now time.Time) ([]siteStatusJSON, error) {
	recorded, err := cat.Statuses(ctx)
	if err != nil {
		return nil, err
	}
	byName := map[string]*catalog.SiteStatus{}
	for _, st := range recorded {
		byName[st.Site] = st
	}
	newest := map[string]*repository.Snapshot{}
	if s != nil {
		all, err := point.List(ctx, s.repo, "")
		if err != nil {
			return nil, fmt.Errorf("%w (in %s)", err, s.where)
		}
		for _, sn := range all {
			if point.KindOf(sn) != point.KindBackup {
				continue
			}
			if cur := newest[sn.Site]; cur == nil || sn.Time.After(cur.Time) {
				newest[sn.Site] = sn
			}
		}
	}
	out := make([]siteStatusJSON, 0, len(sites))
	for _, site := range sites {
		site = cfg.ApplySite(site) // the connection the config file sets
		r := siteStatusJSON{Site: site.Name, Kind: string(site.Kind), Location: site.Location(), Result: resultNone}
		partial := false
		if st := byName[site.Name]; st != nil {
			r.LastBackup, r.LastPoint, r.Bytes = st.LastSuccess, st.LastPoint, st.LastBytes
			r.LastError, r.LastErrorAt, r.FailingSince, r.Failures, r.NextBackup = st.LastError, st.LastErrorAt, st.FailingSince, st.Failures, st.NextBackup
		}
		if sn := newest[site.Name]; sn != nil && (r.LastBackup == nil || sn.Time.After(*r.LastBackup)) {
			t := sn.Time
			r.LastBackup, r.LastPoint = &t, sn.ID.String()
			if sn.Summary != nil {
				r.Bytes, partial = sn.Summary.BytesTotal, sn.Summary.Partial
			}
		}
		if r.LastBackup != nil {
			age := now.Sub(*r.LastBackup).Seconds()
			r.AgeSeconds = &age
			r.Result = resultOK
			if partial {
				r.Result = resultPartial
			}
		}
		if r.LastErrorAt != nil && (r.LastBackup == nil || r.LastErrorAt.After(*r.LastBackup)) {
			r.Result = resultFailing
		}
		out = append(out, r)
	}
	return out, nil
}

// markStale sets Stale on the sites whose last good backup is older than
// maxAge (or missing) and returns their names.
func markStale(list []siteStatusJSON, maxAge time.Duration) []string {
	if maxAge <= 0 {
		return nil
	}
	var stale []string
	for i := range list {
		if list[i].AgeSeconds == nil || *list[i].AgeSeconds > maxAge.Seconds() {
			list[i].Stale = true
			stale = append(stale, list[i].Site)
		}
	}
	return stale
}

func runStatus(ctx context.Context, opts statusOptions, g *globalOptions, stdout io.Writer) error {
	if opts.MaxAge < 0 {
		return userErrorf(errUsage, "--max-age must be positive, e.g. 26h")
	}
	cat, cfg, err := openCatalog(ctx, g)
	if err != nil {
		return err
	}
	defer cat.Close()
	all, err := cat.Sites(ctx)
	if err != nil {
		return err
	}
	sites, err := matchSites(all, opts.Sites)
	if err != nil {
		return err
	}
	s, err := openRepository(ctx, g)
	if err != nil {
		return err
	}
	defer s.Close()
	now := time.Now
	if g.now != nil {
		now = g.now
	}
	list, err := siteStatuses(ctx, cat, cfg, s, sites, now())
	if err != nil {
		return err
	}
	stale := markStale(list, opts.MaxAge)
	if opts.JSON || g.JSON {
		if err := writeJSON(stdout, list); err != nil {
			return err
		}
	} else if !g.Quiet {
		if len(list) == 0 {
			fmt.Fprintln(g.errOut(), "No sites yet; add one with `sitevault site add NAME --path DIR [--ssh USER@HOST]`.")
		} else {
			printStatuses(stdout, list, false)
		}
	}
	if len(stale) > 0 {
		return userErrorf(errStale, "%d of %d sites have no good backup newer than %s: %s; `sitevault backup SITE` makes one",
			len(stale), len(list), opts.MaxAge, strings.Join(stale, ", "))
	}
	return nil
}

// printStatuses prints the status table (with the connection columns of
// site list when withLocation).
func printStatuses(w io.Writer, list []siteStatusJSON, withLocation bool) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	head := "SITE\tLAST BACKUP\tAGE\tRESULT\tSIZE\tLAST ERROR"
	if withLocation {
		head = "NAME\tKIND\tLOCATION\tLAST BACKUP\tAGE\tRESULT\tSIZE\tLAST ERROR"
	}
	fmt.Fprintln(tw, head)
	for _, r := range list {
		last, age, size := "never", "-", "-"
		if r.LastBackup != nil {
			last = r.LastBackup.Local().Format(time.DateTime)
			age = formatAge(time.Duration(*r.AgeSeconds * float64(time.Second)))
			size = humanize.IBytes(uint64(r.Bytes))
		}
		result := r.Result
		if r.Stale {
			result += " (stale)"
		}
		lastErr := "-"
		if r.LastError != "" {
			lastErr = oneLine(r.LastError)
			if r.FailingSince != nil {
				lastErr += " (failing since " + r.FailingSince.Local().Format(time.DateTime) + ")"
			} else if r.LastErrorAt != nil {
				lastErr += " (at " + r.LastErrorAt.Local().Format(time.DateTime) + ")"
			}
		}
		if withLocation {
			fmt.Fprintf(tw, "%s\t%s\t%s\t", r.Site, r.Kind, r.Location)
		} else {
			fmt.Fprintf(tw, "%s\t", r.Site)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", last, age, result, size, lastErr)
	}
	tw.Flush()
}

// formatAge says an age coarsely: "40 s", "12 min", "5 h", "3 d 4 h".
func formatAge(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%d s", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h %d min", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%d d %d h", int(d.Hours())/24, int(d.Hours())%24)
}

// oneLine shortens an error for a table cell.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > 80 {
		s = string(r[:79]) + "…"
	}
	return s
}
