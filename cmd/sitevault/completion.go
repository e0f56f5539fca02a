package main

import (
	"context"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sitevault/sitevault/internal/backup"
	"github.com/sitevault/sitevault/internal/config"
	"github.com/sitevault/sitevault/internal/mysql"
	"github.com/sitevault/sitevault/internal/point"
)

// Shell completion (cobra's `sitevault completion bash|zsh|fish|powershell`)
// of site names, restore point ids, items and table names. Completing reads
// the catalog and, for point ids and tables, the repository, but only when
// its password needs no prompt (a key file, a password file or
// $SITEVAULT_PASSWORD); it creates nothing, and completes nothing rather
// than fail.

// siteArgCommands take a site as their first argument (backup and status
// take several).
var siteArgCommands = map[string]bool{
	"sitevault backup": true, "sitevault restore": true, "sitevault undo": true, "sitevault download": true,
	"sitevault points": true, "sitevault snapshots": true, "sitevault forget": true, "sitevault status": true,
	"sitevault site show": true, "sitevault site edit": true, "sitevault site remove": true, "sitevault site files": true,
	"sitevault site tables": true, "sitevault site connect": true,
}

// addCompletions walks the command tree and attaches the completions.
func addCompletions(root *cobra.Command, g *globalOptions) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if siteArgCommands[c.CommandPath()] {
			many := c.Name() == "backup" || c.Name() == "status"
			c.ValidArgsFunction = func(cmd *cobra.Command, args []string, prefix string) ([]cobra.Completion, cobra.ShellCompDirective) {
				if len(args) > 0 && !many {
					return nil, cobra.ShellCompDirectiveNoFileComp
				}
				return completeSites(cmd.Context(), g, prefix), cobra.ShellCompDirectiveNoFileComp
			}
		}
		if c.Flags().Lookup("to") != nil {
			c.RegisterFlagCompletionFunc("to", func(cmd *cobra.Command, args []string, prefix string) ([]cobra.Completion, cobra.ShellCompDirective) {
				if len(args) == 0 {
					return nil, cobra.ShellCompDirectiveNoFileComp
				}
				return completePoints(cmd.Context(), g, args[0], prefix), cobra.ShellCompDirectiveNoFileComp
			})
		}
		if c.Flags().Lookup("only") != nil {
			c.RegisterFlagCompletionFunc("only", func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
				return backup.AllItems(), cobra.ShellCompDirectiveNoFileComp
			})
		}
		if c.Flags().Lookup("table") != nil {
			c.RegisterFlagCompletionFunc("table", func(cmd *cobra.Command, args []string, prefix string) ([]cobra.Completion, cobra.ShellCompDirective) {
				if len(args) == 0 {
					return nil, cobra.ShellCompDirectiveNoFileComp
				}
				return completeTables(cmd.Context(), g, args[0], prefix), cobra.ShellCompDirectiveNoFileComp
			})
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

func completeSites(ctx context.Context, g *globalOptions, prefix string) []cobra.Completion {
	g.readOnly = true
	cat, _, err := openCatalog(ctx, g)
	if err != nil {
		return nil
	}
	defer cat.Close()
	sites, err := cat.Sites(ctx)
	if err != nil {
		return nil
	}
	var out []cobra.Completion
	for _, s := range sites {
		if strings.HasPrefix(s.Name, prefix) {
			out = append(out, cobra.CompletionWithDesc(s.Name, s.Location()))
		}
	}
	return out
}

// completionSession opens the repository when that needs no prompt.
func completionSession(ctx context.Context, g *globalOptions) *session {
	g.readOnly = true
	g.prompter = config.NoPrompt{}
	s, err := openRepository(ctx, g)
	if err != nil {
		return nil
	}
	return s
}

func completePoints(ctx context.Context, g *globalOptions, site, prefix string) []cobra.Completion {
	out := []cobra.Completion{}
	for _, ref := range []string{point.Latest} {
		if strings.HasPrefix(ref, prefix) {
			out = append(out, cobra.CompletionWithDesc(ref, "the newest backup point"))
		}
	}
	s := completionSession(ctx, g)
	if s == nil {
		return out
	}
	defer s.Close()
	points, err := point.List(ctx, s.repo, site)
	if err != nil {
		return out
	}
	for _, p := range points {
		if id := p.ID.Short(); strings.HasPrefix(id, prefix) {
			out = append(out, cobra.CompletionWithDesc(id, p.Time.Local().Format("2006-01-02 15:04")+" "+p.Trigger))
		}
	}
	return out
}

func completeTables(ctx context.Context, g *globalOptions, site, prefix string) []cobra.Completion {
	s := completionSession(ctx, g)
	if s == nil {
		return nil
	}
	defer s.Close()
	sn, err := point.Find(ctx, s.repo, site, point.Latest, time.Local)
	if err != nil {
		return nil
	}
	tree, err := backup.DatabaseTree(ctx, s.repo, sn)
	if err != nil {
		return nil
	}
	m, err := mysql.LoadManifest(ctx, s.repo, tree)
	if err != nil {
		return nil
	}
	var out []cobra.Completion
	for _, t := range m.Tables {
		if strings.HasPrefix(t.Name, prefix) {
			out = append(out, t.Name)
		}
	}
	return out
}
