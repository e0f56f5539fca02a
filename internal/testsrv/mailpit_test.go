package testsrv

import (
	"net/smtp"
	"strings"
	"testing"
	"time"
)

func TestMailpit(t *testing.T) {
	m := StartMailpit(t)
	if got := m.Messages(t); len(got) != 0 {
		t.Fatalf("a new server holds %d messages", len(got))
	}
	body := "From: Sender <sender@example.com>\r\n" +
		"To: ana@example.com\r\n" +
		"Subject: =?utf-8?q?caf=C3=A9?=\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n" +
		"\r\n" +
		"line one\r\nline two\r\n"
	err := smtp.SendMail(m.SMTPAddr(), nil, "sender@example.com", []string{"ana@example.com", "hidden@example.com"}, []byte(body))
	if err != nil {
		t.Fatalf("send: %v\nmailpit log:\n%s", err, m.Log())
	}
	got := m.WaitMessages(t, 1, 10*time.Second)
	if len(got) != 1 {
		t.Fatalf("got %d messages, want 1", len(got))
	}
	msg := got[0]
	if msg.From != "sender@example.com" || strings.Join(msg.To, ",") != "ana@example.com" ||
		strings.Join(msg.Bcc, ",") != "hidden@example.com" || msg.Subject != "café" || msg.Text != "line one\nline two\n" {
		t.Errorf("got %+v", msg)
	}
	if raw := m.Raw(t, msg.ID); !strings.Contains(raw, "Subject: =?utf-8?q?caf=C3=A9?=") {
		t.Errorf("raw message lacks its subject header:\n%s", raw)
	}
	m.Clear(t)
	if got := m.Messages(t); len(got) != 0 {
		t.Errorf("after Clear the server holds %d messages", len(got))
	}
}
