package service

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/sitevault/sitevault/internal/repository"
	"github.com/sitevault/sitevault/internal/sitevault"
)

// TestPointsNewestFirst: the API lists a site's points newest first, as
// docs/openapi.yaml says.
func TestPointsNewestFirst(t *testing.T) {
	e := newEnv(t, nil)
	if _, err := e.cat.AddSite(context.Background(), sitevault.Site{Name: "blog", Kind: sitevault.Local, Path: "/srv/blog"}); err != nil {
		t.Fatal(err)
	}
	day1 := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	older := repository.TestSnapshot(t, e.repo, "blog", day1, map[string][]byte{"index.html": []byte("one")})
	newer := repository.TestSnapshot(t, e.repo, "blog", day1.Add(26*time.Hour), map[string][]byte{"index.html": []byte("two")})
	_, body := e.do("GET", "/api/v1/sites/blog/points", e.token(sitevault.RoleViewer), nil)
	var out struct {
		Points []PointView `json:"points"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatal(err)
	}
	if len(out.Points) != 2 || out.Points[0].ID != newer.ID.String() || out.Points[1].ID != older.ID.String() {
		t.Fatalf("points: %+v, want %s then %s", out.Points, newer.ID.Short(), older.ID.Short())
	}
}
