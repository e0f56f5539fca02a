package ssh

import (
	"errors"
	"fmt"
	"os"
	"testing"

	"github.com/sitevault/sitevault/internal/testsrv"
)

// sshd is the package's server, shared by its tests (nil if missing).
var sshd *testsrv.SSHD

func TestMain(m *testing.M) {
	var err error
	sshd, err = testsrv.StartSSHDMain()
	if err != nil && !errors.Is(err, testsrv.ErrNotInstalled) {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	if sshd != nil {
		sshd.Stop()
	}
	os.Exit(code)
}

// needSSHD returns the shared sshd, or fails or skips the test.
func needSSHD(t testing.TB) *testsrv.SSHD {
	t.Helper()
	if sshd == nil {
		testsrv.Missing(t, "OpenSSH server (sshd)", "apt-get install openssh-server")
	}
	return sshd
}
