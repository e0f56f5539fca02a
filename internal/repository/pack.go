package repository

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/sitevault/sitevault/internal/backend"
)

// Pack layout (see doc.go):
//
//	sealed blob 1 | sealed blob 2 | … | sealed header | uint32le len(sealed header)
//
// The header plaintext is one version byte (1) followed by one 46-byte
// entry per blob: type(1) flags(1) offset(u32le) length(u32le)
// raw_length(u32le) id(32).
const (
	packHeaderVersion = 1
	headerEntrySize   = 46
	flagCompressed    = 1
	maxBlobSize       = 64 << 20
)

// packBlob locates one blob inside a pack.
type packBlob struct {
	Handle BlobHandle
	Offset uint32
	Length uint32 // stored (sealed) length
	RawLen uint32 // plaintext length
	Flags  uint8
}

// packInfo is a finished pack: its name, size and blobs.
type packInfo struct {
	ID    ID
	Size  int64
	Blobs []packBlob
}

func encodePackHeader(blobs []packBlob) []byte {
	b := make([]byte, 1, 1+len(blobs)*headerEntrySize)
	b[0] = packHeaderVersion
	for _, e := range blobs {
		b = append(b, byte(e.Handle.Type), e.Flags)
		b = binary.LittleEndian.AppendUint32(b, e.Offset)
		b = binary.LittleEndian.AppendUint32(b, e.Length)
		b = binary.LittleEndian.AppendUint32(b, e.RawLen)
		b = append(b, e.Handle.ID[:]...)
	}
	return b
}

// parsePackHeader decodes a header plaintext; dataLen is the number of
// bytes before the sealed header. Errors wrap ErrDamaged.
func parsePackHeader(b []byte, dataLen int64) ([]packBlob, error) {
	if len(b) < 1 || b[0] != packHeaderVersion || (len(b)-1)%headerEntrySize != 0 {
		return nil, fmt.Errorf("pack header: bad version or length %d: %w", len(b), ErrDamaged)
	}
	n := (len(b) - 1) / headerEntrySize
	out := make([]packBlob, 0, n)
	for i := range n {
		e := b[1+i*headerEntrySize : 1+(i+1)*headerEntrySize]
		pb := packBlob{
			Handle: BlobHandle{Type: BlobType(e[0])},
			Flags:  e[1],
			Offset: binary.LittleEndian.Uint32(e[2:]),
			Length: binary.LittleEndian.Uint32(e[6:]),
			RawLen: binary.LittleEndian.Uint32(e[10:]),
		}
		copy(pb.Handle.ID[:], e[14:46])
		if err := pb.valid(dataLen); err != nil {
			return nil, fmt.Errorf("pack header entry %d: %w", i, err)
		}
		out = append(out, pb)
	}
	return out, nil
}

func (pb packBlob) valid(dataLen int64) error {
	switch {
	case pb.Handle.Type != DataBlob && pb.Handle.Type != TreeBlob:
		return fmt.Errorf("blob type %d: %w", pb.Handle.Type, ErrDamaged)
	case pb.Flags&^flagCompressed != 0:
		return fmt.Errorf("blob flags %#x: %w", pb.Flags, ErrDamaged)
	case pb.Length < sealOverhead || int64(pb.Offset)+int64(pb.Length) > dataLen:
		return fmt.Errorf("blob at %d+%d outside the pack's %d data bytes: %w", pb.Offset, pb.Length, dataLen, ErrDamaged)
	case pb.RawLen > maxBlobSize:
		return fmt.Errorf("blob raw length %d: %w", pb.RawLen, ErrDamaged)
	case pb.Flags&flagCompressed == 0 && pb.RawLen+sealOverhead != pb.Length:
		return fmt.Errorf("raw blob length %d for %d stored bytes: %w", pb.RawLen, pb.Length, ErrDamaged)
	}
	return nil
}

// parsePackTail decodes the header of a pack from its last bytes: tail is
// the end of a pack of size bytes. It returns the header entries, or
// needMore > 0 if the tail is too short to hold the sealed header.
func parsePackTail(c *crypter, tail []byte, size int64) (blobs []packBlob, needMore int, err error) {
	if len(tail) < 4 || size < int64(4+sealOverhead+1) {
		return nil, 0, fmt.Errorf("pack of %d bytes too short: %w", size, ErrDamaged)
	}
	hl := int64(binary.LittleEndian.Uint32(tail[len(tail)-4:]))
	if hl < sealOverhead+1 || hl > size-4 {
		return nil, 0, fmt.Errorf("pack header length %d in pack of %d bytes: %w", hl, size, ErrDamaged)
	}
	if hl+4 > int64(len(tail)) {
		return nil, int(hl + 4), nil
	}
	sealed := tail[int64(len(tail))-4-hl : len(tail)-4]
	plain, err := c.openKind(kindPackHeader, nil, sealed)
	if err != nil {
		return nil, 0, fmt.Errorf("pack header: %w", err)
	}
	blobs, err = parsePackHeader(plain, size-4-hl)
	return blobs, 0, err
}

// loadPackHeader reads the header of pack id (size bytes) from the backend.
func (r *Repository) loadPackHeader(ctx context.Context, id ID, size int64) ([]packBlob, error) {
	h := backend.Handle{Type: backend.PackFile, Name: id.String()}
	want := int64(64 << 10)
	for try := 0; try < 2; try++ {
		want = min(want, size)
		var tail []byte
		err := r.be.Load(ctx, h, int(want), size-want, func(rd io.Reader) error {
			var err error
			tail, err = io.ReadAll(rd)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("load pack header %v: %w", h, err)
		}
		blobs, need, err := parsePackTail(r.crypt, tail, size)
		if err != nil {
			return nil, fmt.Errorf("pack %v: %w", h, err)
		}
		if need == 0 {
			return blobs, nil
		}
		want = int64(need)
	}
	return nil, fmt.Errorf("pack %v: header does not fit: %w", h, ErrDamaged)
}

// packer accumulates sealed blobs into one pack. Without spill the whole
// pack is in buf; with spill, buf holds only the bytes not yet written to
// the pack's temporary file, so the pack's bulk stays out of the heap.
type packer struct {
	buf   []byte
	blobs []packBlob
	spill *spill
}

// size is the number of pack bytes so far.
func (p *packer) size() int {
	if p.spill != nil {
		return int(p.spill.written) + len(p.buf)
	}
	return len(p.buf)
}

// add seals payload into the pack. It fails only when a spilling packer
// cannot write its temporary file; the blob is listed in p.blobs anyway,
// so that failPacker releases it with the others.
func (p *packer) add(c *crypter, h BlobHandle, payload []byte, rawLen int, compressed bool) error {
	off := p.size()
	start := len(p.buf)
	p.buf = c.seal(p.buf, payload)
	var fl uint8
	if compressed {
		fl = flagCompressed
	}
	p.blobs = append(p.blobs, packBlob{Handle: h, Offset: uint32(off), Length: uint32(len(p.buf) - start), RawLen: uint32(rawLen), Flags: fl})
	if p.spill != nil && len(p.buf) >= spillChunk {
		return p.flushSpill()
	}
	return nil
}

func (p *packer) flushSpill() error {
	err := p.spill.write(p.buf)
	p.buf = p.buf[:0]
	return err
}

// finish appends the sealed header and trailer and names the pack; a
// spilling packer writes them to its file and names the pack from the
// hash taken while writing.
func (p *packer) finish(c *crypter) (*packInfo, error) {
	hdr := c.sealKind(kindPackHeader, nil, encodePackHeader(p.blobs))
	p.buf = append(p.buf, hdr...)
	p.buf = binary.LittleEndian.AppendUint32(p.buf, uint32(len(hdr)))
	if p.spill == nil {
		return &packInfo{ID: fileID(p.buf), Size: int64(len(p.buf)), Blobs: p.blobs}, nil
	}
	if err := p.flushSpill(); err != nil {
		return nil, err
	}
	var id ID
	p.spill.sum.Sum(id[:0])
	return &packInfo{ID: id, Size: p.spill.written, Blobs: p.blobs}, nil
}

// source returns the finished pack's bytes for verification and upload.
func (p *packer) source() io.ReaderAt {
	if p.spill != nil {
		return p.spill.store
	}
	return bytes.NewReader(p.buf)
}

// savePack verifies and uploads a finished pack of pi.Size bytes read
// from data; see verifyPack.
func (r *Repository) savePack(ctx context.Context, pi *packInfo, data io.ReaderAt) error {
	h := backend.Handle{Type: backend.PackFile, Name: pi.ID.String()}
	if err := r.verifyPack(pi, data, pi.Size); err != nil {
		return fmt.Errorf("save pack %v: refused before upload: %w", h, err)
	}
	if err := r.markWriter(ctx); err != nil {
		return fmt.Errorf("save pack %v: %w", h, err)
	}
	src := newHashingReader(io.NewSectionReader(data, 0, pi.Size))
	if err := r.be.Save(ctx, h, src, pi.Size); err != nil && !errors.Is(err, backend.ErrExist) {
		return fmt.Errorf("save pack %v: %w", h, err)
	}
	if sum := src.sum(); sum != pi.ID {
		// What the backend read is not the pack that was verified: memory
		// (or the temporary file) changed under the upload. The stored
		// file does not match its name; remove it so that nothing (orphan
		// recovery) indexes it.
		_ = r.be.Remove(ctx, h)
		return fmt.Errorf("save pack %v: the bytes sent hash to %v, not to the pack's name (memory changed during the upload): %w", h, sum.Short(), ErrPackCorrupted)
	}
	return nil
}
