package connection

import (
	"context"
	"encoding/pem"
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"testing"

	xssh "golang.org/x/crypto/ssh"

	"github.com/sitevault/sitevault/internal/connection/ssh"
	"github.com/sitevault/sitevault/internal/sitevault"
	"github.com/sitevault/sitevault/internal/testsrv"
)

func noEnv(string) (string, bool) { return "", false }

func TestLocal(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "wp-config.php"), []byte("<?php"), 0o644)
	c, err := Open(ctx, sitevault.Site{Name: "a", Kind: sitevault.Local, Path: root}, Options{Env: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	f, err := c.FS(ctx)
	if err != nil {
		t.Fatal(err)
	}
	list, err := f.ReadDir(ctx, "")
	if err != nil || len(list) != 1 || list[0].Name != "wp-config.php" {
		t.Errorf("ReadDir = %v, %v", list, err)
	}
	if _, err := f.Open(ctx, "../"+filepath.Base(root)+"/wp-config.php"); err == nil {
		t.Error("local FS opened a name with ..")
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		if conn, err := l.Accept(); err == nil {
			conn.Write([]byte("hello"))
			conn.Close()
		}
	}()
	conn, err := c.Dial(ctx, "tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(conn)
	conn.Close()
	if string(b) != "hello" {
		t.Errorf("read %q", b)
	}
	c.Close()
	if _, err := f.ReadDir(ctx, ""); err == nil {
		t.Error("FS still works after Close")
	}

	if _, err := Open(ctx, sitevault.Site{Name: "a", Kind: sitevault.Local, Path: filepath.Join(root, "missing")}, Options{}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing root: %v", err)
	}
	if _, err := Open(ctx, sitevault.Site{Name: "a", Kind: "ftp", Path: root}, Options{}); err == nil {
		t.Error("unknown kind accepted")
	}
}

// TestSSHSecretsFromEnvironment: the environment's passphrase wins over
// the catalog's, and an unknown host key is reported for the caller to
// record.
func TestSSHSecretsFromEnvironment(t *testing.T) {
	s := testsrv.StartSSHD(t)
	ctx := context.Background()
	b, err := os.ReadFile(s.ClientKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := xssh.ParseRawPrivateKey(b)
	if err != nil {
		t.Fatal(err)
	}
	block, err := xssh.MarshalPrivateKeyWithPassphrase(raw, "", []byte("right"))
	if err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(t.TempDir(), "id")
	os.WriteFile(key, pem.EncodeToMemory(block), 0o600)

	site := sitevault.Site{Name: "r", Kind: sitevault.SSH, Path: s.Dir, SSH: sitevault.SSHSettings{
		User: s.User, Host: s.Host, Port: s.Port, IdentityFile: key, Passphrase: "wrong",
	}}
	if _, err := Open(ctx, site, Options{Env: noEnv}); !errors.Is(err, ssh.ErrIdentity) {
		t.Fatalf("wrong stored passphrase = %v, want ssh.ErrIdentity", err)
	}
	env := func(k string) (string, bool) {
		if k == EnvSSHPassphrase {
			return "right", true
		}
		return "", false
	}
	_, err = Open(ctx, site, Options{Env: env})
	var unknown *ssh.UnknownHostKeyError
	if !errors.As(err, &unknown) {
		t.Fatalf("Open without a recorded key = %v", err)
	}
	site.SSH.HostKey, site.SSH.HostKeyFingerprint = unknown.AuthorizedKey(), unknown.Fingerprint()
	c, err := Open(ctx, site, Options{Env: env})
	if err != nil {
		t.Fatalf("passphrase from the environment: %v", err)
	}
	defer c.Close()
	if sc, ok := SSH(c); !ok || ssh.AuthorizedKey(sc.HostKey()) != site.SSH.HostKey {
		t.Error("SSH(c) does not give the verified connection")
	}
	f, err := c.FSAt(ctx, filepath.Dir(s.Dir))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Lstat(ctx, filepath.Base(s.Dir)); err != nil {
		t.Errorf("FSAt(parent): %v", err)
	}
}

// TestNilEnvIgnoresProcessEnvironment: with Options.Env nil (the service),
// secrets set in the process environment never replace the site's stored
// ones. The test sshd accepts keys only (tests never change system
// passwords), so the stored secret is the key's passphrase; the
// environment holds a wrong passphrase and a wrong password.
func TestNilEnvIgnoresProcessEnvironment(t *testing.T) {
	s := testsrv.StartSSHD(t)
	ctx := context.Background()
	b, err := os.ReadFile(s.ClientKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := xssh.ParseRawPrivateKey(b)
	if err != nil {
		t.Fatal(err)
	}
	block, err := xssh.MarshalPrivateKeyWithPassphrase(raw, "", []byte("stored"))
	if err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(t.TempDir(), "id")
	if err := os.WriteFile(key, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvSSHPassphrase, "wrong")
	t.Setenv(EnvSSHPassword, "wrong")

	site := sitevault.Site{Name: "r", Kind: sitevault.SSH, Path: s.Dir, SSH: sitevault.SSHSettings{
		User: s.User, Host: s.Host, Port: s.Port, IdentityFile: key, Passphrase: "stored", Password: "stored",
		HostKey: ssh.AuthorizedKey(s.HostKey), HostKeyFingerprint: s.HostKeyFingerprint(),
	}}
	c, err := Open(ctx, site, Options{})
	if err != nil {
		t.Fatalf("Open with Env nil and a wrong secret in the process environment: %v", err)
	}
	c.Close()

	// The same environment passed explicitly (the CLI) does win: the
	// test above is not passing because the variables were never read.
	if _, err := Open(ctx, site, Options{Env: os.LookupEnv}); !errors.Is(err, ssh.ErrIdentity) {
		t.Fatalf("Open with Env os.LookupEnv = %v, want ssh.ErrIdentity (the wrong passphrase)", err)
	}
}
