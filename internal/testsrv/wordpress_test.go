package testsrv

import (
	"strconv"
	"strings"
	"testing"
)

// TestWordPress installs a real WordPress, creates a post with
// wp_insert_post, serves the site with php -S and reads the post back.
func TestWordPress(t *testing.T) {
	if testing.Short() {
		t.Skip("starts MariaDB and PHP")
	}
	m := StartMariaDB(t)
	w := StartWordPress(t, m, WordPressOptions{Prefix: "svt_"})
	id := w.CreatePost(t, "Hello from testsrv", "Body of the post.")
	w.Serve(t)
	status, body := w.Get(t, "/?p="+strconv.Itoa(id))
	if status != 200 || !strings.Contains(body, "Hello from testsrv") {
		t.Fatalf("GET /?p=%d: %d\n%.2000s", id, status, body)
	}
	if !strings.Contains(body, WordPressFixture.PluginMarker) {
		t.Errorf("the fixture plugin's marker is not in the page")
	}
	status, body = w.Get(t, "/")
	if status != 200 || !strings.Contains(body, "Hello from testsrv") {
		t.Fatalf("GET /: %d\n%.2000s", status, body)
	}
	sums := w.Checksums(t)
	if _, ok := sums["svt_posts"]; !ok || len(sums) < 10 {
		t.Fatalf("checksums: %v", sums)
	}
	before := sums["svt_posts"]
	w.DeletePost(t, id)
	if after := w.Checksums(t)["svt_posts"]; after == before {
		t.Errorf("CHECKSUM TABLE svt_posts did not change when the post was deleted")
	}
	h := w.FileHashes(t, WordPressFixture.PluginDir, "nope")
	if h["nope"] != "missing" || h[WordPressFixture.Plugin] == "" {
		t.Errorf("file hashes: %v", h)
	}
	empty := StartWordPress(t, m, WordPressOptions{Empty: true, Port: w.Port})
	if n := len(empty.AllTables(t)); n != 0 {
		t.Errorf("empty site has %d tables", n)
	}
}
