package ssh

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pkg/sftp"

	"github.com/sitevault/sitevault/internal/fsys"
)

// ErrOutsideRoot means a name leaves the FS root: it holds "..", is
// absolute, or resolves (through a symbolic link) to a place outside.
var ErrOutsideRoot = errors.New("path escapes the site root")

// FS is an fsys.FS over SFTP, rooted at a directory on the server. It
// spreads its requests over one or more SFTP sessions (Config.SFTPSessions).
//
// Every name is joined under the root after a lexical check (no "..", not
// absolute, no NUL). SFTP servers resolve symbolic links themselves, so the
// FS also asks the server for the real path (SSH_FXP_REALPATH) of the
// folder an operation works in, and refuses the operation if it lies
// outside the root's real path. Reads run the check alongside the request
// and remember folders known to be inside (checked, or listed as a folder
// in one that was); Open reads a file through a final symbolic link only
// after checking the link's real path. Writes always wait for the check.
// The protocol has no openat, so a link swapped in between the check and
// the operation is not caught: restore therefore also checks parents with
// Lstat, as it does on every FS.
//
// OpenListed (fsys.ListedOpener) opens a file its folder's listing
// described, using the listing's attributes instead of the LSTAT and
// checking the open file with FSTAT before handing anything over. Between
// a check and an OPEN a file may still be swapped for a FIFO, which blocks
// the session (OpenSSH's OPEN has no O_NONBLOCK): the window is the time
// from the listing (OpenListed) or the LSTAT (Open) to the OPEN.
//
// ReadDir returns the attributes READDIR carries (one round trip per batch
// of entries, no per-file stat). SFTP version 3 has no inode, device or
// change time and gives modification times in whole seconds.
type FS struct {
	c        *sftp.Client   // the first session's client
	cs       []*sftp.Client // every session's client; requests spread over them
	next     atomic.Uint32
	root     string // cleaned absolute path as given
	realRoot string // the server's real path of root
	display  string
	sessions []io.Closer // the SSH sessions the clients run on, if ours
	onClose  func()
	once     sync.Once

	// dirs caches directories whose real path was found inside the root,
	// so reads check each directory once, not each file.
	dirs sync.Map // server path → struct{}
}

var _ fsys.FS = (*FS)(nil)

// tempPrefix matches fsys.Local's, so stray temporaries look the same on
// every FS.
const tempPrefix = fsys.TempPrefix

// NewFS returns an FS over client rooted at root, an absolute directory on
// the server. Closing the FS closes client.
func NewFS(ctx context.Context, client *sftp.Client, root string) (*FS, error) {
	return newFS(ctx, client, root, root)
}

func newFS(ctx context.Context, client *sftp.Client, root, display string) (*FS, error) {
	if !strings.HasPrefix(root, "/") || strings.ContainsRune(root, 0) {
		return nil, fmt.Errorf("sftp root %q must be an absolute path", root)
	}
	root = path.Clean(root)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	fi, err := client.Stat(root)
	if err != nil {
		return nil, &fs.PathError{Op: "open root", Path: display, Err: err}
	}
	if !fi.IsDir() {
		return nil, &fs.PathError{Op: "open root", Path: display, Err: errors.New("not a directory")}
	}
	real, err := client.RealPath(root)
	if err != nil {
		return nil, &fs.PathError{Op: "open root", Path: display, Err: err}
	}
	return &FS{c: client, cs: []*sftp.Client{client}, root: root, realRoot: path.Clean(real), display: display}, nil
}

// cl returns the client for the next request: sessions are used in turn,
// so that several server processes share the work.
func (f *FS) cl() *sftp.Client {
	if len(f.cs) == 1 {
		return f.c
	}
	return f.cs[int(f.next.Add(1))%len(f.cs)]
}

// Root describes the root as user@host:port:path.
func (f *FS) Root() string { return f.display }

// Client returns the SFTP client (for tests and benchmarks).
func (f *FS) Client() *sftp.Client { return f.c }

// Close ends the SFTP session.
func (f *FS) Close() error {
	var err error
	f.once.Do(func() {
		for _, c := range f.cs {
			if cerr := c.Close(); err == nil {
				err = cerr
			}
		}
		for _, s := range f.sessions {
			s.Close()
		}
		if f.onClose != nil {
			f.onClose()
		}
	})
	return err
}

// full maps a name to its path on the server, refusing names that leave
// the root lexically.
func (f *FS) full(op, name string) (string, error) {
	if name == "" || name == "." {
		return f.root, nil
	}
	if strings.HasPrefix(name, "/") || strings.ContainsRune(name, 0) {
		return "", &fs.PathError{Op: op, Path: name, Err: ErrOutsideRoot}
	}
	for _, part := range strings.Split(name, "/") {
		if part == ".." {
			return "", &fs.PathError{Op: op, Path: name, Err: ErrOutsideRoot}
		}
	}
	return path.Join(f.root, name), nil
}

func (f *FS) inside(real string) bool {
	real = path.Clean(real)
	if f.realRoot == "/" {
		return strings.HasPrefix(real, "/")
	}
	return real == f.realRoot || strings.HasPrefix(real, f.realRoot+"/")
}

// checkReal asks the server where p really is and fails if outside the root.
func (f *FS) checkReal(op, name, p string) error {
	if p == f.root {
		return nil
	}
	real, err := f.cl().RealPath(p)
	if err != nil {
		return &fs.PathError{Op: op, Path: name, Err: err}
	}
	if !f.inside(real) {
		return &fs.PathError{Op: op, Path: name, Err: ErrOutsideRoot}
	}
	return nil
}

// checkDir is checkReal for a directory that reads go through: a folder
// found inside the root is remembered and not asked about again. (A folder
// replaced by a link afterwards is not noticed; writes never use the
// cache, and restore checks parents with Lstat itself.)
func (f *FS) checkDir(op, name, dir string) error {
	if dir == f.root {
		return nil
	}
	if _, ok := f.dirs.Load(dir); ok {
		return nil
	}
	if err := f.checkReal(op, name, dir); err != nil {
		return err
	}
	f.dirs.Store(dir, struct{}{})
	return nil
}

// checkParent checks the directory holding p.
func (f *FS) checkParent(op, name, p string) error {
	return f.checkReal(op, name, path.Dir(p))
}

// alongside runs check concurrently with do (the SFTP client pipelines
// both requests) and returns check's error first.
func alongside(check func() error, do func() error) error {
	ch := make(chan error, 1)
	go func() { ch <- check() }()
	err := do()
	if cerr := <-ch; cerr != nil {
		return cerr
	}
	return err
}

func pathErr(op, name string, err error) error {
	if err == nil {
		return nil
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return err
	}
	return &fs.PathError{Op: op, Path: name, Err: err}
}

func toInfo(name string, fi os.FileInfo) fsys.FileInfo {
	return fsys.FileInfo{Name: name, Mode: fi.Mode(), Size: fi.Size(), ModTime: fi.ModTime()}
}

// ReadDir lists dir with the attributes READDIR returns.
func (f *FS) ReadDir(ctx context.Context, dir string) ([]fsys.FileInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p, err := f.full("readdir", dir)
	if err != nil {
		return nil, err
	}
	var list []os.FileInfo
	err = alongside(
		func() error { return f.checkDir("readdir", dir, p) },
		func() (err error) { list, err = f.cl().ReadDirContext(ctx, p); return err })
	if err != nil {
		return nil, pathErr("readdir", dir, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make([]fsys.FileInfo, len(list))
	for i, fi := range list {
		out[i] = toInfo(fi.Name(), fi)
		// A folder listed (not a link) in a checked folder is inside the
		// root too: reads below it need not ask the server.
		if fi.IsDir() && fi.Name() != "" && fi.Name() != "." && fi.Name() != ".." && !strings.Contains(fi.Name(), "/") {
			f.dirs.Store(path.Join(p, fi.Name()), struct{}{})
		}
	}
	return out, nil
}

// Lstat describes name without following a final symbolic link.
func (f *FS) Lstat(ctx context.Context, name string) (fsys.FileInfo, error) {
	if err := ctx.Err(); err != nil {
		return fsys.FileInfo{}, err
	}
	p, err := f.full("lstat", name)
	if err != nil {
		return fsys.FileInfo{}, err
	}
	var fi os.FileInfo
	err = alongside(
		func() error { return f.checkDir("lstat", name, path.Dir(p)) },
		func() (err error) { fi, err = f.cl().Lstat(p); return err })
	if err != nil {
		return fsys.FileInfo{}, pathErr("lstat", name, err)
	}
	return toInfo(path.Base(p), fi), nil
}

// Open opens a regular file for reading. It refuses anything else before
// opening it: OpenSSH's sftp-server serves one request at a time, and
// opening a FIFO would block the whole session.
//
// The usual case costs one LSTAT before the OPEN: the final name is not a
// link, and its folder's real path is checked once per folder (cached). A
// final symbolic link is followed only when its real path is inside the root.
func (f *FS) Open(ctx context.Context, name string) (fsys.File, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p, err := f.full("open", name)
	if err != nil {
		return nil, err
	}
	var fi os.FileInfo
	err = alongside(
		func() error { return f.checkDir("open", name, path.Dir(p)) },
		func() (err error) { fi, err = f.cl().Lstat(p); return err })
	if err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		err = alongside(
			func() error { return f.checkReal("open", name, p) },
			func() (err error) { fi, err = f.cl().Stat(p); return err })
	}
	if err != nil {
		return nil, pathErr("open", name, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fmt.Errorf("not a regular file (%v)", fi.Mode().Type())}
	}
	file, err := f.cl().OpenFile(p, os.O_RDONLY)
	if err != nil {
		return nil, pathErr("open", name, err)
	}
	info := toInfo(path.Base(p), fi)
	return &rfile{f: file, name: info.Name, first: &info, size: fi.Size()}, nil
}

// listedMax is the largest file OpenListed reads whole into memory; larger
// files go through Open, where a request more per file does not matter.
const listedMax = 512 << 10

// OpenListed opens a file that a ReadDir of its folder described as listed
// (fsys.ListedOpener), in fewer requests than Open: the listing's
// attributes (READDIR's, taken with lstat) stand for Open's LSTAT, so a
// small file costs OPEN, READ, FSTAT and CLOSE (4 requests, the CLOSE not
// waited for) instead of 5, and an empty one a single LSTAT.
//
// The file is read whole into memory before anything is handed over, then
// checked with FSTAT on the open handle: unless it is still a regular file
// with the listing's size, modification time and mode, what was read is
// dropped and the error wraps fsys.ErrNotAsListed (the caller opens it
// again with Open, which checks a final symbolic link's real path). So a
// file replaced by a link to a file outside the root after the listing
// is not taken (unless the target has the listed file's exact size,
// time and mode). The folder's real path is checked as for Open. Files
// larger than listedMax, and anything not listed as a regular file, go
// through Open.
func (f *FS) OpenListed(ctx context.Context, name string, listed fsys.FileInfo) (fsys.File, error) {
	if !listed.Mode.IsRegular() || listed.Size > listedMax || listed.Size < 0 {
		return f.Open(ctx, name)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p, err := f.full("open", name)
	if err != nil {
		return nil, err
	}
	// Usually cached: the folder was checked when it was listed.
	if err := f.checkDir("open", name, path.Dir(p)); err != nil {
		return nil, err
	}
	info := listed
	info.Name = path.Base(p)
	c := f.cl()
	if listed.Size == 0 {
		// Nothing to read: one LSTAT shows whether it is still empty.
		fi, err := c.Lstat(p)
		if err != nil {
			return nil, pathErr("open", name, err)
		}
		if !asListed(listed, fi) {
			return nil, &fs.PathError{Op: "open", Path: name, Err: fsys.ErrNotAsListed}
		}
		return &listedFile{name: info.Name, first: &info, after: toInfo(info.Name, fi)}, nil
	}
	file, err := c.OpenFile(p, os.O_RDONLY)
	if err != nil {
		return nil, pathErr("open", name, err)
	}
	// Close without waiting for the answer (see rfile.Close).
	defer func() { go file.Close() }()
	buf := make([]byte, listed.Size)
	// Exactly the listed size: one READ for a small file, no READ for EOF;
	// a file that grew shows in the FSTAT.
	n, rerr := file.ReadAt(buf, 0)
	if rerr != nil && !(rerr == io.EOF && n == len(buf)) {
		if rerr == io.EOF {
			// Shorter than listed: it changed.
			return nil, &fs.PathError{Op: "open", Path: name, Err: fsys.ErrNotAsListed}
		}
		return nil, pathErr("read", name, rerr)
	}
	// The FSTAT follows the READ, so a change while reading shows.
	fi, err := file.Stat()
	if err != nil {
		return nil, pathErr("stat", name, err)
	}
	if !asListed(listed, fi) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fsys.ErrNotAsListed}
	}
	return &listedFile{name: info.Name, first: &info, after: toInfo(info.Name, fi), data: buf}, nil
}

// asListed reports whether fi (an LSTAT or FSTAT) shows the file listed.
func asListed(listed fsys.FileInfo, fi os.FileInfo) bool {
	return fi.Mode().IsRegular() && fi.Mode() == listed.Mode && fi.Size() == listed.Size && fi.ModTime().Equal(listed.ModTime)
}

// listedFile is a file OpenListed read whole.
type listedFile struct {
	name  string
	first *fsys.FileInfo // the listing's attributes, served once
	after fsys.FileInfo  // the open file's, checked after the read
	data  []byte
	off   int
}

func (l *listedFile) Read(b []byte) (int, error) {
	if l.off >= len(l.data) {
		return 0, io.EOF
	}
	n := copy(b, l.data[l.off:])
	l.off += n
	return n, nil
}

// Stat returns the listing's attributes first, the open file's after.
func (l *listedFile) Stat() (fsys.FileInfo, error) {
	if l.first != nil {
		fi := *l.first
		l.first = nil
		return fi, nil
	}
	return l.after, nil
}

func (l *listedFile) Close() error { l.data = nil; return nil }

var _ fsys.ListedOpener = (*FS)(nil)

// rfile is a file open for reading.
type rfile struct {
	f     *sftp.File
	name  string
	first *fsys.FileInfo // the stat taken just before opening, served once
	size  int64          // the size seen then
	off   int64
	// after is the FSTAT sent as soon as the last byte was read, so that
	// the reader's second Stat does not wait a round trip.
	after chan statResult
}

type statResult struct {
	fi  os.FileInfo
	err error
}

// Read reads at most up to the size the file had when opened, so a small
// file takes one request and EOF costs no extra round trip. A file that
// grew meanwhile is stored as read; the reader's second Stat shows it changed.
func (r *rfile) Read(b []byte) (int, error) {
	rem := r.size - r.off
	if rem <= 0 {
		r.statAfter()
		return 0, io.EOF
	}
	if int64(len(b)) > rem {
		b = b[:rem]
	}
	n, err := r.f.Read(b)
	r.off += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	if r.off >= r.size {
		r.statAfter()
	}
	return n, err
}

// statAfter sends the FSTAT the reader will ask for next, once.
func (r *rfile) statAfter() {
	if r.after != nil {
		return
	}
	r.after = make(chan statResult, 1)
	go func() {
		fi, err := r.f.Stat()
		r.after <- statResult{fi, err}
	}()
}

// Stat returns the attributes seen when the file was opened the first time
// it is called (saving a round trip), and the open file's (FSTAT, sent
// when the last byte was read) after.
func (r *rfile) Stat() (fsys.FileInfo, error) {
	if r.first != nil {
		fi := *r.first
		r.first = nil
		return fi, nil
	}
	r.statAfter()
	res := <-r.after
	r.after = nil
	if res.err != nil {
		return fsys.FileInfo{}, pathErr("stat", r.name, res.err)
	}
	return toInfo(r.name, res.fi), nil
}

// Close releases the handle without waiting for the server's answer: a
// read-only handle's close cannot lose data, and not waiting saves a round
// trip per file. A pending FSTAT is sent before the close.
func (r *rfile) Close() error {
	after := r.after
	go func() {
		if after != nil {
			<-after
		}
		r.f.Close()
	}()
	return nil
}

// Readlink returns a symbolic link's target, unchanged.
func (f *FS) Readlink(ctx context.Context, name string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	p, err := f.full("readlink", name)
	if err != nil {
		return "", err
	}
	var target string
	err = alongside(
		func() error { return f.checkDir("readlink", name, path.Dir(p)) },
		func() (err error) { target, err = f.cl().ReadLink(p); return err })
	return target, pathErr("readlink", name, err)
}

// MkdirAll creates dir and missing parents with perm. Existing parents may
// be symbolic links to directories inside the root.
func (f *FS) MkdirAll(ctx context.Context, dir string, perm fs.FileMode) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p, err := f.full("mkdir", dir)
	if err != nil {
		return err
	}
	if p == f.root {
		return nil
	}
	// Usually the directory exists: one pipelined round trip.
	var fi os.FileInfo
	err = alongside(
		func() error { return f.checkReal("mkdir", dir, p) },
		func() (err error) { fi, err = f.cl().Stat(p); return err })
	if err == nil {
		if !fi.IsDir() {
			return &fs.PathError{Op: "mkdir", Path: dir, Err: errors.New("not a directory")}
		}
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return pathErr("mkdir", dir, err)
	}
	rel := strings.TrimPrefix(p, f.root+"/")
	cur := f.root
	for _, part := range strings.Split(rel, "/") {
		if err := ctx.Err(); err != nil {
			return err
		}
		cur = path.Join(cur, part)
		fi, err := f.cl().Stat(cur)
		if err == nil {
			if !fi.IsDir() {
				return &fs.PathError{Op: "mkdir", Path: dir, Err: fmt.Errorf("%s is not a directory", strings.TrimPrefix(cur, f.root+"/"))}
			}
			if err := f.checkReal("mkdir", dir, cur); err != nil {
				return err
			}
			continue
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return pathErr("mkdir", dir, err)
		}
		if err := f.cl().Mkdir(cur); err != nil {
			// Lost a race with another creator: fine if it is a dir now.
			if fi, serr := f.cl().Lstat(cur); serr != nil || !fi.IsDir() {
				return pathErr("mkdir", dir, err)
			}
			continue
		}
		if err := f.cl().Chmod(cur, perm&fs.ModePerm); err != nil {
			return pathErr("mkdir", dir, err)
		}
	}
	return nil
}

// CreateTemp creates a new file in dir (O_EXCL, mode 0600), named after
// pattern with the last "*" replaced by random characters; an empty pattern
// means ".sitevault-tmp-*".
func (f *FS) CreateTemp(ctx context.Context, dir, pattern string) (fsys.WFile, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if pattern == "" {
		pattern = tempPrefix + "*"
	}
	if strings.ContainsAny(pattern, "/\x00") {
		return nil, fmt.Errorf("create temp: invalid pattern %q", pattern)
	}
	dp, err := f.full("create temp", dir)
	if err != nil {
		return nil, err
	}
	if err := f.checkReal("create temp", dir, dp); err != nil {
		return nil, err
	}
	prefix, suffix := pattern, ""
	if i := strings.LastIndexByte(pattern, '*'); i >= 0 {
		prefix, suffix = pattern[:i], pattern[i+1:]
	}
	for range 100 {
		var b [8]byte
		rand.Read(b[:])
		base := prefix + hex.EncodeToString(b[:]) + suffix
		file, err := f.cl().OpenFile(path.Join(dp, base), os.O_WRONLY|os.O_CREATE|os.O_EXCL)
		if err != nil {
			// SFTP v3 has no "exists" status; OpenSSH answers FAILURE.
			if _, serr := f.cl().Lstat(path.Join(dp, base)); serr == nil {
				continue
			}
			return nil, pathErr("create temp", path.Join(dir, base), err)
		}
		// SFTP's open takes no mode here; restrict it at once.
		if err := file.Chmod(0o600); err != nil {
			file.Close()
			f.cl().Remove(path.Join(dp, base))
			return nil, pathErr("create temp", path.Join(dir, base), err)
		}
		name := base
		if dir != "" && dir != "." {
			name = path.Join(dir, base)
		}
		return &wfile{File: file, name: name}, nil
	}
	return nil, fmt.Errorf("create temp in %q: too many name collisions", dir)
}

type wfile struct {
	*sftp.File
	name string
}

func (w *wfile) Name() string { return w.name }

// Write writes b; large writes are split into concurrent requests.
func (w *wfile) Write(b []byte) (int, error) { return w.File.Write(b) }

// ReadFrom lets io.Copy send concurrent write requests.
func (w *wfile) ReadFrom(r io.Reader) (int64, error) { return w.File.ReadFrom(r) }

func (w *wfile) Close() error { return w.File.Close() }

// Rename atomically replaces newname with oldname (posix-rename@openssh.com).
func (f *FS) Rename(ctx context.Context, oldname, newname string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	op, err := f.full("rename", oldname)
	if err != nil {
		return err
	}
	np, err := f.full("rename", newname)
	if err != nil {
		return err
	}
	if op == f.root || np == f.root {
		return &fs.PathError{Op: "rename", Path: newname, Err: errors.New("cannot rename the root")}
	}
	if err := alongside(
		func() error { return f.checkParent("rename", oldname, op) },
		func() error { return f.checkParent("rename", newname, np) }); err != nil {
		return err
	}
	if _, ok := f.cl().HasExtension("posix-rename@openssh.com"); !ok {
		return &fs.PathError{Op: "rename", Path: newname, Err: errors.New("the SFTP server lacks posix-rename@openssh.com, needed for atomic replacement")}
	}
	return pathErr("rename", newname, f.cl().PosixRename(op, np))
}

// Remove deletes a file or an empty directory.
func (f *FS) Remove(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p, err := f.full("remove", name)
	if err != nil {
		return err
	}
	if p == f.root {
		return &fs.PathError{Op: "remove", Path: name, Err: errors.New("cannot remove the root")}
	}
	if err := f.checkParent("remove", name, p); err != nil {
		return err
	}
	return pathErr("remove", name, f.cl().Remove(p))
}

// Symlink creates name as a symbolic link to target, stored as given.
func (f *FS) Symlink(ctx context.Context, target, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p, err := f.full("symlink", name)
	if err != nil {
		return err
	}
	if err := f.checkParent("symlink", name, p); err != nil {
		return err
	}
	return pathErr("symlink", name, f.cl().Symlink(target, p))
}

// notSymlink refuses a final symbolic link (SETSTAT would follow it).
func (f *FS) notSymlink(ctx context.Context, op, name string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	p, err := f.full(op, name)
	if err != nil {
		return "", err
	}
	var fi os.FileInfo
	err = alongside(
		func() error { return f.checkParent(op, name, p) },
		func() (err error) { fi, err = f.cl().Lstat(p); return err })
	if err != nil {
		return "", pathErr(op, name, err)
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		return "", &fs.PathError{Op: op, Path: name, Err: errors.New("is a symbolic link")}
	}
	return p, nil
}

// Chmod sets permission bits (and setuid, setgid, sticky). It refuses a
// symbolic link instead of changing the link's target.
func (f *FS) Chmod(ctx context.Context, name string, mode fs.FileMode) error {
	p, err := f.notSymlink(ctx, "chmod", name)
	if err != nil {
		return err
	}
	return pathErr("chmod", name, f.cl().Chmod(p, mode&(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)))
}

// Chtimes sets the modification and access times to mtime (whole seconds:
// SFTP version 3 carries no more). It refuses a symbolic link.
func (f *FS) Chtimes(ctx context.Context, name string, mtime time.Time) error {
	p, err := f.notSymlink(ctx, "chtimes", name)
	if err != nil {
		return err
	}
	return pathErr("chtimes", name, f.cl().Chtimes(p, mtime, mtime))
}
