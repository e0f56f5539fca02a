// Package seal encrypts small secrets (SSH passwords, key passphrases,
// database passwords) before the catalog stores them.
//
// A Sealer holds a random 256-bit key kept in a file in the data home
// (secret.key, mode 0600, created on first use). Sealed values are
// AES-256-GCM ciphertexts bound to a context string (the site and field
// they belong to), so a sealed value copied into another row or column does
// not open. The key file protects the secrets from someone who reads the
// catalog database or its backups; it does not protect them from someone who
// can read the data home as the service user.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// KeyFileName is the key file's name inside the data home.
const KeyFileName = "secret.key"

// version prefixes every sealed value so the format can change later.
const version = "v1:"

// ErrOpen means a sealed value could not be opened: it was damaged, sealed
// under another key (the key file was replaced) or for another context.
var ErrOpen = errors.New("cannot open sealed value")

// Sealer seals and opens secrets under one key. It is safe for concurrent use.
type Sealer struct {
	aead cipher.AEAD
	// missing, for an Ephemeral sealer, is the key file this machine
	// lacks (named when a value does not open).
	missing string
}

// Ephemeral returns a Sealer with a random key that is never saved, for a
// command that only reads a catalog on a machine without its key file
// (keyFile, where it would be): values sealed elsewhere do not open, and
// the error says the key file is missing rather than creating one.
func Ephemeral(keyFile string) (*Sealer, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	s, err := New(key)
	if err != nil {
		return nil, err
	}
	s.missing = keyFile
	return s, nil
}

// New returns a Sealer for a 32-byte key.
func New(key []byte) (*Sealer, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("seal key: want 32 bytes, have %d", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("seal key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("seal key: %w", err)
	}
	return &Sealer{aead: aead}, nil
}

// OpenKeyFile returns a Sealer for the key in path, creating the file with
// a new random key (mode 0600) if it does not exist. The key is stored as
// 64 hex characters and a newline.
func OpenKeyFile(path string) (*Sealer, error) {
	key, err := readKey(path)
	if errors.Is(err, fs.ErrNotExist) {
		key, err = createKey(path)
	}
	if err != nil {
		return nil, err
	}
	return New(key)
}

// readKey reads the key file, refusing it when other users may read it
// (checked on the open file, so a swap between check and read is no use).
func readKey(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("seal key file: %w", err)
	}
	if err := CheckMode(path, fi, "seal key file"); err != nil {
		return nil, err
	}
	b, err := io.ReadAll(io.LimitReader(f, 1024))
	if err != nil {
		return nil, fmt.Errorf("seal key file: %w", err)
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(key) != 32 {
		return nil, fmt.Errorf("seal key file %s is damaged: want 64 hex characters; restore it from a backup (secrets sealed under it cannot be opened without it)", path)
	}
	return key, nil
}

// createKey writes a new key with O_EXCL, so two processes starting at once
// agree on one key: the loser reads the winner's file.
func createKey(path string) ([]byte, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("create seal key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create seal key: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".secret.key-*")
	if err != nil {
		return nil, fmt.Errorf("create seal key: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("create seal key: %w", err)
	}
	if _, err := tmp.WriteString(hex.EncodeToString(key) + "\n"); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("create seal key: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("create seal key: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("create seal key: %w", err)
	}
	// Link, not rename: it fails if another process created the key first.
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return readKey(path)
		}
		return nil, fmt.Errorf("create seal key: %w", err)
	}
	return key, nil
}

// Seal encrypts plaintext for context and returns printable text
// ("v1:" + base64 of nonce and ciphertext). An empty plaintext seals to "".
func (s *Sealer) Seal(plaintext []byte, context string) string {
	if len(plaintext) == 0 {
		return ""
	}
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plaintext)+s.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		panic("seal: crypto/rand failed: " + err.Error()) // crypto/rand does not fail on Linux
	}
	out := s.aead.Seal(nonce, nonce, plaintext, []byte(context))
	return version + base64.RawStdEncoding.EncodeToString(out)
}

// Open decrypts a value Seal returned for the same context. "" opens to nil.
// A damaged value, another key or another context gives ErrOpen.
func (s *Sealer) Open(sealed, context string) ([]byte, error) {
	if sealed == "" {
		return nil, nil
	}
	rest, ok := strings.CutPrefix(sealed, version)
	if !ok {
		return nil, fmt.Errorf("%w: unknown format", ErrOpen)
	}
	b, err := base64.RawStdEncoding.DecodeString(rest)
	if err != nil || len(b) < s.aead.NonceSize()+s.aead.Overhead() {
		return nil, fmt.Errorf("%w: damaged", ErrOpen)
	}
	n := s.aead.NonceSize()
	pt, err := s.aead.Open(nil, b[:n], b[n:], []byte(context))
	if err != nil && s.missing != "" {
		return nil, fmt.Errorf("%w: this machine has no key file %s; copy it from the machine that stored the secret", ErrOpen, s.missing)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: wrong key or damaged (was %s replaced?)", ErrOpen, KeyFileName)
	}
	return pt, nil
}
