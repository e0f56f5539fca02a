package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/sitevault/sitevault/internal/repository"
)

func newRepairCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "repair",
		Short: "Repair parts of a damaged repository",
		Args:  usageArgs(cobra.NoArgs),
		RunE:  showHelp,
	}
	cmd.AddCommand(newRepairIndexCommand(g))
	return cmd
}

func newRepairIndexCommand(g *globalOptions) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "index",
		Short: "Rebuild the index from the packs (when index files are lost or damaged)",
		Long: `Rebuild the repository's index from the headers of its packs, which list the
chunks they hold, and replace every index file with the result. Use it when
another command fails with "an index file is damaged", or index files were
lost: no data is lost, since the packs are the truth.

Marks that prune left on unused data are dropped, so the next prune marks it
again and deletes it one grace period later. A pack whose header is damaged
is reported and left alone. Backups may run meanwhile; prune may not.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRepairIndex(cmd.Context(), g, asJSON, cmd.OutOrStdout())
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON (see the README); damaged packs still exit with 15")
	return cmd
}

func runRepairIndex(ctx context.Context, g *globalOptions, asJSON bool, stdout io.Writer) error {
	s, err := openRepositoryWith(ctx, g, func(o *repository.Options) { o.NoIndex = true })
	if err != nil {
		return err
	}
	defer s.Close()
	start := time.Now()
	res, err := s.repo.RepairIndex(ctx)
	if err != nil {
		return fmt.Errorf("repair index of %s: %w", s.where, err)
	}
	if asJSON {
		out := repairIndexJSON{Packs: res.Packs, Blobs: res.Blobs, IndexFilesIn: res.IndexFilesIn, IndexFilesOut: res.IndexFilesOut,
			DamagedPacks: []string{}, Duration: time.Since(start).Seconds()}
		for _, id := range res.DamagedPacks {
			out.DamagedPacks = append(out.DamagedPacks, id.String())
		}
		if err := writeJSON(stdout, out); err != nil {
			return err
		}
	} else if !g.Quiet {
		fmt.Fprintf(stdout, "Rebuilt the index of %s in %s\n", s.where, formatDuration(time.Since(start)))
		fmt.Fprintf(stdout, "  %d packs, %d blobs; %d index files replaced by %d\n", res.Packs, res.Blobs, res.IndexFilesIn, res.IndexFilesOut)
	}
	if len(res.DamagedPacks) > 0 {
		for _, id := range res.DamagedPacks {
			fmt.Fprintf(g.errOut(), "  damaged pack (header unreadable, not indexed): data/%s\n", id)
		}
		return userErrorf(repository.ErrDamaged, "repair index: %d packs have a damaged header and their data is not indexed; run `sitevault check --read-data` to see which restore points are affected", len(res.DamagedPacks))
	}
	return nil
}
