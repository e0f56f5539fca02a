// Command bigrepo writes a synthetic repository of many small blobs, as
// WordPress sites produce (thousands of small PHP, CSS and JSON files per
// plugin, and many sites), directly through the engine: no files on disk
// to read, so 10 million blobs take minutes. It is the input of the
// "Engine at scale" benchmarks in docs/benchmarks.md.
//
//	go run ./bench/bigrepo -repo /tmp/sv10m -blobs 10000000 [-per-dir 1000] [-seed 1]
//
// The repository gets one restore point (site "big") whose tree has one
// folder per -per-dir blobs, each holding that many one-chunk files. The
// password is $SITEVAULT_PASSWORD, or "bench" when unset. The same seed
// and counts give the same blobs.
package main

import (
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/sitevault/sitevault/internal/backend/local"
	"github.com/sitevault/sitevault/internal/repository"
)

func main() {
	dir := flag.String("repo", "", "directory of the new repository (must not exist)")
	blobs := flag.Int("blobs", 1_000_000, "number of data blobs")
	perDir := flag.Int("per-dir", 1000, "files per folder")
	seed := flag.Uint64("seed", 1, "seed")
	flag.Parse()
	if *dir == "" || *blobs <= 0 || *perDir <= 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(context.Background(), *dir, *blobs, *perDir, *seed); err != nil {
		fmt.Fprintln(os.Stderr, "bigrepo:", err)
		os.Exit(1)
	}
}

// content returns blob i: 80–335 bytes of PHP-like text, unique per blob.
func content(buf []byte, seed uint64, i int) []byte {
	var key [8]byte
	binary.LittleEndian.PutUint64(key[:], seed<<40^uint64(i))
	n := 80 + int(key[0])
	buf = buf[:0]
	buf = fmt.Appendf(buf, "<?php\n// file %d of seed %d\n$opt = get_option('sv_%x');\n", i, seed, key)
	for len(buf) < n {
		buf = append(buf, "echo esc_html( $opt );\n"...)
	}
	return buf[:n]
}

func run(ctx context.Context, dir string, blobs, perDir int, seed uint64) error {
	password := os.Getenv("SITEVAULT_PASSWORD")
	if password == "" {
		password = "bench"
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	be, err := local.Open(ctx, dir)
	if err != nil {
		return err
	}
	start := time.Now()
	r, err := repository.Init(ctx, be, password, repository.InitOptions{Label: "bigrepo", ScryptN: 1 << 14,
		Options: repository.Options{Logger: slog.New(slog.DiscardHandler)}})
	if err != nil {
		return err
	}
	dirs := (blobs + perDir - 1) / perDir
	subtrees := make([]repository.ID, dirs)
	workers := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	next := make(chan int)
	for range workers {
		wg.Go(func() {
			buf := make([]byte, 0, 512)
			for d := range next {
				t := &repository.Tree{}
				for i := d * perDir; i < min(blobs, (d+1)*perDir); i++ {
					buf = content(buf, seed, i)
					id, _, err := r.SaveBlob(ctx, repository.DataBlob, buf)
					if err != nil {
						errs <- err
						return
					}
					t.Nodes = append(t.Nodes, &repository.Node{Name: fmt.Sprintf("f%07d.php", i), Type: repository.NodeFile,
						Mode: 0o644, Size: int64(len(buf)), Content: []repository.ID{id}, ModTime: time.Unix(1700000000, 0).UTC()})
				}
				id, err := r.SaveTree(ctx, t)
				if err != nil {
					errs <- err
					return
				}
				subtrees[d] = id
			}
		})
	}
	for d := range dirs {
		select {
		case next <- d:
		case err := <-errs:
			close(next)
			wg.Wait()
			return err
		}
		if d%1000 == 999 {
			fmt.Fprintf(os.Stderr, "%d blobs in %s\n", (d+1)*perDir, time.Since(start).Round(time.Second))
		}
	}
	close(next)
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
	}
	root := &repository.Tree{}
	for d, id := range subtrees {
		root.Nodes = append(root.Nodes, &repository.Node{Name: fmt.Sprintf("d%05d", d), Type: repository.NodeDir, Mode: 0o755 | 1<<31, Subtree: &id})
	}
	rootID, err := r.SaveTree(ctx, root)
	if err != nil {
		return err
	}
	sn := &repository.Snapshot{Time: time.Now().UTC(), Site: "big", Trigger: "manual", Tree: rootID}
	if _, err := r.SaveSnapshot(ctx, sn); err != nil {
		return err
	}
	fmt.Printf("wrote %d data blobs and %d trees into %s in %s (snapshot %s)\n", blobs, dirs+1, dir, time.Since(start).Round(time.Second), sn.ID.Short())
	return nil
}
