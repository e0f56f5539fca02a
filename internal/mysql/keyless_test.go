package mysql

import (
	"context"
	"errors"
	"slices"
	"testing"
)

// TestKeylessTablesBackedUpWhole: a prefixed table without a primary or
// unique key (duplicate rows and all) is backed up whole and comes back
// exactly; it is reported as such and reused only when unchanged.
func TestKeylessTablesBackedUpWhole(t *testing.T) { eachDial(t, testKeylessTablesBackedUpWhole) }

func testKeylessTablesBackedUpWhole(t *testing.T, mode dialMode) {
	e := newEnvVia(t, mode)
	e.exec("CREATE TABLE wp_nokey (a INT, b TEXT, KEY a (a))",
		"INSERT INTO wp_nokey SELECT seq MOD 10, REPEAT('x', seq MOD 50) FROM seq_1_to_2000",
		"INSERT INTO wp_nokey VALUES (NULL, NULL), (NULL, NULL), (1, 'x'), (1, 'x')",
		"CREATE TABLE wp_nulluniq (c INT NULL, UNIQUE KEY c (c))",
		"INSERT INTO wp_nulluniq VALUES (1), (NULL), (NULL)",
		"CREATE TABLE wp_k (id INT PRIMARY KEY)", "INSERT INTO wp_k VALUES (1)")
	want := e.checksums()
	id, rep := e.backup(BackupOptions{Prefix: "wp_", SegmentSize: 4 << 10})
	whole := map[string]TableReport{}
	for _, tr := range rep.Tables {
		if tr.Whole {
			whole[tr.Name] = tr
		}
	}
	if len(whole) != 2 || whole["wp_nokey"].Note != NoteWhole || whole["wp_nokey"].Rows != 2004 || whole["wp_nokey"].Segments < 2 {
		t.Fatalf("tables %+v, skipped %+v", rep.Tables, rep.Skipped)
	}
	for _, s := range rep.Skipped {
		if s.Name == "wp_nokey" || s.Name == "wp_nulluniq" {
			t.Errorf("skipped %+v", s)
		}
	}
	sel, err := Select(context.Background(), e.cfg, "wp_")
	if err != nil || !slices.Equal(sel.Whole, []string{"wp_nokey", "wp_nulluniq"}) {
		t.Errorf("Select: %+v, %v", sel, err)
	}

	// Unchanged: reused; changed: read again.
	e.exec("UPDATE wp_nulluniq SET c = 2 WHERE c = 1")
	id2, rep2 := e.backup(BackupOptions{Prefix: "wp_", SegmentSize: 4 << 10, Previous: &id})
	for _, tr := range rep2.Tables {
		switch tr.Name {
		case "wp_nokey":
			if tr.Reused != tr.Segments || tr.Written != 0 {
				t.Errorf("unchanged keyless table: %+v", tr)
			}
		case "wp_nulluniq":
			if tr.Reused != 0 || tr.Written != 1 || !tr.Full {
				t.Errorf("changed keyless table: %+v", tr)
			}
		}
	}
	want2 := e.checksums()

	e.exec("DELETE FROM wp_nokey WHERE a = 3", "INSERT INTO wp_nulluniq VALUES (7)")
	e.restore(id, RestoreOptions{Prefix: "wp_"})
	sameSums(t, want, e.checksums())
	e.restore(id2, RestoreOptions{Prefix: "wp_"})
	sameSums(t, want2, e.checksums())
}

// TestRestoreNamesTablesNotInPoint: a whole-database restore names the
// live tables the restore point never held; it removes those created
// since, and keeps keyless tables a backup of the old rules left out.
func TestRestoreNamesTablesNotInPoint(t *testing.T) {
	e := newEnv(t)
	e.exec("CREATE TABLE wp_k (id INT PRIMARY KEY)", "INSERT INTO wp_k VALUES (1)")
	id, _ := e.backup(BackupOptions{Prefix: "wp_"})
	// The same backup as an older sitevault wrote it (no keyless tables).
	m, err := LoadManifest(context.Background(), e.repo, id)
	if err != nil {
		t.Fatal(err)
	}
	m.Whole = false
	oldID, err := m.Save(context.Background(), e.repo)
	if err != nil {
		t.Fatal(err)
	}
	e.repo.Flush(context.Background())

	e.exec("CREATE TABLE wp_new (id INT PRIMARY KEY)", "CREATE TABLE wp_heap (a INT)", "INSERT INTO wp_heap VALUES (1)")
	rep := e.restore(oldID, RestoreOptions{Prefix: "wp_"})
	if !slices.Equal(rep.NotInPoint, []string{"wp_heap", "wp_new"}) || !slices.Equal(rep.Removed, []string{"wp_new"}) ||
		len(rep.Kept) != 1 || rep.Kept[0].Name != "wp_heap" {
		t.Errorf("old point: not in point %v, removed %v, kept %+v", rep.NotInPoint, rep.Removed, rep.Kept)
	}
	if e.count("SELECT COUNT(*) FROM wp_heap") != 1 {
		t.Errorf("keyless table lost")
	}
	// A backup that takes keyless tables: the one created since goes.
	rep = e.restore(id, RestoreOptions{Prefix: "wp_"})
	if !slices.Equal(rep.NotInPoint, []string{"wp_heap"}) || !slices.Equal(rep.Removed, []string{"wp_heap"}) {
		t.Errorf("new point: not in point %v, removed %v, kept %+v", rep.NotInPoint, rep.Removed, rep.Kept)
	}
}

// TestPlanRestore: PlanRestore answers what Restore then does — the
// tables written, the live ones the point lacks (dropped or kept) — and
// changes nothing itself; a table the point lacks is refused as Restore
// refuses it.
func TestPlanRestore(t *testing.T) {
	e := newEnv(t)
	e.exec("CREATE TABLE wp_k (id INT PRIMARY KEY)", "INSERT INTO wp_k VALUES (1), (2)")
	id, _ := e.backup(BackupOptions{Prefix: "wp_"})
	e.exec("CREATE TABLE wp_new (id INT PRIMARY KEY)", "INSERT INTO wp_k VALUES (3)")
	before := e.checksums()

	ctx := context.Background()
	plan, err := PlanRestore(ctx, e.cfg, e.repo, id, RestoreOptions{Prefix: "wp_"})
	if err != nil {
		t.Fatal(err)
	}
	sameSums(t, before, e.checksums()) // nothing changed
	if !slices.Contains(plan.Tables, "wp_k") || !slices.Equal(plan.Removed, []string{"wp_new"}) || !slices.Equal(plan.NotInPoint, []string{"wp_new"}) {
		t.Errorf("plan: tables %v, removed %v, not in point %v", plan.Tables, plan.Removed, plan.NotInPoint)
	}
	single, err := PlanRestore(ctx, e.cfg, e.repo, id, RestoreOptions{Prefix: "wp_", Tables: []string{"wp_k"}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(single.Tables, []string{"wp_k"}) || len(single.Removed) != 0 || len(single.Kept) != 1 || single.Kept[0].Name != "wp_new" || single.Rows != 2 {
		t.Errorf("single-table plan: %+v", single)
	}
	if _, err := PlanRestore(ctx, e.cfg, e.repo, id, RestoreOptions{Prefix: "wp_", Tables: []string{"wp_new"}}); !errors.Is(err, ErrNotFound) {
		t.Errorf("a table the point lacks: %v, want ErrNotFound", err)
	}
	rep := e.restore(id, RestoreOptions{Prefix: "wp_"})
	if !slices.Equal(rep.Tables, plan.Tables) || !slices.Equal(rep.Removed, plan.Removed) || rep.Rows != plan.Rows {
		t.Errorf("restore %+v, its plan %+v", rep, plan)
	}
}
