package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sitevault/sitevault/internal/catalog"
	"github.com/sitevault/sitevault/internal/notify"
	"github.com/sitevault/sitevault/internal/repository"
	"github.com/sitevault/sitevault/internal/sitevault"
)

// Alerts go by email to the owners and to the site's own addresses:
// backups failing (after the second failed backup in a row, once), and
// working again; a restore started, finished or failed; a download ready.

// SMTP returns the stored mail settings (nil when none are set).
func (s *Service) SMTP(ctx context.Context) (*notify.SMTPSettings, error) {
	b, err := s.cat.Setting(ctx, catalog.SettingSMTP, true)
	if err != nil || b == nil {
		return nil, err
	}
	var st notify.SMTPSettings
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("mail settings: %w", err)
	}
	return &st, nil
}

// SetSMTP validates and stores the mail settings (sealed: they hold the
// SMTP password).
func (s *Service) SetSMTP(ctx context.Context, st notify.SMTPSettings) error {
	if err := st.Validate(); err != nil {
		return fmt.Errorf("%w: %v", sitevault.ErrInvalid, err)
	}
	b, err := json.Marshal(smtpJSON(st))
	if err != nil {
		return err
	}
	return s.cat.SetSetting(ctx, catalog.SettingSMTP, b, true)
}

// smtpJSON is SMTPSettings as stored, password included (sealed).
type smtpJSON notify.SMTPSettings

// mailer returns the mailer of the stored settings, or nil.
func (s *Service) mailer(ctx context.Context) notify.Mailer {
	st, err := s.SMTP(ctx)
	if err != nil {
		s.log.Error("mail settings", "err", err)
		return nil
	}
	if st == nil {
		return nil
	}
	if s.cfg.Mailer != nil {
		return s.cfg.Mailer(*st)
	}
	return notify.NewSMTP(*st)
}

// recipients are the owners and the site's own addresses.
func (s *Service) recipients(ctx context.Context, site string) []string {
	var to []string
	seen := map[string]bool{}
	add := func(a string) {
		if a != "" && !seen[strings.ToLower(a)] {
			seen[strings.ToLower(a)] = true
			to = append(to, a)
		}
	}
	if users, err := s.cat.Users(ctx); err == nil {
		for _, u := range users {
			if u.Role == sitevault.RoleOwner && strings.Contains(u.Email, "@") && !strings.HasSuffix(u.Email, "@localhost") {
				add(u.Email)
			}
		}
	}
	if site != "" {
		if st, err := s.cat.Site(ctx, site); err == nil {
			for _, a := range st.Notify {
				add(a)
			}
		}
	}
	return to
}

// send mails m to the site's recipients; failures are logged and counted.
func (s *Service) send(ctx context.Context, site string, m notify.Message) {
	mailer := s.mailer(ctx)
	if mailer == nil {
		s.log.Warn("alert not mailed: no mail settings", "site", site, "subject", m.Subject)
		return
	}
	m.To = s.recipients(ctx, site)
	if len(m.To) == 0 {
		s.log.Warn("alert not mailed: nobody to mail", "site", site, "subject", m.Subject)
		return
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := mailer.Send(ctx, m); err != nil {
		s.metrics.mailFailed()
		s.log.Error("alert mail failed", "site", site, "subject", m.Subject, "err", err)
		return
	}
	s.metrics.mailSent()
	s.log.Info("alert mailed", "site", site, "subject", m.Subject, "to", len(m.To))
}

func (s *Service) siteURL(site string) string {
	return strings.TrimRight(s.cfg.BaseURL, "/") + "/sites/" + site
}

// alertBackup applies the alert policy to a finished backup.
func (s *Service) alertBackup(ctx context.Context, j *sitevault.Job, before, after *catalog.SiteStatus) {
	prev := notify.BackupState{ConsecutiveFailures: before.Failures, Alerted: before.Alerted}
	if before.FailingSince != nil {
		prev.FirstFailure = *before.FailingSince
	}
	ok := j.State == sitevault.JobSucceeded
	next, alert := notify.AfterBackup(prev, ok, s.cfg.Now())
	if next.Alerted != before.Alerted {
		if err := s.cat.SetAlerted(ctx, j.Site, next.Alerted); err != nil {
			s.log.Error("record alert", "site", j.Site, "err", err)
		}
	}
	switch alert {
	case notify.AlertFailing:
		since := s.cfg.Now()
		if after.FailingSince != nil {
			since = *after.FailingSince
		}
		s.send(ctx, j.Site, notify.BackupFailing(j.Site, after.Failures, since, j.Error, jobAdvice(j.ErrorCode), s.siteURL(j.Site)))
	case notify.AlertRecovered:
		var since time.Time
		if before.FailingSince != nil {
			since = *before.FailingSince
		}
		s.send(ctx, j.Site, notify.BackupRecovered(j.Site, shortID(after.LastPoint), since))
	}
}

// alertRestore mails a restore's start, end or failure.
func (s *Service) alertRestore(ctx context.Context, j *sitevault.Job, site sitevault.Site, sn *repository.Snapshot, what string, res *RestoreResult, err error) {
	id := sn.ID.Short()
	switch what {
	case "started":
		var items []string
		_ = json.Unmarshal(mustJSON(j.Params), &struct {
			Items *[]string `json:"items"`
		}{&items})
		if len(items) == 0 {
			items = []string{"everything"}
		}
		s.send(ctx, site.Name, notify.RestoreStarted(site.Name, id, sn.Time, items))
	case "finished":
		summary := fmt.Sprintf("%d files written, %d tables restored", res.FilesWritten, res.Tables)
		if len(res.Failed) > 0 {
			summary += fmt.Sprintf("; %d tables could not be restored (%s)", len(res.Failed), strings.Join(res.Failed, ", "))
		}
		if res.PreRestore != "" {
			summary += fmt.Sprintf(". The site as it was before is kept as point %s: undo the restore to go back", shortID(res.PreRestore))
		}
		s.send(ctx, site.Name, notify.RestoreFinished(site.Name, id, time.Duration(res.Seconds*float64(time.Second)), summary))
	case "failed":
		s.send(ctx, site.Name, notify.RestoreFailed(site.Name, id, err.Error(), jobAdvice(errorCodeOf(err))))
	}
}

// alertDownload mails the link of a prepared download.
func (s *Service) alertDownload(ctx context.Context, j *sitevault.Job, res DownloadResult) {
	link, expires := s.downloadLink(j.ID, s.cfg.Now())
	s.send(ctx, j.Site, notify.DownloadReady(j.Site, shortID(res.Point), link, expires))
}

func shortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

func mustJSON(b json.RawMessage) []byte {
	if len(b) == 0 {
		return []byte("{}")
	}
	return b
}

func errorCodeOf(err error) string {
	var je *jobError
	if errors.As(err, &je) {
		return je.code
	}
	return errorCode(err)
}

func decodeResult(j *sitevault.Job, v any) error {
	if len(j.Result) == 0 {
		return nil
	}
	return json.Unmarshal(j.Result, v)
}
