package mysql

import (
	"strings"
	"testing"

	"github.com/sitevault/sitevault/internal/repository"
)

// hintTables creates WordPress-like posts, postmeta and options tables.
func hintTables(e *env) {
	e.tb.Helper()
	postmeta(e, "wp_postmeta", 40000)
	e.exec(
		"CREATE TABLE wp_posts (ID BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, post_title TEXT NOT NULL, post_status VARCHAR(20) NOT NULL DEFAULT 'publish') ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
		"INSERT INTO wp_posts SELECT seq, CONCAT('Post ', seq, ' ', REPEAT('t', seq MOD 70)), 'publish' FROM seq_1_to_5000",
		"CREATE TABLE wp_options (option_id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, option_name VARCHAR(191) NOT NULL DEFAULT '', option_value LONGTEXT NOT NULL, UNIQUE KEY option_name (option_name)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_520_ci",
		"INSERT INTO wp_options SELECT seq, CONCAT('option_', seq), REPEAT('v', seq MOD 90) FROM seq_1_to_3000",
	)
}

// hintStep backs up the same changes twice from the previous point, with
// and without hints, and checks that each restores exactly the tables as
// they are now; it returns the reports, with hints first.
func hintStep(t *testing.T, e *env, opts BackupOptions, prev repository.ID, hints []Hint) (*BackupReport, *BackupReport, repository.ID) {
	t.Helper()
	want := e.checksums()
	o := opts
	o.Previous = &prev
	o.Hints = hints
	withID, with := e.backup(o)
	o.Hints = nil
	withoutID, without := e.backup(o)
	for _, id := range []repository.ID{withoutID, withID} {
		e.exec("UPDATE wp_posts SET post_title = 'damaged' WHERE ID % 3 = 0", "DELETE FROM wp_postmeta WHERE meta_id % 5 = 0")
		e.restore(id, RestoreOptions{Prefix: "wp_", Parallel: 2})
		sameSums(t, want, e.checksums())
	}
	return with, without, withID
}

// Hints that explain a change exactly bring changed segments up to date
// reading only the hinted rows; the result restores exactly.
func TestHintExplains(t *testing.T) {
	e := newEnv(t)
	hintTables(e)
	opts := BackupOptions{Prefix: "wp_", SegmentSize: 24 << 10}
	id, _ := e.backup(opts)

	e.exec(
		"UPDATE wp_posts SET post_title = 'edited', post_status = 'draft' WHERE ID IN (17, 2500, 4999)",
		"DELETE FROM wp_posts WHERE ID = 1200",
		"UPDATE wp_postmeta SET meta_value = 'new value' WHERE meta_id IN (100, 30001)",
		"INSERT INTO wp_postmeta (meta_id, post_id, meta_key, meta_value) VALUES (20000000, 1000, 'added', 'x')", // past the end: a new segment
		"DELETE FROM wp_postmeta WHERE meta_id = 8005",
		"UPDATE wp_postmeta SET meta_value = 'by post' WHERE post_id = 2000",
		"UPDATE wp_options SET option_value = 'changed' WHERE option_name IN ('option_5', 'option_2900')",
	)
	hints := []Hint{
		{Table: "wp_posts", Values: []string{"17", "2500", "4999", "1200"}},
		{Table: "wp_postmeta", Values: []string{"100", "30001", "8005", "20000000"}},
		{Table: "wp_postmeta", Column: "post_id", Values: []string{"2000"}},
		{Table: "wp_options", Column: "option_name", Values: []string{"option_5", "option_2900"}},
		{Table: "wp_options", Column: "option_name", Values: []string{"option_5"}}, // a repeat
	}
	with, without, _ := hintStep(t, e, opts, id, hints)
	if len(with.HintsIgnored) != 0 {
		t.Errorf("hints ignored: %q", with.HintsIgnored)
	}
	for _, name := range []string{"wp_posts", "wp_postmeta", "wp_options"} {
		w, wo := tableReport(with, name), tableReport(without, name)
		t.Logf("%s: with hints %d segments patched (%d from hints), %d rows hashed; without %d patched, %d rows hashed",
			name, w.Patched, w.Hinted, w.RowsHashed, wo.Patched, wo.RowsHashed)
		if w.Hinted == 0 || w.Hinted != w.Patched || w.HintsMissed != 0 || w.Reread != 0 {
			t.Errorf("%s: %d of %d patched segments from hints, %d missed, %d re-read; want all from hints", name, w.Hinted, w.Patched, w.HintsMissed, w.Reread)
		}
		if w.RowsChanged != wo.RowsChanged {
			t.Errorf("%s: %d rows stored with hints, %d without", name, w.RowsChanged, wo.RowsChanged)
		}
		if w.RowsHashed > 20 || wo.RowsHashed < int64(wo.Patched)*100 {
			t.Errorf("%s: %d rows hashed with hints, %d without; want a few, and every row of the changed segments", name, w.RowsHashed, wo.RowsHashed)
		}
	}
}

// A hint that is wrong or incomplete (a write that bypassed WordPress's
// hooks, a row deleted that a column hint cannot name) leaves the change
// unexplained: the segment is looked at row by row, and the backup is
// exact.
func TestHintIncomplete(t *testing.T) {
	e := newEnv(t)
	hintTables(e)
	opts := BackupOptions{Prefix: "wp_", SegmentSize: 24 << 10}
	id, _ := e.backup(opts)

	e.exec(
		"UPDATE wp_posts SET post_title = 'hinted' WHERE ID = 300",
		"UPDATE wp_posts SET post_title = 'bypassed hooks' WHERE ID = 310", // same segment, no hint
		"UPDATE wp_posts SET post_title = 'elsewhere' WHERE ID = 4000",     // no hint at all
		"DELETE FROM wp_postmeta WHERE post_id = 1500 AND meta_id % 2 = 0", // a column hint finds no deleted row
		"UPDATE wp_options SET option_value = 'quiet' WHERE option_id = 10",
	)
	hints := []Hint{
		{Table: "wp_posts", Values: []string{"300", "301"}}, // 301 did not change
		{Table: "wp_postmeta", Column: "post_id", Values: []string{"1500"}},
		{Table: "wp_options", Column: "option_name", Values: []string{"option_11"}}, // the wrong option
	}
	with, without, _ := hintStep(t, e, opts, id, hints)
	for _, name := range []string{"wp_posts", "wp_postmeta", "wp_options"} {
		w, wo := tableReport(with, name), tableReport(without, name)
		if w.Hinted != 0 || w.HintsMissed != w.Patched+w.Reread || w.HintsMissed == 0 {
			t.Errorf("%s: %d segments from hints, %d missed, %d patched; want none from hints, all missed", name, w.Hinted, w.HintsMissed, w.Patched)
		}
		if w.RowsChanged != wo.RowsChanged || w.Patched != wo.Patched {
			t.Errorf("%s: with hints %d segments patched, %d rows; without %d, %d", name, w.Patched, w.RowsChanged, wo.Patched, wo.RowsChanged)
		}
	}
}

// Hostile hints are ignored, with a note, and do no harm: the backup is
// exact and nothing but the hinted rows is touched.
func TestHintHostile(t *testing.T) {
	e := newEnv(t)
	hintTables(e)
	e.exec("CREATE TABLE other_secrets (id INT PRIMARY KEY, v TEXT)", "INSERT INTO other_secrets VALUES (1, 'secret')")
	opts := BackupOptions{Prefix: "wp_", SegmentSize: 24 << 10}
	id, _ := e.backup(opts)

	e.exec("UPDATE wp_posts SET post_title = 'edited' WHERE ID = 42",
		"UPDATE wp_options SET option_value = 'changed' WHERE option_name = 'option_7'")
	huge := make([]string, MaxHintValues+1)
	for i := range huge {
		huge[i] = itoa(i + 1)
	}
	hints := []Hint{
		{Table: "other_secrets", Values: []string{"1"}},
		{Table: "wp_nope", Values: []string{"1"}},
		{Table: "wp_posts`; DROP TABLE wp_posts; --", Values: []string{"1"}},
		{Table: "wp_posts", Values: []string{"1 OR 1=1", "042", "-0", "99999999999999999999999", "", "4.2", "0x2A"}},
		{Table: "wp_posts", Column: "nope", Values: []string{"42"}},
		{Table: "wp_posts", Column: "post_title", Values: []string{"\xff\xfe"}},
		{Table: "wp_options", Column: "option_name", Values: []string{"x') OR 1=1; DROP TABLE wp_options; -- ", strings.Repeat("a", 5000)}},
		{Table: "wp_postmeta", Values: huge},
		{Table: "wp_posts", Values: []string{"42"}},
		{Table: "wp_options", Column: "option_name", Values: []string{"option_7"}},
	}
	with, _, _ := hintStep(t, e, opts, id, hints)
	t.Logf("ignored: %q", with.HintsIgnored)
	for _, want := range []string{`"other_secrets"`, `"wp_nope"`, `"1 OR 1=1"`, `"042"`, `"-0"`, `"99999999999999999999999"`, `"4.2"`, `no column "nope"`, "wp_postmeta ignored: more than"} {
		found := false
		for _, n := range with.HintsIgnored {
			found = found || strings.Contains(n, want)
		}
		if !found {
			t.Errorf("no note for %s in %q", want, with.HintsIgnored)
		}
	}
	if len(with.HintsIgnored) > maxHintNotes {
		t.Errorf("%d notes, more than %d", len(with.HintsIgnored), maxHintNotes)
	}
	if got := e.count("SELECT COUNT(*) FROM other_secrets"); got != 1 {
		t.Errorf("other_secrets has %d rows", got)
	}
	// The valid hints among them still work; the hostile text value is
	// looked for, as text, and finds nothing.
	if tr := tableReport(with, "wp_posts"); tr.Hinted != 1 {
		t.Errorf("wp_posts: %d segments from hints, want 1", tr.Hinted)
	}
	if tr := tableReport(with, "wp_options"); tr.Hinted != 1 {
		t.Errorf("wp_options: %d segments from hints, want 1", tr.Hinted)
	}

	// Too many tables: all hints ignored.
	many := make([]Hint, 0, MaxHintTables+1)
	for i := range MaxHintTables + 1 {
		name := "wp_t" + itoa(i)
		e.exec("CREATE TABLE " + name + " (id INT PRIMARY KEY)")
		many = append(many, Hint{Table: name, Values: []string{"1"}})
	}
	id2, _ := e.backup(opts)
	e.exec("UPDATE wp_posts SET post_title = 'again' WHERE ID = 42")
	o := opts
	o.Previous, o.Hints = &id2, append(many, Hint{Table: "wp_posts", Values: []string{"42"}})
	_, rep := e.backup(o)
	if tr := tableReport(rep, "wp_posts"); tr.Hinted != 0 || tr.Patched != 1 {
		t.Errorf("too many tables hinted: wp_posts %d from hints, %d patched; want 0, 1", tr.Hinted, tr.Patched)
	}
	if len(rep.HintsIgnored) == 0 || !strings.Contains(rep.HintsIgnored[len(rep.HintsIgnored)-1], "tables, more than") {
		t.Errorf("notes %q", rep.HintsIgnored)
	}
}

// A text key is hinted in the column's collation: a hint in other letter
// case names the same row, and a deleted row is found in the index.
func TestHintTextKey(t *testing.T) {
	e := newEnv(t)
	e.exec(
		"CREATE TABLE wp_tk (k VARCHAR(64) NOT NULL PRIMARY KEY, v TEXT NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci",
		"INSERT INTO wp_tk SELECT CONCAT('key', LPAD(seq, 6, '0')), REPEAT('é', seq MOD 40) FROM seq_1_to_6000",
	)
	opts := BackupOptions{Prefix: "wp_", SegmentSize: 24 << 10}
	id, _ := e.backup(opts)
	e.exec("UPDATE wp_tk SET v = 'changed' WHERE k IN ('key000100', 'key004000')", "DELETE FROM wp_tk WHERE k = 'key002000'")
	want := e.checksums()
	o := opts
	o.Previous = &id
	o.Hints = []Hint{{Table: "wp_tk", Values: []string{"KEY000100", "key004000", "key002000"}}}
	id2, rep := e.backup(o)
	tr := tableReport(rep, "wp_tk")
	if tr.Hinted != 3 || tr.HintsMissed != 0 || tr.RowsHashed != 2 {
		t.Errorf("wp_tk: %d segments from hints, %d missed, %d rows hashed; want 3, 0, 2", tr.Hinted, tr.HintsMissed, tr.RowsHashed)
	}
	e.exec("DELETE FROM wp_tk WHERE k < 'key003'")
	e.restore(id2, RestoreOptions{Prefix: "wp_", Parallel: 2})
	sameSums(t, want, e.checksums())
}
