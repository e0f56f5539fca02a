package archive

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/sitevault/sitevault/internal/archiver"
	"github.com/sitevault/sitevault/internal/fsys"
	"github.com/sitevault/sitevault/internal/mysql"
	"github.com/sitevault/sitevault/internal/repository"
	"github.com/sitevault/sitevault/internal/site"
	"github.com/sitevault/sitevault/internal/testsrv"
)

var srv *testsrv.MariaDB

func TestMain(m *testing.M) {
	os.Exit(testsrv.RunWithMariaDB(m, func(s *testsrv.MariaDB) { srv = s }))
}

// fixture is a restore point made by the real archiver and mysql.Backup.
type fixture struct {
	repo *repository.Repository
	dir  string // the site's files
	db   testsrv.MariaDBDatabase
	root *sql.DB
	sn   *repository.Snapshot
	sums map[string]string // CHECKSUM TABLE of every table
	dbID repository.ID
}

func must(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}

// allBytes is a hex literal of the bytes 0x00…0xFF.
func allBytes() string {
	var b strings.Builder
	b.WriteString("0x")
	for i := 0; i < 256; i++ {
		fmt.Fprintf(&b, "%02X", i)
	}
	return b.String()
}

var longName = strings.Repeat("long-name-", 25) + ".txt"

type fileSpec struct {
	path   string
	data   string
	mode   fs.FileMode
	target string // symlink
	dir    bool
}

func siteFiles() []fileSpec {
	photo := make([]byte, 300<<10)
	for i := range photo {
		photo[i] = byte(i*7 + i>>9)
	}
	return []fileSpec{
		{path: "index.php", data: "<?php\n// front\n"},
		{path: "wp-config.php", data: "<?php define('DB_NAME', 'x');\n", mode: 0o600},
		{path: "empty.txt", data: ""},
		{path: "empty-dir", dir: true},
		{path: "wp-content/uploads/2024/01/photo.jpg", data: string(photo)},
		{path: "wp-content/plugins/p/run.sh", data: "#!/bin/sh\necho hi\n", mode: 0o755},
		{path: "wp-content/themes/t/style.css", data: "body{}\n"},
		{path: "deep/er/still/" + longName, data: "long\n"},
		{path: "names/ünïcødé 😀.txt", data: "utf8\n"},
		{path: "names/caf\xe9-latin1.txt", data: "not utf-8 name\n"},
		{path: "names/new\nline.txt", data: "newline in name\n"},
		{path: "link-to-index", target: "index.php"},
		{path: "names/dangling", target: "../nowhere/\xff"},
	}
}

func buildFiles(tb testing.TB, dir string) {
	tb.Helper()
	mt := time.Date(2024, 3, 1, 12, 30, 15, 250_000_000, time.UTC)
	var dirs []string
	for _, f := range siteFiles() {
		p := filepath.Join(dir, f.path)
		must(tb, os.MkdirAll(filepath.Dir(p), 0o755))
		switch {
		case f.dir:
			must(tb, os.MkdirAll(p, 0o750))
			dirs = append(dirs, p)
		case f.target != "":
			must(tb, os.Symlink(f.target, p))
			continue
		default:
			mode := f.mode
			if mode == 0 {
				mode = 0o644
			}
			must(tb, os.WriteFile(p, []byte(f.data), mode))
			must(tb, os.Chmod(p, mode))
		}
		must(tb, os.Chtimes(p, mt, mt))
	}
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{repo: repository.TestRepository(t), dir: t.TempDir()}
	buildFiles(t, f.dir)
	local, err := fsys.NewLocal(f.dir)
	must(t, err)
	defer local.Close()
	filesID, rep, err := archiver.New(f.repo, local, archiver.Options{}).Snapshot(ctx, "", nil)
	must(t, err)
	if len(rep.Errors) > 0 {
		t.Fatalf("archiver errors: %v", rep.Errors)
	}

	f.db = srv.CreateDatabase(t)
	f.root = srv.RootDB(t, f.db.Name)
	ab := allBytes()
	for _, s := range []string{
		"SET SESSION sql_mode = ''",
		"CREATE TABLE wp_posts (ID BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY, post_title TEXT, post_content LONGTEXT, post_excerpt TEXT NULL) CHARSET utf8mb4",
		"INSERT INTO wp_posts (post_title, post_content, post_excerpt) SELECT CONCAT('Post ', seq, ' 😀'), REPEAT('Ünïcødé \\' \" \\\\ \\n ;; ', seq MOD 40), IF(seq MOD 3, NULL, 'excerpt') FROM seq_1_to_600",
		"CREATE TABLE wp_options (option_id INT PRIMARY KEY, option_name VARCHAR(191) NOT NULL, option_value LONGTEXT, UNIQUE KEY (option_name)) CHARSET utf8mb4",
		"INSERT INTO wp_options VALUES (1, 'siteurl', 'http://example.test'), (2, 'blogname', '𝄞 Blog\\r\\n\\0end'), (3, 'empty', ''), (4, 'null', NULL)",
		"CREATE TABLE wp_bin (id INT PRIMARY KEY, b LONGBLOB, v VARBINARY(300)) ",
		"INSERT INTO wp_bin VALUES (1, " + ab + ", " + ab + "), (2, '', ''), (3, NULL, NULL), (4, REPEAT(" + ab + ", 2000), 0x00)",
		"CREATE TABLE wp_latin1 (id INT PRIMARY KEY, s VARCHAR(300)) CHARSET latin1 COMMENT 'café'",
		"INSERT INTO wp_latin1 VALUES (1, CAST(" + ab + " AS CHAR CHARACTER SET latin1)), (2, 'caf\xc3\xa9')",
		"CREATE TABLE wp_log (id INT AUTO_INCREMENT PRIMARY KEY, msg VARCHAR(100))",
		"CREATE TABLE wp_trig (id INT PRIMARY KEY, v INT)",
		// Triggers of a download may only set and test their own row (see
		// checkTrigger); the ";;" in a string tests the delimiter handling.
		"CREATE TRIGGER wp_trig_bi BEFORE INSERT ON wp_trig FOR EACH ROW SET NEW.v = NEW.v + CHAR_LENGTH('insert; ;; ')",
		"CREATE TRIGGER wp_trig_bu BEFORE UPDATE ON wp_trig FOR EACH ROW BEGIN SET NEW.v = NEW.v + 1000; SET NEW.v = NEW.v + 1; END",
		"INSERT INTO wp_trig VALUES (1, 1), (2, 2)",
		"CREATE TABLE wp_empty (id INT PRIMARY KEY)",
		"CREATE TABLE wp_parent (id INT PRIMARY KEY)",
		"INSERT INTO wp_parent VALUES (1), (2)",
		"CREATE TABLE wp_child (id INT PRIMARY KEY, pid INT, KEY pid (pid), CONSTRAINT fk_child FOREIGN KEY (pid) REFERENCES wp_parent (id))",
		"INSERT INTO wp_child VALUES (1, 1), (2, 2)",
		"CREATE VIEW wp_v AS SELECT ID, post_title FROM wp_posts WHERE ID < 10",
		"CREATE TABLE other_t (id INT PRIMARY KEY)",
	} {
		if _, err := f.root.Exec(s); err != nil {
			t.Fatalf("%.100s: %v", s, err)
		}
	}
	f.sums = checksums(t, f.root, f.db.Name)
	cfg := mysql.Config{Addr: srv.Addr, User: f.db.User, Password: f.db.Password, Database: f.db.Name}
	f.dbID, _, err = mysql.Backup(ctx, cfg, f.repo, mysql.BackupOptions{Prefix: "wp_", SegmentSize: 8 << 10})
	must(t, err)
	rootID, err := site.SaveRoot(ctx, f.repo, &filesID, &f.dbID, time.Now())
	must(t, err)
	f.sn = &repository.Snapshot{Time: time.Now(), Site: "example", Trigger: "manual", Tree: rootID,
		Meta: map[string]string{MetaTablePrefix: "wp_", MetaWPVersion: "6.5.2", "multisite": "false"}}
	_, err = f.repo.SaveSnapshot(ctx, f.sn)
	must(t, err)
	return f
}

// checksums returns CHECKSUM TABLE EXTENDED of every wp_ base table of db.
func checksums(tb testing.TB, root *sql.DB, db string) map[string]string {
	tb.Helper()
	rows, err := root.Query("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE' AND TABLE_NAME LIKE 'wp\\_%'", db)
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

func sameSums(tb testing.TB, want, got map[string]string) {
	tb.Helper()
	if len(want) == 0 {
		tb.Fatal("no tables to compare")
	}
	for n, w := range want {
		if got[n] != w {
			tb.Errorf("table %s: CHECKSUM TABLE %q, want %q", n, got[n], w)
		}
	}
	for n := range got {
		if _, ok := want[n]; !ok {
			tb.Errorf("unexpected table %s", n)
		}
	}
}

// write downloads f's point into a file of format and returns its path.
func (f *fixture) write(tb testing.TB, format Format) string {
	tb.Helper()
	p := filepath.Join(tb.TempDir(), "download."+format.String())
	out, err := os.Create(p)
	must(tb, err)
	defer out.Close()
	must(tb, Write(context.Background(), f.repo, f.sn, out, format, Options{}))
	must(tb, out.Close())
	return p
}

// member is an archive entry as the standard library reads it.
type member struct {
	name   string
	typ    string // file, dir, symlink, other
	data   []byte
	target string
	mode   fs.FileMode
	mtime  time.Time
}

// readMembers reads an archive with archive/tar or archive/zip only.
func readMembers(tb testing.TB, path string, format Format) []member {
	tb.Helper()
	var out []member
	switch format {
	case TarGz:
		f, err := os.Open(path)
		must(tb, err)
		defer f.Close()
		gz, err := gzip.NewReader(f)
		must(tb, err)
		tr := tar.NewReader(gz)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			must(tb, err)
			m := member{name: strings.TrimSuffix(h.Name, "/"), mode: h.FileInfo().Mode() & permBits, mtime: h.ModTime}
			switch h.Typeflag {
			case tar.TypeReg:
				m.typ = "file"
				m.data, err = io.ReadAll(tr)
				must(tb, err)
			case tar.TypeDir:
				m.typ = "dir"
			case tar.TypeSymlink:
				m.typ, m.target = "symlink", h.Linkname
			default:
				m.typ = "other"
			}
			out = append(out, m)
		}
	case Zip:
		zr, err := zip.OpenReader(path)
		must(tb, err)
		defer zr.Close()
		for _, zf := range zr.File {
			m := member{name: strings.TrimSuffix(zf.Name, "/"), mode: zf.Mode() & permBits, mtime: zf.Modified}
			rc, err := zf.Open()
			must(tb, err)
			data, err := io.ReadAll(rc)
			must(tb, err)
			rc.Close()
			switch {
			case zf.Mode().IsDir():
				m.typ = "dir"
			case zf.Mode()&fs.ModeSymlink != 0:
				m.typ, m.target = "symlink", string(data)
			default:
				m.typ, m.data = "file", data
			}
			out = append(out, m)
		}
	}
	return out
}

// diskFile is a file of a directory tree, for comparisons.
type diskFile struct {
	typ    string
	data   string
	target string
	mode   fs.FileMode
	mtime  time.Time
}

func walkDisk(tb testing.TB, dir string) map[string]diskFile {
	tb.Helper()
	out := map[string]diskFile{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		df := diskFile{mode: fi.Mode() & permBits, mtime: fi.ModTime()}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			df.typ = "symlink"
			df.target, err = os.Readlink(p)
			df.mode = 0
		case fi.IsDir():
			df.typ = "dir"
			df.mtime = time.Time{} // writing into a folder changes it
		default:
			df.typ = "file"
			var b []byte
			b, err = os.ReadFile(p)
			df.data = string(b)
		}
		out[rel] = df
		return err
	})
	must(tb, err)
	return out
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func keys[M ~map[string]V, V any](m M) []string {
	var k []string
	for n := range m {
		k = append(k, n)
	}
	sort.Strings(k)
	return k
}

// mariadbClient loads an SQL file into database db with the real client.
func mariadbClient(tb testing.TB, db string, sqlText []byte) {
	tb.Helper()
	client := testsrv.LookPath("mariadb")
	if client == "" {
		testsrv.Missing(tb, "mariadb client", "apt-get install mariadb-client")
	}
	cmd := exec.Command(client, "--no-defaults", "-S", srv.Socket, "-uroot", "-p"+srv.RootPassword, "--max-allowed-packet=64M", db)
	cmd.Stdin = bytes.NewReader(sqlText)
	out, err := cmd.CombinedOutput()
	if err != nil {
		tb.Fatalf("mariadb: %v\n%s", err, out)
	}
}
