// Package connection is how sitevault reaches a site: a file system rooted
// at the site's root and a dialer for its database.
//
// Two kinds exist. A local connection reads the disk (fsys.Local) and dials
// the database directly. An ssh connection (package connection/ssh) reads
// files over SFTP and dials the database through the SSH connection, as the
// server sees it (a direct-tcpip channel to DB_HOST, or direct-streamlocal
// to a socket). Backup and restore only see this interface, so local and
// remote sites share one code path.
//
// Open builds a connection from a catalog entry; it is the one place that
// knows every kind.
package connection

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"

	"github.com/sitevault/sitevault/internal/connection/ssh"
	"github.com/sitevault/sitevault/internal/fsys"
	"github.com/sitevault/sitevault/internal/sitevault"
)

// Connection reaches one site. Implementations are safe for concurrent use.
type Connection interface {
	// FS opens the site's files, rooted at the site's root. The caller
	// closes it; closing the Connection closes it too.
	FS(ctx context.Context) (fsys.FS, error)
	// FSAt opens the files under dir, an absolute path on the machine
	// that holds the site (discovery reads the folder above the root).
	FSAt(ctx context.Context, dir string) (fsys.FS, error)
	// Dial connects to the database at addr as the site's machine sees
	// it. network is "tcp" (addr host:port) or "unix" (addr a socket path).
	Dial(ctx context.Context, network, addr string) (net.Conn, error)
	// String describes the connection for messages (never with secrets).
	String() string
	// Close releases the connection and everything opened through it.
	Close() error
}

// Environment variables Open reads.
const (
	EnvSSHPassword   = "SITEVAULT_SSH_PASSWORD"
	EnvSSHPassphrase = "SITEVAULT_SSH_PASSPHRASE"
)

// Options adjust Open.
type Options struct {
	// Env looks up the environment variables that may supply a secret
	// (EnvSSHPassword, EnvSSHPassphrase); nil means no environment. The
	// CLI passes its process environment; a service passes nil, so one
	// variable set for the daemon never replaces the secrets stored for
	// each of its sites.
	Env func(string) (string, bool)
	// PasswordPrompt and PassphrasePrompt ask the user when no secret is
	// stored or set in the environment; nil means do not ask.
	PasswordPrompt   func(user, addr string) (string, error)
	PassphrasePrompt func(identityFile string) (string, error)
	Logger           *slog.Logger
}

// Open connects to a site. For an ssh site the host key must be recorded in
// site.SSH.HostKey; otherwise Open fails with *ssh.UnknownHostKeyError
// (errors.Is ssh.ErrHostKeyUnknown), which carries the key to record. A
// different key fails with *ssh.HostKeyChangedError.
//
// Secrets come from opts.Env first (SITEVAULT_SSH_PASSWORD,
// SITEVAULT_SSH_PASSPHRASE; only when Env is set), then the catalog, then
// the prompts.
func Open(ctx context.Context, site sitevault.Site, opts Options) (Connection, error) {
	switch site.Kind {
	case sitevault.Local:
		return NewLocal(site.Path)
	case sitevault.SSH:
		env := opts.Env
		if env == nil {
			env = emptyEnv
		}
		password := site.SSH.Password.Reveal()
		if v, ok := env(EnvSSHPassword); ok && v != "" {
			password = v
		}
		passphrase := site.SSH.Passphrase.Reveal()
		if v, ok := env(EnvSSHPassphrase); ok && v != "" {
			passphrase = v
		}
		conn, err := ssh.Dial(ctx, ssh.Config{
			User:             site.SSH.User,
			Addr:             site.SSHAddress(),
			Root:             site.Path,
			HostKey:          site.SSH.HostKey,
			IdentityFile:     site.SSH.IdentityFile,
			Passphrase:       passphrase,
			Password:         password,
			PasswordPrompt:   opts.PasswordPrompt,
			PassphrasePrompt: opts.PassphrasePrompt,
			Logger:           opts.Logger,
		})
		if err != nil {
			return nil, err
		}
		return sshConnection{conn}, nil
	}
	return nil, fmt.Errorf("site %s: unknown connection kind %q", site.Name, site.Kind)
}

// emptyEnv is an empty environment.
func emptyEnv(string) (string, bool) { return "", false }

// sshConnection adapts *ssh.Conn (whose FSAt returns the concrete type).
type sshConnection struct{ *ssh.Conn }

func (c sshConnection) FSAt(ctx context.Context, dir string) (fsys.FS, error) {
	f, err := c.Conn.FSAt(ctx, dir)
	if err != nil {
		return nil, err
	}
	return f, nil
}

// SSH returns the ssh connection behind c, if it is one (for the host key
// it verified).
func SSH(c Connection) (*ssh.Conn, bool) {
	sc, ok := c.(sshConnection)
	if !ok {
		return nil, false
	}
	return sc.Conn, true
}

// Local is a site on this machine.
type Local struct {
	root   string
	dialer net.Dialer

	mu  sync.Mutex
	fss []*fsys.Local
}

var _ Connection = (*Local)(nil)

// NewLocal returns a connection to the site whose root is the directory
// root. It fails if root is not an existing directory.
func NewLocal(root string) (*Local, error) {
	if !filepath.IsAbs(root) {
		return nil, fmt.Errorf("site path %q must be absolute", root)
	}
	fi, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("site path: %w", err)
	}
	if !fi.IsDir() {
		return nil, &fs.PathError{Op: "open site", Path: root, Err: fmt.Errorf("not a directory")}
	}
	return &Local{root: root}, nil
}

// FS opens the site's root on the local disk.
func (l *Local) FS(ctx context.Context) (fsys.FS, error) { return l.FSAt(ctx, l.root) }

// FSAt opens dir on the local disk.
func (l *Local) FSAt(ctx context.Context, dir string) (fsys.FS, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, err := fsys.NewLocal(dir)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.fss = append(l.fss, f)
	l.mu.Unlock()
	return f, nil
}

// Dial connects directly ("tcp" or "unix").
func (l *Local) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	return l.dialer.DialContext(ctx, network, addr)
}

// String returns the root path.
func (l *Local) String() string { return l.root }

// Close closes every FS opened through l.
func (l *Local) Close() error {
	l.mu.Lock()
	fss := l.fss
	l.fss = nil
	l.mu.Unlock()
	for _, f := range fss {
		f.Close()
	}
	return nil
}
