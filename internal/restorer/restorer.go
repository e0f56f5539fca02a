// Package restorer writes a repository tree into an fsys.FS, keeping the
// product's restore rules:
//
//   - a file with the same name is overwritten; a file that is not in the
//     restore point is never deleted;
//   - each file is written to a temporary name in its folder and renamed into
//     place, so the site never sees a half-written file; temporaries are
//     removed on any failure or cancellation;
//   - nothing is written outside the target, nor through a symbolic link:
//     every directory on the way is checked with Lstat, and a path whose
//     parent is a link is refused and reported;
//   - names a crafted restore point may hold ("", ".", "..", anything with
//     "/" or NUL) are refused and reported; the rest is restored.
//
// Modes and modification times are restored; symbolic links are restored as
// links, replacing a file or link of the same name without writing through it.
//
// On a file system that can hold directories open (fsys.Local's OpenDir),
// each directory is opened once, after its Lstat, and checked to be the
// directory that Lstat saw (same device and inode, so a link swapped in
// between is refused); its files are then created, given their mode and
// times through the open descriptor, and renamed into place relative to it:
// a handful of system calls per file instead of a walk of the whole path
// from the root for each step. Files are not fsynced, as restic does not:
// a restore is repeatable, and a crash during one leaves at worst
// temporaries and files the next restore overwrites.
package restorer

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
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
	"sync/atomic"
	"time"

	"github.com/sitevault/sitevault/internal/fsys"
	"github.com/sitevault/sitevault/internal/repository"
)

// Repo is the slice of the repository the restorer needs.
type Repo interface {
	LoadTree(ctx context.Context, id repository.ID) (*repository.Tree, error)
	WriteContent(ctx context.Context, ids []repository.ID, w io.Writer) error
	// ContentMatches reports whether rd holds exactly the chunks ids (a
	// file already on disk compared with the restore point's content).
	ContentMatches(ctx context.Context, rd io.Reader, ids []repository.ID) (bool, error)
}

var _ Repo = (*repository.Repository)(nil)

// Filter reports whether the node at path (slash-separated, relative to the
// restored tree's root) is restored. For a directory, false skips it and
// everything in it, so a filter that restores wp-content/themes must also
// take wp-content; Paths builds such filters.
type Filter func(path string, n *repository.Node) bool

// Paths returns a Filter taking the named paths, everything under them and
// the directories leading to them. No path means everything.
func Paths(paths ...string) Filter {
	if len(paths) == 0 {
		return nil
	}
	clean := make([]string, len(paths))
	for i, p := range paths {
		clean[i] = strings.Trim(path.Clean("/"+p), "/")
	}
	return func(p string, _ *repository.Node) bool {
		for _, c := range clean {
			if c == "" || p == c || strings.HasPrefix(p, c+"/") || strings.HasPrefix(c, p+"/") {
				return true
			}
		}
		return false
	}
}

// TempPattern is the name pattern of the temporary files a restore writes
// (fsys.IsTemp recognises them; a backup of the site removes those an
// interrupted restore left, see archiver.Options.RemoveTemps).
const TempPattern = fsys.TempPrefix + "*"

// Options tune a Restorer. The zero value is usable.
type Options struct {
	// Filter selects what is restored; nil restores everything.
	Filter Filter
	// Workers is the number of files written at once; 0 means 2×GOMAXPROCS.
	Workers int
	// Progress, if not nil, is updated while a restore runs.
	Progress *Progress
	// Logger receives refused paths and errors; nil discards them.
	Logger *slog.Logger
	// Root is the absolute path, on the file system's host, of the folder
	// the tree is restored into (the site root). A symbolic link whose
	// target leaves the restored tree is refused: a relative target that
	// climbs above it, or an absolute target not under Root ("" refuses
	// every absolute target).
	Root string
	// DryRun decides everything as a restore does (which files are already
	// right, which would be written or replaced, which folders created,
	// what is refused) and writes nothing: no folder, file, link, mode or
	// time. Report.Planned lists what would be written.
	DryRun bool
}

// Progress holds counters a caller may poll while a restore runs.
type Progress struct {
	FilesDone atomic.Int64
	BytesDone atomic.Int64 // bytes written
	// BytesRight is the size of the files found already right and left
	// in place: with BytesDone, how far a restore has gone.
	BytesRight atomic.Int64
	Errors     atomic.Int64
	// Current is the file being written (nil before the first).
	Current atomic.Pointer[string]
}

// Skip is a node the restore refused or could not place, and why.
type Skip struct {
	Path   string
	Reason string
}

func (s Skip) String() string { return fmt.Sprintf("%q: %s", s.Path, s.Reason) }

// PathError is a node whose restore failed.
type PathError struct {
	Path string
	Err  error
}

func (e *PathError) Error() string { return fmt.Sprintf("%q: %v", e.Path, e.Err) }
func (e *PathError) Unwrap() error { return e.Err }

// Report says what a restore did.
type Report struct {
	FilesWritten int
	BytesWritten int64
	// FilesUnchanged counts files found already right on disk (same size
	// and the same chunk ids as the restore point's content) and left in
	// place instead of being written; BytesUnchanged is their size.
	FilesUnchanged int
	BytesUnchanged int64
	// BytesHashed counts the bytes of files already on disk that were read
	// and hashed to compare them with the restore point. A file the backup
	// itself read, untouched since (see unchanged), is not read.
	BytesHashed int64
	// AttrsFixed counts the unchanged files whose mode or modification
	// time differed and were set in place.
	AttrsFixed  int
	DirsCreated int
	Symlinks    int
	// SymlinksKept counts links pointing out of the restored tree that a
	// restore never places, found already on disk with the same target.
	SymlinksKept int
	// Skipped lists refused nodes: unsafe names, parents that are links,
	// directories where the restore point has a file and the reverse.
	Skipped []Skip
	// Errors lists nodes whose writing failed.
	Errors []*PathError
	// FilesReplaced counts, of FilesWritten, the files that replaced a
	// file or link of the same name (the others were new).
	FilesReplaced int
	// Planned (Options.DryRun only) lists, sorted by path, the files and
	// links a restore would write; FilesWritten, BytesWritten, Symlinks
	// and DirsCreated then count what it would write and create.
	Planned []Planned
}

// Planned is a file or link a dry run would write.
type Planned struct {
	Path    string
	Size    int64
	Replace bool // a file or link of that name is there (else it is new)
	Link    bool
}

// OK reports whether everything selected was restored.
func (r *Report) OK() bool { return len(r.Skipped) == 0 && len(r.Errors) == 0 }

// Restorer writes trees of one repository into one FS.
type Restorer struct {
	repo Repo
	fs   fsys.FS
	opts Options
}

// New returns a Restorer reading repo and writing to fs.
func New(repo Repo, fs fsys.FS, opts Options) *Restorer {
	if opts.Workers <= 0 {
		opts.Workers = 2 * runtime.GOMAXPROCS(0)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Restorer{repo: repo, fs: fs, opts: opts}
}

// Restore writes the contents of tree into targetDir ("" is the FS root),
// creating it if needed. Refused and failed nodes are in the report; the
// error is for what stops the whole restore: the target cannot be used, the
// repository fails, ctx is cancelled.
func (r *Restorer) Restore(ctx context.Context, tree repository.ID, targetDir string) (*Report, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	p := r.opts.Progress
	if p == nil {
		p = new(Progress)
	}
	run := &run{r: r, p: p, cancel: cancel, jobs: make(chan func(), r.opts.Workers), touched: make(map[string]bool),
		trees: newPrefetcher(r.repo)}
	defer func() {
		cancel(nil)
		run.trees.wait()
	}()
	run.opener, _ = r.fs.(fsys.DirOpener)

	target, targetInfo, err := run.target(ctx, targetDir)
	if err != nil {
		return nil, fmt.Errorf("restore into %q: %w", targetDir, err)
	}

	var workers sync.WaitGroup
	for range r.opts.Workers {
		workers.Go(func() {
			for job := range run.jobs {
				job()
			}
		})
	}
	walkErr := run.dir(ctx, tree, "", target, targetInfo, run.targetMissing)
	close(run.jobs)
	workers.Wait()
	if err := context.Cause(ctx); err != nil {
		return &run.rep, err
	}
	if walkErr != nil {
		return &run.rep, walkErr
	}
	// Directory attributes last, deepest first: writing into a directory
	// changes its mtime, and a read-only mode would stop the writing.
	// A directory nothing was written into keeps the mode and mtime its
	// Lstat showed before the walk: those already right are left alone
	// (two path walks and four system calls a directory saved on a
	// restore in place that finds everything right).
	for i := len(run.dirAttrs) - 1; i >= 0 && !r.opts.DryRun; i-- {
		d := run.dirAttrs[i]
		touched := run.touched[d.fsPath]
		mode := fs.FileMode(d.n.Mode) & permBits
		if touched || d.before.Mode&permBits != mode {
			if err := r.fs.Chmod(ctx, d.fsPath, mode); err != nil {
				run.fail(d.path, fmt.Errorf("chmod: %w", err))
				continue
			}
		}
		if touched || !d.before.ModTime.Equal(d.n.ModTime) {
			if err := run.chtimes(ctx, d.fsPath, d.n.ModTime); err != nil {
				run.fail(d.path, fmt.Errorf("chtimes: %w", err))
			}
		}
	}
	slices.SortFunc(run.rep.Skipped, func(a, b Skip) int { return strings.Compare(a.Path, b.Path) })
	slices.SortFunc(run.rep.Planned, func(a, b Planned) int { return strings.Compare(a.Path, b.Path) })
	slices.SortFunc(run.rep.Errors, func(a, b *PathError) int { return strings.Compare(a.Path, b.Path) })
	return &run.rep, nil
}

// permBits are the mode bits a restore sets.
const permBits = fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky

type dirAttr struct {
	path, fsPath string
	n            *repository.Node
	before       fsys.FileInfo // its Lstat before anything was written into it
}

type run struct {
	r      *Restorer
	p      *Progress
	cancel context.CancelCauseFunc
	jobs   chan func()
	opener fsys.DirOpener // nil: the FS has no OpenDir, use paths
	trees  *prefetcher

	mu       sync.Mutex
	rep      Report
	dirAttrs []dirAttr       // walked in order, so only the walker appends
	touched  map[string]bool // directories (fsPath) something was created in or renamed into, under mu
	// targetMissing: in a dry run, the target folder does not exist.
	targetMissing bool
}

// plan records, in a dry run, a file or link the restore would write.
func (u *run) plan(np string, n *repository.Node, replace bool) {
	link := n.Type == repository.NodeSymlink
	u.mu.Lock()
	u.rep.Planned = append(u.rep.Planned, Planned{Path: np, Size: n.Size, Replace: replace, Link: link})
	if link {
		u.rep.Symlinks++
	} else {
		u.rep.FilesWritten++
		u.rep.BytesWritten += n.Size
		if replace {
			u.rep.FilesReplaced++
		}
	}
	u.mu.Unlock()
}

// errWouldCreate: in a dry run, the directory is missing and a restore
// would create it (everything under it is new).
var errWouldCreate = errors.New("would be created")

// touch records that an entry of the directory holding fsPath is about
// to be created, renamed or removed: its mtime changes.
func (u *run) touch(fsPath string) {
	dir := ""
	if i := strings.LastIndexByte(fsPath, '/'); i >= 0 {
		dir = fsPath[:i]
	}
	u.mu.Lock()
	u.touched[dir] = true
	u.mu.Unlock()
}

func (u *run) skip(p, reason string) {
	u.r.opts.Logger.Warn("restore refused a path", "path", p, "reason", reason)
	u.mu.Lock()
	u.rep.Skipped = append(u.rep.Skipped, Skip{Path: p, Reason: reason})
	u.mu.Unlock()
}

func (u *run) fail(p string, err error) {
	u.r.opts.Logger.Warn("restore failed for a path", "path", p, "err", err)
	u.mu.Lock()
	u.rep.Errors = append(u.rep.Errors, &PathError{Path: p, Err: err})
	u.mu.Unlock()
	u.p.Errors.Add(1)
}

// target checks every component of dir — none may be a symbolic link or a
// non-directory — and creates the missing ones. It returns the Lstat of the
// last one (nil for the root).
func (u *run) target(ctx context.Context, dir string) (string, *fsys.FileInfo, error) {
	dir = strings.Trim(path.Clean("/"+dir), "/")
	if dir == "" {
		return "", nil, nil
	}
	cur := ""
	var fi fsys.FileInfo
	for c := range strings.SplitSeq(dir, "/") {
		cur = path.Join(cur, c)
		var err error
		if fi, err = u.ensureDir(ctx, cur); errors.Is(err, errWouldCreate) {
			// A dry run into a missing folder: all of it would be new.
			u.targetMissing = true
			u.rep.DirsCreated++
			return dir, nil, nil
		} else if err != nil {
			return "", nil, err
		}
	}
	return dir, &fi, nil
}

// errSymlinkParent and errNotDir explain refusals.
var (
	errSymlinkParent = errors.New("is a symbolic link: refusing to write through it")
	errNotDir        = errors.New("exists and is not a directory")
	errDirReplaced   = errors.New("its directory was replaced while restoring: refusing to write into it")
)

// ensureDir makes sure fsPath is a real directory (not a link to one) and
// returns its Lstat.
func (u *run) ensureDir(ctx context.Context, fsPath string) (fsys.FileInfo, error) {
	fi, err := u.r.fs.Lstat(ctx, fsPath)
	switch {
	case errors.Is(err, fs.ErrNotExist) && u.r.opts.DryRun:
		return fi, errWouldCreate
	case errors.Is(err, fs.ErrNotExist):
		u.touch(fsPath)
		if err := u.r.fs.MkdirAll(ctx, fsPath, 0o700); err != nil {
			return fi, fmt.Errorf("mkdir: %w", err)
		}
		u.mu.Lock()
		u.rep.DirsCreated++
		u.mu.Unlock()
		// Look again: something may have raced us into place.
		fi, err = u.r.fs.Lstat(ctx, fsPath)
		if err != nil {
			return fi, err
		}
	case err != nil:
		return fi, err
	}
	if fi.Mode&fs.ModeSymlink != 0 {
		return fi, errSymlinkParent
	}
	if !fi.Mode.IsDir() {
		return fi, errNotDir
	}
	return fi, nil
}

// attrFile is the optional capability of a file being written to take its
// mode and times through its descriptor (fsys.Local's files have it).
type attrFile interface {
	Chmod(mode fs.FileMode) error
	SetModTime(mtime time.Time) error
}

// dirHandle is a directory held open while its files are restored: the
// walker holds one reference while it lists the directory and each file job
// one; the last release closes it.
type dirHandle struct {
	d    fsys.Dir
	err  error // why the directory could not be opened; d is nil then
	refs atomic.Int32
}

func (h *dirHandle) acquire() *dirHandle {
	h.refs.Add(1)
	return h
}

func (h *dirHandle) release() {
	if h.refs.Add(-1) == 0 && h.d != nil {
		h.d.Close()
	}
}

// openDir opens fsDir and checks it is the directory want (its Lstat; nil
// for the FS root) describes: a link swapped in since is refused.
func (u *run) openDir(ctx context.Context, fsDir string, want *fsys.FileInfo) *dirHandle {
	h := new(dirHandle)
	h.refs.Store(1)
	d, err := u.opener.OpenDir(ctx, fsDir)
	if err != nil {
		h.err = err
		return h
	}
	if want != nil {
		got, err := d.Stat()
		if err != nil {
			d.Close()
			h.err = err
			return h
		}
		if !got.Mode.IsDir() || (want.Inode != 0 && got.Inode != want.Inode) || (want.Dev != 0 && got.Dev != want.Dev) {
			d.Close()
			h.err = errDirReplaced
			return h
		}
	}
	h.d = d
	return h
}

// validName reports why name cannot be restored, or "".
func validName(name string) string {
	switch {
	case name == "":
		return "empty name"
	case name == "." || name == "..":
		return "name " + name + " is not allowed"
	case strings.ContainsRune(name, '/'):
		return "name holds a slash"
	case strings.ContainsRune(name, 0):
		return "name holds a NUL byte"
	}
	return ""
}

// dir restores the tree id into the existing, checked directory fsDir,
// whose Lstat is fi (nil for the FS root). p is the tree's path relative to
// the restored root. missing (dry runs only) says fsDir does not exist: all
// under it would be new. It returns only fatal errors.
func (u *run) dir(ctx context.Context, id repository.ID, p, fsDir string, fi *fsys.FileInfo, missing bool) error {
	t, err := u.trees.load(ctx, id)
	if err != nil {
		err = fmt.Errorf("load tree %v (%q): %w", id.Short(), p, err)
		if p != "" && repository.IsDamage(err) {
			// The rest of the restore point may be sound: restore it.
			u.fail(p, err)
			return nil
		}
		return err
	}
	var h *dirHandle // opened at the first file
	defer func() {
		if h != nil {
			h.release()
		}
	}()
	for _, n := range t.Nodes {
		if n.Type == repository.NodeDir && n.Subtree != nil && validName(n.Name) == "" &&
			(u.r.opts.Filter == nil || u.r.opts.Filter(join(p, n.Name), n)) {
			u.trees.start(ctx, *n.Subtree)
		}
	}
	seen := make(map[string]bool, len(t.Nodes))
	for _, n := range t.Nodes {
		if err := context.Cause(ctx); err != nil {
			return err
		}
		np := join(p, n.Name)
		if reason := validName(n.Name); reason != "" {
			u.skip(np, reason)
			continue
		}
		if seen[n.Name] {
			u.skip(np, "name appears twice in its directory")
			continue
		}
		seen[n.Name] = true
		if u.r.opts.Filter != nil && !u.r.opts.Filter(np, n) {
			continue
		}
		fsPath := join(fsDir, n.Name)
		switch n.Type {
		case repository.NodeDir:
			if n.Subtree == nil {
				u.skip(np, "directory without a subtree")
				continue
			}
			if missing {
				u.rep.DirsCreated++
				if err := u.dir(ctx, *n.Subtree, np, fsPath, nil, true); err != nil {
					return err
				}
				continue
			}
			sub, err := u.ensureDir(ctx, fsPath)
			if errors.Is(err, errWouldCreate) {
				u.mu.Lock()
				u.rep.DirsCreated++
				u.mu.Unlock()
				if err := u.dir(ctx, *n.Subtree, np, fsPath, nil, true); err != nil {
					return err
				}
				continue
			}
			if err != nil {
				if errors.Is(err, errSymlinkParent) || errors.Is(err, errNotDir) {
					u.skip(np, err.Error())
				} else {
					u.fail(np, err)
				}
				continue
			}
			u.dirAttrs = append(u.dirAttrs, dirAttr{path: np, fsPath: fsPath, n: n, before: sub})
			if err := u.dir(ctx, *n.Subtree, np, fsPath, &sub, false); err != nil {
				return err
			}
		case repository.NodeFile:
			if missing {
				u.plan(np, n, false)
				continue
			}
			job := func() { u.file(ctx, n, np, fsDir, fsPath) }
			if u.opener != nil {
				if h == nil {
					h = u.openDir(ctx, fsDir, fi)
				}
				if h.err != nil {
					if errors.Is(h.err, errDirReplaced) {
						u.skip(np, h.err.Error())
					} else {
						u.fail(np, h.err)
					}
					continue
				}
				fh := h.acquire()
				job = func() {
					defer fh.release()
					u.fileIn(ctx, n, np, fsPath, fh.d)
				}
			}
			select {
			case u.jobs <- job:
			case <-ctx.Done():
				return context.Cause(ctx)
			}
		case repository.NodeSymlink:
			if missing {
				if n.LinkTarget == "" || strings.ContainsRune(n.LinkTarget, 0) {
					u.skip(np, "invalid link target")
				} else if !u.inside(np, n.LinkTarget) {
					u.skip(np, fmt.Sprintf("link target %q is outside the site root: refused", n.LinkTarget))
				} else {
					u.plan(np, n, false)
				}
				continue
			}
			u.symlink(ctx, n, np, fsDir, fsPath)
		default:
			u.skip(np, fmt.Sprintf("unknown node type %q", n.Type))
		}
	}
	return nil
}

func join(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

// replaceable reports whether fsPath may be replaced by a rename: it is
// missing, a file or a link (a rename replaces the link itself). A
// directory is never replaced.
func (u *run) replaceable(ctx context.Context, np, fsPath string) bool {
	_, ok := u.lstatReplaceable(ctx, np, fsPath)
	return ok
}

// lstatReplaceable is replaceable that also returns the Lstat of what is
// there (nil when nothing is).
func (u *run) lstatReplaceable(ctx context.Context, np, fsPath string) (*fsys.FileInfo, bool) {
	fi, err := u.r.fs.Lstat(ctx, fsPath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, true
	}
	if err != nil {
		u.fail(np, err)
		return nil, false
	}
	if fi.Mode.IsDir() {
		u.skip(np, "a directory of that name exists: not replaced")
		return nil, false
	}
	return &fi, true
}

// file writes one file through a temporary name in its directory.
func (u *run) file(ctx context.Context, n *repository.Node, np, fsDir, fsPath string) {
	if ctx.Err() != nil {
		return
	}
	fi, ok := u.lstatReplaceable(ctx, np, fsPath)
	if !ok || fi != nil && u.unchanged(ctx, n, np, fsPath, *fi) {
		return
	}
	if u.r.opts.DryRun {
		u.plan(np, n, fi != nil)
		return
	}
	u.touch(fsPath)
	w, err := u.r.fs.CreateTemp(ctx, fsDir, TempPattern)
	if err != nil {
		u.fail(np, err)
		return
	}
	tmp := w.Name()
	done := false
	defer func() {
		if !done {
			w.Close()
			// Clean up even when ctx is what failed.
			u.r.fs.Remove(context.WithoutCancel(ctx), tmp)
		}
	}()
	cw := &countingWriter{w: w, p: u.p}
	if err := u.content(ctx, n, np, w, cw); err != nil {
		return
	}
	if err := w.Close(); err != nil {
		u.fail(np, fmt.Errorf("close: %w", err))
		return
	}
	if cw.n != n.Size {
		u.fail(np, fmt.Errorf("restored %d bytes, the restore point says %d", cw.n, n.Size))
		return
	}
	if err := u.r.fs.Chmod(ctx, tmp, fs.FileMode(n.Mode)&permBits); err != nil {
		u.fail(np, fmt.Errorf("chmod: %w", err))
		return
	}
	if err := u.chtimes(ctx, tmp, n.ModTime); err != nil {
		u.fail(np, fmt.Errorf("chtimes: %w", err))
		return
	}
	if err := u.r.fs.Rename(ctx, tmp, fsPath); err != nil {
		u.fail(np, fmt.Errorf("rename into place: %w", err))
		return
	}
	done = true
	u.mu.Lock()
	u.rep.FilesWritten++
	u.rep.BytesWritten += cw.n
	if fi != nil {
		u.rep.FilesReplaced++
	}
	u.mu.Unlock()
	u.p.FilesDone.Add(1)
}

// fileIn writes one file through a temporary name in the open directory d
// (np is its path, for messages). A directory of the file's name is not
// replaced: the rename fails on it (POSIX), which is when it is looked at.
func (u *run) fileIn(ctx context.Context, n *repository.Node, np, fsPath string, d fsys.Dir) {
	if ctx.Err() != nil {
		return
	}
	fi, err := d.Lstat(ctx, n.Name)
	existed := err == nil
	if existed && u.unchanged(ctx, n, np, fsPath, fi) {
		return
	}
	if u.r.opts.DryRun {
		switch {
		case err == nil && fi.Mode.IsDir():
			u.skip(np, "a directory of that name exists: not replaced")
		case err == nil || errors.Is(err, fs.ErrNotExist):
			u.plan(np, n, err == nil)
		default:
			u.fail(np, err)
		}
		return
	}
	u.touch(fsPath)
	w, err := d.CreateTemp(ctx, TempPattern)
	if err != nil {
		u.fail(np, err)
		return
	}
	tmp := path.Base(w.Name())
	done := false
	defer func() {
		if !done {
			w.Close()
			// Clean up even when ctx is what failed.
			d.Remove(context.WithoutCancel(ctx), tmp)
		}
	}()
	cw := &countingWriter{w: w, p: u.p}
	if err := u.content(ctx, n, np, w, cw); err != nil {
		return
	}
	if cw.n != n.Size {
		u.fail(np, fmt.Errorf("restored %d bytes, the restore point says %d", cw.n, n.Size))
		return
	}
	// Attributes through the descriptor, before the rename: the file
	// appears complete, mode and times included.
	if af, ok := w.(attrFile); ok {
		if err := af.Chmod(fs.FileMode(n.Mode) & permBits); err != nil {
			u.fail(np, fmt.Errorf("chmod: %w", err))
			return
		}
		if n.ModTime.IsZero() {
			// no time recorded (database dumps): keep the file's own
		} else if err := af.SetModTime(n.ModTime); err != nil {
			u.fail(np, fmt.Errorf("chtimes: %w", err))
			return
		}
	}
	if err := w.Close(); err != nil {
		u.fail(np, fmt.Errorf("close: %w", err))
		return
	}
	if _, ok := w.(attrFile); !ok {
		if err := u.r.fs.Chmod(ctx, w.Name(), fs.FileMode(n.Mode)&permBits); err != nil {
			u.fail(np, fmt.Errorf("chmod: %w", err))
			return
		}
		if err := u.chtimes(ctx, w.Name(), n.ModTime); err != nil {
			u.fail(np, fmt.Errorf("chtimes: %w", err))
			return
		}
	}
	if err := d.Rename(ctx, tmp, n.Name); err != nil {
		if fi, lerr := d.Lstat(ctx, n.Name); lerr == nil && fi.Mode.IsDir() {
			u.skip(np, "a directory of that name exists: not replaced")
			return
		}
		u.fail(np, fmt.Errorf("rename into place: %w", err))
		return
	}
	done = true
	u.mu.Lock()
	u.rep.FilesWritten++
	u.rep.BytesWritten += cw.n
	if existed {
		u.rep.FilesReplaced++
	}
	u.mu.Unlock()
	u.p.FilesDone.Add(1)
}

// unchanged reports whether the file at fsPath, whose Lstat is fi, already
// holds n's content, so that it is left in place instead of rewritten. Only
// a regular file of n's size is read: its chunks are hashed with the
// repository's key and compared with n's content ids (size and time alone
// can lie: a file edited within the same second keeps both), unless it is
// the file the backup read, untouched since (sameFile). The file is
// only read; when its content is right but its mode or modification time
// differ, they are set in place. Anything unexpected (the file changed
// while read, a read error) answers false: the file is rewritten.
func (u *run) unchanged(ctx context.Context, n *repository.Node, np, fsPath string, fi fsys.FileInfo) bool {
	if !fi.Mode.IsRegular() || fi.Size != n.Size {
		return false
	}
	u.p.Current.Store(&np)
	if (n.Size > 0 || len(n.Content) > 0) && !sameFile(fi, n) {
		u.mu.Lock()
		u.rep.BytesHashed += n.Size
		u.mu.Unlock()
		f, err := u.r.fs.Open(ctx, fsPath)
		if err != nil {
			return false
		}
		same, err := u.r.repo.ContentMatches(ctx, f, n.Content)
		after, serr := f.Stat()
		f.Close()
		if err != nil || serr != nil || !same {
			return false
		}
		// The file read must be the one looked at, unchanged meanwhile.
		if after.Size != fi.Size || !after.ModTime.Equal(fi.ModTime) ||
			(fi.Inode != 0 && (after.Inode != fi.Inode || after.Dev != fi.Dev)) {
			return false
		}
	}
	fixed := false
	if want := fs.FileMode(n.Mode) & permBits; fi.Mode&permBits != want && u.r.opts.DryRun {
		fixed = true
	} else if fi.Mode&permBits != want {
		if err := u.r.fs.Chmod(ctx, fsPath, want); err != nil {
			u.fail(np, fmt.Errorf("chmod: %w", err))
			return true
		}
		fixed = true
	}
	if !sameTime(fi, n.ModTime) && u.r.opts.DryRun {
		fixed = true
	} else if !sameTime(fi, n.ModTime) {
		if err := u.chtimes(ctx, fsPath, n.ModTime); err != nil {
			u.fail(np, fmt.Errorf("chtimes: %w", err))
			return true
		}
		fixed = true
	}
	u.mu.Lock()
	u.rep.FilesUnchanged++
	u.rep.BytesUnchanged += n.Size
	if fixed {
		u.rep.AttrsFixed++
	}
	u.mu.Unlock()
	u.p.FilesDone.Add(1)
	u.p.BytesRight.Add(n.Size)
	return true
}

// sameFile reports whether the file on disk, whose Lstat is fi, is the very
// file the backup of n read, not written since: the same device and inode,
// and the same size, modification time and change time. Writing a file's
// content sets its change time to the present, and no system call sets it
// back (a user can set the modification time back, never the change
// time), so such a file still holds what the backup read, and is not read
// again. (Only a file system that reports inodes and change times can
// tell: on SFTP, or for a file of another copy of the site, the content is
// hashed.)
func sameFile(fi fsys.FileInfo, n *repository.Node) bool {
	return fi.Inode != 0 && n.Inode == fi.Inode && n.Dev == fi.Dev &&
		!n.ChangeTime.IsZero() && fi.ChangeTime.Equal(n.ChangeTime) &&
		fi.Size == n.Size && fi.ModTime.Equal(n.ModTime)
}

// sameTime reports whether the file's modification time is the restore
// point's (a zero time, recorded for none, is always the same). A file
// system that reports no inode (SFTP) keeps whole seconds only: there the
// point's time truncated to the second is the same.
func sameTime(fi fsys.FileInfo, mtime time.Time) bool {
	if mtime.IsZero() || fi.ModTime.Equal(mtime) {
		return true
	}
	return fi.Inode == 0 && fi.ModTime.Nanosecond() == 0 && fi.ModTime.Equal(mtime.Truncate(time.Second))
}

// symlink creates the link under a temporary name and renames it into place.
func (u *run) symlink(ctx context.Context, n *repository.Node, np, fsDir, fsPath string) {
	if !u.replaceable(ctx, np, fsPath) {
		return
	}
	if strings.ContainsRune(n.LinkTarget, 0) || n.LinkTarget == "" {
		u.skip(np, "invalid link target")
		return
	}
	if !u.inside(np, n.LinkTarget) {
		// Never placed; a link already there with the same target (Debian's
		// .htaccess → /etc/wordpress/htaccess) is left as it is.
		if fi, err := u.r.fs.Lstat(ctx, fsPath); err == nil && fi.Mode&fs.ModeSymlink != 0 {
			if t, err := u.r.fs.Readlink(ctx, fsPath); err == nil && t == n.LinkTarget {
				u.mu.Lock()
				u.rep.SymlinksKept++
				u.mu.Unlock()
				return
			}
		}
		u.skip(np, fmt.Sprintf("link target %q is outside the site root: refused", n.LinkTarget))
		return
	}
	if u.r.opts.DryRun {
		_, err := u.r.fs.Lstat(ctx, fsPath)
		u.plan(np, n, err == nil)
		return
	}
	u.touch(fsPath)
	var tmp string
	for attempt := 0; ; attempt++ {
		var b [8]byte
		rand.Read(b[:])
		tmp = join(fsDir, strings.Replace(TempPattern, "*", hex.EncodeToString(b[:]), 1))
		err := u.r.fs.Symlink(ctx, n.LinkTarget, tmp)
		if err == nil {
			break
		}
		if errors.Is(err, fs.ErrExist) && attempt < 10 {
			continue
		}
		u.fail(np, fmt.Errorf("symlink: %w", err))
		return
	}
	if err := u.r.fs.Rename(ctx, tmp, fsPath); err != nil {
		u.r.fs.Remove(context.WithoutCancel(ctx), tmp)
		u.fail(np, fmt.Errorf("rename into place: %w", err))
		return
	}
	u.mu.Lock()
	u.rep.Symlinks++
	u.mu.Unlock()
}

// errWrite marks errors of the file being written (as opposed to the
// repository's) as they come back through WriteContent.
var errWrite = errors.New("write")

type countingWriter struct {
	w io.Writer
	p *Progress
	n int64
}

func (c *countingWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	c.p.BytesDone.Add(int64(n))
	if err != nil {
		return n, fmt.Errorf("%w: %w", errWrite, err)
	}
	return n, nil
}

// content writes n's content to w through cw. A damaged or missing blob
// fails this file only (the rest of the restore point may be sound); any
// other repository error stops the restore, since every file would fail
// the same way. A non-nil error means the caller gives the file up.
func (u *run) content(ctx context.Context, n *repository.Node, np string, w fsys.WFile, cw *countingWriter) error {
	u.p.Current.Store(&np)
	var dst io.Writer = cw
	sw := newSparseWriter(w, cw)
	if sw != nil {
		dst = sw
	}
	err := u.r.repo.WriteContent(ctx, n.Content, dst)
	if err == nil && sw != nil {
		err = sw.finish(n.Size)
	}
	if err == nil {
		return nil
	}
	switch {
	case ctx.Err() != nil:
	case errors.Is(err, errWrite), repository.IsDamage(err):
		u.fail(np, err)
	default:
		u.cancel(fmt.Errorf("restore %q: %w", np, err))
	}
	return err
}

// chtimes sets fsPath's modification time, unless the restore point holds
// none (database dump files of a site's point): then the file keeps the
// time it was written, not a date of 1901.
func (u *run) chtimes(ctx context.Context, fsPath string, mtime time.Time) error {
	if mtime.IsZero() {
		return nil
	}
	return u.r.fs.Chtimes(ctx, fsPath, mtime)
}

// inside reports whether a link at np (relative to the restored tree)
// with target stays inside the restored tree, judged on the names alone: a
// link placed by a restore never points out of the site, whatever the
// restore point (or an archive) holds.
func (u *run) inside(np, target string) bool {
	if path.IsAbs(target) {
		root := path.Clean(u.r.opts.Root)
		if u.r.opts.Root == "" || !path.IsAbs(root) {
			return false
		}
		t := path.Clean(target)
		return t == root || strings.HasPrefix(t, strings.TrimSuffix(root, "/")+"/")
	}
	t := path.Join(path.Dir(np), target)
	return t != ".." && !strings.HasPrefix(t, "../")
}

// sparseBlock is the unit of hole detection: an aligned block of this many
// zero bytes is skipped (seeked over) instead of written.
const sparseBlock = 4096

// sparseWriter writes a restored file keeping its holes: aligned runs of
// zero blocks are seeked over, and finish sets the final size, so a sparse
// file (a database image, a VM disk in uploads) is not fully allocated.
type sparseWriter struct {
	f   sparseFile
	cw  *countingWriter
	off int64
	// holeAtEnd: the last bytes were skipped, so the size must be set.
	holeAtEnd bool
}

type sparseFile interface {
	io.Seeker
	Truncate(size int64) error
}

// newSparseWriter returns nil when w cannot seek and truncate.
func newSparseWriter(w fsys.WFile, cw *countingWriter) *sparseWriter {
	f, ok := w.(sparseFile)
	if !ok {
		return nil
	}
	return &sparseWriter{f: f, cw: cw}
}

var zeroBlock [sparseBlock]byte

func (s *sparseWriter) Write(b []byte) (int, error) {
	n := 0
	for len(b) > 0 {
		// up to the next block boundary
		l := min(len(b), sparseBlock-int(s.off%sparseBlock))
		chunk := b[:l]
		if l == sparseBlock && chunk[0] == 0 && bytes.Equal(chunk, zeroBlock[:]) {
			if _, err := s.f.Seek(sparseBlock, io.SeekCurrent); err != nil {
				return n, fmt.Errorf("%w: seek: %w", errWrite, err)
			}
			s.cw.n += sparseBlock
			s.cw.p.BytesDone.Add(sparseBlock)
			s.holeAtEnd = true
		} else {
			if _, err := s.cw.Write(chunk); err != nil {
				return n, err
			}
			s.holeAtEnd = false
		}
		s.off += int64(l)
		n += l
		b = b[l:]
	}
	return n, nil
}

// finish gives the file its size when it ends in a hole.
func (s *sparseWriter) finish(size int64) error {
	if !s.holeAtEnd || s.off != size {
		return nil
	}
	if err := s.f.Truncate(size); err != nil {
		return fmt.Errorf("%w: truncate: %w", errWrite, err)
	}
	return nil
}
