// Command sitevault backs up and restores WordPress sites into an encrypted,
// deduplicated repository. Each command lives in its own cmd_*.go file; this
// file only turns errors into exit codes (see exitcodes.go and the README).
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// atExit holds what main runs when the command has ended (temporary
// files outside the data home).
var atExit []func()

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// The first signal cancels the work, which then stops cleanly; a
		// second one ends the process at once.
		<-ctx.Done()
		stop()
	}()
	stopProfiling := startProfiling()
	cmd, err := newRootCommand().ExecuteContextC(ctx)
	stopProfiling()
	stop()
	for _, f := range atExit {
		f()
	}
	if err != nil && jsonRequested(cmd) && !jsonWritten {
		// A script asked for JSON: the error is JSON on stdout too (the
		// message still goes to stderr for the person reading the log).
		writeJSON(os.Stdout, newErrorJSON(err))
	}
	if err != nil {
		if errors.Is(err, context.Canceled) && ctx.Err() != nil {
			fmt.Fprintln(os.Stderr, "sitevault: interrupted (the repository stays consistent; a backup started again reuses what was uploaded)")
		} else {
			fmt.Fprintln(os.Stderr, "sitevault:", err)
		}
	}
	os.Exit(exitCode(err))
}
