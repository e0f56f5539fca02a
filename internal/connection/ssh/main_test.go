package ssh

import (
	"os"
	"testing"

	"github.com/sitevault/sitevault/internal/testsrv"
)

// sshd is the package's server, shared by its tests (nil if missing).
var sshd *testsrv.SSHD

func TestMain(m *testing.M) {
	os.Exit(testsrv.RunWithSSHD(m, func(s *testsrv.SSHD) { sshd = s }))
}

// needSSHD returns the shared sshd, or fails or skips the test.
func needSSHD(t testing.TB) *testsrv.SSHD {
	t.Helper()
	return testsrv.NeedSSHD(t, sshd)
}
