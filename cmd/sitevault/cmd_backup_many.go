package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/sitevault/sitevault/internal/backup"
	"github.com/sitevault/sitevault/internal/sitevault"
)

// hasGlob reports whether a site argument is a pattern (path.Match syntax).
func hasGlob(s string) bool { return strings.ContainsAny(s, "*?[") }

// matchSites resolves names and globs to registered sites, in catalog
// order, each once. A name or glob that matches nothing is an error, with
// the closest name for a plain name.
func matchSites(sites []sitevault.Site, patterns []string) ([]sitevault.Site, error) {
	if len(patterns) == 0 {
		return sites, nil
	}
	names := make([]string, 0, len(sites))
	for _, s := range sites {
		names = append(names, s.Name)
	}
	picked := map[string]bool{}
	for _, p := range patterns {
		if _, err := path.Match(p, ""); err != nil {
			return nil, usageError(fmt.Errorf("site pattern %q: %v", p, err))
		}
		n := 0
		for _, s := range sites {
			if ok, _ := path.Match(p, s.Name); ok {
				picked[s.Name] = true
				n++
			}
		}
		if n == 0 {
			if hasGlob(p) {
				return nil, unknownSite(p, nil)
			}
			return nil, unknownSite(p, names)
		}
	}
	var out []sitevault.Site
	for _, s := range sites {
		if picked[s.Name] {
			out = append(out, s)
		}
	}
	return out, nil
}

// siteBackup is one site's outcome in `backup --all`; its JSON is stable
// (see the README).
type siteBackup struct {
	Site     string      `json:"site"`
	OK       bool        `json:"ok"` // a point was saved (maybe partial)
	ExitCode int         `json:"exit_code"`
	Error    string      `json:"error,omitempty"`
	Backup   *backupJSON `json:"backup,omitempty"`
	err      error
	res      *backup.Result
}

// line is the one-line summary of a site's backup.
func (b *siteBackup) line() string {
	if b.res == nil {
		return fmt.Sprintf("%s: FAILED: %v", b.Site, b.err)
	}
	j := b.Backup
	partial := ""
	if b.res.Partial {
		partial = fmt.Sprintf(" (partial: %d files could not be read)", len(b.res.Files.Errors))
	}
	tables := "no database"
	if b.res.Database != nil {
		tables = plural(j.TablesChanged, "table") + " changed"
	}
	return fmt.Sprintf("%s: saved %s%s, %s changed, %s, %s", b.Site, b.res.Snapshot.ID.Short(), partial,
		plural(j.FilesNew+j.FilesChanged, "file"), tables, formatSeconds(b.res.Duration))
}

// plural says "1 file", "3 files".
func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// formatSeconds says a duration as "12 s" or "3 min 4 s".
func formatSeconds(d time.Duration) string {
	s := int(d.Round(time.Second).Seconds())
	if s < 60 {
		return fmt.Sprintf("%d s", s)
	}
	return fmt.Sprintf("%d min %d s", s/60, s%60)
}

// worstCode is the exit code of several sites' codes: any failure
// outranks a partial backup (3); among failures, the highest code.
func worstCode(codes []int) int {
	rank := func(c int) int {
		switch c {
		case exitOK:
			return 0
		case exitPartial:
			return 1
		}
		return 2
	}
	worst := exitOK
	for _, c := range codes {
		if rank(c) > rank(worst) || (rank(c) == rank(worst) && c > worst) {
			worst = c
		}
	}
	return worst
}

// exitCodeError carries an exit code chosen from several outcomes.
type exitCodeError struct {
	msg  string
	code int
}

func (e *exitCodeError) Error() string { return e.msg }

func runBackupMany(ctx context.Context, opts backupOptions, g *globalOptions, stdout io.Writer) error {
	if c, err := g.remote(); err != nil || c != nil {
		if err != nil {
			return err
		}
		return userErrorf(errUsage, "backup of several sites runs here, not through --server; the service backs up every site on its schedule")
	}
	cat, cfg, err := openCatalog(ctx, g)
	if err != nil {
		return err
	}
	defer cat.Close()
	all, err := cat.Sites(ctx)
	if err != nil {
		return err
	}
	if len(all) == 0 {
		return userErrorf(errUsage, "no sites are registered; add one with `sitevault site add NAME --path DIR [--ssh USER@HOST]`")
	}
	sites, err := matchSites(all, opts.Sites)
	if err != nil {
		return err
	}
	s, err := openRepository(ctx, g)
	if err != nil {
		return err
	}
	defer s.Close()
	deps := jobDeps(g, cfg.Home, cat, s)

	results := make([]*siteBackup, len(sites))
	var mu sync.Mutex // one line at a time
	sem := make(chan struct{}, opts.Parallel)
	var wg sync.WaitGroup
	for i, entry := range sites {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				results[i] = &siteBackup{Site: entry.Name, err: ctx.Err(), ExitCode: exitCode(ctx.Err()), Error: ctx.Err().Error()}
				return
			}
			defer func() { <-sem }()
			res, err := backup.Run(ctx, deps, cfg.ApplySite(entry), backup.Options{
				Trigger: backup.TriggerManual, NoWait: opts.NoWait, Excludes: cfg.Excludes(entry.Name),
				OnWait: func(b *backup.BusyError) {
					if !g.Quiet {
						fmt.Fprintf(g.errOut(), "%s: waiting: %s…\n", entry.Name, b.Running())
					}
				},
			})
			r := &siteBackup{Site: entry.Name, res: res}
			if err != nil {
				r.err = jobError(err)
				r.res = nil
				r.Error = r.err.Error()
			} else {
				bj := newBackupJSON(res)
				r.OK, r.Backup = true, &bj
				if res.Partial {
					r.err = userErrorf(errPartial, "%d files could not be read", len(res.Files.Errors))
					r.Error = r.err.Error()
				}
			}
			r.ExitCode = exitCode(r.err)
			results[i] = r
			if !opts.JSON && !g.JSON && (!g.Quiet || r.err != nil) {
				mu.Lock()
				fmt.Fprintln(stdout, r.line())
				mu.Unlock()
			}
		}()
	}
	wg.Wait()

	codes := make([]int, len(results))
	var failed []string
	for i, r := range results {
		codes[i] = r.ExitCode
		if r.ExitCode != exitOK {
			failed = append(failed, r.Site)
		}
	}
	if opts.JSON || g.JSON {
		if err := writeJSON(stdout, results); err != nil {
			return err
		}
	}
	code := worstCode(codes)
	if code == exitOK {
		return nil
	}
	if errors.Is(ctx.Err(), context.Canceled) {
		return ctx.Err()
	}
	return &exitCodeError{code: code, msg: fmt.Sprintf("%d of %d sites not backed up in full: %s (see above)", len(failed), len(results), strings.Join(failed, ", "))}
}
