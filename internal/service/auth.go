package service

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/sitevault/sitevault/internal/catalog"
	"github.com/sitevault/sitevault/internal/sitevault"
)

// Users sign in with an email and a password (argon2id, RFC 9106's
// second recommended setting: 64 MiB, 3 passes) and get a session cookie;
// scripts and the CLI use API tokens ("Authorization: Bearer svt_…").
// Sessions and tokens are stored as SHA-256 hashes of their random
// values, so a copy of the catalog opens neither.

const (
	sessionCookie   = "sitevault_session"
	sessionLifetime = 12 * time.Hour
	tokenPrefix     = "svt_"
	minPassword     = 12
)

// argon2id parameters.
const (
	argonTime    = 3
	argonMemory  = 64 * 1024
	argonThreads = 2
	argonKeyLen  = 32
)

// HashPassword returns the PHC string of an argon2id hash of password.
func HashPassword(password string) string {
	salt := make([]byte, 16)
	rand.Read(salt)
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		b64.EncodeToString(salt), b64.EncodeToString(key))
}

// CheckPassword reports whether password matches the PHC hash.
func CheckPassword(hash, password string) bool {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	var version int
	var m uint32
	var t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || m > 1<<20 || t > 16 || p == 0 {
		return false
	}
	b64 := base64.RawStdEncoding
	salt, err1 := b64.DecodeString(parts[4])
	want, err2 := b64.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) == 0 || len(want) > 128 {
		return false
	}
	got := argon2.IDKey([]byte(password), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

// dummyHash is checked for unknown emails, so that a sign-in takes as
// long whether the email exists or not.
// It is computed on first use: an argon2id hash costs 64 MiB and about a
// second of CPU, which every sitevault command would pay at start-up if it
// were a package variable.
var dummyHash = sync.OnceValue(func() string { return HashPassword("sitevault-no-such-user") })

func randomToken(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func hashToken(t string) string {
	h := sha256.Sum256([]byte(t))
	return hex.EncodeToString(h[:])
}

// ValidPassword checks a new password's length.
func ValidPassword(pw string) error {
	if len([]rune(pw)) < minPassword {
		return fmt.Errorf("%w: a password needs at least %d characters", sitevault.ErrInvalid, minPassword)
	}
	return nil
}

// EnsureOwner creates the first owner when the catalog has no user: with
// email and password when given (from the environment), or with a random
// password, which it returns so that it is shown once. created is false
// when a user existed (or another worker created the owner first).
func EnsureOwner(ctx context.Context, cat *catalog.Catalog, email, password string) (created bool, shownPassword string, err error) {
	n, err := cat.CountUsers(ctx)
	if err != nil || n > 0 {
		return false, "", err
	}
	if email == "" {
		email = "owner@localhost"
	}
	if password == "" {
		password = randomToken(18)
		shownPassword = password
	} else if err := ValidPassword(password); err != nil {
		return false, "", err
	}
	_, err = cat.AddUser(ctx, sitevault.User{Email: email, Name: "Owner", Role: sitevault.RoleOwner}, HashPassword(password))
	if errors.Is(err, catalog.ErrExists) {
		return false, "", nil
	}
	if err != nil {
		return false, "", err
	}
	return true, shownPassword, nil
}

// NewToken makes an API token for user: the secret (shown once) and its
// stored form.
func NewToken(ctx context.Context, cat *catalog.Catalog, userID int64, name string, expires *time.Time) (secret string, tok *sitevault.Token, err error) {
	secret = tokenPrefix + randomToken(32)
	tok, err = cat.AddToken(ctx, sitevault.Token{UserID: userID, Name: name, Prefix: secret[:len(tokenPrefix)+6], Expires: expires}, hashToken(secret))
	return secret, tok, err
}

type ctxKey int

const userKey ctxKey = 0

// userOf returns the authenticated user of a request.
func userOf(r *http.Request) *sitevault.User {
	u, _ := r.Context().Value(userKey).(*sitevault.User)
	return u
}

// authenticate finds the request's user from a bearer token or a session
// cookie (nil: none).
func (s *Service) authenticate(r *http.Request) *sitevault.User {
	if h := r.Header.Get("Authorization"); h != "" {
		tok, ok := strings.CutPrefix(h, "Bearer ")
		if !ok || !strings.HasPrefix(tok, tokenPrefix) {
			return nil
		}
		u, err := s.cat.TokenUser(r.Context(), hashToken(tok))
		if err != nil {
			return nil
		}
		return u
	}
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return nil
	}
	u, err := s.cat.SessionUser(r.Context(), hashToken(c.Value))
	if err != nil {
		return nil
	}
	return u
}

// access is what a route requires.
type access int

const (
	public  access = iota // sign-in and health
	viewer                // any signed-in user
	owner                 // owners only
	pairing               // the connector's pairing: a one-time pairing code in the body
	signed                // the connector's requests: signed with the site's key
)

// guard wraps h with the route's access rule.
func (s *Service) guard(a access, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a == public || a == pairing || a == signed {
			// Pairing and signed requests are checked by their handlers
			// (a code, a signature): they carry no user.
			h(w, r)
			return
		}
		u := s.authenticate(r)
		if u == nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="sitevault"`)
			writeProblem(w, http.StatusUnauthorized, "unauthorized", "this request needs a session (sign in) or an API token")
			return
		}
		if a == owner && u.Role != sitevault.RoleOwner {
			writeProblem(w, http.StatusForbidden, "forbidden", viewerRefusal)
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), userKey, u)))
	})
}

// viewerRefusal is the detail of an owner route's refusal of a viewer.
const viewerRefusal = "viewers see everything but cannot change, restore or download anything; ask an owner"

// loginLimiter slows down password guessing: after 5 failures for one
// email from one client address, or 50 from one address, within 15
// minutes, sign-ins from there are refused until the window passes. It
// never locks an account for everyone: a stranger failing on purpose
// must not lock the owner out (nor, behind a proxy, everybody).
type loginLimiter struct {
	mu       sync.Mutex
	failures map[string][]time.Time
}

func newLoginLimiter() *loginLimiter { return &loginLimiter{failures: map[string][]time.Time{}} }

const (
	loginWindow     = 15 * time.Minute
	loginFailures   = 5  // per email and client address
	addressFailures = 50 // per client address
)

// loginKeys are the keys a sign-in is counted under, with their limits.
func loginKeys(email, addr string) map[string]int {
	return map[string]int{"pair:" + addr + "|" + email: loginFailures, "ip:" + addr: addressFailures}
}

func (l *loginLimiter) blocked(now time.Time, keys map[string]int) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, limit := range keys {
		recent := l.failures[k][:0]
		for _, t := range l.failures[k] {
			if now.Sub(t) < loginWindow {
				recent = append(recent, t)
			}
		}
		l.failures[k] = recent
		if len(recent) >= limit {
			return true
		}
	}
	return false
}

func (l *loginLimiter) fail(now time.Time, keys map[string]int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.failures) > 100000 { // bound memory under a spray of addresses
		clear(l.failures)
	}
	for k := range keys {
		l.failures[k] = append(l.failures[k], now)
	}
}
