package service

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/sitevault/sitevault/internal/catalog"
	"github.com/sitevault/sitevault/internal/notify"
	"github.com/sitevault/sitevault/internal/point"
	"github.com/sitevault/sitevault/internal/repository"
	"github.com/sitevault/sitevault/internal/service/web"
	"github.com/sitevault/sitevault/internal/sitevault"
)

// dashboard gives package web the service's catalog, sessions, job queue
// and repository: the same calls the API's handlers make.
type dashboard struct{ s *Service }

var _ web.Service = dashboard{}

func (d dashboard) Catalog() *catalog.Catalog { return d.s.cat }

// User is the session's user; the dashboard takes no bearer tokens (a
// browser has none, and a token must not drive forms).
func (d dashboard) User(r *http.Request) *sitevault.User {
	if r.Header.Get("Authorization") != "" {
		return nil
	}
	return d.s.authenticate(r)
}

func (d dashboard) SignIn(w http.ResponseWriter, r *http.Request, email, password string) (*sitevault.User, error) {
	u, _, _, err := d.s.startSession(w, r, email, password)
	return u, err
}

func (d dashboard) SignOut(w http.ResponseWriter, r *http.Request) { d.s.endSession(w, r) }

func (d dashboard) Enqueue(ctx context.Context, j catalog.NewJob) (*sitevault.Job, error) {
	return d.s.Enqueue(ctx, j)
}

func (d dashboard) Points(ctx context.Context, site string) ([]*repository.Snapshot, error) {
	return point.List(ctx, d.s.repo, site)
}

// refusal turns the service's refusals into the dashboard's.
func refusal(err error) error {
	var re *requestError
	switch {
	case errors.As(err, &re):
		return &web.Refusal{Status: re.Status, Err: re.Err}
	case errorCode(err) == "point_not_found":
		return &web.Refusal{Status: http.StatusNotFound, Err: err}
	}
	return err
}

func (d dashboard) enqueue(ctx context.Context, j catalog.NewJob, by string, err error) (*sitevault.Job, error) {
	if err != nil {
		return nil, refusal(err)
	}
	j.CreatedBy, j.Trigger = by, "dashboard"
	return d.s.Enqueue(ctx, j)
}

func (d dashboard) StartRestore(ctx context.Context, site, by string, req web.RestoreRequest) (*sitevault.Job, error) {
	j, err := d.s.restoreJob(ctx, site, RestoreParams{Point: req.Point, Items: req.Items, Paths: req.Paths, Tables: req.Tables, Delete: req.Exact})
	return d.enqueue(ctx, j, by, err)
}

func (d dashboard) StartUndo(ctx context.Context, site, by string) (*sitevault.Job, error) {
	return d.enqueue(ctx, catalog.NewJob{Kind: sitevault.JobUndo, Site: site}, by, nil)
}

func (d dashboard) StartEventRestore(ctx context.Context, site, by string, event int64, before bool) (*sitevault.Job, error) {
	e, err := d.s.cat.ActivityEvent(ctx, site, event)
	if err != nil {
		return nil, err
	}
	target, err := d.s.eventTarget(ctx, site, e, before)
	if err != nil {
		return nil, refusal(err)
	}
	return d.StartRestore(ctx, site, by, web.RestoreRequest{Point: target})
}

func (d dashboard) StartDownload(ctx context.Context, site, by, point, format string) (*sitevault.Job, error) {
	j, err := d.s.downloadJobFor(ctx, site, DownloadParams{Point: point, Format: format})
	return d.enqueue(ctx, j, by, err)
}

func (d dashboard) DownloadLink(job int64) (string, time.Time) {
	return d.s.downloadLink(job, time.Now())
}

func (d dashboard) SaveSiteSettings(ctx context.Context, st sitevault.Site) error {
	if err := st.Validate(); err != nil {
		return err
	}
	_, err := d.s.cat.UpdateSite(ctx, st)
	return err
}

func (d dashboard) PairingCode(ctx context.Context, site string) (string, time.Time, error) {
	return d.s.PairingCode(ctx, site)
}

func (d dashboard) SMTP(ctx context.Context) (*notify.SMTPSettings, error) { return d.s.SMTP(ctx) }

func (d dashboard) SetSMTP(ctx context.Context, st notify.SMTPSettings) error {
	if st.Password == "" {
		if old, err := d.s.SMTP(ctx); err == nil && old != nil {
			st.Password = old.Password // an empty password field keeps the stored one
		}
	}
	return refusal(d.s.SetSMTP(ctx, st))
}

func (d dashboard) SendTestMail(ctx context.Context, to string) error {
	return refusal(d.s.sendTestMail(ctx, to))
}

func (d dashboard) AddUser(ctx context.Context, email, name string, role sitevault.Role, password string) error {
	_, err := d.s.createUser(ctx, userRequest{Email: email, Name: name, Role: role, Password: password})
	return refusal(err)
}

var errLastOwner = &web.Refusal{Status: http.StatusConflict, Err: errors.New("this is the last owner: make another user an owner first")}

func userRefusal(id int64, err error) error {
	if errors.Is(err, catalog.ErrLastOwner) {
		return errLastOwner
	}
	if errors.Is(err, catalog.ErrNotFound) {
		return &web.Refusal{Status: http.StatusNotFound, Err: fmt.Errorf("no user %d: it may have been removed already; reload the page", id)}
	}
	return err
}

func (d dashboard) SetUserRole(ctx context.Context, id int64, role sitevault.Role) error {
	if !role.Valid() {
		return &web.Refusal{Status: http.StatusUnprocessableEntity, Err: errors.New("role: choose owner or viewer")}
	}
	u, err := d.s.cat.User(ctx, id)
	if err != nil {
		return userRefusal(id, err)
	}
	if u.Role == role {
		return nil
	}
	// The catalog refuses to take the last owner's role (ErrLastOwner).
	u.Role = role
	return userRefusal(id, d.s.cat.UpdateUser(ctx, *u, ""))
}

func (d dashboard) RemoveUser(ctx context.Context, id int64) error {
	// The catalog refuses to remove the last owner (ErrLastOwner).
	return userRefusal(id, d.s.cat.RemoveUser(ctx, id))
}

func (d dashboard) RevokeToken(ctx context.Context, u *sitevault.User, id int64) error {
	err := d.s.cat.RemoveToken(ctx, id, tokenScope(u))
	if errors.Is(err, catalog.ErrNotFound) {
		return &web.Refusal{Status: http.StatusNotFound, Err: fmt.Errorf("no token %d of yours: it may have been revoked already; reload the page", id)}
	}
	return err
}

func (d dashboard) Tokens(ctx context.Context, u *sitevault.User) ([]*sitevault.Token, error) {
	return d.s.cat.Tokens(ctx, tokenScope(u))
}

func (d dashboard) NewToken(ctx context.Context, u *sitevault.User, name string) (string, error) {
	if name == "" || len(name) > 100 {
		return "", &web.Refusal{Status: http.StatusUnprocessableEntity, Err: errors.New("name: give the token a name (at most 100 characters)")}
	}
	secret, _, err := NewToken(ctx, d.s.cat, u.ID, name, nil)
	return secret, err
}

func (d dashboard) CheckSite(ctx context.Context, st *sitevault.Site, acceptKey string, discover bool) (*web.SiteCheck, error) {
	c, disc, err := d.s.checkAndDiscover(ctx, st, acceptKey, discover)
	var hk *hostKeyError
	if errors.As(err, &hk) {
		return nil, &web.HostKeyUnknown{Fingerprint: hk.fingerprint, Err: hk.err}
	}
	if err != nil {
		return nil, err
	}
	wc := &web.SiteCheck{WordPress: c.WordPress, ContentDir: c.ContentDir, TablePrefix: c.TablePrefix, DBName: c.DBName,
		DBHost: c.DBHost, Multisite: c.Multisite, HostKey: c.HostKey}
	if disc != nil {
		f := &web.SiteFound{Tables: disc.Tables, Views: disc.Views, TablesErr: disc.TablesErr, Files: disc.Files,
			Size: humanize.IBytes(uint64(disc.Bytes)), Partial: !disc.Complete, FilesErr: disc.FilesErr}
		for _, t := range disc.SkippedTables {
			f.SkippedTables = append(f.SkippedTables, web.SkippedTable{Table: t.Table, Reason: t.Reason})
		}
		for _, r := range disc.Rules {
			f.Rules = append(f.Rules, web.RuleCount{Rule: r.Rule, Paths: r.Paths})
		}
		wc.Found = f
	}
	return wc, nil
}

func (d dashboard) AddSite(ctx context.Context, st sitevault.Site) error {
	_, err := d.s.cat.AddSite(ctx, st)
	return err
}
