package seal

import (
	"errors"
	"fmt"
	"io/fs"
)

// ErrLooseMode means a secret file (or the folder holding them) may be
// read or written by other users; a ModeError says which and how to fix it.
var ErrLooseMode = errors.New("other users may read it")

// ModeError reports a secret file whose mode lets group or others in.
type ModeError struct {
	Path string
	Mode fs.FileMode
	What string // "seal key file", "catalog" …
}

func (e *ModeError) Error() string {
	return fmt.Sprintf("%s %s has mode %04o, so %s; run: chmod 600 %s", e.What, e.Path, uint32(e.Mode.Perm()), ErrLooseMode, e.Path)
}

func (e *ModeError) Unwrap() error { return ErrLooseMode }

// CheckMode returns a *ModeError when fi (of the file at path) lets group
// or others read or write it.
func CheckMode(path string, fi fs.FileInfo, what string) error {
	if fi.Mode().Perm()&0o077 != 0 {
		return &ModeError{Path: path, Mode: fi.Mode(), What: what}
	}
	return nil
}
