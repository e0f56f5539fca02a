package testsrv

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"
)

// Direction is one way of a proxied connection.
type Direction int

// The two directions a FaultProxy counts bytes in.
const (
	Upstream   Direction = iota // client to server: uploads
	Downstream                  // server to client: downloads
)

// FaultProxy is a TCP proxy on loopback between a client and a server that
// injects the faults networks have: a connection cut after some bytes,
// slowness, refused connections. Point the client at Addr.
type FaultProxy struct {
	Addr   string // 127.0.0.1:port, where clients connect
	target string
	l      net.Listener

	mu     sync.Mutex
	cut    [2]int64 // bytes still allowed in each direction before a cut; <0: no cut armed
	delay  time.Duration
	refuse bool
	conns  map[net.Conn]struct{}
	drops  int
	closed bool
	stop   chan struct{} // closed by Close: ends delays early
	wg     sync.WaitGroup
}

// StartFaultProxy starts a proxy to target (host:port) for one test and
// closes it when the test ends.
func StartFaultProxy(tb testing.TB, target string) *FaultProxy {
	tb.Helper()
	p, err := NewFaultProxy(target)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { p.Close() })
	return p
}

// NewFaultProxy starts a proxy to target (host:port); the caller must Close it.
func NewFaultProxy(target string) (*FaultProxy, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("start fault proxy: %w", err)
	}
	p := &FaultProxy{Addr: l.Addr().String(), target: target, l: l, cut: [2]int64{-1, -1}, conns: map[net.Conn]struct{}{}, stop: make(chan struct{})}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// CutAfter arms a one-shot fault: after n more bytes have passed in
// direction d (over all connections), the connection carrying the next
// byte is closed on both sides. Later connections pass untouched, so a
// client that reconnects succeeds.
func (p *FaultProxy) CutAfter(d Direction, n int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut[d] = n
}

// SetDelay makes every chunk of data wait d before it is forwarded: a slow
// backend, or with a long d a stalled one (a server that vanished without
// closing its connections). Zero removes the delay for later chunks.
func (p *FaultProxy) SetDelay(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.delay = d
}

// Refuse makes the proxy close new connections at once (true) or serve
// them again (false): a server that is down.
func (p *FaultProxy) Refuse(refuse bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refuse = refuse
}

// DropAll closes every open connection now.
func (p *FaultProxy) DropAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
		p.drops++
	}
}

// Drops returns how many connections the proxy has cut so far.
func (p *FaultProxy) Drops() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.drops
}

// Close stops the proxy and closes every connection.
func (p *FaultProxy) Close() error {
	p.mu.Lock()
	if !p.closed {
		close(p.stop)
	}
	p.closed = true
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	err := p.l.Close()
	p.wg.Wait()
	return err
}

func (p *FaultProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		refuse, closed := p.refuse, p.closed
		p.mu.Unlock()
		if refuse || closed {
			c.Close()
			continue
		}
		s, err := net.DialTimeout("tcp", p.target, 5*time.Second)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c] = struct{}{}
		p.conns[s] = struct{}{}
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(c, s, Upstream)
		go p.pipe(s, c, Downstream)
	}
}

// pipe copies from src to dst, applying the faults of direction d.
func (p *FaultProxy) pipe(src, dst net.Conn, d Direction) {
	defer p.wg.Done()
	defer func() {
		src.Close()
		dst.Close()
		p.mu.Lock()
		delete(p.conns, src)
		delete(p.conns, dst)
		p.mu.Unlock()
	}()
	buf := make([]byte, 32*1024)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			chunk, cut := p.admit(d, buf[:n])
			if len(chunk) > 0 {
				if _, werr := dst.Write(chunk); werr != nil {
					return
				}
			}
			if cut {
				return
			}
		}
		if err != nil {
			if tc, ok := dst.(*net.TCPConn); ok && !errors.Is(err, net.ErrClosed) {
				tc.CloseWrite()
			}
			return
		}
	}
}

// admit returns the part of chunk that may pass and whether the connection
// must be cut after it; it waits the configured delay.
func (p *FaultProxy) admit(d Direction, chunk []byte) ([]byte, bool) {
	p.mu.Lock()
	delay := p.delay
	left := p.cut[d]
	cut := false
	if left >= 0 {
		if int64(len(chunk)) > left {
			chunk = chunk[:left]
			cut = true
			p.cut[d] = -1
			p.drops++
		} else {
			p.cut[d] = left - int64(len(chunk))
		}
	}
	p.mu.Unlock()
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-p.stop:
			t.Stop()
		}
	}
	return chunk, cut
}
