package archive

import (
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sitevault/sitevault/internal/fsys"
	"github.com/sitevault/sitevault/internal/mysql"
	"github.com/sitevault/sitevault/internal/repository"
	"github.com/sitevault/sitevault/internal/restorer"
	"github.com/sitevault/sitevault/internal/site"
)

func TestFormatFor(t *testing.T) {
	for name, want := range map[string]Format{"a.tar.gz": TarGz, "A.TGZ": TarGz, "x.zip": Zip, "x.tar": 0, "x.gz": 0, "zip": 0} {
		got, ok := FormatFor(name)
		if got != want || ok != (want != 0) {
			t.Errorf("FormatFor(%q) = %v, %v; want %v", name, got, ok, want)
		}
	}
	for table, want := range map[string]string{"wp_posts": "sql/wp_posts.sql", "a/b%c": "sql/a%2Fb%25c.sql", "views": "sql/%76iews.sql"} {
		if got := tableFile(table); got != want {
			t.Errorf("tableFile(%q) = %q, want %q", table, got, want)
		}
	}
}

func TestDownload(t *testing.T) {
	f := newFixture(t)
	sqlOf := map[Format]map[string][]byte{}
	for _, format := range []Format{TarGz, Zip} {
		t.Run(format.String(), func(t *testing.T) {
			path := f.write(t, format)
			members := readMembers(t, path, format)
			byName := map[string]member{}
			for _, m := range members {
				if _, dup := byName[m.name]; dup {
					t.Errorf("entry %q twice", m.name)
				}
				byName[m.name] = m
			}
			if last := members[len(members)-1]; last.name != ManifestName {
				t.Errorf("last entry is %q, want %s", last.name, ManifestName)
			}

			// files/: every file, link and folder, byte-exact names and content.
			disk := walkDisk(t, f.dir)
			for rel, d := range disk {
				m, ok := byName["files/"+rel]
				if !ok {
					t.Errorf("files/%q missing", rel)
					continue
				}
				if m.typ != d.typ || string(m.data) != d.data || m.target != d.target {
					t.Errorf("files/%q: got %s %d bytes → %q, want %s %d bytes → %q", rel, m.typ, len(m.data), m.target, d.typ, len(d.data), d.target)
				}
				if d.typ == "file" {
					if m.mode != d.mode {
						t.Errorf("files/%q: mode %v, want %v", rel, m.mode, d.mode)
					}
					want := d.mtime
					if format == Zip {
						want = want.Truncate(time.Second)
					}
					if !m.mtime.Equal(want) {
						t.Errorf("files/%q: mtime %v, want %v", rel, m.mtime, want)
					}
				}
			}
			var sqlFiles []string
			for _, m := range members {
				rel, ok := strings.CutPrefix(m.name, "files/")
				if ok {
					if _, ok := disk[rel]; !ok {
						t.Errorf("unexpected entry %q", m.name)
					}
				} else if strings.HasPrefix(m.name, "sql/") {
					sqlFiles = append(sqlFiles, m.name)
				} else if m.name != "files" && m.name != "sql" && m.name != ManifestName {
					t.Errorf("unexpected entry %q", m.name)
				}
			}
			wantSQL := []string{ViewsFile}
			for n := range f.sums {
				wantSQL = append(wantSQL, "sql/"+n+".sql")
			}
			slices.Sort(wantSQL)
			slices.Sort(sqlFiles)
			if !slices.Equal(sqlFiles, wantSQL) {
				t.Errorf("sql files %q, want %q", sqlFiles, wantSQL)
			}

			// manifest.json: the point, and every entry's size and SHA-256.
			var man Manifest
			if err := json.Unmarshal(byName[ManifestName].data, &man); err != nil {
				t.Fatal(err)
			}
			if man.Site != "example" || man.Point != f.sn.ID.String() || man.TablePrefix != "wp_" || man.WordPressVersion != "6.5.2" ||
				man.Trigger != "manual" || !man.Time.Equal(f.sn.Time) || man.Version != Version || !man.Files || !man.Database {
				t.Errorf("manifest head: %+v", man)
			}
			if len(man.Entries) != len(members)-1 {
				t.Errorf("manifest lists %d entries, archive holds %d", len(man.Entries), len(members)-1)
			}
			for _, e := range man.Entries {
				name, err := e.name()
				if err != nil {
					t.Fatal(err)
				}
				m, ok := byName[name]
				if !ok {
					t.Errorf("manifest lists %q, archive lacks it", name)
					continue
				}
				if e.Type != m.typ {
					t.Errorf("%q: manifest type %s, archive %s", name, e.Type, m.typ)
				}
				if m.typ == "file" && (e.Size != int64(len(m.data)) || e.SHA256 != sha(m.data)) {
					t.Errorf("%q: manifest size/sha %d %s, archive %d %s", name, e.Size, e.SHA256, len(m.data), sha(m.data))
				}
				if tg, _ := e.target(); m.typ == "symlink" && tg != m.target {
					t.Errorf("%q: manifest target %q, archive %q", name, tg, m.target)
				}
			}
			sqlOf[format] = map[string][]byte{}
			for _, n := range sqlFiles {
				sqlOf[format][n] = byName[n].data
			}
		})
	}
	for n, b := range sqlOf[TarGz] {
		if !bytes.Equal(b, sqlOf[Zip][n]) {
			t.Errorf("%s differs between tar.gz and zip", n)
		}
	}

	// Each table file loads by itself with the mariadb client (children
	// before parents: foreign key checks are off), then the views.
	t.Run("client", func(t *testing.T) {
		db := srv.CreateDatabase(t)
		files := slices.Sorted(func(yield func(string) bool) {
			for n := range sqlOf[TarGz] {
				if n != ViewsFile && !yield(n) {
					return
				}
			}
		})
		slices.Reverse(files)
		for _, n := range files {
			mariadbClient(t, db.Name, sqlOf[TarGz][n])
		}
		mariadbClient(t, db.Name, sqlOf[TarGz][ViewsFile])
		// Loading twice works too (DROP TABLE IF EXISTS, DROP VIEW IF EXISTS).
		mariadbClient(t, db.Name, sqlOf[TarGz]["sql/wp_trig.sql"])
		mariadbClient(t, db.Name, sqlOf[TarGz][ViewsFile])
		root := srv.RootDB(t, db.Name)
		sameSums(t, f.sums, checksums(t, root, db.Name))
		var n int
		must(t, root.QueryRow("SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ?", db.Name).Scan(&n))
		if n != 2 {
			t.Errorf("%d triggers, want 2", n)
		}
		must(t, root.QueryRow("SELECT COUNT(*) FROM wp_v").Scan(&n))
		if n != 9 {
			t.Errorf("view wp_v has %d rows, want 9", n)
		}
	})
}

func TestImportRoundTrip(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for _, format := range []Format{TarGz, Zip} {
		t.Run(format.String(), func(t *testing.T) {
			path := f.write(t, format)
			var p Progress
			sn, err := Import(ctx, f.repo, path, "copy", ImportOptions{Progress: &p, TablePrefix: "wp_"})
			must(t, err)
			if sn.ID.IsNull() || sn.Site != "copy" || sn.Trigger != TriggerArchive {
				t.Errorf("imported point: %+v", sn)
			}
			if sn.Meta[MetaTablePrefix] != "wp_" || sn.Meta[MetaWPVersion] != "6.5.2" || sn.Meta["multisite"] != "false" ||
				sn.Meta[MetaArchivePoint] != f.sn.ID.String() || sn.Meta[MetaArchiveSite] != "example" {
				t.Errorf("imported meta: %v", sn.Meta)
			}
			if p.Tables.Load() != int64(len(f.sums)) {
				t.Errorf("progress: %d tables, want %d", p.Tables.Load(), len(f.sums))
			}

			// The files restore to the same content, modes, links and times.
			filesID, err := site.FilesTree(ctx, f.repo, sn)
			must(t, err)
			out := t.TempDir()
			local, err := fsys.NewLocal(out)
			must(t, err)
			defer local.Close()
			rep, err := restorer.New(f.repo, local, restorer.Options{}).Restore(ctx, filesID, "")
			must(t, err)
			if !rep.OK() {
				t.Fatalf("restore: %+v", rep)
			}
			want, got := walkDisk(t, f.dir), walkDisk(t, out)
			if !slices.Equal(keys(want), keys(got)) {
				t.Fatalf("restored %q, want %q", keys(got), keys(want))
			}
			for rel, w := range want {
				g := got[rel]
				if format == Zip {
					w.mtime = w.mtime.Truncate(time.Second)
				}
				if w.typ == "symlink" {
					w.mtime, g.mtime = time.Time{}, time.Time{}
				}
				if g.typ != w.typ || g.data != w.data || g.target != w.target || g.mode != w.mode || !g.mtime.Equal(w.mtime) {
					t.Errorf("%q: restored %s %v %v → %q, want %s %v %v → %q", rel, g.typ, g.mode, g.mtime, g.target, w.typ, w.mode, w.mtime, w.target)
				}
			}

			// The database restores to the same tables, triggers and view.
			rootTree, err := f.repo.LoadTree(ctx, sn.Tree)
			must(t, err)
			dbNode := rootTree.Find(site.DatabaseNode)
			if dbNode == nil || dbNode.Subtree == nil {
				t.Fatal("no database in the imported point")
			}
			db := srv.CreateDatabase(t)
			cfg := mysql.Config{Addr: srv.Addr, User: db.User, Password: db.Password, Database: db.Name}
			rrep, err := mysql.Restore(ctx, cfg, f.repo, *dbNode.Subtree, mysql.RestoreOptions{Prefix: "wp_"})
			must(t, err)
			if len(rrep.Warnings) > 0 {
				t.Errorf("restore warnings: %q", rrep.Warnings)
			}
			root := srv.RootDB(t, db.Name)
			sameSums(t, f.sums, checksums(t, root, db.Name))
			var n int
			must(t, root.QueryRow("SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ?", db.Name).Scan(&n))
			if n != 2 {
				t.Errorf("%d triggers, want 2", n)
			}
			must(t, root.QueryRow("SELECT COUNT(*) FROM wp_v").Scan(&n))
			if n != 9 {
				t.Errorf("view wp_v has %d rows, want 9", n)
			}

			// The segments are the downloaded point's, blob for blob.
			orig, err := mysql.LoadManifest(ctx, f.repo, f.dbID)
			must(t, err)
			imp, err := mysql.LoadManifest(ctx, f.repo, *dbNode.Subtree)
			must(t, err)
			for _, ot := range orig.Tables {
				it := imp.Table(ot.Name)
				if it == nil {
					t.Errorf("table %s not imported", ot.Name)
					continue
				}
				if len(it.Segments) != len(ot.Segments) || it.Rows() != ot.Rows() || it.Create != ot.Create || !slices.Equal(it.Triggers, ot.Triggers) {
					t.Errorf("table %s: %d segments %d rows, want %d segments %d rows", ot.Name, len(it.Segments), it.Rows(), len(ot.Segments), ot.Rows())
					continue
				}
				for i := range ot.Segments {
					if !slices.Equal(it.Segments[i].Content, ot.Segments[i].Content) {
						t.Errorf("table %s segment %d: content differs", ot.Name, i)
					}
				}
			}
			if len(imp.Views) != len(orig.Views) || imp.Views[0].Name != orig.Views[0].Name {
				t.Errorf("views %v, want %v", imp.Views, orig.Views)
			}

			// A download of the imported point holds the same files and SQL.
			p2 := filepath.Join(t.TempDir(), "again."+format.String())
			out2, err := os.Create(p2)
			must(t, err)
			must(t, Write(ctx, f.repo, sn, out2, format, Options{}))
			out2.Close()
			a, b := readMembers(t, path, format), readMembers(t, p2, format)
			if len(a) != len(b) {
				t.Fatalf("second download: %d entries, want %d", len(b), len(a))
			}
			for i := range a {
				if a[i].name != b[i].name || a[i].typ != b[i].typ || a[i].target != b[i].target ||
					(a[i].name != ManifestName && !strings.HasPrefix(a[i].name, "sql/") && !bytes.Equal(a[i].data, b[i].data)) {
					t.Errorf("second download entry %d: %q, want %q", i, b[i].name, a[i].name)
				}
			}
		})
	}
}

// TestImportRejects alters a good download in the ways an attacker or a
// damaged disk would, and expects a clear error and no restore point.
func TestImportRejects(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	good := f.write(t, TarGz)
	goodZip := f.write(t, Zip)
	before, err := f.repo.Snapshots(ctx)
	must(t, err)

	cases := []struct {
		name   string
		format Format
		edit   func(ms []rawMember) []rawMember
		want   error
		msg    string
	}{
		{"changed byte", TarGz, func(ms []rawMember) []rawMember {
			i := findRaw(ms, "files/index.php")
			ms[i].data = bytes.Replace(ms[i].data, []byte("front"), []byte("frOnt"), 1)
			return ms
		}, ErrMismatch, `"files/index.php" has SHA-256`},
		{"changed sql byte", TarGz, func(ms []rawMember) []rawMember {
			i := findRaw(ms, "sql/wp_options.sql")
			ms[i].data = bytes.Replace(ms[i].data, []byte("siteurl"), []byte("siteurL"), 1)
			return ms
		}, ErrMismatch, `"sql/wp_options.sql" has SHA-256`},
		{"extra file", TarGz, func(ms []rawMember) []rawMember {
			return insertRaw(ms, rawMember{name: "files/extra.php", typ: 'f', data: []byte("<?php evil();")})
		}, ErrMismatch, `"files/extra.php" is not in the manifest`},
		{"missing file", TarGz, func(ms []rawMember) []rawMember {
			return slices.Delete(ms, findRaw(ms, "files/index.php"), findRaw(ms, "files/index.php")+1)
		}, ErrMismatch, "missing"},
		{"dot dot", TarGz, func(ms []rawMember) []rawMember {
			return insertRaw(ms, rawMember{name: "files/../../evil.php", typ: 'f', data: []byte("x")})
		}, ErrUnsafeEntry, `".."`},
		{"absolute", TarGz, func(ms []rawMember) []rawMember {
			return insertRaw(ms, rawMember{name: "/etc/cron.d/evil", typ: 'f', data: []byte("x")})
		}, ErrUnsafeEntry, "absolute path"},
		{"outside", TarGz, func(ms []rawMember) []rawMember {
			return insertRaw(ms, rawMember{name: "other/x", typ: 'f', data: []byte("x")})
		}, ErrUnsafeEntry, "outside files/ and sql/"},
		{"hard link", TarGz, func(ms []rawMember) []rawMember {
			return insertRaw(ms, rawMember{name: "files/hl", typ: 'h', target: "/etc/passwd"})
		}, ErrUnsafeEntry, "hard link"},
		{"device", TarGz, func(ms []rawMember) []rawMember {
			return insertRaw(ms, rawMember{name: "files/dev", typ: 'c'})
		}, ErrUnsafeEntry, "device"},
		{"no manifest", TarGz, func(ms []rawMember) []rawMember {
			return ms[:len(ms)-1]
		}, ErrNotArchive, "no manifest.json"},
		{"other table in sql", TarGz, func(ms []rawMember) []rawMember {
			i := findRaw(ms, "sql/wp_options.sql")
			ms[i].data = bytes.Replace(ms[i].data, []byte("-- sitevault: end of rows\n"), []byte("INSERT INTO `other_t` VALUES (1);\n-- sitevault: end of rows\n"), 1)
			return fixManifest(t, ms)
		}, ErrBadSQL, "another table"},
		{"statement after rows", TarGz, func(ms []rawMember) []rawMember {
			i := findRaw(ms, "sql/wp_options.sql")
			ms[i].data = append(ms[i].data, "DROP DATABASE mysql;\n"...)
			return fixManifest(t, ms)
		}, ErrBadSQL, "unexpected statement after the rows"},
		{"trigger that is not one", TarGz, func(ms []rawMember) []rawMember {
			i := findRaw(ms, "sql/wp_trig.sql")
			ms[i].data = bytes.Replace(ms[i].data, []byte("DELIMITER ;;\n"), []byte("DELIMITER ;;\nDROP TABLE wp_posts;;\n"), 1)
			return fixManifest(t, ms)
		}, ErrBadSQL, "other than CREATE TRIGGER"},
		{"zip dot dot", Zip, func(ms []rawMember) []rawMember {
			return insertRaw(ms, rawMember{name: "files/../evil.php", typ: 'f', data: []byte("x")})
		}, ErrUnsafeEntry, `".."`},
		{"zip NUL", Zip, func(ms []rawMember) []rawMember {
			return insertRaw(ms, rawMember{name: "files/a\x00b", typ: 'f', data: []byte("x")})
		}, ErrUnsafeEntry, "NUL"},
		{"zip changed byte", Zip, func(ms []rawMember) []rawMember {
			i := findRaw(ms, "files/wp-content/themes/t/style.css")
			ms[i].data = []byte("bOdy{}\n")
			return ms
		}, ErrMismatch, "has SHA-256"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := good
			if c.format == Zip {
				src = goodZip
			}
			ms := readRaw(t, src, c.format)
			bad := filepath.Join(t.TempDir(), "bad."+c.format.String())
			writeRaw(t, bad, c.format, c.edit(ms))
			_, err := Import(ctx, f.repo, bad, "copy", ImportOptions{TablePrefix: "wp_"})
			if err == nil {
				t.Fatal("import succeeded")
			}
			if !errorsIs(err, c.want) || !strings.Contains(err.Error(), c.msg) {
				t.Errorf("error %q, want %v containing %q", err, c.want, c.msg)
			}
		})
	}
	t.Run("not an archive", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "x.zip")
		must(t, os.WriteFile(p, []byte("hello, not an archive"), 0o644))
		if _, err := Import(ctx, f.repo, p, "copy", ImportOptions{TablePrefix: "wp_"}); !errorsIs(err, ErrNotArchive) {
			t.Errorf("error %v, want ErrNotArchive", err)
		}
	})
	after, err := f.repo.Snapshots(ctx)
	must(t, err)
	if len(after) != len(before) {
		t.Errorf("%d restore points after failed imports, want %d", len(after), len(before))
	}
	// The good ones still import.
	for _, p := range []string{good, goodZip} {
		if _, err := Import(ctx, f.repo, p, "copy", ImportOptions{TablePrefix: "wp_"}); err != nil {
			t.Errorf("import %s: %v", filepath.Base(p), err)
		}
	}
}

var _ = fs.ModePerm
var _ = repository.ID{}
