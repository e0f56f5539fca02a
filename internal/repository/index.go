package repository

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/sitevault/sitevault/internal/backend"
)

// BlobHandle names a blob: its id and type.
type BlobHandle struct {
	ID   ID
	Type BlobType
}

func (h BlobHandle) String() string { return h.Type.String() + "/" + h.ID.Short() }

// indexFile is the JSON (sealed, see doc.go) stored as index/<sha256>.
type indexFile struct {
	Version    int          `json:"version"`
	Created    time.Time    `json:"created"`
	Supersedes []ID         `json:"supersedes,omitempty"`
	Packs      []indexPack  `json:"packs"`
	Tombstones []tombRecord `json:"tombstones,omitempty"`
}

type indexPack struct {
	ID    ID          `json:"id"`
	Size  int64       `json:"size"`
	Blobs []indexBlob `json:"blobs"`
}

type indexBlob struct {
	Type       BlobType `json:"type"`
	ID         ID       `json:"id"`
	Offset     uint32   `json:"offset"`
	Length     uint32   `json:"length"`
	RawLength  uint32   `json:"raw_length"`
	Compressed bool     `json:"compressed,omitempty"`
}

// tombRecord marks the copy of a blob in one pack deleted (by prune) at
// Deleted, or revived at Revived. Across all index files, the copy is
// tombstoned when the latest Deleted is after the latest Revived.
type tombRecord struct {
	Type    BlobType  `json:"type"`
	ID      ID        `json:"id"`
	Pack    ID        `json:"pack"`
	Deleted time.Time `json:"deleted,omitzero"`
	Revived time.Time `json:"revived,omitzero"`
}

func (ip indexPack) packBlobs() []packBlob {
	out := make([]packBlob, len(ip.Blobs))
	for i := range ip.Blobs {
		out[i] = ip.Blobs[i].packBlob()
	}
	return out
}

func (b *indexBlob) packBlob() packBlob {
	var fl uint8
	if b.Compressed {
		fl = flagCompressed
	}
	return packBlob{Handle: BlobHandle{ID: b.ID, Type: b.Type}, Offset: b.Offset, Length: b.Length, RawLen: b.RawLength, Flags: fl}
}

func indexPackOf(pi *packInfo) indexPack {
	ip := indexPack{ID: pi.ID, Size: pi.Size, Blobs: make([]indexBlob, len(pi.Blobs))}
	for i, b := range pi.Blobs {
		ip.Blobs[i] = indexBlob{Type: b.Handle.Type, ID: b.Handle.ID, Offset: b.Offset, Length: b.Length, RawLength: b.RawLen, Compressed: b.Flags&flagCompressed != 0}
	}
	return ip
}

// indexFileBlobs bounds the blobs one index file lists: 65,536 blobs are
// about 9 MiB of JSON (about 3 MiB sealed and compressed), far below what
// a reader decompresses (256 MiB). A pack is never split across files, so
// a single pack with more blobs than this makes one larger file, bounded
// by the pack's size. A variable so that tests can lower it.
var indexFileBlobs = 1 << 16

// entry is one copy of a blob in the in-memory index: 48 bytes, no
// pointers (the garbage collector never scans the index).
type entry struct {
	id     ID
	pack   uint32 // index into index.packs
	offset uint32
	length uint32
	meta   uint32 // raw length (bits 0–26) | metaTree | metaCompressed | metaDead
}

const (
	metaRawMask    = 1<<27 - 1
	metaDead       = 1 << 29
	metaCompressed = 1 << 30
	metaTree       = 1 << 31
)

func makeEntry(b packBlob, pack uint32) entry {
	m := b.RawLen & metaRawMask
	if b.Handle.Type == TreeBlob {
		m |= metaTree
	}
	if b.Flags&flagCompressed != 0 {
		m |= metaCompressed
	}
	return entry{id: b.Handle.ID, pack: pack, offset: b.Offset, length: b.Length, meta: m}
}

func makeIndexEntry(b *indexBlob, pack uint32) entry {
	m := b.RawLength & metaRawMask
	if b.Type == TreeBlob {
		m |= metaTree
	}
	if b.Compressed {
		m |= metaCompressed
	}
	return entry{id: b.ID, pack: pack, offset: b.Offset, length: b.Length, meta: m}
}

func (e *entry) typ() BlobType {
	if e.meta&metaTree != 0 {
		return TreeBlob
	}
	return DataBlob
}

func (e *entry) handle() BlobHandle { return BlobHandle{ID: e.id, Type: e.typ()} }
func (e *entry) dead() bool         { return e.meta&metaDead != 0 }

func (e *entry) setDead(dead bool) {
	if dead {
		e.meta |= metaDead
	} else {
		e.meta &^= metaDead
	}
}

func (e *entry) packBlob() packBlob {
	var fl uint8
	if e.meta&metaCompressed != 0 {
		fl = flagCompressed
	}
	return packBlob{Handle: e.handle(), Offset: e.offset, Length: e.length, RawLen: e.meta & metaRawMask, Flags: fl}
}

// cmpHandle orders entries by id, then type.
func cmpHandle(e *entry, h BlobHandle) int {
	if c := bytes.Compare(e.id[:], h.ID[:]); c != 0 {
		return c
	}
	return int(e.typ()) - int(h.Type)
}

func cmpEntry(a, b entry) int { return cmpHandle(&a, b.handle()) }

type tombKey struct {
	h    BlobHandle
	pack ID
}

type tombState struct{ deleted, revived time.Time }

func (s tombState) dead() bool { return s.deleted.After(s.revived) }

// mergeTomb folds tombstone record t into m and returns its key. Each
// time is the latest any index file gives: the prune protocol (doc.go)
// relies on a later stamp always winning, whatever order files are read in.
func mergeTomb(m map[tombKey]tombState, t tombRecord) tombKey {
	k := tombKey{BlobHandle{t.ID, t.Type}, t.Pack}
	s := m[k]
	if t.Deleted.After(s.deleted) {
		s.deleted = t.Deleted
	}
	if t.Revived.After(s.revived) {
		s.revived = t.Revived
	}
	m[k] = s
	return k
}

// index is the in-memory index: for every blob its copies. Live blobs are
// those backups may deduplicate against; dead ones are tombstoned by
// prune: still loadable (a concurrent backup may reference them) but never
// reused.
//
// Layout (see doc.go, "In memory"): main is a sorted array of 48-byte
// entries, one per blob (its preferred copy: a live one if any), searched
// by bisection; recent holds blobs added since main was built (this
// session's packs, index files written by others) until it is merged into
// main; extra holds the further copies of blobs stored more than once
// (concurrent backups, repacks), which are few.
type index struct {
	mu      sync.RWMutex
	packs   []ID
	packNum map[ID]uint32
	main    []entry
	starts  []uint32 // starts[p]: first entry of main whose id begins with the 2 bytes p (65,537: 256 KiB)
	recent  map[BlobHandle]entry
	extra   map[BlobHandle][]entry
	tomb    map[tombKey]tombState
}

func newIndex() *index {
	return &index{
		packNum: make(map[ID]uint32),
		recent:  make(map[BlobHandle]entry),
		extra:   make(map[BlobHandle][]entry),
		tomb:    make(map[tombKey]tombState),
	}
}

func (x *index) num(id ID) uint32 {
	n, ok := x.packNum[id]
	if !ok {
		n = uint32(len(x.packs))
		x.packs = append(x.packs, id)
		x.packNum[id] = n
	}
	return n
}

// reindex recomputes starts after main changed.
func (x *index) reindex() {
	if len(x.starts) != 1<<16+1 {
		x.starts = make([]uint32, 1<<16+1)
	}
	p := 0
	for i := range x.main {
		for q := int(x.main[i].id[0])<<8 | int(x.main[i].id[1]); p <= q; p++ {
			x.starts[p] = uint32(i)
		}
	}
	for ; p <= 1<<16; p++ {
		x.starts[p] = uint32(len(x.main))
	}
}

// search returns the position of h in main, or -1.
func (x *index) search(h BlobHandle) int {
	lo, hi := 0, len(x.main)
	if len(x.starts) == 1<<16+1 {
		p := int(h.ID[0])<<8 | int(h.ID[1])
		lo, hi = int(x.starts[p]), int(x.starts[p+1])
	}
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if cmpHandle(&x.main[m], h) < 0 {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo < len(x.main) && cmpHandle(&x.main[lo], h) == 0 {
		return lo
	}
	return -1
}

// primary returns the preferred copy of h.
func (x *index) primary(h BlobHandle) (entry, bool) {
	if i := x.search(h); i >= 0 {
		return x.main[i], true
	}
	e, ok := x.recent[h]
	return e, ok
}

func (x *index) setPrimary(h BlobHandle, e entry) {
	if i := x.search(h); i >= 0 {
		x.main[i] = e
		return
	}
	x.recent[h] = e
}

// addPack records the blobs of an uploaded pack as live.
func (x *index) addPack(pi *packInfo) {
	x.mu.Lock()
	defer x.mu.Unlock()
	n := x.num(pi.ID)
	for _, b := range pi.Blobs {
		x.put(makeEntry(b, n))
	}
	x.maybeMerge()
}

// put adds one copy (its dead flag set from the tombstones known).
func (x *index) put(e entry) {
	h := e.handle()
	if len(x.tomb) > 0 {
		e.setDead(x.tomb[tombKey{h, x.packs[e.pack]}].dead())
	}
	p, ok := x.primary(h)
	if !ok {
		x.recent[h] = e
		return
	}
	if p.pack == e.pack {
		return
	}
	for _, c := range x.extra[h] {
		if c.pack == e.pack {
			return
		}
	}
	if p.dead() && !e.dead() {
		x.setPrimary(h, e)
		e = p
	}
	x.extra[h] = append(x.extra[h], e)
}

// retomb sets the dead flag of the copy of h in pack n from the
// tombstones, then makes a live copy the preferred one if there is one.
func (x *index) retomb(h BlobHandle, n uint32, dead bool) {
	p, ok := x.primary(h)
	if !ok {
		return
	}
	ex := x.extra[h]
	if p.pack == n {
		p.setDead(dead)
	}
	for i := range ex {
		if ex[i].pack == n {
			ex[i].setDead(dead)
		}
	}
	if p.dead() {
		for i := range ex {
			if !ex[i].dead() {
				p, ex[i] = ex[i], p
				break
			}
		}
	}
	x.setPrimary(h, p)
}

// maybeMerge merges recent into main once it holds more than an eighth of
// main (so merges cost O(1) per blob, amortised): sorted, in place from
// the back when main has the capacity.
func (x *index) maybeMerge() {
	if len(x.recent) < 1<<16 || len(x.recent) < len(x.main)/8 {
		return
	}
	x.mergeRecent()
}

func (x *index) mergeRecent() {
	if len(x.recent) == 0 {
		return
	}
	add := make([]entry, 0, len(x.recent))
	for _, e := range x.recent {
		add = append(add, e)
	}
	slices.SortFunc(add, cmpEntry)
	n, m := len(x.main), len(add)
	if cap(x.main) < n+m {
		grown := make([]entry, n, n+m+(n+m)/8)
		copy(grown, x.main)
		x.main = grown
	}
	x.main = x.main[:n+m]
	i, j, k := n-1, m-1, n+m-1
	for j >= 0 {
		if i >= 0 && cmpEntry(x.main[i], add[j]) > 0 {
			x.main[k] = x.main[i]
			i--
		} else {
			x.main[k] = add[j]
			j--
		}
		k--
	}
	x.recent = make(map[BlobHandle]entry)
	x.reindex()
}

// mergeTombs merges the tombstones of files into x.tomb and returns the
// keys whose state changed.
func (x *index) mergeTombs(files []*indexFile) map[tombKey]struct{} {
	changed := make(map[tombKey]struct{})
	for _, f := range files {
		for _, t := range f.Tombstones {
			changed[mergeTomb(x.tomb, t)] = struct{}{}
		}
	}
	return changed
}

// apply merges index files into x: tombstones first, then entries, then
// the tombstone changes are applied to entries already known.
func (x *index) apply(files []*indexFile) {
	x.mu.Lock()
	defer x.mu.Unlock()
	changed := x.mergeTombs(files)
	for _, f := range files {
		for _, p := range f.Packs {
			n := x.num(p.ID)
			for _, b := range p.packBlobs() {
				x.put(makeEntry(b, n))
			}
		}
	}
	for k := range changed {
		if n, ok := x.packNum[k.pack]; ok {
			x.retomb(k.h, n, x.tomb[k].dead())
		}
	}
	x.maybeMerge()
}

// removePacks drops every copy in the given packs (deleted by a prune).
func (x *index) removePacks(gone map[uint32]bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	keep := func(cs []entry) []entry {
		out := cs[:0]
		for _, c := range cs {
			if !gone[c.pack] {
				out = append(out, c)
			}
		}
		return out
	}
	for h, cs := range x.extra {
		if cs = keep(cs); len(cs) == 0 {
			delete(x.extra, h)
		} else {
			x.extra[h] = cs
		}
	}
	// promote drops p's copy and returns a further copy (live first) in its place.
	promote := func(h BlobHandle) (entry, bool) {
		cs := x.extra[h]
		if len(cs) == 0 {
			return entry{}, false
		}
		best := 0
		for i := range cs {
			if !cs[i].dead() {
				best = i
				break
			}
		}
		e := cs[best]
		cs = append(cs[:best], cs[best+1:]...)
		if len(cs) == 0 {
			delete(x.extra, h)
		} else {
			x.extra[h] = cs
		}
		return e, true
	}
	w := 0
	for _, e := range x.main {
		if gone[e.pack] {
			var ok bool
			if e, ok = promote(e.handle()); !ok {
				continue
			}
		}
		x.main[w] = e
		w++
	}
	x.main = x.main[:w]
	x.reindex()
	for h, e := range x.recent {
		if gone[e.pack] {
			if e, ok := promote(h); ok {
				x.recent[h] = e
			} else {
				delete(x.recent, h)
			}
		}
	}
}

// lookup returns the preferred copy of h (a live one if any).
func (x *index) lookup(h BlobHandle) (entry, ID, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	e, ok := x.primary(h)
	if !ok {
		return entry{}, ID{}, false
	}
	return e, x.packs[e.pack], true
}

// copies returns every copy of h, live ones first.
func (x *index) copies(h BlobHandle) []entry {
	x.mu.RLock()
	defer x.mu.RUnlock()
	p, ok := x.primary(h)
	if !ok {
		return nil
	}
	out := append([]entry{p}, x.extra[h]...)
	slices.SortStableFunc(out, func(a, b entry) int {
		switch {
		case a.dead() == b.dead():
			return 0
		case b.dead():
			return -1
		}
		return 1
	})
	return out
}

func (x *index) packID(n uint32) ID {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.packs[n]
}

func (x *index) has(h BlobHandle) bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	e, ok := x.primary(h)
	return ok && !e.dead()
}

func (x *index) isDead(h BlobHandle) bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	e, ok := x.primary(h)
	return ok && e.dead()
}

// len returns the number of blobs and of copies beyond one per blob.
func (x *index) len() (blobs, extra int) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	for _, cs := range x.extra {
		extra += len(cs)
	}
	return len(x.main) + len(x.recent), extra
}

// sortBucket sorts entries that share their first id byte: an in-place
// counting sort (American flag sort) on the second byte, then a
// comparison sort of each of the 256 sub-buckets (a few hundred entries
// at 10 million blobs).
func sortBucket(a []entry) {
	var start, end [256]int
	for i := range a {
		end[a[i].id[1]]++
	}
	n := 0
	for b := range 256 {
		c := end[b]
		start[b], end[b] = n, n+c
		n += c
	}
	next := start
	for b := range 256 {
		for next[b] < end[b] {
			e := a[next[b]]
			for d := int(e.id[1]); d != b; d = int(e.id[1]) {
				e, a[next[d]] = a[next[d]], e
				next[d]++
			}
			a[next[b]] = e
			next[b]++
		}
	}
	for b := range 256 {
		if end[b]-start[b] > 1 {
			slices.SortFunc(a[start[b]:end[b]], cmpEntry)
		}
	}
}

// indexChunk is one index file converted for the bulk load.
type indexChunk struct {
	id         ID
	supersedes []ID
	packs      []ID
	entries    []entry
	tombs      []tombRecord
}

// build makes x's main array from chunks of entries in one counting sort
// on the ids' first two bytes (ids are uniformly distributed keyed hashes)
// and a sort of each of the 65,536 buckets, then keeps one copy per blob
// in main and the others in extra. Chunks are released as they are
// copied, so the peak is the final array plus one chunk.
func (x *index) build(chunks []*indexChunk) {
	const workers = 2
	var wg sync.WaitGroup
	// 1. counting sort on the first byte (256 write streams: kind to
	// caches and TLBs); each worker owns half the buckets and scans every
	// chunk (sequential reads)
	var counts [workers][256]int
	for w := range workers {
		wg.Go(func() {
			for k := w; k < len(chunks); k += workers {
				for i := range chunks[k].entries {
					counts[w][chunks[k].entries[i].id[0]]++
				}
			}
		})
	}
	wg.Wait()
	var starts [257]int
	for b := range 256 {
		starts[b+1] = starts[b]
		for w := range workers {
			starts[b+1] += counts[w][b]
		}
	}
	total := starts[256]
	main := make([]entry, total, total+total/8)
	for w := range workers {
		lo, hi := w*256/workers, (w+1)*256/workers
		wg.Go(func() {
			next := starts
			for _, c := range chunks {
				for i := range c.entries {
					if b := int(c.entries[i].id[0]); b >= lo && b < hi {
						main[next[b]] = c.entries[i]
						next[b]++
					}
				}
			}
		})
	}
	wg.Wait()
	for _, c := range chunks {
		c.entries = nil
	}
	// 2. in each first-byte bucket (about 1/256 of the index: it fits in
	// cache), an in-place counting sort on the second byte, then a sort of
	// each small bucket
	for w := range workers {
		wg.Go(func() {
			for b := w; b < 256; b += workers {
				sortBucket(main[starts[b]:starts[b+1]])
			}
		})
	}
	wg.Wait()
	// 3. tombstones: mark the dead copies (copies of one blob are adjacent)
	for k, s := range x.tomb {
		if !s.dead() {
			continue
		}
		n, ok := x.packNum[k.pack]
		if !ok {
			continue
		}
		i, _ := slices.BinarySearchFunc(main, k.h, func(e entry, h BlobHandle) int { return cmpHandle(&e, h) })
		for ; i < len(main) && cmpHandle(&main[i], k.h) == 0; i++ {
			if main[i].pack == n {
				main[i].setDead(true)
			}
		}
	}
	// 4. one copy per blob in main (a live one if any), the others in extra
	w := 0
	for i := 0; i < len(main); {
		j := i + 1
		for j < len(main) && main[j].id == main[i].id && main[j].meta&metaTree == main[i].meta&metaTree {
			j++
		}
		best := i
		for k := i; k < j; k++ {
			if !main[k].dead() {
				best = k
				break
			}
		}
		if j-i > 1 {
			h := main[i].handle()
			for k := i; k < j; k++ {
				if k == best || slices.ContainsFunc(x.extra[h], func(c entry) bool { return c.pack == main[k].pack }) || main[k].pack == main[best].pack {
					continue
				}
				x.extra[h] = append(x.extra[h], main[k])
			}
		}
		main[w] = main[best]
		w++
		i = j
	}
	x.main = main[:w]
	x.reindex()
}

// listIndexNames lists index/.
func (r *Repository) listIndexNames(ctx context.Context) ([]ID, error) {
	var ids []ID
	err := r.be.List(ctx, backend.IndexFile, func(fi backend.FileInfo) error {
		id, err := ParseID(fi.Name)
		if err != nil {
			r.log.Warn("ignoring file with an invalid name", "dir", "index", "name", fi.Name)
			return nil
		}
		ids = append(ids, id)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list index: %w", err)
	}
	return ids, nil
}

// ErrIndexDamaged: an index file cannot be read (it fails authentication
// or does not parse). Open refuses to work with a partial index (restores
// would miss blobs, backups would upload everything again): rebuild it
// from the packs with RepairIndex (`sitevault repair index`).
var ErrIndexDamaged = errors.New("an index file is damaged: rebuild the index from the packs (sitevault repair index)")

// IndexError is the failure to read one index file; it matches
// ErrIndexDamaged and the cause (ErrDamaged, ErrNewerFormat).
type IndexError struct {
	File string // the index file's name (its id)
	Err  error
}

func (e *IndexError) Error() string {
	return fmt.Sprintf("index file %s: %v", e.File, e.Err)
}

// Unwrap returns ErrIndexDamaged and the cause.
func (e *IndexError) Unwrap() []error { return []error{ErrIndexDamaged, e.Err} }

// loadIndexPlain loads index file id, checks it against its name and
// authenticates it; it returns the plaintext.
func (r *Repository) loadIndexPlain(ctx context.Context, id ID) (backend.Handle, []byte, error) {
	h := backend.Handle{Type: backend.IndexFile, Name: id.String()}
	b, err := loadFile(ctx, r.be, h)
	if err != nil {
		return h, nil, fmt.Errorf("load %v: %w", h, err)
	}
	if fileID(b) != id {
		return h, nil, fmt.Errorf("index %v: content does not match its name: %w", h, ErrDamaged)
	}
	plain, err := r.crypt.openFile(kindIndex, b)
	if err != nil {
		return h, nil, fmt.Errorf("index %v: %w", h, err)
	}
	return h, plain, nil
}

// loadIndexFile loads, authenticates and parses one index file.
func (r *Repository) loadIndexFile(ctx context.Context, id ID) (*indexFile, error) {
	h, plain, err := r.loadIndexPlain(ctx, id)
	if err != nil {
		return nil, err
	}
	f, err := parseIndexFile(plain)
	if err != nil {
		return nil, fmt.Errorf("index %v: %w", h, err)
	}
	return f, nil
}

// forEachIndexFile loads the given index files in parallel and hands each
// to fn (called concurrently). Files that vanished (a concurrent prune
// removed them) are counted in missing; a damaged file is an *IndexError
// unless skipDamaged, in which case it is logged and skipped.
func (r *Repository) forEachIndexFile(ctx context.Context, ids []ID, skipDamaged bool, fn func(ID, *indexFile)) (missing int, err error) {
	return r.forEachIndex(ctx, ids, skipDamaged, func(ctx context.Context, id ID) (func(), error) {
		f, err := r.loadIndexFile(ctx, id)
		return func() { fn(id, f) }, err
	})
}

// forEachIndexChunk is forEachIndexFile for the bulk load: each file comes
// as entries (loadIndexChunk).
func (r *Repository) forEachIndexChunk(ctx context.Context, ids []ID, skipDamaged bool, num func([]ID) []uint32, fn func(*indexChunk)) (missing int, err error) {
	return r.forEachIndex(ctx, ids, skipDamaged, func(ctx context.Context, id ID) (func(), error) {
		c, err := r.loadIndexChunk(ctx, id, num)
		return func() { fn(c) }, err
	})
}

// forEachIndex runs load for every id, in parallel, and the function it
// returns when it succeeds (see forEachIndexFile for the errors).
func (r *Repository) forEachIndex(ctx context.Context, ids []ID, skipDamaged bool, load func(context.Context, ID) (func(), error)) (missing int, err error) {
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(2 * r.opts.Connections)
	for _, id := range ids {
		g.Go(func() error {
			done, err := load(gctx, id)
			if errors.Is(err, backend.ErrNotExist) {
				mu.Lock()
				missing++
				mu.Unlock()
				return nil
			}
			if err != nil && (errors.Is(err, ErrDamaged) || errors.Is(err, ErrNewerFormat)) {
				if skipDamaged {
					r.log.Warn("skipping damaged index file", "index", id.String(), "err", err)
					return nil
				}
				return &IndexError{File: id.String(), Err: err}
			}
			if err != nil {
				return err
			}
			done()
			return nil
		})
	}
	err = g.Wait()
	return missing, err
}

// loadIndexFiles loads the given index files in parallel (see
// forEachIndexFile), all in memory at once: for prune and check, which
// need every file; LoadIndex streams them instead.
func (r *Repository) loadIndexFiles(ctx context.Context, ids []ID, skipDamaged bool) (map[ID]*indexFile, error) {
	out := make(map[ID]*indexFile, len(ids))
	var mu sync.Mutex
	_, err := r.forEachIndexFile(ctx, ids, skipDamaged, func(id ID, f *indexFile) {
		mu.Lock()
		out[id] = f
		mu.Unlock()
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// liveFiles drops the files superseded by others.
func liveFiles(files map[ID]*indexFile) map[ID]*indexFile {
	sup := make(map[ID]bool)
	for _, f := range files {
		for _, s := range f.Supersedes {
			sup[s] = true
		}
	}
	out := make(map[ID]*indexFile, len(files))
	for id, f := range files {
		if !sup[id] {
			out[id] = f
		}
	}
	return out
}

// LoadIndex (re)loads every index file from the backend, in parallel,
// replacing the in-memory index. An index file that cannot be read is an
// error (*IndexError, ErrIndexDamaged): a partial index would make
// restores miss blobs and backups store everything again. Packs this
// session uploaded that are not yet in an index file are kept.
//
// Files are converted to 48-byte entries as they arrive and the decoded
// file dropped, so memory peaks at about the final index plus a few
// files (plus the previous index, which serves readers until the new one
// replaces it).
func (r *Repository) LoadIndex(ctx context.Context) error {
	return r.loadIndex(ctx, false)
}

// loadIndex is LoadIndex; skipDamaged logs and skips damaged index files
// instead (Check, which reports them).
func (r *Repository) loadIndex(ctx context.Context, skipDamaged bool) error {
	var chunks []*indexChunk
	x := newIndex()
	for try := 0; ; try++ {
		ids, err := r.listIndexNames(ctx)
		if err != nil {
			return err
		}
		chunks = chunks[:0]
		x = newIndex()
		var mu sync.Mutex
		num := func(packs []ID) []uint32 {
			out := make([]uint32, len(packs))
			mu.Lock()
			defer mu.Unlock()
			for i, p := range packs {
				out[i] = x.num(p)
			}
			return out
		}
		missing, err := r.forEachIndexChunk(ctx, ids, skipDamaged, num, func(c *indexChunk) {
			mu.Lock()
			chunks = append(chunks, c)
			mu.Unlock()
		})
		if err != nil {
			return err
		}
		if missing == 0 || try == 4 {
			break
		}
		// files vanished while loading: a prune compacted the index; its
		// new files are in the next listing
		r.log.Debug("index changed while loading, reloading")
	}
	sup := make(map[ID]bool)
	for _, c := range chunks {
		for _, s := range c.supersedes {
			sup[s] = true
		}
	}
	live := chunks[:0]
	var tombFiles []*indexFile
	for _, c := range chunks {
		if !sup[c.id] {
			live = append(live, c)
			tombFiles = append(tombFiles, &indexFile{Tombstones: c.tombs})
		}
	}
	x.mergeTombs(tombFiles)
	applied := make(map[ID][]ID, len(chunks))
	gone := make(map[ID]struct{})
	for _, c := range chunks {
		if sup[c.id] {
			gone[c.id] = struct{}{}
		} else {
			applied[c.id] = c.packs
		}
	}
	x.build(live)
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, pi := range r.pending {
		x.addPack(pi)
	}
	r.idx.Store(x)
	r.idxFiles = applied
	r.idxGone = gone
	r.reloads++
	return nil
}

// Refresh applies the index files written since the index was loaded or
// last refreshed: packs other writers saved, and tombstones and deletions
// of prunes. A backup calls it when it starts, so that a long-lived
// Repository (the service's) never deduplicates against copies a prune
// tombstoned since the last load: SaveSnapshot would have to save those
// again, and fail (ErrBlobNotFound) if that prune deleted them meanwhile
// (see "Why a snapshot S is never left referencing a deleted blob" in the
// package documentation). It lists index/ and loads only new files.
func (r *Repository) Refresh(ctx context.Context) error {
	if err := r.refreshIndex(ctx); err != nil {
		return fmt.Errorf("refresh the index: %w", err)
	}
	return nil
}

// refreshIndex applies index files written since the last load. When
// files it had applied are superseded or gone (a prune compacted the
// index), it drops the packs that no remaining file names (the prune
// deleted them) instead of loading everything again: a refresh never
// holds two indexes.
//
// A file listed may be gone when it is loaded: a prune wrote a newer
// compaction and removed it meanwhile. Applying the listing without it
// would take the packs it names for deleted (the files it superseded have
// vanished too), so the refresh starts again from a new listing, which
// holds the newer compaction.
func (r *Repository) refreshIndex(ctx context.Context) error {
	for try := 1; ; try++ {
		again, err := r.refreshOnce(ctx)
		if err != nil || !again {
			return err
		}
		if try == 5 {
			// Prunes compacting this often: load everything instead.
			r.log.Debug("index changed during every refresh, loading it whole")
			return r.LoadIndex(ctx)
		}
		r.log.Debug("index changed while refreshing, listing again")
	}
}

// refreshOnce is one listing of refreshIndex; again reports that a listed
// file vanished before it was loaded (nothing was applied).
func (r *Repository) refreshOnce(ctx context.Context) (again bool, err error) {
	// Only files applied before the listing can have vanished from it: a
	// file this process writes meanwhile (another backup's Flush) is
	// applied but may be missing from the listing, and taking it for
	// replaced would drop its packs from memory.
	r.mu.Lock()
	known := make(map[ID]bool, len(r.idxFiles))
	for id := range r.idxFiles {
		known[id] = true
	}
	r.mu.Unlock()
	ids, err := r.listIndexNames(ctx)
	if err != nil {
		return false, err
	}
	r.mu.Lock()
	present := make(map[ID]bool, len(ids))
	var fresh []ID
	for _, id := range ids {
		present[id] = true
		_, applied := r.idxFiles[id]
		_, gone := r.idxGone[id]
		if !applied && !gone {
			fresh = append(fresh, id)
		}
	}
	for id := range r.idxGone {
		if !present[id] {
			delete(r.idxGone, id)
		}
	}
	var vanished []ID
	for id := range r.idxFiles {
		if !present[id] && known[id] {
			vanished = append(vanished, id)
		}
	}
	r.mu.Unlock()
	if len(fresh) == 0 && len(vanished) == 0 {
		return false, nil
	}
	files := make(map[ID]*indexFile, len(fresh))
	var mu sync.Mutex
	missing, err := r.forEachIndexFile(ctx, fresh, false, func(id ID, f *indexFile) {
		mu.Lock()
		files[id] = f
		mu.Unlock()
	})
	if err != nil {
		return false, err
	}
	if missing > 0 {
		return true, nil
	}
	sup := make(map[ID]bool)
	for _, f := range files {
		for _, s := range f.Supersedes {
			sup[s] = true
		}
	}
	for _, id := range vanished {
		sup[id] = true // its content is in the files that replaced it
	}
	x := r.idx.Load()
	var list []*indexFile
	r.mu.Lock()
	if len(sup) > 0 {
		// the packs of replaced files that no remaining file names were
		// deleted (what a fresh load would not see)
		before := make(map[ID]bool)
		after := make(map[ID]bool)
		for id, packs := range r.idxFiles {
			for _, p := range packs {
				if sup[id] {
					before[p] = true
				} else {
					after[p] = true
				}
			}
		}
		for id, f := range files {
			if sup[id] {
				continue
			}
			for _, p := range f.Packs {
				after[p.ID] = true
			}
		}
		for _, pi := range r.pending {
			after[pi.ID] = true
		}
		gone := make(map[uint32]bool)
		x.mu.RLock()
		for p := range before {
			if n, ok := x.packNum[p]; ok && !after[p] {
				gone[n] = true
			}
		}
		x.mu.RUnlock()
		if len(gone) > 0 {
			x.removePacks(gone)
		}
		for id := range sup {
			if _, ok := r.idxFiles[id]; ok {
				delete(r.idxFiles, id)
				if present[id] {
					r.idxGone[id] = struct{}{}
				}
			} else if present[id] {
				r.idxGone[id] = struct{}{}
			}
		}
	}
	for id, f := range files {
		if sup[id] {
			continue
		}
		var packs []ID
		for _, p := range f.Packs {
			packs = append(packs, p.ID)
		}
		r.idxFiles[id] = packs
		list = append(list, f)
	}
	r.mu.Unlock()
	x.apply(list)
	return false, nil
}

// saveIndexFile seals and stores f, returning its id.
func (r *Repository) saveIndexFile(ctx context.Context, f *indexFile) (ID, error) {
	f.Version = indexVersion
	if f.Created.IsZero() {
		f.Created = r.now().UTC()
	}
	b := r.crypt.sealFile(kindIndex, encodeIndexFile(f))
	id := fileID(b)
	h := backend.Handle{Type: backend.IndexFile, Name: id.String()}
	if err := r.be.Save(ctx, h, bytes.NewReader(b), int64(len(b))); err != nil && !errors.Is(err, backend.ErrExist) {
		return ID{}, fmt.Errorf("save %v: %w", h, err)
	}
	packs := make([]ID, len(f.Packs))
	for i, p := range f.Packs {
		packs[i] = p.ID
	}
	r.mu.Lock()
	r.idxFiles[id] = packs
	r.mu.Unlock()
	return id, nil
}

// writeIndex stores packs and tombstones as index files of at most
// indexFileBlobs blobs each (a pack is never split: one pack with more
// blobs makes one larger file). When supersedes is not empty, the files
// written replace those: only the last file written lists them, so a
// writer killed half-way leaves the old files in force (the new ones
// repeat what they say, which readers merge). It returns the ids of the
// files written, the superseding one last. Prune (compaction) and
// RepairIndex call it; backups write their index through Flush, which
// splits the same way.
func (r *Repository) writeIndex(ctx context.Context, supersedes []ID, packs []indexPack, tombs []tombRecord) ([]ID, error) {
	var out []ID
	cur := &indexFile{}
	n := 0
	flush := func(last bool) error {
		if last {
			cur.Supersedes = supersedes
		}
		id, err := r.saveIndexFile(ctx, cur)
		if err != nil {
			return fmt.Errorf("write index: %w", err)
		}
		out = append(out, id)
		cur, n = &indexFile{}, 0
		return nil
	}
	for _, p := range packs {
		if n > 0 && n+len(p.Blobs) > indexFileBlobs {
			if err := flush(false); err != nil {
				return out, err
			}
		}
		cur.Packs = append(cur.Packs, p)
		n += len(p.Blobs)
	}
	for _, t := range tombs {
		if n >= indexFileBlobs {
			if err := flush(false); err != nil {
				return out, err
			}
		}
		cur.Tombstones = append(cur.Tombstones, t)
		n++
	}
	if n > 0 || len(supersedes) > 0 {
		if err := flush(true); err != nil {
			return out, err
		}
	}
	return out, nil
}

// writePendingIndex writes index files for the uploaded packs not yet in
// one.
func (r *Repository) writePendingIndex(ctx context.Context) error {
	r.indexMu.Lock()
	defer r.indexMu.Unlock()
	r.mu.Lock()
	pending := r.pending
	r.pending = nil
	r.mu.Unlock()
	if len(pending) == 0 {
		return nil
	}
	packs := make([]indexPack, len(pending))
	for i, pi := range pending {
		packs[i] = indexPackOf(pi)
	}
	written, err := r.writeIndex(ctx, nil, packs, nil)
	if err != nil {
		// the files written name their packs; the others stay pending
		done := make(map[ID]bool)
		r.mu.Lock()
		for _, id := range written {
			for _, p := range r.idxFiles[id] {
				done[p] = true
			}
		}
		var again []*packInfo
		for _, pi := range pending {
			if !done[pi.ID] {
				again = append(again, pi)
			}
		}
		r.pending = append(again, r.pending...)
		r.mu.Unlock()
		return err
	}
	return nil
}

// IndexedBlobs returns how many blobs the in-memory index holds (each
// costs about 48 bytes, see doc.go "In memory"); callers size memory
// budgets from it.
func (r *Repository) IndexedBlobs() int {
	n, extra := r.idx.Load().len()
	return n + extra
}

// IndexBytesPerBlob is what the in-memory index costs per blob, rounded
// up: the 48-byte entry, the 1/8 spare capacity kept for merges, and the
// overflow of duplicate copies.
const IndexBytesPerBlob = 56

// BlobCopy is one stored copy of a blob.
type BlobCopy struct {
	Pack       ID
	Offset     uint32 // from the pack's start
	Length     uint32 // stored (sealed) bytes
	RawLength  uint32 // plaintext bytes
	Compressed bool
	// Tombstoned: prune marked this copy unused; it can still be read.
	Tombstoned bool
}

// BlobCopies lists every copy of a blob that the index knows, live copies
// first (nil if none). LoadBlob tries them in this order.
func (r *Repository) BlobCopies(t BlobType, id ID) []BlobCopy {
	x := r.idx.Load()
	cs := x.copies(BlobHandle{ID: id, Type: t})
	out := make([]BlobCopy, len(cs))
	for i, c := range cs {
		out[i] = BlobCopy{Pack: x.packID(c.pack), Offset: c.offset, Length: c.length, RawLength: c.meta & metaRawMask,
			Compressed: c.meta&metaCompressed != 0, Tombstoned: c.dead()}
	}
	return out
}

// liveMap returns the preferred copy of every live blob (for tests and
// diagnostics: it costs a map of the whole index).
func (x *index) liveMap() map[BlobHandle]entry {
	x.mu.RLock()
	defer x.mu.RUnlock()
	out := make(map[BlobHandle]entry, len(x.main)+len(x.recent))
	for _, e := range x.main {
		if !e.dead() {
			out[e.handle()] = e
		}
	}
	for h, e := range x.recent {
		if !e.dead() {
			out[h] = e
		}
	}
	return out
}

// eachCopy calls fn for every copy of every blob in the in-memory index,
// under its read lock (fn must not call into the index). Check and prune
// can walk the loaded index with it instead of building maps of their
// own (a map of every blob costs several times the index).
func (x *index) eachCopy(fn func(h BlobHandle, pack ID, pb packBlob, tombstoned bool)) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	one := func(e *entry) { fn(e.handle(), x.packs[e.pack], e.packBlob(), e.dead()) }
	for i := range x.main {
		one(&x.main[i])
	}
	for _, e := range x.recent {
		one(&e)
	}
	for _, cs := range x.extra {
		for i := range cs {
			one(&cs[i])
		}
	}
}
