// Package local stores a repository in a folder of the local file system,
// the embedded default backend.
//
// The folder holds the layout described in package backend (config, keys/,
// data/00…ff/, index/, snapshots/, locks/). A Save writes a temporary file
// (".tmp-…") in the target folder, syncs it, makes it read-only, renames it
// into place and syncs the folder, so that after a crash at any moment a
// file is either whole or absent; List skips temporary files and CleanTemp
// removes those a killed process left behind. The config is linked into
// place instead (link(2) fails if it exists), so it is never replaced.
package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/sitevault/sitevault/internal/backend"
)

var (
	_ backend.Backend     = (*Backend)(nil)
	_ backend.TempCleaner = (*Backend)(nil)
)

// Backend is a repository in a local folder.
type Backend struct {
	dir string
	// wrapWriter, if set, wraps the temporary file's writer during Save;
	// tests use it to inject write errors such as ENOSPC.
	wrapWriter func(io.Writer) io.Writer
}

// Create makes the repository's folders under dir (dir itself included)
// and opens it. It does not write the config file: the repository checks
// for an existing one and writes it.
func Create(ctx context.Context, dir string) (*Backend, error) {
	dir = filepath.Clean(dir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, mapError(fmt.Errorf("create repository folder %s: %w", dir, err), err)
	}
	for _, d := range backend.Dirs() {
		p := filepath.Join(dir, filepath.FromSlash(d))
		if err := os.MkdirAll(p, 0o700); err != nil {
			return nil, mapError(fmt.Errorf("create repository folder %s: %w", p, err), err)
		}
	}
	return Open(ctx, dir)
}

// Open opens the repository in dir. A missing dir is an error wrapping
// backend.ErrNotExist.
func Open(ctx context.Context, dir string) (*Backend, error) {
	dir = filepath.Clean(dir)
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, mapError(fmt.Errorf("open repository %s: %w", dir, err), err)
	}
	if !fi.IsDir() {
		return nil, backend.Permanent(fmt.Errorf("open repository %s: not a folder", dir))
	}
	return &Backend{dir: dir}, nil
}

// Location implements backend.Backend.
func (b *Backend) Location() string { return b.dir }

func (b *Backend) path(h backend.Handle) string {
	return filepath.Join(b.dir, filepath.FromSlash(backend.Filename(h)))
}

// mapError wraps err (whose cause is cause) with the sentinel matching its
// cause: ErrNotExist, ErrAccess or ErrNoSpace, the last two as permanent.
func mapError(err, cause error) error {
	switch {
	case errors.Is(cause, fs.ErrNotExist):
		return fmt.Errorf("%w: %w", err, backend.ErrNotExist)
	case errors.Is(cause, syscall.ENOSPC), errors.Is(cause, syscall.EDQUOT), errors.Is(cause, syscall.EFBIG):
		return backend.Permanent(fmt.Errorf("%w: %w", err, backend.ErrNoSpace))
	case errors.Is(cause, fs.ErrPermission), errors.Is(cause, syscall.EROFS):
		return backend.Permanent(fmt.Errorf("%w: %w", err, backend.ErrAccess))
	}
	return err
}

// Save implements backend.Backend.
func (b *Backend) Save(ctx context.Context, h backend.Handle, rd io.ReadSeeker, size int64) (err error) {
	if err := h.Valid(); err != nil {
		return backend.Permanent(fmt.Errorf("save: %w", err))
	}
	if _, err := rd.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("save %v: rewind: %w", h, err)
	}
	final := b.path(h)
	dir := filepath.Dir(final)
	f, err := os.CreateTemp(dir, backend.TempPrefix+"*")
	if errors.Is(err, fs.ErrNotExist) {
		// A repository created by an older layout or by hand: make the folder.
		if err = os.MkdirAll(dir, 0o700); err == nil {
			f, err = os.CreateTemp(dir, backend.TempPrefix+"*")
		}
	}
	if err != nil {
		return mapError(fmt.Errorf("save %v: %w", h, err), err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()

	var w io.Writer = f
	if b.wrapWriter != nil {
		w = b.wrapWriter(f)
	}
	n, err := io.Copy(w, io.LimitReader(backend.ContextReader(ctx, rd), size))
	if err != nil {
		return mapError(fmt.Errorf("save %v: write: %w", h, err), err)
	}
	if n != size {
		// The caller's reader is shorter than it said: retrying cannot help.
		return backend.Permanent(fmt.Errorf("save %v: read %d bytes, want %d: %w", h, n, size, io.ErrUnexpectedEOF))
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("save %v: %w", h, err)
	}
	if err := f.Sync(); err != nil {
		return mapError(fmt.Errorf("save %v: sync: %w", h, err), err)
	}
	if err := f.Chmod(0o400); err != nil {
		return mapError(fmt.Errorf("save %v: %w", h, err), err)
	}
	if err := f.Close(); err != nil {
		return mapError(fmt.Errorf("save %v: close: %w", h, err), err)
	}
	if h.Type == backend.ConfigFile {
		// link(2) never replaces: of two inits, one gets EEXIST.
		err := os.Link(tmp, final)
		os.Remove(tmp)
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("save %v: %w", h, backend.ErrExist)
		}
		if err != nil {
			return mapError(fmt.Errorf("save %v: %w", h, err), err)
		}
	} else if err := os.Rename(tmp, final); err != nil {
		return mapError(fmt.Errorf("save %v: %w", h, err), err)
	}
	// The rename is durable only once the folder is synced.
	if err := syncDir(dir); err != nil {
		return mapError(fmt.Errorf("save %v: sync folder: %w", h, err), err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	// Some file systems cannot sync folders; the data itself is synced.
	if errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOTSUP) {
		return nil
	}
	return err
}

// Load implements backend.Backend.
func (b *Backend) Load(ctx context.Context, h backend.Handle, length int, offset int64, fn func(io.Reader) error) error {
	if err := h.Valid(); err != nil {
		return backend.Permanent(fmt.Errorf("load: %w", err))
	}
	if length < 0 || offset < 0 {
		return backend.Permanent(fmt.Errorf("load %v: negative range %d+%d", h, offset, length))
	}
	f, err := os.Open(b.path(h))
	if err != nil {
		return mapError(fmt.Errorf("load %v: %w", h, err), err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return mapError(fmt.Errorf("load %v: %w", h, err), err)
	}
	n := int64(length)
	if length == 0 {
		n = fi.Size() - offset
	}
	if offset > fi.Size() || offset+n > fi.Size() {
		return backend.Permanent(fmt.Errorf("load %v: range %d+%d outside file of %d bytes: %w", h, offset, length, fi.Size(), io.ErrUnexpectedEOF))
	}
	return fn(backend.ExactReader(io.NewSectionReader(f, offset, n), n))
}

// Stat implements backend.Backend.
func (b *Backend) Stat(ctx context.Context, h backend.Handle) (backend.FileInfo, error) {
	if err := h.Valid(); err != nil {
		return backend.FileInfo{}, backend.Permanent(fmt.Errorf("stat: %w", err))
	}
	fi, err := os.Stat(b.path(h))
	if err != nil {
		return backend.FileInfo{}, mapError(fmt.Errorf("stat %v: %w", h, err), err)
	}
	return backend.FileInfo{Name: h.Name, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// listConcurrency bounds the data/xx folders read at a time. A local disk
// gains little from more than one, but a repository folder is often a NAS
// mount (NFS, SMB) where every folder costs round trips.
const listConcurrency = 4

// List implements backend.Backend.
func (b *Backend) List(ctx context.Context, t backend.FileType, fn func(backend.FileInfo) error) error {
	dir := filepath.Join(b.dir, string(t))
	if t == backend.ConfigFile {
		return backend.Permanent(fmt.Errorf("list %v: config is a single file", t))
	}
	if t != backend.PackFile {
		files, err := b.readDir(ctx, dir)
		if err != nil {
			return err
		}
		return each(ctx, files, fn)
	}
	subs, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return mapError(fmt.Errorf("list %v: %w", t, err), err)
	}
	var dirs []string
	for _, sub := range subs {
		if sub.IsDir() && len(sub.Name()) == 2 {
			dirs = append(dirs, filepath.Join(dir, sub.Name()))
		}
	}
	return backend.EachFolder(ctx, dirs, listConcurrency, b.readDir, func(files []backend.FileInfo) error {
		return each(ctx, files, fn)
	})
}

func each(ctx context.Context, files []backend.FileInfo, fn func(backend.FileInfo) error) error {
	for _, fi := range files {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(fi); err != nil {
			return err
		}
	}
	return nil
}

// readDir returns the saved files in dir: neither folders nor temporary
// files. A missing dir holds none.
func (b *Backend) readDir(ctx context.Context, dir string) ([]backend.FileInfo, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, mapError(fmt.Errorf("list %s: %w", dir, err), err)
	}
	files := make([]backend.FileInfo, 0, len(entries))
	for _, e := range entries {
		if e.IsDir() || backend.IsTemp(e.Name()) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		fi, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed since ReadDir
		}
		if err != nil {
			return nil, mapError(fmt.Errorf("list %s: %w", dir, err), err)
		}
		files = append(files, backend.FileInfo{Name: e.Name(), Size: fi.Size(), ModTime: fi.ModTime()})
	}
	return files, nil
}

// CleanTemp implements backend.TempCleaner.
func (b *Backend) CleanTemp(ctx context.Context, olderThan time.Time) (int, error) {
	dirs := []string{b.dir}
	for _, d := range backend.Dirs() {
		dirs = append(dirs, filepath.Join(b.dir, filepath.FromSlash(d)))
	}
	removed := 0
	err := backend.EachFolder(ctx, dirs, listConcurrency, func(ctx context.Context, dir string) (int, error) {
		return cleanTemp(ctx, dir, olderThan)
	}, func(n int) error {
		removed += n
		return nil
	})
	if err != nil {
		return removed, fmt.Errorf("clean temporary files: %w", err)
	}
	return removed, nil
}

// cleanTemp removes the temporary files in dir modified before olderThan.
func cleanTemp(ctx context.Context, dir string, olderThan time.Time) (removed int, err error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, mapError(fmt.Errorf("list %s: %w", dir, err), err)
	}
	for _, e := range entries {
		if e.IsDir() || !backend.IsTemp(e.Name()) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return removed, err
		}
		p := filepath.Join(dir, e.Name())
		fi, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // renamed into place or removed since ReadDir
		}
		if err != nil {
			return removed, mapError(fmt.Errorf("stat %s: %w", p, err), err)
		}
		if !fi.ModTime().Before(olderThan) {
			continue // a save may still be writing it
		}
		if err := os.Remove(p); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return removed, mapError(fmt.Errorf("remove %s: %w", p, err), err)
		}
		removed++
	}
	return removed, nil
}

// Remove implements backend.Backend.
func (b *Backend) Remove(ctx context.Context, h backend.Handle) error {
	if err := h.Valid(); err != nil {
		return backend.Permanent(fmt.Errorf("remove: %w", err))
	}
	if err := os.Remove(b.path(h)); err != nil {
		return mapError(fmt.Errorf("remove %v: %w", h, err), err)
	}
	return nil
}

// Close implements backend.Backend.
func (b *Backend) Close() error { return nil }
