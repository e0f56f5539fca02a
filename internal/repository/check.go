package repository

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/sitevault/sitevault/internal/backend"
)

// CheckOptions choose how deep Check looks.
type CheckOptions struct {
	// ReadData reads every indexed pack, verifies its SHA-256 name and
	// authenticates every blob in it.
	ReadData bool
}

// Problem is one defect Check found, with the snapshots it affects.
type Problem struct {
	Kind string // "index", "pack", "blob", "snapshot", "tree"
	// File is the repository file concerned ("data/<id>", "index/<id>",
	// "snapshots/<id>"), if any.
	File string
	// Blob is the blob concerned, if any.
	Blob *BlobHandle
	Err  error
	// Snapshots lists the snapshots that cannot be restored completely
	// because of this problem.
	Snapshots []ID
}

func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.Kind)
	if p.File != "" {
		b.WriteString(" " + p.File)
	}
	if p.Blob != nil {
		b.WriteString(" blob " + p.Blob.String())
	}
	b.WriteString(": " + p.Err.Error())
	if len(p.Snapshots) > 0 {
		short := make([]string, len(p.Snapshots))
		for i, s := range p.Snapshots {
			short[i] = s.Short()
		}
		b.WriteString(" (affects snapshots " + strings.Join(short, ", ") + ")")
	}
	return b.String()
}

// CheckResult is what Check found. The caller exits non-zero unless OK.
type CheckResult struct {
	Problems    []Problem
	Snapshots   int
	Trees       int
	IndexFiles  int
	Packs       int
	Blobs       int
	OrphanPacks int // sound packs in no index (an interrupted backup): prune indexes and collects them
	// DeletedPacks counts packs a prune deleted that stay in the index,
	// every copy tombstoned, until the next prune drops them: not a defect.
	DeletedPacks int
	BytesRead    int64 // pack bytes read with ReadData
}

// OK reports whether no problem was found.
func (c *CheckResult) OK() bool { return len(c.Problems) == 0 }

type blobCopy struct {
	pack ID
	pb   packBlob
}

type checker struct {
	r        *Repository
	res      *CheckResult
	copies   map[BlobHandle][]blobCopy
	packSize map[ID]int64 // indexed packs
	indexed  map[ID][]packBlob
	tomb     map[tombKey]tombState
	orphans  map[ID]int64 // present packs in no index, with a readable header
	badPack  map[ID]int   // pack → problem
	badBlob  map[tombKey]int
	blobProb map[BlobHandle]int
	treeMemo map[ID][]int
	affects  []map[ID]struct{}
}

func (c *checker) add(p Problem) int {
	c.res.Problems = append(c.res.Problems, p)
	c.affects = append(c.affects, nil)
	return len(c.res.Problems) - 1
}

// Check verifies the repository's structure: every index file decrypts,
// every indexed pack exists with the right size, every snapshot loads and
// every tree and blob it references is indexed in a sound pack. With
// opts.ReadData it also reads every pack, verifies its name and
// authenticates every blob. Problems are reported in the result; the
// error is for failures to run the check at all (backend unreachable).
func (r *Repository) Check(ctx context.Context, opts CheckOptions) (*CheckResult, error) {
	c := &checker{r: r, res: &CheckResult{}, copies: make(map[BlobHandle][]blobCopy), packSize: make(map[ID]int64),
		indexed: make(map[ID][]packBlob), tomb: make(map[tombKey]tombState), orphans: make(map[ID]int64),
		badPack: make(map[ID]int), badBlob: make(map[tombKey]int), blobProb: make(map[BlobHandle]int), treeMemo: make(map[ID][]int)}
	if err := r.loadIndex(ctx, true); err != nil { // damaged files are reported below
		return nil, fmt.Errorf("check: %w", err)
	}
	if err := c.checkIndex(ctx); err != nil {
		return nil, fmt.Errorf("check: %w", err)
	}
	present, err := c.checkPacks(ctx)
	if err != nil {
		return nil, fmt.Errorf("check: %w", err)
	}
	if opts.ReadData {
		if err := c.readData(ctx, present); err != nil {
			return nil, fmt.Errorf("check: %w", err)
		}
	}
	if err := c.checkSnapshots(ctx); err != nil {
		return nil, fmt.Errorf("check: %w", err)
	}
	for i, set := range c.affects {
		for id := range set {
			c.res.Problems[i].Snapshots = append(c.res.Problems[i].Snapshots, id)
		}
		s := c.res.Problems[i].Snapshots
		sort.Slice(s, func(a, b int) bool { return s[a].String() < s[b].String() })
	}
	return c.res, nil
}

func (c *checker) checkIndex(ctx context.Context) error {
	ids, err := c.r.listIndexNames(ctx)
	if err != nil {
		return err
	}
	files := make(map[ID]*indexFile)
	for _, id := range ids {
		f, err := c.r.loadIndexFile(ctx, id)
		if errors.Is(err, backend.ErrNotExist) {
			continue
		}
		if errors.Is(err, ErrDamaged) || errors.Is(err, ErrNewerFormat) {
			c.add(Problem{Kind: "index", File: "index/" + id.String(), Err: err})
			continue
		}
		if err != nil {
			return err
		}
		files[id] = f
	}
	c.res.IndexFiles = len(files)
	live := liveFiles(files)
	for _, f := range live {
		for _, t := range f.Tombstones {
			mergeTomb(c.tomb, t)
		}
	}
	for _, f := range live {
		for _, p := range f.Packs {
			if _, dup := c.indexed[p.ID]; dup {
				continue
			}
			c.packSize[p.ID] = p.Size
			c.indexed[p.ID] = p.packBlobs()
		}
	}
	return nil
}

// checkPacks compares the packs present with the index. A pack that is
// missing with every copy tombstoned is one a prune deleted: its copies
// are dropped, so a snapshot that still needs one of its blobs reports
// the blob as missing.
func (c *checker) checkPacks(ctx context.Context) (map[ID]int64, error) {
	present := make(map[ID]int64)
	var foreign []string
	err := c.r.be.List(ctx, backend.PackFile, func(fi backend.FileInfo) error {
		if id, err := ParseID(fi.Name); err == nil {
			present[id] = fi.Size
		} else {
			foreign = append(foreign, fi.Name)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list packs: %w", err)
	}
	sort.Strings(foreign)
	for _, name := range foreign {
		c.add(Problem{Kind: "pack", File: "data/" + name, Err: fmt.Errorf("not a pack name: %w; sitevault never writes or removes such a file: move it out of the repository", ErrDamaged)})
	}
	for id, size := range present {
		if _, ok := c.packSize[id]; ok {
			continue
		}
		// prune indexes an orphan only if its header reads; one that does
		// not stays forever, so it is a problem, not an orphan
		if _, err := c.r.loadPackHeader(ctx, id, size); err != nil {
			if errors.Is(err, backend.ErrNotExist) {
				continue
			}
			if !errors.Is(err, ErrDamaged) {
				return nil, fmt.Errorf("read header of %v: %w", id.Short(), err)
			}
			c.add(Problem{Kind: "pack", File: "data/" + id.String(), Err: fmt.Errorf("in no index and its header is unreadable (%w); prune never removes it: move it out of the repository", err)})
			continue
		}
		c.orphans[id] = size
		c.res.OrphanPacks++
	}
	for id, blobs := range c.indexed {
		if _, ok := present[id]; ok {
			continue
		}
		deleted := len(blobs) > 0
		for _, pb := range blobs {
			deleted = deleted && c.tomb[tombKey{pb.Handle, id}].dead()
		}
		if deleted {
			delete(c.indexed, id)
			delete(c.packSize, id)
			c.res.DeletedPacks++
		}
	}
	for id, blobs := range c.indexed {
		for _, pb := range blobs {
			cs := c.copies[pb.Handle]
			dup := false
			for _, x := range cs {
				dup = dup || x.pack == id
			}
			if !dup {
				c.copies[pb.Handle] = append(cs, blobCopy{id, pb})
			}
		}
	}
	c.res.Blobs = len(c.copies)
	c.res.Packs = len(c.packSize)
	for id, size := range c.packSize {
		got, ok := present[id]
		switch {
		case !ok:
			c.badPack[id] = c.add(Problem{Kind: "pack", File: "data/" + id.String(), Err: fmt.Errorf("pack is missing: %w", backend.ErrNotExist)})
		case got != size:
			c.badPack[id] = c.add(Problem{Kind: "pack", File: "data/" + id.String(), Err: fmt.Errorf("pack has %d bytes, index says %d (truncated?): %w", got, size, ErrDamaged)})
		}
	}
	return present, nil
}

// readData reads every indexed pack and every orphan pack whole: it
// verifies the pack's name, compares its header with the index (an
// orphan's header must read) and authenticates every blob the index (or,
// for an orphan, the header) lists.
func (c *checker) readData(ctx context.Context, present map[ID]int64) error {
	type job struct {
		id     ID
		blobs  []packBlob // nil for an orphan: the header's
		orphan bool
	}
	var jobs []job
	for id, blobs := range c.indexed {
		if _, bad := c.badPack[id]; bad {
			continue
		}
		if _, ok := present[id]; !ok {
			continue
		}
		jobs = append(jobs, job{id: id, blobs: blobs})
	}
	for id := range c.orphans {
		jobs = append(jobs, job{id: id, orphan: true})
	}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(2)
	for _, j := range jobs {
		id := j.id
		g.Go(func() error {
			var data []byte
			h := backend.Handle{Type: backend.PackFile, Name: id.String()}
			err := c.r.be.Load(gctx, h, 0, 0, func(rd io.Reader) error {
				var err error
				data, err = io.ReadAll(rd)
				return err
			})
			if errors.Is(err, backend.ErrNotExist) && j.orphan {
				return nil // a prune deleted it meanwhile
			}
			if err != nil {
				return fmt.Errorf("read %v: %w", h, err)
			}
			file := "data/" + id.String()
			what := "pack"
			if j.orphan {
				what = "orphan pack (in no index)"
			}
			var probs []Problem
			var bad []packBlob
			if sha256.Sum256(data) != id {
				probs = append(probs, Problem{Kind: "pack", File: file, Err: fmt.Errorf("%s content does not match its name: %w", what, ErrDamaged)})
			}
			header, _, err := parsePackTail(c.r.crypt, data, int64(len(data)))
			switch {
			case err != nil:
				probs = append(probs, Problem{Kind: "pack", File: file, Err: fmt.Errorf("%s header: %w", what, err)})
			case !j.orphan:
				if err := sameBlobs(header, j.blobs); err != nil {
					probs = append(probs, Problem{Kind: "pack", File: file, Err: fmt.Errorf("header does not match the index: %w", err)})
				}
			}
			blobs := j.blobs
			if j.orphan {
				blobs = header
			}
			for _, pb := range blobs {
				end := int64(pb.Offset) + int64(pb.Length)
				if end > int64(len(data)) {
					bad = append(bad, pb)
					continue
				}
				if _, err := c.r.openBlob(pb, data[pb.Offset:end], nil); err != nil {
					bad = append(bad, pb)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			c.res.BytesRead += int64(len(data))
			for _, p := range probs {
				c.add(p) // the damaged blobs below carry the affected snapshots
			}
			for _, pb := range bad {
				h := pb.Handle
				i := c.add(Problem{Kind: "blob", File: file, Blob: &h, Err: fmt.Errorf("blob in %s fails authentication: %w", what, ErrDamaged)})
				if !j.orphan {
					c.badBlob[tombKey{pb.Handle, id}] = i
				}
			}
			return nil
		})
	}
	return g.Wait()
}

// sameBlobs reports how a pack's header and its index entry differ.
func sameBlobs(header, indexed []packBlob) error {
	in := make(map[packBlob]bool, len(header))
	for _, pb := range header {
		in[pb] = true
	}
	for _, pb := range indexed {
		if !in[pb] {
			return fmt.Errorf("blob %v at offset %d (%d bytes) is not in the header: %w", pb.Handle, pb.Offset, pb.Length, ErrDamaged)
		}
	}
	if len(header) != len(indexed) {
		return fmt.Errorf("header lists %d blobs, index %d: %w", len(header), len(indexed), ErrDamaged)
	}
	return nil
}

// blobProblems returns the problems that make h unreadable, or nil if one
// copy of it is sound.
func (c *checker) blobProblems(h BlobHandle) []int {
	if i, ok := c.blobProb[h]; ok {
		return []int{i}
	}
	cs := c.copies[h]
	if len(cs) == 0 {
		hh := h
		i := c.add(Problem{Kind: "blob", Blob: &hh, Err: fmt.Errorf("referenced blob is in no index: %w", ErrBlobNotFound)})
		c.blobProb[h] = i
		return []int{i}
	}
	var out []int
	for _, x := range cs {
		if i, ok := c.badPack[x.pack]; ok {
			out = append(out, i)
		} else if i, ok := c.badBlob[tombKey{h, x.pack}]; ok {
			out = append(out, i)
		} else {
			return nil
		}
	}
	return out
}

// treeProblems walks a tree (memoised) and returns the problems under it.
func (c *checker) treeProblems(ctx context.Context, id ID) []int {
	if ps, ok := c.treeMemo[id]; ok {
		return ps
	}
	c.treeMemo[id] = nil // cycles (a damaged repository) end here
	c.res.Trees++
	h := BlobHandle{ID: id, Type: TreeBlob}
	set := map[int]struct{}{}
	for _, i := range c.blobProblems(h) {
		set[i] = struct{}{}
	}
	if len(set) == 0 {
		t, err := c.r.LoadTree(ctx, id)
		if err != nil {
			hh := h
			set[c.add(Problem{Kind: "tree", Blob: &hh, Err: err})] = struct{}{}
		} else {
			for _, n := range t.Nodes {
				for _, b := range n.Content {
					for _, i := range c.blobProblems(BlobHandle{ID: b, Type: DataBlob}) {
						set[i] = struct{}{}
					}
				}
				if n.Subtree != nil {
					for _, i := range c.treeProblems(ctx, *n.Subtree) {
						set[i] = struct{}{}
					}
				}
			}
		}
	}
	out := make([]int, 0, len(set))
	for i := range set {
		out = append(out, i)
	}
	c.treeMemo[id] = out
	return out
}

func (c *checker) checkSnapshots(ctx context.Context) error {
	ids, err := c.r.snapshotIDs(ctx)
	if err != nil {
		return err
	}
	for _, id := range ids {
		sn, err := c.r.LoadSnapshot(ctx, id)
		if errors.Is(err, backend.ErrNotExist) {
			continue
		}
		if err != nil && !errors.Is(err, ErrDamaged) && !errors.Is(err, ErrNewerFormat) {
			return err
		}
		c.res.Snapshots++
		if err != nil {
			c.add(Problem{Kind: "snapshot", File: "snapshots/" + id.String(), Err: err, Snapshots: []ID{id}})
			continue
		}
		for _, i := range c.treeProblems(ctx, sn.Tree) {
			if c.affects[i] == nil {
				c.affects[i] = make(map[ID]struct{})
			}
			c.affects[i][id] = struct{}{}
		}
	}
	return nil
}
