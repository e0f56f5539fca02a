package testsrv

import (
	"io"
	"net"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// TestSSHD logs in with the client key, verifying the host key with the
// known_hosts file, and forwards a TCP connection (direct-tcpip) as the
// database tunnel does.
func TestSSHD(t *testing.T) {
	s := StartSSHD(t)
	check, err := knownhosts.New(s.KnownHostsFile)
	if err != nil {
		t.Fatal(err)
	}
	client, err := ssh.Dial("tcp", s.Addr, &ssh.ClientConfig{
		User:            s.User,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(s.ClientSigner)},
		HostKeyCallback: check,
		Timeout:         5 * time.Second,
	})
	if err != nil {
		t.Fatalf("log in: %v\nsshd log:\n%s", err, s.Log())
	}
	defer client.Close()

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		c.Write([]byte("hello through the tunnel"))
		c.Close()
	}()
	c, err := client.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatalf("direct-tcpip: %v\nsshd log:\n%s", err, s.Log())
	}
	defer c.Close()
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "hello through the tunnel" {
		t.Fatalf("read through the tunnel: %q, %v", got, err)
	}
}
