package e2e_test

import (
	"regexp"
	"strings"
	"testing"
)

// TestExitCodes: a wrong repository password exits with 12 (README; restic's code), an
// unknown site with a non-zero code and a message that names it.
func TestExitCodes(t *testing.T) {
	needServers(t)
	w, _ := newSite(t)
	sv := newCLI(t)
	sv.addSite("blog", w, false)
	sv.ok("backup", "blog")

	sv.env["SITEVAULT_PASSWORD"] = "not the password"
	for _, args := range [][]string{
		{"backup", "blog"},
		{"points", "blog"},
		{"restore", "blog", "--to", "latest", "--yes"},
		{"download", "blog", "--to", "latest", "-o", t.TempDir() + "/x.tar.gz"},
	} {
		if r := sv.run(args...); r.code != 12 {
			t.Errorf("wrong password: want exit code 12\n%v", r)
		}
	}
	delete(sv.env, "SITEVAULT_PASSWORD") // the key file again

	unknown := regexp.MustCompile(`(?i)no site|not found|unknown site|does not exist|no such site|no restore points?|no points`)
	for _, args := range [][]string{
		{"backup", "nosuchsite"},
		{"restore", "nosuchsite", "--to", "latest", "--yes"},
		{"undo", "nosuchsite", "--yes"},
		{"download", "nosuchsite", "--to", "latest", "-o", t.TempDir() + "/x.zip"},
	} {
		r := sv.run(args...)
		if r.code == 0 || !strings.Contains(r.stderr, "nosuchsite") || !unknown.MatchString(r.stderr) {
			t.Errorf("unknown site: want a non-zero exit code and a message naming the site\n%v", r)
		}
	}
}
