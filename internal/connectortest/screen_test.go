package connectortest

import (
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sitevault/sitevault/internal/testsrv"
)

// browser is an HTTP client with cookies that does not follow redirects.
type browser struct {
	t    *testing.T
	base string
	c    *http.Client
}

func (b *browser) do(method, path string, form url.Values) (int, http.Header, string) {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.base+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(raw)
}

// formNonce finds the nonce of the form whose hidden action is action.
func formNonce(t *testing.T, html, action string) string {
	t.Helper()
	re := regexp.MustCompile(`name="_wpnonce" value="([0-9a-f]+)" />(?:<input type="hidden" name="_wp_http_referer" value="[^"]*" />)?<input type="hidden" name="action" value="` + action + `">`)
	m := re.FindStringSubmatch(html)
	if m == nil {
		t.Fatalf("no %s form with a nonce on the screen:\n%.3000s", action, html)
	}
	return m[1]
}

// TestSettingsScreen pairs and unpairs through Tools → sitevault on a
// WordPress served by php -S, logged in as the administrator: the nonce is
// checked, and a page view records an event but never sends it (php -S has
// no fastcgi_finish_request: sending is left to WP-Cron).
func TestSettingsScreen(t *testing.T) {
	if testing.Short() {
		t.Skip("starts MariaDB and WordPress")
	}
	needPHP(t)
	m := testsrv.StartMariaDB(t)
	w := testsrv.StartWordPress(t, m, testsrv.WordPressOptions{Bare: true})
	s := &site{t: t, w: w, dir: connectorDir(t)}
	rcv := newReceiver(t, "blog")
	s.install()
	s.step(nil, "activate")
	// Core's own cron events (HTTPS detection, site health) request the site itself, which php -S,
	// serving one request at a time, cannot answer while it runs wp-cron.php: they would wait for
	// their timeouts. Requests to the site's own port fail at once instead.
	noLoopback := fmt.Sprintf(`<?php
add_filter( 'pre_http_request', function ( $pre, $args, $url ) {
	return (int) wp_parse_url( $url, PHP_URL_PORT ) === %d ? new WP_Error( 'sv_test', 'no loopback requests in tests' ) : $pre;
}, 10, 3 );
`, w.Port)
	mu := filepath.Join(w.Root, "wp-content", "mu-plugins")
	if err := os.MkdirAll(mu, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(mu, "sv-no-loopback.php"), []byte(noLoopback), 0o644); err != nil {
		t.Fatal(err)
	}
	w.Serve(t)

	jar, _ := cookiejar.New(nil)
	b := &browser{t: t, base: w.URL, c: &http.Client{Jar: jar, Timeout: time.Minute,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	login := func() {
		b.do("GET", "/wp-login.php", nil) // sets WordPress's test cookie
		status, _, body := b.do("POST", "/wp-login.php", url.Values{"log": {"admin"}, "pwd": {w.Password},
			"testcookie": {"1"}, "wp-submit": {"Log In"}, "redirect_to": {w.URL + "/wp-admin/"}})
		if status != 302 {
			t.Fatalf("log in: %d\n%.2000s", status, body)
		}
	}
	login()
	const screen = "/wp-admin/tools.php?page=sitevault-connector"
	status, _, html := b.do("GET", screen, nil)
	if status != 200 || !strings.Contains(html, "This site is not paired") {
		t.Fatalf("the screen, unpaired: %d\n%.3000s", status, html)
	}
	nonce := formNonce(t, html, "sitevault_pair")

	// A forged request (no valid nonce) is refused.
	code := rcv.code()
	status, _, _ = b.do("POST", "/wp-admin/admin-post.php", url.Values{"action": {"sitevault_pair"},
		"_wpnonce": {"0123456789"}, "sitevault_code": {code}})
	if status != 403 || len(rcv.pairs) != 0 {
		t.Fatalf("pairing with a bad nonce: HTTP %d, %d pair requests", status, len(rcv.pairs))
	}

	status, hdr, _ := b.do("POST", "/wp-admin/admin-post.php", url.Values{"action": {"sitevault_pair"},
		"_wpnonce": {nonce}, "_wp_http_referer": {screen}, "sitevault_code": {code}})
	if status != 302 || !strings.Contains(hdr.Get("Location"), "page=sitevault-connector") {
		t.Fatalf("pair: HTTP %d, Location %q", status, hdr.Get("Location"))
	}
	_, _, html = b.do("GET", screen, nil)
	for _, want := range []string{"Paired with sitevault.", "<td>blog</td>", rcv.srv.URL, "Unpair"} {
		if !strings.Contains(html, want) {
			t.Errorf("the screen, paired, lacks %q:\n%.4000s", want, html)
		}
	}
	if len(rcv.pairs) != 1 {
		t.Fatalf("%d pair requests", len(rcv.pairs))
	}

	// A page view records (a log in) but does not send.
	login()
	if n, _ := rcv.stats(); n != 0 {
		t.Fatalf("a page view sent %d requests while the visitor waited", n)
	}
	o := s.outbox()
	if es := find(eventsOf(o), "user__logged_in"); len(es) != 1 || es[0].Actor.Name != "admin" || es[0].Summary != "User “admin” logged in" {
		t.Fatalf("after logging in, the outbox holds %v", names(eventsOf(o)))
	}
	// WP-Cron sends it: the recurring event, run by wp-cron.php.
	if v := s.step(nil, "cron-due"); v["recurrence"] != "sitevault_every_minute" {
		t.Fatalf("the send event recurs on %v", v["recurrence"])
	}
	if status, _, body := b.do("GET", "/wp-cron.php", nil); status != 200 {
		t.Fatalf("wp-cron.php: %d %s", status, body)
	}
	if es := find(all(rcv.take()), "user__logged_in"); len(es) != 1 {
		t.Fatalf("WP-Cron did not send the login")
	}
	if o := s.outbox(); len(o.Rows) != 0 {
		t.Fatalf("after WP-Cron sent, the outbox holds %v", names(eventsOf(o)))
	} else if next, _ := o.CronNext.(float64); int64(next) <= o.Now {
		t.Errorf("the send event was not rescheduled: next %v, now %d", o.CronNext, o.Now)
	}

	_, _, html = b.do("GET", screen, nil)
	status, _, _ = b.do("POST", "/wp-admin/admin-post.php", url.Values{"action": {"sitevault_unpair"},
		"_wpnonce": {formNonce(t, html, "sitevault_unpair")}, "_wp_http_referer": {screen}})
	if status != 302 {
		t.Fatalf("unpair: HTTP %d", status)
	}
	if o := s.outbox(); o.Connection != nil || (o.CronNext != false && o.CronNext != nil) {
		t.Fatalf("after unpairing: connection %v, cron %v", o.Connection, o.CronNext)
	}
	_, _, html = b.do("GET", screen, nil)
	if !strings.Contains(html, "Unpaired: nothing is recorded") {
		t.Errorf("no notice after unpairing:\n%.3000s", html)
	}
}
