package e2e_test

import (
	"os"
	"slices"
	"strings"
	"testing"
)

// The JSON types below mirror the README's (and cmd/sitevault's) shapes;
// decoding is strict, so a field the code adds or renames without the
// README fails here.

type errorJSON struct {
	Error struct {
		Code     string `json:"code"`
		Detail   string `json:"detail"`
		Advice   string `json:"advice"`
		ExitCode int    `json:"exit_code"`
	} `json:"error"`
}

type forgetPointJSON struct {
	ID      string   `json:"id"`
	Time    string   `json:"time"`
	Trigger string   `json:"trigger"`
	Why     []string `json:"why"`
}

type forgetJSON struct {
	Site    string            `json:"site"`
	Policy  string            `json:"policy"`
	DryRun  bool              `json:"dry_run"`
	Kept    []forgetPointJSON `json:"kept"`
	Removed []forgetPointJSON `json:"removed"`
	Error   *struct {
		Code   string `json:"code"`
		Detail string `json:"detail"`
		Advice string `json:"advice"`
	} `json:"error"`
}

type pruneJSON struct {
	DryRun             bool    `json:"dry_run"`
	GraceSeconds       float64 `json:"grace_seconds"`
	BlobsUsed          int     `json:"blobs_used"`
	BlobsMarkedUnused  int     `json:"blobs_marked_unused"`
	BlobsUsedAgain     int     `json:"blobs_used_again"`
	BlobsRemoved       int     `json:"blobs_removed"`
	PacksDeleted       int     `json:"packs_deleted"`
	PacksRewritten     int     `json:"packs_rewritten"`
	BytesRewritten     int64   `json:"bytes_rewritten"`
	BytesFreed         int64   `json:"bytes_freed"`
	OrphanPacksIndexed int     `json:"orphan_packs_indexed"`
	MissingPacks       int     `json:"missing_packs"`
	TempFilesRemoved   int     `json:"temp_files_removed"`
	Duration           float64 `json:"duration_seconds"`
}

type checkJSON struct {
	OK             bool     `json:"ok"`
	ReadData       bool     `json:"read_data"`
	RestorePoints  int      `json:"restore_points"`
	Trees          int      `json:"trees"`
	IndexFiles     int      `json:"index_files"`
	Packs          int      `json:"packs"`
	Blobs          int      `json:"blobs"`
	BytesRead      int64    `json:"bytes_read"`
	OrphanPacks    int      `json:"orphan_packs"`
	Problems       []any    `json:"problems"`
	AffectedPoints []string `json:"affected_points"`
	Duration       float64  `json:"duration_seconds"`
}

type downloadJSON struct {
	Site              string  `json:"site"`
	Point             string  `json:"point"`
	PointTime         string  `json:"point_time"`
	File              string  `json:"file"`
	Format            string  `json:"format"`
	Bytes             int64   `json:"bytes"`
	BytesUncompressed int64   `json:"bytes_uncompressed"`
	Files             int64   `json:"files"`
	Tables            int64   `json:"tables"`
	WordPressVersion  string  `json:"wordpress_version"`
	WordPressCore     string  `json:"wordpress_core"`
	Duration          float64 `json:"duration_seconds"`
}

type initJSON struct {
	Repository     string `json:"repository"`
	Location       string `json:"location"`
	PasswordFrom   string `json:"password_from"`
	KeyFileCreated string `json:"key_file_created"`
}

// TestJSONOutputs runs the commands with --json on a real WordPress and
// decodes each result, and each failure's error object (on stdout, the
// exit code unchanged), strictly.
func TestJSONOutputs(t *testing.T) {
	needServers(t)
	w, _ := newSite(t)
	home := t.TempDir()
	sv := &cli{t: t, home: home, env: map[string]string{"SITEVAULT_HOME": home + "/sitevault", "HOME": home, "TZ": "UTC"}}
	var in initJSON
	decodeStrict(t, sv.ok("init", "--json"), &in)
	if len(in.Repository) != 64 || !strings.HasSuffix(in.KeyFileCreated, "repo.key") || !strings.Contains(in.PasswordFrom, "key file") {
		t.Errorf("init --json: %+v", in)
	}
	sv.addSite("blog", w, false)
	sv.ok("backup", "blog")
	sv.ok("backup", "blog")

	var fg []forgetJSON
	decodeStrict(t, sv.ok("forget", "blog", "--keep-last", "1", "--dry-run", "--json"), &fg)
	if len(fg) != 1 || fg[0].Site != "blog" || !fg[0].DryRun || len(fg[0].Kept) != 1 || len(fg[0].Removed) != 1 || len(fg[0].Removed[0].ID) != 64 {
		t.Errorf("forget --json: %+v", fg)
	}
	var pr pruneJSON
	decodeStrict(t, sv.ok("prune", "--dry-run", "--json"), &pr)
	if !pr.DryRun || pr.BlobsUsed == 0 || pr.GraceSeconds != 86400 {
		t.Errorf("prune --json: %+v", pr)
	}
	var ck checkJSON
	decodeStrict(t, sv.ok("check", "--json"), &ck)
	if !ck.OK || ck.RestorePoints != 2 || ck.Packs == 0 || len(ck.Problems) != 0 {
		t.Errorf("check --json: %+v", ck)
	}
	var dl downloadJSON
	decodeStrict(t, sv.ok("download", "blog", "-o", t.TempDir()+"/blog.zip", "--json"), &dl)
	if dl.Format != "zip" || dl.Bytes == 0 || dl.Tables == 0 || dl.WordPressVersion == "" || !strings.Contains(dl.WordPressCore, "not included") {
		t.Errorf("download --json: %+v", dl)
	}

	// Failures: the error object on stdout, the exit code unchanged.
	for _, c := range []struct {
		args []string
		code string
		exit int
	}{
		{[]string{"points", "blgo", "--json"}, "site_not_found", 1},
		{[]string{"restore", "blog", "--to", "latest", "--json"}, "usage", 2},
		{[]string{"restore", "blog", "--to", "ffffffff", "--yes", "--json"}, "point_not_found", 1},
		{[]string{"download", "blog", "-o", "x.rar", "--json"}, "usage", 2},
		{[]string{"forget", "blog", "--keep-last", "1", "--json"}, "usage", 2},
	} {
		r := sv.run(c.args...)
		var e errorJSON
		decodeStrict(t, r.stdout, &e)
		if r.code != c.exit || e.Error.Code != c.code || e.Error.ExitCode != c.exit || e.Error.Detail == "" {
			t.Errorf("%v: exit %d, error %+v; want exit %d, code %s", c.args, r.code, e.Error, c.exit, c.code)
		}
	}
	// config check --json: a valid file, then one naming no registered site.
	cfgPath := home + "/sitevault/config.toml"
	must(t, os.WriteFile(cfgPath, []byte("[sites.blog.retention]\nkeep_last = 5\n"), 0o600))
	var cc struct {
		File  string `json:"file"`
		Sites int    `json:"sites"`
	}
	decodeStrict(t, sv.ok("config", "check", "--json"), &cc)
	if cc.File != cfgPath || cc.Sites != 1 {
		t.Errorf("config check --json: %+v", cc)
	}
	must(t, os.WriteFile(cfgPath, []byte("[sites.blgo.retention]\nkeep_last = 5\n"), 0o600))
	r := sv.run("config", "check", "--json")
	var ce errorJSON
	decodeStrict(t, r.stdout, &ce)
	if r.code != 2 || ce.Error.Code != "usage" || !strings.Contains(ce.Error.Detail, "did you mean blog?") {
		t.Errorf("config check of an unknown site: exit %d, %+v", r.code, ce.Error)
	}
	must(t, os.Remove(cfgPath))

	sv.env["SITEVAULT_PASSWORD"] = "not the password"
	r = sv.run("snapshots", "--json")
	var e errorJSON
	decodeStrict(t, r.stdout, &e)
	if r.code != 12 || e.Error.Code != "wrong_password" || e.Error.Advice == "" {
		t.Errorf("wrong password: exit %d, %+v", r.code, e.Error)
	}
}

// TestCompletion: cobra's __complete (what the shell scripts of
// `sitevault completion` call) completes site names, point ids, items and
// the tables of the latest point.
func TestCompletion(t *testing.T) {
	needServers(t)
	w, _ := newSite(t)
	sv := newCLI(t)
	sv.addSite("blog", w, false)
	sv.ok("backup", "blog")
	id := sv.points("blog")[0].ID[:8]
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"__complete", "restore", "b"}, []string{"blog"}},
		{[]string{"__complete", "site", "show", ""}, []string{"blog"}},
		{[]string{"__complete", "restore", "blog", "--to", ""}, []string{"latest", id}},
		{[]string{"__complete", "download", "blog", "--to", id[:4]}, []string{id}},
		{[]string{"__complete", "restore", "blog", "--only", ""}, []string{"themes", "plugins", "uploads", "database"}},
		{[]string{"__complete", "restore", "blog", "--table", w.Prefix + "p"}, []string{w.Prefix + "posts", w.Prefix + "postmeta"}},
	} {
		out := sv.ok(c.args...)
		var got []string
		for _, line := range strings.Split(out, "\n") {
			if line != "" && !strings.HasPrefix(line, ":") {
				got = append(got, strings.SplitN(line, "\t", 2)[0])
			}
		}
		for _, w := range c.want {
			if !slices.Contains(got, w) {
				t.Errorf("%v: %q not among %q", c.args, w, got)
			}
		}
	}
}
