package e2e_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sitevault/sitevault/internal/testsrv"
)

// The connector plugin (connector/) in a test site, as
// internal/connectortest installs and drives it: the zip built by
// connector/build.php unpacked into the plugins folder, and
// connector/tests/steps.php running WordPress code in the site.

// connectorSite is a WordPress site with the connector plugin installed.
type connectorSite struct {
	t   *testing.T
	w   *testsrv.WordPress
	dir string // connector/
}

// installConnector builds the plugin's zip and unpacks it into the
// site's plugins folder, as Plugins → Add New → Upload would, and
// activates it.
func installConnector(t *testing.T, w *testsrv.WordPress) *connectorSite {
	t.Helper()
	php := testsrv.LookPath("php")
	if php == "" {
		testsrv.Missing(t, "PHP", "apt-get install php-cli")
	}
	s := &connectorSite{t: t, w: w, dir: filepath.Join(testsrv.ModuleRoot(), "connector")}
	zipPath := filepath.Join(t.TempDir(), "sitevault-connector.zip")
	if out, err := exec.Command(php, filepath.Join(s.dir, "build.php"), zipPath).CombinedOutput(); err != nil {
		t.Fatalf("build the connector's zip: %v\n%s", err, out)
	}
	zr, err := zip.OpenReader(zipPath)
	must(t, err)
	defer zr.Close()
	plugins := filepath.Join(w.Root, "wp-content", "plugins")
	for _, f := range zr.File {
		if !strings.HasPrefix(f.Name, "sitevault-connector/") || strings.Contains(f.Name, "..") {
			t.Fatalf("the connector's zip holds %s outside the plugin's folder", f.Name)
		}
		dst := filepath.Join(plugins, filepath.FromSlash(f.Name))
		if f.FileInfo().IsDir() {
			must(t, os.MkdirAll(dst, 0o755))
			continue
		}
		must(t, os.MkdirAll(filepath.Dir(dst), 0o755))
		rc, err := f.Open()
		must(t, err)
		b, err := io.ReadAll(rc)
		rc.Close()
		must(t, err)
		must(t, os.WriteFile(dst, b, 0o644))
	}
	if v := s.step(nil, "activate"); v["active"] != true {
		t.Fatalf("activating the connector: %v", v)
	}
	return s
}

// step runs connector/tests/steps.php with args in the site and decodes
// the JSON object it printed last.
func (s *connectorSite) step(env []string, args ...string) map[string]any {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, testsrv.LookPath("php"), append([]string{"-d", "display_errors=stderr", "-d", "log_errors=0",
		"-d", "error_reporting=E_ALL & ~E_DEPRECATED", "-d", "memory_limit=512M", filepath.Join(s.dir, "tests", "steps.php")}, args...)...)
	cmd.Env = append(append(os.Environ(), "SV_WP_ROOT="+s.w.Root, "SV_WP_HOST=127.0.0.1:"+strconv.Itoa(s.w.Port)), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil || strings.Contains(stderr.String(), "Fatal error") || strings.Contains(stderr.String(), "Warning") {
		s.t.Fatalf("connector step %v: %v\nstdout:\n%s\nstderr:\n%s", args, err, stdout.String(), stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	var v map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &v); err != nil {
		s.t.Fatalf("connector step %v printed %q: %v", args, stdout.String(), err)
	}
	return v
}

// define adds a define() to wp-config.php, before WordPress loads.
func (s *connectorSite) define(name, value string) {
	s.t.Helper()
	p := filepath.Join(s.w.Root, "wp-config.php")
	b, err := os.ReadFile(p)
	must(s.t, err)
	marker := []byte("/* That's all, stop editing!")
	if !bytes.Contains(b, marker) {
		s.t.Fatal(`wp-config.php has no "That's all" line`)
	}
	line := fmt.Sprintf("define( '%s', '%s' );\n", name, strings.ReplaceAll(value, "'", `\'`))
	must(s.t, os.WriteFile(p, bytes.Replace(b, marker, append([]byte(line), marker...), 1), 0o640))
}

// outboxRows is how many events wait in the connector's outbox, and
// whether the connector is paired.
func (s *connectorSite) outboxRows() (rows int, paired bool, lastError string) {
	s.t.Helper()
	v := s.step(nil, "outbox")
	r, _ := v["rows"].([]any)
	st, _ := v["state"].(map[string]any)
	le, _ := st["last_error"].(string)
	c, _ := v["connection"].(map[string]any)
	return len(r), c != nil, le
}
