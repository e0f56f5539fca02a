package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/sitevault/sitevault/internal/catalog"
	"github.com/sitevault/sitevault/internal/failure"
	"github.com/sitevault/sitevault/internal/point"
	"github.com/sitevault/sitevault/internal/repository"
	"github.com/sitevault/sitevault/internal/sitevault"
)

type forgetOptions struct {
	Site   string
	All    bool
	Policy repository.Policy
	DryRun bool
	JSON   bool
}

// forgetJSON is one site's part of `sitevault forget --json` (a list, one
// per site).
type forgetJSON struct {
	Site    string            `json:"site"`
	Policy  string            `json:"policy"`
	DryRun  bool              `json:"dry_run"`
	Kept    []forgetPointJSON `json:"kept"`
	Removed []forgetPointJSON `json:"removed"` // with dry_run: would be removed
	Error   *failure.Report   `json:"error,omitempty"`
}

type forgetPointJSON struct {
	ID      string    `json:"id"`
	Time    time.Time `json:"time"`
	Trigger string    `json:"trigger"`
	Why     []string  `json:"why"`
}

func newForgetCommand(g *globalOptions) *cobra.Command {
	var opts forgetOptions
	var yes bool
	cmd := &cobra.Command{
		Use:   "forget SITE [--keep-… N] | forget --all",
		Short: "Remove a site's restore points that a retention policy does not keep",
		Long: `Apply a retention policy to one site's restore points and remove the others.
The policy is the --keep-… flags, or, without them, the site's own retention
(` + "`sitevault site show`" + `; the service applies it after each backup). --all
applies each registered site's policy (or the --keep-… flags) to every site.
SITE is a registered site or a name with restore points in the repository
(a folder's, a removed site's); any other name is an error.

The rules count backup points only (triggers manual, daily, realtime): each
rule keeps the newest backup point in each of its last N periods (each backup
point, day, ISO week, month); a backup point is kept if any rule keeps it.

A pre-restore point (the state a restore replaced) is not a backup: the rules
never count it. It is kept while it is the undo of the site's latest restore,
and for 7 days after it was taken; then forget removes it. An imported
archive (trigger archive), and the pre-restore point an undo restored, is
kept while the latest restore wrote it, and for 7 days after it was taken. The WHY column says what keeps or removes each point.

Forget removes only the restore points: ` + "`sitevault prune`" + ` frees the
space their data used. It asks first on a terminal; without one it needs
--yes (a --dry-run needs neither).`,
		Args: usageArgs(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := siteArg(&opts.Site, args); err != nil {
				return err
			}
			what := "Remove the restore points of " + opts.Site + " that its retention does not keep?"
			if opts.All {
				what = "Remove, for every site, the restore points its retention does not keep?"
			}
			if err := confirmDestructive(g, yes, opts.DryRun, what); err != nil {
				return err
			}
			return runForget(cmd.Context(), opts, g, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Site, "site", "", "the site whose restore points are thinned")
	deprecateSiteFlag(cmd)
	f.BoolVar(&opts.All, "all", false, "every registered site, each by its own retention policy (or the --keep-… flags)")
	f.IntVar(&opts.Policy.KeepLast, "keep-last", 0, "keep the N newest backup points")
	f.IntVar(&opts.Policy.KeepDaily, "keep-daily", 0, "keep the newest backup point of each of the last N days (pre-restore points are not counted)")
	f.IntVar(&opts.Policy.KeepWeekly, "keep-weekly", 0, "keep the newest backup point of each of the last N weeks")
	f.IntVar(&opts.Policy.KeepMonthly, "keep-monthly", 0, "keep the newest backup point of each of the last N months")
	f.BoolVarP(&opts.DryRun, "dry-run", "n", false, "only show what would be removed")
	f.BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation (needed without a terminal)")
	f.BoolVar(&opts.JSON, "json", false, "print JSON: one object per site (see the README)")
	return cmd
}

// retentionPolicy is a site's retention as the engine's policy.
func retentionPolicy(r sitevault.Retention) repository.Policy {
	return repository.Policy{KeepLast: r.KeepLast, KeepDaily: r.KeepDaily, KeepWeekly: r.KeepWeekly, KeepMonthly: r.KeepMonthly}
}

func runForget(ctx context.Context, opts forgetOptions, g *globalOptions, stdout io.Writer) error {
	switch {
	case opts.All && opts.Site != "":
		return userErrorf(errUsage, "forget takes SITE or --all, not both")
	case !opts.All && opts.Site == "":
		return userErrorf(errUsage, "forget needs SITE or --all (`sitevault snapshots` lists the sites)")
	}
	p := opts.Policy
	if p.KeepLast < 0 || p.KeepDaily < 0 || p.KeepWeekly < 0 || p.KeepMonthly < 0 {
		return userErrorf(errUsage, "--keep-… counts cannot be negative")
	}
	s, err := openRepository(ctx, g)
	if err != nil {
		return err
	}
	defer s.Close()
	if !opts.All {
		if err := knownSite(ctx, g, s, opts.Site); err != nil {
			return err
		}
	}
	// Each site's policy: the flags, else the catalog's.
	type job struct {
		site   string
		policy repository.Policy
	}
	var jobs []job
	if opts.All || p.Empty() {
		cat, cfg, err := openCatalog(ctx, g)
		if err != nil {
			return err
		}
		defer cat.Close()
		if opts.All {
			sites, err := cat.Sites(ctx)
			if err != nil {
				return err
			}
			if len(sites) == 0 {
				return userErrorf(catalog.ErrSiteNotFound, "forget --all: no sites are registered (`sitevault site add` adds one)")
			}
			for _, st := range sites {
				st = cfg.ApplySite(st) // the config file's retention wins
				pol := p
				if pol.Empty() {
					pol = retentionPolicy(st.RetentionOrDefault())
				}
				jobs = append(jobs, job{st.Name, pol})
			}
		} else {
			st, err := cat.Site(ctx, opts.Site)
			if errors.Is(err, catalog.ErrSiteNotFound) {
				return userErrorf(errUsage, "forget %s: the site is not registered, so it has no retention policy; give one with --keep-last, --keep-daily, --keep-weekly or --keep-monthly", opts.Site)
			}
			if err != nil {
				return err
			}
			st = cfg.ApplySite(st) // the config file's retention wins
			jobs = append(jobs, job{st.Name, retentionPolicy(st.RetentionOrDefault())})
		}
	} else {
		jobs = append(jobs, job{opts.Site, p})
	}
	var failed error
	text := stdout
	if opts.JSON {
		text = io.Discard
	}
	results := []forgetJSON{}
	for i, j := range jobs {
		if opts.All && !g.Quiet {
			if i > 0 {
				fmt.Fprintln(text)
			}
			fmt.Fprintf(text, "Site %s (%s):\n", j.site, policyString(j.policy))
		}
		res, err := forgetSite(ctx, s, j.site, j.policy, opts.DryRun, g, text)
		if err != nil {
			if !opts.All {
				return err
			}
			fmt.Fprintf(text, "%s: FAILED: %v\n", j.site, err)
			failed = fmt.Errorf("forget --all: %s and maybe others failed (listed above): %w", j.site, err)
			rep := failure.ReportOf(err, "")
			res.Error = &rep
		}
		results = append(results, res)
	}
	if opts.JSON {
		if err := writeJSON(stdout, results); err != nil {
			return err
		}
	}
	return failed
}

// policyString says a policy in flags: "--keep-last 10 --keep-daily 30".
func policyString(p repository.Policy) string {
	var parts []string
	for _, kv := range []struct {
		flag string
		n    int
	}{{"last", p.KeepLast}, {"daily", p.KeepDaily}, {"weekly", p.KeepWeekly}, {"monthly", p.KeepMonthly}} {
		if kv.n > 0 {
			parts = append(parts, fmt.Sprintf("--keep-%s %d", kv.flag, kv.n))
		}
	}
	if len(parts) == 0 {
		return "keep everything"
	}
	return strings.Join(parts, " ")
}

// forgetSite applies p to one site's points.
func forgetSite(ctx context.Context, s *session, site string, p repository.Policy, dryRun bool, g *globalOptions, stdout io.Writer) (forgetJSON, error) {
	res := forgetJSON{Site: site, Policy: policyString(p), DryRun: dryRun, Kept: []forgetPointJSON{}, Removed: []forgetPointJSON{}}
	if p.Empty() {
		fmt.Fprintf(stdout, "Site %q keeps every restore point (its retention policy is empty); nothing to do.\n", site)
		return res, nil
	}
	points, err := point.List(ctx, s.repo, site)
	if err != nil {
		return res, fmt.Errorf("%w (in %s)", err, s.where)
	}
	if len(points) == 0 {
		fmt.Fprintf(stdout, "Site %q has no restore points in %s; nothing to do.\n", site, s.where)
		return res, nil
	}
	now := time.Now
	if g.now != nil {
		now = g.now
	}
	keep, remove, reasons := point.Plan(points, p, now())
	for _, sn := range keep {
		res.Kept = append(res.Kept, forgetPointJSON{ID: sn.ID.String(), Time: sn.Time, Trigger: sn.Trigger, Why: emptyIfNil(reasons[sn.ID])})
	}
	for _, sn := range remove {
		res.Removed = append(res.Removed, forgetPointJSON{ID: sn.ID.String(), Time: sn.Time, Trigger: sn.Trigger, Why: emptyIfNil(reasons[sn.ID])})
	}

	if !g.Quiet {
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tTIME\tTRIGGER\t\tWHY")
		for _, sn := range keep {
			fmt.Fprintf(tw, "%s\t%s\t%s\tkeep\t%s\n", sn.ID.Short(), sn.Time.Local().Format(time.DateTime), sn.Trigger, strings.Join(reasons[sn.ID], ", "))
		}
		for _, sn := range remove {
			fmt.Fprintf(tw, "%s\t%s\t%s\tremove\t%s\n", sn.ID.Short(), sn.Time.Local().Format(time.DateTime), sn.Trigger, strings.Join(reasons[sn.ID], ", "))
		}
		tw.Flush()
	}
	if dryRun {
		fmt.Fprintf(stdout, "Dry run: would keep %d and remove %s of site %q.\n", len(keep), plural(len(remove), "restore point"), site)
		return res, nil
	}
	for i, sn := range remove {
		if err := s.repo.RemoveSnapshot(ctx, sn.ID); err != nil {
			res.Removed = res.Removed[:i]
			return res, fmt.Errorf("forget %s in %s (%d of %d removed): %w", sn.ID.Short(), s.where, i, len(remove), err)
		}
		g.logger().Info("snapshot removed", "id", sn.ID.String(), "site", sn.Site)
	}
	if !g.Quiet {
		fmt.Fprintf(stdout, "Kept %d and removed %s of site %q.", len(keep), plural(len(remove), "restore point"), site)
		if len(remove) > 0 {
			fmt.Fprint(stdout, " Run `sitevault prune` to free the space their data used.")
		}
		fmt.Fprintln(stdout)
	}
	return res, nil
}
