package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sitevault/sitevault/internal/point"
	"github.com/sitevault/sitevault/internal/repository"
)

type pointsOptions struct {
	Name string
	Day  string
	JSON bool
}

func newPointsCommand(g *globalOptions) *cobra.Command {
	var opts pointsOptions
	cmd := &cobra.Command{
		Use:   "points SITE [--day YYYY-MM-DD] [--json]",
		Short: "List a site's restore points, newest first, grouped by day",
		Long: `List a site's restore points, newest first and grouped by day (local time),
each with its time, id, trigger and what changed since the point before it.
Any id (prefix), "latest" or a day can be passed to restore --to and
download --to.

"latest" and a day name the newest backup point (trigger manual, daily or
realtime) of the site or of that day. A pre-restore point, marked
"pre-restore (undo of restore to ID)", is the state a restore replaced: a
safety net, not a backup. It is reached by its id or by ` + "`sitevault undo`" + `,
never by "latest" or a day. So is an imported archive (trigger archive,
marked "imported archive"): it is what a restore --from-archive restored,
not a backup of the site.`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Name = args[0]
			return runPoints(cmd.Context(), opts, g, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&opts.Day, "day", "", "only the points of this day (YYYY-MM-DD, local time)")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print JSON (see the README)")
	return cmd
}

// pointJSON is the stable JSON of one point in `sitevault points --json`.
type pointJSON struct {
	ID            string    `json:"id"`
	Time          time.Time `json:"time"`
	Day           string    `json:"day"` // local time
	Trigger       string    `json:"trigger"`
	Kind          string    `json:"kind"`  // backup, pre-restore or import
	Label         string    `json:"label"` // e.g. "pre-restore (undo of restore to 1a2b3c4d)"
	Parent        string    `json:"parent,omitempty"`
	Partial       bool      `json:"partial"`
	FilesChanged  *int      `json:"files_changed"`  // null when unknown
	TablesChanged *int      `json:"tables_changed"` // null when unknown or no database
	Tables        *int      `json:"tables"`
	Database      bool      `json:"database"` // the point holds the database
	WPVersion     string    `json:"wp_version,omitempty"`
	BytesAdded    int64     `json:"bytes_added"`
	RestoreOf     string    `json:"restore_of,omitempty"`
	Items         []string  `json:"items,omitempty"`
	Changes       string    `json:"changes"` // the one-line summary
}

func metaInt(sn *repository.Snapshot, key string) *int {
	v, ok := sn.Meta[key]
	if !ok {
		return nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return nil
	}
	return &n
}

func newPointJSON(sn *repository.Snapshot) pointJSON {
	p := pointJSON{
		ID: sn.ID.String(), Time: sn.Time, Day: point.Day(sn, time.Local), Trigger: sn.Trigger,
		Kind: point.KindOf(sn).String(), Label: point.Label(sn),
		FilesChanged: metaInt(sn, point.MetaFilesChanged), TablesChanged: metaInt(sn, point.MetaTablesChanged),
		Tables: metaInt(sn, point.MetaTables), WPVersion: sn.Meta[point.MetaWPVersion],
		RestoreOf: sn.Meta[point.MetaRestoreOf],
	}
	p.Database = p.Tables != nil
	if sn.Parent != nil {
		p.Parent = sn.Parent.String()
	}
	if it := sn.Meta[point.MetaItems]; it != "" {
		p.Items = strings.Split(it, ",")
	}
	if sm := sn.Summary; sm != nil {
		p.Partial = sm.Partial
		p.BytesAdded = sm.BytesAddedSaved
		if p.FilesChanged == nil {
			n := sm.FilesNew + sm.FilesChanged
			p.FilesChanged = &n
		}
	}
	p.Changes = changes(p)
	return p
}

// changes is the one-line summary: "12 files, 3 tables".
func changes(p pointJSON) string {
	plural := func(n int, what string) string {
		if n == 1 {
			return "1 " + what
		}
		return fmt.Sprintf("%d %ss", n, what)
	}
	var parts []string
	if p.FilesChanged != nil {
		parts = append(parts, plural(*p.FilesChanged, "file"))
	}
	switch {
	case p.TablesChanged != nil:
		parts = append(parts, plural(*p.TablesChanged, "table"))
	case !p.Database:
		parts = append(parts, "no database")
	}
	s := strings.Join(parts, ", ")
	if p.Parent == "" {
		s = "first point: " + s
	}
	if p.Partial {
		s += " (partial)"
	}
	return s
}

func runPoints(ctx context.Context, opts pointsOptions, g *globalOptions, stdout io.Writer) error {
	var day time.Time
	if opts.Day != "" {
		d, err := point.ParseDay(opts.Day, time.Local)
		if err != nil {
			return userErrorf(errUsage, "--day %q: give a day as YYYY-MM-DD", opts.Day)
		}
		day = d
	}
	s, err := openRepository(ctx, g)
	if err != nil {
		return err
	}
	defer s.Close()
	points, err := point.List(ctx, s.repo, opts.Name)
	if err != nil {
		return err
	}
	if len(points) == 0 {
		if err := knownSite(ctx, g, s, opts.Name); err != nil {
			return err
		}
	}
	if !day.IsZero() {
		points = point.OnDay(points, day)
	}
	var list []pointJSON
	for _, sn := range points {
		list = append(list, newPointJSON(sn))
	}
	if opts.JSON || g.JSON {
		if list == nil {
			list = []pointJSON{}
		}
		return writeJSON(stdout, list)
	}
	if len(list) == 0 {
		what := "no restore points"
		if opts.Day != "" {
			what += " on " + opts.Day
		}
		fmt.Fprintf(stdout, "Site %s has %s in %s; make one with `sitevault backup %s`.\n", opts.Name, what, s.where, opts.Name)
		return nil
	}
	cur := ""
	for _, p := range list {
		if p.Day != cur {
			cur = p.Day
			fmt.Fprintln(stdout, p.Time.Local().Format("Monday 2006-01-02"))
		}
		note := ""
		switch p.Kind {
		case point.KindPreRestore.String():
			note = "  " + p.Label
			if len(p.Items) > 0 {
				note += ": " + strings.Join(p.Items, ",")
			}
			note += "; not a backup: reach it by id or undo"
		case point.KindImport.String():
			note = "  " + p.Label + "; not a backup: reach it by id"
		}
		fmt.Fprintf(stdout, "  %s  %.8s  %-11s  %s%s\n", p.Time.Local().Format("15:04:05"), p.ID, p.Trigger, p.Changes, note)
	}
	fmt.Fprintf(stdout, "%s\n", plural(len(list), "restore point"))
	return nil
}

// findPoint resolves a reference to a restore point of site (any site if
// empty) with point.Find, the one resolver of restore, download and dir
// restore, and turns its errors into messages that say what to do.
func findPoint(ctx context.Context, g *globalOptions, s *session, site, ref string) (*repository.Snapshot, error) {
	sn, err := point.Find(ctx, s.repo, site, ref, time.Local)
	if err == nil {
		return sn, nil
	}
	list := "`sitevault snapshots` lists the restore points"
	if site != "" {
		list = fmt.Sprintf("`sitevault points %s` lists its restore points", site)
	}
	switch {
	case errors.Is(err, point.ErrBadRef), errors.Is(err, point.ErrOtherSite), errors.Is(err, point.ErrAmbiguous):
		return nil, userErrorf(errUsage, "%v; %s", err, list)
	case errors.Is(err, point.ErrNoPoint):
		if site != "" {
			if kerr := knownSite(ctx, g, s, site); kerr != nil {
				return nil, kerr
			}
		}
		return nil, userErrorf(err, "%v (in %s); %s", err, s.where, list)
	}
	return nil, fmt.Errorf("find restore point %q in %s: %w", ref, s.where, err)
}
