package repository

// Stubs: the signatures the rest of sitevault codes against. The engine's
// owner replaces each with its implementation in the package's real files
// and deletes this file.

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/sitevault/sitevault/internal/backend"
)

var errTODO = errors.New("repository: not implemented yet")

// Options tune an opened repository.
type Options struct {
	// PackSize is the target pack size; 0 means the default (16 MiB).
	PackSize int
	// Connections bounds concurrent backend uploads; 0 means a default.
	Connections int
	// Now is the clock; nil means time.Now. Tests age data with it.
	Now func() time.Time
}

// InitOptions choose a new repository's parameters.
type InitOptions struct {
	Options
	// KDF cost override for tests (0 = default, strong).
	ScryptN int
	Label   string // label of the first key slot
}

// Repository is an opened, unlocked repository. It is safe for concurrent use.
type Repository struct{}

// Init creates a repository on be with one key slot for password.
func Init(ctx context.Context, be backend.Backend, password string, opts InitOptions) (*Repository, error) {
	return nil, errTODO
}

// Open unlocks the repository on be with password.
func Open(ctx context.Context, be backend.Backend, password string, opts Options) (*Repository, error) {
	return nil, errTODO
}

// Backend returns the backend the repository lives on.
func (r *Repository) Backend() backend.Backend { return nil }

// ID returns the repository's id.
func (r *Repository) ID() string { return "" }

// Close flushes nothing and releases resources; call Flush first to persist.
func (r *Repository) Close() error { return errTODO }

// SaveBlob stores data as a blob of type t unless the index already has it
// (known reports that). Safe for concurrent use; data may be reused after
// the call returns.
func (r *Repository) SaveBlob(ctx context.Context, t BlobType, data []byte) (id ID, known bool, err error) {
	return ID{}, false, errTODO
}

// SaveStream chunks rd with the repository's content-defined chunker and
// saves every chunk as a data blob; it returns the chunk ids in order and
// the number of bytes read. Memory is bounded by a few chunks.
func (r *Repository) SaveStream(ctx context.Context, rd io.Reader) (ids []ID, size int64, err error) {
	return nil, 0, errTODO
}

// SaveTree serializes and saves a tree blob.
func (r *Repository) SaveTree(ctx context.Context, t *Tree) (ID, error) { return ID{}, errTODO }

// Flush uploads every unfinished pack and writes the index for them. Call it
// before SaveSnapshot.
func (r *Repository) Flush(ctx context.Context) error { return errTODO }

// SaveSnapshot writes sn (after Flush) and sets sn.ID.
func (r *Repository) SaveSnapshot(ctx context.Context, sn *Snapshot) (ID, error) {
	return ID{}, errTODO
}

// LoadBlob reads, authenticates and decompresses a blob into buf (grown as
// needed). A damaged blob is an error wrapping ErrDamaged.
func (r *Repository) LoadBlob(ctx context.Context, t BlobType, id ID, buf []byte) ([]byte, error) {
	return nil, errTODO
}

// HasBlob reports whether the index holds the blob.
func (r *Repository) HasBlob(t BlobType, id ID) bool { return false }

// WriteContent writes the concatenated content of data blobs ids to w,
// loading them with bounded memory (and in parallel where it helps).
func (r *Repository) WriteContent(ctx context.Context, ids []ID, w io.Writer) error { return errTODO }

// LoadTree loads and decodes a tree blob.
func (r *Repository) LoadTree(ctx context.Context, id ID) (*Tree, error) { return nil, errTODO }

// LoadSnapshot loads one snapshot by id.
func (r *Repository) LoadSnapshot(ctx context.Context, id ID) (*Snapshot, error) {
	return nil, errTODO
}

// FindSnapshot resolves a unique id prefix (at least 4 hex characters) or "latest" (for site, if not empty).
func (r *Repository) FindSnapshot(ctx context.Context, prefix, site string) (*Snapshot, error) {
	return nil, errTODO
}

// Snapshots lists every snapshot, oldest first.
func (r *Repository) Snapshots(ctx context.Context) ([]*Snapshot, error) { return nil, errTODO }

// AddKey adds a key slot for password.
func (r *Repository) AddKey(ctx context.Context, password, label string) (KeyInfo, error) {
	return KeyInfo{}, errTODO
}

// Keys lists key slots.
func (r *Repository) Keys(ctx context.Context) ([]KeyInfo, error) { return nil, errTODO }

// RemoveKey removes a key slot (not the last one: ErrLastKey).
func (r *Repository) RemoveKey(ctx context.Context, id string) error { return errTODO }
