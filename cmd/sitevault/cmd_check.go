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
	JSON     bool
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
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the result as JSON (see the README); problems still exit with 15")
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
	text := stdout
	if opts.JSON {
		text = io.Discard
	}
	if !g.Quiet {
		fmt.Fprintf(text, "Checking %s of %s\n", what, s.where)
	}
	start := time.Now()
	res, err := s.repo.Check(ctx, repository.CheckOptions{ReadData: opts.ReadData})
	if err != nil {
		return fmt.Errorf("check %s: %w", s.where, err)
	}
	if opts.JSON {
		out := checkJSON{OK: res.OK(), ReadData: opts.ReadData, RestorePoints: res.Snapshots, Trees: res.Trees, IndexFiles: res.IndexFiles,
			Packs: res.Packs, Blobs: res.Blobs, BytesRead: res.BytesRead, OrphanPacks: res.OrphanPacks,
			Problems: []checkProblemJSON{}, AffectedPoints: []string{}, Duration: time.Since(start).Seconds()}
		affected := map[string]bool{}
		for _, p := range res.Problems {
			pj := checkProblemJSON{Problem: p.String(), Points: []string{}}
			for _, id := range p.Snapshots {
				pj.Points = append(pj.Points, id.String())
				affected[id.String()] = true
			}
			out.Problems = append(out.Problems, pj)
		}
		for id := range affected {
			out.AffectedPoints = append(out.AffectedPoints, id)
		}
		sort.Strings(out.AffectedPoints)
		if err := writeJSON(stdout, out); err != nil {
			return err
		}
		stdout = io.Discard
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
	if len(affected) == 0 {
		return userErrorf(repository.ErrDamaged,
			"check found %s in %s, affecting no restore point (the damaged data belongs to none). `sitevault prune` removes unused data; restore the damaged files from a copy of the repository if you have one",
			plural(len(res.Problems), "problem"), s.where)
	}
	return userErrorf(repository.ErrDamaged,
		"check found %s in %s, affecting %s (listed above). Restore the damaged files from a copy of the repository if you have one; otherwise `sitevault forget` the affected restore points and back up again",
		plural(len(res.Problems), "problem"), s.where, plural(len(affected), "restore point"))
}

// checkJSON is the stable JSON of `sitevault check --json`.
type checkJSON struct {
	OK             bool               `json:"ok"`
	ReadData       bool               `json:"read_data"`
	RestorePoints  int                `json:"restore_points"`
	Trees          int                `json:"trees"`
	IndexFiles     int                `json:"index_files"`
	Packs          int                `json:"packs"`
	Blobs          int                `json:"blobs"`
	BytesRead      int64              `json:"bytes_read"`
	OrphanPacks    int                `json:"orphan_packs"`
	Problems       []checkProblemJSON `json:"problems"`
	AffectedPoints []string           `json:"affected_points"`
	Duration       float64            `json:"duration_seconds"`
}

type checkProblemJSON struct {
	Problem string   `json:"problem"`
	Points  []string `json:"points"` // the restore points it affects
}
