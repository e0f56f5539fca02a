package main

import (
	"context"
	"io"

	"github.com/spf13/cobra"

	"github.com/sitevault/sitevault/internal/restore"
)

type undoOptions struct {
	Name   string
	Yes    bool
	NoWait bool
	JSON   bool
}

func newUndoCommand(g *globalOptions) *cobra.Command {
	var opts undoOptions
	cmd := &cobra.Command{
		Use:   "undo SITE [--yes]",
		Short: "Take back the last restore of a site (restores its pre-restore point)",
		Long: `Take back the last restore (or undo) of a site: restore the newest pre-restore
point over the same items, paths and tables, and remove the files that restore
created and nobody changed since, so the site is as it was before it. The
database is replaced completely, as by any restore. Undo saves the current
state first too, so an undo can itself be undone.

Without --yes it shows what will happen and asks; without a terminal it
refuses.`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Name = args[0]
			return runUndo(cmd.Context(), opts, g, cmd.OutOrStdout())
		},
	}
	cmd.Flags().BoolVarP(&opts.Yes, "yes", "y", false, "do not ask for confirmation")
	cmd.Flags().BoolVar(&opts.NoWait, "no-wait", false, "fail at once if another backup or restore of the site is running")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the result as JSON (as restore --json)")
	return cmd
}

func runUndo(ctx context.Context, opts undoOptions, g *globalOptions, stdout io.Writer) error {
	if c, err := g.remote(); err != nil || c != nil {
		if err != nil {
			return err
		}
		return runUndoRemote(ctx, c, opts.Name, opts.Yes, opts.JSON, g, stdout)
	}
	if !opts.Yes && !g.prompt().Interactive() {
		return userErrorf(errUsage, "undo changes the site: pass --yes to confirm it without a terminal")
	}
	j, err := openSiteJob(ctx, g, opts.Name)
	if err != nil {
		return err
	}
	defer j.Close()
	plan, err := restore.PlanUndo(ctx, j.s.repo, j.entry.Name)
	if err != nil {
		return jobError(err)
	}
	if !opts.Yes {
		showRestorePlan(g.errOut(), j.entry.Name, plan.Point, plan.Items, plan.Paths, plan.Tables, true, false, plan.Undone)
		if err := confirm(g, "Undo now? (yes/no): "); err != nil {
			return err
		}
	}
	progress := new(restore.Progress)
	bar := startProgress(g.progressTTY() && !opts.JSON, g.errOut(), restoreLine(progress))
	res, err := restore.Undo(ctx, j.deps, j.entry, restore.Options{NoWait: opts.NoWait, OnWait: g.onWait, Progress: progress})
	bar.Stop()
	return finishRestore(g, opts.JSON, stdout, j.entry.Name, "undo", res, err)
}
