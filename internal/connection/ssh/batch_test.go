package ssh

import (
	"bytes"
	"errors"
	"sync"
	"testing"
)

type slowSink struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	writes int
	gate   chan struct{}
	err    error
	closed bool
}

func (s *slowSink) Write(p []byte) (int, error) {
	if s.gate != nil {
		<-s.gate
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return 0, s.err
	}
	s.writes++
	return s.buf.Write(p)
}

func (s *slowSink) Close() error { s.closed = true; return nil }

func TestBatchWriterCoalescesAndKeepsOrder(t *testing.T) {
	sink := &slowSink{gate: make(chan struct{})}
	w := newBatchWriter(sink)
	var want bytes.Buffer
	for i := range 1000 {
		p := []byte{byte(i), byte(i >> 8), '\n'}
		want.Write(p)
		if _, err := w.Write(p); err != nil {
			t.Fatal(err)
		}
	}
	close(sink.gate) // the first flush was blocked: the rest gathered
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sink.buf.Bytes(), want.Bytes()) {
		t.Fatal("bytes reordered or lost")
	}
	if sink.writes > 3 || !sink.closed {
		t.Errorf("%d writes for 1000 small ones (want a few), closed %v", sink.writes, sink.closed)
	}
}

func TestBatchWriterBoundsMemoryAndReportsErrors(t *testing.T) {
	sink := &slowSink{}
	w := newBatchWriter(sink)
	big := make([]byte, batchLimit/2+1)
	for range 8 { // more than batchLimit: writers wait for flushes
		if _, err := w.Write(big); err != nil {
			t.Fatal(err)
		}
	}
	sink.mu.Lock()
	sink.err = errors.New("channel closed")
	sink.mu.Unlock()
	var err error
	for range 100 {
		if _, err = w.Write(big); err != nil {
			break
		}
	}
	if err == nil {
		t.Fatal("writes keep succeeding after the channel failed")
	}
	w.Close()
	if _, err := w.Write([]byte("x")); err == nil {
		t.Error("write after close succeeded")
	}
}
