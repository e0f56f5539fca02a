package notify

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

const secret = "s3cr3t-Pa55word"

func TestValidate(t *testing.T) {
	good := SMTPSettings{Host: "smtp.example.com", Port: 587, Username: "ana", Password: secret, From: "sitevault <backups@example.com>"}
	cases := []struct {
		name string
		edit func(*SMTPSettings)
		want string // "" means valid
	}{
		{"good", func(*SMTPSettings) {}, ""},
		{"no login", func(s *SMTPSettings) { s.Username, s.Password = "", "" }, ""},
		{"tls mode", func(s *SMTPSettings) { s.TLS, s.Port = TLSImplicit, 465 }, ""},
		{"default port", func(s *SMTPSettings) { s.Port = 0 }, ""},
		{"no host", func(s *SMTPSettings) { s.Host = "" }, "host is empty"},
		{"host with port", func(s *SMTPSettings) { s.Host = "smtp.example.com:587" }, "not a host name"},
		{"IPv6 host", func(s *SMTPSettings) { s.Host = "::1" }, ""},
		{"port", func(s *SMTPSettings) { s.Port = 70000 }, "out of range"},
		{"tls mode unknown", func(s *SMTPSettings) { s.TLS = "ssl" }, `TLS mode "ssl" is unknown`},
		{"no from", func(s *SMTPSettings) { s.From = "" }, "From address is empty"},
		{"bad from", func(s *SMTPSettings) { s.From = "backups at example.com" }, "not a valid mail address"},
		{"from with line break", func(s *SMTPSettings) { s.From = "a@example.com\r\nBcc: x@example.com" }, "line break"},
		{"password without user", func(s *SMTPSettings) { s.Username = "" }, "username is empty"},
		{"user without password", func(s *SMTPSettings) { s.Password = "" }, "has no password"},
		{"password with newline", func(s *SMTPSettings) { s.Password = secret + "\n" }, "password contains a line break"},
		{"clear text to a remote host", func(s *SMTPSettings) { s.TLS = TLSNone }, "clear text"},
		{"clear text to loopback", func(s *SMTPSettings) { s.TLS, s.Host = TLSNone, "127.0.0.1" }, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := good
			c.edit(&s)
			err := s.Validate()
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("Validate() = %v, want an error with %q", err, c.want)
			}
			if err != nil && strings.Contains(err.Error(), secret) {
				t.Errorf("the error shows the password: %v", err)
			}
		})
	}
}

func TestSettingsNeverShowThePassword(t *testing.T) {
	s := SMTPSettings{Host: "smtp.example.com", Port: 587, Username: "ana", Password: secret, From: "backups@example.com", TLS: TLSStartTLS}
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("smtp", "settings", s)
	slog.New(slog.NewTextHandler(&logs, nil)).Info("smtp", "settings", s)
	shown := map[string]string{
		"%v":   fmt.Sprintf("%v", s),
		"%+v":  fmt.Sprintf("%+v", s),
		"%#v":  fmt.Sprintf("%#v", s),
		"%s":   fmt.Sprintf("%s", s),
		"&%v":  fmt.Sprintf("%v", &s),
		"slog": logs.String(),
	}
	for how, out := range shown {
		if strings.Contains(out, secret) {
			t.Errorf("%s shows the password: %s", how, out)
		}
		if !strings.Contains(out, "smtp.example.com") || !strings.Contains(out, "ana") || !strings.Contains(out, redacted) {
			t.Errorf("%s should show host, user and %s: %s", how, redacted, out)
		}
	}
	if want := "smtp://ana:[redacted]@smtp.example.com:587 (tls=starttls, from=backups@example.com)"; s.String() != want {
		t.Errorf("String() = %q, want %q", s.String(), want)
	}
}
