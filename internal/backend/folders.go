package backend

import (
	"context"
	"sync"
)

// EachFolder runs read for every folder, at most n at a time, and hands
// each result to use, one call at a time on the caller's goroutine, in no
// particular order. Backends with folders use it to list or clean the 256
// data/xx folders, where a listing costs round trips that a slow link
// makes expensive when paid one folder after another.
//
// EachFolder stops at the first error, read's or use's, cancels the reads
// in flight and returns that error; it returns ctx's error if ctx ends
// first. It returns only after every read has returned.
func EachFolder[T any](ctx context.Context, folders []string, n int,
	read func(ctx context.Context, folder string) (T, error), use func(T) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	n = max(1, min(n, len(folders)))

	work := make(chan string)
	go func() {
		defer close(work)
		for _, f := range folders {
			select {
			case work <- f:
			case <-ctx.Done():
				return
			}
		}
	}()

	type result struct {
		v   T
		err error
	}
	results := make(chan result)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for f := range work {
				v, err := read(ctx, f)
				select {
				case results <- result{v, err}:
				case <-ctx.Done():
					return
				}
			}
		})
	}
	go func() {
		wg.Wait()
		close(results)
	}()

	var err error
	for r := range results {
		if err != nil {
			continue // draining: the reads in flight were cancelled
		}
		err = r.err
		if err == nil {
			err = use(r.v)
		}
		if err != nil {
			cancel()
		}
	}
	if err == nil {
		// Not cancelled by us: a done ctx is the caller's.
		err = ctx.Err()
	}
	return err
}
