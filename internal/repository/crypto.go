package repository

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"strings"
	"sync"

	"github.com/zeebo/blake3"
)

// Sizes of the sealed-box framing: nonce || ciphertext || tag.
const (
	nonceSize = 12
	tagSize   = 16
	// Overhead is what sealing adds to a plaintext.
	sealOverhead = nonceSize + tagSize
)

// masterKey is the secret every key slot wraps.
type masterKey struct {
	Enc         [32]byte // AES-256-GCM key for every blob and file
	MAC         [32]byte // BLAKE3 key for blob ids
	ChunkerSeed [32]byte // derives the chunker's gear table
}

func (k *masterKey) bytes() []byte {
	b := make([]byte, 0, 96)
	b = append(b, k.Enc[:]...)
	b = append(b, k.MAC[:]...)
	return append(b, k.ChunkerSeed[:]...)
}

func masterKeyFrom(b []byte) (*masterKey, error) {
	if len(b) != 96 {
		return nil, fmt.Errorf("master key has %d bytes, want 96", len(b))
	}
	var k masterKey
	copy(k.Enc[:], b[:32])
	copy(k.MAC[:], b[32:64])
	copy(k.ChunkerSeed[:], b[64:])
	return &k, nil
}

func newMasterKey() (*masterKey, error) {
	b := make([]byte, 96)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("generate master key: %w", err)
	}
	return masterKeyFrom(b)
}

// fileKind says what a sealed file (or a pack's header) is. From format 2
// on it is the file's associated data: an index file moved into
// snapshots/ fails authentication instead of being parsed as a snapshot.
type fileKind string

// The kinds of sealed files.
const (
	kindConfig     fileKind = "sitevault config"
	kindIndex      fileKind = "sitevault index"
	kindSnapshot   fileKind = "sitevault snapshot"
	kindLock       fileKind = "sitevault lock"
	kindPackHeader fileKind = "sitevault pack header"
)

// article names the kind for messages: "an index", "a snapshot".
func (k fileKind) article() string {
	name := string(k[len("sitevault "):])
	if strings.ContainsRune("aeiou", rune(name[0])) {
		return "an " + name
	}
	return "a " + name
}

// crypter seals and opens with one AES-256-GCM key and computes blob ids.
// It is safe for concurrent use.
type crypter struct {
	aead    cipher.AEAD
	hashers sync.Pool // *blake3.Hasher keyed with the MAC key
	// bound is set for format 2 and later: sealed files carry their kind
	// as associated data. Format 1 repositories are read and written
	// without, as they were made.
	bound bool
}

// newCrypter returns the crypter for a repository of format version format.
func newCrypter(k *masterKey, format int) (*crypter, error) {
	aead, err := newAEAD(k.Enc[:])
	if err != nil {
		return nil, err
	}
	mac := k.MAC
	c := &crypter{aead: aead, bound: format >= 2}
	c.hashers.New = func() any {
		h, err := blake3.NewKeyed(mac[:])
		if err != nil {
			panic(err) // the key is always 32 bytes
		}
		return h
	}
	return c, nil
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("aes: %w", err)
	}
	return cipher.NewGCM(block)
}

// sealAppend appends nonce || AES-GCM(plaintext, ad) to dst.
func sealAppend(aead cipher.AEAD, dst, plaintext, ad []byte) []byte {
	off := len(dst)
	dst = append(dst, make([]byte, nonceSize)...)
	nonce := dst[off : off+nonceSize]
	if _, err := rand.Read(nonce); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err)) // never returns an error since Go 1.24
	}
	return aead.Seal(dst, nonce, plaintext, ad)
}

// openAppend authenticates and decrypts a sealed box, appending the
// plaintext to dst. Any failure wraps ErrDamaged.
func openAppend(aead cipher.AEAD, dst, sealed, ad []byte) ([]byte, error) {
	if len(sealed) < sealOverhead {
		return nil, fmt.Errorf("decrypt: %d bytes is shorter than a sealed box: %w", len(sealed), ErrDamaged)
	}
	out, err := aead.Open(dst, sealed[:nonceSize], sealed[nonceSize:], ad)
	if err != nil {
		return nil, fmt.Errorf("decrypt: authentication failed: %w", ErrDamaged)
	}
	return out, nil
}

// seal and open handle blobs, which carry no associated data: a blob's
// id is the keyed hash of its plaintext, checked on every read, and the
// index that says where a blob is, is itself authenticated.
func (c *crypter) seal(dst, plaintext []byte) []byte { return sealAppend(c.aead, dst, plaintext, nil) }

func (c *crypter) open(dst, sealed []byte) ([]byte, error) {
	return openAppend(c.aead, dst, sealed, nil)
}

// ad returns the associated data binding a sealed file to its kind (and
// to extra, such as the repository id), or nil in a format 1 repository.
func (c *crypter) ad(kind fileKind, extra ...string) []byte {
	if !c.bound {
		return nil
	}
	b := []byte(kind)
	for _, e := range extra {
		b = append(b, 0)
		b = append(b, e...)
	}
	return b
}

// sealKind seals plaintext as a piece of kind (a pack header).
func (c *crypter) sealKind(kind fileKind, dst, plaintext []byte) []byte {
	return sealAppend(c.aead, dst, plaintext, c.ad(kind))
}

// openKind opens a sealed piece of kind; one of another kind (from format
// 2 on) fails as damaged.
func (c *crypter) openKind(kind fileKind, dst, sealed []byte) ([]byte, error) {
	out, err := openAppend(c.aead, dst, sealed, c.ad(kind))
	if err != nil && c.bound {
		return nil, fmt.Errorf("%w (or it is not %s)", err, kind.article())
	}
	return out, err
}

// blobID is the keyed BLAKE3-256 of a blob's plaintext.
func (c *crypter) blobID(data []byte) ID {
	h := c.hashers.Get().(*blake3.Hasher)
	h.Reset()
	_, _ = h.Write(data)
	var id ID
	h.Sum(id[:0])
	c.hashers.Put(h)
	return id
}

// fileID names a stored file: SHA-256 of its bytes.
func fileID(b []byte) ID { return sha256.Sum256(b) }
