package service

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/sitevault/sitevault/internal/archive"
	"github.com/sitevault/sitevault/internal/catalog"
	"github.com/sitevault/sitevault/internal/notify"
	"github.com/sitevault/sitevault/internal/point"
	"github.com/sitevault/sitevault/internal/repository"
	"github.com/sitevault/sitevault/internal/restore"
	"github.com/sitevault/sitevault/internal/service/web"
	"github.com/sitevault/sitevault/internal/site"
	"github.com/sitevault/sitevault/internal/sitevault"
)

// route is one API route: the access it needs and its handler. The list is
// the API; the OpenAPI file in docs/ is checked against it by a test.
type route struct {
	method, path string
	access       access
	handler      func(*Service, http.ResponseWriter, *http.Request)
}

// routes lists every route of the service.
var routes = []route{
	{"GET", "/healthz", public, (*Service).health},
	{"GET", "/metrics", viewer, (*Service).serveMetrics},
	{"POST", "/api/v1/session", public, (*Service).signIn},
	{"DELETE", "/api/v1/session", viewer, (*Service).signOut},
	{"GET", "/api/v1/me", viewer, (*Service).me},

	{"GET", "/api/v1/sites", viewer, (*Service).listSites},
	{"POST", "/api/v1/sites", owner, (*Service).addSite},
	{"GET", "/api/v1/sites/{site}", viewer, (*Service).getSite},
	{"PATCH", "/api/v1/sites/{site}", owner, (*Service).editSite},
	{"DELETE", "/api/v1/sites/{site}", owner, (*Service).removeSite},
	{"GET", "/api/v1/sites/{site}/points", viewer, (*Service).listPoints},
	{"POST", "/api/v1/sites/{site}/backups", owner, (*Service).backupNow},
	{"POST", "/api/v1/sites/{site}/restores", owner, (*Service).startRestore},
	{"POST", "/api/v1/sites/{site}/undo", owner, (*Service).startUndo},
	{"POST", "/api/v1/sites/{site}/downloads", owner, (*Service).startDownload},

	{"GET", "/api/v1/downloads/{id}", owner, (*Service).getDownload},
	{"GET", "/api/v1/downloads/{id}/file", owner, (*Service).downloadFile},

	{"GET", "/api/v1/jobs", viewer, (*Service).listJobs},
	{"GET", "/api/v1/jobs/{id}", viewer, (*Service).getJob},
	{"POST", "/api/v1/jobs/{id}/cancel", owner, (*Service).cancelJob},
	{"GET", "/api/v1/jobs/{id}/events", viewer, (*Service).jobEvents},

	{"GET", "/api/v1/sites/{site}/activity", viewer, (*Service).listActivity},
	{"POST", "/api/v1/sites/{site}/activity/{id}/restore", owner, (*Service).restoreToEvent},
	{"POST", "/api/v1/sites/{site}/activity/{id}/undo", owner, (*Service).undoEvent},
	{"POST", "/api/v1/sites/{site}/connector", owner, (*Service).createPairingCode},
	{"POST", "/api/v1/connector/pair", pairing, (*Service).pair},
	{"POST", "/api/v1/connector/events", signed, (*Service).ingest},
	{"POST", "/api/v1/connector/rotate", signed, (*Service).rotateKey},

	{"POST", "/api/v1/repository/check", owner, (*Service).startCheck},
	{"POST", "/api/v1/repository/prune", owner, (*Service).startPrune},

	{"GET", "/api/v1/users", viewer, (*Service).listUsers},
	{"POST", "/api/v1/users", owner, (*Service).addUser},
	{"PATCH", "/api/v1/users/{id}", viewer, (*Service).editUser},
	{"DELETE", "/api/v1/users/{id}", owner, (*Service).removeUser},
	{"GET", "/api/v1/tokens", viewer, (*Service).listTokens},
	{"POST", "/api/v1/tokens", viewer, (*Service).addToken},
	{"DELETE", "/api/v1/tokens/{id}", viewer, (*Service).removeToken},

	{"GET", "/api/v1/settings/smtp", owner, (*Service).getSMTP},
	{"PUT", "/api/v1/settings/smtp", owner, (*Service).putSMTP},
	{"POST", "/api/v1/settings/smtp/test", owner, (*Service).testSMTP},
}

// Routes returns "METHOD PATH" of every route (for the OpenAPI check).
func Routes() []string {
	out := make([]string, len(routes))
	for i, r := range routes {
		out[i] = r.method + " " + r.path
	}
	return out
}

// routeAccess returns the access of every route by "METHOD PATH":
// "public", "viewer" or "owner", as the OpenAPI file's x-sitevault-role
// says it.
func routeAccess() map[string]string {
	out := make(map[string]string, len(routes))
	for _, r := range routes {
		name := "unknown"
		switch r.access {
		case public:
			name = "public"
		case viewer:
			name = "viewer"
		case owner:
			name = "owner"
		case pairing:
			name = "pairing"
		case signed:
			name = "signed"
		}
		out[r.method+" "+r.path] = name
	}
	return out
}

func (s *Service) routes() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range routes {
		h := rt.handler
		mux.Handle(rt.method+" "+rt.path, s.guard(rt.access, func(w http.ResponseWriter, r *http.Request) { h(s, w, r) }))
	}
	web.New(dashboard{s}, s.log).Mount(mux) // the dashboard: every other path
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, http.StatusNotFound, "not_found", "no such route: "+r.Method+" "+r.URL.Path)
	})
	// Browsers send Sec-Fetch-Site / Origin: a cross-site POST, PUT, PATCH
	// or DELETE is refused, so a page elsewhere cannot use a signed-in
	// user's cookie. Scripts with tokens send neither header.
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, http.StatusForbidden, "cross_origin", "cross-origin requests that change something are refused")
	}))
	return s.logRequests(securityHeaders(cop.Handler(mux)))
}

func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("X-Frame-Options", "DENY")
		w.Header().Set("Referrer-Policy", "same-origin")
		h.ServeHTTP(w, r)
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) { w.status = code; w.ResponseWriter.WriteHeader(code) }
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (s *Service) logRequests(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: 200}
		h.ServeHTTP(sw, r)
		// The query may hold a download link's signature: log the path only.
		s.log.Debug("http", "method", r.Method, "path", r.URL.Path, "status", sw.status, "took", time.Since(start).Round(time.Microsecond))
	})
}

// maxBody bounds a request's JSON body.
const maxBody = 1 << 20

func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		writeProblem(w, http.StatusBadRequest, "bad_request", "the body is not the JSON this route takes: "+err.Error())
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func pathID(w http.ResponseWriter, r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		writeProblem(w, http.StatusNotFound, "not_found", "no such id: "+r.PathValue("id"))
		return 0, false
	}
	return id, true
}

func (s *Service) health(w http.ResponseWriter, r *http.Request) {
	if _, err := s.cat.CountUsers(r.Context()); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "catalog unavailable"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "worker": s.cfg.Worker})
}

// --- sessions and users ---

type signInRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

func clientIP(r *http.Request) string {
	host := r.RemoteAddr
	if i := strings.LastIndexByte(host, ':'); i > 0 {
		host = host[:i]
	}
	return host
}

func (s *Service) signIn(w http.ResponseWriter, r *http.Request) {
	var req signInRequest
	if !readJSON(w, r, &req) {
		return
	}
	u, status, code, err := s.startSession(w, r, req.Email, req.Password)
	if err != nil {
		if status == 0 {
			errorProblem(w, err)
		} else {
			writeProblem(w, status, code, err.Error())
		}
		return
	}
	writeJSON(w, http.StatusOK, u)
}

// startSession checks a sign-in (rate-limited per address and email) and
// sets the session cookie. A refusal has an HTTP status and code (status 0:
// the catalog failed, err says how). The API and the dashboard's form use it.
func (s *Service) startSession(w http.ResponseWriter, r *http.Request, email, password string) (*sitevault.User, int, string, error) {
	now := time.Now()
	email = strings.ToLower(strings.TrimSpace(email))
	keys := loginKeys(email, clientIP(r))
	if s.limiter.blocked(now, keys) {
		return nil, http.StatusTooManyRequests, "too_many_requests", errors.New("too many failed sign-ins; wait 15 minutes")
	}
	u, hash, err := s.cat.UserByEmail(r.Context(), email)
	if err != nil {
		CheckPassword(dummyHash(), password)
	}
	if err != nil || !CheckPassword(hash, password) {
		s.limiter.fail(now, keys)
		s.log.Info("sign-in refused", "email", email, "remote", clientIP(r))
		return nil, http.StatusUnauthorized, "sign_in_failed", errors.New("wrong email or password")
	}
	value := randomToken(32)
	expires := now.Add(sessionLifetime)
	if err := s.cat.AddSession(r.Context(), hashToken(value), u.ID, expires); err != nil {
		return nil, 0, "", err
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: value, Path: "/", Expires: expires,
		HttpOnly: true, Secure: s.cfg.SecureCookies || r.TLS != nil, SameSite: http.SameSiteLaxMode})
	return u, 0, "", nil
}

func (s *Service) signOut(w http.ResponseWriter, r *http.Request) {
	s.endSession(w, r)
	w.WriteHeader(http.StatusNoContent)
}

// endSession removes the request's session and clears its cookie.
func (s *Service) endSession(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil {
		s.cat.RemoveSession(r.Context(), hashToken(c.Value))
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true})
}

func (s *Service) me(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, userOf(r)) }

type userRequest struct {
	Email    string         `json:"email"`
	Name     string         `json:"name"`
	Role     sitevault.Role `json:"role"`
	Password string         `json:"password"`
}

func (s *Service) listUsers(w http.ResponseWriter, r *http.Request) {
	users, err := s.cat.Users(r.Context())
	if err != nil {
		errorProblem(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"users": users})
}

func (s *Service) addUser(w http.ResponseWriter, r *http.Request) {
	var req userRequest
	if !readJSON(w, r, &req) {
		return
	}
	u, err := s.createUser(r.Context(), req)
	if err != nil {
		requestProblem(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, u)
}

// createUser checks and adds a user (the API and the dashboard).
func (s *Service) createUser(ctx context.Context, req userRequest) (*sitevault.User, error) {
	req.Email = strings.ToLower(strings.TrimSpace(req.Email))
	if !strings.Contains(req.Email, "@") || strings.ContainsAny(req.Email, "\r\n ") {
		return nil, &requestError{http.StatusUnprocessableEntity, "invalid", errors.New("email: not an email address")}
	}
	if err := ValidPassword(req.Password); err != nil {
		return nil, err
	}
	return s.cat.AddUser(ctx, sitevault.User{Email: req.Email, Name: req.Name, Role: req.Role}, HashPassword(req.Password))
}

// editUser changes a user: owners change anyone's name, role and
// password; a viewer only its own name and password.
func (s *Service) editUser(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	me := userOf(r)
	if me.Role != sitevault.RoleOwner && me.ID != id {
		writeProblem(w, http.StatusForbidden, "forbidden", "a viewer may change only its own account")
		return
	}
	var req userRequest
	if !readJSON(w, r, &req) {
		return
	}
	u, err := s.cat.User(r.Context(), id)
	if err != nil {
		errorProblem(w, err)
		return
	}
	if req.Name != "" {
		u.Name = req.Name
	}
	if req.Role != "" {
		if me.Role != sitevault.RoleOwner {
			writeProblem(w, http.StatusForbidden, "forbidden", "only an owner changes roles")
			return
		}
		if u.Role == sitevault.RoleOwner && req.Role != sitevault.RoleOwner && s.lastOwner(r, u.ID) {
			writeProblem(w, http.StatusConflict, "last_owner", "this is the last owner; make another user an owner first")
			return
		}
		u.Role = req.Role
	}
	hash := ""
	if req.Password != "" {
		if err := ValidPassword(req.Password); err != nil {
			errorProblem(w, err)
			return
		}
		hash = HashPassword(req.Password)
	}
	if err := s.cat.UpdateUser(r.Context(), *u, hash); err != nil {
		errorProblem(w, err)
		return
	}
	writeJSON(w, http.StatusOK, u)
}

func (s *Service) lastOwner(r *http.Request, id int64) bool {
	users, err := s.cat.Users(r.Context())
	if err != nil {
		return true
	}
	for _, u := range users {
		if u.Role == sitevault.RoleOwner && u.ID != id {
			return false
		}
	}
	return true
}

func (s *Service) removeUser(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	u, err := s.cat.User(r.Context(), id)
	if err != nil {
		errorProblem(w, err)
		return
	}
	if u.Role == sitevault.RoleOwner && s.lastOwner(r, id) {
		writeProblem(w, http.StatusConflict, "last_owner", "this is the last owner; make another user an owner first")
		return
	}
	if err := s.cat.RemoveUser(r.Context(), id); err != nil {
		errorProblem(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

type tokenRequest struct {
	Name          string `json:"name"`
	ExpiresInDays int    `json:"expires_in_days"`
}

// tokenScope is the user whose tokens a request sees: an owner's are all
// (0), a viewer's its own.
func tokenScope(u *sitevault.User) int64 {
	if u.Role == sitevault.RoleOwner {
		return 0
	}
	return u.ID
}

func (s *Service) listTokens(w http.ResponseWriter, r *http.Request) {
	toks, err := s.cat.Tokens(r.Context(), tokenScope(userOf(r)))
	if err != nil {
		errorProblem(w, err)
		return
	}
	if toks == nil {
		toks = []*sitevault.Token{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"tokens": toks})
}

func (s *Service) addToken(w http.ResponseWriter, r *http.Request) {
	var req tokenRequest
	if !readJSON(w, r, &req) {
		return
	}
	if req.Name == "" || len(req.Name) > 100 {
		writeProblem(w, http.StatusUnprocessableEntity, "invalid", "name: give the token a name (at most 100 characters)")
		return
	}
	var expires *time.Time
	if req.ExpiresInDays > 0 {
		t := time.Now().AddDate(0, 0, req.ExpiresInDays)
		expires = &t
	}
	secret, tok, err := NewToken(r.Context(), s.cat, userOf(r).ID, req.Name, expires)
	if err != nil {
		errorProblem(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"token": tok, "secret": secret,
		"note": "the secret is shown once; keep it in a file or a secret store, never on a command line"})
}

func (s *Service) removeToken(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	if err := s.cat.RemoveToken(r.Context(), id, tokenScope(userOf(r))); err != nil {
		errorProblem(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// --- sites ---

// SiteView is a site as the API shows it: its settings (secrets only as
// "set" flags) and its status.
type SiteView struct {
	Name       string              `json:"name"`
	Connection sitevault.Kind      `json:"connection"`
	Path       string              `json:"path"`
	Location   string              `json:"location"`
	SSH        *sshView            `json:"ssh,omitempty"`
	DB         dbView              `json:"db"`
	Schedule   sitevault.Schedule  `json:"schedule"`
	Retention  sitevault.Retention `json:"retention"`
	Notify     []string            `json:"notify"`
	Status     *catalog.SiteStatus `json:"status,omitempty"`
	Created    time.Time           `json:"created"`
	Updated    time.Time           `json:"updated"`
}

type sshView struct {
	User               string `json:"user"`
	Host               string `json:"host"`
	Port               int    `json:"port"`
	IdentityFile       string `json:"identity_file,omitempty"`
	HostKeyFingerprint string `json:"host_key_fingerprint,omitempty"`
	PasswordSet        bool   `json:"password_set"`
	PassphraseSet      bool   `json:"passphrase_set"`
}

type dbView struct {
	Host        string `json:"host,omitempty"`
	Name        string `json:"name,omitempty"`
	User        string `json:"user,omitempty"`
	TablePrefix string `json:"table_prefix,omitempty"`
	PasswordSet bool   `json:"password_set"`
}

func viewSite(st sitevault.Site, status *catalog.SiteStatus) SiteView {
	v := SiteView{Name: st.Name, Connection: st.Kind, Path: st.Path, Location: st.Location(), Schedule: st.Schedule,
		Retention: st.RetentionOrDefault(), Notify: st.Notify, Status: status, Created: st.Created, Updated: st.Updated,
		DB: dbView{Host: st.DB.Host, Name: st.DB.Name, User: st.DB.User, TablePrefix: st.DB.TablePrefix, PasswordSet: st.DB.Password.IsSet()}}
	if v.Notify == nil {
		v.Notify = []string{}
	}
	if st.Kind == sitevault.SSH {
		v.SSH = &sshView{User: st.SSH.User, Host: st.SSH.Host, Port: st.SSHPort(), IdentityFile: st.SSH.IdentityFile,
			HostKeyFingerprint: st.SSH.HostKeyFingerprint, PasswordSet: st.SSH.Password.IsSet(), PassphraseSet: st.SSH.Passphrase.IsSet()}
	}
	return v
}

func (s *Service) listSites(w http.ResponseWriter, r *http.Request) {
	sites, err := s.cat.Sites(r.Context())
	if err != nil {
		errorProblem(w, err)
		return
	}
	statuses, err := s.cat.Statuses(r.Context())
	if err != nil {
		errorProblem(w, err)
		return
	}
	byName := map[string]*catalog.SiteStatus{}
	for _, st := range statuses {
		byName[st.Site] = st
	}
	out := make([]SiteView, 0, len(sites))
	for _, st := range sites {
		out = append(out, viewSite(st, byName[st.Name]))
	}
	writeJSON(w, http.StatusOK, map[string]any{"sites": out})
}

func (s *Service) site(w http.ResponseWriter, r *http.Request) (sitevault.Site, bool) {
	st, err := s.cat.Site(r.Context(), r.PathValue("site"))
	if err != nil {
		errorProblem(w, err)
		return st, false
	}
	return st, true
}

func (s *Service) getSite(w http.ResponseWriter, r *http.Request) {
	st, ok := s.site(w, r)
	if !ok {
		return
	}
	status, _ := s.cat.Status(r.Context(), st.Name)
	writeJSON(w, http.StatusOK, viewSite(st, status))
}

// siteRequest adds or edits a site. Secrets travel in the body (never in
// a URL); absent fields keep their values on an edit.
type siteRequest struct {
	Name      string               `json:"name"`
	Path      *string              `json:"path"`
	SSH       *sshRequest          `json:"ssh"`
	DB        *dbRequest           `json:"db"`
	Schedule  *sitevault.Schedule  `json:"schedule"`
	Retention *sitevault.Retention `json:"retention"`
	Notify    *[]string            `json:"notify"`
	// AcceptHostKey is the SHA256 fingerprint of the server's host key,
	// as a first attempt's host_key_unknown problem gave it.
	AcceptHostKey string `json:"accept_host_key"`
	// SkipCheck saves settings that change no connection (schedule,
	// retention, notify) without connecting to the site.
	SkipCheck bool `json:"skip_check"`
}

type sshRequest struct {
	User         string  `json:"user"`
	Host         string  `json:"host"`
	Port         int     `json:"port"`
	IdentityFile string  `json:"identity_file"`
	Password     *string `json:"password"`
	Passphrase   *string `json:"passphrase"`
	// ResetHostKey forgets the recorded key (the server was reinstalled).
	ResetHostKey bool `json:"reset_host_key"`
}

type dbRequest struct {
	Host        *string `json:"host"`
	Name        *string `json:"name"`
	User        *string `json:"user"`
	Password    *string `json:"password"`
	TablePrefix *string `json:"table_prefix"`
}

func (req *siteRequest) apply(st *sitevault.Site) (connectionChanged bool) {
	if req.Path != nil {
		st.Path, connectionChanged = *req.Path, true
	}
	if req.SSH != nil {
		connectionChanged = true
		if req.SSH.Host == "" {
			st.Kind, st.SSH = sitevault.Local, sitevault.SSHSettings{}
		} else {
			old := st.SSH
			st.Kind = sitevault.SSH
			st.SSH.User, st.SSH.Host, st.SSH.Port, st.SSH.IdentityFile = req.SSH.User, req.SSH.Host, req.SSH.Port, req.SSH.IdentityFile
			if old.Host != req.SSH.Host || old.Port != req.SSH.Port || req.SSH.ResetHostKey {
				st.SSH.HostKey, st.SSH.HostKeyFingerprint = "", ""
			}
			if req.SSH.Password != nil {
				st.SSH.Password = sitevault.Secret(*req.SSH.Password)
			}
			if req.SSH.Passphrase != nil {
				st.SSH.Passphrase = sitevault.Secret(*req.SSH.Passphrase)
			}
		}
	}
	if d := req.DB; d != nil {
		connectionChanged = true
		set := func(dst *string, v *string) {
			if v != nil {
				*dst = *v
			}
		}
		set(&st.DB.Host, d.Host)
		set(&st.DB.Name, d.Name)
		set(&st.DB.User, d.User)
		set(&st.DB.TablePrefix, d.TablePrefix)
		if d.Password != nil {
			st.DB.Password = sitevault.Secret(*d.Password)
		}
	}
	if req.Schedule != nil {
		st.Schedule = *req.Schedule
	}
	if req.Retention != nil {
		st.Retention = req.Retention
	}
	if req.Notify != nil {
		st.Notify = *req.Notify
	}
	return connectionChanged
}

func (s *Service) addSite(w http.ResponseWriter, r *http.Request) {
	var req siteRequest
	if !readJSON(w, r, &req) {
		return
	}
	if err := sitevault.ValidateName(req.Name); err != nil {
		errorProblem(w, err)
		return
	}
	if _, err := s.cat.Site(r.Context(), req.Name); err == nil {
		errorProblem(w, fmt.Errorf("site %s: %w", req.Name, catalog.ErrSiteExists))
		return
	}
	st := sitevault.Site{Name: req.Name, Kind: sitevault.Local}
	req.apply(&st)
	s.checkAndSave(w, r, &st, req.AcceptHostKey, s.cat.AddSite, http.StatusCreated)
}

func (s *Service) editSite(w http.ResponseWriter, r *http.Request) {
	st, ok := s.site(w, r)
	if !ok {
		return
	}
	var req siteRequest
	if !readJSON(w, r, &req) {
		return
	}
	if req.Name != "" && req.Name != st.Name {
		writeProblem(w, http.StatusUnprocessableEntity, "invalid", "name: a site cannot be renamed (its restore points carry its name)")
		return
	}
	changed := req.apply(&st)
	if !changed && req.SkipCheck {
		if err := st.Validate(); err != nil {
			errorProblem(w, err)
			return
		}
		saved, err := s.cat.UpdateSite(r.Context(), st)
		if err != nil {
			errorProblem(w, err)
			return
		}
		status, _ := s.cat.Status(r.Context(), st.Name)
		writeJSON(w, http.StatusOK, map[string]any{"site": viewSite(saved, status)})
		return
	}
	s.checkAndSave(w, r, &st, req.AcceptHostKey, s.cat.UpdateSite, http.StatusOK)
}

// checkAndSave checks that the site answers as configured (connection,
// files, database login) and only then saves it, as `site add` does.
func (s *Service) checkAndSave(w http.ResponseWriter, r *http.Request, st *sitevault.Site, acceptKey string,
	save func(ctx context.Context, s sitevault.Site) (sitevault.Site, error), status int) {
	if err := st.Validate(); err != nil {
		errorProblem(w, err)
		return
	}
	check, err := s.checkSite(r.Context(), st, acceptKey)
	var hk *hostKeyError
	if errors.As(err, &hk) {
		writeProblemDoc(w, problem{Type: "https://sitevault.dev/problems/host_key_unknown", Title: "Accept the server's SSH host key",
			Status: http.StatusConflict, Code: "host_key_unknown", Detail: err.Error(), Fingerprint: hk.fingerprint,
			Advice: "Compare the fingerprint with the server's (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub on the server), then send the request again with accept_host_key set to it."})
		return
	}
	var ce *site.CheckError
	if errors.As(err, &ce) && ce.Step == site.StepConfig {
		p := problem{Type: "https://sitevault.dev/problems/config_incomplete", Title: "wp-config.php does not say enough",
			Status: http.StatusUnprocessableEntity, Code: "config_incomplete", Detail: err.Error(), Errors: map[string]string{},
			Advice: "Give the missing database settings in the site's db settings (they override wp-config.php)."}
		for _, v := range ce.Values {
			p.Errors[v.Name] = v.Reason()
		}
		writeProblemDoc(w, p)
		return
	}
	if err != nil {
		errorProblem(w, err)
		return
	}
	saved, err := save(r.Context(), *st)
	if err != nil {
		errorProblem(w, err)
		return
	}
	stat, _ := s.cat.Status(r.Context(), saved.Name)
	writeJSON(w, status, map[string]any{"site": viewSite(saved, stat), "check": check})
}

func (s *Service) removeSite(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("site")
	if err := s.cat.RemoveSite(r.Context(), name); err != nil {
		errorProblem(w, err)
		return
	}
	// Its restore points stay in the repository.
	w.WriteHeader(http.StatusNoContent)
}

// PointView is a restore point as the API lists it.
type PointView struct {
	ID      string            `json:"id"`
	Time    time.Time         `json:"time"`
	Day     string            `json:"day"`
	Kind    string            `json:"kind"`
	Trigger string            `json:"trigger"`
	Label   string            `json:"label"`
	Bytes   int64             `json:"bytes"`
	Files   int               `json:"files_changed"`
	Tables  int               `json:"tables_changed"`
	Meta    map[string]string `json:"meta"`
}

func (s *Service) listPoints(w http.ResponseWriter, r *http.Request) {
	st, ok := s.site(w, r)
	if !ok {
		return
	}
	loc, err := st.Schedule.Location()
	if err != nil {
		loc = time.UTC
	}
	if tz := r.URL.Query().Get("tz"); tz != "" {
		if l, err := time.LoadLocation(tz); err == nil {
			loc = l
		}
	}
	points, err := point.List(r.Context(), s.repo, st.Name)
	if err != nil {
		errorProblem(w, err)
		return
	}
	if day := r.URL.Query().Get("day"); day != "" {
		d, err := point.ParseDay(day, loc)
		if err != nil {
			writeProblem(w, http.StatusBadRequest, "bad_request", "day: "+err.Error())
			return
		}
		points = point.OnDay(points, d)
	}
	out := make([]PointView, 0, len(points))
	days := map[string]int{}
	for i := len(points) - 1; i >= 0; i-- { // newest first
		sn := points[i]
		pv := PointView{ID: sn.ID.String(), Time: sn.Time, Day: point.Day(sn, loc), Kind: point.KindOf(sn).String(),
			Trigger: sn.Trigger, Label: point.Label(sn), Meta: sn.Meta}
		if sn.Summary != nil {
			pv.Bytes = sn.Summary.BytesTotal
		}
		pv.Files, _ = strconv.Atoi(sn.Meta[point.MetaFilesChanged])
		pv.Tables, _ = strconv.Atoi(sn.Meta[point.MetaTablesChanged])
		days[pv.Day]++
		out = append(out, pv)
	}
	writeJSON(w, http.StatusOK, map[string]any{"points": out, "days": days, "time_zone": loc.String()})
}

// --- jobs ---

func (s *Service) enqueueFor(w http.ResponseWriter, r *http.Request, j catalog.NewJob) {
	j.CreatedBy = userOf(r).Email
	if j.Trigger == "" {
		j.Trigger = "api"
	}
	job, err := s.Enqueue(r.Context(), j)
	if err != nil {
		errorProblem(w, err)
		return
	}
	w.Header().Set("Location", "/api/v1/jobs/"+strconv.FormatInt(job.ID, 10))
	writeJSON(w, http.StatusAccepted, job)
}

func (s *Service) backupNow(w http.ResponseWriter, r *http.Request) {
	st, ok := s.site(w, r)
	if !ok {
		return
	}
	s.enqueueFor(w, r, catalog.NewJob{Kind: sitevault.JobBackup, Site: st.Name, Trigger: "manual", Params: BackupParams{Trigger: "manual"}})
}

func (s *Service) startRestore(w http.ResponseWriter, r *http.Request) {
	st, ok := s.site(w, r)
	if !ok {
		return
	}
	var req RestoreParams
	if !readJSON(w, r, &req) {
		return
	}
	j, err := s.restoreJob(r.Context(), st.Name, req)
	if err != nil {
		requestProblem(w, err)
		return
	}
	s.enqueueFor(w, r, j)
}

// requestError is a request the service refuses before queuing anything:
// the API answers Status with Code; the dashboard shows the message.
type requestError struct {
	Status int
	Code   string
	Err    error
}

func (e *requestError) Error() string { return e.Err.Error() }
func (e *requestError) Unwrap() error { return e.Err }

// requestProblem writes err as a problem document.
func requestProblem(w http.ResponseWriter, err error) {
	var re *requestError
	if errors.As(err, &re) {
		writeProblem(w, re.Status, re.Code, re.Err.Error())
		return
	}
	errorProblem(w, err)
}

// restoreJob checks a restore now, not when the job runs (the point
// exists; items, paths and tables make sense), and returns the job that
// restores exactly that point. The API and the dashboard use it.
func (s *Service) restoreJob(ctx context.Context, site string, req RestoreParams) (catalog.NewJob, error) {
	if req.Point == "" {
		return catalog.NewJob{}, &requestError{http.StatusUnprocessableEntity, "invalid", errors.New("point: name the restore point (an id, latest or a day YYYY-MM-DD)")}
	}
	sn, err := s.findPoint(ctx, site, req.Point)
	if err != nil {
		return catalog.NewJob{}, err
	}
	if _, _, err := restore.ResolveItems(req.Items, req.Paths, req.Tables, sn.Meta[point.MetaContentDir]); err != nil {
		return catalog.NewJob{}, &requestError{http.StatusUnprocessableEntity, "bad_request", err}
	}
	req.Point = sn.ID.String()
	return catalog.NewJob{Kind: sitevault.JobRestore, Site: site, Params: req}, nil
}

func (s *Service) startUndo(w http.ResponseWriter, r *http.Request) {
	st, ok := s.site(w, r)
	if !ok {
		return
	}
	s.enqueueFor(w, r, catalog.NewJob{Kind: sitevault.JobUndo, Site: st.Name})
}

func (s *Service) startDownload(w http.ResponseWriter, r *http.Request) {
	st, ok := s.site(w, r)
	if !ok {
		return
	}
	var req DownloadParams
	if !readJSON(w, r, &req) {
		return
	}
	j, err := s.downloadJobFor(r.Context(), st.Name, req)
	if err != nil {
		requestProblem(w, err)
		return
	}
	s.enqueueFor(w, r, j)
}

// downloadJobFor checks a download (format, point) and returns its job.
func (s *Service) downloadJobFor(ctx context.Context, site string, req DownloadParams) (catalog.NewJob, error) {
	if _, _, err := downloadFormat(req.Format); err != nil {
		return catalog.NewJob{}, &requestError{http.StatusUnprocessableEntity, "invalid", err}
	}
	sn, err := s.findPoint(ctx, site, req.Point)
	if err != nil {
		return catalog.NewJob{}, err
	}
	req.Point = sn.ID.String()
	return catalog.NewJob{Kind: sitevault.JobDownload, Site: site, Params: req}, nil
}

func (s *Service) startCheck(w http.ResponseWriter, r *http.Request) {
	var req CheckParams
	if !readJSON(w, r, &req) {
		return
	}
	s.enqueueFor(w, r, catalog.NewJob{Kind: sitevault.JobCheck, Params: req})
}

func (s *Service) startPrune(w http.ResponseWriter, r *http.Request) {
	s.enqueueFor(w, r, catalog.NewJob{Kind: sitevault.JobPrune})
}

func (s *Service) listJobs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := catalog.JobFilter{Site: q.Get("site"), Kind: sitevault.JobKind(q.Get("kind"))}
	for _, st := range q["state"] {
		f.States = append(f.States, sitevault.JobState(st))
	}
	f.Before, _ = strconv.ParseInt(q.Get("before"), 10, 64)
	f.Limit, _ = strconv.Atoi(q.Get("limit"))
	list, err := s.cat.Jobs(r.Context(), f)
	if err != nil {
		errorProblem(w, err)
		return
	}
	if list == nil {
		list = []*sitevault.Job{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"jobs": list})
}

func (s *Service) job(w http.ResponseWriter, r *http.Request) (*sitevault.Job, bool) {
	id, ok := pathID(w, r)
	if !ok {
		return nil, false
	}
	j, err := s.cat.Job(r.Context(), id)
	if err != nil {
		errorProblem(w, err)
		return nil, false
	}
	return j, true
}

func (s *Service) getJob(w http.ResponseWriter, r *http.Request) {
	if j, ok := s.job(w, r); ok {
		writeJSON(w, http.StatusOK, j)
	}
}

func (s *Service) cancelJob(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	j, err := s.cat.CancelJob(r.Context(), id)
	if err != nil {
		errorProblem(w, err)
		return
	}
	writeJSON(w, http.StatusAccepted, j)
}

// jobEvents streams a job's progress as Server-Sent Events ("progress"
// while it runs, then one "end" with the job), read from the catalog so
// that it works whichever worker runs the job.
func (s *Service) jobEvents(w http.ResponseWriter, r *http.Request) {
	j, ok := s.job(w, r)
	if !ok {
		return
	}
	fl, ok := w.(http.Flusher)
	if !ok {
		writeProblem(w, http.StatusInternalServerError, "error", "streaming is not supported here")
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	send := func(event string, v any) {
		b, _ := json.Marshal(v)
		fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, b)
		fl.Flush()
	}
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	var last []byte
	for {
		if j.State.Final() {
			send("end", j)
			return
		}
		b, _ := json.Marshal(struct {
			State    sitevault.JobState `json:"state"`
			Progress sitevault.Progress `json:"progress"`
		}{j.State, j.Progress})
		if string(b) != string(last) {
			fmt.Fprintf(w, "event: progress\ndata: %s\n\n", b)
			fl.Flush()
			last = b
		}
		select {
		case <-r.Context().Done():
			return
		case <-t.C:
		}
		nj, err := s.cat.Job(r.Context(), j.ID)
		if err != nil {
			return
		}
		j = nj
	}
}

// --- downloads ---

// downloadLink returns a link to a prepared download that lives an hour;
// it still needs a session or a token.
func (s *Service) downloadLink(id int64, now time.Time) (string, time.Time) {
	exp := now.Add(time.Hour).Truncate(time.Second)
	sig := s.signLink(id, exp.Unix())
	return fmt.Sprintf("%s/api/v1/downloads/%d/file?expires=%d&sig=%s", strings.TrimRight(s.cfg.BaseURL, "/"), id, exp.Unix(), sig), exp
}

func (s *Service) signLink(id, exp int64) string {
	m := hmac.New(sha256.New, s.linkKey)
	fmt.Fprintf(m, "download/%d/%d", id, exp)
	return hex.EncodeToString(m.Sum(nil))
}

func (s *Service) downloadJob(w http.ResponseWriter, r *http.Request) (*sitevault.Job, *DownloadResult, bool) {
	j, ok := s.job(w, r)
	if !ok {
		return nil, nil, false
	}
	if j.Kind != sitevault.JobDownload {
		writeProblem(w, http.StatusNotFound, "not_found", fmt.Sprintf("job %d is not a download", j.ID))
		return nil, nil, false
	}
	var res DownloadResult
	if j.State == sitevault.JobSucceeded {
		decodeResult(j, &res)
	}
	return j, &res, true
}

func (s *Service) getDownload(w http.ResponseWriter, r *http.Request) {
	j, res, ok := s.downloadJob(w, r)
	if !ok {
		return
	}
	out := map[string]any{"job": j}
	if j.State == sitevault.JobSucceeded {
		link, exp := s.downloadLink(j.ID, time.Now())
		out["download"], out["url"], out["url_expires"] = res, link, exp
	}
	writeJSON(w, http.StatusOK, out)
}

// downloadFile sends a prepared download: the file this worker wrote, or,
// when another worker prepared it, the same archive streamed from the
// repository.
func (s *Service) downloadFile(w http.ResponseWriter, r *http.Request) {
	j, res, ok := s.downloadJob(w, r)
	if !ok {
		return
	}
	exp, _ := strconv.ParseInt(r.URL.Query().Get("expires"), 10, 64)
	sig := r.URL.Query().Get("sig")
	if exp < time.Now().Unix() || !hmac.Equal([]byte(sig), []byte(s.signLink(j.ID, exp))) {
		writeProblem(w, http.StatusForbidden, "link_expired", "this download link is not valid or has expired; get a new one from the download's page")
		return
	}
	if j.State != sitevault.JobSucceeded {
		writeProblem(w, http.StatusConflict, "not_ready", fmt.Sprintf("the download is %s, not ready", j.State))
		return
	}
	w.Header().Set("Content-Disposition", `attachment; filename="`+url.PathEscape(res.Name)+`"`)
	if f, err := os.Open(s.downloadPath(j.ID, res.Format)); err == nil {
		defer f.Close()
		fi, err := f.Stat()
		if err == nil {
			http.ServeContent(w, r, res.Name, fi.ModTime(), f)
			return
		}
	}
	id, err := repository.ParseID(res.Point)
	if err != nil {
		errorProblem(w, err)
		return
	}
	sn, err := s.repo.LoadSnapshot(r.Context(), id)
	if err != nil {
		errorProblem(w, err)
		return
	}
	format, _, _ := downloadFormat(res.Format)
	w.Header().Set("Content-Type", "application/octet-stream")
	if err := archive.Write(r.Context(), s.repo, sn, w, format, archive.Options{}); err != nil {
		s.log.Error("stream download", "job", j.ID, "err", err)
	}
}

// --- settings ---

type smtpView struct {
	Host        string         `json:"host"`
	Port        int            `json:"port"`
	Username    string         `json:"username"`
	From        string         `json:"from"`
	TLS         notify.TLSMode `json:"tls"`
	PasswordSet bool           `json:"password_set"`
}

type smtpRequest struct {
	Host     string         `json:"host"`
	Port     int            `json:"port"`
	Username string         `json:"username"`
	Password *string        `json:"password"`
	From     string         `json:"from"`
	TLS      notify.TLSMode `json:"tls"`
}

func (s *Service) getSMTP(w http.ResponseWriter, r *http.Request) {
	st, err := s.SMTP(r.Context())
	if err != nil {
		errorProblem(w, err)
		return
	}
	if st == nil {
		writeJSON(w, http.StatusOK, map[string]any{"configured": false})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"configured": true, "smtp": smtpView{Host: st.Host, Port: st.Port,
		Username: st.Username, From: st.From, TLS: st.TLS, PasswordSet: st.Password != ""}})
}

func (s *Service) putSMTP(w http.ResponseWriter, r *http.Request) {
	var req smtpRequest
	if !readJSON(w, r, &req) {
		return
	}
	st := notify.SMTPSettings{Host: req.Host, Port: req.Port, Username: req.Username, From: req.From, TLS: req.TLS}
	if req.Password != nil {
		st.Password = *req.Password
	} else if old, err := s.SMTP(r.Context()); err == nil && old != nil {
		st.Password = old.Password
	}
	if err := s.SetSMTP(r.Context(), st); err != nil {
		errorProblem(w, err)
		return
	}
	s.getSMTP(w, r)
}

func (s *Service) testSMTP(w http.ResponseWriter, r *http.Request) {
	to := userOf(r).Email
	if err := s.sendTestMail(r.Context(), to); err != nil {
		requestProblem(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"sent_to": to})
}

// sendTestMail sends a test mail with the stored settings (the API and the
// dashboard's "send a test mail").
func (s *Service) sendTestMail(ctx context.Context, to string) error {
	mailer := s.mailer(ctx)
	if mailer == nil {
		return &requestError{http.StatusConflict, "not_configured", errors.New("no mail settings yet; save them first")}
	}
	err := mailer.Send(ctx, notify.Message{To: []string{to}, Subject: "[sitevault] Test mail",
		Text: "This is a test mail from sitevault. Alerts about your sites' backups will come from this address.\n"})
	if err != nil {
		return &requestError{http.StatusBadGateway, "mail_failed", err}
	}
	return nil
}
