package mysql

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/sitevault/sitevault/internal/repository"
)

// point is one backup of the delta tests and the tables it holds.
type point struct {
	id   repository.ID
	sums map[string]string
	name string
}

// deltaTables creates a table with an integer key and one with a
// composite key whose first column is case-insensitive text.
func deltaTables(e *env) {
	e.exec(
		"CREATE TABLE wp_dl (id INT NOT NULL PRIMARY KEY, v VARCHAR(200) NULL, n INT NOT NULL, KEY n (n)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
		"INSERT INTO wp_dl SELECT seq, CONCAT('value ', seq, ' ', REPEAT('x', seq MOD 50)), seq MOD 13 FROM seq_1_to_20000",
		"CREATE TABLE wp_ck (a VARCHAR(40) NOT NULL, b INT NOT NULL, v TEXT NULL, PRIMARY KEY (a, b)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci",
		"INSERT INTO wp_ck SELECT CONCAT('key', seq DIV 10), seq MOD 10, IF(seq MOD 7 = 0, NULL, REPEAT('é', seq MOD 30)) FROM seq_1_to_8000",
		"CREATE TABLE wp_none (id INT PRIMARY KEY)",
	)
}

func tableReport(rep *BackupReport, name string) TableReport {
	for _, tr := range rep.Tables {
		if tr.Name == name {
			return tr
		}
	}
	return TableReport{}
}

// Every path of a row-level incremental round-trips exactly: scattered
// updates, rows deleted and re-inserted with the same key, keys changed by
// UPDATE (also only in letter case), deletes only, many deltas folded
// into new bases, a table truncated and refilled, a changed definition;
// and each older restore point still restores as it was.
func TestDeltaPaths(t *testing.T) {
	e := newEnv(t)
	deltaTables(e)
	opts := BackupOptions{Prefix: "wp_", SegmentSize: 24 << 10}
	id, full := e.backup(opts)
	points := []point{{id, e.checksums(), "full"}}
	if tr := tableReport(full, "wp_dl"); tr.Segments < 2*probeSegments {
		t.Fatalf("wp_dl: %d segments, want several", tr.Segments)
	}
	step := func(name string, check func(dl, ck TableReport), stmts ...string) {
		t.Helper()
		e.exec(stmts...)
		o := opts
		o.Previous = &points[len(points)-1].id
		id, rep := e.backup(o)
		points = append(points, point{id, e.checksums(), name})
		check(tableReport(rep, "wp_dl"), tableReport(rep, "wp_ck"))
	}
	patched := func(dl, _ TableReport) {
		t.Helper()
		if dl.Patched == 0 || dl.Reread != 0 || dl.Full {
			t.Errorf("wp_dl: %d patched, %d re-read whole, full %v; want only patched", dl.Patched, dl.Reread, dl.Full)
		}
	}
	step("scattered updates", func(dl, ck TableReport) {
		patched(dl, ck)
		if !dl.Scanned || ck.Scanned {
			t.Errorf("scanned: wp_dl %v, wp_ck %v; want only wp_dl (its probed segments all changed)", dl.Scanned, ck.Scanned)
		}
		// The last segment may be too short to hold a changed row.
		if dl.Patched < dl.Segments-1 || dl.Patched+dl.Reused != dl.Segments || dl.RowsChanged != 200 {
			t.Errorf("wp_dl: %d of %d segments patched, %d reused, %d rows changed; want all (but the last), 200", dl.Patched, dl.Segments, dl.Reused, dl.RowsChanged)
		}
		if ck.Reused != ck.Segments {
			t.Errorf("wp_ck unchanged, but %d of %d segments reused", ck.Reused, ck.Segments)
		}
	}, "UPDATE wp_dl SET v = CONCAT('changed ', id) WHERE id % 100 = 7")
	step("deleted and re-inserted", patched,
		"DELETE FROM wp_dl WHERE id % 97 = 1",
		"INSERT INTO wp_dl SELECT seq, 'again', 1 FROM seq_1_to_20000 WHERE seq % 97 = 1")
	step("re-inserted alike", func(dl, _ TableReport) {
		if dl.Reused != dl.Segments {
			t.Errorf("rows deleted and re-inserted as they were: %d of %d segments reused", dl.Reused, dl.Segments)
		}
	}, "CREATE TABLE x_copy AS SELECT * FROM wp_dl WHERE id % 89 = 3",
		"DELETE FROM wp_dl WHERE id % 89 = 3",
		"INSERT INTO wp_dl SELECT * FROM x_copy", "DROP TABLE x_copy")
	step("keys changed", func(dl, ck TableReport) {
		patched(dl, ck)
		if ck.Patched == 0 || ck.Reread != 0 {
			t.Errorf("wp_ck: %d patched, %d re-read whole", ck.Patched, ck.Reread)
		}
	}, "UPDATE wp_dl SET id = id + 1000000 WHERE id % 101 = 5",
		"UPDATE wp_dl SET id = -id WHERE id % 1009 = 6",
		"UPDATE wp_ck SET a = UPPER(a) WHERE b = 3",
		"UPDATE wp_ck SET b = b + 100 WHERE b = 4 AND a LIKE 'key1%'")
	step("deletes only", patched, "DELETE FROM wp_dl WHERE id % 107 = 9")
	// After a backup that found few segments changed, checksums come first.
	oneRow := func(dl, _ TableReport) {
		t.Helper()
		if dl.Patched != 1 || dl.Reused != dl.Segments-1 {
			t.Errorf("one row changed: %d patched, %d of %d reused", dl.Patched, dl.Reused, dl.Segments)
		}
	}
	step("one row", func(dl, ck TableReport) {
		oneRow(dl, ck)
		if !dl.Scanned {
			t.Errorf("after scattered changes, not scanned")
		}
	}, "UPDATE wp_dl SET v = 'one' WHERE id = 5000")
	step("one row again", func(dl, ck TableReport) {
		oneRow(dl, ck)
		if dl.Scanned {
			t.Errorf("after one change, scanned")
		}
	}, "UPDATE wp_dl SET v = 'one again' WHERE id = 12000")
	// Many small changes: the deltas pile up until they are folded.
	compacted := false
	for i := range 20 {
		step("small change", func(dl, _ TableReport) {
			if dl.Reread > 0 {
				compacted = true
			}
		}, "UPDATE wp_dl SET n = n + 1 WHERE id % 211 = "+itoa(i))
	}
	if !compacted {
		t.Errorf("20 backups with deltas never read a segment again whole")
	}
	m, err := LoadManifest(context.Background(), e.repo, points[len(points)-1].id)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range m.Table("wp_dl").Segments {
		if len(s.Deltas) > maxDeltas {
			t.Errorf("a segment has %d deltas, more than %d", len(s.Deltas), maxDeltas)
		}
	}
	step("truncated and refilled", func(dl, _ TableReport) {
		// Segments past the 15,000 rows now hold none: they only drop rows.
		if dl.Reread < dl.Segments/2 || dl.RowsChanged > 100 {
			t.Errorf("refilled table: %d of %d segments re-read whole, %d rows read by key; want the refilled ones whole", dl.Reread, dl.Segments, dl.RowsChanged)
		}
	}, "TRUNCATE wp_dl", "INSERT INTO wp_dl SELECT seq, 'refilled', 2 FROM seq_1_to_15000")
	// (A segment whose deltas are due is read whole.)
	step("scattered again", func(dl, _ TableReport) {
		if dl.Patched < dl.Segments/2 || dl.Reread > 3 {
			t.Errorf("wp_dl: %d of %d segments patched, %d re-read whole", dl.Patched, dl.Segments, dl.Reread)
		}
	}, "UPDATE wp_dl SET v = 'scattered' WHERE id % 50 = 0")
	step("definition changed", func(dl, _ TableReport) {
		if !dl.Full {
			t.Errorf("changed definition: not read whole")
		}
	}, "ALTER TABLE wp_dl ADD COLUMN extra INT NOT NULL DEFAULT 3")
	step("scattered after the change", patched, "UPDATE wp_dl SET extra = 4 WHERE id % 77 = 0")

	// Every point restores exactly, the newest first (the live tables
	// wrecked before each), then every other one.
	wreck := []string{"DELETE FROM wp_dl WHERE id % 3 = 0", "UPDATE wp_ck SET v = 'wrecked'"}
	for i := len(points) - 1; i >= 0; i -= 1 + i%3 {
		p := points[i]
		e.exec(wreck...)
		e.restore(p.id, RestoreOptions{Prefix: "wp_", Parallel: 2})
		for _, tb := range []string{"wp_dl", "wp_ck"} {
			if got := e.checksum(tb); got != p.sums[tb] {
				t.Errorf("point %d (%s): %s CHECKSUM %s after restore, want %s", i, p.name, tb, got, p.sums[tb])
			}
		}
	}
	// A mysql client loads the merged segments of a point with deltas.
	p := points[len(points)-1]
	m, err = LoadManifest(context.Background(), e.repo, p.id)
	if err != nil {
		t.Fatal(err)
	}
	if dl := m.Table("wp_dl"); len(dl.Segments[0].Deltas) == 0 {
		t.Fatalf("the last point's wp_dl has no deltas")
	}
	loadWithClient(t, e, m, p.sums, "wp_dl", "wp_ck")
}

// Scattered changes to 1 % of a table's rows store a small share of it.
func TestDeltaScatteredStoresLittle(t *testing.T) {
	e := newEnv(t)
	postmeta(e, "wp_postmeta", 200_000)
	packs0 := e.packBytes()
	id, _ := e.backup(BackupOptions{Prefix: "wp_"})
	packs1 := e.packBytes()
	e.exec("UPDATE wp_postmeta SET meta_value = CONCAT('stock ', meta_id) WHERE meta_id % 100 = 42")
	want := e.checksums()
	id2, rep := e.backup(BackupOptions{Prefix: "wp_", Previous: &id})
	packs2 := e.packBytes()
	tr := tableReport(rep, "wp_postmeta")
	t.Logf("full %d bytes of packs, incremental %d; %d of %d segments patched, %d rows", packs1-packs0, packs2-packs1, tr.Patched, tr.Segments, tr.RowsChanged)
	if tr.Patched != tr.Segments || tr.RowsChanged != 2000 {
		t.Errorf("%d of %d segments patched, %d rows changed; want all, 2000", tr.Patched, tr.Segments, tr.RowsChanged)
	}
	if packs2-packs1 > (packs1-packs0)/20 {
		t.Errorf("the incremental stored %d bytes, more than 5%% of the full backup's %d", packs2-packs1, packs1-packs0)
	}
	e.exec("DELETE FROM wp_postmeta WHERE meta_id % 7 = 0")
	e.restore(id2, RestoreOptions{Prefix: "wp_", Parallel: 2})
	sameSums(t, want, e.checksums())
}

// A delta's index is hostile input: rows it drops must exist, its counts
// must match the stream, and a merged segment holds only the table's own
// statements.
func TestSegmentSQLRefusesDamage(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.exec("CREATE TABLE wp_h (id INT PRIMARY KEY, v TEXT)", "INSERT INTO wp_h SELECT seq, 'v' FROM seq_1_to_100")
	id, _ := e.backup(BackupOptions{Prefix: "wp_"})
	m, err := LoadManifest(ctx, e.repo, id)
	if err != nil {
		t.Fatal(err)
	}
	tm := m.Table("wp_h")
	base := tm.Segments[0]
	save := func(x *rowIndex, sqlText string) *Delta {
		ids, size, err := saveIndex(ctx, e.repo, x)
		if err != nil {
			t.Fatal(err)
		}
		c, n, err := e.repo.SaveStream(ctx, strings.NewReader(sqlText))
		if err != nil {
			t.Fatal(err)
		}
		if err := e.repo.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		return &Delta{Rows: int64(len(x.keys)), Size: n, Content: c, Index: ids, IndexSize: size}
	}
	head := insertHeadNames("wp_h", tm.Columns)
	for name, dl := range map[string]*Delta{
		"drops a row that is not there": save(&rowIndex{drops: []rowRef{{0, 100}}}, ""),
		"drops a row of its own stream": save(&rowIndex{keys: []string{"\x011"}, hashes: []uint32{1}, drops: []rowRef{{1, 0}}}, head+"(1,'x');\n"),
		"more rows than its index":      save(&rowIndex{keys: []string{"\x011"}, hashes: []uint32{1}}, head+"(1,'x'),(2,'y');\n"),
		"another table's rows":          save(&rowIndex{keys: []string{"\x011"}, hashes: []uint32{1}}, insertHeadNames("wp_other", tm.Columns)+"(1,'x');\n"),
		"a statement hidden in a row":   save(&rowIndex{keys: []string{"\x011"}, hashes: []uint32{1}}, head+"(1,'x'); DROP TABLE wp_h; ('y');\n"),
	} {
		s := *base
		s.Deltas = []*Delta{dl}
		err := SegmentSQL(ctx, e.repo, tm, &s, &bytes.Buffer{})
		if !errors.Is(err, repository.ErrDamaged) {
			t.Errorf("%s: %v, want ErrDamaged", name, err)
		}
	}
	// Indexes round-trip, integer keys (written as differences) or not;
	// a damaged one is refused, not read past its end.
	key := func(vs ...string) string {
		var k [][]byte
		for _, v := range vs {
			k = append(k, []byte(v))
		}
		return string(appendRowKey(nil, k))
	}
	for _, keys := range [][]string{
		{key("a"), key("b")},
		{key("10"), key("11"), key("-5"), key("9223372036854775807"), key("0")},
		{key("10"), key("011")}, // not canonical: kept as bytes
		{key("1", "2"), key("1", "3")},
	} {
		x := &rowIndex{keys: keys, drops: []rowRef{{0, 1}}}
		for i := range keys {
			x.hashes = append(x.hashes, uint32(1000+i))
		}
		enc := x.encode()
		for i := range len(enc) - 1 {
			if _, err := decodeRowIndex(enc[:i]); err == nil {
				t.Errorf("%q: index cut at %d of %d bytes decoded", keys, i, len(enc))
			}
		}
		got, err := decodeRowIndex(enc)
		if err != nil || strings.Join(got.keys, "|") != strings.Join(keys, "|") || len(got.hashes) != len(keys) || got.hashes[len(keys)-1] != uint32(999+len(keys)) || got.drops[0] != (rowRef{0, 1}) {
			t.Errorf("%q: decoded %+v, %v", keys, got, err)
		}
	}
}

func TestSplitRows(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{`(1,'a')`, []string{`(1,'a')`}},
		{`(1,'a,b)'),(2,NULL),(3,0x00FF,b'0101')`, []string{`(1,'a,b)')`, `(2,NULL)`, `(3,0x00FF,b'0101')`}},
		{`('it\'s (x)','\\'),(-1.5e10,'')`, []string{`('it\'s (x)','\\')`, `(-1.5e10,'')`}},
	} {
		var got []string
		if err := splitRows([]byte(tc.in), func(r []byte) { got = append(got, string(r)) }); err != nil {
			t.Errorf("%s: %v", tc.in, err)
			continue
		}
		if strings.Join(got, "|") != strings.Join(tc.want, "|") {
			t.Errorf("%s: %q, want %q", tc.in, got, tc.want)
		}
	}
	for _, bad := range []string{``, `(1`, `(1,'a)`, `(1)x`, `(1),`, `(1)(2)`, `(1); DROP TABLE t; (2)`, `((1))`} {
		if err := splitRows([]byte(bad), func([]byte) {}); err == nil {
			t.Errorf("%q split without error", bad)
		}
	}
}
