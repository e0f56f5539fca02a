package archive

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sitevault/sitevault/internal/mysql"
	"github.com/sitevault/sitevault/internal/repository"
	"github.com/sitevault/sitevault/internal/site"
)

// reseal rewrites manifest.json for ms as an attacker who crafts a
// download would: every entry listed with its real size and checksum,
// tables as edit leaves them.
func reseal(tb testing.TB, ms []rawMember, edit func(m *Manifest)) []rawMember {
	tb.Helper()
	i := findRaw(ms, ManifestName)
	var man Manifest
	must(tb, json.Unmarshal(ms[i].data, &man))
	man.Entries = nil
	for _, m := range ms {
		switch m.typ {
		case 'f':
			if m.name == ManifestName {
				continue
			}
			e := newEntry(m.name, EntryFile)
			e.Size, e.SHA256 = int64(len(m.data)), sha(m.data)
			man.Entries = append(man.Entries, e)
		case 'd':
			man.Entries = append(man.Entries, newEntry(m.name, EntryDir))
		case 'l':
			e := newEntry(m.name, EntrySymlink)
			e.setTarget(m.target)
			man.Entries = append(man.Entries, e)
		}
	}
	if edit != nil {
		edit(&man)
	}
	b, err := json.Marshal(man)
	must(tb, err)
	ms[i].data = b
	return ms
}

// onlyTable keeps, of a download's sql/ entries, the one of table.
func onlyTable(ms []rawMember, file string) []rawMember {
	return slices.DeleteFunc(ms, func(m rawMember) bool {
		return strings.HasPrefix(m.name, SQLDir+"/") && m.name != file
	})
}

// restoreImported restores an imported point's database as the restore
// flow does: under the prefix the point names (the site's own if none).
func restoreImported(tb testing.TB, f *fixture, sn *repository.Snapshot, sitePrefix string) {
	tb.Helper()
	ctx := context.Background()
	rootTree, err := f.repo.LoadTree(ctx, sn.Tree)
	must(tb, err)
	dbNode := rootTree.Find(site.DatabaseNode)
	if dbNode == nil || dbNode.Subtree == nil {
		tb.Fatal("no database in the imported point")
	}
	prefix := sn.Meta[MetaTablePrefix]
	if prefix == "" {
		prefix = sitePrefix
	}
	cfg := mysql.Config{Addr: srv.Addr, User: f.db.User, Password: f.db.Password, Database: f.db.Name}
	_, err = mysql.Restore(ctx, cfg, f.repo, *dbNode.Subtree, mysql.RestoreOptions{Prefix: prefix})
	must(tb, err)
}

// otherSums returns CHECKSUM TABLE of every table of db but the wp_ ones.
func otherSums(tb testing.TB, root *sql.DB, db string) map[string]string {
	tb.Helper()
	rows, err := root.Query("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE' AND TABLE_NAME NOT LIKE 'wp\\_%'", db)
	must(tb, err)
	var names []string
	for rows.Next() {
		var n string
		must(tb, rows.Scan(&n))
		names = append(names, n)
	}
	rows.Close()
	m := map[string]string{}
	for _, n := range names {
		var name string
		var sum sql.NullString
		must(tb, root.QueryRow("CHECKSUM TABLE "+quoteIdent(db)+"."+quoteIdent(n)+" EXTENDED").Scan(&name, &sum))
		m[n] = sum.String
	}
	return m
}

// addOtherSite creates, in f's database, the tables of a second site
// (prefix wp2_) and an unprefixed table, as on a shared database.
func addOtherSite(tb testing.TB, f *fixture) {
	tb.Helper()
	for _, s := range []string{
		"CREATE TABLE wp2_options (option_id INT PRIMARY KEY, option_name VARCHAR(191) NOT NULL, option_value LONGTEXT, UNIQUE KEY (option_name)) CHARSET utf8mb4",
		"INSERT INTO wp2_options VALUES (1, 'siteurl', 'http://other.test'), (2, 'secret', 'other site''s secret'), (3, 'wp2_user_roles', 'a:1:{s:13:\"administrator\";a:0:{}}')",
		"CREATE TABLE wp2_posts (ID BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY, post_title TEXT) CHARSET utf8mb4",
		"INSERT INTO wp2_posts (post_title) VALUES ('other 1'), ('other 2')",
		"CREATE TABLE options (option_id INT PRIMARY KEY, option_value TEXT)",
		"INSERT INTO options VALUES (1, 'unprefixed')",
	} {
		_, err := f.root.Exec(s)
		must(tb, err)
	}
}

// TestImportConfinedToSitePrefix imports downloads whose tables are not
// the site's and checks that restoring them never touches another
// site's tables: the download's prefix is translated to the site's.
func TestImportConfinedToSitePrefix(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	addOtherSite(t, f)
	good := f.write(t, TarGz)

	t.Run("manifest prefix of another site", func(t *testing.T) {
		// A crafted download: table_prefix "wp2_", sql/wp2_options.sql.
		ms := onlyTable(readRaw(t, good, TarGz), "sql/wp_options.sql")
		i := findRaw(ms, "sql/wp_options.sql")
		ms[i].name = "sql/wp2_options.sql"
		ms[i].data = bytes.ReplaceAll(ms[i].data, []byte("`wp_options`"), []byte("`wp2_options`"))
		ms = reseal(t, ms, func(m *Manifest) {
			m.TablePrefix = "wp2_"
			m.Meta[MetaTablePrefix] = "wp2_"
			m.Tables = []Table{{Name: "wp2_options", File: "sql/wp2_options.sql", Rows: 4}}
			m.Views = nil
		})
		bad := filepath.Join(t.TempDir(), "crafted.tar.gz")
		writeRaw(t, bad, TarGz, ms)
		before := otherSums(t, f.root, f.db.Name)
		sn, err := Import(ctx, f.repo, bad, "example", ImportOptions{TablePrefix: "wp_"})
		if err == nil {
			restoreImported(t, f, sn, "wp_")
		}
		sameSums(t, before, otherSums(t, f.root, f.db.Name))
		if err != nil {
			t.Fatalf("import: %v", err)
		}
		if sn.Meta[MetaTablePrefix] != "wp_" || sn.Meta[MetaArchivePrefix] != "wp2_" {
			t.Errorf("meta %v: want table_prefix wp_ (from wp2_)", sn.Meta)
		}
		var v string
		must(t, f.root.QueryRow("SELECT option_value FROM wp_options WHERE option_name = 'siteurl'").Scan(&v))
		if v != "http://example.test" {
			t.Errorf("wp_options siteurl %q, want the download's", v)
		}
	})

	t.Run("empty manifest prefix", func(t *testing.T) {
		ms := onlyTable(readRaw(t, good, TarGz), "sql/wp_options.sql")
		i := findRaw(ms, "sql/wp_options.sql")
		ms[i].name = "sql/options.sql"
		ms[i].data = bytes.ReplaceAll(ms[i].data, []byte("`wp_options`"), []byte("`options`"))
		ms = reseal(t, ms, func(m *Manifest) {
			m.TablePrefix = ""
			m.Meta[MetaTablePrefix] = ""
			m.Tables = []Table{{Name: "options", File: "sql/options.sql", Rows: 4}}
			m.Views = nil
		})
		bad := filepath.Join(t.TempDir(), "crafted.tar.gz")
		writeRaw(t, bad, TarGz, ms)
		before := otherSums(t, f.root, f.db.Name)
		sn, err := Import(ctx, f.repo, bad, "example", ImportOptions{TablePrefix: "wp_"})
		if err == nil {
			restoreImported(t, f, sn, "wp_")
		}
		sameSums(t, before, otherSums(t, f.root, f.db.Name))
		if !errorsIs(err, ErrNoPrefix) {
			t.Errorf("import: error %v, want ErrNoPrefix", err)
		}
	})
}

// TestImportOtherSitesDownload imports a genuine download of site A
// (prefix wp2_) sharing the database into site B (prefix wp_): its
// tables land under B's prefix and work; A's stay as they are.
func TestImportOtherSitesDownload(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	addOtherSite(t, f)
	cfg := mysql.Config{Addr: srv.Addr, User: f.db.User, Password: f.db.Password, Database: f.db.Name}
	dbID, _, err := mysql.Backup(ctx, cfg, f.repo, mysql.BackupOptions{Prefix: "wp2_"})
	must(t, err)
	rootID, err := site.SaveRoot(ctx, f.repo, nil, &dbID, time.Now())
	must(t, err)
	a := &repository.Snapshot{Time: time.Now(), Site: "other", Trigger: "manual", Tree: rootID, Meta: map[string]string{MetaTablePrefix: "wp2_"}}
	_, err = f.repo.SaveSnapshot(ctx, a)
	must(t, err)
	downloaded := otherSums(t, f.root, f.db.Name)
	f.sn = a
	path := f.write(t, TarGz)
	// Site A changes after its download.
	_, err = f.root.Exec("INSERT INTO wp2_options VALUES (4, 'later', 'x')")
	must(t, err)
	before := otherSums(t, f.root, f.db.Name)

	sn, err := Import(ctx, f.repo, path, "example", ImportOptions{TablePrefix: "wp_"})
	if err == nil {
		restoreImported(t, f, sn, "wp_")
	}
	sameSums(t, before, otherSums(t, f.root, f.db.Name))
	must(t, err)
	// B now holds A's downloaded tables under wp_.
	got := checksums(t, f.root, f.db.Name)
	if got["wp_posts"] == "" || got["wp_posts"] != downloaded["wp2_posts"] {
		t.Errorf("wp_posts: CHECKSUM %q, want wp2_posts's as downloaded %q", got["wp_posts"], downloaded["wp2_posts"])
	}
	// WordPress's keys that embed the prefix follow it (users keep roles).
	var names []string
	rows, err := f.root.Query("SELECT option_name FROM wp_options ORDER BY option_id")
	must(t, err)
	for rows.Next() {
		var n string
		must(t, rows.Scan(&n))
		names = append(names, n)
	}
	rows.Close()
	if !slices.Equal(names, []string{"siteurl", "secret", "wp_user_roles"}) {
		t.Errorf("wp_options holds %q, want siteurl, secret, wp_user_roles", names)
	}
	if len(got) != 2 {
		t.Errorf("wp_ tables after the restore: %v, want wp_options and wp_posts", keys(got))
	}
}

// TestImportRefusesSQL crafts table files whose SQL would reach beyond
// the site or be evaluated by the server, and expects each refused with
// the line that carries it.
func TestImportRefusesSQL(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	good := f.write(t, TarGz)
	before, err := f.repo.Snapshots(ctx)
	must(t, err)
	replace := func(file, old, new string) func([]rawMember) []rawMember {
		return func(ms []rawMember) []rawMember {
			i := findRaw(ms, file)
			if !bytes.Contains(ms[i].data, []byte(old)) {
				t.Fatalf("%s holds no %q", file, old)
			}
			ms[i].data = bytes.Replace(ms[i].data, []byte(old), []byte(new), 1)
			return ms
		}
	}
	const opts = "(`option_id`,`option_name`,`option_value`) VALUES "
	cases := []struct {
		name string
		edit func([]rawMember) []rawMember
		msg  string
	}{
		{"subquery value", replace("sql/wp_options.sql", opts+"(1,'siteurl','http://example.test')",
			opts+"(1,'siteurl',(SELECT GROUP_CONCAT(id) FROM other_t))"), "sql/wp_options.sql line "},
		{"USER()", replace("sql/wp_options.sql", opts+"(1,'siteurl','http://example.test')",
			opts+"(1,'siteurl',USER())"), "not a literal"},
		{"VERSION()", replace("sql/wp_options.sql", opts+"(1,'siteurl','http://example.test')",
			opts+"(1,'siteurl',VERSION())"), "not a literal"},
		{"expression", replace("sql/wp_options.sql", opts+"(1,'siteurl','http://example.test')",
			opts+"(1,'siteurl',1+1)"), "not a literal"},
		{"trigger on a foreign table", replace("sql/wp_trig.sql", "DELIMITER ;;\n",
			"DELIMITER ;;\nCREATE TRIGGER `wp_evil` AFTER INSERT ON `other_t` FOR EACH ROW SET NEW.id = NEW.id;;\n"), "on another table"},
		{"trigger writing a foreign table", replace("sql/wp_trig.sql", "DELIMITER ;;\n",
			"DELIMITER ;;\nCREATE TRIGGER `wp_evil` AFTER INSERT ON `wp_trig` FOR EACH ROW INSERT INTO other_t VALUES (NEW.id);;\n"), "INSERT is not allowed"},
		{"trigger reading the server", replace("sql/wp_trig.sql", "DELIMITER ;;\n",
			"DELIMITER ;;\nCREATE TRIGGER `wp_evil` BEFORE INSERT ON `wp_trig` FOR EACH ROW SET NEW.v = LENGTH(USER());;\n"), "USER is not allowed"},
		{"create select", replace("sql/wp_options.sql", ") ENGINE=", ") SELECT * FROM other_t ENGINE="), "SELECT is not allowed"},
		{"merge engine", replace("sql/wp_options.sql", "ENGINE=InnoDB", "ENGINE=MRG_MyISAM UNION=(`other_t`)"), "ENGINE=MRG_MYISAM"},
		{"executable comment", replace("sql/wp_options.sql", "ENGINE=InnoDB", "/*!50000 SELECT 1 */ ENGINE=InnoDB"), "comment"},
		{"view over a foreign table", replace(ViewsFile, "from `wp_posts`", "from `other_t`"), "`other_t` is not the site's"},
		{"statement among the rows", replace("sql/wp_options.sql", "-- sitevault: end of rows\n",
			"/*!50000 DROP TABLE other_t */;\n-- sitevault: end of rows\n"), "unexpected statement among the rows"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ms := reseal(t, c.edit(readRaw(t, good, TarGz)), nil)
			bad := filepath.Join(t.TempDir(), "bad.tar.gz")
			writeRaw(t, bad, TarGz, ms)
			_, err := Import(ctx, f.repo, bad, "copy", ImportOptions{TablePrefix: "wp_"})
			if err == nil {
				t.Fatal("import succeeded")
			}
			if !errorsIs(err, ErrBadSQL) || !strings.Contains(err.Error(), c.msg) {
				t.Errorf("error %q, want ErrBadSQL containing %q", err, c.msg)
			}
		})
	}
	after, err := f.repo.Snapshots(ctx)
	must(t, err)
	if len(after) != len(before) {
		t.Errorf("%d restore points after refused imports, want %d", len(after), len(before))
	}
}

// TestImportRefusesLinksOutside plants symbolic links whose targets lead
// outside the site root: each is left out of the imported point and
// named in its summary, or, when it leads outside only through a link
// later in the archive (a crafted chain), fails the import naming it.
func TestImportRefusesLinksOutside(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	good := f.write(t, TarGz)
	after := func(name string, m rawMember) func([]rawMember) []rawMember {
		return func(ms []rawMember) []rawMember {
			m.mode, m.mtime = 0o777, time.Now()
			i := findRaw(ms, name) + 1
			return slices.Insert(ms, i, m)
		}
	}
	secret := filepath.Join(t.TempDir(), "secret.key")
	cases := []struct {
		name    string
		edit    func([]rawMember) []rawMember
		entry   string
		refused bool // the whole import fails
	}{
		{"absolute /etc/shadow", after("files/wp-config.php", rawMember{name: "files/robots.txt", typ: 'l', target: "/etc/shadow"}), "files/robots.txt", false},
		{"absolute outside the root", after("files/wp-content/uploads/2024/01/photo.jpg",
			rawMember{name: "files/wp-content/uploads/leak.txt", typ: 'l', target: secret}), "files/wp-content/uploads/leak.txt", false},
		{"relative above the root", after("files/wp-content/uploads/2024/01/photo.jpg",
			rawMember{name: "files/wp-content/uploads/leak.txt", typ: 'l', target: "../../../secret.key"}), "files/wp-content/uploads/leak.txt", false},
		{"through another link", func(ms []rawMember) []rawMember {
			ms = after("files/wp-config.php", rawMember{name: "files/x-up", typ: 'l', target: "wp-content/.."})(ms)
			return after("files/x-up", rawMember{name: "files/x-esc", typ: 'l', target: "x-up/../etc/shadow"})(ms)
		}, "files/x-esc", false},
		{"through a later link to a folder", func(ms []rawMember) []rawMember {
			ms = after("files/wp-content/themes/t/style.css", rawMember{name: "files/wp-content/themes/t/root", typ: 'l', target: "../../.."})(ms)
			return after("files/wp-config.php", rawMember{name: "files/x-via", typ: 'l', target: "wp-content/themes/t/root/../etc/passwd"})(ms)
		}, "files/x-via", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ms := reseal(t, c.edit(readRaw(t, good, TarGz)), nil)
			bad := filepath.Join(t.TempDir(), "bad.tar.gz")
			writeRaw(t, bad, TarGz, ms)
			sn, err := Import(ctx, f.repo, bad, "copy", ImportOptions{TablePrefix: "wp_"})
			if c.refused {
				if err == nil {
					t.Fatal("import succeeded")
				}
				if !errorsIs(err, ErrUnsafeEntry) || !strings.Contains(err.Error(), `"`+c.entry+`"`) || !strings.Contains(err.Error(), "outside the site root") {
					t.Errorf("error %q, want ErrUnsafeEntry naming %q", err, c.entry)
				}
				return
			}
			must(t, err)
			if !slices.ContainsFunc(sn.Summary.Skipped, func(s string) bool {
				return strings.HasPrefix(s, c.entry+": ") && strings.Contains(s, "outside the site root")
			}) {
				t.Errorf("summary skipped %q, want %s named", sn.Summary.Skipped, c.entry)
			}
			// The point holds no such link.
			filesID, err := site.FilesTree(ctx, f.repo, sn)
			must(t, err)
			if n := findNode(t, f.repo, filesID, strings.TrimPrefix(c.entry, FilesDir+"/")); n != nil {
				t.Errorf("the imported point holds %s → %q", c.entry, n.LinkTarget)
			}
		})
	}
	t.Run("links inside stay", func(t *testing.T) {
		ms := after("files/wp-config.php", rawMember{name: "files/x-up", typ: 'l', target: "wp-content/themes/../uploads"})(readRaw(t, good, TarGz))
		// A loop resolves to nothing: it stays, as the site had it.
		ms = after("files/x-up", rawMember{name: "files/y-loop-a", typ: 'l', target: "y-loop-b/.."})(ms)
		ms = after("files/y-loop-a", rawMember{name: "files/y-loop-b", typ: 'l', target: "y-loop-a/.."})(ms)
		ms = reseal(t, ms, nil)
		p := filepath.Join(t.TempDir(), "ok.tar.gz")
		writeRaw(t, p, TarGz, ms)
		sn, err := Import(ctx, f.repo, p, "copy", ImportOptions{TablePrefix: "wp_"})
		must(t, err)
		filesID, err := site.FilesTree(ctx, f.repo, sn)
		must(t, err)
		if n := findNode(t, f.repo, filesID, "x-up"); n == nil || n.LinkTarget != "wp-content/themes/../uploads" {
			t.Errorf("link x-up: %+v", n)
		}
		if len(sn.Summary.Skipped) > 0 {
			t.Errorf("skipped %q", sn.Summary.Skipped)
		}
	})
}

// findNode returns the node at path (slash-separated) under tree id, or nil.
func findNode(tb testing.TB, repo *repository.Repository, id repository.ID, path string) *repository.Node {
	tb.Helper()
	comps := strings.Split(path, "/")
	for i, c := range comps {
		tr, err := repo.LoadTree(context.Background(), id)
		must(tb, err)
		n := tr.Find(c)
		if n == nil || i == len(comps)-1 {
			return n
		}
		if n.Subtree == nil {
			return nil
		}
		id = *n.Subtree
	}
	return nil
}
