package mysql

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sitevault/sitevault/internal/testsrv"
)

// allBytes is a hex literal of the bytes 0x00…0xFF.
func allBytes() string {
	var b strings.Builder
	b.WriteString("0x")
	for i := 0; i < 256; i++ {
		b.WriteString(strings.ToUpper(string("0123456789abcdef"[i>>4]) + string("0123456789abcdef"[i&15])))
	}
	return b.String()
}

// fixture creates a small WordPress-like database with every kind of data
// the issue names.
func fixture(e *env) {
	e.tb.Helper()
	ab := allBytes()
	e.exec(
		"SET SESSION sql_mode = ''",
		"CREATE TABLE wp_utf8 (id INT PRIMARY KEY, s VARCHAR(100), t LONGTEXT) CHARSET utf8mb4",
		"INSERT INTO wp_utf8 VALUES (1, '😀 emoji 𝄞 𠜎 ñ', REPEAT('🎉ü', 1000)), (2, '', NULL), (3, 'quote \\' back\\\\slash \\n newline \\0 nul', 'x')",
		"CREATE TABLE wp_latin1 (id INT PRIMARY KEY, s VARCHAR(300), d VARCHAR(10) NOT NULL DEFAULT 'déjà' COMMENT 'Ünïcödé 😀') CHARSET latin1 COMMENT 'café'",
		"INSERT INTO wp_latin1 (id, s) VALUES (1, CAST("+ab+" AS CHAR CHARACTER SET latin1)), (2, 'caf\xc3\xa9')",
		"CREATE TABLE wp_bin (id INT PRIMARY KEY, b LONGBLOB, v VARBINARY(300), f BINARY(4))",
		"INSERT INTO wp_bin VALUES (1, "+ab+", "+ab+", 0x00FF0A0D), (2, '', '', 0x00000000), (3, NULL, NULL, NULL)",
		"CREATE TABLE wp_big (id INT PRIMARY KEY, b LONGBLOB)",
		"INSERT INTO wp_big VALUES (1, REPEAT("+ab+", 17 * 4096)), (2, 'small')",
		"CREATE TABLE wp_dates (id INT PRIMARY KEY, d DATE NOT NULL DEFAULT '0000-00-00', dt DATETIME NOT NULL DEFAULT '0000-00-00 00:00:00', "+
			"ts TIMESTAMP NULL, t TIME, y YEAR, dt6 DATETIME(6))",
		"INSERT INTO wp_dates VALUES (1, '0000-00-00', '0000-00-00 00:00:00', '2021-03-28 01:30:00', '-838:59:59', 0, '2020-02-29 23:59:59.123456'), "+
			"(2, '2024-01-31', '1970-01-01 00:00:00', NULL, '12:00:00', 2155, NULL), (3, '2024-00-00', '2024-02-00 00:00:00', '1999-12-31 23:59:59', NULL, NULL, '0000-00-00 00:00:00.000000')",
		"CREATE TABLE wp_types (id BIGINT UNSIGNED PRIMARY KEY, f FLOAT, d DOUBLE, n DECIMAL(40,20), bits BIT(10), b1 BIT(1), j JSON, "+
			"e ENUM('a','b','c'), st SET('x','y','z'), g POINT, u TINYINT SIGNED, "+
			"v INT AS (u * 2) VIRTUAL, p VARCHAR(50) AS (CONCAT('p', id)) PERSISTENT)",
		"INSERT INTO wp_types (id, f, d, n, bits, b1, j, e, st, g, u) VALUES "+
			"(18446744073709551615, 16777217, 1e-1+2e-1, '12345678901234567890.12345678901234567890', b'1010101010', b'1', '{\"a\": [1, 2.5, \"ü\"]}', 'b', 'x,z', POINT(1.5, -2), -128), "+
			"(1, 0.1, 1/3e0, -0.00000000000000000001, b'0', b'0', NULL, NULL, '', NULL, 127), "+
			"(2, -3.4e38, 1.7976931348623157e308, 0, NULL, NULL, '[]', 'c', NULL, NULL, NULL), "+
			"(3, 1.17549435e-38, 4.9e-324, 99999999999999999999.99999999999999999999, b'1111111111', NULL, '\"s\"', 'a', 'x,y,z', ST_GeomFromText('POINT(0 1e300)'), 0)",
		"CREATE TABLE wp_log (id INT AUTO_INCREMENT PRIMARY KEY, msg VARCHAR(100))",
		"CREATE TABLE wp_trig (id INT PRIMARY KEY, v INT)",
		"CREATE TRIGGER wp_trig_ai AFTER INSERT ON wp_trig FOR EACH ROW INSERT INTO wp_log (msg) VALUES (CONCAT('insert ', NEW.id))",
		"CREATE TRIGGER wp_trig_bu BEFORE UPDATE ON wp_trig FOR EACH ROW SET NEW.v = NEW.v + 1000",
		"INSERT INTO wp_trig VALUES (1, 1), (2, 2)",
		"CREATE DEFINER = 'root'@'localhost' SQL SECURITY DEFINER VIEW wp_v AS SELECT id, s FROM wp_utf8 WHERE id > 1",
		"CREATE TABLE wp_myisam (id INT PRIMARY KEY, s TEXT) ENGINE=MyISAM",
		"INSERT INTO wp_myisam SELECT seq, REPEAT(CHAR(64 + seq MOD 26), seq MOD 300) FROM seq_1_to_500",
		"CREATE TABLE wp_aria (id INT PRIMARY KEY, s TEXT) ENGINE=Aria",
		"INSERT INTO wp_aria VALUES (1, 'aria')",
		// Composite key over a case-insensitive collation, many segments.
		"CREATE TABLE wp_comp (k VARCHAR(40) NOT NULL, n INT NOT NULL, v TEXT, PRIMARY KEY (k, n)) CHARSET utf8mb4 COLLATE utf8mb4_unicode_ci",
		"INSERT INTO wp_comp SELECT ELT(1 + seq MOD 7, 'a', 'B', 'ö', 'Z', 'b_', '😀', 'a%'), seq DIV 7, REPEAT('v', seq MOD 97) FROM seq_0_to_2999",
		// Unique key only (over NOT NULL columns), and a nullable unique key (not enough).
		"CREATE TABLE wp_uniq (a INT NOT NULL, b VARCHAR(20) NOT NULL, c INT NULL, UNIQUE KEY ab (a, b), UNIQUE KEY c (c))",
		"INSERT INTO wp_uniq SELECT seq MOD 10, CONCAT('b', seq), IF(seq MOD 2, seq, NULL) FROM seq_1_to_1000",
		"CREATE TABLE wp_nulluniq (c INT NULL, UNIQUE KEY c (c))",
		"INSERT INTO wp_nulluniq VALUES (1), (NULL), (NULL)",
		"CREATE TABLE wp_nokey (a INT, b TEXT)",
		"INSERT INTO wp_nokey VALUES (1, 'x'), (1, 'x')",
		"CREATE TABLE other_t (id INT PRIMARY KEY)",
		"CREATE TABLE wpXfoo (id INT PRIMARY KEY)",
		"CREATE TABLE wp_2_posts (ID BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY, post_title TEXT) AUTO_INCREMENT=100",
		"INSERT INTO wp_2_posts (post_title) VALUES ('Hello'), ('World')",
		"CREATE TABLE wp_empty (id INT PRIMARY KEY)",
		"CREATE TABLE wp_parent (id INT PRIMARY KEY, v INT, CONSTRAINT v_positive CHECK (v > 0))",
		"INSERT INTO wp_parent VALUES (1, 1), (2, 2)",
		"CREATE TABLE wp_child (id INT PRIMARY KEY, pid INT, KEY pid (pid), "+
			"CONSTRAINT fk_child_parent FOREIGN KEY (pid) REFERENCES wp_parent (id) ON DELETE CASCADE)",
		"INSERT INTO wp_child VALUES (10, 1), (20, 2), (30, 2)",
		// Secondary indexes of every kind, which a restore adds after the load.
		"CREATE TABLE wp_keys (id INT PRIMARY KEY, a INT NOT NULL, b VARCHAR(200), c INT, d TEXT, "+
			"KEY b (b(50), a), UNIQUE KEY un (c), KEY a_desc (a DESC) COMMENT 'desc', UNIQUE KEY ua (a, id), KEY d (d(10)) IGNORED) CHARSET utf8mb4",
		"INSERT INTO wp_keys SELECT seq, seq MOD 10, CONCAT('b', seq MOD 7), IF(seq MOD 3, seq, NULL), REPEAT('d', seq MOD 20) FROM seq_1_to_3000",
		"CREATE TABLE wp_fts (id INT PRIMARY KEY, t TEXT, KEY t (t(20)), FULLTEXT KEY ft (t))",
		"INSERT INTO wp_fts SELECT seq, CONCAT('word', seq) FROM seq_1_to_100",
	)
}

var fixtureSelected = []string{"wp_2_posts", "wp_aria", "wp_big", "wp_bin", "wp_child", "wp_comp", "wp_dates", "wp_empty", "wp_fts", "wp_keys", "wp_latin1",
	"wp_log", "wp_myisam", "wp_nokey", "wp_nulluniq", "wp_parent", "wp_trig", "wp_types", "wp_uniq", "wp_utf8"}

func TestBackupRestoreRoundTrip(t *testing.T) { eachDial(t, testBackupRestoreRoundTrip) }

func testBackupRestoreRoundTrip(t *testing.T, mode dialMode) {
	e := newEnvVia(t, mode)
	// A strict server-wide sql_mode must not stop zero dates.
	e.exec("SET GLOBAL sql_mode = 'STRICT_ALL_TABLES,NO_ZERO_DATE,NO_ZERO_IN_DATE,ERROR_FOR_DIVISION_BY_ZERO'")
	t.Cleanup(func() { e.exec("SET GLOBAL sql_mode = DEFAULT") })
	fixture(e)
	before := e.checksums()
	creates := e.creates()

	id, rep := e.backup(BackupOptions{Prefix: "wp_", SegmentSize: 8 << 10, StatementSize: 2 << 10})
	var got []string
	for _, tr := range rep.Tables {
		got = append(got, tr.Name)
	}
	slices.Sort(got)
	if !slices.Equal(got, fixtureSelected) {
		t.Errorf("backed up %v, want %v", got, fixtureSelected)
	}
	wantSkip := map[string]string{"other_t": ReasonNoPrefix, "wpXfoo": ReasonNoPrefix}
	for _, s := range rep.Skipped {
		if w, ok := wantSkip[s.Name]; ok && w == s.Reason {
			delete(wantSkip, s.Name)
		}
	}
	if len(wantSkip) > 0 {
		t.Errorf("skipped %v; missing %v", rep.Skipped, wantSkip)
	}
	if !slices.Equal(rep.Views, []string{"wp_v"}) {
		t.Errorf("views %v", rep.Views)
	}
	total, _, _, _ := rep.Segments()
	if total < 20 {
		t.Errorf("only %d segments with 8 KiB segments", total)
	}
	m, err := LoadManifest(context.Background(), e.repo, id)
	if err != nil {
		t.Fatal(err)
	}
	if tm := m.Table("wp_types"); tm == nil || slices.Contains(tm.Columns, "v") || slices.Contains(tm.Columns, "p") {
		t.Errorf("generated columns in INSERTs: %v", tm.Columns)
	}
	if strings.Contains(m.Views[0].Create, "DEFINER") || strings.Contains(strings.Join(m.Table("wp_trig").Triggers, ""), "DEFINER") {
		t.Errorf("DEFINER kept: %s %v", m.Views[0].Create, m.Table("wp_trig").Triggers)
	}

	// Change everything, then restore.
	e.exec(
		"SET SESSION sql_mode = ''",
		"DELETE FROM wp_comp WHERE n MOD 3 = 0",
		"UPDATE wp_types SET d = 0",
		"DROP TABLE wp_utf8",
		"DROP VIEW wp_v",
		"CREATE VIEW wp_v2 AS SELECT 1",
		"DROP TRIGGER wp_trig_ai",
		"INSERT INTO wp_myisam VALUES (1000, 'new')",
		"TRUNCATE wp_big",
		"CREATE TABLE wp_new (id INT PRIMARY KEY)",
		"CREATE TABLE wp_new_nokey (id INT)",
		"INSERT INTO other_t VALUES (7)",
	)
	otherSum := e.checksum("other_t")
	rrep := e.restore(id, RestoreOptions{Prefix: "wp_", Parallel: 3})
	if len(rrep.Warnings) > 0 {
		t.Errorf("restore warnings: %v", rrep.Warnings)
	}
	after := e.checksums()
	afterCreates := e.creates()
	for _, n := range fixtureSelected {
		if afterCreates[n] != creates[n] {
			t.Errorf("SHOW CREATE TABLE %s after restore:\n%s\nwant\n%s", n, afterCreates[n], creates[n])
		}
	}
	before["other_t"] = otherSum
	before["wp_new_nokey"] = after["wp_new_nokey"] // not backed up, so not removed
	sameSums(t, before, after)
	if n := e.count("SELECT COUNT(*) FROM wp_v"); n != 2 {
		t.Errorf("view has %d rows", n)
	}
	if n := e.count("SELECT COUNT(*) FROM information_schema.VIEWS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'wp_v2'"); n != 0 {
		t.Errorf("view wp_v2 not removed")
	}
	e.exec("INSERT INTO wp_trig VALUES (3, 3)", "UPDATE wp_trig SET v = 5 WHERE id = 3")
	if n := e.count("SELECT COUNT(*) FROM wp_log WHERE msg = 'insert 3'"); n != 1 {
		t.Errorf("trigger wp_trig_ai not restored")
	}
	if n := e.count("SELECT v FROM wp_trig WHERE id = 3"); n != 1005 {
		t.Errorf("trigger wp_trig_bu not restored: v = %d", n)
	}
	if n := e.count("SELECT AUTO_INCREMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'wp_2_posts'"); n < 100 {
		t.Errorf("AUTO_INCREMENT %d", n)
	}
	if tmp := e.tempTables(); len(tmp) > 0 {
		t.Errorf("temporary tables left: %v", tmp)
	}
	e.exec("INSERT INTO wp_latin1 (id) VALUES (99)")
	var d string
	if err := e.root.QueryRow("SELECT d FROM wp_latin1 WHERE id = 99").Scan(&d); err != nil || d != "déjà" {
		t.Errorf("latin1 default after restore: %q, %v", d, err)
	}
	if n := e.count("SELECT COUNT(*) FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = DATABASE() " +
		"AND CONSTRAINT_NAME = 'fk_child_parent' AND REFERENCED_TABLE_NAME = 'wp_parent'"); n != 1 {
		t.Errorf("foreign key not restored")
	}
	e.exec("DELETE FROM wp_parent WHERE id = 2")
	if n := e.count("SELECT COUNT(*) FROM wp_child"); n != 1 {
		t.Errorf("foreign key does not cascade: %d children", n)
	}

	// Single-table restore touches nothing else.
	e.exec("DELETE FROM wp_comp", "DELETE FROM wp_bin")
	binSum := e.checksum("wp_bin")
	e.restore(id, RestoreOptions{Prefix: "wp_", Tables: []string{"wp_comp"}})
	if got := e.checksum("wp_comp"); got != before["wp_comp"] {
		t.Errorf("wp_comp after table restore: %s want %s", got, before["wp_comp"])
	}
	if got := e.checksum("wp_bin"); got != binSum {
		t.Errorf("wp_bin changed by a restore of wp_comp")
	}
	if _, err := Restore(context.Background(), e.cfg, e.repo, id, RestoreOptions{Prefix: "wp_", Tables: []string{"nope"}}); !errors.Is(err, ErrNotFound) {
		t.Errorf("restore of a missing table: %v", err)
	}
	if _, err := Restore(context.Background(), e.cfg, e.repo, id, RestoreOptions{}); !errors.Is(err, ErrNoPrefix) {
		t.Errorf("restore without a prefix: %v", err)
	}

	// Every segment file is self-contained SQL the mariadb client loads
	// (the files do not depend on how the backup connected).
	if mode != direct {
		return
	}
	t.Run("client", func(t *testing.T) {
		loadWithClient(t, e, m, before, "wp_utf8", "wp_latin1", "wp_bin", "wp_types", "wp_dates", "wp_comp", "wp_big")
	})
}

// loadWithClient loads schema.sql and the segments of tables into a fresh
// database with the mariadb client, and compares CHECKSUM TABLE.
func loadWithClient(t *testing.T, e *env, m *Manifest, want map[string]string, tables ...string) {
	client := testsrv.LookPath("mariadb")
	if client == "" {
		testsrv.Missing(t, "mariadb client", "apt-get install mariadb-client")
	}
	ctx := context.Background()
	db2 := srv.CreateDatabase(t)
	dir := t.TempDir()
	for _, name := range tables {
		tm := m.Table(name)
		files := []string{filepath.Join(dir, name+".schema.sql")}
		f, _ := os.Create(files[0])
		if err := e.repo.WriteContent(ctx, tm.Schema.Content, f); err != nil {
			t.Fatal(err)
		}
		f.Close()
		for i, s := range tm.Segments {
			p := filepath.Join(dir, name+"."+segmentName(i))
			f, _ := os.Create(p)
			if err := SegmentSQL(ctx, e.repo, tm, s, f); err != nil {
				t.Fatal(err)
			}
			f.Close()
			files = append(files, p)
		}
		for _, p := range files {
			in, _ := os.Open(p)
			cmd := exec.Command(client, "--no-defaults", "-S", srv.Socket, "-uroot", "-p"+srv.RootPassword, "--max-allowed-packet=64M", db2.Name)
			cmd.Stdin = in
			out, err := cmd.CombinedOutput()
			in.Close()
			if err != nil {
				t.Fatalf("mariadb < %s: %v\n%s", filepath.Base(p), err, out)
			}
		}
		var n, sum string
		if err := e.root.QueryRow("CHECKSUM TABLE "+quoteIdent(db2.Name)+"."+quoteIdent(name)+" EXTENDED").Scan(&n, &sum); err != nil {
			t.Fatal(err)
		}
		if sum != want[name] {
			t.Errorf("%s loaded by the client: CHECKSUM %s, want %s", name, sum, want[name])
		}
	}
}

// Without local infile, every table loads as INSERT statements.
func TestRestoreWithoutLocalInfile(t *testing.T) {
	e := newEnv(t)
	fixture(e)
	want := e.checksums()
	id, _ := e.backup(BackupOptions{Prefix: "wp_", SegmentSize: 8 << 10})
	e.exec("SET GLOBAL local_infile = 0")
	t.Cleanup(func() { e.exec("SET GLOBAL local_infile = 1") })
	e.exec("DELETE FROM wp_comp", "DROP TABLE wp_bin", "DELETE FROM wp_utf8 WHERE id = 1")
	e.restore(id, RestoreOptions{Prefix: "wp_"})
	sameSums(t, want, e.checksums())
}

func TestSplitSecondaryKeys(t *testing.T) {
	for _, tc := range []struct {
		create, want string
		keys         []string
	}{
		{
			"CREATE TABLE `t` (\n  `id` int(11) NOT NULL,\n  `a` int(11) DEFAULT NULL,\n  PRIMARY KEY (`id`),\n  UNIQUE KEY `u` (`a`),\n  KEY `a` (`a`,`id`),\n  CONSTRAINT `c` CHECK (`a` > 0)\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
			"CREATE TABLE `t` (\n  `id` int(11) NOT NULL,\n  `a` int(11) DEFAULT NULL,\n  PRIMARY KEY (`id`),\n  CONSTRAINT `c` CHECK (`a` > 0)\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
			[]string{"ADD UNIQUE KEY `u` (`a`)", "ADD KEY `a` (`a`,`id`)"},
		},
		{
			"CREATE TABLE `t` (\n  `id` int(11) NOT NULL,\n  PRIMARY KEY (`id`),\n  KEY `a` (`id`)\n) ENGINE=InnoDB",
			"CREATE TABLE `t` (\n  `id` int(11) NOT NULL,\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB", []string{"ADD KEY `a` (`id`)"},
		},
		// Left as they are: no primary key, FULLTEXT, not InnoDB.
		{"CREATE TABLE `t` (\n  `id` int(11) NOT NULL,\n  UNIQUE KEY `u` (`id`),\n  KEY `a` (`id`)\n) ENGINE=InnoDB", "", nil},
		{"CREATE TABLE `t` (\n  `id` int(11) NOT NULL,\n  `s` text,\n  PRIMARY KEY (`id`),\n  KEY `a` (`id`),\n  FULLTEXT KEY `f` (`s`)\n) ENGINE=InnoDB", "", nil},
		{"CREATE TABLE `t` (\n  `id` int(11) NOT NULL,\n  PRIMARY KEY (`id`),\n  KEY `a` (`id`)\n) ENGINE=MyISAM", "", nil},
	} {
		want := tc.want
		if want == "" {
			want = tc.create
		}
		got, keys := splitSecondaryKeys(tc.create)
		if got != want || !slices.Equal(keys, tc.keys) {
			t.Errorf("splitSecondaryKeys(%q) = %q, %q; want %q, %q", tc.create, got, keys, want, tc.keys)
		}
	}
}
