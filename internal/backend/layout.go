package backend

import (
	"fmt"
	"io"
	"strings"
)

// The layout every backend with folders or key prefixes uses, so that a
// repository can be copied between backends with ordinary tools:
//
//	config
//	keys/<name>
//	data/<first two characters of name>/<name>
//	index/<name>
//	snapshots/<name>
//	locks/<name>

// TempPrefix starts the names of files a backend is still writing. List
// never reports them; a Save that fails removes its own, and
// TempCleaner.CleanTemp removes those that interrupted saves left behind.
const TempPrefix = ".tmp-"

// FileTypes lists every file type with a folder (all but ConfigFile).
var FileTypes = []FileType{KeyFile, PackFile, IndexFile, SnapshotFile, LockFile}

// Filename returns the slash-separated path of h relative to the
// repository's root. h must be valid.
func Filename(h Handle) string {
	switch h.Type {
	case ConfigFile:
		return "config"
	case PackFile:
		return "data/" + h.Name[:2] + "/" + h.Name
	}
	return string(h.Type) + "/" + h.Name
}

// Dirs returns the folders of a new repository, slash-separated and
// relative to its root, parents first: the type folders and data/00…data/ff.
func Dirs() []string {
	dirs := make([]string, 0, len(FileTypes)+256)
	for _, t := range FileTypes {
		dirs = append(dirs, string(t))
	}
	for i := range 256 {
		dirs = append(dirs, fmt.Sprintf("data/%02x", i))
	}
	return dirs
}

// IsTemp reports whether a file name is a temporary file's.
func IsTemp(name string) bool { return strings.HasPrefix(name, TempPrefix) }

// ExactReader returns a reader of rd that yields exactly n bytes: if rd
// ends earlier, the reader fails with an error wrapping io.ErrUnexpectedEOF,
// as Load's contract demands; bytes past n are never read.
func ExactReader(rd io.Reader, n int64) io.Reader {
	return &exactReader{rd: rd, left: n}
}

type exactReader struct {
	rd   io.Reader
	left int64
}

func (r *exactReader) Read(p []byte) (int, error) {
	if r.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n, err := r.rd.Read(p)
	r.left -= int64(n)
	if err == io.EOF {
		if r.left > 0 {
			return n, fmt.Errorf("read: %d bytes missing: %w", r.left, io.ErrUnexpectedEOF)
		}
		if n > 0 {
			err = nil
		}
	}
	return n, err
}
