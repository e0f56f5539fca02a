package mysql

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"
)

// allTypes creates wp_alltypes, a table with a column of every type
// MariaDB 10.11 offers (and MySQL 8's, where MariaDB has them), holding
// extreme values, zero dates and NULLs.
func allTypes(e *env) {
	e.tb.Helper()
	ab := allBytes()
	e.exec(
		"SET SESSION sql_mode = ''",
		"CREATE TABLE wp_alltypes (id INT NOT NULL PRIMARY KEY, "+
			"ti TINYINT, tiu TINYINT UNSIGNED, si SMALLINT, siu SMALLINT UNSIGNED, mi MEDIUMINT, miu MEDIUMINT UNSIGNED, "+
			"i INT, iu INT UNSIGNED, bi BIGINT, biu BIGINT UNSIGNED, "+
			"de DECIMAL(65,30), deu DECIMAL(10,2) UNSIGNED, fl FLOAT, fl2 FLOAT(7,3), db DOUBLE, db2 DOUBLE(20,10), "+
			"b1 BIT(1), b64 BIT(64), "+
			"d DATE, dt DATETIME, dt3 DATETIME(3), dt6 DATETIME(6), ts TIMESTAMP NULL, ts6 TIMESTAMP(6) NULL, t TIME, t6 TIME(6), y YEAR, "+
			"c CHAR(10) CHARSET latin1, cb CHAR(10) CHARSET utf8mb4 COLLATE utf8mb4_bin, v VARCHAR(100) CHARSET utf8mb4, "+
			"vb VARCHAR(100) CHARSET utf8mb4 COLLATE utf8mb4_bin, vu VARCHAR(50) CHARSET utf8mb3, vs VARCHAR(50) CHARSET sjis, "+
			"vc VARCHAR(50) CHARSET cp1251, vg VARCHAR(50) CHARSET gbk, "+
			"tt TINYTEXT, tx TEXT CHARSET latin1, mt MEDIUMTEXT CHARSET utf8mb4, lt LONGTEXT CHARSET utf8mb4 COLLATE utf8mb4_bin, "+
			"bn BINARY(8), vbn VARBINARY(300), tb TINYBLOB, bl BLOB, mb MEDIUMBLOB, lb LONGBLOB, "+
			"en ENUM('a','b','ü','') CHARSET utf8mb4, st SET('x','y','€') CHARSET utf8mb4, j JSON, "+
			"g GEOMETRY, p POINT, ls LINESTRING, pg POLYGON, mp MULTIPOINT, mls MULTILINESTRING, mpg MULTIPOLYGON, gc GEOMETRYCOLLECTION, "+
			"i4 INET4, i6 INET6, u UUID, "+
			"gv INT AS (i + 1) VIRTUAL, gs VARCHAR(120) AS (CONCAT(v, '!')) STORED) CHARSET utf8mb4",
		"INSERT INTO wp_alltypes (id, ti, tiu, si, siu, mi, miu, i, iu, bi, biu, de, deu, fl, fl2, db, db2, b1, b64, "+
			"d, dt, dt3, dt6, ts, ts6, t, t6, y, c, cb, v, vb, vu, vs, vc, vg, tt, tx, mt, lt, bn, vbn, tb, bl, mb, lb, en, st, j, "+
			"g, p, ls, pg, mp, mls, mpg, gc, i4, i6, u) VALUES "+
			"(1, -128, 255, -32768, 65535, -8388608, 16777215, -2147483648, 4294967295, -9223372036854775808, 18446744073709551615, "+
			"'-99999999999999999999999999999999999.999999999999999999999999999999', 99999999.99, -3.402823466e38, 9999.999, 2.2250738585072014e-308, 1234567890.0123456789, "+
			"b'1', b'1111111111111111111111111111111111111111111111111111111111111111', "+
			"'0000-00-00', '0000-00-00 00:00:00', '2024-02-29 23:59:59.999', '9999-12-31 23:59:59.999999', '2038-01-19 03:14:07', '1970-01-01 00:00:01.000001', "+
			"'-838:59:59', '838:59:58.999999', 1901, 'déjà', 'BIN', '😀 𝄞', 'Abc', 'ü€', CONVERT('日本語' USING sjis), CONVERT('Привет' USING cp1251), CONVERT('中文' USING gbk), "+
			"'tiny', 'latin é', REPEAT('ü😀', 100), 'X', 0x0001020304050607, "+ab+", 0x00, "+ab+", "+ab+", "+ab+", 'ü', 'x,€', '{\"k\": [1, null, \"ü\"]}', "+
			"ST_GeomFromText('POINT(1 2)'), POINT(-1.5, 2e300), ST_GeomFromText('LINESTRING(0 0,1 1,2 0)'), ST_GeomFromText('POLYGON((0 0,10 0,10 10,0 10,0 0),(1 1,2 1,2 2,1 1))'), "+
			"ST_GeomFromText('MULTIPOINT(0 0,1 1)'), ST_GeomFromText('MULTILINESTRING((0 0,1 1),(2 2,3 3))'), "+
			"ST_GeomFromText('MULTIPOLYGON(((0 0,1 0,1 1,0 0)),((5 5,6 5,6 6,5 5)))'), ST_GeomFromText('GEOMETRYCOLLECTION(POINT(1 1),LINESTRING(0 0,1 1))'), "+
			"'192.168.0.1', '2001:db8::ff00:42:8329', '123e4567-e89b-12d3-a456-426655440000'), "+
			"(2, 127, 0, 32767, 0, 8388607, 0, 2147483647, 0, 9223372036854775807, 0, 0, 0, 1.17549435e-38, -9999.999, -1.7976931348623157e308, 0, "+
			"b'0', b'0', '2024-00-00', '2024-02-00 00:00:00', '0000-00-00 00:00:00.000', '1000-01-01 00:00:00.000001', '0000-00-00 00:00:00', NULL, "+
			"'00:00:00', '-00:00:00.000001', 0, '', '', '', '', '', '', '', '', '', '', '', '', 0x0000000000000000, '', '', '', '', '', '', '', '[]', "+
			"NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, '0.0.0.0', '::', '00000000-0000-0000-0000-000000000000'), "+
			"(3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, "+
			"NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, "+
			"NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL), "+
			"(4, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0.000000000000000000000000000001, 0.01, 0.1, 0.001, 0.1, 0.1, b'1', b'1000000000000000000000000000000000000000000000000000000000000001', "+
			"'1000-01-01', '1000-01-01 00:00:00', '1000-01-01 00:00:00.001', '2000-02-29 12:34:56.5', '1970-01-01 00:00:01', '2038-01-19 03:14:07.999999', "+
			"'-00:00:01', '-838:59:58.000001', 2155, 'a\\'b', 'a\\\\b', '\\n\\r\\t\\0', 'Z', 'ß', '', '', '', '\\Z', 'tab\\tx', '', '', 0xFF, 0x5C27, 0x0A, 0x0D, 0x1A, 0x00, '', '', 'null', "+
			"POINT(0, 0), POINT(0, -0), NULL, NULL, NULL, NULL, NULL, NULL, '255.255.255.255', '::ffff:1.2.3.4', 'ffffffff-ffff-ffff-ffff-ffffffffffff')",
		"CREATE TABLE wp_enums (id INT PRIMARY KEY, e ENUM('a','€','ü','','3') CHARSET utf8mb4, s SET('1','€','ß','x') CHARSET utf8mb4, "+
			"el ENUM('é','x') CHARSET latin1, sl SET('é','x') CHARSET latin1)",
		"INSERT INTO wp_enums VALUES (1, '€', '€,ß', 'é', 'é,x'), (2, '3', '1', 'x', ''), (3, '', '', NULL, NULL), (4, 'ü', 'x,1', 'é', 'é'), (5, 'nomember', 'nomember', 'nomember', 'é,nomember')",
		// Inet and UUID columns in a key too.
		"CREATE TABLE wp_ipkeys (ip INET6 NOT NULL PRIMARY KEY, ip4 INET4 NOT NULL, u UUID NOT NULL, UNIQUE KEY u (u))",
		"INSERT INTO wp_ipkeys VALUES ('::1', '127.0.0.1', UUID()), ('2001:db8::1', '10.0.0.1', UUID()), ('fe80::1', '10.0.0.2', '00000000-0000-0000-0000-000000000001'), "+
			"('1111:2222:3333:4444:5555:6666:7777:8888', '1.1.1.1', 'abcdefab-cdef-abcd-efab-cdefabcdefab')",
		"INSERT INTO wp_ipkeys SELECT CONCAT('2001:db8:1::', HEX(seq)), CONCAT('10.1.', seq DIV 256, '.', seq MOD 256), UUID() FROM seq_1_to_400",
	)
}

// TestEveryTypeRoundTrips backs up and restores a table with a column of
// every type, through both load paths (LOAD DATA and INSERT), and checks
// with CHECKSUM TABLE that every value came back.
func TestEveryTypeRoundTrips(t *testing.T) { eachDial(t, testEveryTypeRoundTrips) }

func testEveryTypeRoundTrips(t *testing.T, mode dialMode) {
	e := newEnvVia(t, mode)
	allTypes(e)
	e.exec("CREATE TABLE orig_alltypes LIKE wp_alltypes", "INSERT INTO orig_alltypes SELECT * FROM wp_alltypes",
		"CREATE TABLE orig_enums LIKE wp_enums", "INSERT INTO orig_enums SELECT * FROM wp_enums")
	want := e.checksums()
	creates := e.creates()
	id, rep := e.backup(BackupOptions{Prefix: "wp_", SegmentSize: 1 << 10})
	if len(rep.Tables) != 3 {
		t.Fatalf("backed up %+v, skipped %+v", rep.Tables, rep.Skipped)
	}
	// Key ranges over INET6 agree with the server's order: an unchanged
	// table's segments are all reused.
	_, rep2 := e.backup(BackupOptions{Prefix: "wp_", SegmentSize: 1 << 10, Previous: &id})
	for _, tr := range rep2.Tables {
		if tr.Written != 0 || tr.Reused != tr.Segments {
			t.Errorf("incremental of unchanged %s: %+v", tr.Name, tr)
		}
	}
	for _, localInfile := range []string{"ON", "OFF"} {
		e.exec("SET GLOBAL local_infile = " + localInfile)
		e.exec("DELETE FROM wp_alltypes", "DELETE FROM wp_ipkeys")
		e.restore(id, RestoreOptions{Prefix: "wp_"})
		sameSums(t, want, e.checksums())
		e.diffColumns(t, "wp_alltypes", "orig_alltypes")
		e.diffColumns(t, "wp_enums", "orig_enums")
		for n, c := range e.creates() {
			if creates[n] != c {
				t.Errorf("local_infile %s: table %s: definition\n%s\nwant\n%s", localInfile, n, c, creates[n])
			}
		}
		var ip, u string
		if err := e.root.QueryRow("SELECT CAST(i6 AS CHAR), CAST(u AS CHAR) FROM wp_alltypes WHERE id = 1").Scan(&ip, &u); err != nil {
			t.Fatalf("local_infile %s: %v", localInfile, err)
		}
		if ip != "2001:db8::ff00:42:8329" || u != "123e4567-e89b-12d3-a456-426655440000" {
			t.Errorf("local_infile %s: INET6 %q, UUID %q after restore", localInfile, ip, u)
		}
	}
	e.exec("SET GLOBAL local_infile = DEFAULT")
}

// TestRestoreRefusesChangedRows tampers with a stored segment's rows (a
// value the server turns into NULL with a warning) and expects the
// restore to fail before the swap, naming the table or column.
func TestRestoreRefusesLoadWarnings(t *testing.T) {
	e := newEnv(t)
	e.exec("CREATE TABLE wp_w (id INT PRIMARY KEY, n INT NOT NULL, s VARCHAR(3))",
		"INSERT INTO wp_w VALUES (1, 1, 'abc'), (2, 2, 'def')")
	id, _ := e.backup(BackupOptions{Prefix: "wp_"})
	m, err := LoadManifest(context.Background(), e.repo, id)
	if err != nil {
		t.Fatal(err)
	}
	want := e.checksum("wp_w")
	// A segment of different rows than the checksum says: a value too long.
	seg := segmentHeader + "INSERT INTO `wp_w` (`id`,`n`,`s`) VALUES (1,1,'abcdef'),(2,2,'def');\n" + segmentFooter
	ids, size, err := e.repo.SaveStream(context.Background(), strings.NewReader(seg))
	if err != nil {
		t.Fatal(err)
	}
	m.Table("wp_w").Segments[0].Content, m.Table("wp_w").Segments[0].Size = ids, size
	bad, err := m.Save(context.Background(), e.repo)
	if err != nil {
		t.Fatal(err)
	}
	e.repo.Flush(context.Background())
	e.exec("UPDATE wp_w SET s = 'zzz'")
	want = e.checksum("wp_w")
	for _, localInfile := range []string{"ON", "OFF"} {
		e.exec("SET GLOBAL local_infile = " + localInfile)
		_, err = Restore(context.Background(), e.cfg, e.repo, bad, RestoreOptions{Prefix: "wp_"})
		if err == nil || !strings.Contains(err.Error(), "wp_w") || !strings.Contains(err.Error(), "`s`") && !strings.Contains(err.Error(), "'s'") {
			t.Errorf("local_infile %s: restore of a truncating segment: %v", localInfile, err)
		}
		if got := e.checksum("wp_w"); got != want {
			t.Errorf("local_infile %s: live table changed by a failed restore", localInfile)
		}
	}
	e.exec("SET GLOBAL local_infile = DEFAULT")

	// Rows that load cleanly but differ from what was backed up.
	seg = segmentHeader + "INSERT INTO `wp_w` (`id`,`n`,`s`) VALUES (1,1,'abd'),(2,2,'def');\n" + segmentFooter
	ids, size, err = e.repo.SaveStream(context.Background(), strings.NewReader(seg))
	if err != nil {
		t.Fatal(err)
	}
	m.Table("wp_w").Segments[0].Content, m.Table("wp_w").Segments[0].Size = ids, size
	bad, err = m.Save(context.Background(), e.repo)
	if err != nil {
		t.Fatal(err)
	}
	e.repo.Flush(context.Background())
	_, err = Restore(context.Background(), e.cfg, e.repo, bad, RestoreOptions{Prefix: "wp_"})
	if !errors.Is(err, ErrChecksumMismatch) || !strings.Contains(err.Error(), "wp_w") {
		t.Errorf("restore of changed rows: %v, want ErrChecksumMismatch naming wp_w", err)
	}
	if got := e.checksum("wp_w"); got != want {
		t.Errorf("live table changed by a refused restore")
	}
}

// diffColumns names the columns whose values differ between two tables of
// the same definition, row by row (by id).
func (e *env) diffColumns(t *testing.T, a, b string) {
	t.Helper()
	rows, err := e.root.Query("SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION", a)
	if err != nil {
		t.Fatal(err)
	}
	var cols []string
	for rows.Next() {
		var c string
		rows.Scan(&c)
		cols = append(cols, c)
	}
	rows.Close()
	for _, c := range cols {
		q := "SELECT COUNT(*) FROM " + quoteIdent(a) + " x JOIN " + quoteIdent(b) + " y USING (id) WHERE NOT (x." + quoteIdent(c) + " <=> y." + quoteIdent(c) +
			") OR NOT (CAST(x." + quoteIdent(c) + " AS BINARY) <=> CAST(y." + quoteIdent(c) + " AS BINARY))"
		if n := e.count(q); n > 0 {
			var x, y sql.NullString
			e.root.QueryRow("SELECT HEX(x."+quoteIdent(c)+"), HEX(y."+quoteIdent(c)+") FROM "+quoteIdent(a)+" x JOIN "+quoteIdent(b)+" y USING (id) WHERE NOT (x."+quoteIdent(c)+" <=> y."+quoteIdent(c)+
				") OR NOT (CAST(x."+quoteIdent(c)+" AS BINARY) <=> CAST(y."+quoteIdent(c)+" AS BINARY)) LIMIT 1").Scan(&x, &y)
			t.Errorf("%s.%s differs from %s in %d rows (%s, want %s)", a, c, b, n, x.String, y.String)
		}
	}
}

// TestRestoreRefusesChangedSegment: one value changed in a middle segment
// of a table of many segments (loading cleanly) is found by the
// segment-by-segment check, and the swap is refused.
func TestRestoreRefusesChangedSegment(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.exec("CREATE TABLE wp_m (id INT PRIMARY KEY, v VARCHAR(20))", "INSERT INTO wp_m SELECT seq, CONCAT('val', seq) FROM seq_1_to_2000")
	id, rep := e.backup(BackupOptions{Prefix: "wp_", SegmentSize: 4 << 10})
	if rep.Tables[0].Segments < 5 {
		t.Fatalf("%d segments", rep.Tables[0].Segments)
	}
	m, err := LoadManifest(ctx, e.repo, id)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for i, s := range m.Table("wp_m").Segments {
		var b strings.Builder
		if err := e.repo.WriteContent(ctx, s.Content, &b); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(b.String(), "'val1000'") {
			continue
		}
		if i == 0 || i == len(m.Table("wp_m").Segments)-1 {
			t.Fatalf("value in segment %d, not a middle one", i)
		}
		ids, size, err := e.repo.SaveStream(ctx, strings.NewReader(strings.Replace(b.String(), "'val1000'", "'vax1000'", 1)))
		if err != nil {
			t.Fatal(err)
		}
		s.Content, s.Size, found = ids, size, true
	}
	if !found {
		t.Fatal("no segment holds val1000")
	}
	bad, err := m.Save(ctx, e.repo)
	if err != nil {
		t.Fatal(err)
	}
	e.repo.Flush(ctx)
	e.exec("UPDATE wp_m SET v = 'live'")
	want := e.checksum("wp_m")
	_, err = Restore(ctx, e.cfg, e.repo, bad, RestoreOptions{Prefix: "wp_"})
	if !errors.Is(err, ErrChecksumMismatch) || !strings.Contains(err.Error(), "wp_m") {
		t.Errorf("restore of a changed segment: %v, want ErrChecksumMismatch naming wp_m", err)
	}
	if e.checksum("wp_m") != want || len(e.tempTables()) != 0 {
		t.Errorf("a refused restore changed the live table or left temporary tables %v", e.tempTables())
	}
	e.restore(id, RestoreOptions{Prefix: "wp_"})
	if n := e.count("SELECT COUNT(*) FROM wp_m WHERE v = CONCAT('val', id)"); n != 2000 {
		t.Errorf("untampered restore: %d rows as backed up", n)
	}
}
