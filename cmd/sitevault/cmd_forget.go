package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/sitevault/sitevault/internal/point"
	"github.com/sitevault/sitevault/internal/repository"
)

type forgetOptions struct {
	Site   string
	Policy repository.Policy
	DryRun bool
}

func newForgetCommand(g *globalOptions) *cobra.Command {
	var opts forgetOptions
	cmd := &cobra.Command{
		Use:   "forget --site NAME --keep-… N",
		Short: "Remove a site's restore points that a retention policy does not keep",
		Long: `Apply a retention policy to one site's restore points and remove the others.
The rules count backup points only (triggers manual, daily, realtime): each
rule keeps the newest backup point in each of its last N periods (each backup
point, day, ISO week, month); a backup point is kept if any rule keeps it.

A pre-restore point (the state a restore replaced) is not a backup: the rules
never count it. It is kept while it is the undo of the site's latest restore,
and for 7 days after it was taken; then forget removes it. An imported
archive (trigger archive), and the pre-restore point an undo restored, is
kept while the latest restore wrote it, and for 7 days after it was taken. The WHY column says what keeps or removes each point.

Forget removes only the restore points: ` + "`sitevault prune`" + ` frees the
space their data used.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runForget(cmd.Context(), opts, g, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Site, "site", "", "the site whose restore points are thinned (required)")
	f.IntVar(&opts.Policy.KeepLast, "keep-last", 0, "keep the N newest backup points")
	f.IntVar(&opts.Policy.KeepDaily, "keep-daily", 0, "keep the newest backup point of each of the last N days (pre-restore points are not counted)")
	f.IntVar(&opts.Policy.KeepWeekly, "keep-weekly", 0, "keep the newest backup point of each of the last N weeks")
	f.IntVar(&opts.Policy.KeepMonthly, "keep-monthly", 0, "keep the newest backup point of each of the last N months")
	f.BoolVarP(&opts.DryRun, "dry-run", "n", false, "only show what would be removed")
	return cmd
}

func runForget(ctx context.Context, opts forgetOptions, g *globalOptions, stdout io.Writer) error {
	if opts.Site == "" {
		return userErrorf(errUsage, "forget needs --site NAME (`sitevault snapshots` lists the sites)")
	}
	p := opts.Policy
	if p.KeepLast < 0 || p.KeepDaily < 0 || p.KeepWeekly < 0 || p.KeepMonthly < 0 {
		return userErrorf(errUsage, "--keep-… counts cannot be negative")
	}
	if p.Empty() {
		return userErrorf(errUsage, "forget needs at least one of --keep-last, --keep-daily, --keep-weekly, --keep-monthly")
	}
	s, err := openRepository(ctx, g)
	if err != nil {
		return err
	}
	defer s.Close()
	site, err := point.List(ctx, s.repo, opts.Site)
	if err != nil {
		return fmt.Errorf("%w (in %s)", err, s.where)
	}
	if len(site) == 0 {
		fmt.Fprintf(stdout, "Site %q has no restore points in %s; nothing to do.\n", opts.Site, s.where)
		return nil
	}
	now := time.Now
	if g.now != nil {
		now = g.now
	}
	keep, remove, reasons := point.Plan(site, p, now())

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
	if opts.DryRun {
		fmt.Fprintf(stdout, "Dry run: would keep %d and remove %d restore points of site %q.\n", len(keep), len(remove), opts.Site)
		return nil
	}
	for i, sn := range remove {
		if err := s.repo.RemoveSnapshot(ctx, sn.ID); err != nil {
			return fmt.Errorf("forget %s in %s (%d of %d removed): %w", sn.ID.Short(), s.where, i, len(remove), err)
		}
		g.logger().Info("snapshot removed", "id", sn.ID.String(), "site", sn.Site)
	}
	if !g.Quiet {
		fmt.Fprintf(stdout, "Kept %d and removed %d restore points of site %q.", len(keep), len(remove), opts.Site)
		if len(remove) > 0 {
			fmt.Fprint(stdout, " Run `sitevault prune` to free the space their data used.")
		}
		fmt.Fprintln(stdout)
	}
	return nil
}
