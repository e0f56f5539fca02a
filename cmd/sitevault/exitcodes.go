package main

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/spf13/cobra"

	"github.com/sitevault/sitevault/internal/connection/ssh"
	"github.com/sitevault/sitevault/internal/failure"
	"github.com/sitevault/sitevault/internal/repository"
	"github.com/sitevault/sitevault/internal/site"
	"github.com/sitevault/sitevault/internal/sitevault"
)

// Exit codes, documented in the README. Only main turns errors into them.
// Where restic has a code for the same condition, it is restic's (10, 11,
// 12, 3, 130), so scripts written for both read them alike.
const (
	exitOK           = 0
	exitError        = 1   // any other failure
	exitUsage        = 2   // bad flags or arguments
	exitPartial      = 3   // a backup finished, but some files could not be read
	exitNoRepository = 10  // no repository there (or not a sitevault repository); restic's 10
	exitLocked       = 11  // the repository is locked (a prune runs, or lost its lock); restic's 11
	exitPassword     = 12  // no key of the repository opens with the password; restic's 12
	exitUnreachable  = 13  // the site or the repository's backend cannot be reached
	exitStale        = 14  // status --max-age: a site's last good backup is older (or missing)
	exitDamaged      = 15  // the repository is damaged (check found problems, a blob failed authentication)
	exitBusy         = 16  // the site is busy: another backup or restore of it runs (--no-wait, or waited too long)
	exitInterrupted  = 130 // interrupted (Ctrl-C, SIGTERM)
)

// Sentinels of this package that select an exit code.
var (
	// errUsage: the command line is wrong.
	errUsage = errors.New("usage")
	// errPartial: a backup was saved without some unreadable files.
	errPartial = errors.New("backup is partial")
	// errUnreachable: a server could not be reached.
	errUnreachable = errors.New("unreachable")
	// errStale: a site's last good backup is older than status --max-age.
	errStale = errors.New("backup too old")
	// errCancelled: the user answered no at a confirmation (exit code 1).
	errCancelled = errors.New("cancelled")
)

// usageError marks err as a command-line mistake (exit code 2).
func usageError(err error) error {
	return &userError{msg: err.Error() + " (see --help)", err: errUsage}
}

// userError carries a message written for the user and the sentinel the
// exit code is chosen by; its text replaces the sentinel's.
type userError struct {
	msg string
	err error
}

func (e *userError) Error() string { return e.msg }
func (e *userError) Unwrap() error { return e.err }

// userErrorf formats a message for the user that wraps cause (for errors.Is)
// without repeating cause's own text.
func userErrorf(cause error, format string, args ...any) error {
	return &userError{msg: fmt.Sprintf(format, args...), err: cause}
}

// exitCode maps an error to the process exit code documented in the README.
func exitCode(err error) int {
	var opErr *net.OpError
	var dnsErr *net.DNSError
	var coded *exitCodeError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &coded):
		return coded.code
	case errors.Is(err, context.Canceled):
		return exitInterrupted
	case errors.Is(err, errUsage):
		return exitUsage
	case errors.Is(err, repository.ErrWrongPassword):
		return exitPassword
	case errors.Is(err, repository.ErrDamaged):
		return exitDamaged
	case errors.Is(err, repository.ErrNotRepository):
		return exitNoRepository
	case errors.Is(err, repository.ErrPruneRunning), errors.Is(err, repository.ErrPruneLockLost):
		return exitLocked
	case errors.Is(err, sitevault.ErrBusy):
		return exitBusy
	case errors.Is(err, errUnreachable), errors.Is(err, ssh.ErrUnreachable), errors.Is(err, site.ErrDBUnreachable),
		errors.As(err, &opErr), errors.As(err, &dnsErr):
		return exitUnreachable
	case errors.Is(err, errPartial):
		return exitPartial
	case errors.Is(err, errStale):
		return exitStale
	}
	return exitError
}

// errorJSON is what a command given --json prints on stdout when it fails
// (the exit code is unchanged). Its fields are the service's problem
// documents' (failure.Report) plus the exit code.
type errorJSON struct {
	Error errorBody `json:"error"`
}

type errorBody struct {
	failure.Report
	ExitCode int `json:"exit_code"`
}

func newErrorJSON(err error) errorJSON {
	return errorJSON{Error: errorBody{Report: failure.ReportOf(err, cliCode(err)), ExitCode: exitCode(err)}}
}

// cliCode is the stable code of the CLI's own failures ("" for the
// library's: failure.Code names them).
func cliCode(err error) string {
	var coded *exitCodeError
	switch {
	case errors.Is(err, context.Canceled):
		return "interrupted"
	case errors.Is(err, errCancelled):
		return "cancelled"
	case errors.Is(err, errUsage):
		return "usage"
	case errors.Is(err, errPartial):
		return "partial"
	case errors.Is(err, errStale):
		return "stale"
	case errors.Is(err, errUnreachable):
		return "unreachable"
	case errors.As(err, &coded) && coded.code == exitPartial:
		return "partial"
	}
	if failure.Code(err) == failure.Generic {
		switch exitCode(err) {
		case exitBusy:
			return "busy"
		case exitLocked:
			return "repository_locked"
		case exitUnreachable:
			return "unreachable"
		}
	}
	return ""
}

// jsonRequested reports whether the command that ran was given --json.
func jsonRequested(cmd *cobra.Command) bool {
	if cmd == nil {
		return false
	}
	f := cmd.Flags().Lookup("json")
	return f != nil && f.Value.String() == "true"
}
