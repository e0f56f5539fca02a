package repository

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/sitevault/sitevault/internal/backend"
)

// RepairResult reports what RepairIndex did.
type RepairResult struct {
	Packs         int  // packs indexed from their headers
	Blobs         int  // blob copies in them
	IndexFilesIn  int  // index files replaced
	IndexFilesOut int  // index files written
	DamagedPacks  []ID // packs whose header cannot be read: their blobs are not indexed
}

// RepairIndex rebuilds the index from the pack headers (packs are
// self-describing, so they are the truth): it reads the header of every
// pack in data/, writes new index files that supersede every index file
// present, then removes those. Use it when Open fails with
// ErrIndexDamaged or index files are lost; open the repository with
// Options.NoIndex for that. Tombstones of the old index are dropped: every
// blob is live again, and the next prune marks the unused ones anew
// (data is deleted later, never earlier). A pack whose header is damaged
// is reported in DamagedPacks and left in place. It holds the prune lock,
// so no prune runs meanwhile; backups may.
func (r *Repository) RepairIndex(ctx context.Context) (*RepairResult, error) {
	release, err := r.lockPrune(ctx)
	if err != nil {
		return nil, fmt.Errorf("repair index: %w", err)
	}
	defer release()
	res := &RepairResult{}
	old, err := r.listIndexNames(ctx)
	if err != nil {
		return nil, fmt.Errorf("repair index: %w", err)
	}
	var fis []backend.FileInfo
	if err := r.be.List(ctx, backend.PackFile, func(fi backend.FileInfo) error {
		if _, err := ParseID(fi.Name); err == nil {
			fis = append(fis, fi)
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("repair index: list packs: %w", err)
	}
	packs := make([]indexPack, 0, len(fis))
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(2 * r.opts.Connections)
	for _, fi := range fis {
		g.Go(func() error {
			id, _ := ParseID(fi.Name)
			blobs, err := r.loadPackHeader(gctx, id, fi.Size)
			if errors.Is(err, backend.ErrNotExist) {
				return nil // removed since the listing
			}
			mu.Lock()
			defer mu.Unlock()
			if errors.Is(err, ErrDamaged) {
				r.log.Warn("pack header damaged, its blobs are not indexed", "pack", fi.Name, "err", err)
				res.DamagedPacks = append(res.DamagedPacks, id)
				return nil
			}
			if err != nil {
				return err
			}
			packs = append(packs, indexPackOf(&packInfo{ID: id, Size: fi.Size, Blobs: blobs}))
			res.Blobs += len(blobs)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("repair index: %w", err)
	}
	sort.Slice(packs, func(i, j int) bool { return packs[i].ID.String() < packs[j].ID.String() })
	sort.Slice(res.DamagedPacks, func(i, j int) bool { return res.DamagedPacks[i].String() < res.DamagedPacks[j].String() })
	res.Packs = len(packs)
	res.IndexFilesIn = len(old)
	written, err := r.writeIndex(ctx, old, packs, nil)
	if err != nil {
		return nil, fmt.Errorf("repair index: %w", err)
	}
	res.IndexFilesOut = len(written)
	for _, id := range old {
		if err := r.be.Remove(ctx, backend.Handle{Type: backend.IndexFile, Name: id.String()}); err != nil && !errors.Is(err, backend.ErrNotExist) {
			return nil, fmt.Errorf("repair index: remove the replaced index file: %w", err)
		}
	}
	if err := r.LoadIndex(ctx); err != nil {
		return nil, fmt.Errorf("repair index: %w", err)
	}
	r.log.Info("index rebuilt from the packs", "packs", res.Packs, "blobs", res.Blobs, "damaged_packs", len(res.DamagedPacks))
	return res, nil
}
