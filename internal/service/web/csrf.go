package web

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
)

// CSRF protection is a double-submit token: a random value in an
// HttpOnly, SameSite=Strict cookie, repeated in every form's hidden
// "csrf" input. Another site can neither read the cookie nor make the
// browser send it with a cross-site POST, so it cannot forge the pair.
// The mux's cross-origin protection (Sec-Fetch-Site, Origin) is a second
// check in front of this one.

const csrfCookie = "sitevault_csrf"

// csrfToken returns the request's token, setting a new cookie if it has
// none (the sign-in form needs one before any session exists).
func csrfToken(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(csrfCookie); err == nil && len(c.Value) == 43 {
		return c.Value
	}
	b := make([]byte, 32)
	rand.Read(b)
	v := base64.RawURLEncoding.EncodeToString(b)
	http.SetCookie(w, &http.Cookie{Name: csrfCookie, Value: v, Path: "/", HttpOnly: true,
		Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	// A request that rendered a form sets the cookie; later renders in the
	// same request (none today) would reuse it through the header.
	r.AddCookie(&http.Cookie{Name: csrfCookie, Value: v})
	return v
}

// checkCSRF says whether a form's token matches its cookie.
func checkCSRF(r *http.Request) bool {
	c, err := r.Cookie(csrfCookie)
	if err != nil || len(c.Value) != 43 {
		return false
	}
	form := r.PostFormValue("csrf")
	return subtle.ConstantTimeCompare([]byte(form), []byte(c.Value)) == 1
}
