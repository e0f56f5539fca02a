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
	// LockRefresh and LockStale time the prune lock (see prunelock.go);
	// 0 means DefaultLockRefresh and DefaultLockStale. Every prune on a
	// repository must use the same LockStale; tests shorten both.
	LockRefresh, LockStale time.Duration

	// beforeDestroy, if set, runs before the first destructive step (tests
	// pause a prune there).
	beforeDestroy func()
}

// MinGrace is the shortest grace the CLI accepts: a backup must finish
// within the grace of every prune that runs meanwhile (doc.go, "Prune").
const MinGrace = time.Hour

// PruneResult reports what Prune did (or, with DryRun, would do).
type PruneResult struct {
	BlobsUsed       int
	BlobsTombstoned int // newly marked unused
	BlobsRevived    int // tombstoned but referenced again
	BlobsRemoved    int // deleted with their pack, or left behind by a repack
	PacksDeleted    int
	PacksRepacked   int
	OrphansIndexed  int
	// MissingPacks counts packs the index listed with data still in use
	// but that were not in the backend: prune dropped them from the index
	// (logging each); check reports the restore points that lost data.
	MissingPacks  int
	IndexFilesIn  int // index files replaced by the compacted one
	BytesFreed    int64
	BytesRepacked int64
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
	id     ID
	size   int64
	young  bool // indexed by a backup less than Grace ago, not yet compacted
	copies []pruneCopy
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
	if opts.LockRefresh <= 0 {
		opts.LockRefresh = DefaultLockRefresh
	}
	if opts.LockStale <= 0 {
		opts.LockStale = DefaultLockStale
	}
	var lock *pruneLock
	if !opts.DryRun {
		l, err := r.takePruneLock(ctx, opts.LockRefresh, opts.LockStale)
		if err != nil {
			return nil, fmt.Errorf("prune: %w", err)
		}
		defer l.release(ctx)
		lock = l
	}
	// a tombstone counts from when it was visible: at most a quarter of
	// the staleness after its stamp (writeStamped)
	wait := opts.Grace + opts.LockStale/4
	res := &PruneResult{}

	// 0. orphans (packs in no index: a killed backup's, or a running
	// backup's not yet indexed) join the index so that the normal
	// protocol collects them; their copies are tombstoned below whatever
	// their age (a running backup re-saves what it uses, see SaveSnapshot)
	orphans, err := r.recoverOrphans(ctx, opts.DryRun)
	if err != nil {
		return nil, fmt.Errorf("prune: %w", err)
	}
	res.OrphansIndexed = len(orphans)

	// 1. the snapshots first: every snapshot listed now had its index
	// files written before it, so the index loaded next covers them.
	// listed is the time deletions are judged by: a snapshot written
	// later is not seen by this run.
	listed := r.now()
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
	// the index opened (plus what changed since) finds the trees
	if err := r.refreshIndex(ctx); err != nil {
		return nil, fmt.Errorf("prune: %w", err)
	}

	// 3. what the snapshots use
	used, err := r.usedBlobs(ctx, snaps)
	if err != nil {
		return nil, fmt.Errorf("prune: %w", err)
	}
	res.BlobsUsed = len(used)

	// 3. the packs present, and the merged index view
	present := make(map[ID]int64)
	if err := r.be.List(ctx, backend.PackFile, func(fi backend.FileInfo) error {
		if id, err := ParseID(fi.Name); err == nil {
			present[id] = fi.Size
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("prune: list packs: %w", err)
	}
	live := liveFiles(files)
	tomb := make(map[tombKey]tombState)
	for _, f := range live {
		for _, t := range f.Tombstones {
			mergeTomb(tomb, t)
		}
	}
	// A pack is young while a backup's own index file (not a prune's
	// compacted one), written less than Grace ago by the writer's clock,
	// lists it: a running backup may be about to reference its blobs.
	// Orphans this run indexed are never young. Pack modification times
	// are not used: a copy of the repository resets them.
	young := make(map[ID]bool)
	for _, f := range live {
		if len(f.Supersedes) > 0 || listed.Sub(f.Created) >= opts.Grace {
			continue
		}
		for _, ip := range f.Packs {
			if _, orphan := orphans[ip.ID]; !orphan {
				young[ip.ID] = true
			}
		}
	}
	packs := make(map[ID]*prunePack)
	for _, f := range live {
		for _, ip := range f.Packs {
			if _, dup := packs[ip.ID]; dup {
				continue
			}
			pp := &prunePack{id: ip.ID, size: ip.Size, young: young[ip.ID]}
			for _, pb := range ip.packBlobs() {
				pp.copies = append(pp.copies, pruneCopy{h: pb.Handle, pb: pb, state: tomb[tombKey{pb.Handle, ip.ID}]})
			}
			packs[ip.ID] = pp
		}
	}
	// Indexed but absent packs leave the index: those an earlier prune
	// deleted or repacked (every copy tombstoned) quietly, others (lost
	// data) with a warning; check names the restore points they break.
	for id, p := range packs {
		if _, ok := present[id]; ok {
			continue
		}
		delete(packs, id)
		gone := true
		for i := range p.copies {
			c := &p.copies[i]
			gone = gone && c.state.dead()
		}
		if !gone {
			res.MissingPacks++
			r.log.Warn("pack in the index is missing from the backend; dropping it from the index (run check to see which restore points lost data)", "pack", id.String())
		}
	}
	// the decoded index files are not needed any more: keep their names
	// (superseded below) and whether they list a dropped pack
	supersede := make([]ID, 0, len(files))
	for id := range files {
		supersede = append(supersede, id)
	}
	sort.Slice(supersede, func(i, j int) bool { return supersede[i].String() < supersede[j].String() })
	gone := indexHasGone(live, packs)
	nFiles := len(files)
	files, live, tomb = nil, nil, nil
	order := make([]*prunePack, 0, len(packs))
	for _, p := range packs {
		order = append(order, p)
	}
	// the kept copy of a duplicated blob is deterministic
	sort.Slice(order, func(i, j int) bool { return order[i].id.String() < order[j].id.String() })

	// 4. decide per copy: the first live copy of a used blob is needed;
	// a used blob with only tombstoned copies gets one revived. New
	// tombstones and revivals are stamped just before the index write
	// that makes them visible (stamp, below).
	var stamped []*pruneCopy
	needed := make(map[BlobHandle]*pruneCopy)
	for _, p := range order {
		for i := range p.copies {
			c := &p.copies[i]
			if _, ok := used[c.h]; ok && !c.state.dead() && needed[c.h] == nil {
				needed[c.h] = c
			}
		}
	}
	for _, p := range order {
		for i := range p.copies {
			c := &p.copies[i]
			if _, ok := used[c.h]; ok && needed[c.h] == nil {
				c.state.revived = listed // provisional; stamped below
				stamped = append(stamped, c)
				needed[c.h] = c
				res.BlobsRevived++
			}
		}
	}
	repack := make(map[ID]bool)
	deletePack := make(map[ID]bool)
	var newDead []*pruneCopy
	for _, p := range order {
		var garbage, pending int64
		collectable := 0
		for i := range p.copies {
			c := &p.copies[i]
			switch {
			case needed[c.h] == c:
			case !c.state.dead():
				if !p.young {
					newDead = append(newDead, c)
					res.BlobsTombstoned++
				}
				pending += int64(c.pb.Length)
			case listed.Sub(c.state.deleted) >= wait:
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
	res.IndexFilesIn = nFiles
	if opts.DryRun {
		return res, nil
	}
	// nothing to change (the usual run while tombstones wait for their
	// grace): write and delete nothing
	if len(orphans) == 0 && len(stamped) == 0 && len(newDead) == 0 && len(repack) == 0 && len(deletePack) == 0 &&
		nFiles <= 1 && !gone {
		res.IndexFilesIn = 0
		if err := r.cleanTemp(ctx, lock, opts, res); err != nil {
			return nil, err
		}
		r.log.Info("prune finished: nothing to change", "temp_files_removed", res.TempFilesRemoved)
		return res, nil
	}
	if opts.beforeDestroy != nil {
		opts.beforeDestroy()
	}

	// 5. repack: copy the needed blobs of mostly-garbage packs to new
	// packs; the old pack stays in the index, all its copies tombstoned,
	// until it is gone (so no backup adopts it as an orphan)
	if len(repack) > 0 {
		if err := lock.ensure(ctx); err != nil {
			return nil, fmt.Errorf("prune: repack: %w", err)
		}
	}
	for _, p := range order {
		if !repack[p.id] {
			continue
		}
		for i := range p.copies {
			c := &p.copies[i]
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
			newDead = append(newDead, c)
		}
	}
	if err := r.Flush(ctx); err != nil {
		return nil, fmt.Errorf("prune: repack: %w", err)
	}

	// 6. one compacted index replacing every file read: packs kept (the
	// ones deleted below too, until they are gone), their tombstone
	// state, the new tombstones and revivals
	out := &indexFile{Supersedes: supersede}
	if err := r.writeStamped(ctx, lock, out, order, stamped, newDead); err != nil {
		return nil, fmt.Errorf("prune: write compacted index: %w", err)
	}

	// 7. only now delete: the superseded index files, then the packs
	if err := lock.ensure(ctx); err != nil {
		return nil, fmt.Errorf("prune: %w", err)
	}
	for _, id := range supersede {
		if err := lock.valid(); err != nil {
			return nil, fmt.Errorf("prune: %w", err)
		}
		if err := r.be.Remove(ctx, backend.Handle{Type: backend.IndexFile, Name: id.String()}); err != nil && !errors.Is(err, backend.ErrNotExist) {
			return nil, fmt.Errorf("prune: remove index: %w", err)
		}
	}
	if err := lock.ensure(ctx); err != nil {
		return nil, fmt.Errorf("prune: %w", err)
	}
	for _, p := range order {
		if deletePack[p.id] || repack[p.id] {
			if err := lock.valid(); err != nil {
				return nil, fmt.Errorf("prune: %w", err)
			}
			if err := r.be.Remove(ctx, backend.Handle{Type: backend.PackFile, Name: p.id.String()}); err != nil && !errors.Is(err, backend.ErrNotExist) {
				return nil, fmt.Errorf("prune: remove pack: %w", err)
			}
		}
	}
	if err := r.LoadIndex(ctx); err != nil {
		return nil, fmt.Errorf("prune: %w", err)
	}
	if err := r.cleanTemp(ctx, lock, opts, res); err != nil {
		return nil, err
	}
	r.log.Info("prune finished", "packs_deleted", res.PacksDeleted, "packs_repacked", res.PacksRepacked, "bytes_freed", res.BytesFreed, "missing_packs", res.MissingPacks, "temp_files_removed", res.TempFilesRemoved)
	return res, nil
}

// cleanTemp removes the leftovers of interrupted saves older than Grace;
// a failure to clean undoes nothing, and the next prune tries again.
func (r *Repository) cleanTemp(ctx context.Context, lock *pruneLock, opts PruneOptions, res *PruneResult) error {
	tc, ok := r.be.(backend.TempCleaner)
	if !ok {
		return nil
	}
	if err := lock.ensure(ctx); err != nil {
		return fmt.Errorf("prune: %w", err)
	}
	n, err := tc.CleanTemp(ctx, r.now().Add(-opts.Grace))
	res.TempFilesRemoved = n
	if err != nil {
		r.log.Warn("temporary files not cleaned", "removed", n, "err", err)
	}
	return nil
}

// indexHasGone reports whether the index files list a pack that the
// prune dropped (gone from the backend).
func indexHasGone(live map[ID]*indexFile, packs map[ID]*prunePack) bool {
	for _, f := range live {
		for _, ip := range f.Packs {
			if packs[ip.ID] == nil {
				return true
			}
		}
	}
	return false
}

// maxStampTries bounds writeStamped's attempts.
const maxStampTries = 3

// writeStamped writes the compacted index out (packs from order with
// their tombstone state), stamping the new tombstones (newDead) and
// revivals (revived) with the time just before the write. A tombstone
// must not look older than it is visible, or a later prune could delete
// its pack before Grace has passed for a backup that could not see it:
// when the write takes longer than a quarter of the lock's staleness, the
// file is written again with a new stamp, superseding the first (the
// latest stamp wins when index files are merged, and the second stamp is
// taken after the first file was visible).
func (r *Repository) writeStamped(ctx context.Context, lock *pruneLock, out *indexFile, order []*prunePack, revived, newDead []*pruneCopy) error {
	for try := 1; ; try++ {
		if err := lock.ensure(ctx); err != nil {
			return err
		}
		stamp := r.now().UTC()
		for _, c := range revived {
			c.state.revived = stamp
		}
		for _, c := range newDead {
			c.state.deleted = stamp
			if !c.state.revived.Before(stamp) { // revived this run, then repacked
				c.state.revived = time.Time{}
			}
		}
		out.Created = stamp
		out.Packs, out.Tombstones = nil, nil
		for _, p := range order {
			ip := indexPack{ID: p.id, Size: p.size}
			for i := range p.copies {
				c := &p.copies[i]
				b := indexBlob{Type: c.h.Type, ID: c.h.ID, Offset: c.pb.Offset, Length: c.pb.Length, RawLength: c.pb.RawLen, Compressed: c.pb.Flags&flagCompressed != 0}
				ip.Blobs = append(ip.Blobs, b)
				if !c.state.deleted.IsZero() || !c.state.revived.IsZero() {
					out.Tombstones = append(out.Tombstones, tombRecord{Type: c.h.Type, ID: c.h.ID, Pack: p.id, Deleted: c.state.deleted, Revived: c.state.revived})
				}
			}
			out.Packs = append(out.Packs, ip)
		}
		start := time.Now()
		ids, err := r.writeIndex(ctx, out.Supersedes, out.Packs, out.Tombstones)
		if err != nil {
			return err
		}
		took := time.Since(start)
		if took < lock.stale/4 {
			return nil
		}
		if try == maxStampTries {
			return fmt.Errorf("writing the index took %s (more than %s) %d times: %w", took.Round(time.Millisecond), lock.stale/4, try, ErrPruneLockLost)
		}
		r.log.Warn("index write was slow; writing it again with a later stamp", "took", took)
		out.Supersedes = append(out.Supersedes, ids...)
	}
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
// Backups call it before they start. A pack that a prune is deleting is
// never an orphan: prune keeps it in the index, tombstoned, until it is
// gone, so ages (and pack modification times) play no part. It returns
// the number of packs indexed; packs whose header is damaged are logged
// and left alone.
func (r *Repository) RecoverOrphans(ctx context.Context) (int, error) {
	// Only a writer that left its marker can have left orphans (see
	// writerPrefix): without one, no listing of data/.
	markers, err := r.otherWriters(ctx)
	if err != nil {
		return 0, fmt.Errorf("recover orphans: list writer markers: %w", err)
	}
	if len(markers) == 0 {
		return 0, nil
	}
	got, err := r.recoverOrphans(ctx, false)
	if err != nil {
		return len(got), err
	}
	// Their packs are indexed now. A writer still running keeps going
	// without its marker; should it die, prune indexes its orphans.
	for _, h := range markers {
		if err := r.be.Remove(ctx, h); err != nil && !errors.Is(err, backend.ErrNotExist) {
			r.log.Warn("remove a writer marker", "marker", h.Name, "error", err)
		}
	}
	return len(got), nil
}

// recoverOrphans indexes every orphan pack and returns them (with
// dryRun, only finds them).
func (r *Repository) recoverOrphans(ctx context.Context, dryRun bool) (map[ID]struct{}, error) {
	if err := r.refreshIndex(ctx); err != nil {
		return nil, fmt.Errorf("recover orphans: %w", err)
	}
	x := r.idx.Load()
	var orphans []backend.FileInfo
	err := r.be.List(ctx, backend.PackFile, func(fi backend.FileInfo) error {
		id, err := ParseID(fi.Name)
		if err != nil {
			return nil
		}
		x.mu.RLock()
		_, known := x.packNum[id]
		x.mu.RUnlock()
		if !known {
			orphans = append(orphans, fi)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("recover orphans: list packs: %w", err)
	}
	got := make(map[ID]struct{}, len(orphans))
	if dryRun {
		for _, fi := range orphans {
			id, _ := ParseID(fi.Name)
			got[id] = struct{}{}
		}
		return got, nil
	}
	if len(orphans) == 0 {
		return got, nil
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
		got[id] = struct{}{}
	}
	if len(f.Packs) == 0 {
		return got, nil
	}
	if _, err := r.writeIndex(ctx, nil, f.Packs, nil); err != nil {
		return nil, fmt.Errorf("recover orphans: %w", err)
	}
	for _, pi := range infos {
		x.addPack(pi)
	}
	r.log.Info("indexed orphan packs", "packs", len(infos))
	return got, nil
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
