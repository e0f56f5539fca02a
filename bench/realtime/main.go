// Command realtime measures how long a change on a WordPress site takes to
// reach a restore point through the connector plugin and `sitevault
// serve`, as whole processes: a private MariaDB and WordPress, the plugin
// installed from its zip, the sitevault binary serving on loopback. Each
// round publishes a post (as WP-CLI would: the plugin sends at the end of
// the request) and polls the activity log until the post's event has a
// restore point.
//
//	go run ./bench/realtime -bin bin/sitevault -quiet 30s -rounds 7 [-gap 32s]
//	go run ./bench/realtime -bin bin/sitevault -load 30s -load-rounds 4 -rate 50
//
// With -load it measures instead what the plugin costs a busy site: the
// site is changed -rate times a second (a must-use plugin's URL that
// updates a post and a meta value, as an editor's save or a shop's stock
// update does) for the given time with the connector active and as long
// deactivated, several rounds in alternating order, while the front page
// is read one request after another; it prints the page times of both,
// per round and pooled, the outbox's largest size and what is left in it
// after the sender ran.
package main

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sitevault/sitevault/internal/testsrv"
)

func main() {
	bin := flag.String("bin", "bin/sitevault", "the sitevault binary")
	quiet := flag.Duration("quiet", 30*time.Second, "the service's --quiet-period")
	rounds := flag.Int("rounds", 7, "posts to publish")
	load := flag.Duration("load", 0, "instead of the latency rounds: change the site -rate times a second for this long with the plugin active and as long deactivated, -load-rounds times in alternating order, and compare the front page's time under that load; the outbox's size is sampled every second")
	loadRounds := flag.Int("load-rounds", 4, "rounds of the -load mode (each: both phases; the first phase alternates)")
	rate := flag.Int("rate", 50, "changes a second in -load mode")
	gap := flag.Duration("gap", -1, "pause between rounds (default: the quiet period and 2 s, so that each post begins a burst of its own, as a post published now and then does; a shorter one puts posts in one burst)")
	flag.Parse()
	if *gap < 0 {
		*gap = *quiet + 2*time.Second
	}
	if *load > 0 {
		*rounds = 0
	}
	if err := run(*bin, *quiet, *rounds, *gap, *load, *rate, *loadRounds); err != nil {
		fmt.Fprintln(os.Stderr, "realtime:", err)
		os.Exit(1)
	}
}

func run(bin string, quiet time.Duration, rounds int, gap, load time.Duration, rate, loadRounds int) error {
	bin, _ = filepath.Abs(bin)
	root := testsrv.ModuleRoot()
	tmp, err := os.MkdirTemp("", "sitevault-realtime-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	db, stopDB, err := testsrv.StartMariaDBMain()
	if err != nil {
		return err
	}
	defer stopDB()
	w, err := testsrv.NewWordPress(db, filepath.Join(tmp, "site"), testsrv.WordPressOptions{Title: "Real-time benchmark"})
	if err != nil {
		return err
	}
	defer w.Close()
	if err := installPlugin(root, tmp, w.Root); err != nil {
		return err
	}
	php := func(env []string, args ...string) ([]byte, error) {
		cmd := exec.Command("php", append([]string{filepath.Join(root, "connector", "tests", "steps.php")}, args...)...)
		cmd.Env = append(append(os.Environ(), "SV_WP_ROOT="+w.Root, "SV_WP_HOST=127.0.0.1:"+strconv.Itoa(w.Port)), env...)
		out, err := cmd.Output()
		if err != nil {
			return out, fmt.Errorf("php steps.php %v: %v", args, err)
		}
		return out, nil
	}
	if _, err := php(nil, "activate"); err != nil {
		return err
	}

	home := filepath.Join(tmp, "home")
	os.Mkdir(home, 0o700)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	env := append(os.Environ(), "SITEVAULT_HOME="+home, "SITEVAULT_PASSWORD=realtime-bench-password",
		"SITEVAULT_OWNER_EMAIL=bench@example.org", "SITEVAULT_OWNER_PASSWORD=bench-password-123")
	sv := func(args ...string) (string, error) {
		cmd := exec.Command(bin, args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			return string(out), fmt.Errorf("sitevault %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out), nil
	}
	if _, err := sv("init"); err != nil {
		return err
	}
	if _, err := sv("site", "add", "blog", "--path", w.Root); err != nil {
		return err
	}
	code, err := sv("site", "connect", "blog", "--url", base, "-q")
	if err != nil {
		return err
	}
	serve := exec.Command(bin, "serve", "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--quiet-period", quiet.String(),
		"--check-every", "0", "--prune-every", "0")
	serve.Env = env
	logf, _ := os.Create(filepath.Join(tmp, "serve.log"))
	serve.Stdout, serve.Stderr = logf, logf
	if err := serve.Start(); err != nil {
		return err
	}
	defer func() { serve.Process.Signal(os.Interrupt); serve.Wait() }()
	token, err := signIn(base)
	if err != nil {
		return err
	}
	if _, err := php([]string{"SV_CRON=1", "SV_PAIRING_CODE=" + strings.TrimSpace(code)}, "init"); err != nil {
		return err
	}
	// A first backup, so that each round is an incremental one.
	if _, err := sv("backup", "blog"); err != nil {
		return err
	}
	if load > 0 {
		return loadTest(w, db, php, load, rate, max(loadRounds, 1), base, token)
	}
	var lat []time.Duration
	for i := range rounds {
		title := fmt.Sprintf("Realtime post %d", i)
		start := time.Now()
		if _, err := php(nil, "publish", title); err != nil {
			return err
		}
		for {
			ok, err := hasPoint(base, token, title)
			if err != nil {
				return err
			}
			if ok {
				break
			}
			if time.Since(start) > quiet+5*time.Minute {
				return fmt.Errorf("no restore point holds %q after %s", title, time.Since(start))
			}
			time.Sleep(100 * time.Millisecond)
		}
		d := time.Since(start)
		lat = append(lat, d)
		fmt.Printf("round %d: %.1f s from publishing to a restore point that holds it\n", i+1, d.Seconds())
		time.Sleep(gap)
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	fmt.Printf("quiet period %s, %d rounds: median %.1f s, max %.1f s\n", quiet, len(lat), lat[len(lat)/2].Seconds(), lat[len(lat)-1].Seconds())
	return nil
}

func installPlugin(root, tmp, wpRoot string) error {
	zipPath := filepath.Join(tmp, "sitevault-connector.zip")
	if out, err := exec.Command("php", filepath.Join(root, "connector", "build.php"), zipPath).CombinedOutput(); err != nil {
		return fmt.Errorf("build the plugin: %v\n%s", err, out)
	}
	zr, err := zip.OpenReader(zipPath)
	if err != nil {
		return err
	}
	defer zr.Close()
	for _, f := range zr.File {
		dst := filepath.Join(wpRoot, "wp-content", "plugins", filepath.FromSlash(f.Name))
		if f.FileInfo().IsDir() {
			os.MkdirAll(dst, 0o755)
			continue
		}
		os.MkdirAll(filepath.Dir(dst), 0o755)
		rc, err := f.Open()
		if err != nil {
			return err
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return err
		}
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func signIn(base string) (string, error) {
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		resp, err := http.Post(base+"/api/v1/session", "application/json",
			strings.NewReader(`{"email":"bench@example.org","password":"bench-password-123"}`))
		if err == nil {
			defer resp.Body.Close()
			var cookie *http.Cookie
			for _, c := range resp.Cookies() {
				cookie = c
			}
			if resp.StatusCode != 200 || cookie == nil {
				return "", fmt.Errorf("sign in: %s", resp.Status)
			}
			req, _ := http.NewRequest("POST", base+"/api/v1/tokens", strings.NewReader(`{"name":"bench"}`))
			req.AddCookie(cookie)
			req.Header.Set("Content-Type", "application/json")
			r2, err := http.DefaultClient.Do(req)
			if err != nil {
				return "", err
			}
			defer r2.Body.Close()
			var t struct{ Secret string }
			json.NewDecoder(r2.Body).Decode(&t)
			return t.Secret, nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("the service does not answer: %v", err)
		}
	}
}

func hasPoint(base, token, title string) (bool, error) {
	req, _ := http.NewRequest("GET", base+"/api/v1/sites/blog/activity?group=post&q="+url.QueryEscape(title), nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	var page struct {
		Events []struct {
			Object struct{ Name string }
			Point  string
		}
	}
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &page); err != nil {
		return false, fmt.Errorf("activity: %v: %s", err, bytes.TrimSpace(b))
	}
	for _, e := range page.Events {
		if e.Object.Name == title && e.Point != "" {
			return true, nil
		}
	}
	return false, nil
}
