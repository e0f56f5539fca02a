package service

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sitevault/sitevault/internal/backend/local"
	"github.com/sitevault/sitevault/internal/catalog"
	"github.com/sitevault/sitevault/internal/catalog/sqlite"
	"github.com/sitevault/sitevault/internal/repository"
	"github.com/sitevault/sitevault/internal/sitevault"
)

// env is a service on a fresh SQLite catalog and local repository, served
// by httptest (no job runner unless a test starts Run).
type env struct {
	t    *testing.T
	svc  *Service
	cat  *catalog.Catalog
	repo *repository.Repository
	home string
	srv  *httptest.Server
}

const ownerPassword = "owner-password-12"

func newEnv(t *testing.T, tune func(*Config)) *env {
	t.Helper()
	ctx := context.Background()
	home := t.TempDir()
	cat, err := sqlite.Open(ctx, home)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cat.Close() })
	be, err := local.Create(ctx, filepath.Join(home, "repo"))
	if err != nil {
		t.Fatal(err)
	}
	repo, err := repository.Init(ctx, be, repository.TestPassword, repository.InitOptions{ScryptN: repository.TestScryptN})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { repo.Close() })
	if _, _, err := EnsureOwner(ctx, cat, "owner@example.org", ownerPassword); err != nil {
		t.Fatal(err)
	}
	cfg := Config{Catalog: cat, Repo: repo, Home: home, CheckEvery: -1, PruneEvery: -1}
	if tune != nil {
		tune(&cfg)
	}
	svc, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(svc.Handler())
	t.Cleanup(srv.Close)
	return &env{t: t, svc: svc, cat: cat, repo: repo, home: home, srv: srv}
}

// token returns an API token of a new user with role (the owner's for owner).
func (e *env) token(role sitevault.Role) string {
	e.t.Helper()
	ctx := context.Background()
	u, _, err := e.cat.UserByEmail(ctx, "owner@example.org")
	if err != nil {
		e.t.Fatal(err)
	}
	if role != sitevault.RoleOwner {
		u, err = e.cat.AddUser(ctx, sitevault.User{Email: "viewer-" + randomToken(4) + "@example.org", Role: role}, HashPassword("viewer-password-1"))
		if err != nil {
			e.t.Fatal(err)
		}
	}
	secret, _, err := NewToken(ctx, e.cat, u.ID, "test", nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return secret
}

// do sends a request with an optional token and JSON body.
func (e *env) do(method, path, token string, body any) (*http.Response, []byte) {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// concrete fills a route's path parameters.
func concrete(path string) string {
	return strings.NewReplacer("{site}", "blog", "{id}", "1").Replace(path)
}

// TestEveryRouteNeedsAuthentication walks every route without credentials,
// with a bad token, and as a viewer: only sign-in and health answer
// without a user, and a viewer reaches no owner route.
func TestEveryRouteNeedsAuthentication(t *testing.T) {
	e := newEnv(t, nil)
	e.token(sitevault.RoleOwner) // token 1 is the owner's: a viewer cannot remove it
	viewerToken := e.token(sitevault.RoleViewer)
	for _, r := range routes {
		path := concrete(r.path)
		resp, body := e.do(r.method, path, "", nil)
		if r.access == public {
			var p problem
			json.Unmarshal(body, &p)
			if p.Code == "unauthorized" {
				t.Errorf("%s %s is public but asked for credentials: %s", r.method, path, body)
			}
			continue
		}
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s %s without credentials: %d, want 401\n%s", r.method, path, resp.StatusCode, body)
		}
		if r.access == pairing || r.access == signed {
			// A user's token opens no connector route.
			if resp, _ := e.do(r.method, path, viewerToken, nil); resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("%s %s with a user's token: %d, want 401", r.method, path, resp.StatusCode)
			}
			continue
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
			t.Errorf("%s %s: 401 as %q, want a problem document", r.method, path, ct)
		}
		if resp, _ := e.do(r.method, path, "svt_not-a-real-token", nil); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s %s with a wrong token: %d, want 401", r.method, path, resp.StatusCode)
		}
		resp, body = e.do(r.method, path, viewerToken, nil)
		switch r.access {
		case owner:
			var p problem
			json.Unmarshal(body, &p)
			if resp.StatusCode != http.StatusForbidden || p.Detail != viewerRefusal {
				t.Errorf("%s %s as a viewer: %d, want 403\n%s", r.method, path, resp.StatusCode, body)
			}
		case viewer:
			// The route lets viewers in (it may still refuse what this
			// request asks, as a viewer changing another user).
			var p problem
			json.Unmarshal(body, &p)
			if resp.StatusCode == http.StatusUnauthorized || p.Detail == viewerRefusal {
				t.Errorf("%s %s as a viewer: %d, want access\n%s", r.method, path, resp.StatusCode, body)
			}
		}
	}
	// Restores and downloads are owner routes (the viewer rule of the issue).
	for _, want := range []string{"POST /api/v1/sites/{site}/restores", "POST /api/v1/sites/{site}/downloads",
		"GET /api/v1/downloads/{id}/file", "POST /api/v1/sites/{site}/undo"} {
		found := false
		for _, r := range routes {
			if r.method+" "+r.path == want {
				found = r.access == owner
			}
		}
		if !found {
			t.Errorf("%s is not an owner-only route", want)
		}
	}
}

func TestSignInSessionAndCrossOrigin(t *testing.T) {
	e := newEnv(t, nil)
	// A wrong password, then the right one.
	resp, _ := e.do("POST", "/api/v1/session", "", signInRequest{Email: "owner@example.org", Password: "wrong-password-1"})
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong password: %d", resp.StatusCode)
	}
	resp, _ = e.do("POST", "/api/v1/session", "", signInRequest{Email: "OWNER@example.org", Password: ownerPassword})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("sign in: %d", resp.StatusCode)
	}
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == sessionCookie {
			cookie = c
		}
	}
	if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteLaxMode {
		t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Lax", cookie)
	}
	withCookie := func(method, path, origin string) int {
		req, _ := http.NewRequest(method, e.srv.URL+path, strings.NewReader(`{"name":"x"}`))
		req.AddCookie(cookie)
		req.Header.Set("Content-Type", "application/json")
		if origin != "" {
			req.Header.Set("Origin", origin)
			req.Header.Set("Sec-Fetch-Site", "cross-site")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := withCookie("GET", "/api/v1/me", ""); code != http.StatusOK {
		t.Fatalf("session: GET /api/v1/me = %d", code)
	}
	if code := withCookie("POST", "/api/v1/tokens", "https://evil.example"); code != http.StatusForbidden {
		t.Fatalf("a cross-site POST with the session cookie: %d, want 403", code)
	}
	if code := withCookie("POST", "/api/v1/tokens", ""); code != http.StatusCreated {
		t.Fatalf("a same-origin POST with the session cookie: %d, want 201", code)
	}
	// Five failures lock the email out from that address for a while, even
	// with the right password.
	for range loginFailures {
		e.do("POST", "/api/v1/session", "", signInRequest{Email: "owner@example.org", Password: "guess-guess-guess"})
	}
	if resp, _ := e.do("POST", "/api/v1/session", "", signInRequest{Email: "owner@example.org", Password: ownerPassword}); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("after %d failures: %d, want 429", loginFailures, resp.StatusCode)
	}
}

func TestPasswordHash(t *testing.T) {
	h := HashPassword("a long enough password")
	if !strings.HasPrefix(h, "$argon2id$v=19$m=65536,t=3,p=2$") {
		t.Fatalf("hash %q is not argon2id with the chosen parameters", h)
	}
	if !CheckPassword(h, "a long enough password") || CheckPassword(h, "a long enough passworD") {
		t.Fatal("CheckPassword accepts the wrong password or refuses the right one")
	}
	if h == HashPassword("a long enough password") {
		t.Fatal("two hashes of one password are equal: no salt")
	}
	for _, bad := range []string{"", "$argon2id$v=19$m=99999999,t=3,p=2$AAAA$AAAA", "plain"} {
		if CheckPassword(bad, "x") {
			t.Errorf("CheckPassword(%q) accepted", bad)
		}
	}
}

func TestUsersTokensAndLastOwner(t *testing.T) {
	e := newEnv(t, nil)
	owner := e.token(sitevault.RoleOwner)
	resp, body := e.do("POST", "/api/v1/users", owner, userRequest{Email: "v@example.org", Role: sitevault.RoleViewer, Password: "short"})
	if resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("short password: %d %s", resp.StatusCode, body)
	}
	resp, body = e.do("POST", "/api/v1/users", owner, userRequest{Email: "v@example.org", Role: sitevault.RoleViewer, Password: "viewer-password-1"})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("add viewer: %d %s", resp.StatusCode, body)
	}
	resp, body = e.do("GET", "/api/v1/users", owner, nil)
	if resp.StatusCode != 200 || strings.Contains(string(body), "argon2") || strings.Contains(string(body), "password") {
		t.Fatalf("users list shows hashes or passwords: %s", body)
	}
	// The last owner cannot be demoted or removed.
	u, _, _ := e.cat.UserByEmail(context.Background(), "owner@example.org")
	resp, _ = e.do("PATCH", "/api/v1/users/"+itoa(u.ID), owner, userRequest{Role: sitevault.RoleViewer})
	if resp.StatusCode != http.StatusConflict {
		t.Fatalf("demoting the last owner: %d, want 409", resp.StatusCode)
	}
	resp, _ = e.do("DELETE", "/api/v1/users/"+itoa(u.ID), owner, nil)
	if resp.StatusCode != http.StatusConflict {
		t.Fatalf("removing the last owner: %d, want 409", resp.StatusCode)
	}
	// A token's secret is shown once and stored hashed.
	resp, body = e.do("POST", "/api/v1/tokens", owner, tokenRequest{Name: "ci"})
	var created struct {
		Secret string          `json:"secret"`
		Token  sitevault.Token `json:"token"`
	}
	json.Unmarshal(body, &created)
	if resp.StatusCode != http.StatusCreated || !strings.HasPrefix(created.Secret, tokenPrefix) {
		t.Fatalf("create token: %d %s", resp.StatusCode, body)
	}
	raw, _ := os.ReadFile(filepath.Join(e.home, sqlite.FileName))
	wal, _ := os.ReadFile(filepath.Join(e.home, sqlite.FileName+"-wal"))
	if bytes.Contains(raw, []byte(created.Secret)) || bytes.Contains(wal, []byte(created.Secret)) {
		t.Fatal("the token's secret is in the catalog file")
	}
	if resp, _ := e.do("GET", "/api/v1/me", created.Secret, nil); resp.StatusCode != 200 {
		t.Fatalf("new token refused: %d", resp.StatusCode)
	}
	if resp, _ := e.do("DELETE", "/api/v1/tokens/"+itoa(created.Token.ID), owner, nil); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("remove token: %d", resp.StatusCode)
	}
	if resp, _ := e.do("GET", "/api/v1/me", created.Secret, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("removed token accepted: %d", resp.StatusCode)
	}
}

func TestProblemsAndUnknownFields(t *testing.T) {
	e := newEnv(t, nil)
	owner := e.token(sitevault.RoleOwner)
	resp, body := e.do("GET", "/api/v1/sites/nosuch", owner, nil)
	var p problem
	json.Unmarshal(body, &p)
	if resp.StatusCode != 404 || p.Code != "site_not_found" || p.Status != 404 || !strings.Contains(p.Detail, "nosuch") {
		t.Fatalf("missing site: %d %s", resp.StatusCode, body)
	}
	resp, body = e.do("POST", "/api/v1/sites", owner, map[string]any{"name": "blog", "pathh": "/x"})
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "pathh") {
		t.Fatalf("unknown field: %d %s", resp.StatusCode, body)
	}
	resp, body = e.do("POST", "/api/v1/sites", owner, map[string]any{"name": "Bad Name", "path": "/x"})
	if resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("bad name: %d %s", resp.StatusCode, body)
	}
	resp, body = e.do("POST", "/api/v1/sites", owner, map[string]any{"name": "blog", "path": "/no/such/folder"})
	json.Unmarshal(body, &p)
	if resp.StatusCode != http.StatusUnprocessableEntity || p.Code != "not_found" || p.Advice == "" {
		t.Fatalf("missing folder: %d %s", resp.StatusCode, body)
	}
	if _, err := e.cat.Site(context.Background(), "blog"); err == nil {
		t.Fatal("a site that failed its check was saved")
	}
}

func itoa(n int64) string { return strings.TrimSpace(string(mustMarshal(n))) }

func mustMarshal(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

func TestLoginLimiterNeverLocksAnAccountForEveryone(t *testing.T) {
	l := newLoginLimiter()
	now := time.Now()
	for range loginFailures {
		l.fail(now, loginKeys("owner@example.org", "203.0.113.9"))
	}
	if !l.blocked(now, loginKeys("owner@example.org", "203.0.113.9")) {
		t.Fatal("the guessing address is not blocked for that email")
	}
	if l.blocked(now, loginKeys("owner@example.org", "198.51.100.7")) {
		t.Fatal("the owner is locked out from another address")
	}
	for i := range addressFailures {
		l.fail(now, loginKeys(fmt.Sprintf("u%d@example.org", i), "192.0.2.1"))
	}
	if !l.blocked(now, loginKeys("anyone@example.org", "192.0.2.1")) {
		t.Fatal("an address spraying emails is not blocked")
	}
	if l.blocked(now.Add(loginWindow+time.Second), loginKeys("owner@example.org", "203.0.113.9")) {
		t.Fatal("the block outlives its window")
	}
}
