package repository

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"slices"
)

// ErrPackCorrupted: a pack changed in memory between sealing and upload (a
// bit flip in RAM); the pack was not uploaded, or removed again, and is
// never indexed. The backup fails; running it again stores the data anew.
var ErrPackCorrupted = errors.New("pack corrupted in memory before upload: not stored; check the machine's memory and run the backup again")

// packSealedHook, if set, sees every finished pack before it is verified
// and uploaded; tests flip bits in it.
var packSealedHook func(data []byte)

// verifyPack checks a finished pack before upload, as a reader will: the
// header opens and lists the blobs packed, and every blob authenticates,
// decompresses to its length and hashes to its id. A bit flipped in memory anywhere between a blob's
// hashing and now fails here, before an index can name the pack.
//
// That the bytes hash to the pack's name is checked on the bytes the
// backend reads (hashingReader), one SHA-256 pass for both.
func (r *Repository) verifyPack(pi *packInfo, data io.ReaderAt, size int64) error {
	tail := make([]byte, min(size, 1<<20))
	if _, err := data.ReadAt(tail, size-int64(len(tail))); err != nil {
		return fmt.Errorf("read the pack back: %w", err)
	}
	blobs, need, err := parsePackTail(r.crypt, tail, size)
	if err == nil && need > 0 {
		tail = make([]byte, need)
		if _, err := data.ReadAt(tail, size-int64(need)); err != nil {
			return fmt.Errorf("read the pack back: %w", err)
		}
		blobs, _, err = parsePackTail(r.crypt, tail, size)
	}
	if err != nil {
		return fmt.Errorf("pack header: %v: %w", err, ErrPackCorrupted)
	}
	if len(blobs) != len(pi.Blobs) {
		return fmt.Errorf("pack header lists %d blobs, %d were packed: %w", len(blobs), len(pi.Blobs), ErrPackCorrupted)
	}
	var sealed, plain, raw []byte
	for i, pb := range blobs {
		if pb != pi.Blobs[i] {
			return fmt.Errorf("pack header entry %d differs from the blob packed: %w", i, ErrPackCorrupted)
		}
		sealed = slices.Grow(sealed[:0], int(pb.Length))[:pb.Length]
		if _, err := data.ReadAt(sealed, int64(pb.Offset)); err != nil {
			return fmt.Errorf("read the pack back: %w", err)
		}
		plain, err = r.crypt.open(plain[:0], sealed)
		if err != nil {
			return fmt.Errorf("blob %v: %v: %w", pb.Handle.ID.Short(), err, ErrPackCorrupted)
		}
		out := plain
		if pb.Flags&flagCompressed != 0 {
			raw, err = decompress(raw[:0], plain, int(pb.RawLen))
			if err != nil {
				return fmt.Errorf("blob %v: %v: %w", pb.Handle.ID.Short(), err, ErrPackCorrupted)
			}
			out = raw
		}
		if len(out) != int(pb.RawLen) || r.crypt.blobID(out) != pb.Handle.ID {
			return fmt.Errorf("blob %v: content does not match its id: %w", pb.Handle.ID.Short(), ErrPackCorrupted)
		}
	}
	return nil
}

// hashingReader hashes what a backend reads of data; a rewind (a retry)
// starts the hash again.
type hashingReader struct {
	rd io.ReadSeeker
	h  hash.Hash
}

func newHashingReader(rd io.ReadSeeker) *hashingReader {
	return &hashingReader{rd: rd, h: sha256.New()}
}

func (r *hashingReader) Read(p []byte) (int, error) {
	n, err := r.rd.Read(p)
	r.h.Write(p[:n])
	return n, err
}

func (r *hashingReader) Seek(off int64, whence int) (int64, error) {
	if off == 0 && whence == io.SeekCurrent {
		return r.rd.Seek(0, io.SeekCurrent) // where am I: changes nothing
	}
	if off != 0 || whence != io.SeekStart {
		return 0, fmt.Errorf("hashing reader: seek %d from %d: only rewinding is supported", off, whence)
	}
	r.h.Reset()
	return r.rd.Seek(0, io.SeekStart)
}

// sum is the SHA-256 of the bytes read since the last rewind; the reader
// is read to its end first, as a backend may stop at the size it wants.
func (r *hashingReader) sum() ID {
	_, _ = io.Copy(r.h, r.rd)
	var id ID
	r.h.Sum(id[:0])
	return id
}
