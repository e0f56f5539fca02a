// Package sftp stores a repository on a server reached over SSH, with the
// SFTP subsystem (OpenSSH's sftp-server or internal-sftp).
//
// The server's host key is always verified, against a known_hosts file or
// a configured SHA256 fingerprint; an unknown or changed key is a
// HostKeyError that says how to accept it. A Save writes a temporary file
// (".tmp-…") with pipelined, concurrent writes, syncs it where the server
// offers fsync@openssh.com (a server without it gets one warning per
// backend: files are then only as durable as the server's page cache) and
// renames it into place with posix-rename@openssh.com, so a reader sees
// the whole file or none. The config is renamed with plain SFTP rename,
// which never replaces a file, so two inits cannot both write one. A
// connection that dropped fails the operation in flight; the next
// operation reconnects, so the retry decorator cures drops.
//
// A Save cut off by a dropped connection can leave its temporary file
// behind; List never reports it and CleanTemp removes it once old. List
// reads the data/xx folders concurrently, as round trips dominate.
package sftp

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/sitevault/sitevault/internal/backend"
	"github.com/sitevault/sitevault/internal/quickack"
)

var (
	_ backend.Backend     = (*Backend)(nil)
	_ backend.TempCleaner = (*Backend)(nil)
)

// Config says where the repository is and how to log in.
type Config struct {
	User string
	Host string
	Port int // 22 if zero
	// Path is the repository's folder on the server: relative to the login
	// folder, or absolute if it starts with "/".
	Path string

	// Password, IdentityFile and Signers are the ways to log in; at least
	// one is needed. IdentityFile is an unencrypted OpenSSH private key.
	Password     string
	IdentityFile string
	Signers      []ssh.Signer

	// KnownHostsFile (OpenSSH's format) or HostKeyFingerprint
	// ("SHA256:…", as ssh-keygen -lf prints it) verifies the server; the
	// fingerprint wins when both are set.
	KnownHostsFile     string
	HostKeyFingerprint string

	// Timeout bounds connecting and logging in (default 30s).
	Timeout time.Duration
	// Concurrency is the number of requests in flight per file transfer
	// (default 64).
	Concurrency int

	// Logger receives the warning about a server that cannot sync files;
	// nil means slog.Default().
	Logger *slog.Logger
}

func (c *Config) addr() string {
	port := c.Port
	if port == 0 {
		port = 22
	}
	return net.JoinHostPort(c.Host, strconv.Itoa(port))
}

// Backend is a repository on an SFTP server.
type Backend struct {
	cfg  Config
	addr string
	ssh  *ssh.ClientConfig
	// verified is set once the server's host key was accepted: a login
	// that fails after it was refused by the server.
	verified *atomic.Bool

	mu     sync.Mutex
	conn   *conn
	closed bool

	// onReadDir, if set, is called as each folder listing starts and
	// returns a function called as it ends; tests count round trips.
	onReadDir func(dir string) (done func())
	// hideExtensions, if set, makes the backend act as if the server did
	// not offer these SFTP extensions; tests use it for servers that lack
	// fsync@openssh.com or posix-rename@openssh.com.
	hideExtensions []string

	// noFsyncWarned makes the warning about a server without fsync appear
	// once per backend (a run), not once per file.
	noFsyncWarned sync.Once
}

// conn is one SSH connection with its SFTP session.
type conn struct {
	ssh         *ssh.Client
	sftp        *sftp.Client
	dead        atomic.Bool
	posixRename bool
	fsync       bool
}

// close drops the connection. The TCP connection goes first: closing the
// SFTP session first would wait for the server, which may be gone.
func (c *conn) close() {
	c.dead.Store(true)
	c.ssh.Close()
	go c.sftp.Close()
}

// Open connects to the server and opens the repository at cfg.Path. A
// missing folder is an error wrapping backend.ErrNotExist; refused
// credentials and untrusted host keys are permanent errors.
func Open(ctx context.Context, cfg Config) (*Backend, error) {
	b, err := newBackend(cfg)
	if err != nil {
		return nil, err
	}
	c, err := b.client(ctx)
	if err != nil {
		return nil, err
	}
	fi, err := c.sftp.Stat(b.cfg.Path)
	if err == nil && !fi.IsDir() {
		err = backend.Permanent(errors.New("not a folder"))
	}
	if err != nil {
		b.Close()
		return nil, b.mapError(c, fmt.Errorf("open repository %s: %w", b.Location(), err), err)
	}
	return b, nil
}

// Create connects to the server, makes the repository's folders (cfg.Path
// included) and opens it. It does not write the config file.
func Create(ctx context.Context, cfg Config) (*Backend, error) {
	b, err := newBackend(cfg)
	if err != nil {
		return nil, err
	}
	c, err := b.client(ctx)
	if err != nil {
		return nil, err
	}
	if err := c.sftp.MkdirAll(b.cfg.Path); err != nil {
		b.Close()
		return nil, b.mapError(c, fmt.Errorf("create repository %s: %w", b.Location(), err), err)
	}
	for _, d := range backend.Dirs() {
		p := path.Join(b.cfg.Path, d)
		if err := c.sftp.Mkdir(p); err != nil {
			if fi, serr := c.sftp.Stat(p); serr == nil && fi.IsDir() {
				continue
			}
			b.Close()
			return nil, b.mapError(c, fmt.Errorf("create repository folder %s: %w", p, err), err)
		}
	}
	return b, nil
}

func newBackend(cfg Config) (*Backend, error) {
	if cfg.Host == "" || cfg.User == "" || cfg.Path == "" {
		return nil, backend.Permanent(errors.New("sftp: host, user and path are required"))
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 64
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	b := &Backend{cfg: cfg, addr: cfg.addr(), verified: new(atomic.Bool)}
	check, algos, err := hostKeyCheck(&cfg, b.addr)
	if err != nil {
		return nil, backend.Permanent(fmt.Errorf("connect to %s: %w", b.Location(), err))
	}
	signers := cfg.Signers
	if cfg.IdentityFile != "" {
		s, err := readIdentity(cfg.IdentityFile)
		if err != nil {
			return nil, err
		}
		signers = append(signers, s)
	}
	var auth []ssh.AuthMethod
	if len(signers) > 0 {
		auth = append(auth, ssh.PublicKeys(signers...))
	}
	if cfg.Password != "" {
		auth = append(auth, ssh.Password(cfg.Password))
	}
	if len(auth) == 0 {
		return nil, backend.Permanent(fmt.Errorf("connect to %s: no credentials: configure an identity file (private key) or a password", b.Location()))
	}
	b.ssh = &ssh.ClientConfig{
		User: cfg.User,
		Auth: auth,
		HostKeyCallback: func(host string, remote net.Addr, key ssh.PublicKey) error {
			if err := check(host, remote, key); err != nil {
				return err
			}
			b.verified.Store(true)
			return nil
		},
		HostKeyAlgorithms: algos,
		Timeout:           cfg.Timeout,
	}
	return b, nil
}

func readIdentity(file string) (ssh.Signer, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, backend.Permanent(fmt.Errorf("read identity file: %w", err))
	}
	s, err := ssh.ParsePrivateKey(pem)
	var pass *ssh.PassphraseMissingError
	if errors.As(err, &pass) {
		return nil, backend.Permanent(fmt.Errorf("identity file %s is protected by a passphrase: sitevault needs a key without one (a dedicated backup key)", file))
	}
	if err != nil {
		return nil, backend.Permanent(fmt.Errorf("read identity file %s: %w", file, err))
	}
	return s, nil
}

// Location implements backend.Backend: sftp://user@host:port/path, the
// path doubled-slashed when absolute (as location.Parse reads it).
func (b *Backend) Location() string {
	return "sftp://" + b.cfg.User + "@" + b.addr + "/" + b.cfg.Path
}

// client returns the live connection, connecting again if the last one
// dropped.
func (b *Backend) client(ctx context.Context) (*conn, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, backend.Permanent(errors.New("sftp backend is closed"))
	}
	if b.conn != nil && !b.conn.dead.Load() {
		return b.conn, nil
	}
	if b.conn != nil {
		b.conn.close()
		b.conn = nil
	}
	c, err := b.dial(ctx)
	if err != nil {
		return nil, err
	}
	b.conn = c
	return c, nil
}

func (b *Backend) dial(ctx context.Context) (*conn, error) {
	d := net.Dialer{Timeout: b.cfg.Timeout}
	nc, err := d.DialContext(ctx, "tcp", b.addr)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w (check the host name, the port and that the SSH server runs)", b.addr, err)
	}
	nc = quickack.Conn(nc) // sshd's Nagle on SFTP connections (see quickack)
	// Bound the handshake and login; a cancelled ctx interrupts them.
	nc.SetDeadline(time.Now().Add(b.cfg.Timeout))
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	defer stop()
	b.verified.Store(false)
	sc, chans, reqs, err := ssh.NewClientConn(nc, b.addr, b.ssh)
	if err != nil {
		nc.Close()
		var hk *HostKeyError
		switch {
		case ctx.Err() != nil:
			return nil, fmt.Errorf("connect to %s: %w", b.addr, ctx.Err())
		case errors.As(err, &hk):
			return nil, backend.Permanent(fmt.Errorf("connect to %s: %w", b.addr, hk))
		case b.verified.Load() && !isConnError(err):
			// The server is the right one and refused every method.
			return nil, backend.Permanent(fmt.Errorf("log in to %s as %s: %w: %w (check the user, key or password)", b.addr, b.cfg.User, backend.ErrAccess, err))
		}
		return nil, fmt.Errorf("connect to %s: %w", b.addr, err)
	}
	nc.SetDeadline(time.Time{})
	client := ssh.NewClient(sc, chans, reqs)
	sc2, err := sftp.NewClient(client,
		sftp.UseConcurrentWrites(true),
		sftp.UseConcurrentReads(true),
		sftp.MaxConcurrentRequestsPerFile(b.cfg.Concurrency),
	)
	if err != nil {
		client.Close()
		return nil, backend.Permanent(fmt.Errorf("start sftp on %s: %w (is the SFTP subsystem enabled on the server?)", b.addr, err))
	}
	c := &conn{ssh: client, sftp: sc2}
	_, c.posixRename = sc2.HasExtension("posix-rename@openssh.com")
	_, c.fsync = sc2.HasExtension("fsync@openssh.com")
	for _, e := range b.hideExtensions {
		switch e {
		case "posix-rename@openssh.com":
			c.posixRename = false
		case "fsync@openssh.com":
			c.fsync = false
		}
	}
	done := make(chan struct{})
	go func() {
		sc2.Wait()
		c.dead.Store(true)
		close(done)
	}()
	go c.keepalive(b.cfg.Timeout, done)
	return c, nil
}

// keepalive probes the server every interval; a connection that does not
// answer within interval is closed, so that calls blocked on a vanished
// server (a half-open TCP connection) fail and the next call reconnects.
func (c *conn) keepalive(interval time.Duration, done <-chan struct{}) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
		}
		answered := make(chan struct{})
		go func() {
			c.ssh.SendRequest("keepalive@openssh.com", true, nil)
			close(answered)
		}()
		select {
		case <-answered:
		case <-done:
			return
		case <-time.After(interval):
			c.close()
			return
		}
	}
}

// isConnError reports whether err says the connection is gone.
func isConnError(err error) bool {
	var ne net.Error
	return errors.Is(err, sftp.ErrSSHFxConnectionLost) || errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.As(err, &ne)
}

// mapError wraps err (whose cause is cause) with the matching sentinel
// and, if the connection broke, drops it so the next call reconnects.
func (b *Backend) mapError(c *conn, err, cause error) error {
	switch {
	case errors.Is(cause, os.ErrNotExist):
		return fmt.Errorf("%w: %w", err, backend.ErrNotExist)
	case errors.Is(cause, os.ErrPermission):
		return backend.Permanent(fmt.Errorf("%w: %w", err, backend.ErrAccess))
	case backend.IsPermanent(cause):
		return backend.Permanent(err)
	}
	if c != nil && isConnError(cause) {
		c.close()
	}
	return err
}

func (b *Backend) path(h backend.Handle) string {
	return path.Join(b.cfg.Path, backend.Filename(h))
}

func tempName() string {
	var r [8]byte
	rand.Read(r[:])
	return backend.TempPrefix + hex.EncodeToString(r[:])
}

// Save implements backend.Backend.
func (b *Backend) Save(ctx context.Context, h backend.Handle, rd io.ReadSeeker, size int64) error {
	if err := h.Valid(); err != nil {
		return backend.Permanent(fmt.Errorf("save: %w", err))
	}
	if _, err := rd.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("save %v: rewind: %w", h, err)
	}
	c, err := b.client(ctx)
	if err != nil {
		return fmt.Errorf("save %v: %w", h, err)
	}
	final := b.path(h)
	dir := path.Dir(final)
	tmp := path.Join(dir, tempName())
	const flags = os.O_WRONLY | os.O_CREATE | os.O_EXCL
	f, err := c.sftp.OpenFile(tmp, flags)
	if errors.Is(err, os.ErrNotExist) {
		// Concurrent saves may race to make the folder: try anyway.
		c.sftp.MkdirAll(dir)
		f, err = c.sftp.OpenFile(tmp, flags)
	}
	if err != nil {
		return b.mapError(c, fmt.Errorf("save %v: %w", h, err), err)
	}
	if err := b.write(ctx, c, f, rd, size); err != nil {
		f.Close()
		if !c.dead.Load() {
			c.sftp.Remove(tmp)
		}
		return b.mapError(c, fmt.Errorf("save %v: %w", h, err), err)
	}
	if c.posixRename && h.Type != backend.ConfigFile {
		err = c.sftp.PosixRename(tmp, final)
	} else {
		// SFTP v3 rename does not replace (OpenSSH links the new name):
		// the config is never replaced, so of two inits one fails here.
		err = c.sftp.Rename(tmp, final)
		if err != nil {
			if _, serr := c.sftp.Stat(final); serr == nil {
				c.sftp.Remove(tmp)
				if h.Type == backend.ConfigFile {
					return fmt.Errorf("save %v: %w", h, backend.ErrExist)
				}
				// The file that is there holds the same bytes (names are
				// content-derived).
				return nil
			}
		}
	}
	if err != nil {
		if !c.dead.Load() {
			c.sftp.Remove(tmp)
		}
		return b.mapError(c, fmt.Errorf("save %v: rename: %w", h, err), err)
	}
	return nil
}

func (b *Backend) write(ctx context.Context, c *conn, f *sftp.File, rd io.Reader, size int64) error {
	n, err := f.ReadFromWithConcurrency(io.LimitReader(backend.ContextReader(ctx, rd), size), b.cfg.Concurrency)
	if err != nil {
		return fmt.Errorf("write: %w", err)
	}
	if n != size {
		return backend.Permanent(fmt.Errorf("read %d bytes, want %d: %w", n, size, io.ErrUnexpectedEOF))
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if c.fsync {
		if err := f.Sync(); err != nil {
			return fmt.Errorf("sync: %w", err)
		}
	} else {
		b.noFsyncWarned.Do(func() {
			b.cfg.Logger.Warn("SFTP server cannot sync files (no fsync@openssh.com): a crash of the server may lose files this backup wrote; use an OpenSSH server",
				"location", b.Location())
		})
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close: %w", err)
	}
	return nil
}

// Load implements backend.Backend.
func (b *Backend) Load(ctx context.Context, h backend.Handle, length int, offset int64, fn func(io.Reader) error) error {
	if err := h.Valid(); err != nil {
		return backend.Permanent(fmt.Errorf("load: %w", err))
	}
	if length < 0 || offset < 0 {
		return backend.Permanent(fmt.Errorf("load %v: negative range %d+%d", h, offset, length))
	}
	c, err := b.client(ctx)
	if err != nil {
		return fmt.Errorf("load %v: %w", h, err)
	}
	f, err := c.sftp.Open(b.path(h))
	if err != nil {
		return b.mapError(c, fmt.Errorf("load %v: %w", h, err), err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return b.mapError(c, fmt.Errorf("load %v: %w", h, err), err)
	}
	n := int64(length)
	if length == 0 {
		n = fi.Size() - offset
	}
	if offset > fi.Size() || offset+n > fi.Size() {
		return backend.Permanent(fmt.Errorf("load %v: range %d+%d outside file of %d bytes: %w", h, offset, length, fi.Size(), io.ErrUnexpectedEOF))
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return b.mapError(c, fmt.Errorf("load %v: %w", h, err), err)
	}
	// Large reads go out as concurrent requests, so read in big pieces.
	br := bufio.NewReaderSize(io.LimitReader(f, n), int(min(max(n, 4096), 1<<20)))
	rd := &loadReader{rd: backend.ExactReader(backend.ContextReader(ctx, br), n), h: h, b: b, c: c}
	return fn(rd)
}

// loadReader names the file in read errors and drops a broken connection.
type loadReader struct {
	rd io.Reader
	h  backend.Handle
	b  *Backend
	c  *conn
}

func (r *loadReader) Read(p []byte) (int, error) {
	n, err := r.rd.Read(p)
	if err != nil && err != io.EOF {
		err = r.b.mapError(r.c, fmt.Errorf("load %v: %w", r.h, err), err)
	}
	return n, err
}

// Stat implements backend.Backend.
func (b *Backend) Stat(ctx context.Context, h backend.Handle) (backend.FileInfo, error) {
	if err := h.Valid(); err != nil {
		return backend.FileInfo{}, backend.Permanent(fmt.Errorf("stat: %w", err))
	}
	c, err := b.client(ctx)
	if err != nil {
		return backend.FileInfo{}, fmt.Errorf("stat %v: %w", h, err)
	}
	fi, err := c.sftp.Stat(b.path(h))
	if err != nil {
		return backend.FileInfo{}, b.mapError(c, fmt.Errorf("stat %v: %w", h, err), err)
	}
	return backend.FileInfo{Name: h.Name, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// listConcurrency bounds the folder listings in flight: each costs three
// round trips (open, read, close), so on a slow link the 256 data/xx
// folders one after another take seconds; 16 at a time take a sixteenth.
const listConcurrency = 16

// List implements backend.Backend.
func (b *Backend) List(ctx context.Context, t backend.FileType, fn func(backend.FileInfo) error) error {
	if t == backend.ConfigFile {
		return backend.Permanent(fmt.Errorf("list %v: config is a single file", t))
	}
	c, err := b.client(ctx)
	if err != nil {
		return fmt.Errorf("list %v: %w", t, err)
	}
	dir := path.Join(b.cfg.Path, string(t))
	if t != backend.PackFile {
		files, err := b.readDir(ctx, c, dir)
		if err != nil {
			return err
		}
		return each(ctx, files, fn)
	}
	subs, err := b.readDirRaw(ctx, c, dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return b.mapError(c, fmt.Errorf("list %v: %w", t, err), err)
	}
	var dirs []string
	for _, sub := range subs {
		if sub.IsDir() && len(sub.Name()) == 2 {
			dirs = append(dirs, path.Join(dir, sub.Name()))
		}
	}
	return backend.EachFolder(ctx, dirs, listConcurrency, func(ctx context.Context, dir string) ([]backend.FileInfo, error) {
		return b.readDir(ctx, c, dir)
	}, func(files []backend.FileInfo) error {
		return each(ctx, files, fn)
	})
}

func each(ctx context.Context, files []backend.FileInfo, fn func(backend.FileInfo) error) error {
	for _, fi := range files {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(fi); err != nil {
			return err
		}
	}
	return nil
}

// readDirRaw reads dir on the server; every folder listing goes through it.
func (b *Backend) readDirRaw(ctx context.Context, c *conn, dir string) ([]os.FileInfo, error) {
	if b.onReadDir != nil {
		defer b.onReadDir(dir)()
	}
	return c.sftp.ReadDirContext(ctx, dir)
}

// readDir returns the saved files in dir: neither folders nor temporary
// files. A missing dir holds none.
func (b *Backend) readDir(ctx context.Context, c *conn, dir string) ([]backend.FileInfo, error) {
	entries, err := b.readDirRaw(ctx, c, dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, b.mapError(c, fmt.Errorf("list %s: %w", dir, err), err)
	}
	files := make([]backend.FileInfo, 0, len(entries))
	for _, e := range entries {
		if !e.IsDir() && !backend.IsTemp(e.Name()) {
			files = append(files, backend.FileInfo{Name: e.Name(), Size: e.Size(), ModTime: e.ModTime()})
		}
	}
	return files, nil
}

// CleanTemp implements backend.TempCleaner: it removes what saves cut off
// by a dropped connection left behind.
func (b *Backend) CleanTemp(ctx context.Context, olderThan time.Time) (int, error) {
	c, err := b.client(ctx)
	if err != nil {
		return 0, fmt.Errorf("clean temporary files: %w", err)
	}
	dirs := []string{b.cfg.Path}
	for _, d := range backend.Dirs() {
		dirs = append(dirs, path.Join(b.cfg.Path, d))
	}
	removed := 0
	err = backend.EachFolder(ctx, dirs, listConcurrency, func(ctx context.Context, dir string) (int, error) {
		return b.cleanTemp(ctx, c, dir, olderThan)
	}, func(n int) error {
		removed += n
		return nil
	})
	if err != nil {
		return removed, fmt.Errorf("clean temporary files: %w", err)
	}
	return removed, nil
}

// cleanTemp removes the temporary files in dir modified before olderThan.
func (b *Backend) cleanTemp(ctx context.Context, c *conn, dir string, olderThan time.Time) (removed int, err error) {
	entries, err := b.readDirRaw(ctx, c, dir)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, b.mapError(c, fmt.Errorf("list %s: %w", dir, err), err)
	}
	for _, e := range entries {
		if e.IsDir() || !backend.IsTemp(e.Name()) {
			continue
		}
		if !e.ModTime().Before(olderThan) {
			continue // a save may still be writing it
		}
		if err := ctx.Err(); err != nil {
			return removed, err
		}
		p := path.Join(dir, e.Name())
		if err := c.sftp.Remove(p); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue // renamed into place or removed since the listing
			}
			return removed, b.mapError(c, fmt.Errorf("remove %s: %w", p, err), err)
		}
		removed++
	}
	return removed, nil
}

// Remove implements backend.Backend.
func (b *Backend) Remove(ctx context.Context, h backend.Handle) error {
	if err := h.Valid(); err != nil {
		return backend.Permanent(fmt.Errorf("remove: %w", err))
	}
	c, err := b.client(ctx)
	if err != nil {
		return fmt.Errorf("remove %v: %w", h, err)
	}
	if err := c.sftp.Remove(b.path(h)); err != nil {
		return b.mapError(c, fmt.Errorf("remove %v: %w", h, err), err)
	}
	return nil
}

// Close implements backend.Backend.
func (b *Backend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	if b.conn != nil {
		b.conn.close()
		b.conn = nil
	}
	return nil
}
