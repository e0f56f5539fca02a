package restore_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sitevault/sitevault/internal/archive"
	"github.com/sitevault/sitevault/internal/backup"
	"github.com/sitevault/sitevault/internal/repository"
	"github.com/sitevault/sitevault/internal/restore"
)

// triggers lists the database's triggers as "name on table".
func (e *env) triggers() []string {
	e.t.Helper()
	rows, err := e.db.QueryContext(e.ctx, "SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE() ORDER BY 1")
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n, tb string
		if err := rows.Scan(&n, &tb); err != nil {
			e.t.Fatal(err)
		}
		out = append(out, n+" on "+tb)
	}
	return out
}

// craftDownload downloads point and edits it as an attacker would: the
// manifest names table prefix "wp2_" (another site's, in the same
// database), the only table file is sql/wp2_options.sql (the site's
// wp_options renamed) and it creates a trigger on that table; the
// manifest is sealed again to match.
func craftDownload(t *testing.T, e *env, point *repository.Snapshot) string {
	t.Helper()
	var buf bytes.Buffer
	if err := archive.Write(e.ctx, e.repo, point, &buf, archive.TarGz, archive.Options{}); err != nil {
		t.Fatal(err)
	}
	type member struct {
		h    *tar.Header
		data []byte
	}
	var ms []member
	gz, err := gzip.NewReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		ms = append(ms, member{h, data})
	}
	var man archive.Manifest
	var kept []member
	for _, m := range ms {
		switch {
		case m.h.Name == archive.ManifestName:
			if err := json.Unmarshal(m.data, &man); err != nil {
				t.Fatal(err)
			}
		case m.h.Name == "sql/wp_options.sql":
			m.h.Name = "sql/wp2_options.sql"
			m.data = bytes.ReplaceAll(m.data, []byte("`wp_options`"), []byte("`wp2_options`"))
			m.data = bytes.Replace(m.data, []byte("-- sitevault: end of rows\n"), []byte("-- sitevault: end of rows\n\nDELIMITER ;;\n"+
				"CREATE TRIGGER `wp2_stamp` BEFORE INSERT ON `wp2_options` FOR EACH ROW SET NEW.option_value = CONCAT(NEW.option_value, '!');;\n"+
				"DELIMITER ;\n"), 1)
			kept = append(kept, m)
		case strings.HasPrefix(m.h.Name, "sql/"):
		default:
			kept = append(kept, m)
		}
	}
	man.TablePrefix, man.Meta["table_prefix"] = "wp2_", "wp2_"
	man.Views = nil
	man.Tables = []archive.Table{{Name: "wp2_options", File: "sql/wp2_options.sql", Rows: 3}}
	man.Entries = nil
	for _, m := range kept {
		en := archive.Entry{Path: strings.TrimSuffix(m.h.Name, "/")}
		switch m.h.Typeflag {
		case tar.TypeDir:
			en.Type = archive.EntryDir
		case tar.TypeSymlink:
			en.Type, en.Target = archive.EntrySymlink, m.h.Linkname
		default:
			sum := sha256.Sum256(m.data)
			en.Type, en.Size, en.SHA256 = archive.EntryFile, int64(len(m.data)), hex.EncodeToString(sum[:])
		}
		man.Entries = append(man.Entries, en)
	}
	mb, err := json.Marshal(man)
	if err != nil {
		t.Fatal(err)
	}
	kept = append(kept, member{&tar.Header{Name: archive.ManifestName, Mode: 0o644, Typeflag: tar.TypeReg, Format: tar.FormatPAX}, mb})

	p := filepath.Join(t.TempDir(), "crafted.tar.gz")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zw := gzip.NewWriter(f)
	tw := tar.NewWriter(zw)
	for _, m := range kept {
		m.h.Size = int64(len(m.data))
		if err := tw.WriteHeader(m.h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(m.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestImportRestoreUndo restores a crafted download that names another
// site's prefix (sharing the database) and undoes it: the other site's
// tables are never touched, and undo brings back exactly the tables and
// triggers of before the import.
func TestImportRestoreUndo(t *testing.T) {
	e := newEnv(t)
	ctx := e.ctx
	first := e.backup(backup.Options{})
	e.exec(
		"CREATE TABLE wp2_options (option_id bigint unsigned NOT NULL AUTO_INCREMENT PRIMARY KEY, option_name varchar(191) NOT NULL UNIQUE, option_value longtext NOT NULL)",
		"INSERT INTO wp2_options (option_name, option_value) VALUES ('siteurl', 'http://other.test'), ('secret', 'the other site''s')",
		"CREATE TABLE wp2_posts (ID bigint unsigned NOT NULL AUTO_INCREMENT PRIMARY KEY, post_title text NOT NULL)",
		"INSERT INTO wp2_posts (post_title) VALUES ('other post')",
		"CREATE TRIGGER wp2_keep BEFORE INSERT ON wp2_posts FOR EACH ROW SET NEW.post_title = NEW.post_title",
	)
	path := craftDownload(t, e, first.Snapshot)
	before, trigBefore := e.checksums(), e.triggers()
	other := func(m map[string]string) map[string]string {
		out := map[string]string{}
		for k, v := range m {
			if !strings.HasPrefix(k, "wp_") {
				out[k] = v
			}
		}
		return out
	}

	point, err := archive.Import(ctx, e.repo, path, e.name, archive.ImportOptions{TablePrefix: "wp_"})
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	res, err := restore.Run(ctx, e.deps, e.entry(), point, restore.Options{})
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	diffMaps(t, "other sites' tables after the restore", other(e.checksums()), other(before))
	if !slices.Equal(res.Database.Tables, []string{"wp_options"}) {
		t.Errorf("restored tables %q, want [wp_options] (the download's wp2_options under the site's prefix)", res.Database.Tables)
	}
	if got := e.triggers(); !slices.Contains(got, "wp_stamp on wp_options") || slices.Contains(got, "wp2_stamp on wp2_options") {
		t.Errorf("triggers after the restore: %q, want wp_stamp on wp_options and wp2_ ones untouched", got)
	}

	if _, err := restore.Undo(ctx, e.deps, e.entry(), restore.Options{}); err != nil {
		t.Fatalf("undo: %v", err)
	}
	diffMaps(t, "tables after undo", e.checksums(), before)
	if got := e.triggers(); !slices.Equal(got, trigBefore) {
		t.Errorf("triggers after undo: %q, want %q", got, trigBefore)
	}
}

// TestImportedPointOtherPrefix: the site's prefix is what an import is
// confined to, and a point imported for another prefix is not restored.
func TestImportedPointOtherPrefix(t *testing.T) {
	e := newEnv(t)
	if p, err := restore.SiteTablePrefix(e.ctx, e.deps, e.entry()); err != nil || p != "wp_" {
		t.Fatalf("SiteTablePrefix = %q, %v; want wp_", p, err)
	}
	first := e.backup(backup.Options{})
	path := craftDownload(t, e, first.Snapshot)
	point, err := archive.Import(e.ctx, e.repo, path, e.name, archive.ImportOptions{TablePrefix: "wpx_"})
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	before := e.checksums()
	_, err = restore.Run(e.ctx, e.deps, e.entry(), point, restore.Options{})
	if !errors.Is(err, restore.ErrUsage) || !strings.Contains(err.Error(), `"wpx_"`) {
		t.Errorf("restore of a point imported for wpx_: %v, want ErrUsage naming the prefix", err)
	}
	diffMaps(t, "tables after the refused restore", e.checksums(), before)
}
