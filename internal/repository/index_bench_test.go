package repository

import (
	"context"
	"encoding/binary"
	"fmt"
	"runtime"
	"runtime/metrics"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sitevault/sitevault/internal/backend/mem"
)

// benchIndexRepo returns a repository on a mem backend whose index files
// list n blobs in packs of 2,000 (written directly, no packs: the index
// is what is measured) and the blob handles.
func benchIndexRepo(b testing.TB, n int) (*Repository, *mem.Backend, []BlobHandle) {
	b.Helper()
	ctx := context.Background()
	be := mem.New()
	r := TestRepositoryWith(b, be, Options{})
	hs := make([]BlobHandle, n)
	var packs []indexPack
	for i := 0; i < n; i += 2000 {
		var pid ID
		binary.LittleEndian.PutUint64(pid[:], uint64(i)|1<<63)
		p := indexPack{ID: pid, Size: 16 << 20}
		for j := i; j < min(n, i+2000); j++ {
			var id ID
			binary.LittleEndian.PutUint64(id[:], uint64(j)*0x9e3779b97f4a7c15)
			binary.LittleEndian.PutUint64(id[8:], uint64(j))
			hs[j] = BlobHandle{ID: id, Type: DataBlob}
			p.Blobs = append(p.Blobs, indexBlob{Type: DataBlob, ID: id, Offset: uint32(j-i) * 300, Length: 300, RawLength: 272})
		}
		packs = append(packs, p)
	}
	if _, err := r.writeIndex(ctx, nil, packs, nil); err != nil {
		b.Fatal(err)
	}
	return r, be, hs
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkIndexLoad loads the index of a repository of 1M blobs and
// reports the resident bytes per blob (heap after the load, collected,
// minus before) and the bytes allocated per blob while loading.
func BenchmarkIndexLoad(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			r, _, _ := benchIndexRepo(b, n)
			ctx := context.Background()
			r.idx.Store(newIndex())
			before := heapInUse()
			var ms0, ms1 runtime.MemStats
			runtime.ReadMemStats(&ms0)
			// sample the live heap while loading, for the peak
			var peak atomic.Uint64
			stop := make(chan struct{})
			sampled := make(chan struct{})
			go func() {
				defer close(sampled)
				s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
				for {
					metrics.Read(s)
					if v := s[0].Value.Uint64(); v > peak.Load() {
						peak.Store(v)
					}
					select {
					case <-stop:
						return
					case <-time.After(time.Millisecond):
					}
				}
			}()
			b.ResetTimer()
			for range b.N {
				r.idx.Store(newIndex())
				if err := r.LoadIndex(ctx); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			close(stop)
			<-sampled
			runtime.ReadMemStats(&ms1)
			after := heapInUse()
			if got := r.IndexedBlobs(); got != n {
				b.Fatalf("indexed %d blobs, want %d", got, n)
			}
			b.ReportMetric(float64(after-before)/float64(n), "B/blob-resident")
			b.ReportMetric(float64(peak.Load()-min(peak.Load(), before))/float64(n), "B/blob-peak")
			b.ReportMetric(float64(ms1.TotalAlloc-ms0.TotalAlloc)/float64(b.N)/float64(n), "B/blob-allocated")
		})
	}
}

// BenchmarkIndexLookup looks up known blobs in an index of 1M blobs.
func BenchmarkIndexLookup(b *testing.B) {
	r, _, hs := benchIndexRepo(b, 1_000_000)
	if err := r.LoadIndex(context.Background()); err != nil {
		b.Fatal(err)
	}
	x := r.idx.Load()
	b.ResetTimer()
	for i := range b.N {
		if !x.has(hs[i%len(hs)]) {
			b.Fatal("missing")
		}
	}
}
