// Package chunker splits a stream into content-defined chunks with FastCDC
// (Xia et al., "FastCDC: a Fast and Efficient Content-Defined Chunking
// Approach for Data Deduplication", USENIX ATC 2016): a gear rolling hash
// with normalized chunking (a harder cut condition before the average size,
// an easier one after it).
//
// We write it ourselves because chunking is the core of the product: the
// gear table is derived from the repository's secret seed, so chunk
// boundaries (and therefore chunk sizes) do not fingerprint known content,
// and the hot loop is tuned for this one use.
package chunker

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
)

// Default chunk sizes.
const (
	DefaultMin = 512 << 10
	DefaultAvg = 1 << 20
	DefaultMax = 8 << 20
)

// Params are the chunk size bounds. Avg must be a power of two.
type Params struct {
	Min int `json:"min"`
	Avg int `json:"avg"`
	Max int `json:"max"`
}

// DefaultParams returns 512 KiB / 1 MiB / 8 MiB.
func DefaultParams() Params { return Params{Min: DefaultMin, Avg: DefaultAvg, Max: DefaultMax} }

// Validate reports whether p can drive a chunker.
func (p Params) Validate() error {
	switch {
	case p.Min < 64 || p.Avg <= p.Min || p.Max < p.Avg:
		return fmt.Errorf("chunker params %d/%d/%d: want 64 <= min < avg <= max", p.Min, p.Avg, p.Max)
	case p.Avg&(p.Avg-1) != 0:
		return fmt.Errorf("chunker params: avg %d is not a power of two", p.Avg)
	case p.Max > 64<<20:
		return fmt.Errorf("chunker params: max %d above 64 MiB", p.Max)
	}
	return nil
}

// Table is a gear table: 256 pseudo-random 64-bit values derived from a
// secret seed.
type Table [256]uint64

// NewTable derives the gear table from seed: entry i is the first 8 bytes
// (big endian) of SHA-256("sitevault gear" || seed || uint32be(i)).
func NewTable(seed []byte) *Table {
	var t Table
	var buf []byte
	for i := range t {
		buf = append(buf[:0], "sitevault gear"...)
		buf = append(buf, seed...)
		buf = binary.BigEndian.AppendUint32(buf, uint32(i))
		sum := sha256.Sum256(buf)
		t[i] = binary.BigEndian.Uint64(sum[:8])
	}
	return &t
}

// Chunker reads a stream and returns its chunks. It is not safe for
// concurrent use. Memory: one buffer that grows with the stream up to
// 2×Max bytes; most site files are far smaller than Max, and many are
// chunked at once, so a chunker starts small (initialBuf).
type Chunker struct {
	table        *Table
	p            Params
	maskS, maskL uint64
	rd           io.Reader
	buf          []byte
	lo, hi       int
	eof          bool
	err          error
}

// masks returns a mask of n one-bits taken from the top of the word: with a
// left-shifting gear hash the top bits depend on the last 64 input bytes.
func mask(n int) uint64 {
	if n <= 0 {
		return 0
	}
	if n > 63 {
		n = 63
	}
	return ^uint64(0) << (64 - n)
}

// New returns a chunker reading rd.
func New(rd io.Reader, t *Table, p Params) (*Chunker, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	c := &Chunker{table: t, p: p}
	b := bits.TrailingZeros(uint(p.Avg))
	c.maskS, c.maskL = mask(b+2), mask(b-2)
	c.buf = make([]byte, min(initialBuf, 2*p.Max))
	c.Reset(rd)
	return c, nil
}

// initialBuf is a new chunker's buffer size: one read of a typical small
// file. The buffer doubles as needed, up to 2×Max.
const initialBuf = 64 << 10

// Reset makes c read rd from its start, keeping the buffer.
func (c *Chunker) Reset(rd io.Reader) {
	c.rd, c.lo, c.hi, c.eof, c.err = rd, 0, 0, false, nil
}

// fill makes sure Max bytes (or all that is left) are buffered.
func (c *Chunker) fill() error {
	if c.hi-c.lo >= c.p.Max || c.eof {
		return nil
	}
	if len(c.buf)-c.lo < c.p.Max {
		n := copy(c.buf, c.buf[c.lo:c.hi])
		c.lo, c.hi = 0, n
	}
	for c.hi-c.lo < c.p.Max {
		if c.hi == len(c.buf) {
			c.grow()
		}
		n, err := c.rd.Read(c.buf[c.hi:])
		c.hi += n
		if errors.Is(err, io.EOF) {
			c.eof = true
			return nil
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// grow doubles the buffer (up to 2×Max), keeping the unread bytes.
func (c *Chunker) grow() {
	nb := make([]byte, min(2*len(c.buf), 2*c.p.Max))
	c.hi = copy(nb, c.buf[c.lo:c.hi])
	c.lo = 0
	c.buf = nb
}

// Next returns the next chunk, or io.EOF after the last one. The chunk
// aliases the chunker's buffer: it is valid until the next call.
func (c *Chunker) Next() ([]byte, error) {
	if c.err != nil {
		return nil, c.err
	}
	if err := c.fill(); err != nil {
		c.err = err
		return nil, err
	}
	if c.lo == c.hi {
		c.err = io.EOF
		return nil, io.EOF
	}
	n := c.Cut(c.buf[c.lo:c.hi])
	chunk := c.buf[c.lo : c.lo+n : c.lo+n]
	c.lo += n
	return chunk, nil
}

// Cut returns the length of the first chunk of data (data holds at least
// Max bytes unless it is the end of the stream).
func (c *Chunker) Cut(data []byte) int {
	n := len(data)
	if n <= c.p.Min {
		return n
	}
	if n > c.p.Max {
		n = c.p.Max
	}
	normal := c.p.Avg
	if normal > n {
		normal = n
	}
	g := c.table
	var fp uint64
	i := c.p.Min
	maskS := c.maskS
	for _, b := range data[i:normal] {
		fp = fp<<1 + g[b]
		i++
		if fp&maskS == 0 {
			return i
		}
	}
	maskL := c.maskL
	for _, b := range data[i:n] {
		fp = fp<<1 + g[b]
		i++
		if fp&maskL == 0 {
			return i
		}
	}
	return n
}
