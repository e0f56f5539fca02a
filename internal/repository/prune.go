package repository

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/sitevault/sitevault/internal/backend"
)

// DefaultGrace is how long prune waits between marking data unused
// (tombstoning it) and deleting it.
const DefaultGrace = 24 * time.Hour

// PruneOptions tune Prune.
type PruneOptions struct {
	// Grace is the minimum time between tombstoning a blob and deleting
	// it, and the minimum age of a pack before its unused blobs are
	// tombstoned or, if it is in no index, before it is indexed for
	// collection. It must exceed the longest backup. 0 means DefaultGrace.
	Grace time.Duration
	// MaxUnused repacks a pack when more than this fraction of its bytes
	// is collectable garbage; 0 means 0.2. Packs of only garbage are
	// deleted whatever the value.
	MaxUnused float64
	// DryRun computes and reports everything but writes and deletes nothing.
	DryRun bool
}

// PruneResult reports what Prune did (or, with DryRun, would do).
type PruneResult struct {
	BlobsUsed       int
	BlobsTombstoned int // newly marked unused
	BlobsRevived    int // tombstoned but referenced again
	BlobsRemoved    int // deleted with their pack, or left behind by a repack
	PacksDeleted    int
	PacksRepacked   int
	OrphansIndexed  int
	IndexFilesIn    int // index files replaced by the compacted one
	BytesFreed      int64
	BytesRepacked   int64
	// TempFilesRemoved counts the temporary files of interrupted saves,
	// older than Grace, removed from backends that leave them
	// (backend.TempCleaner); DryRun leaves them.
	TempFilesRemoved int
}

type pruneCopy struct {
	h     BlobHandle
	pb    packBlob
	state tombState
}

type prunePack struct {
	id      ID
	size    int64
	modTime time.Time
	copies  []*pruneCopy
}

// Prune removes data no snapshot references, in two phases separated by
// Grace (see doc.go "Prune"). Each run does both phases: it tombstones
// blobs that became unused, revives tombstoned blobs that are referenced
// again, deletes packs whose blobs have all been tombstoned for longer
// than Grace, repacks packs with more than MaxUnused collectable bytes,
// and compacts the index into one file. Only one prune runs at a time on
// a repository (a second fails with ErrPruneRunning; see prunelock.go);
// backups may run concurrently.
func (r *Repository) Prune(ctx context.Context, opts PruneOptions) (*PruneResult, error) {
	if opts.Grace <= 0 {
		opts.Grace = DefaultGrace
	}
	if opts.MaxUnused <= 0 {
		opts.MaxUnused = 0.2
	}
	if !opts.DryRun {
		release, err := r.lockPrune(ctx)
		if err != nil {
			return nil, fmt.Errorf("prune: %w", err)
		}
		defer release()
	}
	now := r.now()
	res := &PruneResult{}

	// 0. old orphans (packs of a killed backup) join the index so that
	// the normal protocol collects them
	n, err := r.recoverOrphans(ctx, opts.Grace, 0, opts.DryRun)
	if err != nil {
		return nil, fmt.Errorf("prune: %w", err)
	}
	res.OrphansIndexed = n

	// 1. the snapshots first: every snapshot listed now had its index
	// files written before it, so the index loaded next covers them
	snaps, err := r.loadSnapshots(ctx, true)
	if err != nil {
		return nil, fmt.Errorf("prune: %w", err)
	}

	// 2. every index file, strictly
	ids, err := r.listIndexNames(ctx)
	if err != nil {
		return nil, fmt.Errorf("prune: %w", err)
	}
	files, err := r.loadIndexFiles(ctx, ids, false)
	if err != nil {
		return nil, fmt.Errorf("prune: %w (run check; prune refuses to work on a damaged index)", err)
	}
	if err := r.LoadIndex(ctx); err != nil {
		return nil, fmt.Errorf("prune: %w", err)
	}

	// 3. what the snapshots use
	used, err := r.usedBlobs(ctx, snaps)
	if err != nil {
		return nil, fmt.Errorf("prune: %w", err)
	}
	res.BlobsUsed = len(used)

	// 3. the packs present, and the merged index view
	present := make(map[ID]backend.FileInfo)
	if err := r.be.List(ctx, backend.PackFile, func(fi backend.FileInfo) error {
		if id, err := ParseID(fi.Name); err == nil {
			present[id] = fi
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("prune: list packs: %w", err)
	}
	live := liveFiles(files)
	tomb := make(map[tombKey]tombState)
	for _, f := range live {
		for _, t := range f.Tombstones {
			k := tombKey{BlobHandle{t.ID, t.Type}, t.Pack}
			s := tomb[k]
			if t.Deleted.After(s.deleted) {
				s.deleted = t.Deleted
			}
			if t.Revived.After(s.revived) {
				s.revived = t.Revived
			}
			tomb[k] = s
		}
	}
	packs := make(map[ID]*prunePack)
	var missing []indexPack // indexed but absent: kept in the index for check to report
	for _, f := range live {
		for _, ip := range f.Packs {
			fi, ok := present[ip.ID]
			if !ok {
				missing = append(missing, ip)
				continue
			}
			if _, dup := packs[ip.ID]; dup {
				continue
			}
			pp := &prunePack{id: ip.ID, size: ip.Size, modTime: fi.ModTime}
			for _, pb := range ip.packBlobs() {
				pp.copies = append(pp.copies, &pruneCopy{h: pb.Handle, pb: pb, state: tomb[tombKey{pb.Handle, ip.ID}]})
			}
			packs[ip.ID] = pp
		}
	}
	order := make([]*prunePack, 0, len(packs))
	for _, p := range packs {
		order = append(order, p)
	}
	// older packs first: the kept copy of a duplicated blob is the oldest
	sort.Slice(order, func(i, j int) bool {
		if !order[i].modTime.Equal(order[j].modTime) {
			return order[i].modTime.Before(order[j].modTime)
		}
		return order[i].id.String() < order[j].id.String()
	})

	// 4. decide per copy: the first live copy of a used blob is needed;
	// a used blob with only tombstoned copies gets one revived
	needed := make(map[BlobHandle]*pruneCopy)
	for _, p := range order {
		for _, c := range p.copies {
			if _, ok := used[c.h]; ok && !c.state.dead() && needed[c.h] == nil {
				needed[c.h] = c
			}
		}
	}
	for _, p := range order {
		for _, c := range p.copies {
			if _, ok := used[c.h]; ok && needed[c.h] == nil {
				c.state.revived = now
				needed[c.h] = c
				res.BlobsRevived++
			}
		}
	}
	repack := make(map[ID]bool)
	deletePack := make(map[ID]bool)
	for _, p := range order {
		old := now.Sub(p.modTime) >= opts.Grace
		var garbage, pending int64
		collectable := 0
		for _, c := range p.copies {
			switch {
			case needed[c.h] == c:
			case !c.state.dead():
				if old {
					c.state.deleted = now
					res.BlobsTombstoned++
				}
				pending += int64(c.pb.Length)
			case now.Sub(c.state.deleted) >= opts.Grace:
				garbage += int64(c.pb.Length)
				collectable++
			default:
				pending += int64(c.pb.Length)
			}
		}
		switch {
		case collectable == 0 || pending > 0:
		case collectable == len(p.copies):
			deletePack[p.id] = true
			res.PacksDeleted++
			res.BlobsRemoved += collectable
			res.BytesFreed += p.size
		case float64(garbage) > opts.MaxUnused*float64(p.size):
			repack[p.id] = true
			res.PacksRepacked++
			res.BlobsRemoved += collectable
			res.BytesFreed += garbage
			res.BytesRepacked += p.size - garbage
		}
	}
	res.IndexFilesIn = len(files)
	if opts.DryRun {
		return res, nil
	}

	// 5. repack: copy the needed blobs of mostly-garbage packs to new packs
	for _, p := range order {
		if !repack[p.id] {
			continue
		}
		for _, c := range p.copies {
			if needed[c.h] != c {
				continue
			}
			data, err := r.loadCopy(ctx, p.id, c.pb, nil)
			if err != nil {
				return nil, fmt.Errorf("prune: repack: %w", err)
			}
			if _, err := r.saveBlob(ctx, c.h, data, true); err != nil {
				return nil, fmt.Errorf("prune: repack: %w", err)
			}
		}
	}
	if err := r.Flush(ctx); err != nil {
		return nil, fmt.Errorf("prune: repack: %w", err)
	}

	// 6. one compacted index replacing every file read: packs kept, their
	// tombstone state, the new tombstones and revivals
	out := &indexFile{Created: now.UTC()}
	for id := range files {
		out.Supersedes = append(out.Supersedes, id)
	}
	sort.Slice(out.Supersedes, func(i, j int) bool { return out.Supersedes[i].String() < out.Supersedes[j].String() })
	for _, p := range order {
		if deletePack[p.id] || repack[p.id] {
			continue
		}
		ip := indexPack{ID: p.id, Size: p.size}
		for _, c := range p.copies {
			b := indexBlob{Type: c.h.Type, ID: c.h.ID, Offset: c.pb.Offset, Length: c.pb.Length, RawLength: c.pb.RawLen, Compressed: c.pb.Flags&flagCompressed != 0}
			ip.Blobs = append(ip.Blobs, b)
			if !c.state.deleted.IsZero() || !c.state.revived.IsZero() {
				out.Tombstones = append(out.Tombstones, tombRecord{Type: c.h.Type, ID: c.h.ID, Pack: p.id, Deleted: c.state.deleted, Revived: c.state.revived})
			}
		}
		out.Packs = append(out.Packs, ip)
	}
	out.Packs = append(out.Packs, missing...)
	if _, err := r.writeIndex(ctx, out.Supersedes, out.Packs, out.Tombstones); err != nil {
		return nil, fmt.Errorf("prune: write compacted index: %w", err)
	}

	// 7. only now delete: the superseded index files, then the packs
	for id := range files {
		if err := r.be.Remove(ctx, backend.Handle{Type: backend.IndexFile, Name: id.String()}); err != nil && !errors.Is(err, backend.ErrNotExist) {
			return nil, fmt.Errorf("prune: remove index: %w", err)
		}
	}
	for _, p := range order {
		if deletePack[p.id] || repack[p.id] {
			if err := r.be.Remove(ctx, backend.Handle{Type: backend.PackFile, Name: p.id.String()}); err != nil && !errors.Is(err, backend.ErrNotExist) {
				return nil, fmt.Errorf("prune: remove pack: %w", err)
			}
		}
	}
	if err := r.LoadIndex(ctx); err != nil {
		return nil, fmt.Errorf("prune: %w", err)
	}
	// 8. leftovers of interrupted saves; a failure here undoes nothing
	// above, and the next prune tries again
	if tc, ok := r.be.(backend.TempCleaner); ok {
		n, err := tc.CleanTemp(ctx, now.Add(-opts.Grace))
		res.TempFilesRemoved = n
		if err != nil {
			r.log.Warn("temporary files not cleaned", "removed", n, "err", err)
		}
	}
	r.log.Info("prune finished", "packs_deleted", res.PacksDeleted, "packs_repacked", res.PacksRepacked, "bytes_freed", res.BytesFreed, "temp_files_removed", res.TempFilesRemoved)
	return res, nil
}

// usedBlobs walks every snapshot's trees; any failure (a damaged
// snapshot, a missing tree) is an error: prune must not guess.
func (r *Repository) usedBlobs(ctx context.Context, snaps []*Snapshot) (map[BlobHandle]struct{}, error) {
	used := make(map[BlobHandle]struct{})
	var walk func(id ID) error
	walk = func(id ID) error {
		h := BlobHandle{ID: id, Type: TreeBlob}
		if _, ok := used[h]; ok {
			return nil
		}
		used[h] = struct{}{}
		t, err := r.LoadTree(ctx, id)
		if err != nil {
			return err
		}
		for _, n := range t.Nodes {
			for _, b := range n.Content {
				used[BlobHandle{ID: b, Type: DataBlob}] = struct{}{}
			}
			if n.Subtree != nil {
				if err := walk(*n.Subtree); err != nil {
					return err
				}
			}
		}
		return nil
	}
	for _, sn := range snaps {
		if err := walk(sn.Tree); err != nil {
			return nil, fmt.Errorf("snapshot %v: %w", sn.ID.Short(), err)
		}
	}
	return used, nil
}

// RecoverOrphans indexes the packs in data/ that no index file lists (a
// backup killed between uploading a pack and writing its index), so the
// next backup deduplicates against them instead of uploading them again.
// Backups call it before they start. It handles orphans younger than
// DefaultGrace only: older ones are prune's (which indexes them and then
// collects them like any unused data), so a backup never re-indexes a
// pack that a prune is deleting. It returns the number of packs indexed;
// packs whose header is damaged are logged and left alone.
func (r *Repository) RecoverOrphans(ctx context.Context) (int, error) {
	return r.recoverOrphans(ctx, 0, DefaultGrace, false)
}

// recoverOrphans indexes orphans with minAge <= age < maxAge (maxAge 0:
// no upper bound).
func (r *Repository) recoverOrphans(ctx context.Context, minAge, maxAge time.Duration, dryRun bool) (int, error) {
	if err := r.refreshIndex(ctx); err != nil {
		return 0, fmt.Errorf("recover orphans: %w", err)
	}
	x := r.idx.Load()
	now := r.now()
	var orphans []backend.FileInfo
	err := r.be.List(ctx, backend.PackFile, func(fi backend.FileInfo) error {
		id, err := ParseID(fi.Name)
		if err != nil {
			return nil
		}
		x.mu.RLock()
		_, known := x.packNum[id]
		x.mu.RUnlock()
		if age := now.Sub(fi.ModTime); !known && age >= minAge && (maxAge == 0 || age < maxAge) {
			orphans = append(orphans, fi)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("recover orphans: list packs: %w", err)
	}
	if len(orphans) == 0 || dryRun {
		return len(orphans), nil
	}
	f := &indexFile{}
	var infos []*packInfo
	for _, fi := range orphans {
		id, _ := ParseID(fi.Name)
		blobs, err := r.loadPackHeader(ctx, id, fi.Size)
		if errors.Is(err, backend.ErrNotExist) {
			continue
		}
		if err != nil {
			r.log.Warn("orphan pack not indexed", "pack", fi.Name, "err", err)
			continue
		}
		pi := &packInfo{ID: id, Size: fi.Size, Blobs: blobs}
		infos = append(infos, pi)
		f.Packs = append(f.Packs, indexPackOf(pi))
	}
	if len(f.Packs) == 0 {
		return 0, nil
	}
	if _, err := r.writeIndex(ctx, nil, f.Packs, nil); err != nil {
		return 0, fmt.Errorf("recover orphans: %w", err)
	}
	for _, pi := range infos {
		x.addPack(pi)
	}
	r.log.Info("indexed orphan packs", "packs", len(infos))
	return len(infos), nil
}

// MarkUsed tells the repository that the snapshot being written
// references these blobs without having saved them (an unchanged file or
// directory taken over from a parent snapshot), so that SaveSnapshot
// protects them against a concurrent prune like the blobs SaveBlob saw.
// It reports whether every blob is in the index.
func (r *Repository) MarkUsed(t BlobType, ids ...ID) bool {
	x := r.idx.Load()
	all := true
	now := r.now().UnixNano()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, id := range ids {
		h := BlobHandle{ID: id, Type: t}
		r.used[h] = now
		if _, _, ok := x.lookup(h); !ok {
			all = false
		}
	}
	return all
}
