package mysql

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/sitevault/sitevault/internal/backend"
)

// postmeta creates a WordPress postmeta-like table of n rows, server-side.
func postmeta(e *env, name string, n int) {
	e.tb.Helper()
	e.exec(
		"CREATE TABLE "+name+" (meta_id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, post_id BIGINT UNSIGNED NOT NULL DEFAULT 0, "+
			"meta_key VARCHAR(255) NULL, meta_value LONGTEXT NULL, KEY post_id (post_id), KEY meta_key (meta_key(191))) "+
			"ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_520_ci",
		"INSERT INTO "+name+" (meta_id, post_id, meta_key, meta_value) SELECT seq, seq DIV 8, CONCAT('_meta_key_', seq MOD 40), "+
			"IF(seq MOD 5 = 0, NULL, CONCAT(MD5(seq), ' ', REPEAT('ü', seq MOD 60))) FROM seq_1_to_"+itoa(n),
	)
}

// packBytes is the size of the repository's pack files.
func (e *env) packBytes() int64 {
	e.tb.Helper()
	var n int64
	err := e.repo.Backend().List(context.Background(), backend.PackFile, func(fi backend.FileInfo) error {
		n += fi.Size
		return nil
	})
	if err != nil {
		e.tb.Fatal(err)
	}
	return n
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestIncrementalMillionRows(t *testing.T) {
	if testing.Short() {
		t.Skip("1M rows")
	}
	e := newEnv(t)
	start := time.Now()
	postmeta(e, "wp_postmeta", 1_000_000)
	e.exec("CREATE TABLE wp_options (option_id INT PRIMARY KEY, v TEXT)", "INSERT INTO wp_options SELECT seq, 'x' FROM seq_1_to_100",
		"CREATE TABLE wp_gone (id INT PRIMARY KEY)", "INSERT INTO wp_gone VALUES (1)")
	t.Logf("generated in %v", time.Since(start))

	packs0 := e.packBytes()
	start = time.Now()
	id1, full := e.backup(BackupOptions{Prefix: "wp_"})
	packs1 := e.packBytes()
	fullTime := time.Since(start)
	total1, _, _, written1 := full.Segments()
	t.Logf("full: %v, %d segments, %d bytes", fullTime, total1, full.BytesWritten)
	if written1 != total1 || total1 < 20 {
		t.Fatalf("full backup wrote %d of %d segments", written1, total1)
	}

	// 1% of the rows change, in one region (recent posts): updates, deletes,
	// inserts between existing keys and past the end; a table is dropped
	// and another one's definition changes.
	e.exec(
		"UPDATE wp_postmeta SET meta_value = CONCAT('changed ', meta_id) WHERE meta_id BETWEEN 600001 AND 609000",
		"DELETE FROM wp_postmeta WHERE meta_id BETWEEN 609001 AND 609500",
		"INSERT INTO wp_postmeta SELECT seq, 1, 'new', 'past the end' FROM seq_1000001_to_1000500",
		"DROP TABLE wp_gone",
		"ALTER TABLE wp_options ADD COLUMN extra INT NOT NULL DEFAULT 7",
	)
	want := e.checksums()
	start = time.Now()
	id2, inc := e.backup(BackupOptions{Prefix: "wp_", Previous: &id1})
	incTime := time.Since(start)
	packs2 := e.packBytes()
	t.Logf("repository: full backup added %d bytes of packs, the incremental %d", packs1-packs0, packs2-packs1)
	if packs2-packs1 > (packs1-packs0)/20 {
		t.Errorf("incremental stored %d bytes, more than 5%% of the full backup's %d", packs2-packs1, packs1-packs0)
	}
	total2, reused, reread, written2 := inc.Segments()
	t.Logf("incremental: %v, %d segments, %d reused, %d re-read, %d written, %d bytes", incTime, total2, reused, reread, written2, inc.BytesWritten)
	var pm, opts TableReport
	for _, tr := range inc.Tables {
		switch tr.Name {
		case "wp_postmeta":
			pm = tr
		case "wp_options":
			opts = tr
		case "wp_gone":
			t.Errorf("dropped table still backed up")
		}
	}
	// ~9,500 changed rows of ~140 bytes sit in one or two 4 MiB segments;
	// a boundary may split them over a third.
	if n := pm.Reread + pm.Patched; n < 1 || n > 3 {
		t.Errorf("wp_postmeta: %d segments re-read or patched, want 1..3", n)
	}
	if pm.Reused < pm.Segments-5 {
		t.Errorf("wp_postmeta: only %d of %d segments reused", pm.Reused, pm.Segments)
	}
	if inc.BytesWritten > full.BytesWritten/20 {
		t.Errorf("incremental wrote %d bytes, more than 5%% of the full %d", inc.BytesWritten, full.BytesWritten)
	}
	if !opts.Full {
		t.Errorf("wp_options changed definition but was not read in full")
	}

	// Restoring the incremental gives exactly the current tables; restoring
	// the full one gives back the first state (wp_gone included).
	e.exec("DELETE FROM wp_postmeta WHERE meta_id MOD 100 = 0")
	start = time.Now()
	e.restore(id2, RestoreOptions{Prefix: "wp_", Parallel: 2})
	t.Logf("restore: %v", time.Since(start))
	sameSums(t, want, e.checksums())
	if tmp := e.tempTables(); len(tmp) > 0 {
		t.Errorf("temporary tables left: %v", tmp)
	}
}

// Rows changed in the same way (which cancel out in an XOR of plain CRC32s)
// still change their segment's checksum.
func TestIncrementalSeesAlikeChanges(t *testing.T) { eachDial(t, testIncrementalSeesAlikeChanges) }

func testIncrementalSeesAlikeChanges(t *testing.T, mode dialMode) {
	e := newEnvVia(t, mode)
	e.exec("CREATE TABLE wp_acc (id INT PRIMARY KEY, amount INT NOT NULL)",
		"INSERT INTO wp_acc SELECT seq, 1000 FROM seq_1_to_1000")
	id, _ := e.backup(BackupOptions{Prefix: "wp_"})
	for _, q := range []string{
		"UPDATE wp_acc SET amount = amount - 1 WHERE id IN (1, 2)",
		"UPDATE wp_acc SET amount = amount + 1 WHERE id IN (11, 12, 13, 14)",
		"UPDATE wp_acc SET amount = 998 WHERE id IN (21, 23)",
	} {
		e.exec(q)
		want := e.checksum("wp_acc")
		next, rep := e.backup(BackupOptions{Prefix: "wp_", Previous: &id})
		if n := changedSegments(rep); n != 1 {
			t.Errorf("%s: %d segments re-read or patched, want 1", q, n)
		}
		id = next
		e.exec("DELETE FROM wp_acc")
		e.restore(id, RestoreOptions{Prefix: "wp_"})
		if got := e.checksum("wp_acc"); got != want {
			t.Errorf("%s: CHECKSUM %s after restore, want %s", q, got, want)
		}
	}
}

// changedSegments counts the segments a backup read again, whole or row by
// row.
func changedSegments(rep *BackupReport) int {
	n := 0
	for _, tr := range rep.Tables {
		n += tr.Reread + tr.Patched
	}
	return n
}
