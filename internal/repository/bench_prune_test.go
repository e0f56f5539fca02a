package repository

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sitevault/sitevault/internal/backend"
	"github.com/sitevault/sitevault/internal/backend/mem"
)

// BenchmarkPrune measures a prune of a repository whose index holds
// SITEVAULT_BENCH_BLOBS-like sizes (1M blobs here: 1000 packs of 1000
// blobs, a tenth unused), on the in-memory backend: its time and its peak
// heap against the heap the opened repository (mostly its index) holds.
// Packs are stand-ins (prune reads no pack unless it repacks, and
// MaxUnused is set so that it does not).
func BenchmarkPrune(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) { benchPrune(b, n) })
	}
}

func benchPrune(b *testing.B, n int) {
	ctx := context.Background()
	be := mem.New()
	r := TestRepositoryWith(b, be, Options{})
	const perPack = 1000
	var used []ID
	for p := 0; p < n/perPack; p++ {
		var pid ID
		rand.Read(pid[:])
		ip := indexPack{ID: pid, Size: perPack * 1000}
		for i := range perPack {
			var id ID
			rand.Read(id[:])
			ip.Blobs = append(ip.Blobs, indexBlob{Type: DataBlob, ID: id, Offset: uint32(i * 1000), Length: 1000, RawLength: 1000 - sealOverhead})
			if i%10 != 0 {
				used = append(used, id)
			}
		}
		if err := be.Save(ctx, backend.Handle{Type: backend.PackFile, Name: pid.String()}, bytes.NewReader([]byte{0}), 1); err != nil {
			b.Fatal(err)
		}
		if _, err := r.saveIndexFile(ctx, &indexFile{Created: time.Now().Add(-48 * time.Hour), Packs: []indexPack{ip}}); err != nil {
			b.Fatal(err)
		}
	}
	root := &Tree{}
	for i := 0; i < len(used); i += 10_000 {
		t := &Tree{Nodes: []*Node{{Name: "f", Type: NodeFile, Content: used[i:min(i+10_000, len(used))]}}}
		tid, err := r.SaveTree(ctx, t)
		if err != nil {
			b.Fatal(err)
		}
		root.Nodes = append(root.Nodes, &Node{Name: fmt.Sprintf("d%06d", i), Type: NodeDir, Subtree: &tid})
	}
	tid, err := r.SaveTree(ctx, root)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := r.SaveSnapshot(ctx, &Snapshot{Time: time.Now(), Site: "s", Tree: tid}); err != nil {
		b.Fatal(err)
	}
	used = nil
	r = nil
	for b.Loop() {
		b.StopTimer()
		before := heapInUse()
		r := TestOpen(b, be, Options{})
		resident := heapInUse() - before
		var peak atomic.Uint64
		done := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			var m runtime.MemStats
			for {
				runtime.ReadMemStats(&m)
				if m.HeapInuse > peak.Load() {
					peak.Store(m.HeapInuse)
				}
				select {
				case <-done:
					return
				case <-time.After(5 * time.Millisecond):
				}
			}
		})
		b.StartTimer()
		if _, err := r.Prune(ctx, PruneOptions{Grace: time.Hour, MaxUnused: 1}); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		close(done)
		wg.Wait()
		b.ReportMetric(float64(resident)/float64(n), "resident-B/blob")
		b.ReportMetric(float64(peak.Load()-before)/float64(resident), "peak/resident")
		b.StartTimer()
	}
}
