package repository

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"runtime"
	"sort"
	"time"

	"golang.org/x/crypto/scrypt"

	"github.com/sitevault/sitevault/internal/backend"
)

// Default KDF parameters: scrypt N=2^17, r=8, p=1 costs about 128 MiB and
// a few hundred milliseconds per attempt.
const (
	defaultScryptN = 1 << 16
	defaultScryptR = 8
	defaultScryptP = 1
)

// keyFile is the JSON stored as keys/<id>.
type keyFile struct {
	Version  int       `json:"version"`
	KDF      string    `json:"kdf"`
	N        int       `json:"n"`
	R        int       `json:"r"`
	P        int       `json:"p"`
	Salt     []byte    `json:"salt"`
	Created  time.Time `json:"created"`
	Hostname string    `json:"hostname,omitempty"`
	Username string    `json:"username,omitempty"`
	Label    string    `json:"label,omitempty"`
	// Data is the master key (96 bytes: enc || mac || chunker seed) sealed
	// with AES-256-GCM under the scrypt-derived key.
	Data []byte `json:"data"`
}

// parseKeyFile decodes and validates a key file; errors wrap ErrDamaged.
func parseKeyFile(b []byte) (*keyFile, error) {
	var kf keyFile
	if err := json.Unmarshal(b, &kf); err != nil {
		return nil, fmt.Errorf("parse: %v: %w", err, ErrDamaged)
	}
	if kf.Version != 1 {
		if kf.Version > 1 {
			return nil, fmt.Errorf("key version %d: %w", kf.Version, ErrNewerFormat)
		}
		return nil, fmt.Errorf("key version %d: %w", kf.Version, ErrDamaged)
	}
	if err := validKDF(kf.KDF, kf.N, kf.R, kf.P); err != nil {
		return nil, err
	}
	if len(kf.Salt) < 16 || len(kf.Data) != 96+sealOverhead {
		return nil, fmt.Errorf("salt of %d or key of %d bytes: %w", len(kf.Salt), len(kf.Data), ErrDamaged)
	}
	return &kf, nil
}

// validKDF bounds the parameters a (possibly hostile) key file may ask for.
func validKDF(kdf string, n, r, p int) error {
	if kdf != "scrypt" {
		return fmt.Errorf("unknown kdf %q: %w", kdf, ErrDamaged)
	}
	if n < 2 || n&(n-1) != 0 || n > 1<<22 || r < 1 || r > 32 || p < 1 || p > 16 || n*r > 1<<25 {
		return fmt.Errorf("scrypt parameters N=%d r=%d p=%d out of range: %w", n, r, p, ErrDamaged)
	}
	return nil
}

func (kf *keyFile) wrappingKey(password string) ([]byte, error) {
	k, err := scrypt.Key([]byte(password), kf.Salt, kf.N, kf.R, kf.P, 32)
	// scrypt's N×r×128 bytes (64 MiB by default) are garbage now; collect
	// them at once, or the runtime sizes the heap goal from them and the
	// whole run carries them (82 instead of 145 MB peak for a restore).
	runtime.GC()
	if err != nil {
		return nil, fmt.Errorf("scrypt: %w", err)
	}
	return k, nil
}

// unwrap returns the master key, or ErrWrongPassword.
func (kf *keyFile) unwrap(password string) (*masterKey, error) {
	wk, err := kf.wrappingKey(password)
	if err != nil {
		return nil, err
	}
	aead, err := newAEAD(wk)
	if err != nil {
		return nil, err
	}
	raw, err := openAppend(aead, nil, kf.Data)
	if err != nil {
		return nil, ErrWrongPassword
	}
	return masterKeyFrom(raw)
}

func newKeyFile(mk *masterKey, password, label string, n, r, p int, now time.Time) ([]byte, *keyFile, error) {
	kf := &keyFile{Version: 1, KDF: "scrypt", N: n, R: r, P: p, Created: now.UTC(), Label: label, Salt: make([]byte, 32)}
	if err := validKDF(kf.KDF, n, r, p); err != nil {
		return nil, nil, fmt.Errorf("key parameters: %w", err)
	}
	if _, err := rand.Read(kf.Salt); err != nil {
		return nil, nil, err
	}
	kf.Hostname, _ = os.Hostname()
	if u, err := user.Current(); err == nil {
		kf.Username = u.Username
	}
	wk, err := kf.wrappingKey(password)
	if err != nil {
		return nil, nil, err
	}
	aead, err := newAEAD(wk)
	if err != nil {
		return nil, nil, err
	}
	kf.Data = sealAppend(aead, nil, mk.bytes())
	b, err := json.Marshal(kf)
	if err != nil {
		return nil, nil, err
	}
	return b, kf, nil
}

// saveKeyFile stores a new key slot; its name is the SHA-256 of its bytes.
func saveKeyFile(ctx context.Context, be backend.Backend, b []byte) (string, error) {
	name := fileID(b).String()
	h := backend.Handle{Type: backend.KeyFile, Name: name}
	if err := be.Save(ctx, h, bytes.NewReader(b), int64(len(b))); err != nil {
		return "", fmt.Errorf("save key %v: %w", h, err)
	}
	return name, nil
}

func loadFile(ctx context.Context, be backend.Backend, h backend.Handle) ([]byte, error) {
	var b []byte
	err := be.Load(ctx, h, 0, 0, func(rd io.Reader) error {
		var err error
		b, err = io.ReadAll(rd)
		return err
	})
	return b, err
}

// unlock tries every key slot with password.
func unlock(ctx context.Context, be backend.Backend, password string) (*masterKey, string, *keyFile, error) {
	var names []string
	err := be.List(ctx, backend.KeyFile, func(fi backend.FileInfo) error {
		names = append(names, fi.Name)
		return nil
	})
	if err != nil {
		return nil, "", nil, fmt.Errorf("list keys: %w", err)
	}
	if len(names) == 0 {
		return nil, "", nil, fmt.Errorf("no key files in keys/: %w", ErrNotRepository)
	}
	sort.Strings(names)
	var damaged []error
	for _, name := range names {
		h := backend.Handle{Type: backend.KeyFile, Name: name}
		b, err := loadFile(ctx, be, h)
		if err != nil {
			damaged = append(damaged, fmt.Errorf("load key %v: %w", h, err))
			continue
		}
		kf, err := parseKeyFile(b)
		if err != nil {
			damaged = append(damaged, fmt.Errorf("key file %v: %w", h, err))
			continue
		}
		mk, err := kf.unwrap(password)
		if errors.Is(err, ErrWrongPassword) {
			continue
		}
		if err != nil {
			damaged = append(damaged, fmt.Errorf("key file %v: %w", h, err))
			continue
		}
		return mk, name, kf, nil
	}
	if len(damaged) > 0 {
		return nil, "", nil, fmt.Errorf("%w; %w", ErrWrongPassword, errors.Join(damaged...))
	}
	return nil, "", nil, ErrWrongPassword
}

// AddKey adds a key slot for password, with the KDF cost of the slot this
// session opened with.
func (r *Repository) AddKey(ctx context.Context, password, label string) (KeyInfo, error) {
	b, kf, err := newKeyFile(r.mk, password, label, r.kdf.N, r.kdf.R, r.kdf.P, r.now())
	if err != nil {
		return KeyInfo{}, fmt.Errorf("add key: %w", err)
	}
	name, err := saveKeyFile(ctx, r.be, b)
	if err != nil {
		return KeyInfo{}, fmt.Errorf("add key: %w", err)
	}
	return keyInfo(name, kf, false), nil
}

func keyInfo(name string, kf *keyFile, current bool) KeyInfo {
	return KeyInfo{ID: name, Label: kf.Label, Hostname: kf.Hostname, Username: kf.Username, Created: kf.Created, Current: current}
}

// Keys lists key slots, oldest first. A damaged key file is an error.
func (r *Repository) Keys(ctx context.Context) ([]KeyInfo, error) {
	var names []string
	if err := r.be.List(ctx, backend.KeyFile, func(fi backend.FileInfo) error {
		names = append(names, fi.Name)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	var out []KeyInfo
	for _, name := range names {
		h := backend.Handle{Type: backend.KeyFile, Name: name}
		b, err := loadFile(ctx, r.be, h)
		if err != nil {
			return nil, fmt.Errorf("load key %v: %w", h, err)
		}
		kf, err := parseKeyFile(b)
		if err != nil {
			return nil, fmt.Errorf("key file %v: %w", h, err)
		}
		out = append(out, keyInfo(name, kf, name == r.keyName))
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.Before(out[j].Created)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// RemoveKey removes a key slot by id (or unique prefix). Removing the
// last slot fails with ErrLastKey.
func (r *Repository) RemoveKey(ctx context.Context, id string) error {
	keys, err := r.Keys(ctx)
	if err != nil {
		return fmt.Errorf("remove key: %w", err)
	}
	var match []KeyInfo
	for _, k := range keys {
		if len(id) >= 4 && len(k.ID) >= len(id) && k.ID[:len(id)] == id {
			match = append(match, k)
		}
	}
	switch {
	case len(match) == 0:
		return fmt.Errorf("remove key %q: %w", id, backend.ErrNotExist)
	case len(match) > 1:
		return fmt.Errorf("remove key %q: prefix matches %d keys", id, len(match))
	case len(keys) == 1:
		return fmt.Errorf("remove key %q: %w", id, ErrLastKey)
	}
	if err := r.be.Remove(ctx, backend.Handle{Type: backend.KeyFile, Name: match[0].ID}); err != nil {
		return fmt.Errorf("remove key %q: %w", id, err)
	}
	return nil
}
