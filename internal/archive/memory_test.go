package archive

import (
	"context"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	"github.com/sitevault/sitevault/internal/backend/local"
	"github.com/sitevault/sitevault/internal/repository"
	"github.com/sitevault/sitevault/internal/site"
)

// rngReader is a stream of pseudo-random (incompressible) bytes.
type rngReader struct{ r *rand.ChaCha8 }

func (r rngReader) Read(b []byte) (int, error) { return r.r.Read(b) }

// peakHeap samples the live heap objects every few milliseconds until stop.
func peakHeap() (stop func() uint64) {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	var (
		peak uint64
		wg   sync.WaitGroup
		done = make(chan struct{})
	)
	wg.Go(func() {
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(sample)
			peak = max(peak, sample[0].Value.Uint64())
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	})
	return func() uint64 { close(done); wg.Wait(); return peak }
}

// TestWriteMemoryBounded streams a restore point holding a 100 MiB file
// through Write and back through Import, and asserts that the heap grows
// by far less than the file's size (a memory assertion, not a timing).
func TestWriteMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 100 MiB")
	}
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "repo")
	be, err := local.Create(ctx, dir)
	must(t, err)
	repo := repository.TestRepositoryWith(t, be, repository.Options{})
	const size = 100 << 20
	ids, n, err := repo.SaveStream(ctx, io.LimitReader(rngReader{rand.NewChaCha8([32]byte{1})}, size))
	must(t, err)
	if n != size {
		t.Fatalf("saved %d bytes", n)
	}
	tree := &repository.Tree{Nodes: []*repository.Node{{Name: "big.bin", Type: repository.NodeFile, Mode: 0o644,
		ModTime: time.Now(), Size: n, Content: ids}}}
	filesID, err := repo.SaveTree(ctx, tree)
	must(t, err)
	root, err := site.SaveRoot(ctx, repo, &filesID, nil, time.Now())
	must(t, err)
	sn := &repository.Snapshot{Time: time.Now(), Site: "big", Tree: root}
	_, err = repo.SaveSnapshot(ctx, sn)
	must(t, err)

	const bound = 64 << 20
	for _, format := range []Format{TarGz, Zip} {
		runtime.GC()
		base := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		metrics.Read(base)
		stop := peakHeap()
		var p Progress
		err := Write(ctx, repo, sn, io.Discard, format, Options{Progress: &p})
		peak := stop()
		must(t, err)
		if p.Bytes.Load() < size {
			t.Fatalf("%v: wrote %d bytes of content", format, p.Bytes.Load())
		}
		before := base[0].Value.Uint64()
		t.Logf("%v: peak heap %d MiB (%d MiB before) while writing %d MiB", format, peak>>20, before>>20, size>>20)
		if peak > before+bound {
			t.Errorf("%v: heap grew by %d MiB, want under %d MiB", format, (peak-before)>>20, bound>>20)
		}
	}

	// Import streams too: the archive's 100 MiB file never sits in memory.
	path := filepath.Join(t.TempDir(), "big.tar.gz")
	f, err := os.Create(path)
	must(t, err)
	must(t, Write(ctx, repo, sn, f, TarGz, Options{}))
	must(t, f.Close())
	runtime.GC()
	base := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(base)
	stop := peakHeap()
	imported, err := Import(ctx, repo, path, "big", ImportOptions{TablePrefix: "wp_"})
	peak := stop()
	must(t, err)
	before := base[0].Value.Uint64()
	t.Logf("import: peak heap %d MiB (%d MiB before) while reading %d MiB", peak>>20, before>>20, size>>20)
	if peak > before+bound {
		t.Errorf("import: heap grew by %d MiB, want under %d MiB", (peak-before)>>20, bound>>20)
	}
	filesID2, err := site.FilesTree(ctx, repo, imported)
	must(t, err)
	if filesID2 != filesID {
		t.Errorf("imported files tree %v, want %v (same content, same blobs)", filesID2.Short(), filesID.Short())
	}
	os.RemoveAll(dir)
}
