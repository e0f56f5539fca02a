package main

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"
)

// TestPruneRefusesShortGrace: the CLI accepts only graces the prune
// protocol is documented safe for (issue 9, finding 2).
func TestPruneRefusesShortGrace(t *testing.T) {
	for _, grace := range []time.Duration{-time.Hour, 0, time.Minute, 59 * time.Minute} {
		err := runPrune(context.Background(), pruneOptions{Grace: grace, MaxUnused: 0.2}, &globalOptions{}, io.Discard)
		if !errors.Is(err, errUsage) {
			t.Errorf("--grace %s: %v, want a usage error", grace, err)
		}
	}
}
