package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"

	"github.com/sitevault/sitevault/internal/point"
	"github.com/sitevault/sitevault/internal/repository"
)

type snapshotsOptions struct {
	Site string
	JSON bool
}

func newSnapshotsCommand(g *globalOptions) *cobra.Command {
	var opts snapshotsOptions
	cmd := &cobra.Command{
		Use:   "snapshots [SITE]",
		Short: "List restore points, oldest first",
		Long: `List restore points, oldest first. The TRIGGER column says what each is:
a backup point's trigger (manual, daily, realtime), or "pre-restore (undo of
restore to ID)" for the state a restore replaced, or "imported archive" for a
download a restore --from-archive imported. latest and a day name backup
points only. With SITE, only that site's points (a name that is neither
registered nor in the repository is an error).`,
		Args: usageArgs(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := siteArg(&opts.Site, args); err != nil {
				return err
			}
			return runSnapshots(cmd.Context(), opts, g, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&opts.Site, "site", "", "only this site's restore points")
	deprecateSiteFlag(cmd)
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print JSON")
	return cmd
}

// snapshotJSON is a snapshot with its id, for --json.
type snapshotJSON struct {
	ID    string `json:"id"`
	Kind  string `json:"kind"`  // backup, pre-restore or import (see point.Kind)
	Label string `json:"label"` // the trigger, or e.g. "pre-restore (undo of restore to 1a2b3c4d)"
	*repository.Snapshot
}

func runSnapshots(ctx context.Context, opts snapshotsOptions, g *globalOptions, stdout io.Writer) error {
	s, err := openRepository(ctx, g)
	if err != nil {
		return err
	}
	defer s.Close()
	all, err := s.repo.Snapshots(ctx)
	if err != nil {
		return fmt.Errorf("list the restore points of %s: %w", s.where, err)
	}
	var list []*repository.Snapshot
	for _, sn := range all {
		if opts.Site == "" || sn.Site == opts.Site {
			list = append(list, sn)
		}
	}
	if opts.Site != "" && len(list) == 0 {
		if err := knownSite(ctx, g, s, opts.Site); err != nil {
			return err
		}
	}
	if opts.JSON || g.JSON {
		out := make([]snapshotJSON, 0, len(list))
		for _, sn := range list {
			out = append(out, snapshotJSON{ID: sn.ID.String(), Kind: point.KindOf(sn).String(), Label: point.Label(sn), Snapshot: sn})
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	if len(list) == 0 {
		if opts.Site != "" {
			fmt.Fprintf(stdout, "No restore points of site %q in %s.\n", opts.Site, s.where)
		} else {
			fmt.Fprintf(stdout, "No restore points in %s yet.\n", s.where)
		}
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTIME\tSITE\tTRIGGER\tFILES\tSIZE\tADDED")
	for _, sn := range list {
		files, size, added := "", "", ""
		if sm := sn.Summary; sm != nil {
			files = fmt.Sprint(sm.FilesNew + sm.FilesChanged + sm.FilesUnchanged)
			size = humanize.IBytes(uint64(sm.BytesTotal))
			added = humanize.IBytes(uint64(sm.BytesAddedSaved))
			if sm.Partial {
				files += " (partial)"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", sn.ID.Short(), sn.Time.Local().Format(time.DateTime),
			sn.Site, point.Label(sn), files, size, added)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s\n", plural(len(list), "restore point"))
	return nil
}
