package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

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
Each rule keeps the newest restore point in each of its last N periods (each
restore point, day, ISO week, month); a restore point is kept if any rule
keeps it. Forget removes only the restore points: ` + "`sitevault prune`" + ` frees the
space their data used.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runForget(cmd.Context(), opts, g, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Site, "site", "", "the site whose restore points are thinned (required)")
	f.IntVar(&opts.Policy.KeepLast, "keep-last", 0, "keep the N newest restore points")
	f.IntVar(&opts.Policy.KeepDaily, "keep-daily", 0, "keep the newest restore point of each of the last N days")
	f.IntVar(&opts.Policy.KeepWeekly, "keep-weekly", 0, "keep the newest restore point of each of the last N weeks")
	f.IntVar(&opts.Policy.KeepMonthly, "keep-monthly", 0, "keep the newest restore point of each of the last N months")
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
	all, err := s.repo.Snapshots(ctx)
	if err != nil {
		return fmt.Errorf("list the restore points of %s: %w", s.where, err)
	}
	var site []*repository.Snapshot
	for _, sn := range all {
		if sn.Site == opts.Site {
			site = append(site, sn)
		}
	}
	if len(site) == 0 {
		fmt.Fprintf(stdout, "Site %q has no restore points in %s; nothing to do.\n", opts.Site, s.where)
		return nil
	}
	keep, remove, reasons := repository.ApplyPolicy(site, p)

	if !g.Quiet {
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tTIME\t\tWHY")
		for _, sn := range keep {
			fmt.Fprintf(tw, "%s\t%s\tkeep\t%s\n", sn.ID.Short(), sn.Time.Local().Format(time.DateTime), strings.Join(reasons[sn.ID], ", "))
		}
		for _, sn := range remove {
			fmt.Fprintf(tw, "%s\t%s\tremove\t\n", sn.ID.Short(), sn.Time.Local().Format(time.DateTime))
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
