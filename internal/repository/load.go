package repository

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/sitevault/sitevault/internal/backend"
)

// HasBlob reports whether the index holds the blob live (prune has not
// tombstoned it) or a SaveBlob of it is under way in this process.
func (r *Repository) HasBlob(t BlobType, id ID) bool {
	h := BlobHandle{ID: id, Type: t}
	if r.idx.Load().has(h) {
		return true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.inflight[h]
	return ok
}

// LoadBlob reads, authenticates and decompresses a blob into buf (grown as
// needed) and checks that its content hashes to id. When a blob has copies
// in several packs, a copy that is missing or damaged is skipped for the
// next (live copies first). A blob whose every copy is damaged is an
// error wrapping ErrDamaged; an unknown one wraps ErrBlobNotFound.
func (r *Repository) LoadBlob(ctx context.Context, t BlobType, id ID, buf []byte) ([]byte, error) {
	h := BlobHandle{ID: id, Type: t}
	x := r.idx.Load()
	e, pack, ok := x.lookup(h)
	if !ok {
		return nil, fmt.Errorf("load blob %v: %w", h, ErrBlobNotFound)
	}
	out, err := r.loadCopy(ctx, pack, e.packBlob(), buf)
	if err == nil {
		return out, nil
	}
	first := err
	for _, c := range x.copies(h) {
		if ctx.Err() != nil {
			break
		}
		p := x.packID(c.pack)
		if p == pack {
			continue
		}
		r.log.Warn("blob copy unreadable, trying another", "blob", h.String(), "pack", pack.String(), "err", err)
		if out, err = r.loadCopy(ctx, p, c.packBlob(), buf); err == nil {
			return out, nil
		}
		pack = p
	}
	return nil, fmt.Errorf("load blob %v: %w", h, first)
}

// loadCopy reads the copy pb of a blob from pack.
func (r *Repository) loadCopy(ctx context.Context, pack ID, pb packBlob, buf []byte) ([]byte, error) {
	ph := backend.Handle{Type: backend.PackFile, Name: pack.String()}
	var sealed []byte
	err := r.be.Load(ctx, ph, int(pb.Length), int64(pb.Offset), func(rd io.Reader) error {
		sealed = r.getBuf(int(pb.Length))[:pb.Length]
		_, err := io.ReadFull(rd, sealed)
		return err
	})
	if err != nil {
		if backend.IsPermanent(err) && errors.Is(err, io.ErrUnexpectedEOF) {
			// The range the index names lies outside the file: the pack
			// is shorter than when it was indexed.
			return nil, fmt.Errorf("read %v: pack is shorter than the index says (truncated?): %w: %w", ph, ErrDamaged, err)
		}
		return nil, fmt.Errorf("read %v: %w", ph, err)
	}
	defer r.putBuf(sealed)
	out, err := r.openBlob(pb, sealed, buf[:0])
	if err != nil {
		return nil, fmt.Errorf("in %v: %w", ph, err)
	}
	return out, nil
}

// openBlob authenticates, decompresses and verifies one sealed blob.
func (r *Repository) openBlob(pb packBlob, sealed, dst []byte) ([]byte, error) {
	var out []byte
	if pb.Flags&flagCompressed != 0 {
		tmp := r.getBuf(len(sealed))
		plain, err := r.crypt.open(tmp[:0], sealed)
		if err != nil {
			r.putBuf(tmp)
			return nil, err
		}
		out, err = decompress(dst, plain, int(pb.RawLen))
		r.putBuf(plain)
		if err != nil {
			return nil, err
		}
	} else {
		if cap(dst) < int(pb.RawLen) {
			dst = make([]byte, 0, pb.RawLen)
		}
		var err error
		out, err = r.crypt.open(dst, sealed)
		if err != nil {
			return nil, err
		}
	}
	if len(out) != int(pb.RawLen) {
		return nil, fmt.Errorf("blob has %d bytes, index says %d: %w", len(out), pb.RawLen, ErrDamaged)
	}
	if r.crypt.blobID(out) != pb.Handle.ID {
		return nil, fmt.Errorf("content does not match the blob id: %w", ErrDamaged)
	}
	return out, nil
}

// WriteContent writes the concatenated content of data blobs ids to w,
// loading up to four blobs ahead in parallel: memory is bounded by five
// blobs, held in buffers reused across calls.
func (r *Repository) WriteContent(ctx context.Context, ids []ID, w io.Writer) error {
	if len(ids) == 1 {
		// One blob (most files): no goroutine.
		buf := getChunkBuf()
		defer chunkCopies.Put(buf)
		data, err := r.LoadBlob(ctx, DataBlob, ids[0], (*buf)[:0])
		if err != nil {
			return fmt.Errorf("write content: %w", err)
		}
		*buf = data[:0]
		if _, err := w.Write(data); err != nil {
			return fmt.Errorf("write content: %w", err)
		}
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		buf  *[]byte
		data []byte
		err  error
	}
	const ahead = 4
	futs := make(chan chan result, ahead)
	go func() {
		defer close(futs)
		for _, id := range ids {
			ch := make(chan result, 1)
			select {
			case futs <- ch:
			case <-ctx.Done():
				return
			}
			go func() {
				buf := getChunkBuf()
				data, err := r.LoadBlob(ctx, DataBlob, id, (*buf)[:0])
				ch <- result{buf, data, err}
			}()
		}
	}()
	// Buffers of results not consumed (after an error) are left to the GC.
	n := 0
	for ch := range futs {
		res := <-ch
		if res.err != nil {
			return fmt.Errorf("write content: %w", res.err)
		}
		_, err := w.Write(res.data)
		*res.buf = res.data[:0]
		chunkCopies.Put(res.buf)
		if err != nil {
			return fmt.Errorf("write content: %w", err)
		}
		n++
	}
	if n != len(ids) {
		return fmt.Errorf("write content: %w", ctx.Err())
	}
	return nil
}
