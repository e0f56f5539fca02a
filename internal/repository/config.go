package repository

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/sitevault/sitevault/internal/backend"
	"github.com/sitevault/sitevault/internal/repository/chunker"
)

// FormatVersion is the repository format this code writes and the newest
// it reads.
const FormatVersion = 1

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

// parseConfigParams decrypts and validates the sealed parameters.
func parseConfigParams(c *crypter, sealed []byte) (*configParams, error) {
	plain, err := c.openFile(sealed)
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

func saveConfig(ctx context.Context, be backend.Backend, cf *configFile) error {
	b, err := json.Marshal(cf)
	if err != nil {
		return err
	}
	if err := be.Save(ctx, backend.Handle{Type: backend.ConfigFile}, bytes.NewReader(b), int64(len(b))); err != nil {
		return fmt.Errorf("save config: %w", err)
	}
	return nil
}

// File encoding for metadata files (config params, index, snapshots):
// seal(flag || payload), flag 0 = raw, 1 = zstd.
const (
	fileRaw  = 0
	fileZstd = 1
)

// maxFileSize bounds what a metadata file may decompress to.
const maxFileSize = 1 << 30

func (c *crypter) sealFile(plain []byte) []byte {
	buf := make([]byte, 1, len(plain)/2+16)
	var ok bool
	buf, ok = compress(buf, plain)
	if ok {
		buf[0] = fileZstd
	} else {
		buf = append(buf[:1], plain...)
		buf[0] = fileRaw
	}
	return c.seal(make([]byte, 0, len(buf)+sealOverhead), buf)
}

func (c *crypter) openFile(sealed []byte) ([]byte, error) {
	b, err := c.open(nil, sealed)
	if err != nil {
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
