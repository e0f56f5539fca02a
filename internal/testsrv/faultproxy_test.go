package testsrv

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"
)

// echoServer answers every connection by echoing what it reads.
func echoServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	return l.Addr().String()
}

func TestFaultProxyPasses(t *testing.T) {
	p := StartFaultProxy(t, echoServer(t))
	c, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := bytes.Repeat([]byte("x"), 100_000)
	go c.Write(msg)
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("echo through the proxy: %v", err)
	}
}

// sinkServer counts the bytes each connection sends and reports them when
// the connection ends.
func sinkServer(t *testing.T) (string, chan int64) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	counts := make(chan int64, 10)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { n, _ := io.Copy(io.Discard, c); c.Close(); counts <- n }()
		}
	}()
	return l.Addr().String(), counts
}

func TestFaultProxyCutUpstream(t *testing.T) {
	addr, counts := sinkServer(t)
	p := StartFaultProxy(t, addr)
	p.CutAfter(Upstream, 1000)
	c, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	c.Write(make([]byte, 5000))
	if n := <-counts; n != 1000 {
		t.Errorf("server got %d bytes before the cut, want 1000", n)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Error("client connection still open after the cut")
	}
	c.Close()
	if p.Drops() != 1 {
		t.Errorf("Drops() = %d, want 1", p.Drops())
	}
	// The fault is one-shot: a new connection passes.
	c, err = net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	c.Write(make([]byte, 5000))
	c.Close()
	if n := <-counts; n != 5000 {
		t.Errorf("server got %d bytes after the cut, want 5000", n)
	}
}

func TestFaultProxyCutDownstream(t *testing.T) {
	p := StartFaultProxy(t, echoServer(t))
	p.CutAfter(Downstream, 1000)
	c, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	go c.Write(make([]byte, 5000))
	c.SetDeadline(time.Now().Add(5 * time.Second))
	got, _ := io.ReadAll(c)
	c.Close()
	if len(got) != 1000 {
		t.Errorf("read %d bytes before the cut, want 1000", len(got))
	}
	if p.Drops() != 1 {
		t.Errorf("Drops() = %d, want 1", p.Drops())
	}
}

func TestFaultProxyDelayAndRefuse(t *testing.T) {
	p := StartFaultProxy(t, echoServer(t))
	p.SetDelay(100 * time.Millisecond)
	c, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	c.Write([]byte("ping"))
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Errorf("round trip took %v, want at least 2×100ms", d)
	}
	c.Close()

	p.SetDelay(0)
	p.Refuse(true)
	c, err = net.Dial("tcp", p.Addr)
	if err == nil {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if n, err := c.Read(buf); err == nil {
			t.Errorf("refusing proxy answered %d bytes", n)
		}
		c.Close()
	}
}
