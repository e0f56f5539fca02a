// Package fsys is the file system seam between sitevault and a site's files.
//
// A connection hands backup and restore an FS rooted at the site's root
// directory: the local disk (Local, built on os.Root) or SFTP (in the
// connection/ssh package). Both run the same backup and restore code.
//
// Names are slash-separated paths relative to the root ("" or "." is the root
// itself). Names are byte strings: they may hold newlines or invalid UTF-8 and
// are passed through unchanged. An FS never resolves a name to a place outside
// its root; callers that must not write through symbolic links (restore)
// check each parent with Lstat.
package fsys

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"strings"
	"time"
)

// FileInfo describes one directory entry without following symbolic links.
type FileInfo struct {
	Name    string      // base name, byte-exact
	Mode    fs.FileMode // type bits and permissions, as io/fs defines them
	Size    int64
	ModTime time.Time
	// Inode, Dev and ChangeTime are zero where the file system does not
	// report them (SFTP). Backup compares them only when both sides know them.
	Inode      uint64
	Dev        uint64
	ChangeTime time.Time
}

// File is an open file being read.
type File interface {
	io.ReadCloser
	// Stat describes the open file (after reading, to see whether it changed).
	Stat() (FileInfo, error)
}

// ListedOpener is implemented by file systems where opening a file the
// caller has just listed can skip requests (SFTP: the LSTAT before the
// OPEN). OpenListed opens name, which a ReadDir of its folder described as
// listed (a regular file), for reading.
//
// The returned File's first Stat returns listed (the attributes seen before
// the read), its second Stat the open file's attributes after the read. An
// implementation must make sure it opened what was listed: when the opened
// file is not a regular file with listed's size, modification time and
// mode (it was replaced or changed since the listing), OpenListed returns
// an error wrapping ErrNotAsListed and hands over nothing it read; the
// caller then opens the file again with Open.
type ListedOpener interface {
	OpenListed(ctx context.Context, name string, listed FileInfo) (File, error)
}

// ErrNotAsListed means a file no longer matches its listing (see ListedOpener).
var ErrNotAsListed = errors.New("file changed since its folder was listed")

// WFile is a file being written.
type WFile interface {
	io.WriteCloser
	// Name is the file's name relative to the FS root.
	Name() string
}

// FS is what backup reads from and restore writes to. Implementations are
// safe for concurrent use.
type FS interface {
	// Root describes the root for messages (a path, or user@host:path).
	Root() string

	// ReadDir lists dir with every entry's attributes, in one round trip
	// where the protocol allows (SFTP's READDIR returns attributes). Order
	// is unspecified.
	ReadDir(ctx context.Context, dir string) ([]FileInfo, error)
	// Lstat describes name without following a final symbolic link.
	Lstat(ctx context.Context, name string) (FileInfo, error)
	// Open opens a regular file for reading.
	Open(ctx context.Context, name string) (File, error)
	// Readlink returns a symbolic link's target, unchanged.
	Readlink(ctx context.Context, name string) (string, error)

	// MkdirAll creates dir and missing parents with perm.
	MkdirAll(ctx context.Context, dir string, perm fs.FileMode) error
	// CreateTemp creates a new, uniquely named file in dir for writing; the
	// caller renames it into place or removes it. As with os.CreateTemp, the
	// name is pattern with its last "*" replaced by random characters (or
	// random characters appended); an empty pattern means
	// ".sitevault-tmp-*". The file is created exclusively, mode 0600.
	CreateTemp(ctx context.Context, dir, pattern string) (WFile, error)
	// Rename atomically replaces newname with oldname (POSIX rename).
	Rename(ctx context.Context, oldname, newname string) error
	// Remove deletes a file or an empty directory.
	Remove(ctx context.Context, name string) error
	// Symlink creates name as a symbolic link to target.
	Symlink(ctx context.Context, target, name string) error
	// Chmod sets permission bits (following no link).
	Chmod(ctx context.Context, name string, mode fs.FileMode) error
	// Chtimes sets modification (and access) time.
	Chtimes(ctx context.Context, name string, mtime time.Time) error

	// Close releases the FS (for SFTP, the session).
	Close() error
}

// Dir is a directory held open, so that work on many entries of one
// directory costs a system call each instead of a walk of the whole path
// from the root per call (what every path-based method of Local does). Names
// given to its methods are single path components.
//
// A Dir keeps referring to the directory it opened, wherever it is moved
// afterwards, as the root of a Local does; a caller that must not write
// through a symbolic link compares Stat with an Lstat of the path (restore
// does), and holds a Dir only while it works in that directory.
type Dir interface {
	// Stat describes the open directory itself (fstat).
	Stat() (FileInfo, error)
	// Lstat describes the entry name without following a symbolic link.
	Lstat(ctx context.Context, name string) (FileInfo, error)
	// CreateTemp is FS.CreateTemp in this directory. The file's Name is
	// relative to the FS root, as with FS.CreateTemp; the WFile also has
	// Chmod(fs.FileMode) and SetModTime(time.Time), which set attributes
	// through the open descriptor.
	CreateTemp(ctx context.Context, pattern string) (WFile, error)
	// Rename atomically replaces newname with oldname, both in this directory.
	Rename(ctx context.Context, oldname, newname string) error
	// Remove deletes the file or empty directory name.
	Remove(ctx context.Context, name string) error
	// Close releases the directory.
	Close() error
}

// DirOpener is implemented by file systems that can hold a directory open
// (Local); restore uses it to work by name inside each directory instead
// of walking every path from the root.
type DirOpener interface {
	OpenDir(ctx context.Context, dir string) (Dir, error)
}

// TempPrefix begins the name of every temporary file sitevault writes into a
// site (CreateTemp's default pattern, restore's files and links); the rest
// of the name is 16 lower-case hex digits.
const TempPrefix = ".sitevault-tmp-"

// IsTemp reports whether name (a base name) is exactly one of sitevault's
// temporary names: TempPrefix and 16 lower-case hex digits. A restore or
// upload killed mid-write leaves such a file; backups skip them and the
// next restore, undo or backup of the site removes them. Nothing else is
// ever taken for one.
func IsTemp(name string) bool {
	hexPart, ok := strings.CutPrefix(name, TempPrefix)
	if !ok || len(hexPart) != 16 {
		return false
	}
	for _, c := range []byte(hexPart) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
