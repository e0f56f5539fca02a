package service

import (
	"context"
	"net/http"

	"github.com/sitevault/sitevault/internal/catalog"
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
