package testsrv

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBrowser checks the harness: Chromium renders a served page, takes a
// screenshot, and axe-core reports a missing label as a violation.
func TestBrowser(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte(`<!doctype html><html lang="en"><head><title>t</title></head><body><main><h1>Hello ✓</h1><input type="text"></main></body></html>`))
	}))
	defer srv.Close()
	shots := t.TempDir()
	b := StartBrowser(t, shots)
	b.Do(t, "open the page", chromedp.Navigate(srv.URL))
	if got := JS[string](t, b, `document.querySelector("h1").textContent`); got != "Hello ✓" {
		t.Errorf("h1 = %q", got)
	}
	// Text is drawn with a real font: the heading has a width.
	if w := JS[float64](t, b, `document.querySelector("h1").getBoundingClientRect().width`); w < 20 {
		t.Errorf("the heading is %v px wide: no font renders text", w)
	}
	b.Screenshot(t, "hello")
	if m, _ := filepath.Glob(filepath.Join(shots, "01-hello.png")); len(m) != 1 {
		t.Errorf("no screenshot 01-hello.png in %s", shots)
	}
	var ids []string
	for _, v := range b.Axe(t) {
		ids = append(ids, v.ID)
	}
	if !strings.Contains(strings.Join(ids, " "), "label") {
		t.Errorf("axe-core does not report the input without a label: %v", ids)
	}
}
