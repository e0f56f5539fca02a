package testsrv

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// axeSource is axe-core 4.14.1 (npm pack axe-core@4.14.1: its axe.min.js,
// MPL-2.0, LICENSE beside it), injected into pages to check accessibility.
//
//go:embed testdata/axe-core/axe.min.js
var axeSource string

// Browser is a headless Chromium driven over the DevTools protocol
// (chromedp), with its own temporary profile.
type Browser struct {
	Ctx context.Context // the tab; actions run with chromedp.Run(b.Ctx, …)

	tb          testing.TB
	shots       string // folder for screenshots, "" for none
	n           int    // screenshots taken, for their order in the folder
	cancelAlloc context.CancelFunc
	cancelTab   context.CancelFunc
}

// chromiumNames are the names Debian and others give the browser.
var chromiumNames = []string{"chromium", "chromium-browser", "google-chrome", "chrome"}

// StartBrowser starts headless Chromium (Debian's chromium package) and
// stops it when tb ends. Screenshots go to shots (created if needed; ""
// takes none). A missing Chromium fails the test where servers are
// required and skips it otherwise.
func StartBrowser(tb testing.TB, shots string) *Browser {
	tb.Helper()
	exe := ""
	for _, n := range chromiumNames {
		if exe = LookPath(n); exe != "" {
			break
		}
	}
	if exe == "" {
		Missing(tb, "Chromium", "apt-get install chromium")
	}
	if shots != "" {
		if err := os.MkdirAll(shots, 0o755); err != nil {
			tb.Fatalf("screenshots folder: %v", err)
		}
	}
	// The machine has no outside network: nothing that calls home.
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.UserDataDir(tb.TempDir()),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1280, 900),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx, chromedp.WithLogf(tb.Logf))
	b := &Browser{Ctx: ctx, tb: tb, shots: shots, cancelAlloc: cancelAlloc, cancelTab: cancelTab}
	tb.Cleanup(b.Close)
	// The first run starts the browser; it takes the tab's own context
	// (a timeout context would stop the browser when it is cancelled).
	if err := chromedp.Do(ctx); err != nil {
		tb.Fatalf("start Chromium (%s): %v", exe, err)
	}
	return b
}

// Close stops the browser.
func (b *Browser) Close() {
	b.cancelTab()
	b.cancelAlloc()
}

// Do runs actions in the tab with a timeout, failing the test with what
// was being done.
func (b *Browser) Do(tb testing.TB, what string, actions ...chromedp.Action[chromedp.Void]) {
	tb.Helper()
	Get(tb, b, what, chromedp.Steps(actions...))
}

// Get runs one action that returns a value in b's tab with a timeout,
// failing the test with what was being done.
func Get[T any](tb testing.TB, b *Browser, what string, action chromedp.Action[T]) T {
	tb.Helper()
	ctx, cancel := context.WithTimeout(b.Ctx, 90*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, action)
	if err != nil {
		url, _ := chromedp.Run(b.Ctx, chromedp.Location())
		tb.Fatalf("browser: %s (at %s): %v", what, url, err)
	}
	return v
}

// JS evaluates a JavaScript expression in the page and decodes its value.
func JS[T any](tb testing.TB, b *Browser, expr string) T {
	tb.Helper()
	return Get(tb, b, "evaluate "+expr, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
}

// TryJS is JS that returns the error instead of failing the test, for
// pages that may be navigating away while they are read (the evaluation
// then fails with "Inspected target navigated or closed").
func TryJS[T any](b *Browser, expr string) (T, error) {
	ctx, cancel := context.WithTimeout(b.Ctx, 90*time.Second)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
}

var unsafeName = regexp.MustCompile(`[^a-zA-Z0-9._-]+`)

// Screenshot saves a full-page PNG of the current page as NN-name.png in
// the screenshots folder.
func (b *Browser) Screenshot(tb testing.TB, name string) {
	tb.Helper()
	if b.shots == "" {
		return
	}
	png := Get(tb, b, "screenshot "+name, chromedp.FullScreenshot(100))
	b.n++
	file := filepath.Join(b.shots, fmt.Sprintf("%02d-%s.png", b.n, unsafeName.ReplaceAllString(name, "-")))
	if err := os.WriteFile(file, png, 0o644); err != nil {
		tb.Fatalf("save screenshot: %v", err)
	}
}

// AxeViolation is one rule axe-core found broken on a page.
type AxeViolation struct {
	ID     string `json:"id"`
	Impact string `json:"impact"`
	Help   string `json:"help"`
	Nodes  []struct {
		Target []any  `json:"target"`
		HTML   string `json:"html"`
	} `json:"nodes"`
}

func (v AxeViolation) String() string {
	var where []string
	for _, n := range v.Nodes {
		where = append(where, fmt.Sprintf("%v %s", n.Target, n.HTML))
	}
	return fmt.Sprintf("%s (%s): %s\n\t%s", v.ID, v.Impact, v.Help, strings.Join(where, "\n\t"))
}

// Axe injects axe-core into the current page, runs it and returns its
// violations.
func (b *Browser) Axe(tb testing.TB) []AxeViolation {
	tb.Helper()
	Get(tb, b, "inject axe-core", chromedp.Evaluate[bool](axeSource+";true"))
	s := JS[string](tb, b, `axe.run(document).then(r => JSON.stringify(r.violations))`)
	var vs []AxeViolation
	if err := json.Unmarshal([]byte(s), &vs); err != nil {
		tb.Fatalf("axe-core violations: %v: %s", err, s)
	}
	return vs
}

// CheckPage saves a screenshot of the current page and fails tb if
// axe-core finds a serious or critical violation on it (lesser ones are
// logged).
func (b *Browser) CheckPage(tb testing.TB, name string) {
	tb.Helper()
	b.Screenshot(tb, name)
	for _, v := range b.Axe(tb) {
		if v.Impact == "serious" || v.Impact == "critical" {
			tb.Errorf("accessibility of the %s page: %s", name, v)
		} else {
			tb.Logf("accessibility of the %s page (minor): %s", name, v)
		}
	}
}
