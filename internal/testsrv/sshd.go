package testsrv

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// ErrNotInstalled is returned by the TestMain forms (StartSSHDMain,
// StartS3Main) when the server's program is not installed; the caller
// decides, with Required, whether that fails the package or skips its
// server tests.
var ErrNotInstalled = errors.New("server program is not installed")

// SSHD is a private OpenSSH server on a loopback port. It accepts the
// current user with ClientSigner (public key authentication only: tests
// never change system passwords), serves SFTP with internal-sftp and
// forwards TCP connections (direct-tcpip), which the database tunnel uses.
type SSHD struct {
	Addr           string        // host:port
	Host           string        // 127.0.0.1
	Port           int           //
	User           string        // the current user, the one tests log in as
	ClientKeyFile  string        // OpenSSH private key of ClientSigner, mode 0600
	ClientSigner   ssh.Signer    // the key sshd accepts
	HostKey        ssh.PublicKey // the server's fresh ed25519 host key
	KnownHostsFile string        // known_hosts with HostKey for [127.0.0.1]:Port
	Dir            string        // an empty temporary folder, usable as a remote root

	tmp  string
	cmd  *exec.Cmd
	log  *syncBuffer
	done chan struct{}
	once sync.Once
}

// HostKeyFingerprint returns the host key's SHA256 fingerprint, as
// ssh-keygen -l prints it ("SHA256:…").
func (s *SSHD) HostKeyFingerprint() string { return ssh.FingerprintSHA256(s.HostKey) }

// Log returns what sshd wrote so far; tests print it when a connection fails.
func (s *SSHD) Log() string { return s.log.String() }

// StartSSHD starts an sshd for one test and stops it when the test ends. A
// missing sshd fails or skips the test (see Missing).
func StartSSHD(tb testing.TB) *SSHD {
	tb.Helper()
	s, err := StartSSHDMain()
	if errors.Is(err, ErrNotInstalled) {
		Missing(tb, "OpenSSH server (sshd)", "apt-get install openssh-server")
	}
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Stop)
	return s
}

// StartSSHDMain starts an sshd without a testing.TB, for a package's
// TestMain; the caller must call Stop. It returns an error wrapping
// ErrNotInstalled if sshd is missing.
func StartSSHDMain() (*SSHD, error) {
	sshd := LookPath("sshd")
	if sshd == "" {
		return nil, fmt.Errorf("start sshd: %w (apt-get install openssh-server)", ErrNotInstalled)
	}
	// sshd refuses to start without its privilege separation directory.
	if os.Geteuid() == 0 {
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
			return nil, fmt.Errorf("start sshd: create /run/sshd: %w", err)
		}
	}
	u, err := user.Current()
	if err != nil {
		return nil, fmt.Errorf("start sshd: current user: %w", err)
	}
	tmp, err := os.MkdirTemp("", "sitevault-sshd-")
	if err != nil {
		return nil, fmt.Errorf("start sshd: %w", err)
	}
	s := &SSHD{Host: "127.0.0.1", User: u.Username, tmp: tmp, Dir: filepath.Join(tmp, "root")}
	fail := func(err error) (*SSHD, error) {
		os.RemoveAll(tmp)
		return nil, fmt.Errorf("start sshd: %w", err)
	}
	if err := os.Mkdir(s.Dir, 0o755); err != nil {
		return fail(err)
	}

	hostSigner, err := writeKey(filepath.Join(tmp, "host_ed25519"))
	if err != nil {
		return fail(err)
	}
	s.HostKey = hostSigner.PublicKey()
	s.ClientKeyFile = filepath.Join(tmp, "client_ed25519")
	if s.ClientSigner, err = writeKey(s.ClientKeyFile); err != nil {
		return fail(err)
	}
	authorized := filepath.Join(tmp, "authorized_keys")
	if err := os.WriteFile(authorized, ssh.MarshalAuthorizedKey(s.ClientSigner.PublicKey()), 0o600); err != nil {
		return fail(err)
	}

	// The port was free a moment ago; another process may take it before
	// sshd binds it, so try a few.
	var lastErr error
	for range 5 {
		port, err := freePort()
		if err != nil {
			return fail(err)
		}
		s.Port = port
		s.Addr = net.JoinHostPort(s.Host, strconv.Itoa(port))
		if lastErr = s.start(sshd, hostSigner, authorized); lastErr == nil {
			break
		}
	}
	if lastErr != nil {
		return fail(lastErr)
	}
	s.KnownHostsFile = filepath.Join(tmp, "known_hosts")
	line := knownhosts.Line([]string{knownhosts.Normalize(s.Addr)}, s.HostKey) + "\n"
	if err := os.WriteFile(s.KnownHostsFile, []byte(line), 0o600); err != nil {
		s.Stop()
		return nil, fmt.Errorf("start sshd: %w", err)
	}
	return s, nil
}

func (s *SSHD) start(sshd string, hostSigner ssh.Signer, authorized string) error {
	config := strings.Join([]string{
		"Port " + strconv.Itoa(s.Port),
		"ListenAddress " + s.Host,
		"HostKey " + filepath.Join(s.tmp, "host_ed25519"),
		"PidFile " + filepath.Join(s.tmp, "sshd.pid"),
		"AuthorizedKeysFile " + authorized,
		"PermitRootLogin yes",
		"StrictModes no",
		"UsePAM no",
		"PubkeyAuthentication yes",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"AllowTcpForwarding yes",
		"Subsystem sftp internal-sftp",
		"MaxStartups 200",
		"MaxSessions 100",
		"LogLevel INFO",
		"",
	}, "\n")
	cfgFile := filepath.Join(s.tmp, "sshd_config")
	if err := os.WriteFile(cfgFile, []byte(config), 0o600); err != nil {
		return err
	}
	s.log = &syncBuffer{}
	s.cmd = exec.Command(sshd, "-D", "-e", "-f", cfgFile)
	// If the test binary dies (a panic, a -timeout), the server goes too.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	s.cmd.Stdout = s.log
	s.cmd.Stderr = s.log
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("run %s: %w", sshd, err)
	}
	s.done = make(chan struct{})
	go func() { s.cmd.Wait(); close(s.done) }()

	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			return fmt.Errorf("sshd exited: %v\nsshd log:\n%s", s.cmd.ProcessState, s.log.String())
		default:
		}
		if banner(s.Addr) {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.kill()
	return fmt.Errorf("sshd did not accept connections on %s within 15s\nsshd log:\n%s", s.Addr, s.log.String())
}

// banner reports whether an SSH server answers on addr.
func banner(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 4)
	_, err = io.ReadFull(c, buf)
	return err == nil && string(buf) == "SSH-"
}

func (s *SSHD) kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
}

// Stop stops sshd and removes its temporary folder. Connections already
// established are served by their own sshd processes until the client
// closes them.
func (s *SSHD) Stop() {
	s.once.Do(func() {
		s.kill()
		os.RemoveAll(s.tmp)
	})
}

// writeKey creates an ed25519 key, writes it to file in OpenSSH format
// (mode 0600, as ssh and sshd demand) and returns its signer.
func writeKey(file string) (ssh.Signer, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	block, err := ssh.MarshalPrivateKey(priv, "sitevault test key")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(file, pem.EncodeToMemory(block), 0o600); err != nil {
		return nil, err
	}
	return ssh.NewSignerFromKey(priv)
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// syncBuffer collects a server's output from its goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// RunWithSSHD is a package's TestMain body for tests sharing one sshd: it
// starts the server, hands it to set, runs the tests and stops the server.
// Where sshd is not installed, set gets nil and the tests that need the
// server call NeedSSHD, which fails them in CI and skips them otherwise.
func RunWithSSHD(m *testing.M, set func(*SSHD)) int {
	s, err := StartSSHDMain()
	if err != nil && (!errors.Is(err, ErrNotInstalled) || Required()) {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if s != nil {
		defer s.Stop()
	}
	set(s)
	return m.Run()
}

// NeedSSHD returns s, a package's shared sshd, or fails or skips tb when
// sshd is not installed (see Missing).
func NeedSSHD(tb testing.TB, s *SSHD) *SSHD {
	tb.Helper()
	if s == nil {
		Missing(tb, "OpenSSH server (sshd)", "apt-get install openssh-server")
	}
	return s
}
