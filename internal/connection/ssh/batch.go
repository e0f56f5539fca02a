package ssh

import (
	"errors"
	"io"
	"sync"
)

// batchWriter coalesces the small writes of an SFTP client into larger
// writes to the SSH channel. pkg/sftp writes every request on its own, and
// x/crypto/ssh sends every write as its own encrypted packet and system
// call; with dozens of requests in flight (parallel reads of small files)
// that per-packet cost, on both ends, bounded a first backup over SFTP.
//
// Writes are appended to a buffer that a single goroutine flushes. When the
// channel is idle a write goes out at once (no added latency); while a
// flush is under way the next requests gather and leave together. A full
// buffer makes writers wait, bounding memory.
type batchWriter struct {
	w io.WriteCloser

	mu      sync.Mutex
	cond    *sync.Cond
	buf     []byte
	spare   []byte
	err     error
	closing bool
	done    chan struct{}
}

// batchLimit is the most bytes buffered before writers wait.
const batchLimit = 1 << 20

func newBatchWriter(w io.WriteCloser) *batchWriter {
	b := &batchWriter{w: w, done: make(chan struct{})}
	b.cond = sync.NewCond(&b.mu)
	go b.flusher()
	return b
}

func (b *batchWriter) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for b.err == nil && !b.closing && len(b.buf) > 0 && len(b.buf)+len(p) > batchLimit {
		b.cond.Wait()
	}
	if b.err != nil {
		return 0, b.err
	}
	if b.closing {
		return 0, io.ErrClosedPipe
	}
	b.buf = append(b.buf, p...)
	b.cond.Broadcast()
	return len(p), nil
}

func (b *batchWriter) flusher() {
	defer close(b.done)
	for {
		b.mu.Lock()
		for len(b.buf) == 0 && !b.closing && b.err == nil {
			b.cond.Wait()
		}
		if b.err != nil || len(b.buf) == 0 { // closing with nothing left
			b.mu.Unlock()
			return
		}
		out := b.buf
		b.buf = b.spare[:0]
		b.cond.Broadcast() // writers waiting for room
		b.mu.Unlock()

		_, err := b.w.Write(out)

		b.mu.Lock()
		b.spare = out[:0]
		if err != nil {
			b.err = err
			b.cond.Broadcast()
		}
		b.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// Close flushes what is buffered and closes the channel's input.
func (b *batchWriter) Close() error {
	b.mu.Lock()
	b.closing = true
	b.cond.Broadcast()
	b.mu.Unlock()
	<-b.done
	err := b.w.Close()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil && !errors.Is(b.err, io.EOF) {
		return b.err
	}
	return err
}
