package archiver

import (
	"context"
	"path"
	"sync"

	"github.com/sitevault/sitevault/internal/fsys"
)

// scan walks the tree under dir as Snapshot does — the same invalid names,
// temporary files and Selector decisions — but only counts the regular
// files it takes and their size, in p's Scan counters, and sets
// p.ScanDone when it has seen everything. It is what gives a first backup
// (no previous point to say how big the site is) a share done and an ETA
// long before the backup itself has listed every folder, as restic's
// scanner does.
//
// It lists folders on at most listers goroutines of its own, so that it
// runs ahead of the backup without taking the backup's listing slots. A
// folder it cannot list is left out of the total (the backup reports it).
// It stops, without setting ScanDone, when ctx ends.
func scan(ctx context.Context, fs fsys.FS, sel Selector, dir string, listers int, p *Progress) {
	s := &scanner{fs: fs, sel: sel, p: p, slots: make(chan struct{}, max(1, listers)-1)}
	entries, err := fs.ReadDir(ctx, dir)
	if err != nil {
		return
	}
	if take, _ := sel.Dir(dir, entries); take {
		s.tree(ctx, dir, entries)
	}
	s.wg.Wait()
	if ctx.Err() == nil {
		p.ScanDone.Store(true)
	}
}

type scanner struct {
	fs    fsys.FS
	sel   Selector
	p     *Progress
	slots chan struct{} // listings running on goroutines besides the first
	wg    sync.WaitGroup
}

func (s *scanner) tree(ctx context.Context, dir string, entries []fsys.FileInfo) {
	for _, fi := range entries {
		if ctx.Err() != nil {
			return
		}
		if fi.Name == "." || fi.Name == ".." || invalidName(fi.Name) {
			continue
		}
		if !fi.Mode.IsDir() && fsys.IsTemp(fi.Name) {
			continue
		}
		p := fi.Name
		if dir != "" {
			p = path.Join(dir, fi.Name)
		}
		if take, _ := s.sel.Entry(p, fi); !take {
			continue
		}
		switch {
		case fi.Mode.IsDir():
			select {
			case s.slots <- struct{}{}:
				s.wg.Go(func() {
					defer func() { <-s.slots }()
					s.dir(ctx, p)
				})
			default:
				s.dir(ctx, p)
			}
		case fi.Mode.IsRegular():
			s.p.ScanFiles.Add(1)
			s.p.ScanBytes.Add(fi.Size)
		}
	}
}

func (s *scanner) dir(ctx context.Context, p string) {
	entries, err := s.fs.ReadDir(ctx, p)
	if err != nil {
		return
	}
	if take, _ := s.sel.Dir(p, entries); take {
		s.tree(ctx, p, entries)
	}
}
