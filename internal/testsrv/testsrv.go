// Package testsrv starts the real servers sitevault's tests talk to — OpenSSH
// sshd, an S3 server (VersityGW), MariaDB, PostgreSQL, PHP serving WordPress,
// an SMTP server (Mailpit) — on loopback ports with temporary data
// directories, and stops them when the test (or the package's TestMain) ends.
//
// It is non-test code so that every package's tests can share it (as
// restic's repository.TestRepository). Nothing here is used by sitevault
// itself.
//
// A server that cannot be started because its program is not installed
// fails the test when SITEVAULT_REQUIRE_SERVERS is set (make test and CI set
// it: a missing server there is an install bug) and skips it otherwise, so
// a quick local `go test` works on a machine without the servers.
package testsrv

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
)

// Required reports whether missing servers fail tests instead of skipping them.
func Required() bool { return os.Getenv("SITEVAULT_REQUIRE_SERVERS") != "" || os.Getenv("CI") != "" }

// Missing fails or skips tb because a server's program is not installed.
func Missing(tb testing.TB, what, install string) {
	tb.Helper()
	msg := fmt.Sprintf("%s is not installed (%s); run `make test`, which installs it", what, install)
	if Required() {
		tb.Fatal(msg)
	}
	tb.Skip(msg)
}

// LookPath finds a program on PATH, in the repository's .tools/bin (where
// scripts/deps.sh puts Go tools) or in the sbin folders Debian uses for
// servers. It returns "" if the program is nowhere.
func LookPath(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	var dirs []string
	if root := ModuleRoot(); root != "" {
		dirs = append(dirs, filepath.Join(root, ".tools", "bin"))
	}
	dirs = append(dirs, "/usr/sbin", "/usr/local/sbin", "/sbin")
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}

// ModuleRoot returns the directory holding sitevault's go.mod, or "".
func ModuleRoot() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return ""
	}
	dir := filepath.Dir(file)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// MountTmpfs mounts a tmpfs of the given size (mount's "size=" form, e.g.
// "8m") on a temporary folder and unmounts it when tb ends. Mounting needs
// root (or CAP_SYS_ADMIN): where it is refused the test fails if servers
// are required (CI runs as root) and skips otherwise.
func MountTmpfs(tb testing.TB, size string) string {
	tb.Helper()
	dir := tb.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		msg := fmt.Sprintf("cannot mount a tmpfs on %s: %v (run the tests as root)", dir, err)
		if Required() {
			tb.Fatal(msg)
		}
		tb.Skip(msg)
	}
	tb.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	return dir
}
