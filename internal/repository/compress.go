package repository

import (
	"fmt"
	"math"
	"runtime"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// Compression keeps a blob compressed only when that pays: data whose
// sampled byte entropy is near 8 bits (JPEG, ZIP, already compressed
// dumps) is not even tried, and a result larger than storeRawRatio of
// the input is dropped for the raw bytes.
const (
	storeRawRatio     = 0.97
	entropySkipBits   = 7.95
	entropySampleSize = 16 << 10
)

var (
	zstdOnce sync.Once
	zstdEnc  *zstd.Encoder
	zstdDec  *zstd.Decoder
)

// codecs returns the shared zstd encoder and decoder. EncodeAll and
// DecodeAll are safe for concurrent use and reuse internal state.
func codecs() (*zstd.Encoder, *zstd.Decoder) {
	zstdOnce.Do(func() {
		var err error
		n := runtime.GOMAXPROCS(0)
		zstdEnc, err = zstd.NewWriter(nil,
			zstd.WithEncoderLevel(zstd.SpeedFastest),
			zstd.WithEncoderConcurrency(n),
			zstd.WithEncoderCRC(false), // the AEAD authenticates
			zstd.WithZeroFrames(true))
		if err != nil {
			panic(err)
		}
		zstdDec, err = zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(n),
			zstd.WithDecoderMaxMemory(256<<20))
		if err != nil {
			panic(err)
		}
	})
	return zstdEnc, zstdDec
}

// looksIncompressible estimates the byte entropy of a few samples of b.
func looksIncompressible(b []byte) bool {
	if len(b) < 4096 {
		return false
	}
	var hist [256]int
	total := 0
	const parts = 4
	step := len(b) / parts
	for i := range parts {
		s := b[i*step:]
		s = s[:min(len(s), entropySampleSize/parts)]
		for _, c := range s {
			hist[c]++
		}
		total += len(s)
	}
	var h float64
	for _, n := range hist {
		if n > 0 {
			p := float64(n) / float64(total)
			h -= p * math.Log2(p)
		}
	}
	// small samples under-estimate entropy; correct with Miller-Madow
	h += 255 / (2 * float64(total) * math.Ln2)
	return h >= entropySkipBits
}

// compress appends zstd(src) to dst and reports true, or leaves dst
// unchanged and reports false when compression does not pay.
func compress(dst, src []byte) ([]byte, bool) {
	if !worthCompressing(src) {
		return dst, false
	}
	return compressAnyway(dst, src)
}

// worthCompressing is the cheap pre-test of compress.
func worthCompressing(src []byte) bool { return len(src) >= 64 && !looksIncompressible(src) }

// compressAnyway is compress without the entropy pre-test.
func compressAnyway(dst, src []byte) ([]byte, bool) {
	enc, _ := codecs()
	out := enc.EncodeAll(src, dst)
	if float64(len(out)-len(dst)) >= storeRawRatio*float64(len(src)) {
		return out[:len(dst)], false
	}
	return out, true
}

// decompress appends the decompressed src to dst; rawLen (if >= 0) is the
// expected size. Failures wrap ErrDamaged.
func decompress(dst, src []byte, rawLen int) ([]byte, error) {
	_, dec := codecs()
	if rawLen >= 0 && cap(dst)-len(dst) < rawLen {
		dst = append(make([]byte, 0, len(dst)+rawLen), dst...)
	}
	out, err := dec.DecodeAll(src, dst)
	if err != nil {
		return nil, fmt.Errorf("decompress: %v: %w", err, ErrDamaged)
	}
	if rawLen >= 0 && len(out)-len(dst) != rawLen {
		return nil, fmt.Errorf("decompress: got %d bytes, want %d: %w", len(out)-len(dst), rawLen, ErrDamaged)
	}
	return out, nil
}
