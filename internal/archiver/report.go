package archiver

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/sitevault/sitevault/internal/repository"
)

// Skip is an entry the backup did not take, and why: Rule is a stable
// slug a dashboard groups by, Reason says it in English (with details,
// such as the plugin whose cache folder it is).
type Skip struct {
	Path   string `json:"path"`
	Rule   string `json:"rule"`
	Reason string `json:"reason"`
}

// Rules of the entries the archiver itself leaves out (Skip.Rule); a
// Selector's reasons get RuleOf theirs.
const (
	RuleInvalidName = "invalid-name"      // an empty name, or one holding '/' or NUL
	RuleSpecialFile = "special-file"      // a socket, FIFO or device
	RuleRestoreTemp = "restore-temporary" // a leftover of an interrupted restore (ReasonTemp)
)

// RuleOf turns a reason into its rule slug: the words before the first
// parenthesis or colon, lower-case, every run of other characters than
// letters and digits turned into one "-" ("cache folder (LiteSpeed
// Cache)" gives "cache-folder", "folder holds .donotbackup" gives
// "folder-holds-donotbackup").
func RuleOf(reason string) string {
	if i := strings.IndexAny(reason, "(:"); i >= 0 {
		reason = reason[:i]
	}
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(reason) {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			dash = false
			b.WriteRune(r)
			continue
		}
		dash = true
	}
	return b.String()
}

func (s Skip) String() string { return fmt.Sprintf("%q: %s", s.Path, s.Reason) }

// PathError is an entry that could not be read; the backup went on without it.
type PathError struct {
	Path string
	Err  error
}

func (e *PathError) Error() string { return fmt.Sprintf("%q: %v", e.Path, e.Err) }
func (e *PathError) Unwrap() error { return e.Err }

// Report says what a Snapshot call did. Counts are of regular files.
type Report struct {
	FilesNew       int
	FilesChanged   int
	FilesUnchanged int
	DirsTotal      int
	Symlinks       int
	BytesRead      int64 // bytes actually read (re-reads included)
	BytesTotal     int64 // size of every file taken, read or not
	// Skipped lists entries left out: excluded by the Selector, or of a
	// kind a backup does not store (sockets, FIFOs, devices).
	Skipped []Skip
	// TempsRemoved names the restore leftovers (fsys.IsTemp) the walk
	// removed (Options.RemoveTemps); they are in Skipped too.
	TempsRemoved []string
	// Changed names files that changed while they were read twice in a
	// row; they are stored as last read.
	Changed []string
	// Errors lists entries that could not be read. Any error makes the
	// backup Partial.
	Errors   []*PathError
	Partial  bool
	Started  time.Time
	Finished time.Time
}

// Summary converts the report into the statistics stored with a snapshot.
// Blob statistics are the repository's to fill in.
func (r *Report) Summary() *repository.Summary {
	s := &repository.Summary{
		FilesNew:       r.FilesNew,
		FilesChanged:   r.FilesChanged,
		FilesUnchanged: r.FilesUnchanged,
		DirsTotal:      r.DirsTotal,
		BytesRead:      r.BytesRead,
		BytesTotal:     r.BytesTotal,
		Partial:        r.Partial,
		Started:        r.Started,
		Finished:       r.Finished,
	}
	for _, sk := range r.Skipped {
		s.Skipped = append(s.Skipped, sk.String())
	}
	for _, p := range r.Changed {
		s.Warnings = append(s.Warnings, fmt.Sprintf("%q: changed while being read; stored as read", p))
	}
	for _, e := range r.Errors {
		s.Warnings = append(s.Warnings, "not backed up: "+e.Error())
	}
	return s
}

// Progress holds counters a caller may poll while a backup runs (for a
// progress bar). Totals grow as directories are listed; they are final once
// the backup returns.
type Progress struct {
	FilesDone  atomic.Int64 // files stored (read or unchanged)
	BytesDone  atomic.Int64 // bytes of those files, plus bytes read so far
	FilesTotal atomic.Int64 // files found so far
	BytesTotal atomic.Int64 // their size
	DirsDone   atomic.Int64
	Errors     atomic.Int64
	// With Options.Scan: what the scan ahead of the backup has counted,
	// final once ScanDone is set.
	ScanFiles atomic.Int64
	ScanBytes atomic.Int64
	ScanDone  atomic.Bool
	// Current is the file being read (nil before the first).
	Current atomic.Pointer[string]
}

// reporter collects a report from concurrent workers.
type reporter struct {
	mu  sync.Mutex
	rep Report
	p   *Progress // never nil
}

// skip records an entry the Selector left out.
func (r *reporter) skip(path, reason string) { r.skipRule(path, RuleOf(reason), reason) }

func (r *reporter) skipRule(path, rule, reason string) {
	r.mu.Lock()
	r.rep.Skipped = append(r.rep.Skipped, Skip{Path: path, Rule: rule, Reason: reason})
	r.mu.Unlock()
}

// temp skips the restore leftover at p and, with Options.RemoveTemps,
// removes it.
func (r *run) temp(ctx context.Context, p string) {
	if !r.a.opts.RemoveTemps {
		r.rep.skipRule(p, RuleRestoreTemp, ReasonTemp)
		return
	}
	if err := r.a.fs.Remove(ctx, p); err != nil {
		r.rep.skipRule(p, RuleRestoreTemp, fmt.Sprintf("%s (could not remove it: %v)", ReasonTemp, err))
		return
	}
	r.rep.skipRule(p, RuleRestoreTemp, ReasonTemp+" (removed)")
	r.rep.mu.Lock()
	r.rep.rep.TempsRemoved = append(r.rep.rep.TempsRemoved, p)
	r.rep.mu.Unlock()
}

func (r *reporter) fail(path string, err error) {
	r.mu.Lock()
	r.rep.Errors = append(r.rep.Errors, &PathError{Path: path, Err: err})
	r.rep.Partial = true
	r.mu.Unlock()
	r.p.Errors.Add(1)
}

func (r *reporter) changed(path string) {
	r.mu.Lock()
	r.rep.Changed = append(r.rep.Changed, path)
	r.mu.Unlock()
}

type fileState int

const (
	fileNew fileState = iota
	fileChanged
	fileUnchanged
)

func (r *reporter) file(state fileState, size, read int64) {
	r.mu.Lock()
	switch state {
	case fileNew:
		r.rep.FilesNew++
	case fileChanged:
		r.rep.FilesChanged++
	case fileUnchanged:
		r.rep.FilesUnchanged++
	}
	r.rep.BytesTotal += size
	r.rep.BytesRead += read
	r.mu.Unlock()
	r.p.FilesDone.Add(1)
	if state == fileUnchanged {
		r.p.BytesDone.Add(size)
	}
}

func (r *reporter) dir() {
	r.mu.Lock()
	r.rep.DirsTotal++
	r.mu.Unlock()
	r.p.DirsDone.Add(1)
}

func (r *reporter) symlink() {
	r.mu.Lock()
	r.rep.Symlinks++
	r.mu.Unlock()
}
