// Package archiver turns a directory tree of an fsys.FS into repository
// trees: the file half of a backup.
//
// It walks the tree, asks a Selector what to take, stores regular files as
// content and symbolic links as links (never following them), and builds the
// trees bottom-up. Files are read by a pool of workers and directories are
// listed concurrently, because over SFTP latency, not bandwidth, dominates;
// the trees it builds are nevertheless deterministic (nodes sorted by name,
// byte order), so an unchanged directory yields the same tree id.
//
// Given the previous backup's tree, a file whose size, modification time
// and — where both sides know them — inode, device and change time are
// unchanged is not read again: its content ids are reused.
package archiver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"path"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sitevault/sitevault/internal/fsys"
	"github.com/sitevault/sitevault/internal/repository"
)

// Repo is the slice of the repository the archiver needs.
type Repo interface {
	// SaveStream chunks and stores rd, returning the chunk ids in order.
	// An error of rd is returned wrapped (%w): the archiver tells a file's
	// read errors (reported, backup goes on) from the repository's (fatal).
	SaveStream(ctx context.Context, rd io.Reader) (ids []repository.ID, size int64, err error)
	// SaveTree stores a tree blob.
	SaveTree(ctx context.Context, t *repository.Tree) (repository.ID, error)
	// LoadTree loads a tree of the parent snapshot.
	LoadTree(ctx context.Context, id repository.ID) (*repository.Tree, error)
	// MarkUsed records blobs the snapshot takes over from its parent
	// without saving them, so a concurrent prune cannot remove them; false
	// means some are no longer indexed (the file is then read again).
	MarkUsed(t repository.BlobType, ids ...repository.ID) bool
}

var _ Repo = (*repository.Repository)(nil)

// Selector decides what a backup takes. Paths are slash-separated, relative to the FS root ("" is the root).
type Selector interface {
	// Entry reports whether the entry at path is taken; if not, reason names the rule that excluded it.
	Entry(path string, fi fsys.FileInfo) (take bool, reason string)
	// Dir is called with a directory's full listing before the archiver descends into it (also for the root, path ""); false excludes the whole directory.
	Dir(path string, entries []fsys.FileInfo) (take bool, reason string)
}

// SelectAll takes everything.
type SelectAll struct{}

// Entry takes every entry.
func (SelectAll) Entry(string, fsys.FileInfo) (bool, string) { return true, "" }

// Dir takes every directory.
func (SelectAll) Dir(string, []fsys.FileInfo) (bool, string) { return true, "" }

// Options tune an Archiver. The zero value is usable.
type Options struct {
	// Selector decides what is taken; nil takes everything. It is called
	// from several goroutines at once.
	Selector Selector
	// Workers is the number of files read at once; 0 means 2×GOMAXPROCS.
	// Raise it for high-latency file systems (SFTP).
	Workers int
	// Listers is the number of directories listed at once; 0 means Workers.
	Listers int
	// Progress, if not nil, is updated while a backup runs.
	Progress *Progress
	// Logger receives warnings about unreadable or changing files; nil
	// discards them.
	Logger *slog.Logger
	// Now is the clock for the report's times; nil means time.Now.
	Now func() time.Time
	// RemoveTemps removes the temporary files an interrupted restore left
	// (fsys.IsTemp names) as the walk meets them. They are never backed up
	// either way; set it only where no restore into the same folder can be
	// running (the site's lock is held).
	RemoveTemps bool
	// Scan walks the tree a second time, ahead of the backup and counting
	// only, so that Progress.ScanBytes gives the total to expect long
	// before the backup has listed every folder (a first backup's ETA).
	// It costs one more listing of every folder.
	Scan bool
}

// ReasonTemp is the skip reason of a restore's leftover temporary file.
const ReasonTemp = "temporary file of an interrupted sitevault restore"

// Archiver backs up directories of one FS into one repository.
type Archiver struct {
	repo Repo
	fs   fsys.FS
	opts Options
}

// New returns an Archiver reading fs and writing to repo.
func New(repo Repo, fs fsys.FS, opts Options) *Archiver {
	if opts.Selector == nil {
		opts.Selector = SelectAll{}
	}
	if opts.Workers <= 0 {
		opts.Workers = 2 * runtime.GOMAXPROCS(0)
	}
	if opts.Listers <= 0 {
		opts.Listers = opts.Workers
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Archiver{repo: repo, fs: fs, opts: opts}
}

// Snapshot backs up the directory dir ("" is the FS root) and returns the id
// of the tree holding its contents. parent, if not nil, is the root tree of
// a previous backup of the same directory: unchanged files are taken from it
// without being read.
//
// Unreadable entries do not fail the backup: they are listed in the report,
// which is then Partial. Snapshot fails when dir cannot be listed, when the
// repository fails, or when ctx is cancelled. The caller flushes the
// repository and saves the snapshot.
func (a *Archiver) Snapshot(ctx context.Context, dir string, parent *repository.ID) (repository.ID, *Report, error) {
	// Saves get the caller's ctx, never one cancelled when Snapshot returns:
	// the repository may go on uploading under it until Flush. The walk
	// and the reads stop on the derived ctx.
	repoCtx := ctx
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	dir = strings.Trim(path.Clean("/"+dir), "/")
	p := a.opts.Progress
	if p == nil {
		p = new(Progress)
	}
	r := &run{
		a:       a,
		rep:     &reporter{p: p},
		repoCtx: repoCtx,
		jobs:    make(chan func(), a.opts.Workers),
		dirs:    make(chan struct{}, a.opts.Listers),
		list:    make(chan struct{}, a.opts.Listers),
		cancel:  cancel,
	}
	r.rep.rep.Started = a.opts.Now()

	if a.opts.Scan {
		scanCtx, stopScan := context.WithCancel(ctx)
		var scanning sync.WaitGroup
		scanning.Go(func() {
			scan(scanCtx, a.fs, a.opts.Selector, dir, max(1, a.opts.Listers/4), p)
		})
		defer func() {
			stopScan()
			scanning.Wait()
		}()
	}

	var workers sync.WaitGroup
	for range a.opts.Workers {
		workers.Go(func() {
			for job := range r.jobs {
				job()
			}
		})
	}
	defer func() {
		close(r.jobs)
		workers.Wait()
	}()

	var prev *repository.Tree
	if parent != nil {
		t, err := a.repo.LoadTree(ctx, *parent)
		if err != nil {
			return repository.ID{}, nil, fmt.Errorf("load parent tree: %w", err)
		}
		prev = t
	}

	entries, err := r.readDir(ctx, dir)
	if err != nil {
		return repository.ID{}, nil, fmt.Errorf("back up %q: %w", dir, err)
	}
	tree := &repository.Tree{}
	if take, reason := a.opts.Selector.Dir(dir, entries); take {
		tree, err = r.tree(ctx, dir, entries, prev)
		if err != nil {
			return repository.ID{}, nil, err
		}
	} else {
		r.rep.skip(dir, reason)
	}
	id, err := a.repo.SaveTree(repoCtx, tree)
	if err != nil {
		return repository.ID{}, nil, fmt.Errorf("save tree: %w", err)
	}
	r.rep.dir()
	if err := context.Cause(ctx); err != nil {
		return repository.ID{}, nil, err
	}

	rep := r.rep.rep
	rep.Finished = a.opts.Now()
	// Workers finish in any order; reports read best sorted.
	slices.SortFunc(rep.Skipped, func(a, b Skip) int { return strings.Compare(a.Path, b.Path) })
	slices.SortFunc(rep.Errors, func(a, b *PathError) int { return strings.Compare(a.Path, b.Path) })
	slices.Sort(rep.Changed)
	return id, &rep, nil
}

// run is one Snapshot call.
type run struct {
	a       *Archiver
	rep     *reporter
	repoCtx context.Context // for saves; see Snapshot
	// jobs feeds the file workers. Workers never wait on anything but
	// I/O, so directory walkers may block sending to them.
	jobs chan func()
	// dirs holds a token per extra goroutine walking a directory; without
	// a free token a directory is walked inline, so walkers never wait for
	// tokens while holding one.
	dirs chan struct{}
	// list bounds concurrent listings; held only during ReadDir.
	list   chan struct{}
	cancel context.CancelCauseFunc
}

// fatal stops the whole backup with err.
func (r *run) fatal(err error) { r.cancel(err) }

func (r *run) readDir(ctx context.Context, dir string) ([]fsys.FileInfo, error) {
	select {
	case r.list <- struct{}{}:
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
	defer func() { <-r.list }()
	entries, err := r.a.fs.ReadDir(ctx, dir)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(entries, func(a, b fsys.FileInfo) int { return strings.Compare(a.Name, b.Name) })
	return entries, nil
}

// tree builds the tree of directory dir from its sorted listing. prev is
// the directory's tree in the parent backup, or nil. Errors it returns are
// fatal; per-entry problems go to the report.
func (r *run) tree(ctx context.Context, dir string, entries []fsys.FileInfo, prev *repository.Tree) (*repository.Tree, error) {
	nodes := make([]*repository.Node, len(entries))
	var wg sync.WaitGroup
	for i, fi := range entries {
		if ctx.Err() != nil {
			break
		}
		if fi.Name == "." || fi.Name == ".." {
			continue
		}
		p := path.Join(dir, fi.Name)
		if dir == "" {
			p = fi.Name
		}
		if invalidName(fi.Name) {
			r.rep.skipRule(p, RuleInvalidName, "invalid file name")
			continue
		}
		if !fi.Mode.IsDir() && fsys.IsTemp(fi.Name) {
			r.temp(ctx, p)
			continue
		}
		if take, reason := r.a.opts.Selector.Entry(p, fi); !take {
			r.rep.skip(p, reason)
			continue
		}
		var old *repository.Node
		if prev != nil {
			old = find(prev, fi.Name)
		}
		switch {
		case fi.Mode.IsDir():
			walk := func() { nodes[i] = r.dir(ctx, p, fi, old) }
			select {
			case r.dirs <- struct{}{}:
				wg.Go(func() {
					defer func() { <-r.dirs }()
					walk()
				})
			default:
				walk()
			}
		case fi.Mode.IsRegular():
			r.rep.p.FilesTotal.Add(1)
			r.rep.p.BytesTotal.Add(fi.Size)
			if unchanged(old, fi) && r.a.repo.MarkUsed(repository.DataBlob, old.Content...) {
				n := fileNode(fi)
				n.Content = old.Content
				nodes[i] = n
				r.rep.file(fileUnchanged, fi.Size, 0)
				continue
			}
			state := fileNew
			if old != nil && old.Type == repository.NodeFile {
				state = fileChanged
			}
			wg.Add(1)
			if !r.submit(ctx, func() {
				defer wg.Done()
				nodes[i] = r.file(ctx, p, state, fi)
			}) {
				wg.Done()
			}
		case fi.Mode&fs.ModeSymlink != 0:
			wg.Add(1)
			if !r.submit(ctx, func() {
				defer wg.Done()
				nodes[i] = r.symlink(ctx, p, fi)
			}) {
				wg.Done()
			}
		default:
			r.rep.skipRule(p, RuleSpecialFile, "not a regular file, directory or symbolic link: "+kind(fi.Mode))
		}
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	t := &repository.Tree{Nodes: make([]*repository.Node, 0, len(nodes))}
	for _, n := range nodes {
		if n != nil {
			t.Nodes = append(t.Nodes, n)
		}
	}
	return t, nil
}

// submit hands job to a worker; it reports false if ctx ended first.
func (r *run) submit(ctx context.Context, job func()) bool {
	select {
	case r.jobs <- job:
		return true
	case <-ctx.Done():
		return false
	}
}

// dir backs up the directory at p and returns its node, or nil if it is
// excluded, unreadable or the backup is failing.
func (r *run) dir(ctx context.Context, p string, fi fsys.FileInfo, old *repository.Node) *repository.Node {
	entries, err := r.readDir(ctx, p)
	if err != nil {
		if ctx.Err() == nil {
			r.a.opts.Logger.Warn("cannot list directory", "path", p, "err", err)
			r.rep.fail(p, err)
		}
		return nil
	}
	if take, reason := r.a.opts.Selector.Dir(p, entries); !take {
		r.rep.skip(p, reason)
		return nil
	}
	var prev *repository.Tree
	if old != nil && old.Type == repository.NodeDir && old.Subtree != nil {
		prev, err = r.a.repo.LoadTree(ctx, *old.Subtree)
		if err != nil {
			r.fatal(fmt.Errorf("load parent tree of %q: %w", p, err))
			return nil
		}
	}
	t, err := r.tree(ctx, p, entries, prev)
	if err != nil {
		return nil
	}
	id, err := r.a.repo.SaveTree(r.repoCtx, t)
	if err != nil {
		r.fatal(fmt.Errorf("save tree of %q: %w", p, err))
		return nil
	}
	r.rep.dir()
	return &repository.Node{
		Name:       fi.Name,
		Type:       repository.NodeDir,
		Mode:       uint32(fi.Mode),
		ModTime:    fi.ModTime,
		ChangeTime: fi.ChangeTime,
		Inode:      fi.Inode,
		Dev:        fi.Dev,
		Subtree:    &id,
	}
}

// file reads and stores the regular file at p. A file that changes while it
// is read is read once more; if it changes again it is stored as read the
// second time and named in the report. listed is the file's entry in its
// folder's listing: a file system that can open a listed file in fewer
// requests (fsys.ListedOpener; SFTP) is given it on the first attempt.
func (r *run) file(ctx context.Context, p string, state fileState, listed fsys.FileInfo) *repository.Node {
	var read int64
	for attempt := 1; ; attempt++ {
		var l *fsys.FileInfo
		if attempt == 1 {
			l = &listed
		}
		n, changed, nread, err := r.readFile(ctx, p, l)
		read += nread
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, errFatal) {
				r.a.opts.Logger.Warn("cannot read file", "path", p, "err", err)
				r.rep.fail(p, err)
			}
			return nil
		}
		if changed && attempt == 1 {
			continue
		}
		if changed {
			r.a.opts.Logger.Warn("file changed while being read", "path", p)
			r.rep.changed(p)
		}
		r.rep.file(state, n.Size, read)
		return n
	}
}

// errFatal marks errors readFile already passed to r.fatal.
var errFatal = errors.New("backup failing")

// readFile reads p once. The node carries the attributes seen before the
// read, so a file that changed while read looks changed to the next backup.
// listed, if not nil, is the file's listing, for an fsys.ListedOpener; a
// file that no longer matches it is opened again with Open.
func (r *run) readFile(ctx context.Context, p string, listed *fsys.FileInfo) (n *repository.Node, changed bool, read int64, err error) {
	var f fsys.File
	if lo, ok := r.a.fs.(fsys.ListedOpener); ok && listed != nil {
		f, err = lo.OpenListed(ctx, p, *listed)
		if errors.Is(err, fsys.ErrNotAsListed) {
			f, err = r.a.fs.Open(ctx, p)
		}
	} else {
		f, err = r.a.fs.Open(ctx, p)
	}
	if err != nil {
		return nil, false, 0, err
	}
	defer f.Close()
	before, err := f.Stat()
	if err != nil {
		return nil, false, 0, err
	}
	r.rep.p.Current.Store(&p)
	cr := &countingReader{ctx: ctx, r: f, p: r.rep.p}
	ids, size, err := r.a.repo.SaveStream(r.repoCtx, cr)
	if err != nil {
		if cr.err != nil && errors.Is(err, cr.err) {
			return nil, false, cr.n, err
		}
		if ctx.Err() == nil {
			r.fatal(fmt.Errorf("save %q: %w", p, err))
		}
		return nil, false, cr.n, errFatal
	}
	after, err := f.Stat()
	if err != nil {
		return nil, false, cr.n, err
	}
	changed = size != before.Size || !sameAttrs(before, after)
	before.Name = path.Base(p)
	n = fileNode(before)
	n.Size = size
	n.Content = ids
	if n.Content == nil {
		n.Content = []repository.ID{}
	}
	return n, changed, cr.n, nil
}

func (r *run) symlink(ctx context.Context, p string, fi fsys.FileInfo) *repository.Node {
	target, err := r.a.fs.Readlink(ctx, p)
	if err != nil {
		if ctx.Err() == nil {
			r.rep.fail(p, err)
		}
		return nil
	}
	r.rep.symlink()
	return &repository.Node{
		Name:       fi.Name,
		Type:       repository.NodeSymlink,
		Mode:       uint32(fi.Mode),
		ModTime:    fi.ModTime,
		ChangeTime: fi.ChangeTime,
		Inode:      fi.Inode,
		Dev:        fi.Dev,
		Size:       fi.Size,
		LinkTarget: target,
	}
}

// countingReader counts bytes for progress and remembers its read error, to
// tell a file's read errors from the repository's. It fails once ctx ends,
// which stops a SaveStream when the backup is cancelled or failing.
type countingReader struct {
	ctx context.Context
	r   io.Reader
	p   *Progress
	n   int64
	err error
}

func (c *countingReader) Read(b []byte) (int, error) {
	if err := context.Cause(c.ctx); err != nil {
		c.err = &readError{err}
		return 0, c.err
	}
	n, err := c.r.Read(b)
	c.n += int64(n)
	c.p.BytesDone.Add(int64(n))
	if err != nil && err != io.EOF {
		c.err = &readError{err}
		return n, c.err
	}
	return n, err
}

// readError wraps a file's read error so errors.Is finds it through the
// repository's wrapping.
type readError struct{ err error }

func (e *readError) Error() string { return "read: " + e.err.Error() }
func (e *readError) Unwrap() error { return e.err }

func fileNode(fi fsys.FileInfo) *repository.Node {
	return &repository.Node{
		Name:       fi.Name,
		Type:       repository.NodeFile,
		Mode:       uint32(fi.Mode),
		ModTime:    fi.ModTime,
		ChangeTime: fi.ChangeTime,
		Inode:      fi.Inode,
		Dev:        fi.Dev,
		Size:       fi.Size,
	}
}

// unchanged reports whether the file fi can reuse old's content.
func unchanged(old *repository.Node, fi fsys.FileInfo) bool {
	if old == nil || old.Type != repository.NodeFile || old.Size != fi.Size || !old.ModTime.Equal(fi.ModTime) {
		return false
	}
	if old.Size > 0 && len(old.Content) == 0 {
		return false
	}
	if old.Inode != 0 && fi.Inode != 0 && old.Inode != fi.Inode {
		return false
	}
	if old.Dev != 0 && fi.Dev != 0 && old.Dev != fi.Dev {
		return false
	}
	if !old.ChangeTime.IsZero() && !fi.ChangeTime.IsZero() && !old.ChangeTime.Equal(fi.ChangeTime) {
		return false
	}
	return true
}

// sameAttrs reports whether an open file looks the same after it was read.
func sameAttrs(a, b fsys.FileInfo) bool {
	return a.Size == b.Size && a.ModTime.Equal(b.ModTime) && a.ChangeTime.Equal(b.ChangeTime)
}

// find looks name up in a tree sorted by name.
func find(t *repository.Tree, name string) *repository.Node {
	i, ok := slices.BinarySearchFunc(t.Nodes, name, func(n *repository.Node, name string) int {
		return strings.Compare(n.Name, name)
	})
	if ok {
		return t.Nodes[i]
	}
	return nil
}

func kind(m fs.FileMode) string {
	switch {
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeNamedPipe != 0:
		return "named pipe (FIFO)"
	case m&fs.ModeCharDevice != 0:
		return "character device"
	case m&fs.ModeDevice != 0:
		return "block device"
	case m&fs.ModeIrregular != 0:
		return "irregular file"
	}
	return m.Type().String()
}

// invalidName reports a name no file can be stored or restored under.
func invalidName(name string) bool { return name == "" || strings.ContainsAny(name, "/\x00") }
