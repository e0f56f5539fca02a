package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sitevault/sitevault/internal/catalog"
)

// unknownSite is the error for a site name that is no site's: it names
// the closest known name when one is close enough, so a typo in a cron
// job fails loudly instead of doing nothing.
func unknownSite(name string, known []string) error {
	msg := "no site " + name
	if s := closestName(name, known); s != "" {
		msg += "; did you mean " + s + "?"
	}
	return userErrorf(catalog.ErrSiteNotFound, "%s (`sitevault site list` shows the sites)", msg)
}

// siteNotFound turns the catalog's "no such site" into unknownSite, with
// the registered names to suggest from; other errors pass unchanged.
func siteNotFound(ctx context.Context, cat *catalog.Catalog, name string, err error) error {
	if !errors.Is(err, catalog.ErrSiteNotFound) {
		return err
	}
	return unknownSite(name, catalogNames(ctx, cat))
}

// catalogNames lists the registered sites' names (none when the catalog
// cannot be read: the names only feed a suggestion).
func catalogNames(ctx context.Context, cat *catalog.Catalog) []string {
	if cat == nil {
		return nil
	}
	sites, err := cat.Sites(ctx)
	if err != nil {
		return nil
	}
	names := make([]string, 0, len(sites))
	for _, s := range sites {
		names = append(names, s.Name)
	}
	return names
}

// knownSite checks that name is a site: registered in the catalog, or
// with restore points in the repository (folders backed up with dir
// backup --site, sites removed from the catalog whose points remain).
func knownSite(ctx context.Context, g *globalOptions, s *session, name string) error {
	all, err := s.repo.Snapshots(ctx)
	if err != nil {
		return fmt.Errorf("list the restore points of %s: %w", s.where, err)
	}
	seen := map[string]bool{}
	var names []string
	for _, sn := range all {
		if sn.Site == name {
			return nil
		}
		if !seen[sn.Site] {
			seen[sn.Site] = true
			names = append(names, sn.Site)
		}
	}
	cat, _, err := openCatalog(ctx, g)
	if err != nil {
		return err
	}
	defer cat.Close()
	if _, err := cat.Site(ctx, name); err == nil {
		return nil
	} else if !errors.Is(err, catalog.ErrSiteNotFound) {
		return err
	}
	for _, n := range catalogNames(ctx, cat) {
		if !seen[n] {
			names = append(names, n)
		}
	}
	return unknownSite(name, names)
}

// closestName returns the known name nearest to name by edit distance,
// when it is close enough to be a typo (at most 2 edits, or a third of
// the name's length for long names), or one starts with the other.
func closestName(name string, known []string) string {
	sort.Strings(known)
	best, bestD := "", -1
	limit := max(2, len([]rune(name))/3)
	for _, k := range known {
		if k == name {
			continue
		}
		d := editDistance(strings.ToLower(name), strings.ToLower(k))
		if d <= limit && (bestD < 0 || d < bestD) {
			best, bestD = k, d
		}
	}
	if best == "" {
		for _, k := range known {
			if len(name) >= 3 && strings.HasPrefix(k, name) {
				return k
			}
		}
	}
	return best
}

// editDistance is the Damerau–Levenshtein distance (optimal string
// alignment) of a and b: a swap of two neighbours ("blgo" for "blog")
// counts as one edit.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}

// unknownCommand is the Args of commands that only group others: a word
// that is no subcommand is a usage error that names the closest ones,
// as cobra does for the root when left to its default.
func unknownCommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2 // cobra's default, set only on its own path
	}
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += "; did you mean " + strings.Join(s, " or ") + "?"
	}
	return usageError(errors.New(msg))
}

// siteArg takes the optional SITE argument of a command whose older
// --site flag still works: one of them, not both with different names.
func siteArg(site *string, args []string) error {
	if len(args) == 0 {
		return nil
	}
	if *site != "" && *site != args[0] {
		return usageError(fmt.Errorf("give the site once: %s as an argument or --site %s, not both", args[0], *site))
	}
	*site = args[0]
	return nil
}

// deprecateSiteFlag hides a command's --site flag and has cobra print a
// note on stderr when it is used: the site is an argument now.
func deprecateSiteFlag(cmd *cobra.Command) {
	name := strings.Fields(cmd.Use)[0]
	if err := cmd.Flags().MarkDeprecated("site", fmt.Sprintf("give the site as an argument: sitevault %s SITE", name)); err != nil {
		panic(err) // the flag is defined just before
	}
}
