package ssh

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	xssh "golang.org/x/crypto/ssh"

	"github.com/sitevault/sitevault/internal/testsrv"
)

func testConfig(s *testsrv.SSHD) Config {
	return Config{
		User:         s.User,
		Addr:         s.Addr,
		Root:         s.Dir,
		HostKey:      AuthorizedKey(s.HostKey),
		IdentityFile: s.ClientKeyFile,
		Timeout:      10 * time.Second,
	}
}

func dialTest(t *testing.T, cfg Config) *Conn {
	t.Helper()
	c, err := Dial(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Dial: %v\nsshd log:\n%s", err, sshd.Log())
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func writeKeyFile(t *testing.T, passphrase string) string {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var block *pem.Block
	if passphrase == "" {
		block, err = xssh.MarshalPrivateKey(priv, "")
	} else {
		block, err = xssh.MarshalPrivateKeyWithPassphrase(priv, "", []byte(passphrase))
	}
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "id_ed25519")
	if err := os.WriteFile(file, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// encryptedClientKey writes the sshd's accepted client key encrypted with
// passphrase.
func encryptedClientKey(t *testing.T, s *testsrv.SSHD, passphrase string) string {
	t.Helper()
	b, err := os.ReadFile(s.ClientKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := xssh.ParseRawPrivateKey(b)
	if err != nil {
		t.Fatal(err)
	}
	block, err := xssh.MarshalPrivateKeyWithPassphrase(raw, "", []byte(passphrase))
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "id_encrypted")
	if err := os.WriteFile(file, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

func TestHostKeyUnknownThenAccepted(t *testing.T) {
	s := needSSHD(t)
	cfg := testConfig(s)
	cfg.HostKey = ""
	_, err := Dial(context.Background(), cfg)
	var unknown *UnknownHostKeyError
	if !errors.As(err, &unknown) || !errors.Is(err, ErrHostKeyUnknown) {
		t.Fatalf("Dial with no recorded key = %v, want *UnknownHostKeyError", err)
	}
	if unknown.Fingerprint() != s.HostKeyFingerprint() {
		t.Errorf("fingerprint %s, server's is %s", unknown.Fingerprint(), s.HostKeyFingerprint())
	}
	if !bytes.Contains([]byte(err.Error()), []byte(s.HostKeyFingerprint())) {
		t.Errorf("error does not show the fingerprint: %v", err)
	}
	// Accepting = recording AuthorizedKey, then connecting again.
	cfg.HostKey = unknown.AuthorizedKey()
	c := dialTest(t, cfg)
	if !keysEqual(c.HostKey(), s.HostKey) {
		t.Error("connected host key differs from the server's")
	}
	if fp, err := Fingerprint(cfg.HostKey); err != nil || fp != s.HostKeyFingerprint() {
		t.Errorf("Fingerprint(recorded) = %s, %v", fp, err)
	}
}

func TestHostKeyChangedRefused(t *testing.T) {
	s := needSSHD(t)
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := xssh.NewPublicKey(pub)
	cfg := testConfig(s)
	cfg.HostKey = AuthorizedKey(other)
	_, err = Dial(context.Background(), cfg)
	var changed *HostKeyChangedError
	if !errors.As(err, &changed) || !errors.Is(err, ErrHostKeyChanged) {
		t.Fatalf("Dial with another recorded key = %v, want *HostKeyChangedError", err)
	}
	for _, want := range []string{xssh.FingerprintSHA256(other), s.HostKeyFingerprint(), "CHANGED"} {
		if !bytes.Contains([]byte(err.Error()), []byte(want)) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
}

// TestHostKeyOfAnotherTypeRefused records a key of a type the server does
// not have (as after a reinstall without RSA keys): that is a changed key,
// not an unreachable server.
func TestHostKeyOfAnotherTypeRefused(t *testing.T) {
	s := needSSHD(t)
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := xssh.NewPublicKey(&priv.PublicKey)
	cfg := testConfig(s)
	cfg.HostKey = AuthorizedKey(other)
	_, err = Dial(context.Background(), cfg)
	if !errors.Is(err, ErrHostKeyChanged) {
		t.Fatalf("Dial with a recorded RSA key = %v, want ErrHostKeyChanged", err)
	}
}

func TestLoginErrors(t *testing.T) {
	s := needSSHD(t)
	tests := []struct {
		name string
		edit func(*Config)
		want error
	}{
		{"wrong key", func(c *Config) { c.IdentityFile = writeKeyFile(t, "") }, ErrLogin},
		{"unknown user", func(c *Config) { c.User = "nosuchuser-sitevault" }, ErrLogin},
		{"missing identity file", func(c *Config) { c.IdentityFile = "/nonexistent/id" }, ErrIdentity},
		{"encrypted key without passphrase", func(c *Config) { c.IdentityFile = encryptedClientKey(t, s, "correct horse") }, ErrIdentity},
		{"wrong passphrase", func(c *Config) {
			c.IdentityFile = encryptedClientKey(t, s, "correct horse")
			c.Passphrase = "wrong"
		}, ErrIdentity},
		{"closed port", func(c *Config) { c.Addr = "127.0.0.1:" + strconv.Itoa(testsrv.FreePort(t)) }, ErrUnreachable},
		{"not an ssh server", func(c *Config) {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
			go func() {
				for {
					conn, err := l.Accept()
					if err != nil {
						return
					}
					conn.Write([]byte("HTTP/1.0 400 Bad Request\r\n\r\n"))
					conn.Close()
				}
			}()
			c.Addr = l.Addr().String()
		}, ErrUnreachable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(s)
			tt.edit(&cfg)
			c, err := Dial(context.Background(), cfg)
			if err == nil {
				c.Close()
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Dial = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestEncryptedIdentity(t *testing.T) {
	s := needSSHD(t)
	cfg := testConfig(s)
	cfg.IdentityFile = encryptedClientKey(t, s, "correct horse")
	cfg.Passphrase = "correct horse"
	dialTest(t, cfg)

	asked := ""
	cfg.Passphrase = ""
	cfg.PassphrasePrompt = func(file string) (string, error) { asked = file; return "correct horse", nil }
	dialTest(t, cfg)
	if asked != cfg.IdentityFile {
		t.Errorf("prompt asked for %q", asked)
	}
}

func echoServer(t *testing.T, l net.Listener) {
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
}

func roundTrip(t *testing.T, c net.Conn) {
	t.Helper()
	defer c.Close()
	msg := bytes.Repeat([]byte("select 1;\x00\xff"), 10000)
	go c.Write(msg)
	got := make([]byte, len(msg))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, msg) {
		t.Fatal("echo through the tunnel differs")
	}
}

func TestTunnel(t *testing.T) {
	s := needSSHD(t)
	c := dialTest(t, testConfig(s))
	ctx := context.Background()

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	echoServer(t, l)
	conn, err := c.Dial(ctx, "tcp", l.Addr().String())
	if err != nil {
		t.Fatalf("tcp tunnel: %v\n%s", err, s.Log())
	}
	roundTrip(t, conn)

	sock := filepath.Join(t.TempDir(), "mysqld.sock")
	ul, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	echoServer(t, ul)
	conn, err = c.Dial(ctx, "unix", sock)
	if err != nil {
		t.Fatalf("unix tunnel: %v\n%s", err, s.Log())
	}
	roundTrip(t, conn)

	// A refused port is an error, not a hang.
	if conn, err := c.Dial(ctx, "tcp", "127.0.0.1:"+strconv.Itoa(testsrv.FreePort(t))); err == nil {
		conn.Close()
		t.Error("tunnel to a closed port succeeded")
	}
	if _, err := c.Dial(ctx, "udp", "127.0.0.1:53"); err == nil {
		t.Error("udp tunnel accepted")
	}
}

func TestCloseClosesAll(t *testing.T) {
	s := needSSHD(t)
	c, err := Dial(context.Background(), testConfig(s))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	f, err := c.FS(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.ReadDir(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.ReadDir(ctx, ""); err == nil {
		t.Error("FS works after its connection was closed")
	}
	if _, err := c.FS(ctx); err == nil {
		t.Error("FS opened on a closed connection")
	}
	c.Close() // twice is fine
}

func TestKeepAliveDetectsDeadServer(t *testing.T) {
	s := needSSHD(t)
	// A proxy that stops forwarding simulates a server that vanished
	// without closing the TCP connection.
	p := testsrv.StartFaultProxy(t, s.Addr)
	cfg := testConfig(s)
	cfg.Addr = p.Addr
	cfg.KeepAlive = 200 * time.Millisecond
	c := dialTest(t, cfg)
	p.SetDelay(2 * time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if _, _, err := c.client.SendRequest("keepalive@openssh.com", true, nil); err != nil {
			return // closed by the keepalive loop
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Error("connection to a silent server still open after 10s")
}
