package fsys

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"
	"syscall"
	"time"
	"unsafe"
)

// Local is an FS on the local disk. It is built on os.Root, so no name — not
// even through a symbolic link planted by the site — resolves to a place
// outside the root directory.
//
// Attributes come from lstat and include inode, device and change time
// (Linux).
type Local struct {
	root *os.Root
	path string
}

var (
	_ FS        = (*Local)(nil)
	_ DirOpener = (*Local)(nil)
)

// tempPrefix starts every temporary file name Local creates, so stray
// temporaries of an interrupted restore are recognisable.
const tempPrefix = TempPrefix

// NewLocal opens the directory root as an FS.
func NewLocal(root string) (*Local, error) {
	r, err := os.OpenRoot(root)
	if err != nil {
		return nil, fmt.Errorf("open local root: %w", err)
	}
	return &Local{root: r, path: root}, nil
}

// Root returns the root directory's path.
func (l *Local) Root() string { return l.path }

// Close releases the root directory.
func (l *Local) Close() error { return l.root.Close() }

// clean maps a slash-separated name to one os.Root accepts ("" is ".").
func clean(name string) string {
	if name == "" {
		return "."
	}
	return name
}

// ReadDir lists dir with lstat attributes. Entries that vanish between the
// listing and their lstat are left out.
func (l *Local) ReadDir(ctx context.Context, dir string) ([]FileInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// A root opened on dir lstats each entry relative to the directory's
	// descriptor: one fstatat per entry, no path walk, no escape.
	sub, err := l.root.OpenRoot(clean(dir))
	if err != nil {
		return nil, fmt.Errorf("read dir: %w", err)
	}
	defer sub.Close()
	f, err := sub.Open(".")
	if err != nil {
		return nil, fmt.Errorf("read dir: %w", err)
	}
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("read dir %q: %w", dir, err)
	}
	out := make([]FileInfo, 0, len(names))
	for i, name := range names {
		if i%256 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		fi, err := sub.Lstat(name)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read dir: %w", err)
		}
		out = append(out, fileInfo(name, fi))
	}
	return out, nil
}

// Lstat describes name without following a final symbolic link.
func (l *Local) Lstat(ctx context.Context, name string) (FileInfo, error) {
	if err := ctx.Err(); err != nil {
		return FileInfo{}, err
	}
	fi, err := l.root.Lstat(clean(name))
	if err != nil {
		return FileInfo{}, err
	}
	return fileInfo(path.Base(clean(name)), fi), nil
}

// Open opens a regular file for reading. It refuses anything else (a FIFO
// swapped in after the listing would otherwise block the reader forever).
func (l *Local) Open(ctx context.Context, name string) (File, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// O_NONBLOCK: opening a FIFO must not wait for a writer.
	f, err := l.root.OpenFile(clean(name), os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, &fs.PathError{Op: "open", Path: name, Err: fmt.Errorf("not a regular file (%v)", fi.Mode().Type())}
	}
	return &localFile{File: f, name: path.Base(clean(name))}, nil
}

type localFile struct {
	*os.File
	name string
}

func (f *localFile) Stat() (FileInfo, error) {
	fi, err := f.File.Stat()
	if err != nil {
		return FileInfo{}, err
	}
	return fileInfo(f.name, fi), nil
}

// Readlink returns a symbolic link's target, unchanged.
func (l *Local) Readlink(ctx context.Context, name string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	return l.root.Readlink(clean(name))
}

// MkdirAll creates dir and missing parents with perm.
func (l *Local) MkdirAll(ctx context.Context, dir string, perm fs.FileMode) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return l.root.MkdirAll(clean(dir), perm&fs.ModePerm)
}

// CreateTemp creates a new file in dir, readable and writable by its owner
// only (0600), with O_EXCL. Its name is pattern with the last "*" replaced
// by random characters (or random characters appended); an empty pattern
// means ".sitevault-tmp-*".
func (l *Local) CreateTemp(ctx context.Context, dir, pattern string) (WFile, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	sub, err := l.root.OpenRoot(clean(dir))
	if err != nil {
		return nil, fmt.Errorf("create temp: %w", err)
	}
	defer sub.Close()
	return createTemp(sub, dir, pattern)
}

// createTemp creates the temporary file in the directory root, whose path
// relative to the Local's root is dir.
func createTemp(root *os.Root, dir, pattern string) (WFile, error) {
	if pattern == "" {
		pattern = tempPrefix + "*"
	}
	if strings.ContainsAny(pattern, "/\x00") {
		return nil, fmt.Errorf("create temp: invalid pattern %q", pattern)
	}
	prefix, suffix := pattern, ""
	if i := strings.LastIndexByte(pattern, '*'); i >= 0 {
		prefix, suffix = pattern[:i], pattern[i+1:]
	}
	for range 100 {
		var b [8]byte
		rand.Read(b[:])
		base := prefix + hex.EncodeToString(b[:]) + suffix
		f, err := root.OpenFile(base, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("create temp: %w", err)
		}
		return &localWFile{File: f, name: path.Join(dir, base)}, nil
	}
	return nil, fmt.Errorf("create temp in %q: too many name collisions", dir)
}

type localWFile struct {
	*os.File
	name string
}

func (f *localWFile) Name() string { return f.name }

// Rename atomically replaces newname with oldname.
func (l *Local) Rename(ctx context.Context, oldname, newname string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return l.root.Rename(oldname, newname)
}

// Remove deletes a file or an empty directory.
func (l *Local) Remove(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return l.root.Remove(name)
}

// Symlink creates name as a symbolic link to target. The target is stored
// as given: it may point anywhere, but Local never follows it out of the root.
func (l *Local) Symlink(ctx context.Context, target, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return l.root.Symlink(target, name)
}

// Chmod sets permission bits (and setuid, setgid, sticky). It refuses a
// symbolic link instead of changing the link's target.
func (l *Local) Chmod(ctx context.Context, name string, mode fs.FileMode) error {
	if err := l.notSymlink(ctx, "chmod", name); err != nil {
		return err
	}
	return l.root.Chmod(clean(name), mode&(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky))
}

// Chtimes sets the modification and access times to mtime. It refuses a
// symbolic link instead of changing the link's target.
func (l *Local) Chtimes(ctx context.Context, name string, mtime time.Time) error {
	if err := l.notSymlink(ctx, "chtimes", name); err != nil {
		return err
	}
	return l.root.Chtimes(clean(name), mtime, mtime)
}

func (l *Local) notSymlink(ctx context.Context, op, name string) error {
	fi, err := l.Lstat(ctx, name)
	if err != nil {
		return err
	}
	if fi.Mode&fs.ModeSymlink != 0 {
		return &fs.PathError{Op: op, Path: name, Err: syscall.ELOOP}
	}
	return nil
}

// fileInfo converts an os.FileInfo, taking inode, device and change time
// from the lstat result.
func fileInfo(name string, fi os.FileInfo) FileInfo {
	out := FileInfo{
		Name:    name,
		Mode:    fi.Mode(),
		Size:    fi.Size(),
		ModTime: fi.ModTime(),
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		out.Inode = uint64(st.Ino)
		out.Dev = uint64(st.Dev)
		out.ChangeTime = time.Unix(int64(st.Ctim.Sec), int64(st.Ctim.Nsec))
	}
	return out
}

// OpenDir opens dir ("" is the root) as a Dir. Like every method of Local it
// never resolves to a place outside the root; it may follow a symbolic link
// inside it (compare Stat with an Lstat of dir to refuse that).
func (l *Local) OpenDir(ctx context.Context, dir string) (Dir, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r, err := l.root.OpenRoot(clean(dir))
	if err != nil {
		return nil, fmt.Errorf("open dir: %w", err)
	}
	return &localDir{root: r, path: dir}, nil
}

type localDir struct {
	root *os.Root
	path string // relative to the Local's root, "" for the root
}

var _ Dir = (*localDir)(nil)

func (d *localDir) Stat() (FileInfo, error) {
	fi, err := d.root.Lstat(".")
	if err != nil {
		return FileInfo{}, err
	}
	return fileInfo(path.Base(clean(d.path)), fi), nil
}

// component refuses anything but a single path component.
func component(op, name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") {
		return &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	return nil
}

func (d *localDir) Lstat(ctx context.Context, name string) (FileInfo, error) {
	if err := ctx.Err(); err != nil {
		return FileInfo{}, err
	}
	if err := component("lstat", name); err != nil {
		return FileInfo{}, err
	}
	fi, err := d.root.Lstat(name)
	if err != nil {
		return FileInfo{}, err
	}
	return fileInfo(name, fi), nil
}

func (d *localDir) CreateTemp(ctx context.Context, pattern string) (WFile, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return createTemp(d.root, d.path, pattern)
}

func (d *localDir) Rename(ctx context.Context, oldname, newname string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := component("rename", oldname); err != nil {
		return err
	}
	if err := component("rename", newname); err != nil {
		return err
	}
	return d.root.Rename(oldname, newname)
}

func (d *localDir) Remove(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := component("remove", name); err != nil {
		return err
	}
	return d.root.Remove(name)
}

func (d *localDir) Close() error { return d.root.Close() }

// SetModTime sets the open file's modification and access times
// (utimensat on the descriptor: no path, so no link can be followed).
func (f *localWFile) SetModTime(mtime time.Time) error {
	ts := [2]syscall.Timespec{syscall.NsecToTimespec(mtime.UnixNano()), syscall.NsecToTimespec(mtime.UnixNano())}
	rc, err := f.File.SyscallConn()
	if err != nil {
		return err
	}
	var errno syscall.Errno
	if err := rc.Control(func(fd uintptr) {
		_, _, errno = syscall.Syscall6(syscall.SYS_UTIMENSAT, fd, 0, uintptr(unsafe.Pointer(&ts[0])), 0, 0, 0)
	}); err != nil {
		return err
	}
	if errno != 0 {
		return &fs.PathError{Op: "futimens", Path: f.name, Err: errno}
	}
	return nil
}

// Chmod sets the open file's permission bits (and setuid, setgid, sticky)
// through its descriptor.
func (f *localWFile) Chmod(mode fs.FileMode) error {
	return f.File.Chmod(mode & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky))
}
