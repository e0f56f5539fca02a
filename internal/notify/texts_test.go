package notify

import (
	"strings"
	"testing"
	"time"
)

func TestTexts(t *testing.T) {
	at := time.Date(2026, 12, 4, 21, 58, 0, 0, time.UTC)
	cases := []struct {
		name    string
		msg     Message
		subject string
		has     []string
	}{
		{"backup failing",
			BackupFailing("blog", 2, at, "connect to db.example.com:3306: access denied for user 'wp'", "Check the database password of blog in sitevault.", "https://vault.example.com/sites/blog"),
			"[sitevault] Backups of blog are failing",
			[]string{"blog", "last 2 backups", "Fri 4 Dec 2026 at 21:58 UTC", "access denied for user 'wp'", "What to do", "Check the database password", "https://vault.example.com/sites/blog", "succeeds again"}},
		{"backup failing, no advice",
			BackupFailing("blog", 3, at, "", "", ""),
			"[sitevault] Backups of blog are failing",
			[]string{"last 3 backups", "no error message was recorded", "start a backup by hand"}},
		{"backup recovered",
			BackupRecovered("blog", "5f3a9c21", at),
			"[sitevault] Backups of blog work again",
			[]string{"blog", "5f3a9c21", "failing since Fri 4 Dec 2026 at 21:58 UTC"}},
		{"restore started",
			RestoreStarted("blog", "5f3a9c21", at, []string{"themes", "database"}),
			"[sitevault] Restoring blog to 4 Dec 2026 21:58 UTC",
			[]string{"blog", "5f3a9c21", "themes, database", "pre-restore point", "undone"}},
		{"restore started, everything",
			RestoreStarted("blog", "5f3a9c21", at, nil),
			"[sitevault] Restoring blog to 4 Dec 2026 21:58 UTC",
			[]string{"everything"}},
		{"restore finished",
			RestoreFinished("blog", "5f3a9c21", 3*time.Minute+12*time.Second+400*time.Millisecond, "1,204 files written, 12 tables replaced."),
			"[sitevault] Restore of blog finished",
			[]string{"blog", "5f3a9c21", "3m12s", "1,204 files written", "undo"}},
		{"restore failed",
			RestoreFailed("blog", "5f3a9c21", "ssh: handshake failed: host key mismatch", "Check the site's SSH host key."),
			"[sitevault] Restoring blog failed",
			[]string{"blog", "5f3a9c21", "host key mismatch", "What to do", "SSH host key", "never left half-restored"}},
		{"download ready",
			DownloadReady("blog", "5f3a9c21", "https://vault.example.com/d/abc", at.Add(24*time.Hour)),
			"[sitevault] Your download of blog is ready",
			[]string{"blog", "5f3a9c21", "https://vault.example.com/d/abc", "Sat 5 Dec 2026 at 21:58 UTC"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.msg.Subject != c.subject {
				t.Errorf("subject = %q, want %q", c.msg.Subject, c.subject)
			}
			for _, s := range c.has {
				if !strings.Contains(c.msg.Text, s) {
					t.Errorf("text lacks %q:\n%s", s, c.msg.Text)
				}
			}
			if len(c.msg.To) != 0 {
				t.Errorf("To = %v, want none: the caller adds recipients", c.msg.To)
			}
			if strings.Contains(c.msg.Text, "\r") {
				t.Errorf("text has a CR")
			}
		})
	}
}

func TestTextsSubjectIsOneLine(t *testing.T) {
	// A site name with a line break must not stop the alert (Send refuses
	// line breaks in a subject) nor become a header.
	m := BackupFailing("blog\r\nBcc: x@evil.example", 2, time.Now(), "e", "w", "")
	if strings.ContainsAny(m.Subject, "\r\n") {
		t.Fatalf("subject %q has a line break", m.Subject)
	}
	if want := "[sitevault] Backups of blog Bcc: x@evil.example are failing"; m.Subject != want {
		t.Errorf("subject = %q, want %q", m.Subject, want)
	}
}
