package e2e_test

import (
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sitevault/sitevault/internal/testsrv"
)

// TestDownloadIntoOtherPrefix restores site A's download (prefix wp_) into
// site B (prefix wpb_) whose database also holds another site's wp_
// tables: the download lands in B's tables, B serves A's posts, and the
// other site's tables are untouched; undo takes it all back.
func TestDownloadIntoOtherPrefix(t *testing.T) {
	needServers(t)
	w, c := newSite(t)
	sv := newCLI(t)
	sv.addSite("blog", w, false)
	wantSums := w.ChecksumTables(t, c.tables...)
	sv.ok("backup", "blog")
	file := filepath.Join(t.TempDir(), "blog.tar.gz")
	sv.ok("download", "blog", "--to", "latest", "-o", file)
	port := w.Port
	w.Close()

	w2 := testsrv.StartWordPress(t, mariadb, testsrv.WordPressOptions{Empty: true, Port: port, Prefix: "wpb_"})
	// Another site shares the database, with the download's prefix.
	w2.Exec(t,
		"CREATE TABLE wp_options (option_id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY, option_name VARCHAR(191) NOT NULL UNIQUE, option_value LONGTEXT NOT NULL)",
		"INSERT INTO wp_options (option_name, option_value) VALUES ('siteurl', 'http://other.test'), ('blogname', 'The other site')",
		"CREATE TABLE wp_posts (ID BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY, post_title TEXT NOT NULL)",
		"INSERT INTO wp_posts (post_title) VALUES ('A post of the other site')",
	)
	other := w2.ChecksumTables(t, "wp_options", "wp_posts")
	before := w2.AllTables(t)
	sv.addSite("copy", w2, false)
	r := sv.run("restore", "copy", "--from-archive", file, "--yes")
	if r.code != 0 {
		t.Fatalf("%v", r)
	}
	if !strings.Contains(r.stderr, "renamed from prefix wp_ to the site's wpb_") {
		t.Errorf("restore does not say the tables were renamed:\n%s", r.stderr)
	}
	sameMaps(t, "CHECKSUM TABLE of the other site's tables", other, w2.ChecksumTables(t, "wp_options", "wp_posts"))
	renamed := map[string]string{}
	for name, sum := range wantSums {
		// options and usermeta hold WordPress's prefixed keys, renamed too.
		if name != "wp_options" && name != "wp_usermeta" {
			renamed["wpb_"+strings.TrimPrefix(name, "wp_")] = sum
		}
	}
	sameMaps(t, "CHECKSUM TABLE of the site's tables (the download's, renamed)", renamed, w2.ChecksumTables(t, slices.Sorted(maps.Keys(renamed))...))
	checkServes(t, w2, c.posts)
	// The administrator is still one under the new prefix.
	if got := w2.PHP(t, "wp_set_current_user(1); echo current_user_can('manage_options') ? 'admin' : 'not admin';"); got != "admin" {
		t.Errorf("user 1 after the restore: %q, want admin (wpb_user_roles and wpb_capabilities)", got)
	}

	sv.ok("undo", "copy", "--yes")
	sameMaps(t, "CHECKSUM TABLE of the other site's tables after undo", other, w2.ChecksumTables(t, "wp_options", "wp_posts"))
	if got := w2.AllTables(t); !slices.Equal(got, before) {
		t.Errorf("tables after undo: %q, want %q", got, before)
	}
}
