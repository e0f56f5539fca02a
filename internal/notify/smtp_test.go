package notify

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/sitevault/sitevault/internal/testsrv"
)

// mailerFor returns a mailer for m with settings edited by edit.
func mailerFor(m *testsrv.Mailpit, edit func(*SMTPSettings)) *SMTPMailer {
	s := SMTPSettings{Host: m.SMTPHost, Port: m.SMTPPort, From: "sitevault <backups@example.com>", TLS: TLSNone}
	if edit != nil {
		edit(&s)
	}
	mailer := NewSMTP(s)
	mailer.RootCAs = m.RootCAs
	return mailer
}

// sendError checks that err is a *SendError of step that does not show
// the password, and returns it.
func sendError(t *testing.T, err error, step Step) *SendError {
	t.Helper()
	var se *SendError
	if !errors.As(err, &se) {
		t.Fatalf("err = %v (%T), want a *SendError", err, err)
	}
	if se.Step != step {
		t.Errorf("step = %q, want %q: %v", se.Step, step, err)
	}
	if se.Hint == "" {
		t.Errorf("the error says nothing about what to do: %v", err)
	}
	if strings.Contains(err.Error(), secret) {
		t.Errorf("the error shows the password: %v", err)
	}
	return se
}

func TestNotifySMTPSend(t *testing.T) {
	m := testsrv.StartMailpit(t)
	mailer := mailerFor(m, nil)
	date := time.Date(2026, 12, 4, 22, 0, 0, 0, time.UTC)
	mailer.Now = func() time.Time { return date }

	long := strings.Repeat("Ünïcödé ", 30) // a line longer than 76 bytes
	msg := Message{
		To:      []string{"Ana Núñez <ana@example.com>", "ops@example.com"},
		Subject: "[sitevault] Sauvegardes de « café » en échec — 日本語",
		Text:    "Bonjour,\n\n" + long + "\n.a line that starts with a dot\n.\nend\r\nwith a CRLF\n",
	}
	if err := mailer.Send(context.Background(), msg); err != nil {
		t.Fatalf("send: %v\nmailpit log:\n%s", err, m.Log())
	}
	got := m.WaitMessages(t, 1, 10*time.Second)
	if len(got) != 1 {
		t.Fatalf("got %d messages, want 1", len(got))
	}
	g := got[0]
	if g.Subject != msg.Subject {
		t.Errorf("subject = %q, want %q", g.Subject, msg.Subject)
	}
	if g.From != "backups@example.com" {
		t.Errorf("from = %q", g.From)
	}
	if strings.Join(g.To, ",") != "ana@example.com,ops@example.com" || len(g.Bcc) != 0 {
		t.Errorf("to = %v, bcc = %v", g.To, g.Bcc)
	}
	if want := strings.ReplaceAll(msg.Text, "\r\n", "\n"); g.Text != want {
		t.Errorf("text = %q\nwant   %q", g.Text, want)
	}
	raw := m.Raw(t, g.ID)
	for _, h := range []string{
		"Date: Fri, 04 Dec 2026 22:00:00 +0000\r\n",
		"Message-ID: <",
		"@example.com>\r\n",
		"From: \"sitevault\" <backups@example.com>\r\n",
		"To: =?utf-8?q?Ana_N=C3=BA=C3=B1ez?= <ana@example.com>,\r\n <ops@example.com>\r\n",
		"Subject: =?utf-8?q?",
		"MIME-Version: 1.0\r\n",
		"Content-Type: text/plain; charset=utf-8\r\n",
		"Content-Transfer-Encoding: quoted-printable\r\n",
	} {
		if !strings.Contains(raw, h) {
			t.Errorf("raw message lacks %q:\n%s", h, raw)
		}
	}
	// RFC 5322: no line over 998 bytes; quoted-printable keeps the body's
	// under 76.
	head, body, _ := strings.Cut(raw, "\r\n\r\n")
	for i, line := range strings.Split(head, "\r\n") {
		if len(line) > 998 {
			t.Errorf("header line %d is %d bytes long: %q", i+1, len(line), line)
		}
	}
	for i, line := range strings.Split(body, "\r\n") {
		if len(line) > 76 {
			t.Errorf("body line %d is %d bytes long: %q", i+1, len(line), line)
		}
	}
	if strings.Contains(strings.ReplaceAll(raw, "\r\n", ""), "\n") || strings.Contains(strings.ReplaceAll(raw, "\r\n", ""), "\r") {
		t.Errorf("raw message has a bare CR or LF")
	}
}

func TestNotifySMTPTextsArrive(t *testing.T) {
	m := testsrv.StartMailpit(t)
	mailer := mailerFor(m, nil)
	msg := BackupFailing("blog", 2, time.Now(), "dial tcp 10.0.0.5:22: i/o timeout", "Check that the server is up.", "")
	msg.To = []string{"owner@example.com"}
	if err := mailer.Send(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	g := m.WaitMessages(t, 1, 10*time.Second)[0]
	if g.Subject != "[sitevault] Backups of blog are failing" || !strings.Contains(g.Text, "i/o timeout") || !strings.Contains(g.Text, "Check that the server is up.") {
		t.Errorf("got %+v", g)
	}
}

func TestNotifySMTPRefusesHeaderInjection(t *testing.T) {
	m := testsrv.StartMailpit(t)
	mailer := mailerFor(m, nil)
	cases := map[string]Message{
		"subject CRLF":  {To: []string{"ana@example.com"}, Subject: "hi\r\nBcc: evil@example.com", Text: "x"},
		"subject LF":    {To: []string{"ana@example.com"}, Subject: "hi\nBcc: evil@example.com", Text: "x"},
		"subject CR":    {To: []string{"ana@example.com"}, Subject: "hi\rBcc: evil@example.com", Text: "x"},
		"recipient LF":  {To: []string{"ana@example.com\nBcc: evil@example.com"}, Subject: "hi", Text: "x"},
		"recipient CR":  {To: []string{"ana@example.com\rX: y"}, Subject: "hi", Text: "x"},
		"name with LF":  {To: []string{"\"Ana\nBcc: evil@example.com\" <ana@example.com>"}, Subject: "hi", Text: "x"},
		"bad recipient": {To: []string{"ana at example.com"}, Subject: "hi", Text: "x"},
		"no recipient":  {Subject: "hi", Text: "x"},
	}
	for name, msg := range cases {
		t.Run(name, func(t *testing.T) {
			err := mailer.Send(context.Background(), msg)
			sendErr := func() {
				var se *SendError
				if !errors.As(err, &se) || se.Step != StepMessage {
					t.Errorf("err = %v, want a SendError at step %q", err, StepMessage)
				}
			}
			if err == nil {
				t.Fatal("Send accepted the message")
			}
			sendErr()
			if strings.ContainsAny(msg.Subject+strings.Join(msg.To, ""), "\r\n") && !errors.Is(err, ErrHeaderInjection) {
				t.Errorf("err = %v, want ErrHeaderInjection", err)
			}
		})
	}
	if got := m.Messages(t); len(got) != 0 {
		t.Errorf("%d messages arrived, want none: %+v", len(got), got)
	}
}

func TestNotifySMTPRecipientRefused(t *testing.T) {
	m := testsrv.StartMailpitWith(t, testsrv.MailpitOptions{AllowedRecipients: `@example\.com$`})
	mailer := mailerFor(m, nil)
	err := mailer.Send(context.Background(), Message{To: []string{"ana@example.com", "bob@elsewhere.org"}, Subject: "hi", Text: "x"})
	se := sendError(t, err, StepRecipient)
	if se.Recipient != "bob@elsewhere.org" || !strings.Contains(err.Error(), "bob@elsewhere.org") {
		t.Errorf("the error does not name the refused recipient: %v", err)
	}
	time.Sleep(200 * time.Millisecond)
	if got := m.Messages(t); len(got) != 0 {
		t.Errorf("%d messages arrived, want none", len(got))
	}
}

func TestNotifySMTPStartTLSWithLogin(t *testing.T) {
	m := testsrv.StartMailpitWith(t, testsrv.MailpitOptions{
		TLS: true, RequireSTARTTLS: true, Users: map[string]string{"ana": secret},
	})
	for _, mode := range []TLSMode{TLSStartTLS, TLSAuto} {
		name := string(mode)
		if mode == TLSAuto {
			name = "auto"
		}
		t.Run(name, func(t *testing.T) {
			m.Clear(t)
			mailer := mailerFor(m, func(s *SMTPSettings) { s.TLS, s.Username, s.Password = mode, "ana", secret })
			if err := mailer.Send(context.Background(), Message{To: []string{"ana@example.com"}, Subject: "over STARTTLS", Text: "hello"}); err != nil {
				t.Fatalf("send: %v\nmailpit log:\n%s", err, m.Log())
			}
			if g := m.WaitMessages(t, 1, 10*time.Second)[0]; g.Subject != "over STARTTLS" {
				t.Errorf("got %+v", g)
			}
		})
	}
	t.Run("wrong password", func(t *testing.T) {
		mailer := mailerFor(m, func(s *SMTPSettings) { s.TLS, s.Username, s.Password = TLSStartTLS, "ana", secret+"-wrong" })
		err := mailer.Send(context.Background(), Message{To: []string{"ana@example.com"}, Subject: "x", Text: "x"})
		sendError(t, err, StepAuth)
		t.Logf("wrong password: %v", err)
		if strings.Contains(err.Error(), secret) {
			t.Errorf("the error shows the password: %v", err)
		}
		if !strings.Contains(err.Error(), "check the SMTP username (ana) and password") {
			t.Errorf("the error does not say what to check: %v", err)
		}
	})
	t.Run("untrusted certificate", func(t *testing.T) {
		mailer := mailerFor(m, func(s *SMTPSettings) { s.TLS, s.Username, s.Password = TLSStartTLS, "ana", secret })
		mailer.RootCAs = nil // the system's roots do not know the test certificate
		err := mailer.Send(context.Background(), Message{To: []string{"ana@example.com"}, Subject: "x", Text: "x"})
		sendError(t, err, StepTLS)
	})
}

func TestNotifySMTPImplicitTLS(t *testing.T) {
	m := testsrv.StartMailpitWith(t, testsrv.MailpitOptions{TLS: true, ImplicitTLS: true, Users: map[string]string{"ana": secret}})
	mailer := mailerFor(m, func(s *SMTPSettings) { s.TLS, s.Username, s.Password = TLSImplicit, "ana", secret })
	if err := mailer.Send(context.Background(), Message{To: []string{"ana@example.com"}, Subject: "over TLS", Text: "hello"}); err != nil {
		t.Fatalf("send: %v\nmailpit log:\n%s", err, m.Log())
	}
	if g := m.WaitMessages(t, 1, 10*time.Second)[0]; g.Subject != "over TLS" {
		t.Errorf("got %+v", g)
	}
}

func TestNotifySMTPStartTLSRequiredButNotOffered(t *testing.T) {
	m := testsrv.StartMailpit(t) // no certificate: no STARTTLS
	mailer := mailerFor(m, func(s *SMTPSettings) { s.TLS = TLSStartTLS })
	err := mailer.Send(context.Background(), Message{To: []string{"ana@example.com"}, Subject: "x", Text: "x"})
	sendError(t, err, StepTLS)
	if !strings.Contains(err.Error(), "does not offer STARTTLS") {
		t.Errorf("err = %v", err)
	}
}

func TestNotifySMTPLoginOnLoopbackWithoutTLS(t *testing.T) {
	// A local relay without TLS may take a password: it never leaves the machine.
	m := testsrv.StartMailpitWith(t, testsrv.MailpitOptions{AllowInsecureAuth: true, Users: map[string]string{"ana": secret}})
	mailer := mailerFor(m, func(s *SMTPSettings) { s.TLS, s.Username, s.Password = TLSAuto, "ana", secret })
	if err := mailer.Send(context.Background(), Message{To: []string{"ana@example.com"}, Subject: "local", Text: "x"}); err != nil {
		t.Fatalf("send: %v\nmailpit log:\n%s", err, m.Log())
	}
	m.WaitMessages(t, 1, 10*time.Second)
}

func TestNotifySMTPUnreachable(t *testing.T) {
	// A port nobody listens on: refused at once.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	mailer := NewSMTP(SMTPSettings{Host: "127.0.0.1", Port: port, Username: "ana", Password: secret, From: "backups@example.com", TLS: TLSNone})
	start := time.Now()
	err = mailer.Send(context.Background(), Message{To: []string{"ana@example.com"}, Subject: "x", Text: "x"})
	sendError(t, err, StepConnect)
	if !strings.Contains(err.Error(), "127.0.0.1:") || !strings.Contains(err.Error(), "check the SMTP host and port") {
		t.Errorf("err = %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}

	// An address that never answers (TEST-NET-1, RFC 5737): the dial
	// timeout, or the caller's context, ends the wait.
	mailer = NewSMTP(SMTPSettings{Host: "192.0.2.1", Port: 587, Username: "ana", Password: secret, From: "backups@example.com"})
	mailer.DialTimeout = 500 * time.Millisecond
	start = time.Now()
	err = mailer.Send(context.Background(), Message{To: []string{"ana@example.com"}, Subject: "x", Text: "x"})
	sendError(t, err, StepConnect)
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("took %v with a 500ms dial timeout", d)
	}
	t.Logf("unreachable host: %v", err)
}

func TestNotifySMTPHonoursContext(t *testing.T) {
	// A server that accepts connections and never says a word.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	port := l.Addr().(*net.TCPAddr).Port
	mailer := NewSMTP(SMTPSettings{Host: "127.0.0.1", Port: port, From: "backups@example.com", TLS: TLSNone})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = mailer.Send(ctx, Message{To: []string{"ana@example.com"}, Subject: "x", Text: "x"})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("took %v with a 300ms context", d)
	}
}

func TestNotifySMTPInvalidSettings(t *testing.T) {
	mailer := NewSMTP(SMTPSettings{Host: "smtp.example.com", Username: "ana", Password: secret, From: "nobody", TLS: TLSNone})
	err := mailer.Send(context.Background(), Message{To: []string{"ana@example.com"}, Subject: "x", Text: "x"})
	sendError(t, err, StepSettings)
}

func TestNotifyRedact(t *testing.T) {
	mailer := NewSMTP(SMTPSettings{Username: "ana", Password: secret})
	echoed := errors.New("535 bad credentials for ana/" + secret)
	if got := mailer.redact(echoed).Error(); strings.Contains(got, secret) || !strings.Contains(got, redacted) {
		t.Errorf("redact = %q", got)
	}
	plain := errors.New("535 bad credentials")
	if got := mailer.redact(plain); got != plain {
		t.Errorf("redact changed an error without the password: %v", got)
	}
}

func TestNotifyAuthRefusesClearTextToAnotherHost(t *testing.T) {
	// Send stops earlier (no STARTTLS offered, a remote host); the auth
	// itself is the last line of defence.
	s := SMTPSettings{Host: "smtp.example.com", Username: "ana", Password: secret}
	for _, mechs := range []string{"PLAIN LOGIN", "LOGIN"} {
		a, err := chooseAuth(mechs, s, false)
		if err != nil {
			t.Fatal(err)
		}
		if _, resp, err := a.Start(nil); !errors.Is(err, errClearText) || len(resp) != 0 {
			t.Errorf("%s over clear text to %s: err = %v, resp = %q", mechs, s.Host, err, resp)
		}
	}
	if a, _ := chooseAuth("PLAIN", s, true); a == nil {
		t.Fatal("no auth over TLS")
	} else if _, resp, err := a.Start(nil); err != nil || string(resp) != "\x00ana\x00"+secret {
		t.Errorf("PLAIN over TLS: %q, %v", resp, err)
	}
	if _, err := chooseAuth("CRAM-MD5 XOAUTH2", s, true); err == nil || strings.Contains(err.Error(), secret) {
		t.Errorf("unsupported mechanisms: err = %v", err)
	}
}

func TestNotifySMTPNoGreeting(t *testing.T) {
	// An SMTPS server (TLS from the first byte) says nothing to a client
	// that waits for its greeting in plain text: the dial timeout ends the
	// wait, and the error points at the TLS mode.
	m := testsrv.StartMailpitWith(t, testsrv.MailpitOptions{TLS: true, ImplicitTLS: true})
	mailer := mailerFor(m, func(s *SMTPSettings) { s.TLS = TLSStartTLS })
	mailer.DialTimeout = 500 * time.Millisecond
	start := time.Now()
	err := mailer.Send(context.Background(), Message{To: []string{"ana@example.com"}, Subject: "x", Text: "x"})
	sendError(t, err, StepConnect)
	t.Logf("no greeting: %v", err)
	if !strings.Contains(err.Error(), "set the TLS mode to tls") {
		t.Errorf("err = %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("took %v with a 500ms dial timeout", d)
	}
}
