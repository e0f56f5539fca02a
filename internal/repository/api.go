package repository

// This file is the engine's public surface: the types and calls the rest of
// sitevault (archiver, backup, restore, mysql segments, the CLI) relies on.
// Bodies live in the other files of the package.

import (
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/sitevault/sitevault/internal/backend"
)

// ID names a blob, tree, pack, index or snapshot: 32 bytes. Blob ids are
// keyed hashes of the plaintext (so they reveal nothing of the content);
// file ids (packs, index, snapshots) are SHA-256 of the stored bytes.
type ID [32]byte

// String returns the id in lower-case hex.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// Short returns the first 8 hex characters, for display.
func (id ID) Short() string { return id.String()[:8] }

// IsNull reports whether id is the zero id.
func (id ID) IsNull() bool { return id == ID{} }

// MarshalText encodes id as hex (JSON, maps).
func (id ID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText decodes hex.
func (id *ID) UnmarshalText(b []byte) error {
	p, err := ParseID(string(b))
	if err != nil {
		return err
	}
	*id = p
	return nil
}

// ParseID parses a 64-character hex id.
func ParseID(s string) (ID, error) {
	var id ID
	if len(s) != 2*len(id) {
		return id, fmt.Errorf("invalid id %q: want %d hex characters", s, 2*len(id))
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, fmt.Errorf("invalid id %q: %w", s, err)
	}
	return id, nil
}

// BlobType tells data chunks from tree blobs.
type BlobType uint8

// Blob types.
const (
	DataBlob BlobType = 1 // a chunk of file (or database segment) content
	TreeBlob BlobType = 2 // a serialized Tree
)

func (t BlobType) String() string {
	switch t {
	case DataBlob:
		return "data"
	case TreeBlob:
		return "tree"
	}
	return fmt.Sprintf("blobtype(%d)", uint8(t))
}

// NodeType is the kind of a tree node.
type NodeType string

// Node types.
const (
	NodeDir     NodeType = "dir"
	NodeFile    NodeType = "file"
	NodeSymlink NodeType = "symlink"
)

// Node is one entry of a Tree: a directory (Subtree), a file (Content), or a
// symbolic link (LinkTarget). Database segments are stored as file nodes
// whose Meta carries the segment's key range and checksum.
type Node struct {
	// Name is byte-exact: it may hold newlines or invalid UTF-8 and is
	// encoded so that it round-trips unchanged.
	Name       string
	Type       NodeType
	Mode       uint32 // io/fs FileMode bits
	ModTime    time.Time
	ChangeTime time.Time // zero if unknown
	Inode      uint64    // zero if unknown
	Dev        uint64    // zero if unknown
	Size       int64
	LinkTarget string            // symlinks: byte-exact
	Content    []ID              // files: data blobs, in order
	Subtree    *ID               // dirs: the tree blob
	Meta       map[string]string // free-form, for layers above (database segments)
}

// Tree is a directory: nodes sorted by Name (byte order), names unique.
type Tree struct {
	Nodes []*Node
}

// Find returns the node called name, or nil.
func (t *Tree) Find(name string) *Node {
	for _, n := range t.Nodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// Snapshot is one restore point: a tree and what it is of.
type Snapshot struct {
	ID       ID        `json:"-"` // set when loaded or saved
	Time     time.Time `json:"time"`
	Site     string    `json:"site"`
	Hostname string    `json:"hostname,omitempty"`
	// Trigger says what started the backup: manual, daily, realtime,
	// pre-restore, … (the layers above define the words).
	Trigger string            `json:"trigger,omitempty"`
	Tree    ID                `json:"tree"`
	Parent  *ID               `json:"parent,omitempty"`
	Tags    []string          `json:"tags,omitempty"`
	Meta    map[string]string `json:"meta,omitempty"`
	Summary *Summary          `json:"summary,omitempty"`
}

// Summary holds a backup's statistics, stored with its snapshot.
type Summary struct {
	FilesNew        int   `json:"files_new"`
	FilesChanged    int   `json:"files_changed"`
	FilesUnchanged  int   `json:"files_unchanged"`
	DirsTotal       int   `json:"dirs_total"`
	BytesRead       int64 `json:"bytes_read"`
	BytesTotal      int64 `json:"bytes_total"`
	BlobsAdded      int   `json:"blobs_added"`
	BytesAdded      int64 `json:"bytes_added"`        // plaintext bytes of new blobs
	BytesAddedSaved int64 `json:"bytes_added_stored"` // after compression and encryption
	Partial         bool  `json:"partial,omitempty"`
	// Skipped and Warnings are human-readable lines for the backup report.
	Skipped  []string  `json:"skipped,omitempty"`
	Warnings []string  `json:"warnings,omitempty"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
}

// KeyInfo describes a key slot without revealing anything secret.
type KeyInfo struct {
	ID       string    `json:"id"`
	Label    string    `json:"label,omitempty"`
	Hostname string    `json:"hostname,omitempty"`
	Username string    `json:"username,omitempty"`
	Created  time.Time `json:"created"`
	Current  bool      `json:"current"` // the slot this session opened with
}

// Sentinel errors callers branch on (exit codes, HTTP statuses).
var (
	// ErrWrongPassword: no key slot opens with the given password.
	ErrWrongPassword = errors.New("wrong password: no key of this repository opens with it")
	// ErrNotRepository: the location holds no sitevault repository.
	ErrNotRepository = errors.New("not a sitevault repository")
	// ErrRepositoryExists: init found a repository already there.
	ErrRepositoryExists = errors.New("a repository already exists there")
	// ErrNewerFormat: the repository was written by a newer sitevault.
	ErrNewerFormat = errors.New("repository format is newer than this sitevault understands: upgrade sitevault")
	// ErrDamaged: data read from the repository failed authentication or
	// does not parse (a flipped byte, a truncated pack, a bad index).
	ErrDamaged = errors.New("repository data is damaged")
	// ErrBlobNotFound: no index names the blob.
	ErrBlobNotFound = errors.New("blob not found in the index")
	// ErrLastKey: removing the only key slot would lock everyone out.
	ErrLastKey = errors.New("refusing to remove the last key")
)

// IsDamage reports whether err is the repository's stored data being
// damaged or missing (ErrDamaged, ErrBlobNotFound, a pack the backend
// lacks), as opposed to the repository being unreachable. Restores give up
// only the file or table such an error belongs to and go on with the rest.
func IsDamage(err error) bool {
	return errors.Is(err, ErrDamaged) || errors.Is(err, ErrBlobNotFound) || errors.Is(err, backend.ErrNotExist)
}
