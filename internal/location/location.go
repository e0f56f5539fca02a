// Package location reads a repository's location — a folder, an sftp:// or
// an s3:// URL — and opens the backend it names. It is the one place where
// backends are registered: adding a backend means adding a case here, not
// an init() side effect.
//
// Forms:
//
//	/srv/backups/repo                 a local folder (relative paths are made absolute)
//	file:///srv/backups/repo          the same
//	sftp://user@host[:port]/repo      a folder relative to the user's login folder
//	sftp://user@host[:port]//srv/repo an absolute folder (the extra slash, as restic reads it)
//	s3://host[:port]/bucket[/prefix]  S3 over HTTPS
//	s3+http://host[:port]/bucket[/prefix]  S3 over plain HTTP, for local servers
//
// Secrets never come from the URL: a URL with a password is refused with a
// message naming the environment variable to use instead, and
// Location.String never shows one. Credentials come from the environment
// (CredentialsFromEnv).
package location

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/user"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/sitevault/sitevault/internal/backend"
	"github.com/sitevault/sitevault/internal/backend/local"
	"github.com/sitevault/sitevault/internal/backend/retry"
	"github.com/sitevault/sitevault/internal/backend/s3"
	"github.com/sitevault/sitevault/internal/backend/sftp"
)

// The backends a location can name.
const (
	Local = "local"
	SFTP  = "sftp"
	S3    = "s3"
)

// Location is a parsed repository location.
type Location struct {
	Scheme string // Local, SFTP or S3
	// Path is the local folder (absolute), or the folder on the SFTP
	// server: relative to the login folder unless it starts with "/".
	Path string
	User string // SFTP; "" means the current user
	Host string // SFTP and S3
	Port int    // SFTP and S3; 0 means the default
	// Bucket and Prefix (a folder inside the bucket, "" for its root) are S3's.
	Bucket string
	Prefix string
	// Insecure selects plain HTTP for S3 (s3+http://).
	Insecure bool
}

const forms = "use a folder path, sftp://user@host/folder, s3://host/bucket or s3+http://host/bucket"

// Parse reads a repository location; see the package comment for the forms.
func Parse(s string) (Location, error) {
	if strings.TrimSpace(s) == "" {
		return Location{}, errors.New("empty repository location: " + forms)
	}
	scheme, _, hasScheme := strings.Cut(s, "://")
	if hasScheme && !isScheme(scheme) {
		hasScheme = false // a folder whose name holds "://"
	}
	if !hasScheme {
		for _, p := range []string{"sftp:", "s3:", "s3+http:"} {
			if strings.HasPrefix(strings.ToLower(s), p) {
				return Location{}, fmt.Errorf("repository location %q: write it as a URL (%s)", redact(s), forms)
			}
		}
		abs, err := filepath.Abs(s)
		if err != nil {
			return Location{}, fmt.Errorf("repository folder %q: %w", s, err)
		}
		return Location{Scheme: Local, Path: abs}, nil
	}
	switch strings.ToLower(scheme) {
	case "file":
		u, err := url.Parse(s)
		if err != nil || u.Host != "" || u.Path == "" {
			return Location{}, fmt.Errorf("repository location %q: a file URL is file:///absolute/folder", redact(s))
		}
		return Location{Scheme: Local, Path: filepath.Clean(u.Path)}, nil
	case "sftp":
		return parseSFTP(s)
	case "s3", "s3+https":
		return parseS3(s, false)
	case "s3+http":
		return parseS3(s, true)
	}
	return Location{}, fmt.Errorf("unknown scheme %q in repository location: %s", scheme, forms)
}

// isScheme reports whether s has the shape of a URL scheme (RFC 3986).
func isScheme(s string) bool {
	for i, c := range s {
		letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !letter && (i == 0 || !(c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return false
		}
	}
	return s != ""
}

// redact hides a password in a URL-like string for error messages.
func redact(s string) string {
	if u, err := url.Parse(s); err == nil && u.User != nil {
		if _, ok := u.User.Password(); ok {
			return u.Redacted()
		}
	}
	return s
}

func parseURL(s, what string) (*url.URL, int, error) {
	u, err := url.Parse(s)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error repeats the whole URL, password included
		}
		return nil, 0, fmt.Errorf("%s location: %w", what, err)
	}
	if u.Hostname() == "" {
		return nil, 0, fmt.Errorf("%s location %q has no host", what, u.Redacted())
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, 0, fmt.Errorf("%s location %q: options after ? or # are not supported", what, u.Redacted())
	}
	port := 0
	if p := u.Port(); p != "" {
		port, err = strconv.Atoi(p)
		if err != nil || port < 1 || port > 65535 {
			return nil, 0, fmt.Errorf("%s location %q: bad port %q", what, u.Redacted(), p)
		}
	}
	return u, port, nil
}

func parseSFTP(s string) (Location, error) {
	u, port, err := parseURL(s, "sftp")
	if err != nil {
		return Location{}, err
	}
	if _, ok := u.User.Password(); ok {
		return Location{}, fmt.Errorf("sftp location %q holds a password: remove it from the URL and set SITEVAULT_SFTP_PASSWORD (or use a key: SITEVAULT_SFTP_IDENTITY)", u.Redacted())
	}
	p := u.Path
	switch {
	case strings.HasPrefix(p, "//"):
		p = path.Clean(p[1:])
	default:
		p = strings.TrimPrefix(path.Clean("/"+p), "/")
	}
	if p == "" || p == "/" {
		return Location{}, fmt.Errorf("sftp location %q names no folder: use sftp://user@host/folder (relative to the login folder) or sftp://user@host//absolute/folder", u.Redacted())
	}
	return Location{Scheme: SFTP, User: u.User.Username(), Host: u.Hostname(), Port: port, Path: p}, nil
}

func parseS3(s string, insecure bool) (Location, error) {
	u, port, err := parseURL(s, "s3")
	if err != nil {
		return Location{}, err
	}
	if u.User != nil {
		return Location{}, fmt.Errorf("s3 location %q holds credentials: remove them from the URL and set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY", u.Redacted())
	}
	bucket, prefix, _ := strings.Cut(strings.Trim(u.Path, "/"), "/")
	if bucket == "" {
		return Location{}, fmt.Errorf("s3 location %q names no bucket: use s3://host/bucket[/folder]", u.String())
	}
	if err := checkBucket(bucket); err != nil {
		return Location{}, fmt.Errorf("s3 location %q: %w", u.String(), err)
	}
	prefix = strings.Trim(path.Clean("/"+prefix), "/")
	return Location{Scheme: S3, Host: u.Hostname(), Port: port, Bucket: bucket, Prefix: prefix, Insecure: insecure}, nil
}

// checkBucket applies S3's bucket naming rules, so a typo fails here and
// not as a puzzling server error.
func checkBucket(b string) error {
	if len(b) < 3 || len(b) > 63 {
		return fmt.Errorf("bucket name %q must have 3 to 63 characters", b)
	}
	for _, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return fmt.Errorf("bucket name %q may hold only a-z, 0-9, '-' and '.'", b)
		}
	}
	return nil
}

func hostPort(host string, port int) string {
	if port == 0 {
		if strings.Contains(host, ":") {
			return "[" + host + "]"
		}
		return host
	}
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// String returns the location in the form Parse reads. It never holds a
// secret.
func (l Location) String() string {
	switch l.Scheme {
	case Local:
		return l.Path
	case SFTP:
		userPart := ""
		if l.User != "" {
			userPart = url.User(l.User).String() + "@"
		}
		return "sftp://" + userPart + hostPort(l.Host, l.Port) + "/" + l.Path
	case S3:
		scheme := "s3://"
		if l.Insecure {
			scheme = "s3+http://"
		}
		s := scheme + hostPort(l.Host, l.Port) + "/" + l.Bucket
		if l.Prefix != "" {
			s += "/" + l.Prefix
		}
		return s
	}
	return "unknown location"
}

// Credentials are the secrets and trust anchors for opening a location.
// String and LogValue hide the secrets.
type Credentials struct {
	SFTPPassword    string // SITEVAULT_SFTP_PASSWORD
	SFTPIdentity    string // SITEVAULT_SFTP_IDENTITY: a private key file
	KnownHosts      string // SITEVAULT_KNOWN_HOSTS, default ~/.ssh/known_hosts
	SFTPFingerprint string // SITEVAULT_SFTP_FINGERPRINT: "SHA256:…" of the server's host key
	S3AccessKey     string // SITEVAULT_S3_ACCESS_KEY, else AWS_ACCESS_KEY_ID
	S3SecretKey     string // SITEVAULT_S3_SECRET_KEY, else AWS_SECRET_ACCESS_KEY
	S3Region        string // SITEVAULT_S3_REGION, else AWS_REGION, else AWS_DEFAULT_REGION
}

// CredentialsFromEnv reads the credentials from the environment.
func CredentialsFromEnv() Credentials {
	first := func(names ...string) string {
		for _, n := range names {
			if v := os.Getenv(n); v != "" {
				return v
			}
		}
		return ""
	}
	return Credentials{
		SFTPPassword:    os.Getenv("SITEVAULT_SFTP_PASSWORD"),
		SFTPIdentity:    os.Getenv("SITEVAULT_SFTP_IDENTITY"),
		KnownHosts:      os.Getenv("SITEVAULT_KNOWN_HOSTS"),
		SFTPFingerprint: os.Getenv("SITEVAULT_SFTP_FINGERPRINT"),
		S3AccessKey:     first("SITEVAULT_S3_ACCESS_KEY", "AWS_ACCESS_KEY_ID"),
		S3SecretKey:     first("SITEVAULT_S3_SECRET_KEY", "AWS_SECRET_ACCESS_KEY"),
		S3Region:        first("SITEVAULT_S3_REGION", "AWS_REGION", "AWS_DEFAULT_REGION"),
	}
}

func hidden(s string) string {
	if s == "" {
		return "unset"
	}
	return "set"
}

// String describes the credentials without their secrets.
func (c Credentials) String() string {
	return fmt.Sprintf("sftp password %s, identity %q, known hosts %q, fingerprint %q, s3 access key %s, s3 secret key %s, region %q",
		hidden(c.SFTPPassword), c.SFTPIdentity, c.KnownHosts, c.SFTPFingerprint, hidden(c.S3AccessKey), hidden(c.S3SecretKey), c.S3Region)
}

// LogValue implements slog.LogValuer without the secrets.
func (c Credentials) LogValue() slog.Value { return slog.StringValue(c.String()) }

// Open opens the backend at loc, wrapped in the retry decorator that logs
// to slog's default logger. With create, it makes the repository's folders
// (or bucket) first; it never writes the config file.
func Open(ctx context.Context, loc Location, creds Credentials, create bool) (backend.Backend, error) {
	return OpenWith(ctx, loc, creds, create, retry.Options{Logger: slog.Default()})
}

// OpenWith is Open with the retry decorator's options.
func OpenWith(ctx context.Context, loc Location, creds Credentials, create bool, opts retry.Options) (backend.Backend, error) {
	var be backend.Backend
	var err error
	switch loc.Scheme {
	case Local:
		if create {
			be, err = local.Create(ctx, loc.Path)
		} else {
			be, err = local.Open(ctx, loc.Path)
		}
	case SFTP:
		be, err = openSFTP(ctx, loc, creds, create)
	case S3:
		be, err = openS3(ctx, loc, creds, create)
	default:
		return nil, fmt.Errorf("open repository: unknown location type %q", loc.Scheme)
	}
	if err != nil {
		return nil, err
	}
	return retry.New(be, opts), nil
}

func openSFTP(ctx context.Context, loc Location, creds Credentials, create bool) (backend.Backend, error) {
	cfg := sftp.Config{
		User:               loc.User,
		Host:               loc.Host,
		Port:               loc.Port,
		Path:               loc.Path,
		Password:           creds.SFTPPassword,
		IdentityFile:       creds.SFTPIdentity,
		KnownHostsFile:     creds.KnownHosts,
		HostKeyFingerprint: creds.SFTPFingerprint,
	}
	home, _ := os.UserHomeDir()
	if cfg.User == "" {
		u, err := user.Current()
		if err != nil {
			return nil, fmt.Errorf("open %s: no user in the URL and no current user: %w", loc, err)
		}
		cfg.User = u.Username
	}
	if cfg.KnownHostsFile == "" && cfg.HostKeyFingerprint == "" && home != "" {
		cfg.KnownHostsFile = filepath.Join(home, ".ssh", "known_hosts")
	}
	if cfg.IdentityFile == "" && cfg.Password == "" && home != "" {
		// As ssh does: the user's default keys.
		for _, name := range []string{"id_ed25519", "id_ecdsa", "id_rsa"} {
			if p := filepath.Join(home, ".ssh", name); fileExists(p) {
				cfg.IdentityFile = p
				break
			}
		}
	}
	if cfg.IdentityFile == "" && cfg.Password == "" {
		return nil, backend.Permanent(fmt.Errorf("open %s: no SSH credentials: set SITEVAULT_SFTP_IDENTITY to a private key file or SITEVAULT_SFTP_PASSWORD", loc))
	}
	if create {
		return sftp.Create(ctx, cfg)
	}
	return sftp.Open(ctx, cfg)
}

func fileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir()
}

func openS3(ctx context.Context, loc Location, creds Credentials, create bool) (backend.Backend, error) {
	if creds.S3AccessKey == "" || creds.S3SecretKey == "" {
		return nil, backend.Permanent(fmt.Errorf("open %s: no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY", loc))
	}
	cfg := s3.Config{
		Endpoint:  hostPort(loc.Host, loc.Port),
		Bucket:    loc.Bucket,
		Prefix:    loc.Prefix,
		UseSSL:    !loc.Insecure,
		AccessKey: creds.S3AccessKey,
		SecretKey: creds.S3SecretKey,
		Region:    creds.S3Region,
	}
	if create {
		return s3.Create(ctx, cfg)
	}
	return s3.Open(ctx, cfg)
}
