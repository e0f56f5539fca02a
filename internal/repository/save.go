package repository

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/sitevault/sitevault/internal/repository/chunker"
)

// SaveBlob stores data as a blob of type t unless the index already has it
// live or another call is storing it (known reports that). It is safe for
// concurrent use and does its hashing, compression and encryption in the
// caller's goroutine, so callers get parallelism by calling it from several
// goroutines; uploads run in the background, bounded by
// Options.Connections. data may be reused after the call returns.
//
// A blob is readable (LoadBlob) once its pack is uploaded; Flush waits for
// that. Upload errors surface from later SaveBlob calls and from Flush.
func (r *Repository) SaveBlob(ctx context.Context, t BlobType, data []byte) (id ID, known bool, err error) {
	if t != DataBlob && t != TreeBlob {
		return ID{}, false, fmt.Errorf("save blob: invalid type %d", t)
	}
	if len(data) > maxBlobSize {
		return ID{}, false, fmt.Errorf("save blob: %d bytes is larger than %d", len(data), maxBlobSize)
	}
	id = r.crypt.blobID(data)
	h := BlobHandle{ID: id, Type: t}
	known, err = r.saveBlob(ctx, h, data, false)
	return id, known, err
}

// saveBlob stores data under h; force skips deduplication against the
// index (used to re-save a blob whose copy was tombstoned).
func (r *Repository) saveBlob(ctx context.Context, h BlobHandle, data []byte, force bool) (bool, error) {
	r.mu.Lock()
	if r.saveErr != nil {
		err := r.saveErr
		r.mu.Unlock()
		return false, err
	}
	r.used[h] = r.now().UnixNano()
	if _, ok := r.inflight[h]; ok {
		r.mu.Unlock()
		return true, nil
	}
	if !force && r.idx.Load().has(h) {
		r.mu.Unlock()
		return true, nil
	}
	r.inflight[h] = struct{}{}
	r.mu.Unlock()

	var payload []byte
	compressed := false
	if r.params.Compression == "zstd" && worthCompressing(data) {
		bp := r.getBuf(len(data))
		payload, compressed = compressAnyway(bp[:0], data)
		if !compressed {
			r.putBuf(bp)
		} else {
			defer r.putBuf(payload)
		}
	}
	if !compressed {
		payload = data
	}

	var p *packer
	select {
	case p = <-r.packers:
	case <-ctx.Done():
		r.dropInflight(h)
		return false, ctx.Err()
	}
	if p == nil {
		var err error
		if p, err = r.newPacker(); err != nil {
			r.packers <- nil
			r.dropInflight(h)
			return false, fmt.Errorf("save blob: %w", err)
		}
	}
	if len(p.blobs) > 0 && p.size()+len(payload)+packRoom(len(p.blobs)+1) > r.packLimit(p) {
		// The blob would grow the pack's buffer (append doubles it), or
		// the spilled pack past its size: upload the pack as it is and
		// start the next one with the blob.
		full := p
		p, err := r.newPacker()
		if err != nil {
			r.packers <- nil
			r.dropInflight(h)
			if uerr := r.startUpload(ctx, full); uerr != nil {
				return false, uerr
			}
			return false, fmt.Errorf("save blob: %w", err)
		}
		if err := p.add(r.crypt, h, payload, len(data), compressed); err != nil {
			r.dropPacker(p, err)
			if uerr := r.startUpload(ctx, full); uerr != nil {
				return false, uerr
			}
			return false, fmt.Errorf("save blob: %w", err)
		}
		r.packers <- p
		return false, r.startUpload(ctx, full)
	}
	if err := p.add(r.crypt, h, payload, len(data), compressed); err != nil {
		r.dropPacker(p, err)
		return false, fmt.Errorf("save blob: %w", err)
	}
	if p.size() < r.opts.PackSize {
		r.packers <- p
		return false, nil
	}
	r.packers <- nil
	if err := r.startUpload(ctx, p); err != nil {
		return false, err
	}
	return false, nil
}

// newPacker starts a pack: in memory, or in a temporary file of
// Options.SpillDir.
func (r *Repository) newPacker() (*packer, error) {
	if r.opts.SpillDir == "" {
		return &packer{buf: getPackBuf(r.opts.PackSize)}, nil
	}
	s, err := newSpill(r.opts.SpillDir)
	if err != nil {
		return nil, err
	}
	return &packer{buf: getSpillBuf(), spill: s}, nil
}

// packLimit is the size a pack must not outgrow: its buffer's capacity in
// memory, an eighth over PackSize when spilled.
func (r *Repository) packLimit(p *packer) int {
	if p.spill != nil {
		return r.opts.PackSize + r.opts.PackSize/8
	}
	return cap(p.buf)
}

// dropPacker gives up p after its temporary file failed: its blobs are
// lost, so the session fails (failPacker) and p's slot is freed.
func (r *Repository) dropPacker(p *packer, err error) {
	r.failPacker(p, err)
	r.releasePacker(p)
	r.packers <- nil
}

// releasePacker returns p's buffer to its pool and closes (so removes)
// its temporary file.
func (r *Repository) releasePacker(p *packer) {
	buf := p.buf
	p.buf = nil
	if p.spill != nil {
		p.spill.close()
		spillBufs.Put(&buf)
		return
	}
	packBufs.Put(&buf)
}

func (r *Repository) dropInflight(h BlobHandle) {
	r.mu.Lock()
	delete(r.inflight, h)
	r.mu.Unlock()
}

var bufPool sync.Pool // *[]byte scratch for compression

func (r *Repository) getBuf(n int) []byte {
	if v, ok := bufPool.Get().(*[]byte); ok && cap(*v) >= n {
		return *v
	}
	return make([]byte, 0, n+n/16+64)
}

func (r *Repository) putBuf(b []byte) { bufPool.Put(&b) }

var packBufs sync.Pool // *[]byte pack buffers

// packRoom is what sealing one blob and finishing a pack of n blobs add
// beyond the blobs' payloads.
func packRoom(n int) int { return sealOverhead + 1 + n*headerEntrySize + sealOverhead + 4 }

var spillBufs sync.Pool // *[]byte write buffers of spilling packers

func getSpillBuf() []byte {
	if v, ok := spillBufs.Get().(*[]byte); ok {
		return (*v)[:0]
	}
	return make([]byte, 0, spillChunk+spillChunk/4)
}

func getPackBuf(size int) []byte {
	if v, ok := packBufs.Get().(*[]byte); ok && cap(*v) >= size {
		return (*v)[:0]
	}
	return make([]byte, 0, size+size/8)
}

// startUpload finishes p and uploads it in the background; it blocks while
// Connections uploads are running (backpressure on SaveBlob).
func (r *Repository) startUpload(ctx context.Context, p *packer) error {
	select {
	case r.uploadSem <- struct{}{}:
	case <-ctx.Done():
		r.failPacker(p, ctx.Err())
		return ctx.Err()
	}
	r.uploads.Add(1)
	// The pack holds blobs of many callers, so its upload must not die with
	// the context of whichever call happened to fill it: it runs detached
	// from that context's cancellation (the work is bounded: one pack), and
	// Flush and Close wait for it.
	uctx := context.WithoutCancel(ctx)
	go func() {
		defer r.uploads.Done()
		defer func() { <-r.uploadSem }()
		if err := r.upload(uctx, p); err != nil {
			r.setErr(err)
		}
	}()
	return nil
}

func (r *Repository) failPacker(p *packer, err error) {
	r.setErr(err)
	r.mu.Lock()
	for _, b := range p.blobs {
		delete(r.inflight, b.Handle)
	}
	r.mu.Unlock()
}

func (r *Repository) upload(ctx context.Context, p *packer) error {
	pi, err := p.finish(r.crypt)
	if err == nil {
		if packSealedHook != nil && p.spill == nil {
			packSealedHook(p.buf)
		}
		err = r.savePack(ctx, pi, p.source())
	}
	r.releasePacker(p) // removes the temporary file, uploaded or not
	if err != nil {
		r.failPacker(p, err)
		return err
	}
	r.log.Debug("pack uploaded", "pack", pi.ID.String(), "size", pi.Size, "blobs", len(pi.Blobs))
	r.idx.Load().addPack(pi)
	r.mu.Lock()
	r.saved.Packs++
	r.saved.PackBytes += pi.Size
	r.saved.Blobs += int64(len(pi.Blobs))
	for _, b := range pi.Blobs {
		r.saved.RawBytes += int64(b.RawLen)
	}
	for _, b := range pi.Blobs {
		delete(r.inflight, b.Handle)
	}
	r.pending = append(r.pending, pi)
	n := len(r.pending)
	r.mu.Unlock()
	if n >= r.opts.IndexEvery {
		return r.writePendingIndex(ctx)
	}
	return nil
}

// SaveStats counts what this Repository (this process) stored: the packs
// it uploaded and the blobs in them. Backups take the difference before
// and after (Sub) for their "added" figures: no listing of data/, and
// other writers of the repository do not count.
type SaveStats struct {
	Packs     int64
	PackBytes int64 // bytes of pack files uploaded (after compression and encryption)
	Blobs     int64
	RawBytes  int64 // plaintext bytes of the blobs stored
}

// Sub returns s minus o.
func (s SaveStats) Sub(o SaveStats) SaveStats {
	return SaveStats{Packs: s.Packs - o.Packs, PackBytes: s.PackBytes - o.PackBytes, Blobs: s.Blobs - o.Blobs, RawBytes: s.RawBytes - o.RawBytes}
}

// Saved returns what this Repository has uploaded so far (packs whose
// upload finished; call Flush first for a backup's total).
func (r *Repository) Saved() SaveStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.saved
}

// Flush uploads every unfinished pack, waits for all uploads and writes
// the index for them. Call it before SaveSnapshot (which calls it too).
func (r *Repository) Flush(ctx context.Context) error {
	// take every packer so no SaveBlob is adding to one meanwhile
	var full []*packer
	for range r.opts.Packers {
		select {
		case p := <-r.packers:
			if p != nil && len(p.blobs) > 0 {
				full = append(full, p)
			} else if p != nil {
				r.releasePacker(p)
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	for range r.opts.Packers {
		r.packers <- nil
	}
	for _, p := range full {
		if err := r.startUpload(ctx, p); err != nil {
			return fmt.Errorf("flush: %w", err)
		}
	}
	r.uploads.Wait()
	if err := r.err(); err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	if err := r.writePendingIndex(ctx); err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	return nil
}

// SaveStream chunks rd with the repository's content-defined chunker and
// saves every chunk as a data blob; it returns the chunk ids in order and
// the number of bytes read. The first chunk is saved in the caller's
// goroutine, so a file of one chunk (most files of a site are smaller than
// the chunker's minimum size) costs no goroutine and no copy; the following
// chunks are hashed, compressed and encrypted by up to two workers while
// the next ones are read. Memory is bounded by three chunk copies per call
// (each at most the chunker's max size), taken from a pool shared by calls.
func (r *Repository) SaveStream(ctx context.Context, rd io.Reader) (ids []ID, size int64, err error) {
	c, err := r.newChunker(rd)
	if err != nil {
		return nil, 0, fmt.Errorf("save stream: %w", err)
	}
	defer r.chunkBufs.Put(c)

	chunk, err := c.Next()
	if errors.Is(err, io.EOF) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("save stream: read: %w", err)
	}
	size = int64(len(chunk))
	id, _, err := r.SaveBlob(ctx, DataBlob, chunk)
	if err != nil {
		return nil, size, fmt.Errorf("save stream: %w", err)
	}
	ids = append(ids, id)

	chunk, err = c.Next()
	if errors.Is(err, io.EOF) {
		return ids, size, nil
	}
	if err != nil {
		return nil, size, fmt.Errorf("save stream: read: %w", err)
	}

	const workers = 2
	type job struct {
		i    int
		data *[]byte
	}
	jobs := make(chan job, workers)
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
	)
	free := make(chan *[]byte, workers+1)
	for range workers + 1 {
		free <- nil
	}
	for range workers {
		wg.Go(func() {
			for j := range jobs {
				id, _, err := r.SaveBlob(ctx, DataBlob, *j.data)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				ids[j.i] = id
				mu.Unlock()
				free <- j.data
			}
		})
	}
	var rerr error
	for i := 1; ; i++ {
		if i > 1 {
			chunk, err = c.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				rerr = fmt.Errorf("read: %w", err)
				break
			}
		}
		mu.Lock()
		ids = append(ids, ID{})
		failed := firstErr != nil
		mu.Unlock()
		if failed {
			break
		}
		size += int64(len(chunk))
		buf := <-free
		if buf == nil {
			buf = getChunkBuf()
		}
		*buf = append((*buf)[:0], chunk...)
		jobs <- job{i, buf}
	}
	close(jobs)
	wg.Wait()
	close(free)
	for b := range free {
		if b != nil {
			chunkCopies.Put(b)
		}
	}
	if rerr == nil {
		rerr = firstErr
	}
	if rerr != nil {
		return nil, size, fmt.Errorf("save stream: %w", rerr)
	}
	return ids, size, nil
}

// chunkCopies holds the chunk copies SaveStream hands its workers
// (*[]byte); they grow to the largest chunk they held.
var chunkCopies sync.Pool

func getChunkBuf() *[]byte {
	if b, ok := chunkCopies.Get().(*[]byte); ok {
		return b
	}
	return new([]byte)
}

func (r *Repository) newChunker(rd io.Reader) (*chunker.Chunker, error) {
	if c, ok := r.chunkBufs.Get().(*chunker.Chunker); ok {
		c.Reset(rd)
		return c, nil
	}
	return chunker.New(rd, r.table, r.params.Chunker)
}

// waitCounter counts running uploads. SaveBlob (Add) and Flush (Wait) of
// concurrent backups overlap freely, which sync.WaitGroup forbids.
type waitCounter struct {
	mu   sync.Mutex
	n    int
	cond *sync.Cond
}

func (w *waitCounter) init() {
	if w.cond == nil {
		w.cond = sync.NewCond(&w.mu)
	}
}

// Add changes the count by d.
func (w *waitCounter) Add(d int) {
	w.mu.Lock()
	w.init()
	w.n += d
	if w.n == 0 {
		w.cond.Broadcast()
	}
	w.mu.Unlock()
}

// Done decrements the count.
func (w *waitCounter) Done() { w.Add(-1) }

// Wait blocks until the count is zero.
func (w *waitCounter) Wait() {
	w.mu.Lock()
	w.init()
	for w.n > 0 {
		w.cond.Wait()
	}
	w.mu.Unlock()
}

// ContentMatches reports whether rd holds exactly the content whose chunk
// ids are ids: it cuts rd into chunks as SaveStream does and compares each
// chunk's keyed id in order, stopping at the first difference. Nothing is
// stored. A restore uses it to leave alone a file that is already right.
func (r *Repository) ContentMatches(ctx context.Context, rd io.Reader, ids []ID) (bool, error) {
	c, err := r.newChunker(rd)
	if err != nil {
		return false, fmt.Errorf("compare content: %w", err)
	}
	defer r.chunkBufs.Put(c)
	for i := 0; ; i++ {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		chunk, err := c.Next()
		if errors.Is(err, io.EOF) {
			return i == len(ids), nil
		}
		if err != nil {
			return false, fmt.Errorf("compare content: read: %w", err)
		}
		if i >= len(ids) || r.crypt.blobID(chunk) != ids[i] {
			return false, nil
		}
	}
}
