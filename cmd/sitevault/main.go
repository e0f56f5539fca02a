// Command sitevault backs up and restores WordPress sites into an encrypted,
// deduplicated repository. Each command lives in its own cmd_*.go file; this
// file only turns errors into exit codes (see exitcodes.go and the README).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCommand().ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "sitevault:", err)
	}
	os.Exit(exitCode(err))
}
