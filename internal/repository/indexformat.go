package repository

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"
)

// Index file formats (see doc.go, "Index files"). Version 2, written since
// issue 9, is binary: fixed-size records, about 46 bytes per blob where
// version 1's JSON took about 150, and no hex to parse. It travels inside
// a JSON envelope, {"version":2,"data":"<base64>"}, so that sitevault
// versions that know only version 1 fail with ErrNewerFormat ("upgrade
// sitevault") instead of taking the file for damaged. Version 1 files are
// still read.
const (
	indexVersion       = 2
	indexTombSize      = 1 + 32 + 32 + 8 + 8
	indexPackHead      = 32 + 8 + 4
	indexEnvelopeStart = `{"version":2,"data":"`
	indexEnvelopeEnd   = `"}`
)

// encodeIndexFile returns the plaintext of f in version 2.
func encodeIndexFile(f *indexFile) []byte {
	n := 1 + 8 + 4 + 32*len(f.Supersedes) + 4 + 4 + indexTombSize*len(f.Tombstones)
	for _, p := range f.Packs {
		n += indexPackHead + headerEntrySize*len(p.Blobs)
	}
	b := make([]byte, 0, n)
	b = append(b, indexVersion)
	b = binary.LittleEndian.AppendUint64(b, uint64(unixNano(f.Created)))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(f.Supersedes)))
	for _, id := range f.Supersedes {
		b = append(b, id[:]...)
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(len(f.Packs)))
	for _, p := range f.Packs {
		b = append(b, p.ID[:]...)
		b = binary.LittleEndian.AppendUint64(b, uint64(p.Size))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(p.Blobs)))
		b = append(b, encodePackHeader(p.packBlobs())[1:]...)
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(len(f.Tombstones)))
	for _, t := range f.Tombstones {
		b = append(b, byte(t.Type))
		b = append(b, t.ID[:]...)
		b = append(b, t.Pack[:]...)
		b = binary.LittleEndian.AppendUint64(b, uint64(unixNano(t.Deleted)))
		b = binary.LittleEndian.AppendUint64(b, uint64(unixNano(t.Revived)))
	}
	out := make([]byte, 0, len(indexEnvelopeStart)+base64.StdEncoding.EncodedLen(len(b))+len(indexEnvelopeEnd))
	out = append(out, indexEnvelopeStart...)
	out = base64.StdEncoding.AppendEncode(out, b)
	return append(out, indexEnvelopeEnd...)
}

// unixNano encodes t, the zero time as 0.
func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// parseIndexFile decodes and validates an index file's plaintext (version
// 1 or 2). Errors wrap ErrDamaged, or ErrNewerFormat for a later version.
func parseIndexFile(b []byte) (*indexFile, error) {
	var f *indexFile
	var err error
	if bytes.HasPrefix(b, []byte(indexEnvelopeStart)) && bytes.HasSuffix(b, []byte(indexEnvelopeEnd)) {
		// the envelope as written: decode the base64 without a JSON scan
		data := b[len(indexEnvelopeStart) : len(b)-len(indexEnvelopeEnd)]
		bin := make([]byte, base64.StdEncoding.DecodedLen(len(data)))
		n, derr := base64.StdEncoding.Decode(bin, data)
		if derr != nil {
			return nil, fmt.Errorf("parse index: %v: %w", derr, ErrDamaged)
		}
		f, err = decodeIndexV2(bin[:n])
	} else {
		var env struct {
			indexFile
			Data []byte `json:"data"`
		}
		if jerr := json.Unmarshal(b, &env); jerr != nil {
			return nil, fmt.Errorf("parse index: %v: %w", jerr, ErrDamaged)
		}
		switch {
		case env.Version > indexVersion:
			return nil, fmt.Errorf("index version %d: %w", env.Version, ErrNewerFormat)
		case env.Version == 2:
			f, err = decodeIndexV2(env.Data)
		case env.Version == 1:
			f = &env.indexFile
		default:
			return nil, fmt.Errorf("index version %d: %w", env.Version, ErrDamaged)
		}
	}
	if err != nil {
		return nil, err
	}
	for _, p := range f.Packs {
		for i := range p.Blobs {
			if err := p.Blobs[i].packBlob().valid(p.Size); err != nil {
				return nil, fmt.Errorf("index pack %v: %w", p.ID.Short(), err)
			}
		}
	}
	for _, t := range f.Tombstones {
		if t.Type != DataBlob && t.Type != TreeBlob {
			return nil, fmt.Errorf("index tombstone type %d: %w", t.Type, ErrDamaged)
		}
	}
	return f, nil
}

// indexReader reads a version 2 binary index; counts are checked against
// the bytes left before anything is allocated (the file is hostile).
type indexReader struct {
	b   []byte
	err error
}

func (r *indexReader) take(n int) []byte {
	if r.err != nil || n < 0 || n > len(r.b) {
		if r.err == nil {
			r.err = fmt.Errorf("parse index: truncated: %w", ErrDamaged)
		}
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *indexReader) u8() uint8 {
	if b := r.take(1); b != nil {
		return b[0]
	}
	return 0
}

func (r *indexReader) u32() uint32 {
	if b := r.take(4); b != nil {
		return binary.LittleEndian.Uint32(b)
	}
	return 0
}

func (r *indexReader) u64() uint64 {
	if b := r.take(8); b != nil {
		return binary.LittleEndian.Uint64(b)
	}
	return 0
}

func (r *indexReader) id() (id ID) {
	copy(id[:], r.take(32))
	return id
}

// count reads a count of records of size bytes each and checks they fit.
func (r *indexReader) count(size int) int {
	n := int(r.u32())
	if r.err == nil && n > len(r.b)/size {
		r.err = fmt.Errorf("parse index: %d records of %d bytes in %d bytes: %w", n, size, len(r.b), ErrDamaged)
	}
	if r.err != nil {
		return 0
	}
	return n
}

func decodeIndexV2(b []byte) (*indexFile, error) {
	if len(b) < 1 || b[0] != indexVersion {
		return nil, fmt.Errorf("parse index: not version %d: %w", indexVersion, ErrDamaged)
	}
	r := &indexReader{b: b[1:]}
	f := &indexFile{Version: indexVersion}
	f.Created = fromUnixNano(int64(r.u64()))
	if n := r.count(32); n > 0 {
		f.Supersedes = make([]ID, n)
		for i := range f.Supersedes {
			f.Supersedes[i] = r.id()
		}
	}
	np := r.count(indexPackHead)
	f.Packs = make([]indexPack, 0, np)
	for range np {
		p := indexPack{ID: r.id(), Size: int64(r.u64())}
		nb := r.count(headerEntrySize)
		raw := r.take(nb * headerEntrySize)
		if r.err != nil {
			break
		}
		if p.Size < 0 {
			return nil, fmt.Errorf("parse index: pack size %d: %w", p.Size, ErrDamaged)
		}
		p.Blobs = make([]indexBlob, nb)
		for i := range p.Blobs {
			e := raw[i*headerEntrySize : (i+1)*headerEntrySize]
			ib := indexBlob{Type: BlobType(e[0]), Compressed: e[1]&flagCompressed != 0,
				Offset: binary.LittleEndian.Uint32(e[2:]), Length: binary.LittleEndian.Uint32(e[6:]), RawLength: binary.LittleEndian.Uint32(e[10:])}
			if e[1]&^flagCompressed != 0 {
				return nil, fmt.Errorf("parse index: blob flags %#x: %w", e[1], ErrDamaged)
			}
			copy(ib.ID[:], e[14:46])
			p.Blobs[i] = ib
		}
		f.Packs = append(f.Packs, p)
	}
	if nt := r.count(indexTombSize); nt > 0 {
		f.Tombstones = make([]tombRecord, nt)
		for i := range f.Tombstones {
			t := tombRecord{Type: BlobType(r.u8())}
			t.ID, t.Pack = r.id(), r.id()
			t.Deleted = fromUnixNano(int64(r.u64()))
			t.Revived = fromUnixNano(int64(r.u64()))
			f.Tombstones[i] = t
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("parse index: %d bytes after the end: %w", len(r.b), ErrDamaged)
	}
	return f, nil
}

// rawPack is one pack of a version 2 file, its entries not yet decoded.
type rawPack struct {
	id      ID
	size    int64
	entries []byte // n × headerEntrySize
}

// loadIndexChunk loads one index file straight into entries for the bulk
// load (LoadIndex), without the per-blob structs of indexFile: version 2
// records become 48-byte entries in one pass, validated as parseIndexFile
// validates them. num gives the pack numbers of ids (the caller
// serialises it). Errors are those of loadIndexFile.
func (r *Repository) loadIndexChunk(ctx context.Context, id ID, num func([]ID) []uint32) (*indexChunk, error) {
	h, plain, err := r.loadIndexPlain(ctx, id)
	if err != nil {
		return nil, err
	}
	var c *indexChunk
	if bytes.HasPrefix(plain, []byte(indexEnvelopeStart)) && bytes.HasSuffix(plain, []byte(indexEnvelopeEnd)) {
		data := plain[len(indexEnvelopeStart) : len(plain)-len(indexEnvelopeEnd)]
		bin := make([]byte, base64.StdEncoding.DecodedLen(len(data)))
		n, derr := base64.StdEncoding.Decode(bin, data)
		if derr != nil {
			return nil, fmt.Errorf("index %v: parse: %v: %w", h, derr, ErrDamaged)
		}
		plain = nil
		c, err = decodeIndexChunk(bin[:n], num)
	} else {
		var f *indexFile
		if f, err = parseIndexFile(plain); err == nil {
			c = chunkOf(f, num)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("index %v: %w", h, err)
	}
	c.id = id
	return c, nil
}

// chunkOf converts a parsed index file.
func chunkOf(f *indexFile, num func([]ID) []uint32) *indexChunk {
	c := &indexChunk{supersedes: f.Supersedes, tombs: f.Tombstones, packs: make([]ID, len(f.Packs))}
	n := 0
	for i, p := range f.Packs {
		c.packs[i] = p.ID
		n += len(p.Blobs)
	}
	nums := num(c.packs)
	c.entries = make([]entry, 0, n)
	for i, p := range f.Packs {
		for j := range p.Blobs {
			c.entries = append(c.entries, makeIndexEntry(&p.Blobs[j], nums[i]))
		}
	}
	return c
}

// decodeIndexChunk is decodeIndexV2 straight into entries.
func decodeIndexChunk(b []byte, num func([]ID) []uint32) (*indexChunk, error) {
	if len(b) < 1 || b[0] != indexVersion {
		return nil, fmt.Errorf("parse index: not version %d: %w", indexVersion, ErrDamaged)
	}
	r := &indexReader{b: b[1:]}
	c := &indexChunk{}
	r.u64() // created
	if n := r.count(32); n > 0 {
		c.supersedes = make([]ID, n)
		for i := range c.supersedes {
			c.supersedes[i] = r.id()
		}
	}
	np := r.count(indexPackHead)
	packs := make([]rawPack, 0, np)
	total := 0
	for range np {
		p := rawPack{id: r.id(), size: int64(r.u64())}
		nb := r.count(headerEntrySize)
		p.entries = r.take(nb * headerEntrySize)
		if r.err != nil {
			return nil, r.err
		}
		if p.size < 0 {
			return nil, fmt.Errorf("parse index: pack size %d: %w", p.size, ErrDamaged)
		}
		packs = append(packs, p)
		total += nb
	}
	if nt := r.count(indexTombSize); nt > 0 {
		c.tombs = make([]tombRecord, nt)
		for i := range c.tombs {
			t := tombRecord{Type: BlobType(r.u8())}
			t.ID, t.Pack = r.id(), r.id()
			t.Deleted = fromUnixNano(int64(r.u64()))
			t.Revived = fromUnixNano(int64(r.u64()))
			if t.Type != DataBlob && t.Type != TreeBlob {
				return nil, fmt.Errorf("index tombstone type %d: %w", t.Type, ErrDamaged)
			}
			c.tombs[i] = t
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("parse index: %d bytes after the end: %w", len(r.b), ErrDamaged)
	}
	c.packs = make([]ID, len(packs))
	for i := range packs {
		c.packs[i] = packs[i].id
	}
	nums := num(c.packs)
	c.entries = make([]entry, 0, total)
	for i, p := range packs {
		for off := 0; off < len(p.entries); off += headerEntrySize {
			e := p.entries[off : off+headerEntrySize]
			pb := packBlob{Handle: BlobHandle{Type: BlobType(e[0])}, Flags: e[1],
				Offset: binary.LittleEndian.Uint32(e[2:]), Length: binary.LittleEndian.Uint32(e[6:]), RawLen: binary.LittleEndian.Uint32(e[10:])}
			copy(pb.Handle.ID[:], e[14:46])
			if err := pb.valid(p.size); err != nil {
				return nil, fmt.Errorf("index pack %v: %w", p.id.Short(), err)
			}
			c.entries = append(c.entries, makeEntry(pb, nums[i]))
		}
	}
	return c, nil
}
