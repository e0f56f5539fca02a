package site

import (
	"context"
	"os"
	"testing"

	"github.com/sitevault/sitevault/internal/connection"
	"github.com/sitevault/sitevault/internal/connection/ssh"
	"github.com/sitevault/sitevault/internal/sitevault"
	"github.com/sitevault/sitevault/internal/testsrv"
)

// sshd is the package's server, shared by its tests (nil if missing).
var sshd *testsrv.SSHD

func TestMain(m *testing.M) {
	os.Exit(testsrv.RunWithSSHD(m, func(s *testsrv.SSHD) { sshd = s }))
}

// testEntry returns a catalog entry for the site at root reached as kind.
func testEntry(t testing.TB, kind, root string) sitevault.Site {
	t.Helper()
	if kind == "local" {
		return sitevault.Site{Name: "test", Kind: sitevault.Local, Path: root}
	}
	testsrv.NeedSSHD(t, sshd)
	return sitevault.Site{Name: "test", Kind: sitevault.SSH, Path: root, SSH: sitevault.SSHSettings{
		User: sshd.User, Host: sshd.Host, Port: sshd.Port, IdentityFile: sshd.ClientKeyFile,
		HostKey: ssh.AuthorizedKey(sshd.HostKey), HostKeyFingerprint: sshd.HostKeyFingerprint(),
	}}
}

// openTest connects to the site at root as kind ("local" or "sftp").
func openTest(t testing.TB, kind, root string) connection.Connection {
	t.Helper()
	conn, err := connection.Open(context.Background(), testEntry(t, kind, root), connection.Options{Env: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

var kinds = []string{"local", "sftp"}
