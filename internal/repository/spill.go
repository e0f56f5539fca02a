package repository

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"syscall"
)

// spillChunk is how many sealed bytes a spilling packer gathers in memory
// before it writes them to its temporary file.
const spillChunk = 1 << 20

// spillStore is where a spilling packer writes its pack: a temporary file,
// or a fake in tests.
type spillStore interface {
	io.Writer
	io.ReaderAt
	Close() error
}

// createSpill opens the temporary file of one pack in dir; tests replace
// it to fake a full disk.
var createSpill = func(dir string) (spillStore, error) {
	// CreateTemp opens with O_EXCL and mode 0600: no other user reads the
	// file, no existing file is reused.
	f, err := os.CreateTemp(dir, "sitevault-pack-*")
	if err != nil {
		return nil, err
	}
	// The file is unlinked at once and used through its descriptor only,
	// so a process killed at any moment leaves nothing behind in dir. A
	// system that cannot unlink an open file keeps the name until Close.
	if err := os.Remove(f.Name()); err != nil {
		return &namedSpill{File: f}, nil
	}
	return f, nil
}

// namedSpill is a temporary file that could not be unlinked while open:
// Close removes it.
type namedSpill struct{ *os.File }

func (n *namedSpill) Close() error {
	err := n.File.Close()
	if rerr := os.Remove(n.Name()); rerr != nil && err == nil {
		err = rerr
	}
	return err
}

// spill is a pack written to a temporary file as it is filled (see
// Options.SpillDir). The file holds only what a pack holds: blobs sealed
// (encrypted and authenticated) by crypter.seal before they reach the
// packer, then the sealed header. No plaintext is ever written to it.
type spill struct {
	dir     string
	store   spillStore
	written int64     // bytes written to store
	sum     hash.Hash // SHA-256 of the bytes written: the pack's name
}

func newSpill(dir string) (*spill, error) {
	st, err := createSpill(dir)
	if err != nil {
		return nil, spillError(dir, "create a temporary pack file", err)
	}
	return &spill{dir: dir, store: st, sum: sha256.New()}, nil
}

// write appends b to the file and to the pack's hash.
func (s *spill) write(b []byte) error {
	n, err := s.store.Write(b)
	s.written += int64(n)
	if err != nil {
		return spillError(s.dir, "write a temporary pack file", err)
	}
	s.sum.Write(b)
	return nil
}

func (s *spill) close() { _ = s.store.Close() }

func spillError(dir, op string, err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("%s in %s: %w (the disk is full: free space there, or point TMPDIR at a folder with more room)", op, dir, err)
	}
	return fmt.Errorf("%s in %s: %w", op, dir, err)
}
