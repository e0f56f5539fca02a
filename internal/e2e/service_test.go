package e2e_test

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sitevault/sitevault/internal/testsrv"
)

// The service as users run it: `sitevault serve` processes, driven over
// HTTP, killed with SIGKILL, against real WordPress sites.

const ownerEmail, ownerPass = "owner@example.org", "owner-password-e2e"

// server is one running `sitevault serve`.
type server struct {
	t     *testing.T
	c     *cli
	url   string
	cmd   *exec.Cmd
	log   *os.File
	token string
	done  chan struct{}
}

// serveArgs are short timings for tests: the scheduler looks every
// second, a job without heartbeat for 4 s is lost, retries wait 300 ms.
var serveArgs = []string{"--scheduler-every", "1s", "--heartbeat-every", "500ms", "--stale-after", "4s",
	"--retry-backoff", "300ms", "--check-every", "0", "--prune-every", "0"}

// startServe starts `sitevault serve` on c's data home (extra flags and
// environment added) and signs in as the owner.
func startServe(t *testing.T, c *cli, env map[string]string, args ...string) *server {
	t.Helper()
	port := testsrv.FreePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	all := append([]string{"serve", "--listen", addr, "--worker", fmt.Sprintf("w%d", port)}, serveArgs...)
	cmd := exec.Command(bin, append(all, args...)...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SITEVAULT_") && !strings.HasPrefix(kv, "HOME=") && !strings.HasPrefix(kv, "TZ=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	for k, v := range c.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Env = append(cmd.Env, "SITEVAULT_OWNER_EMAIL="+ownerEmail, "SITEVAULT_OWNER_PASSWORD="+ownerPass)
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	logf, err := os.CreateTemp(t.TempDir(), "serve-*.log")
	must(t, err)
	cmd.Stdout, cmd.Stderr = logf, logf
	must(t, cmd.Start())
	s := &server{t: t, c: c, url: "http://" + addr, cmd: cmd, log: logf, done: make(chan struct{})}
	go func() { cmd.Wait(); close(s.done) }()
	t.Cleanup(func() {
		s.kill()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("serve %s log:\n%s", addr, b)
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(s.url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		select {
		case <-s.done:
			b, _ := os.ReadFile(logf.Name())
			t.Fatalf("sitevault serve exited at start:\n%s", b)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("sitevault serve does not answer /healthz")
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.token = s.newToken(ownerEmail, ownerPass)
	return s
}

// newToken signs in as email and makes an API token.
func (s *server) newToken(email, password string) string {
	s.t.Helper()
	resp, body := s.request("POST", "/api/v1/session", "", map[string]string{"email": email, "password": password})
	if resp.StatusCode != 200 {
		s.t.Fatalf("sign in as %s: %d %s", email, resp.StatusCode, body)
	}
	var cookie string
	for _, ck := range resp.Cookies() {
		if ck.Name == "sitevault_session" {
			cookie = ck.Value
		}
	}
	req, _ := http.NewRequest("POST", s.url+"/api/v1/tokens", strings.NewReader(`{"name":"e2e"}`))
	req.AddCookie(&http.Cookie{Name: "sitevault_session", Value: cookie})
	req.Header.Set("Content-Type", "application/json")
	r2, err := http.DefaultClient.Do(req)
	must(s.t, err)
	defer r2.Body.Close()
	var out struct{ Secret string }
	must(s.t, json.NewDecoder(r2.Body).Decode(&out))
	if out.Secret == "" {
		s.t.Fatalf("no token for %s: %d", email, r2.StatusCode)
	}
	return out.Secret
}

func (s *server) request(method, path, token string, body any) (*http.Response, []byte) {
	s.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.url+path, rd)
	must(s.t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	must(s.t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// api sends a request as the owner and decodes a JSON answer into out
// (when not nil), failing the test unless the status is want.
func (s *server) api(method, path string, body any, want int, out any) []byte {
	s.t.Helper()
	resp, b := s.request(method, path, s.token, body)
	if resp.StatusCode != want {
		s.t.Fatalf("%s %s: %d, want %d\n%s", method, path, resp.StatusCode, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			s.t.Fatalf("%s %s: %v\n%s", method, path, err, b)
		}
	}
	return b
}

func (s *server) kill() {
	if s.cmd.Process != nil {
		s.cmd.Process.Signal(syscall.SIGKILL)
		<-s.done
	}
}

func (s *server) stop() {
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(40 * time.Second):
		s.t.Error("sitevault serve did not stop within 40 s of SIGTERM")
		s.kill()
	}
}

// job is a job as the API shows it.
type job struct {
	ID        int64           `json:"id"`
	Kind      string          `json:"kind"`
	Site      string          `json:"site"`
	Trigger   string          `json:"trigger"`
	State     string          `json:"state"`
	Error     string          `json:"error"`
	ErrorCode string          `json:"error_code"`
	Attempt   int             `json:"attempt"`
	Worker    string          `json:"worker"`
	Result    json.RawMessage `json:"result"`
	RunAfter  time.Time       `json:"run_after"`
	Started   *time.Time      `json:"started"`
	Finished  *time.Time      `json:"finished"`
	Progress  struct {
		Phase   string  `json:"phase"`
		Percent float64 `json:"percent"`
		Files   int64   `json:"files"`
		Bytes   int64   `json:"bytes"`
	} `json:"progress"`
}

func (s *server) job(id int64) job {
	s.t.Helper()
	var j job
	s.api("GET", "/api/v1/jobs/"+strconv.FormatInt(id, 10), nil, 200, &j)
	return j
}

// waitJob polls until cond holds for job id.
func (s *server) waitJob(id int64, timeout time.Duration, cond func(job) bool) job {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		j := s.job(id)
		if cond(j) {
			return j
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("job %d: %+v after %s", id, j, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func ended(j job) bool {
	return j.State == "succeeded" || j.State == "failed" || j.State == "cancelled"
}

// event is one Server-Sent Event.
type event struct {
	name string
	data json.RawMessage
}

// follow reads the job's event stream to its end.
func (s *server) follow(id int64) []event {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("%s/api/v1/jobs/%d/events", s.url, id), nil)
	req.Header.Set("Authorization", "Bearer "+s.token)
	resp, err := http.DefaultClient.Do(req)
	must(s.t, err)
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "text/event-stream" {
		s.t.Fatalf("events of job %d: %d %s", id, resp.StatusCode, ct)
	}
	var out []event
	var cur event
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			cur.name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			cur.data = json.RawMessage(strings.TrimPrefix(line, "data: "))
		case line == "":
			out = append(out, cur)
			if cur.name == "end" {
				return out
			}
			cur = event{}
		}
	}
	s.t.Fatalf("the event stream of job %d ended without an end event: %v", id, sc.Err())
	return nil
}

// runningProgress returns the progress events seen while the job ran.
func runningProgress(events []event) []float64 {
	var out []float64
	for _, e := range events {
		if e.name != "progress" {
			continue
		}
		var p struct {
			State    string
			Progress struct{ Percent float64 }
		}
		json.Unmarshal(e.data, &p)
		if p.State == "running" {
			out = append(out, p.Progress.Percent)
		}
	}
	return out
}

func endState(t *testing.T, events []event) job {
	t.Helper()
	var j job
	if len(events) == 0 || events[len(events)-1].name != "end" {
		t.Fatalf("no end event: %v", events)
	}
	must(t, json.Unmarshal(events[len(events)-1].data, &j))
	return j
}

// addSiteSSH registers w over SSH through the API, accepting the host key
// the first attempt reports; addr overrides sshd's address (a proxy).
func (s *server) addSiteSSH(name string, w *testsrv.WordPress, addr string) {
	s.t.Helper()
	host, portStr, _ := strings.Cut(addr, ":")
	port, _ := strconv.Atoi(portStr)
	body := map[string]any{"name": name, "path": w.Root,
		"ssh": map[string]any{"user": sshd.User, "host": host, "port": port, "identity_file": sshd.ClientKeyFile}}
	resp, b := s.request("POST", "/api/v1/sites", s.token, body)
	var p struct {
		Code        string `json:"code"`
		Fingerprint string `json:"fingerprint"`
	}
	json.Unmarshal(b, &p)
	if resp.StatusCode != http.StatusConflict || p.Code != "host_key_unknown" || p.Fingerprint != sshd.HostKeyFingerprint() {
		s.t.Fatalf("adding an SSH site first asks to accept the host key %s: got %d %s", sshd.HostKeyFingerprint(), resp.StatusCode, b)
	}
	body["accept_host_key"] = p.Fingerprint
	var added struct {
		Check struct {
			WordPress string `json:"wordpress_version"`
			Prefix    string `json:"table_prefix"`
		} `json:"check"`
	}
	s.api("POST", "/api/v1/sites", body, http.StatusCreated, &added)
	if added.Check.WordPress == "" || added.Check.Prefix != w.Prefix {
		s.t.Fatalf("the site check did not report what it found: %+v", added.Check)
	}
}

func (s *server) enqueue(path string, body any) int64 {
	s.t.Helper()
	var j job
	s.api("POST", path, body, http.StatusAccepted, &j)
	return j.ID
}

// TestServiceRestoreAndDownloadOverAPI drives a real WordPress site over
// SSH through the API: add it, back it up, wreck it, restore it and
// download a point, watching each job's progress as Server-Sent Events.
func TestServiceRestoreAndDownloadOverAPI(t *testing.T) {
	needServers(t)
	if sshd == nil {
		testsrv.Missing(t, "OpenSSH server (sshd)", "apt-get install openssh-server")
	}
	w, content := newSite(t)
	c := newCLI(t)
	srv := startServe(t, c, nil)
	srv.addSiteSSH("blog", w, sshd.Addr)
	content.files = c.siteFiles("blog")
	wantSums := w.ChecksumTables(t, content.tables...)
	wantFiles := w.FileHashes(t, content.files...)

	events := srv.follow(srv.enqueue("/api/v1/sites/blog/backups", nil))
	if j := endState(t, events); j.State != "succeeded" || j.Kind != "backup" {
		t.Fatalf("backup job ended as %+v", j)
	}
	var pts struct {
		Points []struct{ ID, Day, Kind string }
	}
	srv.api("GET", "/api/v1/sites/blog/points?day="+today(), nil, 200, &pts)
	if len(pts.Points) != 1 || pts.Points[0].Kind != "backup" {
		t.Fatalf("points of today: %+v", pts)
	}
	point := pts.Points[0].ID

	_, added, _ := wreck(t, w, content)
	// A viewer sees the site but may not restore it.
	srv.api("POST", "/api/v1/users", map[string]string{"email": "viewer@example.org", "role": "viewer", "password": "viewer-password-e2e"}, 201, nil)
	viewer := srv.newToken("viewer@example.org", "viewer-password-e2e")
	if resp, _ := srv.request("GET", "/api/v1/sites/blog", viewer, nil); resp.StatusCode != 200 {
		t.Fatalf("a viewer cannot see the site: %d", resp.StatusCode)
	}
	if resp, _ := srv.request("POST", "/api/v1/sites/blog/restores", viewer, map[string]string{"point": point}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a viewer's restore: %d, want 403", resp.StatusCode)
	}

	events = srv.follow(srv.enqueue("/api/v1/sites/blog/restores", map[string]string{"point": point}))
	j := endState(t, events)
	if j.State != "succeeded" {
		t.Fatalf("restore job ended as %+v", j)
	}
	if p := runningProgress(events); len(p) == 0 {
		t.Errorf("no progress event while the restore ran: %v", events)
	}
	var res struct {
		PreRestore string `json:"pre_restore"`
		Complete   bool   `json:"complete"`
	}
	must(t, json.Unmarshal(j.Result, &res))
	if !res.Complete || res.PreRestore == "" {
		t.Errorf("restore result %s: want complete with a pre-restore point", j.Result)
	}
	sameMaps(t, "CHECKSUM TABLE after the restore through the API", wantSums, w.ChecksumTables(t, content.tables...))
	sameMaps(t, "backed-up files after the restore through the API", wantFiles, w.FileHashes(t, content.files...))
	for _, tbl := range w.Tables(t) {
		if tbl == added {
			t.Errorf("the table %s made after the backup survived the restore", added)
		}
	}
	checkServes(t, w, content.posts)

	// A download: a job, then a short-lived link that still needs a token.
	dl := srv.enqueue("/api/v1/sites/blog/downloads", map[string]string{"point": point, "format": "tar.gz"})
	if j := endState(t, srv.follow(dl)); j.State != "succeeded" {
		t.Fatalf("download job ended as %+v", j)
	}
	var info struct {
		URL string `json:"url"`
	}
	srv.api("GET", fmt.Sprintf("/api/v1/downloads/%d", dl), nil, 200, &info)
	if !strings.Contains(info.URL, "sig=") {
		t.Fatalf("download link %q is not signed", info.URL)
	}
	path := strings.TrimPrefix(info.URL, srv.url)
	if resp, _ := srv.request("GET", path, "", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("the link without a token: %d, want 401", resp.StatusCode)
	}
	if resp, _ := srv.request("GET", path, viewer, nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("the link as a viewer: %d, want 403", resp.StatusCode)
	}
	if resp, _ := srv.request("GET", strings.Replace(path, "sig=", "sig=00", 1), srv.token, nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("a tampered link: %d, want 403", resp.StatusCode)
	}
	resp, body := srv.request("GET", path, srv.token, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("download: %d %s", resp.StatusCode, body)
	}
	names := tarNames(t, body)
	for _, want := range []string{"manifest.json", "sql/" + w.Prefix + "posts.sql", "files/wp-config.php"} {
		if !names[want] {
			t.Errorf("the download lacks %s (it has %d entries)", want, len(names))
		}
	}
	// The download is restorable again: the CLI imports it.
	archivePath := filepath.Join(t.TempDir(), "blog.tar.gz")
	must(t, os.WriteFile(archivePath, body, 0o600))
	c.ok("restore", "blog", "--from-archive", archivePath, "--yes")
	sameMaps(t, "CHECKSUM TABLE after restoring the download", wantSums, w.ChecksumTables(t, content.tables...))

	// The CLI asks the service with --server, the token from the
	// environment (never the command line).
	c.env["SITEVAULT_TOKEN"] = srv.token
	if out := c.ok("backup", "blog", "--server", srv.url); !strings.Contains(out, "by the service") {
		t.Errorf("backup --server:\n%s", out)
	}
	zipPath := filepath.Join(t.TempDir(), "blog.zip")
	c.ok("download", "blog", "--to", "latest", "-o", zipPath, "--server", srv.url)
	zr, err := zip.OpenReader(zipPath)
	must(t, err)
	found := false
	for _, f := range zr.File {
		found = found || f.Name == "manifest.json"
	}
	zr.Close()
	if !found {
		t.Error("the zip downloaded through the service has no manifest.json")
	}
	c.ok("restore", "blog", "--to", "latest", "--only", "database", "--yes", "--server", srv.url)
	sameMaps(t, "CHECKSUM TABLE after restore --server", wantSums, w.ChecksumTables(t, content.tables...))
	out := c.ok("jobs", "--server", srv.url, "--kind", "backup")
	if n := strings.Count(out, "succeeded"); n != 2 {
		t.Errorf("jobs --server lists %d succeeded backups, want 2:\n%s", n, out)
	}
	c.env["SITEVAULT_TOKEN"] = "svt_not-a-token"
	if r := c.run("jobs", "--server", srv.url); r.code != 2 || !strings.Contains(r.stderr, "refused the token") {
		t.Errorf("a wrong token: %v", r)
	}
	delete(c.env, "SITEVAULT_TOKEN")
	if r := c.run("backup", "blog", "--server", srv.url); r.code != 2 || !strings.Contains(r.stderr, "SITEVAULT_TOKEN") {
		t.Errorf("no token: %v", r)
	}
}

func tarNames(t *testing.T, b []byte) map[string]bool {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	must(t, err)
	tr := tar.NewReader(zr)
	names := map[string]bool{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		must(t, err)
		names[strings.TrimPrefix(h.Name, "./")] = true
	}
	return names
}
