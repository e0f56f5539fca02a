package repository

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
	for i, b := range ip.Blobs {
		var fl uint8
		if b.Compressed {
			fl = flagCompressed
		}
		out[i] = packBlob{Handle: BlobHandle{ID: b.ID, Type: b.Type}, Offset: b.Offset, Length: b.Length, RawLen: b.RawLength, Flags: fl}
	}
	return out
}

func indexPackOf(pi *packInfo) indexPack {
	ip := indexPack{ID: pi.ID, Size: pi.Size, Blobs: make([]indexBlob, len(pi.Blobs))}
	for i, b := range pi.Blobs {
		ip.Blobs[i] = indexBlob{Type: b.Handle.Type, ID: b.Handle.ID, Offset: b.Offset, Length: b.Length, RawLength: b.RawLen, Compressed: b.Flags&flagCompressed != 0}
	}
	return ip
}

// parseIndexFile decodes and validates an index file's plaintext.
func parseIndexFile(b []byte) (*indexFile, error) {
	var f indexFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("parse index: %v: %w", err, ErrDamaged)
	}
	if f.Version > 1 {
		return nil, fmt.Errorf("index version %d: %w", f.Version, ErrNewerFormat)
	}
	if f.Version != 1 {
		return nil, fmt.Errorf("index version %d: %w", f.Version, ErrDamaged)
	}
	for _, p := range f.Packs {
		for _, b := range p.packBlobs() {
			if err := b.valid(p.Size); err != nil {
				return nil, fmt.Errorf("index pack %v: %w", p.ID.Short(), err)
			}
		}
	}
	for _, t := range f.Tombstones {
		if t.Type != DataBlob && t.Type != TreeBlob {
			return nil, fmt.Errorf("index tombstone type %d: %w", t.Type, ErrDamaged)
		}
	}
	return &f, nil
}

// location is where the in-memory index finds a blob: 17 bytes (20 with
// padding). With its 33-byte key a blob costs about 56 bytes of map slot
// plus control bytes and growth slack: 65–130 bytes per blob.
type location struct {
	pack   uint32 // index into index.packs
	offset uint32
	length uint32
	rawLen uint32
	flags  uint8
}

type tombKey struct {
	h    BlobHandle
	pack ID
}

type tombState struct{ deleted, revived time.Time }

func (s tombState) dead() bool { return s.deleted.After(s.revived) }

// index is the in-memory map blob → location. Live blobs are those backups
// may deduplicate against; dead ones are tombstoned by prune: still
// loadable (a concurrent backup may reference them) but never reused.
type index struct {
	mu      sync.RWMutex
	packs   []ID
	packNum map[ID]uint32
	live    map[BlobHandle]location
	dead    map[BlobHandle]location
	tomb    map[tombKey]tombState
}

func newIndex() *index {
	return &index{
		packNum: make(map[ID]uint32),
		live:    make(map[BlobHandle]location),
		dead:    make(map[BlobHandle]location),
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

// addPack records the blobs of an uploaded pack as live.
func (x *index) addPack(pi *packInfo) {
	x.mu.Lock()
	defer x.mu.Unlock()
	n := x.num(pi.ID)
	for _, b := range pi.Blobs {
		x.put(b, n, pi.ID)
	}
}

func (x *index) put(b packBlob, n uint32, pack ID) {
	loc := location{pack: n, offset: b.Offset, length: b.Length, rawLen: b.RawLen, flags: b.Flags}
	if x.tomb[tombKey{b.Handle, pack}].dead() {
		if _, ok := x.live[b.Handle]; !ok {
			x.dead[b.Handle] = loc
		}
		return
	}
	x.live[b.Handle] = loc
	delete(x.dead, b.Handle)
}

// apply merges index files: tombstones first, then entries, then the
// tombstone changes are applied to entries already known.
func (x *index) apply(files []*indexFile) {
	x.mu.Lock()
	defer x.mu.Unlock()
	changed := make(map[tombKey]struct{})
	for _, f := range files {
		for _, t := range f.Tombstones {
			k := tombKey{BlobHandle{t.ID, t.Type}, t.Pack}
			s := x.tomb[k]
			if t.Deleted.After(s.deleted) {
				s.deleted = t.Deleted
			}
			if t.Revived.After(s.revived) {
				s.revived = t.Revived
			}
			x.tomb[k] = s
			changed[k] = struct{}{}
		}
	}
	for _, f := range files {
		for _, p := range f.Packs {
			n := x.num(p.ID)
			for _, b := range p.packBlobs() {
				x.put(b, n, p.ID)
			}
		}
	}
	for k := range changed {
		n, ok := x.packNum[k.pack]
		if !ok {
			continue
		}
		if x.tomb[k].dead() {
			if loc, ok := x.live[k.h]; ok && loc.pack == n {
				delete(x.live, k.h)
				x.dead[k.h] = loc
			}
		} else if loc, ok := x.dead[k.h]; ok && loc.pack == n {
			delete(x.dead, k.h)
			x.live[k.h] = loc
		}
	}
}

// lookup returns where h is stored, live copies first.
func (x *index) lookup(h BlobHandle) (location, ID, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	loc, ok := x.live[h]
	if !ok {
		loc, ok = x.dead[h]
	}
	if !ok {
		return location{}, ID{}, false
	}
	return loc, x.packs[loc.pack], true
}

func (x *index) has(h BlobHandle) bool {
	x.mu.RLock()
	_, ok := x.live[h]
	x.mu.RUnlock()
	return ok
}

func (x *index) isDead(h BlobHandle) bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	_, live := x.live[h]
	_, dead := x.dead[h]
	return dead && !live
}

// Len returns the number of live and dead blobs.
func (x *index) len() (live, dead int) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return len(x.live), len(x.dead)
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

// loadIndexFile loads, authenticates and parses one index file.
func (r *Repository) loadIndexFile(ctx context.Context, id ID) (*indexFile, error) {
	h := backend.Handle{Type: backend.IndexFile, Name: id.String()}
	b, err := loadFile(ctx, r.be, h)
	if err != nil {
		return nil, fmt.Errorf("load %v: %w", h, err)
	}
	if fileID(b) != id {
		return nil, fmt.Errorf("index %v: content does not match its name: %w", h, ErrDamaged)
	}
	plain, err := r.crypt.openFile(kindIndex, b)
	if err != nil {
		return nil, fmt.Errorf("index %v: %w", h, err)
	}
	f, err := parseIndexFile(plain)
	if err != nil {
		return nil, fmt.Errorf("index %v: %w", h, err)
	}
	return f, nil
}

// loadIndexFiles loads the given index files in parallel. Missing files
// (removed by a concurrent prune) are skipped; a damaged one is an error
// unless skipDamaged, in which case it is logged and skipped.
func (r *Repository) loadIndexFiles(ctx context.Context, ids []ID, skipDamaged bool) (map[ID]*indexFile, error) {
	out := make(map[ID]*indexFile, len(ids))
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(2 * r.opts.Connections)
	for _, id := range ids {
		g.Go(func() error {
			f, err := r.loadIndexFile(gctx, id)
			if errors.Is(err, backend.ErrNotExist) {
				return nil
			}
			if err != nil && skipDamaged && errors.Is(err, ErrDamaged) {
				r.log.Warn("skipping damaged index file", "index", id.String(), "err", err)
				return nil
			}
			if err != nil {
				return err
			}
			mu.Lock()
			out[id] = f
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
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
// replacing the in-memory index. Damaged index files are logged and
// skipped (Check reports them). Packs this session uploaded that are not
// yet in an index file are kept.
func (r *Repository) LoadIndex(ctx context.Context) error {
	var files map[ID]*indexFile
	for try := 0; ; try++ {
		ids, err := r.listIndexNames(ctx)
		if err != nil {
			return err
		}
		files, err = r.loadIndexFiles(ctx, ids, true)
		if err != nil {
			return err
		}
		if len(files) == len(ids) || try == 4 {
			break
		}
		// files vanished while loading: a prune compacted the index; its
		// new file is in the next listing
		r.log.Debug("index changed while loading, reloading")
	}
	x := newIndex()
	var list []*indexFile
	for _, f := range liveFiles(files) {
		list = append(list, f)
	}
	x.apply(list)
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, pi := range r.pending {
		x.addPack(pi)
	}
	r.idx.Store(x)
	r.idxFiles = make(map[ID]struct{}, len(files))
	for id := range files {
		r.idxFiles[id] = struct{}{}
	}
	return nil
}

// refreshIndex applies index files written since the last load. When a
// file it had applied has gone or a new one supersedes others (a prune
// compacted the index), it reloads everything.
func (r *Repository) refreshIndex(ctx context.Context) error {
	ids, err := r.listIndexNames(ctx)
	if err != nil {
		return err
	}
	r.mu.Lock()
	present := make(map[ID]bool, len(ids))
	var fresh []ID
	for _, id := range ids {
		present[id] = true
		if _, ok := r.idxFiles[id]; !ok {
			fresh = append(fresh, id)
		}
	}
	vanished := false
	for id := range r.idxFiles {
		if !present[id] {
			vanished = true
		}
	}
	r.mu.Unlock()
	if vanished {
		return r.LoadIndex(ctx)
	}
	files, err := r.loadIndexFiles(ctx, fresh, true)
	if err != nil {
		return err
	}
	var list []*indexFile
	for _, f := range files {
		if len(f.Supersedes) > 0 {
			return r.LoadIndex(ctx)
		}
		list = append(list, f)
	}
	r.idx.Load().apply(list)
	r.mu.Lock()
	for id := range files {
		r.idxFiles[id] = struct{}{}
	}
	r.mu.Unlock()
	return nil
}

// saveIndexFile seals and stores f, returning its id.
func (r *Repository) saveIndexFile(ctx context.Context, f *indexFile) (ID, error) {
	f.Version = 1
	if f.Created.IsZero() {
		f.Created = r.now().UTC()
	}
	if f.Packs == nil {
		f.Packs = []indexPack{}
	}
	plain, err := json.Marshal(f)
	if err != nil {
		return ID{}, err
	}
	b := r.crypt.sealFile(kindIndex, plain)
	id := fileID(b)
	h := backend.Handle{Type: backend.IndexFile, Name: id.String()}
	if err := r.be.Save(ctx, h, bytes.NewReader(b), int64(len(b))); err != nil && !errors.Is(err, backend.ErrExist) {
		return ID{}, fmt.Errorf("save %v: %w", h, err)
	}
	r.mu.Lock()
	r.idxFiles[id] = struct{}{}
	r.mu.Unlock()
	return id, nil
}

// writePendingIndex writes an index file for the uploaded packs not yet
// in one.
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
	f := &indexFile{}
	for _, pi := range pending {
		f.Packs = append(f.Packs, indexPackOf(pi))
	}
	if _, err := r.saveIndexFile(ctx, f); err != nil {
		r.mu.Lock()
		r.pending = append(pending, r.pending...)
		r.mu.Unlock()
		return fmt.Errorf("write index: %w", err)
	}
	return nil
}

// IndexedBlobs returns how many blobs the in-memory index holds (each
// costs tens of bytes, about 65–130 with the map's overhead); callers size
// memory budgets from it.
func (r *Repository) IndexedBlobs() int {
	x := r.idx.Load()
	x.mu.RLock()
	defer x.mu.RUnlock()
	return len(x.live) + len(x.dead)
}
