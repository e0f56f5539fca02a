package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/sitevault/sitevault/internal/apiclient"
	"github.com/sitevault/sitevault/internal/sitevault"
)

// With --server URL (or $SITEVAULT_SERVER) backup, restore, undo, download
// and jobs ask a running `sitevault serve` to do the work: the service
// runs the same library flows as the local commands, as jobs in its
// queue, and the command follows the job's progress. The API token comes
// from $SITEVAULT_TOKEN or --token-file, never from the command line.

const (
	envServer = "SITEVAULT_SERVER"
	envToken  = "SITEVAULT_TOKEN"
)

// remote returns the client of the service when one is named (nil when
// the command works alone).
func (g *globalOptions) remote() (*apiclient.Client, error) {
	cfg, err := g.settings() // --server, $SITEVAULT_SERVER, the config file
	if err != nil {
		return nil, err
	}
	server := cfg.Server
	if server == "" {
		return nil, nil
	}
	token := g.lookupEnv(envToken)
	if tokenFile := cfg.TokenFile; tokenFile != "" {
		fi, err := os.Stat(tokenFile)
		if err != nil {
			return nil, userErrorf(errUsage, "--token-file: %v", err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			return nil, userErrorf(errUsage, "--token-file %s can be read by other users (mode %o); chmod 600 it", tokenFile, fi.Mode().Perm())
		}
		b, err := os.ReadFile(tokenFile)
		if err != nil {
			return nil, userErrorf(errUsage, "--token-file: %v", err)
		}
		token = strings.TrimSpace(string(b))
	}
	if token == "" {
		return nil, userErrorf(errUsage, "--server needs an API token: create one in the service (POST /api/v1/tokens) and give it in $%s or --token-file FILE", envToken)
	}
	c, err := apiclient.New(server, token)
	if err != nil {
		return nil, userErrorf(errUsage, "%v", err)
	}
	return c, nil
}

// remoteError turns the service's problems into the CLI's exit codes.
func remoteError(err error) error {
	var p *apiclient.Problem
	if !errors.As(err, &p) {
		return &userError{msg: err.Error(), err: errors.Join(errUnreachable, err)}
	}
	switch p.Status {
	case 400, 422:
		return userErrorf(errUsage, "%v", p)
	case 401:
		return userErrorf(errUsage, "the service refused the token (%s): check $%s or --token-file", p.Detail, envToken)
	}
	return p
}

// jobFailed turns a failed job into an error with the job's code.
func jobFailed(j *sitevault.Job) error {
	msg := fmt.Sprintf("job %d (%s of %s) %s: %s", j.ID, j.Kind, j.Site, j.State, j.Error)
	switch j.ErrorCode {
	case "ssh_unreachable", "database_unreachable":
		return &userError{msg: msg, err: errUnreachable}
	case "busy":
		return &userError{msg: msg, err: sitevault.ErrBusy}
	}
	return errors.New(msg)
}

// followJob follows a job, drawing its progress on a terminal.
func followJob(ctx context.Context, g *globalOptions, c *apiclient.Client, j *sitevault.Job, quiet bool) (*sitevault.Job, error) {
	var last sitevault.Progress
	var state sitevault.JobState = j.State
	bar := startProgress(g.progressTTY() && !quiet, g.errOut(), func(el time.Duration) string {
		line := fmt.Sprintf("%s  job %d %s  %3.0f%%  %s", formatDuration(el), j.ID, state, last.Percent, last.Phase)
		if last.Bytes > 0 {
			line += "  " + humanize.IBytes(uint64(last.Bytes))
		}
		if last.Current != "" {
			line += "  " + last.Current
		}
		return line
	})
	end, err := c.Follow(ctx, j.ID, func(s sitevault.JobState, p sitevault.Progress) { state, last = s, p })
	bar.Stop()
	if err != nil {
		return nil, remoteError(err)
	}
	return end, nil
}

func printJobResult(stdout io.Writer, asJSON bool, j *sitevault.Job) error {
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(j)
	}
	return nil
}

func runBackupRemote(ctx context.Context, c *apiclient.Client, opts backupOptions, g *globalOptions, stdout io.Writer) error {
	j, err := c.Enqueue(ctx, "/api/v1/sites/"+url.PathEscape(opts.Name)+"/backups", nil)
	if err != nil {
		return remoteError(err)
	}
	end, err := followJob(ctx, g, c, j, opts.JSON || g.Quiet)
	if err != nil {
		return err
	}
	if err := printJobResult(stdout, opts.JSON, end); err != nil {
		return err
	}
	if end.State != sitevault.JobSucceeded {
		return jobFailed(end)
	}
	var res struct {
		Point          string `json:"point"`
		FilesNew       int    `json:"files_new"`
		FilesChanged   int    `json:"files_changed"`
		FilesUnchanged int    `json:"files_unchanged"`
		Tables         int    `json:"tables"`
		TablesChanged  int    `json:"tables_changed"`
		Partial        bool   `json:"partial"`
	}
	json.Unmarshal(end.Result, &res)
	if !opts.JSON && !g.Quiet {
		fmt.Fprintf(stdout, "Backup of %s saved as restore point %s by the service (job %d, attempt %d)\n", opts.Name, shortText(res.Point), end.ID, end.Attempt)
		fmt.Fprintf(stdout, "  files: %d new, %d changed, %d unchanged; tables: %d, %d changed\n",
			res.FilesNew, res.FilesChanged, res.FilesUnchanged, res.Tables, res.TablesChanged)
	}
	if res.Partial {
		return userErrorf(errPartial, "the backup was saved, but some files could not be read: `sitevault jobs show %d` lists them", end.ID)
	}
	return nil
}

func runRestoreRemote(ctx context.Context, c *apiclient.Client, opts restoreOptions, g *globalOptions, stdout io.Writer) error {
	if opts.FromArchive != "" {
		return userErrorf(errUsage, "--from-archive reads a file on this machine: run it without --server")
	}
	if opts.To == "" {
		return userErrorf(errUsage, "restore needs --to POINT|latest|YYYY-MM-DD")
	}
	if !opts.Yes {
		if !g.prompt().Interactive() {
			return userErrorf(errUsage, "a restore changes the site: pass --yes to confirm it without a terminal")
		}
		fmt.Fprintf(g.errOut(), "The service will restore %s to %s (%s); the site as it is now is saved first (undo with `sitevault undo %s`).\n",
			opts.Name, opts.To, itemsText(opts.Only), opts.Name)
		if err := confirm(g, "Restore now? (yes/no): "); err != nil {
			return err
		}
	}
	body := map[string]any{"point": opts.To, "items": opts.Only, "paths": opts.Paths, "tables": opts.Tables, "delete": opts.Delete}
	return runSiteJobRemote(ctx, c, g, stdout, opts.JSON, "/api/v1/sites/"+url.PathEscape(opts.Name)+"/restores", body, "Restore")
}

func itemsText(items []string) string {
	if len(items) == 0 {
		return "everything"
	}
	return strings.Join(items, ", ")
}

func runUndoRemote(ctx context.Context, c *apiclient.Client, name string, yes, asJSON bool, g *globalOptions, stdout io.Writer) error {
	if !yes {
		if !g.prompt().Interactive() {
			return userErrorf(errUsage, "undo changes the site: pass --yes to confirm it without a terminal")
		}
		if err := confirm(g, fmt.Sprintf("Undo the last restore of %s? (yes/no): ", name)); err != nil {
			return err
		}
	}
	return runSiteJobRemote(ctx, c, g, stdout, asJSON, "/api/v1/sites/"+url.PathEscape(name)+"/undo", nil, "Undo")
}

func runSiteJobRemote(ctx context.Context, c *apiclient.Client, g *globalOptions, stdout io.Writer, asJSON bool, path string, body any, what string) error {
	j, err := c.Enqueue(ctx, path, body)
	if err != nil {
		return remoteError(err)
	}
	end, err := followJob(ctx, g, c, j, asJSON || g.Quiet)
	if err != nil {
		return err
	}
	if err := printJobResult(stdout, asJSON, end); err != nil {
		return err
	}
	if end.State != sitevault.JobSucceeded {
		return jobFailed(end)
	}
	var res struct {
		Point        string   `json:"point"`
		PreRestore   string   `json:"pre_restore"`
		FilesWritten int      `json:"files_written"`
		Tables       int      `json:"tables"`
		Items        []string `json:"items"`
	}
	json.Unmarshal(end.Result, &res)
	if !asJSON && !g.Quiet {
		fmt.Fprintf(stdout, "%s of %s to %s done by the service (job %d): %s; %d files written, %d tables restored\n",
			what, end.Site, shortText(res.Point), end.ID, itemsText(res.Items), res.FilesWritten, res.Tables)
		if res.PreRestore != "" {
			fmt.Fprintf(stdout, "  the site as it was before is restore point %s (`sitevault undo %s` goes back)\n", shortText(res.PreRestore), end.Site)
		}
	}
	return nil
}

func runDownloadRemote(ctx context.Context, c *apiclient.Client, opts downloadOptions, g *globalOptions, stdout io.Writer) error {
	format := "tar.gz"
	if strings.HasSuffix(strings.ToLower(opts.Output), ".zip") {
		format = "zip"
	}
	out, err := filepath.Abs(opts.Output)
	if err != nil {
		return err
	}
	j, err := c.Enqueue(ctx, "/api/v1/sites/"+url.PathEscape(opts.Site)+"/downloads", map[string]string{"point": opts.To, "format": format})
	if err != nil {
		return remoteError(err)
	}
	end, err := followJob(ctx, g, c, j, g.Quiet)
	if err != nil {
		return err
	}
	if end.State != sitevault.JobSucceeded {
		return jobFailed(end)
	}
	var info struct {
		URL string `json:"url"`
	}
	if err := c.Do(ctx, "GET", fmt.Sprintf("/api/v1/downloads/%d", end.ID), nil, &info); err != nil {
		return remoteError(err)
	}
	partial := out + ".partial"
	f, err := os.OpenFile(partial, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("download to %s: %w", out, err)
	}
	n, err := c.Fetch(ctx, info.URL, f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(partial, out)
	}
	if err != nil {
		os.Remove(partial)
		return remoteError(err)
	}
	if !g.Quiet {
		fmt.Fprintf(stdout, "Downloaded restore point %s of site %q from the service to %s (%s)\n", opts.To, opts.Site, out, humanize.IBytes(uint64(n)))
	}
	return nil
}

func runJobsRemote(ctx context.Context, c *apiclient.Client, opts jobsOptions, g *globalOptions, stdout io.Writer) error {
	q := url.Values{}
	for k, v := range map[string]string{"site": opts.Site, "state": opts.State, "kind": opts.Kind} {
		if v != "" {
			q.Set(k, v)
		}
	}
	q.Set("limit", fmt.Sprint(opts.Limit))
	var list struct {
		Jobs []*sitevault.Job `json:"jobs"`
	}
	if err := c.Do(ctx, "GET", "/api/v1/jobs?"+q.Encode(), nil, &list); err != nil {
		return remoteError(err)
	}
	return printJobs(stdout, opts.JSON, list.Jobs)
}

func runJobOneRemote(ctx context.Context, c *apiclient.Client, id int64, cancel bool, stdout io.Writer) error {
	var j sitevault.Job
	var err error
	if cancel {
		err = c.Do(ctx, "POST", fmt.Sprintf("/api/v1/jobs/%d/cancel", id), nil, &j)
	} else {
		err = c.Do(ctx, "GET", fmt.Sprintf("/api/v1/jobs/%d", id), nil, &j)
	}
	if err != nil {
		return remoteError(err)
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(&j)
}

func shortText(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}
