package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/sitevault/sitevault/internal/backend"
	"github.com/sitevault/sitevault/internal/repository"
)

type keyAddOptions struct {
	NewPasswordFile string
	Label           string
	JSON            bool
}

type keyListOptions struct {
	JSON bool
}

type keyRemoveOptions struct {
	ID   string
	JSON bool
}

func newKeyCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "key",
		Short: "Manage the repository's keys (each password that opens it)",
		Long: `A repository's data is encrypted under one random master key; each key slot
holds that master key wrapped by one password. Adding a key lets a second
password open the repository; removing one revokes it (the last key cannot
be removed).`,
		Args: unknownCommand,
		RunE: showHelp,
	}

	var add keyAddOptions
	addCmd := &cobra.Command{
		Use:   "add",
		Short: "Add a key for a new password",
		Long: `Add a key slot for a new password, read from --new-password-file,
$SITEVAULT_NEW_PASSWORD or a prompt (asked twice). The repository itself is
opened with its current password as usual.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runKeyAdd(cmd.Context(), add, g, cmd.OutOrStdout())
		},
	}
	addCmd.Flags().StringVar(&add.NewPasswordFile, "new-password-file", "", "read the new password from this file (mode 0600)")
	addCmd.Flags().StringVar(&add.Label, "label", "", "a label for the new key (default user@host)")
	addCmd.Flags().BoolVar(&add.JSON, "json", false, "print the result as JSON (see the README)")

	var list keyListOptions
	listCmd := &cobra.Command{
		Use:   "list",
		Short: "List the keys; * marks the one this password opened",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runKeyList(cmd.Context(), list, g, cmd.OutOrStdout())
		},
	}
	listCmd.Flags().BoolVar(&list.JSON, "json", false, "print JSON")

	var removeYes, removeJSON bool
	removeCmd := &cobra.Command{
		Use:   "remove ID [--yes]",
		Short: "Remove a key (by id or a unique prefix of at least 4 characters); asks first, or needs --yes without a terminal",
		Args:  usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := confirmDestructive(g, removeYes, false, "Remove key "+args[0]+"? Its password will no longer open the repository."); err != nil {
				return err
			}
			return runKeyRemove(cmd.Context(), keyRemoveOptions{ID: args[0], JSON: removeJSON}, g, cmd.OutOrStdout())
		},
	}
	removeCmd.Flags().BoolVarP(&removeYes, "yes", "y", false, "do not ask for confirmation (needed without a terminal)")
	removeCmd.Flags().BoolVar(&removeJSON, "json", false, "print the result as JSON (see the README)")
	cmd.AddCommand(addCmd, listCmd, removeCmd)
	return cmd
}

func runKeyAdd(ctx context.Context, opts keyAddOptions, g *globalOptions, stdout io.Writer) error {
	s, err := openRepository(ctx, g)
	if err != nil {
		return err
	}
	defer s.Close()
	password, err := s.cfg.NewPassword(opts.NewPasswordFile, g.prompt())
	if err != nil {
		return err
	}
	if opts.Label == "" {
		opts.Label = defaultKeyLabel()
	}
	k, err := s.repo.AddKey(ctx, password, opts.Label)
	if err != nil {
		return fmt.Errorf("add a key to %s: %w", s.where, err)
	}
	if opts.JSON {
		return writeJSON(stdout, keyAddJSON{ID: k.ID, Label: k.Label})
	}
	if !g.Quiet {
		fmt.Fprintf(stdout, "Added key %s (%s). Both passwords now open %s.\n", shortKeyID(k.ID), k.Label, s.where)
	}
	return nil
}

func runKeyList(ctx context.Context, opts keyListOptions, g *globalOptions, stdout io.Writer) error {
	s, err := openRepository(ctx, g)
	if err != nil {
		return err
	}
	defer s.Close()
	keys, err := s.repo.Keys(ctx)
	if err != nil {
		return fmt.Errorf("list the keys of %s: %w", s.where, err)
	}
	if opts.JSON || g.JSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(keys)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, " \tID\tLABEL\tCREATED BY\tCREATED")
	for _, k := range keys {
		cur := " "
		if k.Current {
			cur = "*"
		}
		by := k.Username + "@" + k.Hostname
		if by == "@" {
			by = ""
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", cur, shortKeyID(k.ID), k.Label, by, k.Created.Local().Format(time.DateTime))
	}
	return tw.Flush()
}

func runKeyRemove(ctx context.Context, opts keyRemoveOptions, g *globalOptions, stdout io.Writer) error {
	s, err := openRepository(ctx, g)
	if err != nil {
		return err
	}
	defer s.Close()
	keys, err := s.repo.Keys(ctx)
	if err != nil {
		return fmt.Errorf("list the keys of %s: %w", s.where, err)
	}
	for _, k := range keys {
		if k.Current && len(opts.ID) >= 4 && len(k.ID) >= len(opts.ID) && k.ID[:len(opts.ID)] == opts.ID && !g.Quiet {
			fmt.Fprintln(g.errOut(), "Note: this is the key you opened the repository with; that password will no longer open it.")
		}
	}
	err = s.repo.RemoveKey(ctx, opts.ID)
	switch {
	case errors.Is(err, repository.ErrLastKey):
		return userErrorf(err, "key %s is the only key of %s; removing it would lock everyone out. Add another first with `sitevault key add`", opts.ID, s.where)
	case errors.Is(err, backend.ErrNotExist):
		return userErrorf(errUsage, "no key of %s has the id %q; `sitevault key list` shows them", s.where, opts.ID)
	case err != nil:
		return fmt.Errorf("remove key %s from %s: %w", opts.ID, s.where, err)
	}
	if opts.JSON {
		return writeJSON(stdout, keyRemoveJSON{Removed: opts.ID})
	}
	if !g.Quiet {
		fmt.Fprintf(stdout, "Removed key %s.\n", opts.ID)
	}
	return nil
}

// shortKeyID shortens a key's id for display; any unique prefix of 4 or
// more characters names it.
func shortKeyID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}
