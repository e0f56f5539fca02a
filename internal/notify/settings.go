package notify

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/mail"
	"strconv"
	"strings"
)

// TLSMode says how the connection to the SMTP server is encrypted.
type TLSMode string

// The TLS modes. The empty mode is TLSAuto.
const (
	// TLSAuto upgrades with STARTTLS when the server offers it. When it
	// does not, mail goes in plain text, but a password is sent that way
	// only to a loopback host (a local relay); to any other host the send
	// fails instead.
	TLSAuto TLSMode = ""
	// TLSNone never encrypts. With a username it is allowed only for a
	// loopback host, so a password never crosses a network in clear.
	TLSNone TLSMode = "none"
	// TLSStartTLS requires STARTTLS (usually port 587) and fails if the
	// server does not offer it.
	TLSStartTLS TLSMode = "starttls"
	// TLSImplicit speaks TLS from the first byte (SMTPS, usually port 465).
	TLSImplicit TLSMode = "tls"
)

// Default ports, used when SMTPSettings.Port is 0.
const (
	DefaultSubmissionPort = 587 // STARTTLS, none and auto
	DefaultSMTPSPort      = 465 // implicit TLS
)

// redacted replaces a password wherever settings are printed or logged.
const redacted = "[redacted]"

// SMTPSettings is how sitevault reaches its outgoing mail server.
//
// Printing or logging a SMTPSettings (%v, %+v, %#v, slog) never shows the
// password, and no error this package returns contains it.
type SMTPSettings struct {
	Host     string  // server name or IP, e.g. smtp.example.com; also the name checked in its TLS certificate
	Port     int     // 0: 465 for TLSImplicit, 587 otherwise
	Username string  // empty: no authentication
	Password string  // secret: comes from the environment or a file, never from argv
	From     string  // the sender, "backups@example.com" or "sitevault <backups@example.com>"
	TLS      TLSMode // see TLSMode; empty is TLSAuto
}

// Addr returns host:port, with the default port when Port is 0.
func (s SMTPSettings) Addr() string {
	return net.JoinHostPort(s.Host, strconv.Itoa(s.port()))
}

func (s SMTPSettings) port() int {
	if s.Port != 0 {
		return s.Port
	}
	if s.TLS == TLSImplicit {
		return DefaultSMTPSPort
	}
	return DefaultSubmissionPort
}

// Validate checks the settings and returns every problem found, each
// saying which setting to fix. It never quotes the password.
func (s SMTPSettings) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	switch {
	case s.Host == "":
		bad("SMTP host is empty: set the name of your mail server, e.g. smtp.example.com")
	case strings.ContainsAny(s.Host, " \t\r\n/:@") && net.ParseIP(s.Host) == nil:
		bad("SMTP host %q is not a host name: give the name or IP address alone, without scheme, port or user", s.Host)
	}
	if s.Port < 0 || s.Port > 65535 {
		bad("SMTP port %d is out of range: use 587 (STARTTLS) or 465 (TLS), or 0 for the default", s.Port)
	}
	switch s.TLS {
	case TLSAuto, TLSNone, TLSStartTLS, TLSImplicit:
	default:
		bad("SMTP TLS mode %q is unknown: use none, starttls or tls (empty: STARTTLS when the server offers it)", string(s.TLS))
	}
	if s.From == "" {
		bad("SMTP From address is empty: set the address mails are sent from, e.g. backups@example.com")
	} else if _, err := parseAddress(s.From); err != nil {
		bad("SMTP From address: %w", err)
	}
	if strings.ContainsAny(s.Username, "\r\n\x00") {
		bad("SMTP username contains a line break or NUL: check the username setting")
	}
	if strings.ContainsAny(s.Password, "\r\n\x00") {
		bad("SMTP password contains a line break or NUL: check the password setting (a file holding it may end with a stray newline)")
	}
	switch {
	case s.Username == "" && s.Password != "":
		bad("SMTP password is set but the username is empty: set both, or neither for a server that needs no login")
	case s.Username != "" && s.Password == "":
		bad("SMTP username %q has no password: set the password (from the environment or a file)", s.Username)
	}
	if s.Username != "" && s.TLS == TLSNone && s.Host != "" && !isLoopback(s.Host) {
		bad("SMTP TLS mode none would send the password in clear text to %s: use starttls or tls", s.Host)
	}
	return errors.Join(errs...)
}

// String describes the settings without the password, so that %v and %+v
// are safe.
func (s SMTPSettings) String() string {
	var b strings.Builder
	b.WriteString("smtp://")
	if s.Username != "" {
		b.WriteString(s.Username)
		if s.Password != "" {
			b.WriteString(":" + redacted)
		}
		b.WriteString("@")
	}
	b.WriteString(s.Addr())
	mode := string(s.TLS)
	if mode == "" {
		mode = "auto"
	}
	fmt.Fprintf(&b, " (tls=%s, from=%s)", mode, s.From)
	return b.String()
}

// GoString makes %#v as safe as %v.
func (s SMTPSettings) GoString() string { return "notify.SMTPSettings{" + s.String() + "}" }

// LogValue makes slog print the settings without the password.
func (s SMTPSettings) LogValue() slog.Value {
	pw := ""
	if s.Password != "" {
		pw = redacted
	}
	return slog.GroupValue(
		slog.String("host", s.Host),
		slog.Int("port", s.port()),
		slog.String("username", s.Username),
		slog.String("password", pw),
		slog.String("from", s.From),
		slog.String("tls", string(s.TLS)),
	)
}

// isLoopback reports whether host is this machine: "localhost" or a
// loopback IP. A name is not resolved: a DNS answer must not decide where a
// password may go in clear.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// parseAddress parses one mail address, refusing line breaks (header
// injection) before net/mail sees it.
func parseAddress(s string) (*mail.Address, error) {
	if strings.ContainsAny(s, "\r\n") {
		return nil, fmt.Errorf("address %q contains a line break", s)
	}
	a, err := mail.ParseAddress(s)
	if err != nil {
		return nil, fmt.Errorf("address %q is not a valid mail address (%v): write it as name@example.com", s, err)
	}
	return a, nil
}
