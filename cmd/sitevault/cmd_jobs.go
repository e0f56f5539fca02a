package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/sitevault/sitevault/internal/catalog"
	"github.com/sitevault/sitevault/internal/sitevault"
)

type jobsOptions struct {
	Site  string
	State string
	Kind  string
	Limit int
	JSON  bool
}

func newJobsCommand(g *globalOptions) *cobra.Command {
	var opts jobsOptions
	cmd := &cobra.Command{
		Use:   "jobs",
		Short: "List the service's jobs: queued, running and their history",
		Long: `Jobs lists the jobs of the service (sitevault serve), newest first, from
the catalog: queued and running jobs with their progress, and the history
of ended ones with their errors. "jobs show ID" prints one job as JSON;
"jobs cancel ID" cancels a queued job or asks the worker of a running one
to stop it.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runJobs(cmd.Context(), opts, g, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Site, "site", "", "only the jobs of this site")
	f.StringVar(&opts.State, "state", "", "only jobs in this state (queued, running, succeeded, failed, cancelled)")
	f.StringVar(&opts.Kind, "kind", "", "only jobs of this kind (backup, restore, undo, download, check, prune)")
	f.IntVar(&opts.Limit, "limit", 50, "at most this many jobs")
	f.BoolVar(&opts.JSON, "json", false, "print the jobs as JSON")
	show := &cobra.Command{
		Use:   "show ID",
		Short: "Print one job as JSON",
		Args:  usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runJobOne(cmd.Context(), args[0], false, g, cmd.OutOrStdout())
		},
	}
	cancel := &cobra.Command{
		Use:   "cancel ID",
		Short: "Cancel a queued job, or stop a running one at its next safe point",
		Args:  usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runJobOne(cmd.Context(), args[0], true, g, cmd.OutOrStdout())
		},
	}
	// show and cancel print JSON anyway; --json makes their errors JSON too.
	show.Flags().Bool("json", false, "print errors as JSON too (the job is JSON anyway)")
	cancel.Flags().Bool("json", false, "print errors as JSON too (the job is JSON anyway)")
	cmd.AddCommand(show, cancel)
	return cmd
}

func runJobs(ctx context.Context, opts jobsOptions, g *globalOptions, stdout io.Writer) error {
	if c, err := g.remote(); err != nil || c != nil {
		if err != nil {
			return err
		}
		return runJobsRemote(ctx, c, opts, g, stdout)
	}
	cat, _, err := openCatalog(ctx, g)
	if err != nil {
		return err
	}
	defer cat.Close()
	f := catalog.JobFilter{Site: opts.Site, Kind: sitevault.JobKind(opts.Kind), Limit: opts.Limit}
	if opts.State != "" {
		f.States = []sitevault.JobState{sitevault.JobState(opts.State)}
	}
	list, err := cat.Jobs(ctx, f)
	if err != nil {
		return err
	}
	return printJobs(stdout, opts.JSON, list)
}

// printJobs prints jobs as a table, or as JSON.
func printJobs(stdout io.Writer, asJSON bool, list []*sitevault.Job) error {
	if asJSON {
		if list == nil {
			list = []*sitevault.Job{}
		}
		return json.NewEncoder(stdout).Encode(map[string]any{"jobs": list})
	}
	if len(list) == 0 {
		fmt.Fprintln(stdout, "No jobs.")
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tKIND\tSITE\tSTATE\tCREATED\tTOOK\tDETAIL")
	for _, j := range list {
		took := ""
		if j.Started != nil && j.Finished != nil {
			took = formatDuration(j.Finished.Sub(*j.Started))
		}
		detail := j.Error
		if j.State == sitevault.JobRunning {
			detail = fmt.Sprintf("%.0f%% %s %s", j.Progress.Percent, j.Progress.Phase, j.Progress.Current)
		}
		if len(detail) > 80 {
			detail = detail[:77] + "..."
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", j.ID, j.Kind, j.Site, j.State, j.Created.Local().Format(time.DateTime), took, detail)
	}
	return tw.Flush()
}

func runJobOne(ctx context.Context, arg string, cancel bool, g *globalOptions, stdout io.Writer) error {
	id, err := strconv.ParseInt(arg, 10, 64)
	if err != nil {
		return userErrorf(errUsage, "job id %q: a number, as `sitevault jobs` lists them", arg)
	}
	if c, err := g.remote(); err != nil || c != nil {
		if err != nil {
			return err
		}
		return runJobOneRemote(ctx, c, id, cancel, stdout)
	}
	cat, _, err := openCatalog(ctx, g)
	if err != nil {
		return err
	}
	defer cat.Close()
	var j *sitevault.Job
	if cancel {
		j, err = cat.CancelJob(ctx, id)
	} else {
		j, err = cat.Job(ctx, id)
	}
	if err != nil {
		return userErrorf(err, "%v; `sitevault jobs` lists the jobs", err)
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(j)
}
