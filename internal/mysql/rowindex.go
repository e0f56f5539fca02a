package mysql

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"strconv"

	"github.com/sitevault/sitevault/internal/repository"
)

// A row index lists, in the order of a stream's rows (a segment's base
// content or one of its deltas), each row's key and row hash: what an
// incremental backup compares with the server's current rows to find the
// rows that changed, without reading the rows themselves (see refresh).
// A delta's index also lists the rows of the segment's earlier streams it
// supersedes (drops: rows changed or deleted since).
//
// Encoding (stored as a repository stream, chunked, compressed and
// encrypted like any content):
//
//	"SVRI" 0x01 (0x02: integer keys, each written as a varint of its
//	difference from the previous key, then its hash)
//	uvarint rows, then for each row:
//	  uvarint shared, uvarint n, n bytes: the key (see rowKey) as the
//	    previous row's key's first shared bytes followed by the n bytes
//	    (consecutive keys share most of their bytes: "1000123", "1000124")
//	  4 bytes: the row hash, little-endian
//	uvarint drops, then for each: uvarint stream, uvarint row
//
// Costs: 5 bytes per row of a table keyed by consecutive integers, 4 of
// them the incompressible hash (a 1M-row postmeta table: 5.0 MB of indexes
// beside 108 MB of SQL that compresses to 21 MB: its full backup stores
// about a quarter more). An unchanged segment's index is shared by every
// later point like any blob; only a delta's own index is new. (The hashes
// cannot be shortened without letting a changed row go unseen.)
type rowIndex struct {
	keys   []string // rowKey of each row
	hashes []uint32
	drops  []rowRef
}

// rowRef names a row of a segment: its stream (0 the base, i the i-th
// delta) and its place in the stream's rows (0-based).
type rowRef struct {
	stream, row int32
}

const (
	rowIndexMagic    = "SVRI\x01"
	rowIndexIntMagic = "SVRI\x02" // integer keys, see encode
)

// maxKeyBytes bounds one key in an index (keys longer than that cannot be
// stored by a server: InnoDB keys are at most 3072 bytes).
const maxKeyBytes = 64 << 10

// rowKey is a row's key as one string: each key value, as the server sent
// it, preceded by its length (uvarint). Two rows have the same rowKey only
// if their key values are the same bytes.
func appendRowKey(b []byte, vals [][]byte) []byte {
	for _, v := range vals {
		b = binary.AppendUvarint(b, uint64(len(v)))
		b = append(b, v...)
	}
	return b
}

func (x *rowIndex) add(key []byte, hash uint64) {
	x.keys = append(x.keys, string(key))
	x.hashes = append(x.hashes, uint32(hash))
}

// intKey returns the integer a rowKey holds when it is one decimal
// integer as the server writes it (no sign for zero or positives, no
// leading zero).
func intKey(k string) (int64, bool) {
	n, w := binary.Uvarint([]byte(k))
	if w <= 0 || n == 0 || n > 20 || uint64(len(k)-w) != n {
		return 0, false
	}
	digits := k[w:]
	v, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || strconv.FormatInt(v, 10) != digits {
		return 0, false
	}
	return v, true
}

func (x *rowIndex) encode() []byte {
	b := make([]byte, 0, len(rowIndexMagic)+len(x.keys)*8+len(x.drops)*4+16)
	ints := make([]int64, len(x.keys))
	var prev int64
	for i, k := range x.keys {
		v, ok := intKey(k)
		if !ok || (prev < 0 && v > math.MaxInt64+prev) || (prev > 0 && v < math.MinInt64+prev) {
			ints = nil // not integers, or a difference past int64
			break
		}
		ints[i], prev = v, v
	}
	if ints != nil {
		// The keys are integers (most WordPress tables): each is written
		// as its difference from the previous one, a byte when ids follow
		// each other.
		b = append(b, rowIndexIntMagic...)
		b = binary.AppendUvarint(b, uint64(len(x.keys)))
		prev = 0
		for i, v := range ints {
			b = binary.AppendVarint(b, v-prev)
			b = binary.LittleEndian.AppendUint32(b, x.hashes[i])
			prev = v
		}
		return x.encodeDrops(b)
	}
	b = append(b, rowIndexMagic...)
	b = binary.AppendUvarint(b, uint64(len(x.keys)))
	prevKey := ""
	for i, k := range x.keys {
		shared := 0
		for shared < len(k) && shared < len(prevKey) && k[shared] == prevKey[shared] {
			shared++
		}
		b = binary.AppendUvarint(b, uint64(shared))
		b = binary.AppendUvarint(b, uint64(len(k)-shared))
		b = append(b, k[shared:]...)
		b = binary.LittleEndian.AppendUint32(b, x.hashes[i])
		prevKey = k
	}
	return x.encodeDrops(b)
}

func (x *rowIndex) encodeDrops(b []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(x.drops)))
	for _, r := range x.drops {
		b = binary.AppendUvarint(b, uint64(r.stream))
		b = binary.AppendUvarint(b, uint64(r.row))
	}
	return b
}

var errBadIndex = fmt.Errorf("row index is not valid: %w", repository.ErrDamaged)

// decodeRowIndex reads an index encoded by encode. It is hostile input: every
// count and length is checked against what is left.
func decodeRowIndex(b []byte) (*rowIndex, error) {
	ints := bytes.HasPrefix(b, []byte(rowIndexIntMagic))
	if !ints && !bytes.HasPrefix(b, []byte(rowIndexMagic)) {
		return nil, errBadIndex
	}
	b = b[len(rowIndexMagic):]
	uv := func() (uint64, bool) {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return 0, false
		}
		b = b[n:]
		return v, true
	}
	n, ok := uv()
	if !ok || n > uint64(len(b))/5 { // a row takes at least 5 bytes
		return nil, errBadIndex
	}
	x := &rowIndex{keys: make([]string, 0, n), hashes: make([]uint32, 0, n)}
	var prev []byte
	var prevInt int64
	for range n {
		if ints {
			d, w := binary.Varint(b)
			if w <= 0 || len(b)-w < 4 || (d > 0 && prevInt > math.MaxInt64-d) || (d < 0 && prevInt < math.MinInt64-d) {
				return nil, errBadIndex
			}
			prevInt += d
			digits := strconv.FormatInt(prevInt, 10)
			x.keys = append(x.keys, string(appendRowKey(nil, [][]byte{[]byte(digits)})))
			x.hashes = append(x.hashes, binary.LittleEndian.Uint32(b[w:]))
			b = b[w+4:]
			continue
		}
		shared, ok1 := uv()
		m, ok2 := uv()
		if !ok1 || !ok2 || shared > uint64(len(prev)) || m > uint64(len(b)) || shared+m > maxKeyBytes || uint64(len(b))-m < 4 {
			return nil, errBadIndex
		}
		key := append(prev[:shared:shared], b[:m]...)
		b = b[m:]
		x.keys = append(x.keys, string(key))
		x.hashes = append(x.hashes, binary.LittleEndian.Uint32(b))
		b = b[4:]
		prev = key
	}
	nd, ok := uv()
	if !ok || nd > uint64(len(b))/2 {
		return nil, errBadIndex
	}
	for range nd {
		s, ok1 := uv()
		r, ok2 := uv()
		if !ok1 || !ok2 || s > 1<<20 || r > 1<<31-1 {
			return nil, errBadIndex
		}
		x.drops = append(x.drops, rowRef{int32(s), int32(r)})
	}
	if len(b) != 0 {
		return nil, errBadIndex
	}
	return x, nil
}

// saveIndex stores an index and returns its content.
func saveIndex(ctx context.Context, st Store, x *rowIndex) ([]repository.ID, int64, error) {
	return st.SaveStream(ctx, bytes.NewReader(x.encode()))
}

// loadIndex reads an index stored by saveIndex. Its size is bounded by
// size (as the manifest records it) and by maxIndexBytes.
func loadIndex(ctx context.Context, st Store, ids []repository.ID, size int64) (*rowIndex, error) {
	if size < 0 || size > maxIndexBytes {
		return nil, errBadIndex
	}
	var buf bytes.Buffer
	buf.Grow(int(size))
	if err := st.WriteContent(ctx, ids, &limitWriter{w: &buf, n: maxIndexBytes}); err != nil {
		return nil, err
	}
	return decodeRowIndex(buf.Bytes())
}

// maxIndexBytes bounds an index read into memory: a segment of a few MiB
// of SQL has an index of a few hundred KiB; a crafted one is refused.
const maxIndexBytes = 256 << 20

type limitWriter struct {
	w io.Writer
	n int64
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > l.n {
		return 0, errBadIndex
	}
	l.n -= int64(len(p))
	return l.w.Write(p)
}

// liveRow is a row the segment holds now: its hash and where it is.
type liveRow struct {
	hash uint32
	at   rowRef
}

// segmentRows loads the indexes of a segment's streams and returns the rows
// it holds now (by rowKey), and how many rows each stream has. ok is false
// when the segment has no index (backed up before row indexes).
func segmentRows(ctx context.Context, st Store, s *Segment) (live map[string]liveRow, counts []int, ok bool, err error) {
	if s.Index == nil {
		return nil, nil, false, nil
	}
	idx := make([]*rowIndex, 0, 1+len(s.Deltas))
	x, err := loadIndex(ctx, st, s.Index, s.IndexSize)
	if err != nil {
		return nil, nil, false, fmt.Errorf("row index: %w", err)
	}
	idx = append(idx, x)
	for _, dl := range s.Deltas {
		x, err := loadIndex(ctx, st, dl.Index, dl.IndexSize)
		if err != nil {
			return nil, nil, false, fmt.Errorf("row index of a delta: %w", err)
		}
		idx = append(idx, x)
	}
	dead, err := deadRows(idx)
	if err != nil {
		return nil, nil, false, err
	}
	live = make(map[string]liveRow, min(max(s.Rows, 0), 1<<20)) // Rows is a hint, from the manifest
	counts = make([]int, len(idx))
	for k, x := range idx {
		counts[k] = len(x.keys)
		for i, key := range x.keys {
			if dead[k][i] {
				continue
			}
			if _, dup := live[key]; dup {
				return nil, nil, false, fmt.Errorf("row index holds a key twice: %w", repository.ErrDamaged)
			}
			live[key] = liveRow{hash: x.hashes[i], at: rowRef{int32(k), int32(i)}}
		}
	}
	return live, counts, true, nil
}

// deadRows returns, for each stream, which of its rows later deltas drop.
func deadRows(idx []*rowIndex) ([][]bool, error) {
	dead := make([][]bool, len(idx))
	for k, x := range idx {
		dead[k] = make([]bool, len(x.keys))
		for _, r := range x.drops {
			if int(r.stream) >= k || int(r.row) >= len(idx[r.stream].keys) {
				return nil, fmt.Errorf("row index drops a row that is not there: %w", repository.ErrDamaged)
			}
			dead[r.stream][r.row] = true
		}
	}
	return dead, nil
}

// droppedRows loads the drops of a segment's deltas (for a restore or a
// download, which need only which rows to leave out) and checks them
// against the streams' row counts.
func droppedRows(ctx context.Context, st Store, s *Segment) ([][]bool, error) {
	idx := make([]*rowIndex, 0, 1+len(s.Deltas))
	base := &rowIndex{}
	if s.Index != nil {
		x, err := loadIndex(ctx, st, s.Index, s.IndexSize)
		if err != nil {
			return nil, fmt.Errorf("row index: %w", err)
		}
		base = x
	} else if len(s.Deltas) > 0 {
		return nil, fmt.Errorf("segment has deltas but no row index: %w", repository.ErrDamaged)
	}
	idx = append(idx, base)
	for _, dl := range s.Deltas {
		x, err := loadIndex(ctx, st, dl.Index, dl.IndexSize)
		if err != nil {
			return nil, fmt.Errorf("row index of a delta: %w", err)
		}
		idx = append(idx, x)
	}
	return deadRows(idx)
}
