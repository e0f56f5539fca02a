// Package mem is an in-memory Backend for unit tests. It keeps the contract
// (atomic saves, exact ranges, ErrNotExist) so tests of the layers above run
// fast; the real backends are tested against real servers.
package mem

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/sitevault/sitevault/internal/backend"
)

var _ backend.Backend = (*Backend)(nil)

type file struct {
	data    []byte
	modTime time.Time
}

// Backend keeps files in a map.
type Backend struct {
	mu    sync.Mutex
	files map[backend.Handle]file
	// Now, if set, stamps saved files; tests use it to age files.
	Now func() time.Time
}

// New returns an empty in-memory backend.
func New() *Backend { return &Backend{files: make(map[backend.Handle]file)} }

// Location implements backend.Backend.
func (b *Backend) Location() string { return "mem:" }

func (b *Backend) now() time.Time {
	if b.Now != nil {
		return b.Now()
	}
	return time.Now()
}

// Save implements backend.Backend.
func (b *Backend) Save(ctx context.Context, h backend.Handle, rd io.ReadSeeker, size int64) error {
	if err := h.Valid(); err != nil {
		return backend.Permanent(err)
	}
	if _, err := rd.Seek(0, io.SeekStart); err != nil {
		return err
	}
	data, err := io.ReadAll(io.LimitReader(rd, size+1))
	if err != nil {
		return fmt.Errorf("save %v: %w", h, err)
	}
	if int64(len(data)) != size {
		return backend.Permanent(fmt.Errorf("save %v: read %d bytes, want %d", h, len(data), size))
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.files[h]; ok && h.Type == backend.ConfigFile {
		return fmt.Errorf("save %v: %w", h, backend.ErrExist)
	}
	b.files[h] = file{data: data, modTime: b.now()}
	return nil
}

// Load implements backend.Backend.
func (b *Backend) Load(ctx context.Context, h backend.Handle, length int, offset int64, fn func(io.Reader) error) error {
	b.mu.Lock()
	f, ok := b.files[h]
	b.mu.Unlock()
	if !ok {
		return fmt.Errorf("load %v: %w", h, backend.ErrNotExist)
	}
	if offset < 0 || length < 0 || offset > int64(len(f.data)) {
		return backend.Permanent(fmt.Errorf("load %v: range %d+%d outside file of %d bytes: %w", h, offset, length, len(f.data), io.ErrUnexpectedEOF))
	}
	data := f.data[offset:]
	if length > 0 {
		if length > len(data) {
			return backend.Permanent(fmt.Errorf("load %v: range %d+%d outside file of %d bytes: %w", h, offset, length, len(f.data), io.ErrUnexpectedEOF))
		}
		data = data[:length]
	}
	return fn(bytes.NewReader(data))
}

// Stat implements backend.Backend.
func (b *Backend) Stat(ctx context.Context, h backend.Handle) (backend.FileInfo, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	f, ok := b.files[h]
	if !ok {
		return backend.FileInfo{}, fmt.Errorf("stat %v: %w", h, backend.ErrNotExist)
	}
	return backend.FileInfo{Name: h.Name, Size: int64(len(f.data)), ModTime: f.modTime}, nil
}

// List implements backend.Backend.
func (b *Backend) List(ctx context.Context, t backend.FileType, fn func(backend.FileInfo) error) error {
	b.mu.Lock()
	var infos []backend.FileInfo
	for h, f := range b.files {
		if h.Type == t {
			infos = append(infos, backend.FileInfo{Name: h.Name, Size: int64(len(f.data)), ModTime: f.modTime})
		}
	}
	b.mu.Unlock()
	for _, fi := range infos {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(fi); err != nil {
			return err
		}
	}
	return nil
}

// Remove implements backend.Backend.
func (b *Backend) Remove(ctx context.Context, h backend.Handle) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.files[h]; !ok {
		return fmt.Errorf("remove %v: %w", h, backend.ErrNotExist)
	}
	delete(b.files, h)
	return nil
}

// Close implements backend.Backend.
func (b *Backend) Close() error { return nil }

// Corrupt flips the byte at offset of h; tests use it to damage a repository.
func (b *Backend) Corrupt(h backend.Handle, offset int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	f := b.files[h]
	f.data = bytes.Clone(f.data)
	f.data[offset] ^= 0x01
	b.files[h] = f
}
