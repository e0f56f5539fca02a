// Package ssh is the ssh connection: a site's files over SFTP and its
// database through an SSH tunnel, on one SSH connection.
//
// The server's host key is always verified against the key recorded for
// the site: an unknown key fails with an *UnknownHostKeyError that carries
// the key and its fingerprint (so `site add` can show it and ask), a
// different key fails with a *HostKeyChangedError. Nothing here ever skips
// the check.
//
// Files: an FS (sftpfs.go) spreads its requests over a few SFTP sessions
// (OpenSSH's sftp-server answers one request at a time per session) and
// coalesces the many small requests of parallel reads into fewer SSH
// packets (batch.go). Database: Dial opens direct-tcpip or
// direct-streamlocal channels, so DB_HOST means what it means on the server.
package ssh

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/pkg/sftp"
	xssh "golang.org/x/crypto/ssh"

	"github.com/sitevault/sitevault/internal/fsys"
	"github.com/sitevault/sitevault/internal/quickack"
)

// Errors callers branch on.
var (
	// ErrHostKeyUnknown is matched by *UnknownHostKeyError: no host key is
	// recorded for the server yet.
	ErrHostKeyUnknown = errors.New("ssh host key not known")
	// ErrHostKeyChanged is matched by *HostKeyChangedError: the server
	// presented a key other than the recorded one.
	ErrHostKeyChanged = errors.New("ssh host key changed")
	// ErrLogin means the server refused every authentication method tried
	// (wrong key, wrong password, unknown user).
	ErrLogin = errors.New("ssh login failed")
	// ErrUnreachable means no SSH connection could be made to the address
	// (refused, timed out, no such host, not an SSH server).
	ErrUnreachable = errors.New("ssh server unreachable")
	// ErrIdentity means the identity file could not be read or decrypted.
	ErrIdentity = errors.New("ssh identity file unusable")
	// ErrNoLoginMethod means there is nothing to log in with: no identity
	// file, no password and no prompt to ask for one.
	ErrNoLoginMethod = errors.New("no way to log in: no identity file, no password and no prompt")
)

// UnknownHostKeyError reports a server whose host key is not recorded. The
// caller shows Fingerprint, and if the user accepts the key, records
// AuthorizedKey and connects again.
type UnknownHostKeyError struct {
	Addr string
	Key  xssh.PublicKey
}

func (e *UnknownHostKeyError) Error() string {
	return fmt.Sprintf("the SSH host key of %s is not known yet: %s %s; compare it with the server's (ssh-keygen -lf /etc/ssh/ssh_host_%s_key.pub on the server) and accept it",
		e.Addr, e.Key.Type(), e.Fingerprint(), keyFileKind(e.Key))
}

// Is makes errors.Is(err, ErrHostKeyUnknown) true.
func (e *UnknownHostKeyError) Is(target error) bool { return target == ErrHostKeyUnknown }

// Fingerprint is the key's SHA256 fingerprint ("SHA256:…").
func (e *UnknownHostKeyError) Fingerprint() string { return xssh.FingerprintSHA256(e.Key) }

// AuthorizedKey is the key in authorized_keys format, without a newline:
// the form the catalog records.
func (e *UnknownHostKeyError) AuthorizedKey() string { return AuthorizedKey(e.Key) }

// HostKeyChangedError reports a server whose host key differs from the
// recorded one. The connection is refused.
type HostKeyChangedError struct {
	Addr      string
	Recorded  xssh.PublicKey
	Presented xssh.PublicKey
}

func (e *HostKeyChangedError) Error() string {
	return fmt.Sprintf("connection refused: the SSH host key of %s has CHANGED: recorded %s %s, the server presents %s %s. "+
		"Someone may be intercepting the connection, or the server was reinstalled; if you have checked the new key with the server's administrator, "+
		"accept it again",
		e.Addr, e.Recorded.Type(), xssh.FingerprintSHA256(e.Recorded), e.Presented.Type(), xssh.FingerprintSHA256(e.Presented))
}

// Is makes errors.Is(err, ErrHostKeyChanged) true.
func (e *HostKeyChangedError) Is(target error) bool { return target == ErrHostKeyChanged }

// AuthorizedKey returns k in authorized_keys format without the newline.
func AuthorizedKey(k xssh.PublicKey) string {
	return strings.TrimSpace(string(xssh.MarshalAuthorizedKey(k)))
}

// Fingerprint returns the SHA256 fingerprint of a key in authorized_keys
// format.
func Fingerprint(authorizedKey string) (string, error) {
	k, _, _, _, err := xssh.ParseAuthorizedKey([]byte(authorizedKey))
	if err != nil {
		return "", fmt.Errorf("parse host key: %w", err)
	}
	return xssh.FingerprintSHA256(k), nil
}

func keyFileKind(k xssh.PublicKey) string {
	switch k.Type() {
	case xssh.KeyAlgoED25519:
		return "ed25519"
	case xssh.KeyAlgoRSA:
		return "rsa"
	case xssh.KeyAlgoECDSA256, xssh.KeyAlgoECDSA384, xssh.KeyAlgoECDSA521:
		return "ecdsa"
	}
	return "*"
}

// Config says how to reach and log in to a server.
type Config struct {
	User string
	Addr string // host:port
	// Root is the site's root directory on the server (absolute).
	Root string
	// HostKey is the recorded host key in authorized_keys format; ""
	// means none is recorded, and Dial fails with *UnknownHostKeyError.
	HostKey string

	// IdentityFile is a private key file (OpenSSH, PEM or PKCS#8).
	IdentityFile string
	// Passphrase decrypts IdentityFile if it is encrypted; if empty,
	// PassphrasePrompt is asked.
	Passphrase string
	// Password is tried after the key (or alone); if empty,
	// PasswordPrompt is asked when the server offers password login.
	Password string

	// PassphrasePrompt and PasswordPrompt, if not nil, ask the user.
	PassphrasePrompt func(identityFile string) (string, error)
	PasswordPrompt   func(user, addr string) (string, error)

	// Timeout bounds the TCP connect and the handshake; 0 means 20s.
	Timeout time.Duration
	// KeepAlive is the interval of keepalive requests; 0 means 30s. A
	// server that misses three in a row is considered gone and the
	// connection is closed, failing what runs on it.
	KeepAlive time.Duration
	// SFTPConcurrency is the number of requests in flight per file read
	// or written; 0 means 64.
	SFTPConcurrency int
	// SFTPSessions is the number of SFTP sessions (server processes) an
	// FS spreads its requests over; 0 means 2. OpenSSH's sftp-server
	// serves one request at a time, so one session is bounded by one
	// server core.
	SFTPSessions int
	// Logger, if not nil, receives connection events.
	Logger *slog.Logger
}

// Conn is an SSH connection to a site's server. It is safe for concurrent use.
type Conn struct {
	client  *xssh.Client
	cfg     Config
	hostKey xssh.PublicKey
	log     *slog.Logger

	mu     sync.Mutex
	fss    map[*FS]struct{}
	closed bool
	stop   chan struct{}
	wg     sync.WaitGroup
}

// Dial connects and logs in to cfg.Addr, verifying the host key.
func Dial(ctx context.Context, cfg Config) (*Conn, error) {
	if cfg.Timeout == 0 {
		cfg.Timeout = 20 * time.Second
	}
	if cfg.KeepAlive == 0 {
		cfg.KeepAlive = 30 * time.Second
	}
	if cfg.SFTPConcurrency == 0 {
		cfg.SFTPConcurrency = 64
	}
	if cfg.SFTPSessions == 0 {
		cfg.SFTPSessions = 2
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Root == "" || !strings.HasPrefix(cfg.Root, "/") {
		return nil, fmt.Errorf("ssh %s: the site path %q must be absolute", cfg.Addr, cfg.Root)
	}

	var recorded xssh.PublicKey
	if cfg.HostKey != "" {
		k, _, _, _, err := xssh.ParseAuthorizedKey([]byte(cfg.HostKey))
		if err != nil {
			return nil, fmt.Errorf("ssh %s: the recorded host key is damaged: %w", cfg.Addr, err)
		}
		recorded = k
	}
	auth, err := authMethods(cfg)
	if err != nil {
		return nil, err
	}

	var presented xssh.PublicKey
	hostKeyOK := false
	sc := &xssh.ClientConfig{
		User: cfg.User,
		Auth: auth,
		HostKeyCallback: func(_ string, _ net.Addr, key xssh.PublicKey) error {
			presented = key
			switch {
			case recorded == nil:
				return &UnknownHostKeyError{Addr: cfg.Addr, Key: key}
			case !keysEqual(recorded, key):
				return &HostKeyChangedError{Addr: cfg.Addr, Recorded: recorded, Presented: key}
			}
			hostKeyOK = true
			return nil
		},
		Timeout: cfg.Timeout,
	}
	if recorded != nil {
		// Ask for the recorded key's type, or a server with several host
		// keys may present another one and look changed.
		sc.HostKeyAlgorithms = hostKeyAlgorithms(recorded)
	}

	d := net.Dialer{Timeout: cfg.Timeout, KeepAlive: cfg.KeepAlive}
	tcp, err := d.DialContext(ctx, "tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("%w: connect to %s: %w", ErrUnreachable, cfg.Addr, err)
	}
	tcp = quickack.Conn(tcp) // sshd's Nagle on SFTP and forwarding (see quickack)
	// Bound the handshake (longer when a person may be typing a
	// password); ctx cancellation closes the socket.
	handshake := cfg.Timeout
	if cfg.PasswordPrompt != nil && cfg.Password == "" {
		handshake = max(handshake, 5*time.Minute)
	}
	tcp.SetDeadline(time.Now().Add(handshake))
	stopWatch := context.AfterFunc(ctx, func() { tcp.Close() })
	c, chans, reqs, err := xssh.NewClientConn(tcp, cfg.Addr, sc)
	stopWatch()
	if err != nil {
		tcp.Close()
		var unknown *UnknownHostKeyError
		var changed *HostKeyChangedError
		switch {
		case errors.As(err, &unknown):
			return nil, unknown
		case errors.As(err, &changed):
			return nil, changed
		case ctx.Err() != nil:
			return nil, fmt.Errorf("ssh %s: %w", cfg.Addr, ctx.Err())
		case hostKeyOK:
			// The key was checked, so the server is the right one and
			// the failure came from authentication.
			return nil, fmt.Errorf("%w as %s@%s: %w; check the identity file, its passphrase or the password",
				ErrLogin, cfg.User, cfg.Addr, err)
		case presented == nil && recorded != nil:
			// The server may no longer offer the recorded key's type:
			// look at what it offers instead.
			if k, perr := probeHostKey(ctx, cfg.Addr, cfg.Timeout); perr == nil && !keysEqual(k, recorded) {
				return nil, &HostKeyChangedError{Addr: cfg.Addr, Recorded: recorded, Presented: k}
			}
			return nil, fmt.Errorf("%w: %s: SSH handshake: %w", ErrUnreachable, cfg.Addr, err)
		case presented == nil:
			return nil, fmt.Errorf("%w: %s: SSH handshake: %w", ErrUnreachable, cfg.Addr, err)
		}
		return nil, fmt.Errorf("ssh %s: %w", cfg.Addr, err)
	}
	tcp.SetDeadline(time.Time{})
	conn := &Conn{
		client:  xssh.NewClient(c, chans, reqs),
		cfg:     cfg,
		hostKey: presented,
		log:     log,
		fss:     map[*FS]struct{}{},
		stop:    make(chan struct{}),
	}
	conn.wg.Add(1)
	go conn.keepAlive()
	log.Debug("ssh connected", "addr", cfg.Addr, "user", cfg.User, "hostkey", xssh.FingerprintSHA256(presented))
	return conn, nil
}

// errProbed stops a probe handshake once the host key is seen.
var errProbed = errors.New("host key seen")

// probeHostKey returns the host key addr presents with no restriction on
// its type. It never logs in.
func probeHostKey(ctx context.Context, addr string, timeout time.Duration) (xssh.PublicKey, error) {
	d := net.Dialer{Timeout: timeout}
	tcp, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer tcp.Close()
	tcp.SetDeadline(time.Now().Add(timeout))
	var key xssh.PublicKey
	_, _, _, err = xssh.NewClientConn(tcp, addr, &xssh.ClientConfig{
		User: "sitevault-probe",
		HostKeyCallback: func(_ string, _ net.Addr, k xssh.PublicKey) error {
			key = k
			return errProbed
		},
	})
	if key == nil {
		return nil, err
	}
	return key, nil
}

func keysEqual(a, b xssh.PublicKey) bool {
	return a.Type() == b.Type() && string(a.Marshal()) == string(b.Marshal())
}

func hostKeyAlgorithms(k xssh.PublicKey) []string {
	if k.Type() == xssh.KeyAlgoRSA {
		return []string{xssh.KeyAlgoRSASHA512, xssh.KeyAlgoRSASHA256, xssh.KeyAlgoRSA}
	}
	return []string{k.Type()}
}

// authMethods builds key and password authentication from cfg. The
// identity file is read (and decrypted) up front, so that a wrong
// passphrase is reported as such and not as a refused login.
func authMethods(cfg Config) ([]xssh.AuthMethod, error) {
	var methods []xssh.AuthMethod
	if cfg.IdentityFile != "" {
		signer, err := loadIdentity(cfg)
		if err != nil {
			return nil, err
		}
		methods = append(methods, xssh.PublicKeys(signer))
	}
	if cfg.Password != "" {
		methods = append(methods, xssh.Password(cfg.Password))
	} else if cfg.PasswordPrompt != nil {
		methods = append(methods, xssh.PasswordCallback(func() (string, error) {
			return cfg.PasswordPrompt(cfg.User, cfg.Addr)
		}))
	}
	if len(methods) == 0 {
		return nil, fmt.Errorf("ssh %s: %w", cfg.Addr, ErrNoLoginMethod)
	}
	return methods, nil
}

func loadIdentity(cfg Config) (xssh.Signer, error) {
	pem, err := os.ReadFile(cfg.IdentityFile)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrIdentity, err)
	}
	signer, err := xssh.ParsePrivateKey(pem)
	var missing *xssh.PassphraseMissingError
	if errors.As(err, &missing) {
		pass := cfg.Passphrase
		if pass == "" && cfg.PassphrasePrompt != nil {
			if pass, err = cfg.PassphrasePrompt(cfg.IdentityFile); err != nil {
				return nil, fmt.Errorf("%w: %s: %w", ErrIdentity, cfg.IdentityFile, err)
			}
		}
		if pass == "" {
			return nil, fmt.Errorf("%w: %s is encrypted; set its passphrase in SITEVAULT_SSH_PASSPHRASE", ErrIdentity, cfg.IdentityFile)
		}
		signer, err = xssh.ParsePrivateKeyWithPassphrase(pem, []byte(pass))
		if errors.Is(err, x509.IncorrectPasswordError) {
			return nil, fmt.Errorf("%w: %s: wrong passphrase (SITEVAULT_SSH_PASSPHRASE)", ErrIdentity, cfg.IdentityFile)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrIdentity, cfg.IdentityFile, err)
	}
	return signer, nil
}

// keepAlive sends keepalive@openssh.com requests and closes the connection
// when the server stops answering, so that work on a dead connection fails
// instead of hanging.
func (c *Conn) keepAlive() {
	defer c.wg.Done()
	t := time.NewTicker(c.cfg.KeepAlive)
	defer t.Stop()
	missed := 0
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		res := make(chan error, 1)
		go func() {
			_, _, err := c.client.SendRequest("keepalive@openssh.com", true, nil)
			res <- err
		}()
		select {
		case <-c.stop:
			return
		case err := <-res:
			if err != nil {
				c.log.Warn("ssh keepalive failed; closing the connection", "addr", c.cfg.Addr, "err", err)
				c.client.Close()
				return
			}
			missed = 0
		case <-time.After(c.cfg.KeepAlive):
			missed++
			if missed >= 3 {
				c.log.Warn("ssh server stopped answering; closing the connection", "addr", c.cfg.Addr)
				c.client.Close()
				return
			}
		}
	}
}

// HostKey returns the verified host key the server presented.
func (c *Conn) HostKey() xssh.PublicKey { return c.hostKey }

// String describes the connection as user@host:port:root.
func (c *Conn) String() string { return c.cfg.User + "@" + c.cfg.Addr + ":" + c.cfg.Root }

// Client returns the underlying SSH client (for running a command later).
func (c *Conn) Client() *xssh.Client { return c.client }

// Dial opens a connection from the server to addr, as the server sees it:
// a direct-tcpip channel for "tcp" (a database on the server's
// localhost is reachable), a direct-streamlocal channel for "unix" (the
// database's socket).
func (c *Conn) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	switch network {
	case "tcp", "tcp4", "tcp6":
		conn, err := c.client.DialContext(ctx, network, addr)
		if err != nil {
			return nil, fmt.Errorf("tunnel to %s through %s: %w", addr, c.cfg.Addr, err)
		}
		return conn, nil
	case "unix":
		// x/crypto/ssh has no DialContext for sockets; close the client
		// side if ctx ends first.
		type result struct {
			conn net.Conn
			err  error
		}
		ch := make(chan result, 1)
		go func() {
			conn, err := c.client.Dial("unix", addr)
			ch <- result{conn, err}
		}()
		select {
		case r := <-ch:
			if r.err != nil {
				return nil, fmt.Errorf("tunnel to socket %s through %s: %w", addr, c.cfg.Addr, r.err)
			}
			return r.conn, nil
		case <-ctx.Done():
			go func() {
				if r := <-ch; r.conn != nil {
					r.conn.Close()
				}
			}()
			return nil, fmt.Errorf("tunnel to socket %s: %w", addr, ctx.Err())
		}
	}
	return nil, fmt.Errorf("tunnel through %s: unsupported network %q", c.cfg.Addr, network)
}

// FS opens an SFTP session rooted at the site's root. Closing the FS ends
// the session; closing the Conn closes every FS it opened.
func (c *Conn) FS(ctx context.Context) (fsys.FS, error) {
	return c.FSAt(ctx, c.cfg.Root)
}

// FSAt opens an SFTP session rooted at root, an absolute directory on the
// server (discovery reads the folder above the site's root).
func (c *Conn) FSAt(ctx context.Context, root string) (*FS, error) {
	client, session, err := c.newSFTP()
	if err != nil {
		return nil, fmt.Errorf("start SFTP on %s: %w", c.cfg.Addr, err)
	}
	f, err := newFS(ctx, client, root, c.cfg.User+"@"+c.cfg.Addr+":"+root)
	if err != nil {
		client.Close()
		session.Close()
		return nil, err
	}
	f.sessions = append(f.sessions, session)
	for len(f.cs) < c.cfg.SFTPSessions {
		client, session, err := c.newSFTP()
		if err != nil {
			break // one session is enough to work
		}
		f.cs = append(f.cs, client)
		f.sessions = append(f.sessions, session)
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		f.Close()
		return nil, fmt.Errorf("start SFTP on %s: connection closed", c.cfg.Addr)
	}
	c.fss[f] = struct{}{}
	f.onClose = func() {
		c.mu.Lock()
		delete(c.fss, f)
		c.mu.Unlock()
	}
	c.mu.Unlock()
	return f, nil
}

// newSFTP starts the sftp subsystem on a new session, with the session's
// input coalesced by a batchWriter.
func (c *Conn) newSFTP() (*sftp.Client, *xssh.Session, error) {
	s, err := c.client.NewSession()
	if err != nil {
		return nil, nil, err
	}
	in, err := s.StdinPipe()
	if err != nil {
		s.Close()
		return nil, nil, err
	}
	out, err := s.StdoutPipe()
	if err != nil {
		s.Close()
		return nil, nil, err
	}
	if err := s.RequestSubsystem("sftp"); err != nil {
		s.Close()
		return nil, nil, err
	}
	client, err := sftp.NewClientPipe(out, newBatchWriter(in),
		sftp.UseConcurrentReads(true),
		sftp.UseConcurrentWrites(true),
		sftp.MaxConcurrentRequestsPerFile(c.cfg.SFTPConcurrency),
	)
	if err != nil {
		s.Close()
		return nil, nil, err
	}
	return client, s, nil
}

// Close closes every FS and tunnel and the connection.
func (c *Conn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	fss := make([]*FS, 0, len(c.fss))
	for f := range c.fss {
		fss = append(fss, f)
	}
	c.mu.Unlock()
	close(c.stop)
	for _, f := range fss {
		f.Close()
	}
	err := c.client.Close()
	c.wg.Wait()
	return err
}
