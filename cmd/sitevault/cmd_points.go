package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sitevault/sitevault/internal/backup"
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
Any id (prefix), "latest" or a day can be passed to restore --to.`,
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
		ID: sn.ID.String(), Time: sn.Time, Day: sn.Time.Local().Format(time.DateOnly), Trigger: sn.Trigger,
		FilesChanged: metaInt(sn, backup.MetaFilesChanged), TablesChanged: metaInt(sn, backup.MetaTablesChanged),
		Tables: metaInt(sn, backup.MetaTables), WPVersion: sn.Meta[backup.MetaWPVersion],
		RestoreOf: sn.Meta[backup.MetaRestoreOf],
	}
	p.Database = p.Tables != nil
	if sn.Parent != nil {
		p.Parent = sn.Parent.String()
	}
	if it := sn.Meta[backup.MetaItems]; it != "" {
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
		d, err := time.ParseInLocation(time.DateOnly, opts.Day, time.Local)
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
	points, err := backup.PointsOf(ctx, s.repo, opts.Name)
	if err != nil {
		return err
	}
	var list []pointJSON
	for _, sn := range points {
		if !day.IsZero() && (sn.Time.Before(day) || !sn.Time.Before(day.AddDate(0, 0, 1))) {
			continue
		}
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
		if p.RestoreOf != "" {
			note = fmt.Sprintf("  (before restoring %.8s: %s)", p.RestoreOf, strings.Join(p.Items, ","))
		}
		fmt.Fprintf(stdout, "  %s  %.8s  %-11s  %s%s\n", p.Time.Local().Format("15:04:05"), p.ID, p.Trigger, p.Changes, note)
	}
	fmt.Fprintf(stdout, "%d restore points\n", len(list))
	return nil
}
