package chunker

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
)

func randomData(tb testing.TB, n int, seed uint64) []byte {
	tb.Helper()
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func chunkAll(tb testing.TB, data []byte, t *Table, p Params, rd func([]byte) io.Reader) [][]byte {
	tb.Helper()
	c, err := New(rd(data), t, p)
	if err != nil {
		tb.Fatal(err)
	}
	var out [][]byte
	for {
		ch, err := c.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, bytes.Clone(ch))
	}
}

func TestChunker(t *testing.T) {
	p := Params{Min: 4 << 10, Avg: 16 << 10, Max: 64 << 10}
	data := randomData(t, 4<<20, 1)
	tab := NewTable([]byte("seed"))
	readers := map[string]func([]byte) io.Reader{
		"whole":    func(b []byte) io.Reader { return bytes.NewReader(b) },
		"onebyte":  func(b []byte) io.Reader { return &smallReader{b: b, n: 1000} },
		"oddsized": func(b []byte) io.Reader { return &smallReader{b: b, n: 7777} },
	}
	var ref [][]byte
	for name, rd := range readers {
		t.Run(name, func(t *testing.T) {
			chunks := chunkAll(t, data, tab, p, rd)
			if got := bytes.Join(chunks, nil); !bytes.Equal(got, data) {
				t.Fatal("chunks do not reassemble the input")
			}
			for i, c := range chunks {
				if len(c) > p.Max || (len(c) < p.Min && i != len(chunks)-1) {
					t.Errorf("chunk %d has %d bytes, outside [%d,%d]", i, len(c), p.Min, p.Max)
				}
			}
			avg := len(data) / len(chunks)
			if avg < p.Avg/2 || avg > p.Avg*2 {
				t.Errorf("average chunk %d far from %d", avg, p.Avg)
			}
			if ref == nil {
				ref = chunks
			} else if len(ref) != len(chunks) {
				t.Errorf("boundaries depend on read sizes: %d vs %d chunks", len(ref), len(chunks))
			}
		})
	}
	t.Run("shift resynchronises", func(t *testing.T) {
		a := chunkAll(t, data, tab, p, readers["whole"])
		shifted := append([]byte("a few inserted bytes"), data...)
		b := chunkAll(t, shifted, tab, p, readers["whole"])
		seen := map[string]bool{}
		for _, c := range a {
			seen[string(c)] = true
		}
		same := 0
		for _, c := range b {
			if seen[string(c)] {
				same++
			}
		}
		if same < len(a)-3 {
			t.Errorf("only %d of %d chunks survive a prefix insertion", same, len(a))
		}
	})
	t.Run("seed changes boundaries", func(t *testing.T) {
		a := chunkAll(t, data, tab, p, readers["whole"])
		b := chunkAll(t, data, NewTable([]byte("other")), p, readers["whole"])
		if len(a[0]) == len(b[0]) && len(a[1]) == len(b[1]) {
			t.Error("two seeds cut at the same places")
		}
	})
	t.Run("empty", func(t *testing.T) {
		if got := chunkAll(t, nil, tab, p, readers["whole"]); len(got) != 0 {
			t.Errorf("got %d chunks of nothing", len(got))
		}
	})
}

func TestParamsValidate(t *testing.T) {
	for _, tc := range []struct {
		p  Params
		ok bool
	}{
		{DefaultParams(), true},
		{Params{Min: 10, Avg: 16, Max: 32}, false},
		{Params{Min: 1024, Avg: 3000, Max: 8192}, false},
		{Params{Min: 4096, Avg: 2048, Max: 8192}, false},
	} {
		if err := tc.p.Validate(); (err == nil) != tc.ok {
			t.Errorf("Validate(%v) = %v, want ok=%v", tc.p, err, tc.ok)
		}
	}
}

type smallReader struct {
	b []byte
	n int
}

func (r *smallReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), r.n, len(r.b))
	copy(p, r.b[:n])
	r.b = r.b[n:]
	return n, nil
}

func BenchmarkChunker(b *testing.B) {
	data := randomData(b, 64<<20, 2)
	tab := NewTable([]byte("bench"))
	c, _ := New(nil, tab, DefaultParams())
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		c.Reset(bytes.NewReader(data))
		for {
			if _, err := c.Next(); err != nil {
				break
			}
		}
	}
}

func BenchmarkCutLoopOnly(b *testing.B) {
	// the gear loop over every byte (no min-size skip): the raw hash speed
	data := randomData(b, 8<<20, 3)
	c, _ := New(nil, NewTable([]byte("x")), Params{Min: 64, Avg: 32 << 20, Max: 64 << 20})
	c.maskS, c.maskL = ^uint64(0), ^uint64(0)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		c.Cut(data)
	}
}
