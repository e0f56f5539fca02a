package repository

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/sitevault/sitevault/internal/backend"
)

// snapshotFile is the JSON (sealed, see doc.go) stored as snapshots/<sha256>.
type snapshotFile struct {
	Version int `json:"version"`
	*Snapshot
}

func parseSnapshot(b []byte) (*Snapshot, error) {
	sf := snapshotFile{Snapshot: &Snapshot{}}
	if err := json.Unmarshal(b, &sf); err != nil {
		return nil, fmt.Errorf("parse snapshot: %v: %w", err, ErrDamaged)
	}
	if sf.Version > 1 {
		return nil, fmt.Errorf("snapshot version %d: %w", sf.Version, ErrNewerFormat)
	}
	if sf.Version != 1 || sf.Tree.IsNull() {
		return nil, fmt.Errorf("snapshot version %d or null tree: %w", sf.Version, ErrDamaged)
	}
	return sf.Snapshot, nil
}

// SaveSnapshot flushes pending blobs, makes sure every blob this process
// saved or deduplicated against (SaveBlob, SaveStream, SaveTree,
// MarkUsed) at or after sn.Time — backups set Time to their start — is
// still live, re-saving any that a concurrent prune tombstoned meanwhile
// (see doc.go "Prune"), then writes sn and sets sn.ID.
func (r *Repository) SaveSnapshot(ctx context.Context, sn *Snapshot) (ID, error) {
	if sn.Tree.IsNull() {
		return ID{}, errors.New("save snapshot: no tree")
	}
	if err := r.Flush(ctx); err != nil {
		return ID{}, fmt.Errorf("save snapshot: %w", err)
	}
	if err := r.protectUsed(ctx, sn.Time); err != nil {
		return ID{}, fmt.Errorf("save snapshot: %w", err)
	}
	plain, err := json.Marshal(snapshotFile{Version: 1, Snapshot: sn})
	if err != nil {
		return ID{}, fmt.Errorf("save snapshot: %w", err)
	}
	b := r.crypt.sealFile(kindSnapshot, plain)
	id := fileID(b)
	h := backend.Handle{Type: backend.SnapshotFile, Name: id.String()}
	if err := r.be.Save(ctx, h, bytes.NewReader(b), int64(len(b))); err != nil {
		return ID{}, fmt.Errorf("save snapshot %v: %w", h, err)
	}
	sn.ID = id
	return id, nil
}

// protectUsed re-reads new index files and re-saves every blob this
// process saved or deduplicated against since the backup started (since)
// that prune tombstoned meanwhile; a blob gone altogether is an error
// (ErrBlobNotFound): the snapshot would be incomplete. Uses older than
// both since and twice DefaultGrace are forgotten.
func (r *Repository) protectUsed(ctx context.Context, since time.Time) error {
	if err := r.refreshIndex(ctx); err != nil {
		return err
	}
	from := since.UnixNano()
	if since.IsZero() {
		from = 0
	}
	forget := r.now().Add(-2 * DefaultGrace).UnixNano()
	r.mu.Lock()
	var suspect []BlobHandle
	x := r.idx.Load()
	for h, at := range r.used {
		if at < forget && at < from {
			delete(r.used, h)
			continue
		}
		if at < from {
			continue
		}
		if _, ok := r.inflight[h]; !ok && !x.has(h) {
			suspect = append(suspect, h)
		}
	}
	r.mu.Unlock()
	if len(suspect) == 0 {
		return nil
	}
	for _, h := range suspect {
		if !x.isDead(h) {
			return fmt.Errorf("blob %v: %w (removed by a prune while this backup ran)", h, ErrBlobNotFound)
		}
		data, err := r.LoadBlob(ctx, h.Type, h.ID, nil)
		if err != nil {
			return fmt.Errorf("re-save tombstoned blob: %w", err)
		}
		if _, err := r.saveBlob(ctx, h, data, true); err != nil {
			return fmt.Errorf("re-save tombstoned blob %v: %w", h, err)
		}
		r.log.Info("re-saved blob tombstoned by prune", "blob", h.String())
	}
	return r.Flush(ctx)
}

// LoadSnapshot loads one snapshot by id.
func (r *Repository) LoadSnapshot(ctx context.Context, id ID) (*Snapshot, error) {
	h := backend.Handle{Type: backend.SnapshotFile, Name: id.String()}
	b, err := loadFile(ctx, r.be, h)
	if err != nil {
		return nil, fmt.Errorf("load snapshot %v: %w", id.Short(), err)
	}
	if fileID(b) != id {
		return nil, fmt.Errorf("snapshot %v: content does not match its name: %w", h, ErrDamaged)
	}
	plain, err := r.crypt.openFile(kindSnapshot, b)
	if err != nil {
		return nil, fmt.Errorf("snapshot %v: %w", h, err)
	}
	sn, err := parseSnapshot(plain)
	if err != nil {
		return nil, fmt.Errorf("snapshot %v: %w", h, err)
	}
	sn.ID = id
	return sn, nil
}

func (r *Repository) snapshotIDs(ctx context.Context) ([]ID, error) {
	var ids []ID
	err := r.be.List(ctx, backend.SnapshotFile, func(fi backend.FileInfo) error {
		if id, err := ParseID(fi.Name); err == nil {
			ids = append(ids, id)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list snapshots: %w", err)
	}
	return ids, nil
}

// loadSnapshots loads every snapshot in parallel. With strict, a damaged
// snapshot is an error; otherwise it is logged and skipped.
func (r *Repository) loadSnapshots(ctx context.Context, strict bool) ([]*Snapshot, error) {
	ids, err := r.snapshotIDs(ctx)
	if err != nil {
		return nil, err
	}
	var (
		mu  sync.Mutex
		out []*Snapshot
	)
	// Decoded snapshots are reused (a service lists every point of the
	// repository for each backup: without the cache each job decrypted
	// every snapshot file again); strict listings (check) read every file.
	listed := make(map[ID]bool, len(ids))
	r.snapsMu.Lock()
	if r.snaps == nil {
		r.snaps = make(map[ID]*Snapshot)
	}
	var todo []ID
	for _, id := range ids {
		listed[id] = true
		if sn, ok := r.snaps[id]; ok && !strict {
			out = append(out, sn.clone())
		} else {
			todo = append(todo, id)
		}
	}
	for id := range r.snaps {
		if !listed[id] {
			delete(r.snaps, id) // removed (forget)
		}
	}
	r.snapsMu.Unlock()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(2 * r.opts.Connections)
	for _, id := range todo {
		g.Go(func() error {
			sn, err := r.LoadSnapshot(gctx, id)
			if errors.Is(err, backend.ErrNotExist) {
				return nil // removed meanwhile
			}
			if err != nil {
				if strict || !errors.Is(err, ErrDamaged) {
					return err
				}
				r.log.Warn("skipping damaged snapshot", "snapshot", id.String(), "err", err)
				return nil
			}
			mu.Lock()
			out = append(out, sn)
			mu.Unlock()
			r.snapsMu.Lock()
			r.snaps[id] = sn.clone()
			r.snapsMu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	sortSnapshots(out)
	return out, nil
}

func sortSnapshots(s []*Snapshot) {
	sort.Slice(s, func(i, j int) bool {
		if !s[i].Time.Equal(s[j].Time) {
			return s[i].Time.Before(s[j].Time)
		}
		return bytes.Compare(s[i].ID[:], s[j].ID[:]) < 0
	})
}

// Snapshots lists every snapshot, oldest first. Damaged snapshot files are
// logged and skipped (Check reports them).
func (r *Repository) Snapshots(ctx context.Context) ([]*Snapshot, error) {
	return r.loadSnapshots(ctx, false)
}

// FindSnapshot resolves a unique id prefix (at least 4 hex characters) or
// "latest" (the newest snapshot, of site if site is not empty). No match
// is an error wrapping backend.ErrNotExist.
func (r *Repository) FindSnapshot(ctx context.Context, prefix, site string) (*Snapshot, error) {
	if prefix == "latest" {
		snaps, err := r.Snapshots(ctx)
		if err != nil {
			return nil, fmt.Errorf("find snapshot: %w", err)
		}
		for i := len(snaps) - 1; i >= 0; i-- {
			if site == "" || snaps[i].Site == site {
				return snaps[i], nil
			}
		}
		return nil, fmt.Errorf("site %q has no restore point yet: %w", site, backend.ErrNotExist)
	}
	prefix = strings.ToLower(prefix)
	if len(prefix) < 4 || len(prefix) > 64 {
		return nil, fmt.Errorf("find snapshot %q: give at least 4 hex characters or \"latest\"", prefix)
	}
	ids, err := r.snapshotIDs(ctx)
	if err != nil {
		return nil, fmt.Errorf("find snapshot: %w", err)
	}
	var match []ID
	for _, id := range ids {
		if strings.HasPrefix(id.String(), prefix) {
			match = append(match, id)
		}
	}
	switch len(match) {
	case 0:
		return nil, fmt.Errorf("no restore point has an id beginning with %q: %w", prefix, backend.ErrNotExist)
	case 1:
		return r.LoadSnapshot(ctx, match[0])
	}
	return nil, fmt.Errorf("find snapshot %q: prefix is ambiguous (%d snapshots)", prefix, len(match))
}

// RemoveSnapshot deletes a snapshot file. Its data stays until a prune.
func (r *Repository) RemoveSnapshot(ctx context.Context, id ID) error {
	if err := r.be.Remove(ctx, backend.Handle{Type: backend.SnapshotFile, Name: id.String()}); err != nil {
		return fmt.Errorf("remove snapshot %v: %w", id.Short(), err)
	}
	return nil
}

// clone returns a copy of sn that shares nothing a caller may change.
func (sn *Snapshot) clone() *Snapshot {
	c := *sn
	if sn.Parent != nil {
		p := *sn.Parent
		c.Parent = &p
	}
	c.Tags = slices.Clone(sn.Tags)
	c.Meta = maps.Clone(sn.Meta)
	if sn.Summary != nil {
		s := *sn.Summary
		s.Skipped, s.Warnings = slices.Clone(sn.Summary.Skipped), slices.Clone(sn.Summary.Warnings)
		c.Summary = &s
	}
	return &c
}
