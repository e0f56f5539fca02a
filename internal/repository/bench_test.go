package repository

import (
	"bytes"
	"context"
	"io"
	"sync"
	"testing"

	"github.com/sitevault/sitevault/internal/backend"
	"github.com/sitevault/sitevault/internal/backend/mem"
	"github.com/sitevault/sitevault/internal/repository/chunker"
)

const benchBlob = 1 << 20

func BenchmarkBlobID(b *testing.B) {
	c := fuzzCrypter(b)
	data := randBytes(1, benchBlob)
	b.SetBytes(benchBlob)
	for b.Loop() {
		c.blobID(data)
	}
}

func BenchmarkCompress(b *testing.B) {
	for _, tc := range []struct {
		name string
		data []byte
	}{{"text", compressible(2, benchBlob)}, {"random", randBytes(3, benchBlob)}} {
		b.Run(tc.name, func(b *testing.B) {
			dst := make([]byte, 0, 2*benchBlob)
			b.SetBytes(benchBlob)
			var out []byte
			var ok bool
			for b.Loop() {
				out, ok = compress(dst[:0], tc.data)
			}
			if !ok {
				out = tc.data // stored raw
			}
			b.ReportMetric(float64(len(out))/benchBlob, "ratio")
		})
	}
}

func BenchmarkDecompress(b *testing.B) {
	data := compressible(2, benchBlob)
	z, _ := compress(nil, data)
	dst := make([]byte, 0, benchBlob)
	b.SetBytes(benchBlob)
	for b.Loop() {
		if _, err := decompress(dst[:0], z, benchBlob); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSeal(b *testing.B) {
	c := fuzzCrypter(b)
	data := randBytes(4, benchBlob)
	dst := make([]byte, 0, benchBlob+64)
	b.SetBytes(benchBlob)
	for b.Loop() {
		c.seal(dst[:0], data)
	}
}

func BenchmarkOpen(b *testing.B) {
	c := fuzzCrypter(b)
	sealed := c.seal(nil, randBytes(4, benchBlob))
	dst := make([]byte, 0, benchBlob)
	b.SetBytes(benchBlob)
	for b.Loop() {
		if _, err := c.open(dst[:0], sealed); err != nil {
			b.Fatal(err)
		}
	}
}

// discardPacks is a mem backend that drops pack contents, so that the
// benchmarks measure the engine, not the test backend's copying.
type discardPacks struct{ *mem.Backend }

func (d discardPacks) Save(ctx context.Context, h backend.Handle, rd io.ReadSeeker, size int64) error {
	if h.Type == backend.PackFile {
		_, err := io.Copy(io.Discard, rd)
		return err
	}
	return d.Backend.Save(ctx, h, rd, size)
}

func benchRepo(b *testing.B) *Repository {
	be := discardPacks{mem.New()}
	r, err := Init(context.Background(), be, "pw", InitOptions{ScryptN: TestScryptN})
	if err != nil {
		b.Fatal(err)
	}
	return r
}

// BenchmarkSaveBlob: distinct 1 MiB blobs (half text, half random) from
// GOMAXPROCS goroutines into 16 MiB packs on the mem backend: the hot path
// hash + compress + encrypt + pack + upload.
func BenchmarkSaveBlob(b *testing.B) {
	ctx := context.Background()
	r := benchRepo(b)
	text, random := compressible(5, benchBlob), randBytes(6, benchBlob)
	b.SetBytes(benchBlob)
	b.ResetTimer()
	var mu sync.Mutex
	n := uint64(0)
	b.RunParallel(func(pb *testing.PB) {
		buf := make([]byte, benchBlob)
		for pb.Next() {
			mu.Lock()
			n++
			i := n
			mu.Unlock()
			if i%2 == 0 {
				copy(buf, text)
			} else {
				copy(buf, random)
			}
			buf[0], buf[1], buf[2], buf[3] = byte(i), byte(i>>8), byte(i>>16), byte(i>>24)
			if _, _, err := r.SaveBlob(ctx, DataBlob, buf); err != nil {
				b.Fatal(err)
			}
		}
	})
	if err := r.Flush(ctx); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkSaveStream: one 64 MiB stream (random) through chunker and
// SaveBlob with the default 512 KiB/1 MiB/8 MiB chunks.
func BenchmarkSaveStream(b *testing.B) {
	ctx := context.Background()
	data := randBytes(7, 64<<20)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		b.StopTimer()
		r := benchRepo(b)
		b.StartTimer()
		if _, _, err := r.SaveStream(ctx, bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
		if err := r.Flush(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkChunkerDefault(b *testing.B) {
	data := randBytes(8, 64<<20)
	c, _ := chunker.New(nil, chunker.NewTable([]byte("s")), chunker.DefaultParams())
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
