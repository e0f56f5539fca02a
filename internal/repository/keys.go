package repository

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"runtime"
	"sort"
	"strconv"
	"time"

	"golang.org/x/crypto/scrypt"

	"github.com/sitevault/sitevault/internal/backend"
)

// Default KDF parameters: scrypt N=2^16, r=8, p=1 costs 64 MiB
// (128·N·r bytes) and a few hundred milliseconds per attempt.
const (
	defaultScryptN = 1 << 16
	defaultScryptR = 8
	defaultScryptP = 1
)

// RandomKeyScryptN is the KDF cost for a slot whose password is a generated
// random key (sitevault init's key file: 256 random bits). Stretching a
// password makes each guess of a low-entropy secret expensive; a 256-bit
// random key cannot be guessed, so the default's 0.27 s of CPU at every
// open would buy nothing (age's X25519 identities are used unstretched for
// the same reason). It is the smallest cost a slot may have, 2^10: about
// 1 MiB and a millisecond. A slot for a typed password always gets the
// default.
const RandomKeyScryptN = minScryptN

// Bounds on what a key file may ask for: Open runs the KDF of every slot
// until one opens, so a hostile slot must cost little more than ours. Up
// to 4 times the default memory (256 MiB) and 4 times its work (N·r·p).
const (
	minScryptN     = 1 << 10 // tests' cost and RandomKeyScryptN; weaker slots are refused
	maxScryptN     = 1 << 20
	maxScryptR     = 32
	maxScryptP     = 16
	maxScryptMem   = 256 << 20                                            // bytes: 128·N·r
	maxScryptWork  = 4 * defaultScryptN * defaultScryptR * defaultScryptP // N·r·p
	keyFileVersion = 2                                                    // written in format 2 repositories
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
	// MetaMAC (version 2) is HMAC-SHA256 under the scrypt-derived key of
	// every other field (metaBytes), so that a slot's hostname, label or
	// dates cannot be changed without the password.
	MetaMAC []byte `json:"meta_mac,omitempty"`
}

// metaBytes encodes the fields MetaMAC authenticates, each length-prefixed.
func (kf *keyFile) metaBytes() []byte {
	var b []byte
	add := func(s string) {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(s)))
		b = append(b, s...)
	}
	add("sitevault key")
	add(strconv.Itoa(kf.Version))
	add(kf.KDF)
	add(strconv.Itoa(kf.N))
	add(strconv.Itoa(kf.R))
	add(strconv.Itoa(kf.P))
	add(string(kf.Salt))
	add(kf.Created.UTC().Format(time.RFC3339Nano))
	add(kf.Hostname)
	add(kf.Username)
	add(kf.Label)
	return b
}

func (kf *keyFile) metaMAC(wk []byte) []byte {
	m := hmac.New(sha256.New, wk)
	m.Write(kf.metaBytes())
	return m.Sum(nil)
}

// parseKeyFile decodes and validates a key file; errors wrap ErrDamaged.
func parseKeyFile(b []byte) (*keyFile, error) {
	var kf keyFile
	if err := json.Unmarshal(b, &kf); err != nil {
		return nil, fmt.Errorf("parse: %v: %w", err, ErrDamaged)
	}
	if kf.Version != 1 && kf.Version != keyFileVersion {
		if kf.Version > keyFileVersion {
			return nil, fmt.Errorf("key version %d: %w", kf.Version, ErrNewerFormat)
		}
		return nil, fmt.Errorf("key version %d: %w", kf.Version, ErrDamaged)
	}
	if err := validKDF(kf.KDF, kf.N, kf.R, kf.P); err != nil {
		return nil, err
	}
	if len(kf.Salt) < 16 || len(kf.Salt) > 1024 || len(kf.Data) != 96+sealOverhead {
		return nil, fmt.Errorf("salt of %d or key of %d bytes: %w", len(kf.Salt), len(kf.Data), ErrDamaged)
	}
	if (kf.Version >= 2) != (len(kf.MetaMAC) == sha256.Size) {
		return nil, fmt.Errorf("key version %d with a metadata MAC of %d bytes: %w", kf.Version, len(kf.MetaMAC), ErrDamaged)
	}
	return &kf, nil
}

// parseKeyFileNamed parses the key file stored as keys/name: the name must
// be the SHA-256 of its bytes, as saveKeyFile names it.
func parseKeyFileNamed(name string, b []byte) (*keyFile, error) {
	if sum := fileID(b).String(); sum != name {
		return nil, fmt.Errorf("name is not the SHA-256 of the file's bytes (%s): %w", sum, ErrDamaged)
	}
	return parseKeyFile(b)
}

// validKDF bounds the parameters a (possibly hostile) key file may ask for.
func validKDF(kdf string, n, r, p int) error {
	if kdf != "scrypt" {
		return fmt.Errorf("unknown kdf %q: %w", kdf, ErrDamaged)
	}
	if n < minScryptN || n&(n-1) != 0 || n > maxScryptN || r < 1 || r > maxScryptR || p < 1 || p > maxScryptP {
		return fmt.Errorf("scrypt parameters N=%d r=%d p=%d out of range (N a power of two in 2^10…2^20, r ≤ %d, p ≤ %d): %w",
			n, r, p, maxScryptR, maxScryptP, ErrDamaged)
	}
	// n ≤ 2^20, r ≤ 32, p ≤ 16: the products fit in an int.
	if mem := 128 * n * r; mem > maxScryptMem {
		return fmt.Errorf("scrypt parameters N=%d r=%d p=%d out of range: they need %d MiB of memory, the limit is %d MiB: %w",
			n, r, p, mem>>20, maxScryptMem>>20, ErrDamaged)
	}
	if work := n * r * p; work > maxScryptWork {
		return fmt.Errorf("scrypt parameters N=%d r=%d p=%d out of range: %d times the default work, the limit is 4: %w",
			n, r, p, work/(defaultScryptN*defaultScryptR*defaultScryptP), ErrDamaged)
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

// unwrap returns the master key, or ErrWrongPassword. A version 2 slot
// whose metadata was changed is ErrDamaged.
func (kf *keyFile) unwrap(password string) (*masterKey, error) {
	wk, err := kf.wrappingKey(password)
	if err != nil {
		return nil, err
	}
	aead, err := newAEAD(wk)
	if err != nil {
		return nil, err
	}
	raw, err := openAppend(aead, nil, kf.Data, nil)
	if err != nil {
		return nil, ErrWrongPassword
	}
	if kf.Version >= 2 && !hmac.Equal(kf.metaMAC(wk), kf.MetaMAC) {
		return nil, fmt.Errorf("metadata (created, hostname, username, label or KDF) was changed after the slot was made: %w", ErrDamaged)
	}
	return masterKeyFrom(raw)
}

// newKeyFile makes a key slot of version (1 in format 1 repositories,
// keyFileVersion otherwise).
func newKeyFile(mk *masterKey, password, label string, version, n, r, p int, now time.Time) ([]byte, *keyFile, error) {
	kf := &keyFile{Version: version, KDF: "scrypt", N: n, R: r, P: p, Created: now.UTC(), Label: label, Salt: make([]byte, 32)}
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
	kf.Data = sealAppend(aead, nil, mk.bytes(), nil)
	if version >= 2 {
		kf.MetaMAC = kf.metaMAC(wk)
	}
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

// unlock tries every key slot with password. In a repository of format 2
// or later, version 1 slots (unauthenticated metadata) are refused.
func unlock(ctx context.Context, be backend.Backend, password string, format int) (*masterKey, string, *keyFile, error) {
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
	// Load and parse every slot first, then try the cheapest KDF first: a
	// generated key file's slot (RandomKeyScryptN) opens without paying for
	// the stretched slots of typed passwords beside it.
	type slot struct {
		name string
		kf   *keyFile
	}
	var slots []slot
	var damaged []error
	for _, name := range names {
		h := backend.Handle{Type: backend.KeyFile, Name: name}
		b, err := loadFile(ctx, be, h)
		if err != nil {
			damaged = append(damaged, fmt.Errorf("load key %v: %w", h, err))
			continue
		}
		kf, err := parseKeyFileNamed(name, b)
		if err == nil && format >= 2 && kf.Version < 2 {
			err = fmt.Errorf("key version %d in a format %d repository: %w", kf.Version, format, ErrDamaged)
		}
		if err != nil {
			damaged = append(damaged, fmt.Errorf("key file %v: %w (if you did not make this slot, remove it: sitevault key remove %s)", h, err, name))
			continue
		}
		slots = append(slots, slot{name, kf})
	}
	sort.SliceStable(slots, func(i, j int) bool {
		a, b := slots[i].kf, slots[j].kf
		return a.N*a.R*a.P < b.N*b.R*b.P
	})
	for _, s := range slots {
		mk, err := s.kf.unwrap(password)
		if errors.Is(err, ErrWrongPassword) {
			continue
		}
		if err != nil {
			damaged = append(damaged, fmt.Errorf("key file %v: %w", backend.Handle{Type: backend.KeyFile, Name: s.name}, err))
			continue
		}
		return mk, s.name, s.kf, nil
	}
	if len(damaged) > 0 {
		return nil, "", nil, fmt.Errorf("%w; %w", ErrWrongPassword, errors.Join(damaged...))
	}
	return nil, "", nil, ErrWrongPassword
}

// AddKey adds a key slot for password, with the KDF cost of the slot this
// session opened with, but never less than the default when that slot was a
// generated key file's (RandomKeyScryptN): the new password may be typed.
// Tests' cheap slots (TestScryptN, which equals RandomKeyScryptN) therefore
// add default-cost slots.
func (r *Repository) AddKey(ctx context.Context, password, label string) (KeyInfo, error) {
	version := 1
	if r.crypt.bound {
		version = keyFileVersion
	}
	n := max(r.kdf.N, defaultScryptN)
	b, kf, err := newKeyFile(r.mk, password, label, version, n, r.kdf.R, r.kdf.P, r.now())
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
		kf, err := parseKeyFileNamed(name, b)
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

// RemoveKey removes a key slot by id (or unique prefix), a damaged or
// hostile one included (Open names those). Removing the last working slot
// fails with ErrLastKey.
func (r *Repository) RemoveKey(ctx context.Context, id string) error {
	var names []string
	if err := r.be.List(ctx, backend.KeyFile, func(fi backend.FileInfo) error {
		names = append(names, fi.Name)
		return nil
	}); err != nil {
		return fmt.Errorf("remove key %q: list keys: %w", id, err)
	}
	var match []string
	working := 0 // slots that parse; the one this session opened is one
	for _, name := range names {
		if len(id) >= 4 && len(name) >= len(id) && name[:len(id)] == id {
			match = append(match, name)
		}
		b, err := loadFile(ctx, r.be, backend.Handle{Type: backend.KeyFile, Name: name})
		if err != nil {
			return fmt.Errorf("remove key %q: load key %s: %w", id, name, err)
		}
		if kf, err := parseKeyFileNamed(name, b); err == nil && (!r.crypt.bound || kf.Version >= 2) {
			working++
		}
	}
	switch {
	case len(match) == 0:
		return fmt.Errorf("remove key %q: %w", id, backend.ErrNotExist)
	case len(match) > 1:
		return fmt.Errorf("remove key %q: prefix matches %d keys", id, len(match))
	case match[0] == r.keyName && working <= 1:
		return fmt.Errorf("remove key %q: %w", id, ErrLastKey)
	}
	if err := r.be.Remove(ctx, backend.Handle{Type: backend.KeyFile, Name: match[0]}); err != nil {
		return fmt.Errorf("remove key %q: %w", id, err)
	}
	return nil
}
