package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"

	"github.com/sitevault/sitevault/internal/repository"
)

type checkOptions struct {
	ReadData bool
}

func newCheckCommand(g *globalOptions) *cobra.Command {
	var opts checkOptions
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Verify the repository; exits non-zero (15) if anything is damaged",
		Long: `Verify the repository's structure: every index file decrypts, every indexed
pack exists with the right size, and every restore point's trees and chunks
are indexed in a sound pack. With --read-data, also read every pack and
authenticate every chunk in it (this reads the whole repository).

Each problem is printed with the restore points it affects. Any problem makes
the command exit with code 15.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runCheck(cmd.Context(), opts, g, cmd.OutOrStdout())
		},
	}
	cmd.Flags().BoolVar(&opts.ReadData, "read-data", false, "read and authenticate every blob (reads the whole repository)")
	return cmd
}

func runCheck(ctx context.Context, opts checkOptions, g *globalOptions, stdout io.Writer) error {
	// Check loads the index itself and reports damaged index files
	s, err := openRepositoryWith(ctx, g, func(o *repository.Options) { o.NoIndex = true })
	if err != nil {
		return err
	}
	defer s.Close()
	what := "structure"
	if opts.ReadData {
		what = "structure and every blob"
	}
	if !g.Quiet {
		fmt.Fprintf(stdout, "Checking %s of %s\n", what, s.where)
	}
	start := time.Now()
	res, err := s.repo.Check(ctx, repository.CheckOptions{ReadData: opts.ReadData})
	if err != nil {
		return fmt.Errorf("check %s: %w", s.where, err)
	}
	if !g.Quiet {
		fmt.Fprintf(stdout, "  %d restore points, %d trees, %d index files, %d packs, %d blobs",
			res.Snapshots, res.Trees, res.IndexFiles, res.Packs, res.Blobs)
		if opts.ReadData {
			fmt.Fprintf(stdout, "; read %s", humanize.IBytes(uint64(res.BytesRead)))
		}
		fmt.Fprintf(stdout, " in %s\n", formatDuration(time.Since(start)))
		if res.OrphanPacks > 0 {
			fmt.Fprintf(stdout, "  %d packs are in no index (left by interrupted backups); `sitevault prune` indexes them and removes what no restore point uses, a grace period later\n", res.OrphanPacks)
		}
	}
	if res.OK() {
		if !g.Quiet {
			fmt.Fprintln(stdout, "No problems found.")
		}
		return nil
	}

	affected := map[repository.ID]bool{}
	fmt.Fprintf(stdout, "%d problems found:\n", len(res.Problems))
	for _, p := range res.Problems {
		fmt.Fprintf(stdout, "  - %s\n", p)
		for _, id := range p.Snapshots {
			affected[id] = true
		}
	}
	if len(affected) > 0 {
		ids := make([]string, 0, len(affected))
		for id := range affected {
			ids = append(ids, id.Short())
		}
		sort.Strings(ids)
		fmt.Fprintf(stdout, "Restore points that cannot be restored completely: %v\n", ids)
	}
	return userErrorf(repository.ErrDamaged,
		"check found %d problems in %s, affecting %d restore points (listed above). Restore the damaged files from a copy of the repository if you have one; otherwise `sitevault forget` the affected restore points and back up again",
		len(res.Problems), s.where, len(affected))
}
