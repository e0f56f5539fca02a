package testsrv

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Mailpit is a private Mailpit (an SMTP server that keeps every message it
// receives and shows them through an HTTP API) on two loopback ports, with
// its database in a temporary folder. Tests send mail to SMTPHost:SMTPPort
// and read what arrived with Messages or WaitMessages.
type Mailpit struct {
	SMTPHost string // 127.0.0.1
	SMTPPort int
	HTTPAddr string // host:port of the HTTP API

	// RootCAs trusts the server's self-signed certificate when it was
	// started with MailpitOptions.TLS; nil otherwise.
	RootCAs *x509.CertPool

	tmp  string
	cmd  *exec.Cmd
	log  *syncBuffer
	done chan struct{}
	once sync.Once
}

// MailpitOptions configures a Mailpit. The zero value is a server that
// accepts any mail without login or encryption.
type MailpitOptions struct {
	// Users, when set, makes the server require a login with one of
	// these user names and passwords (through a password file, never
	// argv). Mailpit offers AUTH only over TLS unless AllowInsecureAuth
	// is set.
	Users             map[string]string
	AllowInsecureAuth bool
	// TLS gives the server a fresh self-signed certificate for 127.0.0.1
	// and localhost (see Mailpit.RootCAs) and offers STARTTLS.
	// RequireSTARTTLS refuses mail before STARTTLS; ImplicitTLS speaks TLS
	// from the first byte (SMTPS), instead of STARTTLS.
	TLS             bool
	RequireSTARTTLS bool
	ImplicitTLS     bool
	// AllowedRecipients, a regular expression, makes the server refuse
	// every other recipient address (RCPT TO).
	AllowedRecipients string
}

// MailMessage is a message as Mailpit received it.
type MailMessage struct {
	ID      string   // Mailpit's id, for Raw
	From    string   // the From header's address
	To      []string // the To header's addresses
	Cc      []string
	Bcc     []string // envelope recipients not named in To or Cc
	Subject string   // decoded
	Text    string   // the decoded plain-text body, with \n line ends
}

// Log returns what the server wrote so far.
func (m *Mailpit) Log() string { return m.log.String() }

// StartMailpit starts a Mailpit with the default options for one test and
// stops it when the test ends. A missing mailpit fails or skips the test
// (see Missing).
func StartMailpit(tb testing.TB) *Mailpit {
	tb.Helper()
	return StartMailpitWith(tb, MailpitOptions{})
}

// StartMailpitWith starts a Mailpit configured by opts for one test and
// stops it when the test ends.
func StartMailpitWith(tb testing.TB, opts MailpitOptions) *Mailpit {
	tb.Helper()
	m, err := StartMailpitMain(opts)
	if errors.Is(err, ErrNotInstalled) {
		Missing(tb, "Mailpit (mailpit)", "scripts/deps.sh test")
	}
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(m.Stop)
	return m
}

// StartMailpitMain starts a Mailpit without a testing.TB, for a package's
// TestMain; the caller must call Stop. It returns an error wrapping
// ErrNotInstalled if mailpit is missing.
func StartMailpitMain(opts MailpitOptions) (*Mailpit, error) {
	bin := LookPath("mailpit")
	if bin == "" {
		return nil, fmt.Errorf("start mailpit: %w (scripts/deps.sh test builds mailpit)", ErrNotInstalled)
	}
	tmp, err := os.MkdirTemp("", "sitevault-mailpit-")
	if err != nil {
		return nil, fmt.Errorf("start mailpit: %w", err)
	}
	m := &Mailpit{SMTPHost: "127.0.0.1", tmp: tmp}
	args := []string{
		"--database", filepath.Join(tmp, "mailpit.db"),
		"--disable-version-check", "--smtp-disable-rdns",
	}
	if len(opts.Users) > 0 {
		var b strings.Builder
		for u, p := range opts.Users {
			fmt.Fprintf(&b, "%s:%s\n", u, p)
		}
		file := filepath.Join(tmp, "smtp-users")
		if err := os.WriteFile(file, []byte(b.String()), 0o600); err != nil {
			os.RemoveAll(tmp)
			return nil, fmt.Errorf("start mailpit: %w", err)
		}
		args = append(args, "--smtp-auth-file", file)
	}
	if opts.AllowInsecureAuth {
		args = append(args, "--smtp-auth-allow-insecure")
	}
	if opts.TLS || opts.RequireSTARTTLS || opts.ImplicitTLS {
		cert, key := filepath.Join(tmp, "cert.pem"), filepath.Join(tmp, "key.pem")
		pool, err := selfSignedCert(cert, key)
		if err != nil {
			os.RemoveAll(tmp)
			return nil, fmt.Errorf("start mailpit: %w", err)
		}
		m.RootCAs = pool
		args = append(args, "--smtp-tls-cert", cert, "--smtp-tls-key", key)
	}
	if opts.RequireSTARTTLS {
		args = append(args, "--smtp-require-starttls")
	}
	if opts.ImplicitTLS {
		args = append(args, "--smtp-require-tls")
	}
	if opts.AllowedRecipients != "" {
		args = append(args, "--smtp-allowed-recipients", opts.AllowedRecipients)
	}
	var lastErr error
	for range 5 {
		smtpPort, err := freePort()
		if err != nil {
			os.RemoveAll(tmp)
			return nil, fmt.Errorf("start mailpit: %w", err)
		}
		httpPort, err := freePort()
		if err != nil {
			os.RemoveAll(tmp)
			return nil, fmt.Errorf("start mailpit: %w", err)
		}
		if smtpPort == httpPort {
			continue
		}
		m.SMTPPort = smtpPort
		m.HTTPAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(httpPort))
		if lastErr = m.start(bin, args); lastErr == nil {
			return m, nil
		}
	}
	os.RemoveAll(tmp)
	return nil, fmt.Errorf("start mailpit: %w", lastErr)
}

// SMTPAddr returns SMTPHost:SMTPPort.
func (m *Mailpit) SMTPAddr() string {
	return net.JoinHostPort(m.SMTPHost, strconv.Itoa(m.SMTPPort))
}

func (m *Mailpit) start(bin string, args []string) error {
	m.log = &syncBuffer{}
	args = append([]string{"--smtp", m.SMTPAddr(), "--listen", m.HTTPAddr}, args...)
	m.cmd = exec.Command(bin, args...)
	// Mailpit reads its settings from MP_* variables too: none of the
	// caller's may change this private server.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MP_") {
			m.cmd.Env = append(m.cmd.Env, kv)
		}
	}
	m.cmd.Dir = m.tmp
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	m.cmd.Stdout = m.log
	m.cmd.Stderr = m.log
	if err := m.cmd.Start(); err != nil {
		return fmt.Errorf("run %s: %w", bin, err)
	}
	m.done = make(chan struct{})
	go func() { m.cmd.Wait(); close(m.done) }()

	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-m.done:
			return fmt.Errorf("mailpit exited: %v\nmailpit log:\n%s", m.cmd.ProcessState, m.log.String())
		default:
		}
		// Ready when the API answers and the SMTP port accepts connections.
		if resp, err := client.Get("http://" + m.HTTPAddr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				if c, err := net.DialTimeout("tcp", m.SMTPAddr(), time.Second); err == nil {
					c.Close()
					return nil
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	m.kill()
	return fmt.Errorf("mailpit did not answer on %s and %s within 20s\nmailpit log:\n%s", m.SMTPAddr(), m.HTTPAddr, m.log.String())
}

// Messages returns every message the server holds, oldest first.
func (m *Mailpit) Messages(tb testing.TB) []MailMessage {
	tb.Helper()
	msgs, err := m.messages()
	if err != nil {
		tb.Fatal(err)
	}
	return msgs
}

// WaitMessages waits until the server holds at least n messages and
// returns them, oldest first; it fails tb if they do not arrive within
// timeout.
func (m *Mailpit) WaitMessages(tb testing.TB, n int, timeout time.Duration) []MailMessage {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		msgs, err := m.messages()
		if err != nil {
			tb.Fatal(err)
		}
		if len(msgs) >= n {
			return msgs
		}
		if time.Now().After(deadline) {
			tb.Fatalf("mailpit holds %d messages after %v, want %d\nmailpit log:\n%s", len(msgs), timeout, n, m.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Clear deletes every message the server holds.
func (m *Mailpit) Clear(tb testing.TB) {
	tb.Helper()
	req, err := http.NewRequest(http.MethodDelete, "http://"+m.HTTPAddr+"/api/v1/messages", nil)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := m.do(req); err != nil {
		tb.Fatalf("clear mailpit: %v", err)
	}
}

// Raw returns the message with Mailpit id as it was received, headers
// included.
func (m *Mailpit) Raw(tb testing.TB, id string) string {
	tb.Helper()
	b, err := m.get("/api/v1/message/" + id + "/raw")
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

type mailpitAddress struct{ Name, Address string }

func addresses(as []mailpitAddress) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.Address)
	}
	return out
}

func (m *Mailpit) messages() ([]MailMessage, error) {
	// The list holds summaries, newest first; the text is in each message.
	b, err := m.get("/api/v1/messages?limit=1000")
	if err != nil {
		return nil, err
	}
	var list struct {
		Messages []struct{ ID string }
	}
	if err := json.Unmarshal(b, &list); err != nil {
		return nil, fmt.Errorf("mailpit messages: %w", err)
	}
	out := make([]MailMessage, 0, len(list.Messages))
	for i := len(list.Messages) - 1; i >= 0; i-- {
		b, err := m.get("/api/v1/message/" + list.Messages[i].ID)
		if err != nil {
			return nil, err
		}
		var msg struct {
			ID          string
			From        mailpitAddress
			To, Cc, Bcc []mailpitAddress
			Subject     string
			Text        string
		}
		if err := json.Unmarshal(b, &msg); err != nil {
			return nil, fmt.Errorf("mailpit message %s: %w", list.Messages[i].ID, err)
		}
		out = append(out, MailMessage{
			ID:      msg.ID,
			From:    msg.From.Address,
			To:      addresses(msg.To),
			Cc:      addresses(msg.Cc),
			Bcc:     addresses(msg.Bcc),
			Subject: msg.Subject,
			Text:    strings.ReplaceAll(msg.Text, "\r\n", "\n"),
		})
	}
	return out, nil
}

func (m *Mailpit) get(path string) ([]byte, error) {
	req, err := http.NewRequest(http.MethodGet, "http://"+m.HTTPAddr+path, nil)
	if err != nil {
		return nil, err
	}
	return m.do(req)
}

func (m *Mailpit) do(req *http.Request) ([]byte, error) {
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("mailpit API: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("mailpit API %s %s: %w", req.Method, req.URL.Path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("mailpit API %s %s: %s: %s", req.Method, req.URL.Path, resp.Status, b)
	}
	return b, nil
}

func (m *Mailpit) kill() {
	if m.cmd == nil || m.cmd.Process == nil {
		return
	}
	m.cmd.Process.Signal(os.Interrupt)
	select {
	case <-m.done:
	case <-time.After(5 * time.Second):
		m.cmd.Process.Kill()
		<-m.done
	}
}

// Stop stops the server and removes its data.
func (m *Mailpit) Stop() {
	m.once.Do(func() {
		m.kill()
		os.RemoveAll(m.tmp)
	})
}

// selfSignedCert writes a fresh certificate and key for 127.0.0.1, ::1
// and localhost, valid for a day, and returns a pool trusting it.
func selfSignedCert(certFile, keyFile string) (*x509.CertPool, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "sitevault test mail server"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("create test certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return pool, nil
}
