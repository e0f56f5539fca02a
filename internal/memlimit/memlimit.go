// Package memlimit sets the Go runtime's soft memory limit from what a
// command holds in memory, so that sitevault stays small on small hosts.
//
// The work itself (pack buffers, files being chunked, compression) needs
// about Work bytes whatever the repository's size; the index adds
// PerBlob bytes per indexed blob. Without a limit Go lets the heap grow to
// twice the live data (the first backup of the benchmark tree peaked at
// 230 MB RSS; with the limit, 112 MB and no slower). The limit is soft: it
// makes the collector work harder near it, never fails an allocation, and
// grows with the index so that a large repository does not make the
// collector run continuously.
//
// The rule for GOMEMLIMIT: when the variable is set, the Go runtime
// applies it at start and this package changes nothing, so a user's or an
// operator's limit always wins.
//
// The limit is process-wide: a process that opens several repositories
// (the service) sets it for the largest index it holds.
package memlimit

import (
	"math"
	"os"
	"runtime/debug"

	"github.com/sitevault/sitevault/internal/repository"
)

const (
	// Work is the memory the work itself needs, whatever the index holds.
	Work = 100 << 20
	// PerBlob is the index's cost per blob, with room for a reload's peak
	// (two indexes held for a moment).
	PerBlob = 2 * repository.IndexBytesPerBlob
	// Env is the Go runtime's variable that overrides the limit.
	Env = "GOMEMLIMIT"
)

// ForIndex sets the soft limit for a repository whose index holds blobs
// blobs: Work + blobs × PerBlob. It does nothing when GOMEMLIMIT is set.
func ForIndex(blobs int) {
	if _, ok := os.LookupEnv(Env); ok {
		return
	}
	debug.SetMemoryLimit(Work + int64(blobs)*PerBlob)
}

// Lift removes the soft limit, for commands whose working set is a
// multiple of the index (prune holds a table of every blob copy): at the
// index-sized limit the collector would run continuously (a prune of 10M
// blobs made no progress in 7 minutes under it). It does nothing when
// GOMEMLIMIT is set.
func Lift() {
	if _, ok := os.LookupEnv(Env); ok {
		return
	}
	debug.SetMemoryLimit(math.MaxInt64)
}
