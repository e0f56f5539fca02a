package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"

	"github.com/sitevault/sitevault/internal/memlimit"
	"github.com/sitevault/sitevault/internal/repository"
)

type pruneOptions struct {
	JSON      bool
	DryRun    bool
	Grace     time.Duration
	MaxUnused float64
}

func newPruneCommand(g *globalOptions) *cobra.Command {
	opts := pruneOptions{Grace: repository.DefaultGrace}
	var yes bool
	cmd := &cobra.Command{
		Use:   "prune",
		Short: "Free the space of data no restore point uses any more",
		Long: `Remove data that no restore point references (after ` + "`sitevault forget`" + `), in two
phases: a run marks newly unused data, and a later run, at least --grace
after, deletes it. So data a running or interrupted backup may still use is
never deleted, and backups can run while prune does. Packs that are mostly
garbage are rewritten without it, and the index is compacted.

Run it regularly (for instance daily, after forget): each run completes what
the previous one marked. Only one prune may run at a time on a repository.
It asks first on a terminal; without one it needs --yes (a --dry-run needs
neither).`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := confirmDestructive(g, yes, opts.DryRun, "Delete the data no restore point uses?"); err != nil {
				return err
			}
			return runPrune(cmd.Context(), opts, g, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&opts.DryRun, "dry-run", "n", false, "only show what would be done")
	durationVar(f, &opts.Grace, "grace", opts.Grace, "time between marking data unused and deleting it; must exceed the longest backup (at least 1h)")
	f.Float64Var(&opts.MaxUnused, "max-unused", 0.2, "rewrite packs with more than this fraction of garbage")
	f.BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation (needed without a terminal)")
	f.BoolVar(&opts.JSON, "json", false, "print the result as JSON (see the README)")
	return cmd
}

func runPrune(ctx context.Context, opts pruneOptions, g *globalOptions, stdout io.Writer) error {
	if opts.Grace < repository.MinGrace || opts.MaxUnused < 0 || opts.MaxUnused > 1 {
		return userErrorf(errUsage, "--grace must be at least %s (and longer than the longest backup) and --max-unused between 0 and 1", repository.MinGrace)
	}
	s, err := openRepository(ctx, g)
	if err != nil {
		return err
	}
	memlimit.Lift()
	defer s.Close()
	start := time.Now()
	res, err := s.repo.Prune(ctx, repository.PruneOptions{Grace: opts.Grace, MaxUnused: opts.MaxUnused, DryRun: opts.DryRun})
	if err != nil {
		return fmt.Errorf("prune %s: %w", s.where, err)
	}
	if opts.JSON {
		return writeJSON(stdout, pruneJSON{
			DryRun: opts.DryRun, GraceSeconds: opts.Grace.Seconds(), BlobsUsed: res.BlobsUsed, BlobsMarkedUnused: res.BlobsTombstoned,
			BlobsUsedAgain: res.BlobsRevived, BlobsRemoved: res.BlobsRemoved, PacksDeleted: res.PacksDeleted, PacksRewritten: res.PacksRepacked,
			BytesRewritten: res.BytesRepacked, BytesFreed: res.BytesFreed, OrphanPacksIndexed: res.OrphansIndexed,
			MissingPacks: res.MissingPacks, TempFilesRemoved: res.TempFilesRemoved, Duration: time.Since(start).Seconds(),
		})
	}
	if g.Quiet {
		return nil
	}
	verb := func(done, would string) string {
		if opts.DryRun {
			return would
		}
		return done
	}
	fmt.Fprintf(stdout, "Pruned %s in %s%s\n", s.where, formatDuration(time.Since(start)), verb("", " (dry run: nothing changed)"))
	fmt.Fprintf(stdout, "  blobs in use:        %d\n", res.BlobsUsed)
	fmt.Fprintf(stdout, "  %-20s %d (deleted by a run at least %s from now)\n", verb("newly unused:", "would mark unused:"), res.BlobsTombstoned, shortDuration(opts.Grace))
	if res.BlobsRevived > 0 {
		fmt.Fprintf(stdout, "  used again:          %d (unmarked)\n", res.BlobsRevived)
	}
	fmt.Fprintf(stdout, "  %-20s %d blobs; %d packs deleted, %d rewritten (%s copied)\n", verb("removed:", "would remove:"),
		res.BlobsRemoved, res.PacksDeleted, res.PacksRepacked, humanize.IBytes(uint64(res.BytesRepacked)))
	if res.OrphansIndexed > 0 {
		fmt.Fprintf(stdout, "  left by interrupted backups: %d packs indexed for collection\n", res.OrphansIndexed)
	}
	if res.MissingPacks > 0 {
		fmt.Fprintf(stdout, "  missing from the backend: %d packs dropped from the index; run `sitevault check` to see which restore points lost data\n", res.MissingPacks)
	}
	if res.TempFilesRemoved > 0 {
		fmt.Fprintf(stdout, "  temporary files left by interrupted uploads: %d removed\n", res.TempFilesRemoved)
	}
	fmt.Fprintf(stdout, "  %-20s %s\n", verb("space freed:", "would free:"), humanize.IBytes(uint64(res.BytesFreed)))
	return nil
}

// pruneJSON is the stable JSON of `sitevault prune --json`; with dry_run
// the counts say what a run would do.
type pruneJSON struct {
	DryRun             bool    `json:"dry_run"`
	GraceSeconds       float64 `json:"grace_seconds"`
	BlobsUsed          int     `json:"blobs_used"`
	BlobsMarkedUnused  int     `json:"blobs_marked_unused"`
	BlobsUsedAgain     int     `json:"blobs_used_again"`
	BlobsRemoved       int     `json:"blobs_removed"`
	PacksDeleted       int     `json:"packs_deleted"`
	PacksRewritten     int     `json:"packs_rewritten"`
	BytesRewritten     int64   `json:"bytes_rewritten"`
	BytesFreed         int64   `json:"bytes_freed"`
	OrphanPacksIndexed int     `json:"orphan_packs_indexed"`
	MissingPacks       int     `json:"missing_packs"`
	TempFilesRemoved   int     `json:"temp_files_removed"`
	Duration           float64 `json:"duration_seconds"`
}
