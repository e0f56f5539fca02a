package notify

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"os"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Message is one mail: plain text, to one or more people. The sender is
// the mailer's.
type Message struct {
	To      []string // addresses, "ana@example.com" or "Ana <ana@example.com>"
	Subject string   // one line, any Unicode
	Text    string   // the body, plain text with \n line ends
}

// Mailer delivers messages.
//
// Send returns nil once the mail server accepted the message for every
// recipient; an error means the message may not have gone to anyone (a
// server that refuses one recipient gets no message at all). Send honours
// ctx for connecting and for the whole exchange. Errors never contain
// credentials.
type Mailer interface {
	Send(ctx context.Context, m Message) error
}

// ErrHeaderInjection is wrapped by errors about a line break (CR or LF) in
// a subject or an address, which would let text become a mail header.
var ErrHeaderInjection = errors.New("line break in a mail header")

// Default timeouts of an SMTPMailer.
const (
	DefaultDialTimeout = 15 * time.Second // connecting, the TLS handshake of implicit TLS and the server's greeting
	DefaultSendTimeout = 2 * time.Minute  // the whole exchange, from connecting to QUIT
)

// SMTPMailer sends mail through an SMTP server with net/smtp, one
// connection per message. Once its fields are set it is safe for
// concurrent use.
type SMTPMailer struct {
	settings SMTPSettings

	// RootCAs verifies the server's certificate; nil uses the system's
	// roots. Tests set it to trust their own server.
	RootCAs *x509.CertPool
	// DialTimeout and SendTimeout bound a Send when ctx has no earlier
	// deadline; zero means DefaultDialTimeout and DefaultSendTimeout.
	DialTimeout time.Duration
	SendTimeout time.Duration
	// Now gives the Date header; nil means time.Now.
	Now func() time.Time
}

var _ Mailer = (*SMTPMailer)(nil)

// NewSMTP returns a mailer for s. It does not connect; call s.Validate
// first to report bad settings early (Send validates them again).
func NewSMTP(s SMTPSettings) *SMTPMailer { return &SMTPMailer{settings: s} }

// Settings returns the mailer's settings.
func (m *SMTPMailer) Settings() SMTPSettings { return m.settings }

// Step names the part of sending a mail that failed.
type Step string

// The steps of a Send, in order.
const (
	StepSettings  Step = "check settings"
	StepMessage   Step = "check message"
	StepConnect   Step = "connect"
	StepTLS       Step = "TLS"
	StepAuth      Step = "log in"
	StepSender    Step = "sender"
	StepRecipient Step = "recipient"
	StepData      Step = "send message"
)

// SendError is the error SMTPMailer.Send returns: which step failed, the
// cause and what to check. It never holds the password.
type SendError struct {
	Step      Step
	Addr      string // the server, host:port
	Recipient string // for StepRecipient: the refused address
	Err       error  // the cause
	Hint      string // what to check, for the person reading the error
}

// Error says where sending failed, why and what to check.
func (e *SendError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "send mail via %s: %s", e.Addr, e.Step)
	if e.Recipient != "" {
		fmt.Fprintf(&b, " %s", e.Recipient)
	}
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	if e.Hint != "" {
		fmt.Fprintf(&b, "; %s", e.Hint)
	}
	return b.String()
}

// Unwrap returns the cause, for errors.Is (context.DeadlineExceeded,
// ErrHeaderInjection, …).
func (e *SendError) Unwrap() error { return e.Err }

// Send delivers msg; see Mailer.
func (m *SMTPMailer) Send(ctx context.Context, msg Message) error {
	s := m.settings
	addr := s.Addr()
	fail := func(step Step, err error, hint string) error {
		return &SendError{Step: step, Addr: addr, Err: m.redact(err), Hint: hint}
	}
	if err := s.Validate(); err != nil {
		return fail(StepSettings, err, "fix the SMTP settings")
	}
	from, _ := parseAddress(s.From) // Validate checked it
	to, body, err := m.compose(from, msg)
	if err != nil {
		return fail(StepMessage, err, "")
	}

	dialTimeout := orDefault(m.DialTimeout, DefaultDialTimeout)
	sendTimeout := orDefault(m.SendTimeout, DefaultSendTimeout)
	ctx, cancel := context.WithTimeout(ctx, sendTimeout)
	defer cancel()

	// Connect.
	dctx, dcancel := context.WithTimeout(ctx, dialTimeout)
	defer dcancel()
	raw, err := (&net.Dialer{}).DialContext(dctx, "tcp", addr)
	if err != nil {
		return fail(StepConnect, ctxErr(dctx, err), "check the SMTP host and port, and that this machine may reach the server (DNS, firewall)")
	}
	defer raw.Close()
	// The connection obeys ctx: its deadline, and cancellation at any
	// time. Until the server's greeting, the dial timeout applies too: a
	// server that accepts and says nothing (TLS expected, a filtering
	// firewall) fails fast.
	var mu sync.Mutex
	cancelled := false
	stop := context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		cancelled = true
		raw.SetDeadline(time.Now())
	})
	defer stop()
	setDeadline := func(d time.Time) {
		mu.Lock()
		defer mu.Unlock()
		if !cancelled {
			raw.SetDeadline(d)
		}
	}
	ctxDeadline, _ := ctx.Deadline() // always set: ctx has sendTimeout
	greetDeadline, _ := dctx.Deadline()
	setDeadline(greetDeadline)
	var conn net.Conn = raw
	// An error after this point may come from a deadline ctx set: report
	// the context's reason then, not only an i/o timeout.
	failIO := func(step Step, err error, hint string) error {
		return fail(step, ctxErr(ctx, err), hint)
	}

	tlsConfig := &tls.Config{ServerName: s.Host, RootCAs: m.RootCAs, MinVersion: tls.VersionTLS12}
	tlsHint := fmt.Sprintf("check the TLS mode (starttls for port 587, tls for 465) and that the server's certificate is valid for %s", s.Host)
	encrypted := false
	if s.TLS == TLSImplicit {
		tc := tls.Client(conn, tlsConfig)
		if err := tc.HandshakeContext(dctx); err != nil {
			return failIO(StepTLS, err, tlsHint)
		}
		conn, encrypted = tc, true
	}

	c, err := smtp.NewClient(conn, s.Host)
	if err != nil {
		hint := "check that the host and port are those of an SMTP server"
		switch {
		case s.TLS != TLSImplicit && s.port() == DefaultSMTPSPort:
			hint = "port 465 speaks TLS from the start: set the TLS mode to tls"
		case s.TLS != TLSImplicit && errors.Is(err, os.ErrDeadlineExceeded):
			hint = "the server sent no greeting: if it expects TLS from the start (usually port 465), set the TLS mode to tls; otherwise check the host and port"
		}
		return failIO(StepConnect, err, hint)
	}
	defer c.Close()
	setDeadline(ctxDeadline)

	if !encrypted && s.TLS != TLSNone {
		offered, _ := c.Extension("STARTTLS")
		switch {
		case offered:
			if err := c.StartTLS(tlsConfig); err != nil {
				return failIO(StepTLS, err, tlsHint)
			}
			encrypted = true
		case s.TLS == TLSStartTLS:
			return fail(StepTLS, errors.New("the server does not offer STARTTLS"),
				"check the port (587 usually offers STARTTLS), or set the TLS mode to tls for port 465")
		case s.Username != "" && !isLoopback(s.Host):
			// TLSAuto: never a password in clear to another machine.
			return fail(StepTLS, errors.New("the server does not offer STARTTLS, and the password would travel in clear text"),
				"use a port that offers STARTTLS (587), or set the TLS mode to tls for port 465")
		}
	}

	if s.Username != "" {
		ok, mechs := c.Extension("AUTH")
		if !ok {
			return fail(StepAuth, errors.New("the server offers no login (no AUTH)"),
				"check the port (587 or 465 accept logins, 25 often does not), or leave the username empty for a server that needs none")
		}
		a, err := chooseAuth(mechs, s, encrypted)
		if err != nil {
			return fail(StepAuth, err, "use a server that accepts PLAIN or LOGIN")
		}
		if err := c.Auth(a); err != nil {
			return failIO(StepAuth, err, fmt.Sprintf("check the SMTP username (%s) and password; some providers need an app password", s.Username))
		}
	}

	if err := c.Mail(from.Address); err != nil {
		return failIO(StepSender, err, fmt.Sprintf("the server refused the From address %s: many servers accept only the address of the account you log in with", from.Address))
	}
	for _, r := range to {
		if err := c.Rcpt(r.Address); err != nil {
			e := failIO(StepRecipient, err, "check the recipient address; the server may also refuse to relay for this sender").(*SendError)
			e.Recipient = r.Address
			return e
		}
	}
	w, err := c.Data()
	if err != nil {
		return failIO(StepData, err, "the server refused to take the message")
	}
	if _, err := w.Write(body); err != nil {
		return failIO(StepData, err, "the connection broke while sending the message")
	}
	if err := w.Close(); err != nil {
		return failIO(StepData, err, "the server refused the message (too large, or seen as spam?)")
	}
	// The message is accepted; a failed QUIT changes nothing.
	c.Quit()
	return nil
}

// compose validates msg and returns its recipients and the whole message,
// headers and quoted-printable body, with CRLF line ends.
func (m *SMTPMailer) compose(from *mail.Address, msg Message) ([]*mail.Address, []byte, error) {
	if strings.ContainsAny(msg.Subject, "\r\n") {
		return nil, nil, fmt.Errorf("subject %q: %w", msg.Subject, ErrHeaderInjection)
	}
	if len(msg.To) == 0 {
		return nil, nil, errors.New("no recipients: add at least one address")
	}
	to := make([]*mail.Address, 0, len(msg.To))
	for _, s := range msg.To {
		if strings.ContainsAny(s, "\r\n") {
			return nil, nil, fmt.Errorf("recipient %q: %w", s, ErrHeaderInjection)
		}
		a, err := parseAddress(s)
		if err != nil {
			return nil, nil, fmt.Errorf("recipient: %w", err)
		}
		to = append(to, a)
	}
	now := time.Now
	if m.Now != nil {
		now = m.Now
	}

	var b bytes.Buffer
	header := func(name, value string) { b.WriteString(name + ": " + value + "\r\n") }
	header("Date", now().Format(time.RFC1123Z))
	header("Message-ID", messageID(from.Address))
	header("From", from.String())
	names := make([]string, len(to))
	for i, a := range to {
		names[i] = a.String()
	}
	header("To", strings.Join(names, ",\r\n "))
	header("Subject", encodeSubject(msg.Subject))
	header("MIME-Version", "1.0")
	header("Content-Type", "text/plain; charset=utf-8")
	header("Content-Transfer-Encoding", "quoted-printable")
	b.WriteString("\r\n")

	text := strings.ToValidUTF8(msg.Text, string(utf8.RuneError))
	text = strings.ReplaceAll(text, "\r\n", "\n")
	if !strings.HasSuffix(text, "\n") {
		text += "\n"
	}
	qp := quotedprintable.NewWriter(&b) // writes \n as CRLF, keeps lines under 76 bytes
	qp.Write([]byte(text))
	qp.Close()
	return to, b.Bytes(), nil
}

// encodeSubject encodes a subject as RFC 2047 words where it is not plain
// ASCII, folding between the words so no header line grows too long.
func encodeSubject(s string) string {
	return strings.ReplaceAll(mime.QEncoding.Encode("utf-8", s), "?= =?", "?=\r\n =?")
}

func messageID(from string) string {
	domain := "sitevault.invalid"
	if i := strings.LastIndexByte(from, '@'); i >= 0 && i+1 < len(from) {
		domain = from[i+1:]
	}
	r := make([]byte, 12)
	rand.Read(r)
	return fmt.Sprintf("<%d.%s@%s>", time.Now().Unix(), hex.EncodeToString(r), domain)
}

// chooseAuth picks PLAIN, else LOGIN, among the mechanisms the server
// offers (the AUTH extension's parameter).
func chooseAuth(offered string, s SMTPSettings, encrypted bool) (smtp.Auth, error) {
	has := func(name string) bool {
		for _, m := range strings.Fields(offered) {
			if strings.EqualFold(m, name) {
				return true
			}
		}
		return false
	}
	switch {
	case has("PLAIN"):
		return &plainAuth{user: s.Username, pass: s.Password, allowed: encrypted || isLoopback(s.Host)}, nil
	case has("LOGIN"):
		return &loginAuth{user: s.Username, pass: s.Password, allowed: encrypted || isLoopback(s.Host)}, nil
	}
	return nil, fmt.Errorf("the server offers only %q", offered)
}

// errClearText stops an authentication that would send the password
// unencrypted to another machine; Send checks this earlier, this is the
// last line of defence.
var errClearText = errors.New("refusing to send the password over an unencrypted connection")

// plainAuth is AUTH PLAIN (RFC 4616). net/smtp's PlainAuth allows clear
// text only to a host named "localhost" or 127.0.0.1; this one follows
// isLoopback, as the rest of the package does.
type plainAuth struct {
	user, pass string
	allowed    bool
}

func (a *plainAuth) Start(*smtp.ServerInfo) (string, []byte, error) {
	if !a.allowed {
		return "", nil, errClearText
	}
	return "PLAIN", []byte("\x00" + a.user + "\x00" + a.pass), nil
}

func (a *plainAuth) Next(_ []byte, more bool) ([]byte, error) {
	if more {
		return nil, errors.New("unexpected server challenge after AUTH PLAIN")
	}
	return nil, nil
}

// loginAuth is the older AUTH LOGIN, which some providers offer alone.
type loginAuth struct {
	user, pass string
	allowed    bool
	step       int
}

func (a *loginAuth) Start(*smtp.ServerInfo) (string, []byte, error) {
	if !a.allowed {
		return "", nil, errClearText
	}
	a.step = 0
	return "LOGIN", nil, nil
}

func (a *loginAuth) Next(_ []byte, more bool) ([]byte, error) {
	if !more {
		return nil, nil
	}
	a.step++
	switch a.step {
	case 1:
		return []byte(a.user), nil
	case 2:
		return []byte(a.pass), nil
	}
	return nil, errors.New("unexpected server challenge after AUTH LOGIN")
}

// redact removes the password from err's text, in case a server or a
// library echoed it. The chain is kept when there is nothing to remove.
func (m *SMTPMailer) redact(err error) error {
	pw := m.settings.Password
	if err == nil || pw == "" {
		return err
	}
	msg := err.Error()
	secrets := []string{
		pw,
		base64.StdEncoding.EncodeToString([]byte(pw)),
		base64.StdEncoding.EncodeToString([]byte("\x00" + m.settings.Username + "\x00" + pw)),
	}
	found := false
	for _, sec := range secrets {
		if strings.Contains(msg, sec) {
			msg = strings.ReplaceAll(msg, sec, redacted)
			found = true
		}
	}
	if !found {
		return err
	}
	return errors.New(msg)
}

// ctxErr prefers the context's reason (canceled, deadline exceeded) to the
// i/o error it caused.
func ctxErr(ctx context.Context, err error) error {
	cerr := ctx.Err()
	// The connection's deadline is ctx's, and may fire a moment before
	// ctx's own timer does.
	if d, ok := ctx.Deadline(); cerr == nil && ok && errors.Is(err, os.ErrDeadlineExceeded) && !time.Now().Before(d) {
		cerr = context.DeadlineExceeded
	}
	if cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("%w (%v)", cerr, err)
	}
	return err
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}
