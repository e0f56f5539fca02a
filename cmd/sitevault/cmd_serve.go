package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/spf13/cobra"

	"github.com/sitevault/sitevault/internal/service"
)

// Environment of `sitevault serve`.
const (
	envOwnerEmail    = "SITEVAULT_OWNER_EMAIL"
	envOwnerPassword = "SITEVAULT_OWNER_PASSWORD"
)

type serveOptions struct {
	Listen      string
	BaseURL     string
	Worker      string
	Concurrency int
	LogFormat   string
	CheckEvery  time.Duration
	PruneEvery  time.Duration
	Retention   time.Duration
	// Test seams: short timings for the process tests.
	SchedulerEvery time.Duration
	HeartbeatEvery time.Duration
	StaleAfter     time.Duration
	RetryBackoff   time.Duration
	QuietPeriod    time.Duration
}

func newServeCommand(g *globalOptions) *cobra.Command {
	var opts serveOptions
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the service: HTTP API, scheduled backups, jobs and alerts",
		Long: `Serve runs sitevault as a service: it backs every site up daily inside the
site's schedule window, runs the jobs the API queues (backups, restores,
undo, downloads, checks, prunes), mails alerts, and answers the HTTP API.

The catalog is SQLite in the data home by default. With --catalog
postgres://… (or $SITEVAULT_CATALOG) several serve processes, on several
machines, share the sites, the job queue and the schedule; each needs the
same repository and a copy of the data home's secret.key.

On the first start an owner account is created: $SITEVAULT_OWNER_EMAIL and
$SITEVAULT_OWNER_PASSWORD when set, otherwise owner@localhost with a random
password printed once. SIGTERM or Ctrl-C stops it gracefully: running jobs
get 20 seconds to finish, then stop at a safe point and are queued again.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runServe(cmd.Context(), opts, g, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Listen, "listen", "127.0.0.1:8570", "HTTP address to listen on")
	f.StringVar(&opts.BaseURL, "base-url", "", "the URL users reach the service at, for links in mails (default http://LISTEN)")
	f.StringVar(&opts.Worker, "worker", "", "this process's name in the job history (default host:pid)")
	f.IntVar(&opts.Concurrency, "concurrency", 2, "jobs this process runs at once")
	f.StringVar(&opts.LogFormat, "log-format", "text", "log format on stderr: text or json")
	durationVar(f, &opts.CheckEvery, "check-every", 7*24*time.Hour, "run `check --read-data` this often (0 or less: never)")
	durationVar(f, &opts.PruneEvery, "prune-every", 7*24*time.Hour, "run `prune` this often (0 or less: never)")
	durationVar(f, &opts.Retention, "job-history", 90*24*time.Hour, "keep ended jobs in the history this long")
	durationVar(f, &opts.QuietPeriod, "quiet-period", 30*time.Second, "back the rest of a burst of changes (reported by the connector plugin) up this long after its last change; a burst's first change is backed up at once")
	durationVar(f, &opts.SchedulerEvery, "scheduler-every", 15*time.Second, "how often due backups are looked for")
	durationVar(f, &opts.HeartbeatEvery, "heartbeat-every", 10*time.Second, "how often a running job's progress is saved")
	durationVar(f, &opts.StaleAfter, "stale-after", 45*time.Second, "a job without heartbeat this long lost its worker")
	durationVar(f, &opts.RetryBackoff, "retry-backoff", 0, "wait before retrying a failed backup (default: 1, 4, 16 … minutes)")
	for _, hidden := range []string{"scheduler-every", "heartbeat-every", "stale-after", "retry-backoff"} {
		f.MarkHidden(hidden)
	}
	return cmd
}

func runServe(ctx context.Context, opts serveOptions, g *globalOptions, stdout io.Writer) error {
	var handler slog.Handler
	switch opts.LogFormat {
	case "text":
		handler = slog.NewTextHandler(g.errOut(), &slog.HandlerOptions{Level: slog.LevelInfo})
	case "json":
		handler = slog.NewJSONHandler(g.errOut(), &slog.HandlerOptions{Level: slog.LevelInfo})
	default:
		return userErrorf(errUsage, "--log-format %s: text or json", opts.LogFormat)
	}
	log := slog.New(handler)
	if g.Verbose {
		log = g.logger()
	}
	cat, cfg, err := openCatalog(ctx, g)
	if err != nil {
		return err
	}
	defer cat.Close()
	created, password, err := service.EnsureOwner(ctx, cat, g.lookupEnv(envOwnerEmail), g.lookupEnv(envOwnerPassword))
	if err != nil {
		return fmt.Errorf("create the first owner: %w", err)
	}
	if created && password != "" {
		email := g.lookupEnv(envOwnerEmail)
		if email == "" {
			email = "owner@localhost"
		}
		fmt.Fprintf(stdout, "Created the owner account %s with the password:\n\n    %s\n\nIt is shown only this once: sign in and change it.\n", email, password)
	}
	s, err := openRepository(ctx, g)
	if err != nil {
		return err
	}
	defer s.Close()
	never := func(d time.Duration) time.Duration {
		if d <= 0 {
			return -1
		}
		return d
	}
	var backoff func(int) time.Duration
	if opts.RetryBackoff > 0 {
		backoff = func(int) time.Duration { return opts.RetryBackoff }
	}
	svc, err := service.New(ctx, service.Config{
		Catalog: cat, Repo: s.repo, Home: cfg.Home, Listen: opts.Listen, Worker: opts.Worker,
		Concurrency: opts.Concurrency, Logger: log, BaseURL: opts.BaseURL, JobRetention: opts.Retention,
		CheckEvery: never(opts.CheckEvery), PruneEvery: never(opts.PruneEvery), SchedulerEvery: opts.SchedulerEvery,
		HeartbeatEvery: opts.HeartbeatEvery, StaleAfter: opts.StaleAfter, RetryBackoff: backoff, QuietPeriod: opts.QuietPeriod,
		SiteSettings: cfg.ApplySite, Excludes: cfg.Excludes,
	})
	if err != nil {
		return err
	}
	// A signal ends Run cleanly: that is a normal stop, exit code 0.
	return svc.Run(ctx)
}
