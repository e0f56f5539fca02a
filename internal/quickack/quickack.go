// Package quickack keeps a TCP connection's acknowledgements immediate.
//
// OpenSSH turns Nagle's algorithm off (TCP_NODELAY) only for interactive
// sessions. On the SFTP and port-forwarding connections sitevault opens,
// sshd keeps Nagle on: a response written in two parts waits for the
// acknowledgement of the first, and Linux delays acknowledgements by up to
// 40 ms. Request-response traffic (an SFTP round trip per small file, a
// MariaDB result through the tunnel) then stalls 40 ms again and again.
// The server's setting is not ours to change, so the client acknowledges
// at once: TCP_QUICKACK, which Linux clears again after a while, is set
// after every read.
package quickack

import (
	"net"
	"syscall"
)

// Conn wraps c so that every read re-arms TCP_QUICKACK. Connections that
// are not TCP (or systems without the option) are returned unchanged in
// behaviour: setting the option is best effort.
func Conn(c net.Conn) net.Conn {
	tcp, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	raw, err := tcp.SyscallConn()
	if err != nil {
		return c
	}
	q := &conn{TCPConn: tcp, raw: raw}
	q.arm()
	return q
}

type conn struct {
	*net.TCPConn
	raw syscall.RawConn
}

func (c *conn) Read(b []byte) (int, error) {
	n, err := c.TCPConn.Read(b)
	c.arm()
	return n, err
}

func (c *conn) arm() {
	c.raw.Control(func(fd uintptr) {
		setQuickAck(int(fd))
	})
}
