// Package sitevault is the domain every layer shares: a Site and its
// connection settings, the Secret type that never prints, and the rules a
// site's settings follow. The catalog stores these types; the CLI, the
// service, backup, restore and download use them. It imports nothing of
// sitevault's own.
package sitevault

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/mail"
	"strconv"
	"strings"
	"time"
)

// Kind is how sitevault reaches a site.
type Kind string

// Connection kinds.
const (
	Local Kind = "local" // files on this machine's disk, database over TCP or a socket
	SSH   Kind = "ssh"   // files over SFTP, database through an SSH tunnel
)

// Site is one registered WordPress install.
type Site struct {
	// Name identifies the site: lower-case letters, digits and '-', at
	// most 63 characters, starting with a letter or digit.
	Name string
	Kind Kind
	// Path is the WordPress root (ABSPATH) on the machine that holds the
	// files: an absolute path.
	Path string
	SSH  SSHSettings // Kind SSH only
	DB   DBOverrides // values that replace what wp-config.php says
	// LastDB is the last database login that worked (nil: none yet).
	LastDB *DBCredentials
	// Schedule is when the service backs the site up (daily).
	Schedule Schedule
	// Retention is the forget policy applied after each scheduled backup;
	// nil means DefaultRetention.
	Retention *Retention
	// Notify lists who gets the site's alert mails (besides the owners).
	Notify  []string
	Created time.Time
	Updated time.Time
}

// SSHSettings say how to log in to an ssh site's server.
type SSHSettings struct {
	User string
	Host string // a name or an IP address, without brackets
	Port int    // 0 means 22
	// IdentityFile is a private key file on this machine; "" means
	// password authentication (or the agent-less defaults of the caller).
	IdentityFile string
	// HostKey is the server's recorded host key in authorized_keys format
	// ("ssh-ed25519 AAAA…"), "" until the first accepted connection.
	HostKey string
	// HostKeyFingerprint is HostKey's SHA256 fingerprint, for display.
	HostKeyFingerprint string
	Password           Secret // sealed at rest
	Passphrase         Secret // of IdentityFile; sealed at rest
}

// DBOverrides replace the corresponding wp-config.php values when set.
type DBOverrides struct {
	Host        string
	Name        string
	User        string
	Password    Secret // sealed at rest
	TablePrefix string
}

// IsZero reports whether no override is set.
func (o DBOverrides) IsZero() bool { return o == DBOverrides{} }

// DBCredentials is a database login that worked, kept so the database
// backup can tell a changed password from an unreachable server.
type DBCredentials struct {
	Host     string
	Name     string
	User     string
	Password Secret
}

// ErrInvalid means a site's settings break a rule (a name with forbidden
// characters, an ssh site without a host, …). The wrapping error says which
// rule.
var ErrInvalid = errors.New("invalid site")

// Secret is a password or passphrase. Printing it with fmt, encoding it as
// JSON or text and logging it with slog all give "[redacted]"; Reveal gives
// the value to the code that must use it.
type Secret string

const redacted = "[redacted]"

// Reveal returns the secret's value.
func (s Secret) Reveal() string { return string(s) }

// IsSet reports whether the secret is non-empty.
func (s Secret) IsSet() bool { return s != "" }

// String returns "[redacted]" ("" for an empty secret).
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString keeps %#v from showing the value.
func (s Secret) GoString() string { return strconv.Quote(s.String()) }

// MarshalText keeps JSON, YAML and text encodings from showing the value.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// LogValue keeps slog from showing the value.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// SSHPort returns the SSH port, 22 when unset.
func (s Site) SSHPort() int {
	if s.SSH.Port == 0 {
		return 22
	}
	return s.SSH.Port
}

// SSHAddress returns host:port for dialing.
func (s Site) SSHAddress() string {
	return net.JoinHostPort(s.SSH.Host, strconv.Itoa(s.SSHPort()))
}

// Location describes where the site is: a path, or user@host[:port]:path.
func (s Site) Location() string {
	if s.Kind != SSH {
		return s.Path
	}
	host := s.SSH.Host
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if s.SSH.Port != 0 && s.SSH.Port != 22 {
		host += ":" + strconv.Itoa(s.SSH.Port)
	}
	return s.SSH.User + "@" + host + ":" + s.Path
}

// ValidateName checks a site name.
func ValidateName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: the site name is empty", ErrInvalid)
	}
	if len(name) > 63 {
		return fmt.Errorf("%w: site name %q is longer than 63 characters", ErrInvalid, name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c == '-' && i > 0:
		default:
			return fmt.Errorf("%w: site name %q: use lower-case letters, digits and '-' (not first)", ErrInvalid, name)
		}
	}
	return nil
}

// Validate checks the settings a site needs before it is stored.
func (s Site) Validate() error {
	if err := ValidateName(s.Name); err != nil {
		return err
	}
	if s.Path == "" || !strings.HasPrefix(s.Path, "/") {
		return fmt.Errorf("%w: site %s: the path %q must be absolute", ErrInvalid, s.Name, s.Path)
	}
	if strings.ContainsRune(s.Path, 0) {
		return fmt.Errorf("%w: site %s: the path holds a NUL byte", ErrInvalid, s.Name)
	}
	switch s.Kind {
	case Local:
		if s.SSH != (SSHSettings{}) {
			return fmt.Errorf("%w: site %s: a local site has no SSH settings", ErrInvalid, s.Name)
		}
	case SSH:
		if s.SSH.User == "" || s.SSH.Host == "" {
			return fmt.Errorf("%w: site %s: an ssh site needs a user and a host (user@host[:port])", ErrInvalid, s.Name)
		}
		if s.SSH.Port < 0 || s.SSH.Port > 65535 {
			return fmt.Errorf("%w: site %s: ssh port %d is out of range", ErrInvalid, s.Name, s.SSH.Port)
		}
		if (s.SSH.HostKey == "") != (s.SSH.HostKeyFingerprint == "") {
			return fmt.Errorf("%w: site %s: a host key needs its fingerprint", ErrInvalid, s.Name)
		}
	default:
		return fmt.Errorf("%w: site %s: unknown connection kind %q (local or ssh)", ErrInvalid, s.Name, s.Kind)
	}
	if err := s.Schedule.Validate(); err != nil {
		return fmt.Errorf("site %s: %w", s.Name, err)
	}
	if s.Retention != nil {
		if err := s.Retention.Validate(); err != nil {
			return fmt.Errorf("site %s: %w", s.Name, err)
		}
	}
	for _, a := range s.Notify {
		if _, err := mail.ParseAddress(a); err != nil || strings.ContainsAny(a, "\r\n") {
			return fmt.Errorf("%w: site %s: %q is not an email address", ErrInvalid, s.Name, a)
		}
	}
	return nil
}

// RetentionOrDefault returns the site's retention, or DefaultRetention.
func (s Site) RetentionOrDefault() Retention {
	if s.Retention == nil {
		return DefaultRetention
	}
	return *s.Retention
}

// Schedule says when the service backs a site up by itself: once a day, at
// a moment inside a window that starts at Start (wall-clock time in
// TimeZone) and lasts Window. Each site gets its own moment inside the
// window (see the schedule package), so that many sites with one window do
// not all start in the same second.
type Schedule struct {
	// Off stops daily backups (backups by hand and after changes go on).
	Off bool `json:"off"`
	// Start is the window's start, "HH:MM"; "" means DefaultStart.
	Start string `json:"start"`
	// Window is how long the window lasts; 0 means DefaultWindow. In JSON
	// it is a Go duration string ("2h", "90m"); a number is read as
	// nanoseconds.
	Window time.Duration `json:"window"`
	// TimeZone is an IANA zone name ("Europe/Berlin"); "" means UTC.
	TimeZone string `json:"time_zone"`
}

// scheduleJSON is Schedule with the window as text.
type scheduleJSON struct {
	Off      bool            `json:"off"`
	Start    string          `json:"start"`
	Window   json.RawMessage `json:"window,omitempty"`
	TimeZone string          `json:"time_zone"`
}

// MarshalJSON writes the window as a duration string ("2h0m0s").
func (s Schedule) MarshalJSON() ([]byte, error) {
	w, _ := json.Marshal(s.Window.String())
	if s.Window == 0 {
		w = nil
	}
	return json.Marshal(scheduleJSON{Off: s.Off, Start: s.Start, Window: w, TimeZone: s.TimeZone})
}

// UnmarshalJSON reads the window as a duration string or nanoseconds.
func (s *Schedule) UnmarshalJSON(b []byte) error {
	var j scheduleJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*s = Schedule{Off: j.Off, Start: j.Start, TimeZone: j.TimeZone}
	if len(j.Window) == 0 || string(j.Window) == "null" {
		return nil
	}
	var text string
	if err := json.Unmarshal(j.Window, &text); err == nil {
		d, err := time.ParseDuration(text)
		if err != nil {
			return fmt.Errorf("%w: schedule window %q: a duration such as 2h or 90m", ErrInvalid, text)
		}
		s.Window = d
		return nil
	}
	var ns int64
	if err := json.Unmarshal(j.Window, &ns); err != nil {
		return fmt.Errorf("%w: schedule window: a duration such as \"2h\"", ErrInvalid)
	}
	s.Window = time.Duration(ns)
	return nil
}

// Schedule defaults.
const (
	DefaultStart  = "02:00"
	DefaultWindow = 2 * time.Hour
)

// StartMinute returns the window's start as minutes after midnight.
func (s Schedule) StartMinute() (int, error) {
	start := s.Start
	if start == "" {
		start = DefaultStart
	}
	t, err := time.Parse("15:04", start)
	if err != nil {
		return 0, fmt.Errorf("%w: schedule start %q: use HH:MM, 24-hour clock", ErrInvalid, s.Start)
	}
	return t.Hour()*60 + t.Minute(), nil
}

// WindowOrDefault returns Window, or DefaultWindow when it is 0.
func (s Schedule) WindowOrDefault() time.Duration {
	if s.Window <= 0 {
		return DefaultWindow
	}
	return s.Window
}

// Location loads TimeZone (UTC when empty).
func (s Schedule) Location() (*time.Location, error) {
	if s.TimeZone == "" {
		return time.UTC, nil
	}
	loc, err := time.LoadLocation(s.TimeZone)
	if err != nil {
		return nil, fmt.Errorf("%w: time zone %q is not an IANA zone name (such as Europe/Berlin)", ErrInvalid, s.TimeZone)
	}
	return loc, nil
}

// Validate checks the schedule's settings.
func (s Schedule) Validate() error {
	if _, err := s.StartMinute(); err != nil {
		return err
	}
	if s.Window < 0 || s.Window > 24*time.Hour {
		return fmt.Errorf("%w: schedule window %s: between 1 minute and 24 hours", ErrInvalid, s.Window)
	}
	_, err := s.Location()
	return err
}

// Retention is how many backup points of a site forget keeps (0: that
// rule keeps none; all 0: keep everything).
type Retention struct {
	KeepLast    int `json:"keep_last"`
	KeepDaily   int `json:"keep_daily"`
	KeepWeekly  int `json:"keep_weekly"`
	KeepMonthly int `json:"keep_monthly"`
}

// DefaultRetention keeps 30 days of daily points, as Jetpack's plans do,
// with weekly points for three months and monthly for a year.
var DefaultRetention = Retention{KeepLast: 10, KeepDaily: 30, KeepWeekly: 12, KeepMonthly: 12}

// Validate checks that no count is negative.
func (r Retention) Validate() error {
	if r.KeepLast < 0 || r.KeepDaily < 0 || r.KeepWeekly < 0 || r.KeepMonthly < 0 {
		return fmt.Errorf("%w: retention counts cannot be negative", ErrInvalid)
	}
	return nil
}
