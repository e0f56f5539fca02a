// Package backend defines where a repository's files live.
//
// A Backend stores whole, immutable files addressed by a Handle (a type and
// a name). It knows nothing of encryption, packs or snapshots: the repository
// package builds those on top. Implementations live in sub-packages named
// after what they wrap (local, sftp, s3, mem); cross-cutting behaviour such as
// retries wraps a Backend (see retry) instead of branching inside one.
//
// Every implementation passes the conformance suite in backendtest.
package backend

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// FileType is the kind of a repository file; it selects the folder the file
// lives in.
type FileType string

// The kinds of repository files.
const (
	ConfigFile   FileType = "config"    // the single repository config
	KeyFile      FileType = "keys"      // key slots: the master key wrapped per password
	PackFile     FileType = "data"      // pack files, stored under data/<first two hex chars>/
	IndexFile    FileType = "index"     // index files: which blob is where
	SnapshotFile FileType = "snapshots" // restore points
	LockFile     FileType = "locks"     // advisory markers for maintenance (prune); backups take none
)

// Handle names one file of a repository.
type Handle struct {
	Type FileType
	// Name is the file's name inside its folder. It is empty for ConfigFile.
	Name string
}

func (h Handle) String() string {
	if h.Name == "" {
		return string(h.Type)
	}
	return string(h.Type) + "/" + h.Name
}

// Valid reports whether h can name a file: known type, and a name made of
// safe characters only (no path separators, no "..").
func (h Handle) Valid() error {
	switch h.Type {
	case ConfigFile:
		if h.Name != "" {
			return fmt.Errorf("invalid handle %v: config has no name", h)
		}
		return nil
	case KeyFile, PackFile, IndexFile, SnapshotFile, LockFile:
	default:
		return fmt.Errorf("invalid handle %v: unknown file type", h)
	}
	if h.Name == "" {
		return fmt.Errorf("invalid handle %v: empty name", h)
	}
	for _, c := range h.Name {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("invalid handle %v: name may hold only a-z, 0-9, '-' and '_'", h)
		}
	}
	if h.Type == PackFile && len(h.Name) < 2 {
		return fmt.Errorf("invalid handle %v: pack names have at least two characters", h)
	}
	return nil
}

// FileInfo describes a stored file.
type FileInfo struct {
	Name    string
	Size    int64
	ModTime time.Time // when the backend last wrote the file; used for time-based garbage collection
}

// Backend is the contract every storage implementation keeps.
//
// All methods are safe for concurrent use. Paths never appear in the
// interface: a backend maps handles to its own layout.
type Backend interface {
	// Location returns where the backend stores its files, fit for logs and
	// messages: any password is stripped.
	Location() string

	// Save stores the size bytes read from rd under h, atomically: a reader
	// sees the whole file or no file, never a part, including after a crash
	// at any moment. If h already exists, Save either fails with an error
	// wrapping ErrExist or replaces it: the repository reuses a name only for
	// identical bytes (names are content-derived). The config is the
	// exception: Save of ConfigFile never replaces one, atomically (of two
	// concurrent saves exactly one succeeds, the other fails with ErrExist),
	// so that two inits cannot both write a config. Save may read rd more
	// than once, after seeking it back to the start (retries do).
	Save(ctx context.Context, h Handle, rd io.ReadSeeker, size int64) error

	// Load calls fn with a reader of length bytes of h starting at offset;
	// length 0 means up to the end of the file. The reader is valid only
	// during fn and yields exactly the requested bytes or fails with an
	// error wrapping io.ErrUnexpectedEOF. A missing file is an error
	// wrapping ErrNotExist. If fn fails, Load returns its error unchanged.
	// A decorator (retry) may call fn again, with a fresh reader from the
	// start of the range, after the backend failed while fn was reading:
	// fn must discard what an earlier call got.
	Load(ctx context.Context, h Handle, length int, offset int64, fn func(rd io.Reader) error) error

	// Stat describes h, or returns an error wrapping ErrNotExist.
	Stat(ctx context.Context, h Handle) (FileInfo, error)

	// List calls fn for every file of type t, in no particular order.
	// Partially written (temporary) files are never listed. If fn returns an
	// error, List stops and returns it.
	List(ctx context.Context, t FileType, fn func(FileInfo) error) error

	// Remove deletes h. Removing a missing file returns an error wrapping
	// ErrNotExist.
	Remove(ctx context.Context, h Handle) error

	// Close releases connections. The backend must not be used afterwards.
	Close() error
}

// TempCleaner is implemented by backends whose interrupted saves can leave
// temporary files behind: a Save cut off by a dropped connection or a
// killed process never gets to remove its ".tmp-…" file (see TempPrefix).
// Backends whose writes are atomic by nature (an S3 PUT) have nothing to
// clean and do not implement it. Prune calls it.
type TempCleaner interface {
	// CleanTemp removes the temporary files, in every folder of the
	// layout, last modified before olderThan, and returns how many it
	// removed, also when it fails partway. A younger temporary file may
	// belong to a save still running and stays; saved files are never
	// touched.
	CleanTemp(ctx context.Context, olderThan time.Time) (removed int, err error)
}

// Sentinel errors, matched with errors.Is.
var (
	// ErrNotExist: the file (or the repository's location) does not exist.
	ErrNotExist = errors.New("file does not exist")
	// ErrExist: Save found a file of that name already stored.
	ErrExist = errors.New("file already exists")
	// ErrNoSpace: the backend is out of space (ENOSPC, quota). Permanent.
	ErrNoSpace = errors.New("no space left on the backend")
	// ErrAccess: the backend refused the credentials or the operation.
	ErrAccess = errors.New("access denied by the backend")
)

// permanentError marks an error that retrying cannot cure.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent marks err as one a retry cannot cure. Backends wrap errors such
// as authentication failures, invalid requests and full disks with it.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

// IsPermanent reports whether retrying the call that returned err is
// pointless: err was marked Permanent, or it wraps ErrNotExist, ErrExist,
// ErrNoSpace, ErrAccess or a cancelled context.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p) ||
		errors.Is(err, ErrNotExist) || errors.Is(err, ErrExist) ||
		errors.Is(err, ErrNoSpace) || errors.Is(err, ErrAccess) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}
