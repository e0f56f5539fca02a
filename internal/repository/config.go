package repository

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/sitevault/sitevault/internal/backend"
	"github.com/sitevault/sitevault/internal/repository/chunker"
)

// FormatVersion is the repository format this code writes for a new
// repository and the newest it reads. Format 1 repositories (no associated
// data on sealed files, key slots of version 1) are still read and written,
// in format 1: one repository never mixes formats, so an older sitevault
// keeps reading a format 1 repository a newer one wrote to.
const FormatVersion = 2

// configFile is the plaintext JSON stored as "config". Version and ID are
// readable without a key so that a newer format is recognised before any
// decryption; Params is the sealed JSON of configParams.
type configFile struct {
	Version int    `json:"version"`
	ID      string `json:"id"`
	Params  []byte `json:"params"`
}

// configParams are the repository's secret parameters.
type configParams struct {
	Chunker     chunker.Params `json:"chunker"`
	Compression string         `json:"compression"` // "zstd"
}

// parseConfigHeader decodes the plaintext part of the config.
func parseConfigHeader(b []byte) (*configFile, error) {
	var cf configFile
	if err := json.Unmarshal(b, &cf); err != nil {
		return nil, fmt.Errorf("config: parse: %v: %w", err, ErrDamaged)
	}
	if cf.Version > FormatVersion {
		return nil, fmt.Errorf("config: version %d, this sitevault reads up to %d: %w", cf.Version, FormatVersion, ErrNewerFormat)
	}
	if cf.Version < 1 {
		return nil, fmt.Errorf("config: version %d: %w", cf.Version, ErrDamaged)
	}
	if id, err := hex.DecodeString(cf.ID); err != nil || len(id) != 32 {
		return nil, fmt.Errorf("config: invalid id %q: %w", cf.ID, ErrDamaged)
	}
	return &cf, nil
}

// configAD binds the sealed params to the plaintext header: a header
// whose version or id was changed fails to open the params.
func configAD(cf *configFile) []string {
	return []string{"version " + strconv.Itoa(cf.Version), "id " + cf.ID}
}

// parseConfigParams decrypts and validates the sealed parameters of cf.
func parseConfigParams(c *crypter, cf *configFile) (*configParams, error) {
	plain, err := c.openFile(kindConfig, cf.Params, configAD(cf)...)
	if err != nil {
		return nil, fmt.Errorf("config params: %w", err)
	}
	var p configParams
	if err := json.Unmarshal(plain, &p); err != nil {
		return nil, fmt.Errorf("config params: %v: %w", err, ErrDamaged)
	}
	if err := p.Chunker.Validate(); err != nil {
		return nil, fmt.Errorf("config params: %v: %w", err, ErrDamaged)
	}
	if p.Compression != "zstd" && p.Compression != "none" {
		return nil, fmt.Errorf("config params: unknown compression %q: %w", p.Compression, ErrNewerFormat)
	}
	return &p, nil
}

func loadConfigHeader(ctx context.Context, be backend.Backend) (*configFile, error) {
	b, err := loadFile(ctx, be, backend.Handle{Type: backend.ConfigFile})
	if errors.Is(err, backend.ErrNotExist) {
		return nil, fmt.Errorf("no config at %s: %w", be.Location(), ErrNotRepository)
	}
	if err != nil {
		return nil, fmt.Errorf("load config: %w", err)
	}
	return parseConfigHeader(b)
}

// saveConfig stores the config. Backends never replace a config (see
// backend.Backend.Save): of two concurrent inits, one gets
// ErrRepositoryExists.
func saveConfig(ctx context.Context, be backend.Backend, cf *configFile) error {
	b, err := json.Marshal(cf)
	if err != nil {
		return err
	}
	h := backend.Handle{Type: backend.ConfigFile}
	err = be.Save(ctx, h, bytes.NewReader(b), int64(len(b)))
	if errors.Is(err, backend.ErrExist) {
		// A retried save whose first attempt was stored finds its own
		// config: the repository id is random, so equal bytes are ours.
		if got, lerr := loadFile(ctx, be, h); lerr == nil && bytes.Equal(got, b) {
			return nil
		}
		return fmt.Errorf("save config: %w: %w", ErrRepositoryExists, err)
	}
	if err != nil {
		return fmt.Errorf("save config: %w", err)
	}
	return nil
}

// File encoding for metadata files (config params, index, snapshots,
// locks): seal(flag || payload), flag 0 = raw, 1 = zstd, with the file's
// kind (and extra, for the config) as associated data from format 2 on.
const (
	fileRaw  = 0
	fileZstd = 1
)

// maxFileSize bounds what a metadata file may decompress to.
const maxFileSize = 1 << 30

func (c *crypter) sealFile(kind fileKind, plain []byte, extra ...string) []byte {
	buf := make([]byte, 1, len(plain)/2+16)
	var ok bool
	buf, ok = compress(buf, plain)
	if ok {
		buf[0] = fileZstd
	} else {
		buf = append(buf[:1], plain...)
		buf[0] = fileRaw
	}
	return sealAppend(c.aead, make([]byte, 0, len(buf)+sealOverhead), buf, c.ad(kind, extra...))
}

func (c *crypter) openFile(kind fileKind, sealed []byte, extra ...string) ([]byte, error) {
	b, err := openAppend(c.aead, nil, sealed, c.ad(kind, extra...))
	if err != nil {
		if c.bound {
			return nil, fmt.Errorf("%w (or it is not %s file)", err, kind.article())
		}
		return nil, err
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("empty file: %w", ErrDamaged)
	}
	switch b[0] {
	case fileRaw:
		return b[1:], nil
	case fileZstd:
		return decompress(nil, b[1:], -1)
	}
	return nil, fmt.Errorf("unknown file encoding %d: %w", b[0], ErrDamaged)
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }
