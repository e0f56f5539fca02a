package mysql

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/sitevault/sitevault/internal/testsrv"
)

func TestWrongPassword(t *testing.T) { eachDial(t, testWrongPassword) }

func testWrongPassword(t *testing.T, mode dialMode) {
	e := newEnvVia(t, mode)
	cfg := e.cfg
	cfg.Password = "not-the-password-4711"
	_, _, err := Backup(context.Background(), cfg, e.repo, BackupOptions{Prefix: "wp_"})
	if !errors.Is(err, ErrAccessDenied) {
		t.Fatalf("backup with a wrong password: %v, want ErrAccessDenied", err)
	}
	if strings.Contains(err.Error(), cfg.Password) || strings.Contains(err.Error(), e.db.Password) {
		t.Errorf("error shows a password: %v", err)
	}
	if _, err := Select(context.Background(), cfg, "wp_"); !errors.Is(err, ErrAccessDenied) {
		t.Errorf("select: %v", err)
	}
}

func TestTableAlteredDuringBackup(t *testing.T) { eachDial(t, testTableAlteredDuringBackup) }

func testTableAlteredDuringBackup(t *testing.T, mode dialMode) {
	e := newEnvVia(t, mode)
	e.exec(
		"CREATE TABLE wp_a (id INT PRIMARY KEY, v TEXT)", "INSERT INTO wp_a SELECT seq, 'a' FROM seq_1_to_1000",
		"CREATE TABLE wp_b (id INT PRIMARY KEY, v TEXT)", "INSERT INTO wp_b SELECT seq, 'b' FROM seq_1_to_1000",
		"CREATE TABLE wp_c (id INT PRIMARY KEY, v TEXT)", "INSERT INTO wp_c SELECT seq, 'c' FROM seq_1_to_1000",
	)
	alter := func(n int) func(string, int) {
		return func(table string, attempt int) {
			if table == "wp_b" && attempt < n {
				// A rebuild after the snapshot began: reading wp_b in it fails with 1412.
				e.exec("ALTER TABLE wp_b ADD COLUMN x" + itoa(attempt) + " INT NOT NULL DEFAULT 1, ALGORITHM=COPY")
			}
		}
	}

	t.Run("once", func(t *testing.T) {
		var opts BackupOptions
		opts.Prefix = "wp_"
		setBeforeTable(&opts, alter(1))
		id, rep := e.backup(opts)
		if len(rep.Warnings) != 1 || !strings.Contains(rep.Warnings[0], "wp_b") {
			t.Errorf("warnings %v", rep.Warnings)
		}
		want := e.checksums()
		e.exec("DROP TABLE wp_b", "DELETE FROM wp_a")
		e.restore(id, RestoreOptions{Prefix: "wp_"})
		sameSums(t, want, e.checksums())
		m, _ := LoadManifest(context.Background(), e.repo, id)
		if !strings.Contains(m.Table("wp_b").Create, "x0") {
			t.Errorf("wp_b backed up with the old definition")
		}
	})
	t.Run("twice", func(t *testing.T) {
		var opts BackupOptions
		opts.Prefix = "wp_"
		setBeforeTable(&opts, func(table string, attempt int) {
			if table == "wp_b" {
				e.exec("ALTER TABLE wp_b ADD COLUMN y" + itoa(attempt) + " INT NOT NULL DEFAULT 1, ALGORITHM=COPY")
			}
		})
		id, rep, err := Backup(context.Background(), e.cfg, e.repo, opts)
		if !errors.Is(err, ErrDefinitionChanged) || rep != nil || !id.IsNull() || !strings.Contains(err.Error(), "wp_b") {
			t.Fatalf("backup with a table altered twice: %v, %v, %v", id, rep, err)
		}
	})
}

// bigTable makes a table of about 8 MiB.
func bigTable(e *env, name string) {
	e.exec("CREATE TABLE "+name+" (id INT PRIMARY KEY, v LONGTEXT)",
		"INSERT INTO "+name+" SELECT seq, REPEAT(MD5(seq), 64) FROM seq_1_to_4000")
}

func TestConnectionDroppedDuringBackup(t *testing.T) { eachDial(t, testConnectionDroppedDuringBackup) }

func testConnectionDroppedDuringBackup(t *testing.T, mode dialMode) {
	e := newEnvVia(t, mode)
	bigTable(e, "wp_big")
	e.exec("CREATE TABLE wp_small (id INT PRIMARY KEY)", "INSERT INTO wp_small VALUES (1)")
	before := e.checksums()
	proxy := testsrv.StartFaultProxy(t, srv.Addr)
	cfg := e.cfg
	cfg.Addr = proxy.Addr
	proxy.CutAfter(testsrv.Downstream, 3<<20)
	id, rep, err := Backup(context.Background(), cfg, e.repo, BackupOptions{Prefix: "wp_"})
	if err == nil || rep != nil || !id.IsNull() {
		t.Fatalf("backup over a dropped connection: %v, %v, %v", id, rep, err)
	}
	t.Logf("error: %v", err)
	sameSums(t, before, e.checksums())
	// The next backup through the same (now healthy) proxy succeeds.
	id, _, err = Backup(context.Background(), cfg, e.repo, BackupOptions{Prefix: "wp_"})
	if err != nil {
		t.Fatal(err)
	}
	e.repo.Flush(context.Background())
	e.exec("DELETE FROM wp_big WHERE id > 10")
	e.restore(id, RestoreOptions{Prefix: "wp_"})
	sameSums(t, before, e.checksums())
}

func TestConnectionDroppedDuringRestore(t *testing.T) {
	eachDial(t, testConnectionDroppedDuringRestore)
}

func testConnectionDroppedDuringRestore(t *testing.T, mode dialMode) {
	e := newEnvVia(t, mode)
	bigTable(e, "wp_big")
	bigTable(e, "wp_big2")
	e.exec("CREATE TABLE wp_small (id INT PRIMARY KEY)", "INSERT INTO wp_small VALUES (1)")
	backedUp := e.checksums()
	id, _ := e.backup(BackupOptions{Prefix: "wp_", SegmentSize: 1 << 20})
	e.exec("DELETE FROM wp_big WHERE id MOD 2 = 0", "DROP TABLE wp_small", "CREATE TABLE wp_new (id INT PRIMARY KEY)")
	live := e.checksums()

	proxy := testsrv.StartFaultProxy(t, srv.Addr)
	cfg := e.cfg
	cfg.Addr = proxy.Addr
	proxy.CutAfter(testsrv.Upstream, 6<<20)
	if _, err := Restore(context.Background(), cfg, e.repo, id, RestoreOptions{Prefix: "wp_"}); err == nil {
		t.Fatal("restore over a dropped connection succeeded")
	} else {
		t.Logf("error: %v", err)
	}
	if proxy.Drops() != 1 {
		t.Fatalf("proxy cut %d connections", proxy.Drops())
	}
	got := e.checksums()
	for n := range got {
		if strings.HasPrefix(n, tmpPrefix) {
			delete(got, n) // may be left for the next run
		}
	}
	sameSums(t, live, got)

	// A restore cancelled just before the swap leaves the live tables too.
	var opts RestoreOptions
	opts.Prefix = "wp_"
	setBeforeSwap(&opts, func() error { return context.Canceled })
	if _, err := Restore(context.Background(), e.cfg, e.repo, id, opts); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted restore: %v", err)
	}
	sameSums(t, live, e.checksums())

	// The next run cleans up and restores.
	e.restore(id, RestoreOptions{Prefix: "wp_"})
	sameSums(t, backedUp, e.checksums())
}

// Without the LOCK TABLES privilege, MyISAM tables are read as they are
// (with a warning) and the InnoDB snapshot stays on one connection.
func TestNoLockPrivilege(t *testing.T) { eachDial(t, testNoLockPrivilege) }

func testNoLockPrivilege(t *testing.T, mode dialMode) {
	e := newEnvVia(t, mode)
	e.exec(
		"CREATE TABLE wp_m (id INT PRIMARY KEY, v TEXT) ENGINE=MyISAM", "INSERT INTO wp_m SELECT seq, 'm' FROM seq_1_to_100",
		"CREATE TABLE wp_i (id INT PRIMARY KEY, v TEXT)", "INSERT INTO wp_i SELECT seq, 'i' FROM seq_1_to_100",
		"REVOKE LOCK TABLES ON `"+e.db.Name+"`.* FROM '"+e.db.User+"'@'%'",
	)
	want := e.checksums()
	id1, rep := e.backup(BackupOptions{Prefix: "wp_"})
	if len(rep.Warnings) != 1 || !strings.Contains(rep.Warnings[0], "wp_m") {
		t.Errorf("warnings: %v", rep.Warnings)
	}
	e.exec("UPDATE wp_i SET v = 'changed' WHERE id = 50", "DELETE FROM wp_m WHERE id = 7")
	want2 := e.checksums()
	id2, rep := e.backup(BackupOptions{Prefix: "wp_", Previous: &id1, Parallel: 4})
	if n := changedSegments(rep); n != 2 {
		t.Errorf("%d segments re-read or patched, want 2", n)
	}
	e.restore(id1, RestoreOptions{Prefix: "wp_"})
	sameSums(t, want, e.checksums())
	e.restore(id2, RestoreOptions{Prefix: "wp_"})
	sameSums(t, want2, e.checksums())
}

// A row whose hex INSERT would not fit below max_allowed_packet is written
// with escaped bytes instead; one that cannot fit at all fails the backup
// with an error naming the table and the row's key.
func TestRowNearMaxPacket(t *testing.T) { eachDial(t, testRowNearMaxPacket) }

func testRowNearMaxPacket(t *testing.T, mode dialMode) {
	e := newEnvVia(t, mode)
	e.exec("CREATE TABLE wp_big3 (id VARCHAR(10) PRIMARY KEY, b LONGBLOB)",
		"INSERT INTO wp_big3 VALUES ('small', 'x'), ('row-3m', REPEAT("+allBytes()+", 3 << 12))",
		"CREATE TABLE wp_huge (id VARCHAR(10) PRIMARY KEY, b LONGBLOB, c LONGBLOB)",
		"INSERT INTO wp_huge VALUES ('small', 'x', 'y'), ('row-42', REPEAT(0xFF, 2 << 20), REPEAT(0xFE, 2 << 20))",
		"SET GLOBAL max_allowed_packet = 4 << 20")
	t.Cleanup(func() { e.exec("SET GLOBAL max_allowed_packet = 64 << 20") })
	want := e.checksum("wp_big3")
	id, _ := e.backup(BackupOptions{Prefix: "wp_big3"})
	e.exec("DELETE FROM wp_big3")
	e.restore(id, RestoreOptions{Prefix: "wp_big3"})
	if got := e.checksum("wp_big3"); got != want {
		t.Errorf("3 MiB row under a 4 MiB max_allowed_packet: CHECKSUM %s, want %s", got, want)
	}

	// A row whose values fit below max_allowed_packet one by one but not
	// together is written in parts and comes back exactly; a row with a
	// single value too large leaves its table out (named, with the
	// setting to raise), and only it: the backup is partial.
	e.exec("CREATE TABLE wp_hugeok (id INT PRIMARY KEY)", "INSERT INTO wp_hugeok VALUES (1)",
		"CREATE TABLE wp_hugemy (id VARCHAR(10) PRIMARY KEY, b LONGBLOB) ENGINE=MyISAM",
		"INSERT INTO wp_hugemy VALUES ('row-7', REPEAT(0xFD, 4 << 20))")
	hugeSum := e.checksum("wp_huge")
	id, rep, err := Backup(context.Background(), e.cfg, e.repo, BackupOptions{Prefix: "wp_huge"})
	if err != nil {
		t.Fatalf("backup of rows over a 4 MiB max_allowed_packet: %v", err)
	}
	e.repo.Flush(context.Background())
	if !rep.Partial || len(rep.Tables) != 2 || rep.Tables[0].Name != "wp_huge" || rep.Tables[1].Name != "wp_hugeok" {
		t.Errorf("partial %v, tables %+v", rep.Partial, rep.Tables)
	}
	left := map[string]string{}
	for _, s := range rep.Skipped {
		left[s.Name] = s.Reason
	}
	if r := left["wp_hugemy"]; !strings.HasPrefix(r, ReasonRowTooLarge) || !strings.Contains(r, "row-7") || !strings.Contains(r, "raise max_allowed_packet") {
		t.Errorf("wp_hugemy: skip reason %q", r)
	}
	// Its restore brings the large row back and leaves the table it could
	// not take alone.
	myisamSum := e.checksum("wp_hugemy")
	e.exec("DELETE FROM wp_hugeok", "DELETE FROM wp_huge", "DELETE FROM wp_hugemy WHERE id = 'none'")
	rrep := e.restore(id, RestoreOptions{Prefix: "wp_huge"})
	if e.checksum("wp_huge") != hugeSum {
		t.Errorf("wp_huge (a 4 MiB row in parts): CHECKSUM differs after restore")
	}
	if e.checksum("wp_hugemy") != myisamSum || len(rrep.Kept) != 1 || len(rrep.Removed) != 0 || e.count("SELECT COUNT(*) FROM wp_hugeok") != 1 {
		t.Errorf("restore of a partial point: %+v", rrep)
	}
}

// A restore point without tables restores (removing the site's tables).
func TestRestoreEmpty(t *testing.T) { eachDial(t, testRestoreEmpty) }

func testRestoreEmpty(t *testing.T, mode dialMode) {
	e := newEnvVia(t, mode)
	e.exec("CREATE TABLE other_t (id INT PRIMARY KEY)")
	id, _ := e.backup(BackupOptions{Prefix: "wp_"})
	e.restore(id, RestoreOptions{Prefix: "wp_"})
	e.exec("CREATE TABLE wp_later (id INT PRIMARY KEY)")
	rep := e.restore(id, RestoreOptions{Prefix: "wp_"})
	if len(rep.Removed) != 1 || rep.Removed[0] != "wp_later" {
		t.Errorf("removed %v", rep.Removed)
	}
	if _, ok := e.checksums()["other_t"]; !ok {
		t.Errorf("other_t removed")
	}
}

// Two sites share a database (prefixes wp_ and blog_). A restore of one
// drops only its own site's leftovers and leaves the other's running
// restore alone; a second restore of the same site fails while the first
// runs.
func TestRestoresOfTwoSitesInOneDatabase(t *testing.T) {
	e := newEnv(t)
	e.exec(
		"CREATE TABLE wp_a (id INT PRIMARY KEY, v TEXT)", "INSERT INTO wp_a SELECT seq, 'a' FROM seq_1_to_1000",
		"CREATE TABLE blog_b (id INT PRIMARY KEY, v TEXT)", "INSERT INTO blog_b SELECT seq, 'b' FROM seq_1_to_1000",
	)
	want := e.checksums()
	idA, _ := e.backup(BackupOptions{Prefix: "wp_"})
	idB, _ := e.backup(BackupOptions{Prefix: "blog_"})
	e.exec("DELETE FROM wp_a", "DROP TABLE blog_b")
	// What interrupted restores of each site left behind.
	leftA := tmpPrefix + tempScope("wp_") + "_0badf00d_0"
	leftB := oldPrefix + tempScope("blog_") + "_0badf00d_3"
	e.exec("CREATE TABLE "+leftA+" (id INT)", "CREATE TABLE "+leftB+" (id INT)")

	var optsA RestoreOptions
	optsA.Prefix = "wp_"
	hookRan := false
	setBeforeSwap(&optsA, func() error {
		// Site A's restore has loaded its temporary tables and not swapped yet.
		hookRan = true
		tmp := e.tempTables()
		if slices.Contains(tmp, leftA) || !slices.Contains(tmp, leftB) {
			t.Errorf("restore of wp_ cleaned up %v, want only its own leftover %s dropped", tmp, leftA)
		}
		if _, err := Restore(context.Background(), e.cfg, e.repo, idA, RestoreOptions{Prefix: "wp_"}); !errors.Is(err, ErrRestoreRunning) {
			t.Errorf("second restore of wp_ while one runs: %v, want ErrRestoreRunning", err)
		}
		// Site B restores meanwhile, dropping its leftover and nothing of A's.
		e.restore(idB, RestoreOptions{Prefix: "blog_"})
		return nil
	})
	e.restore(idA, optsA)
	if !hookRan {
		t.Fatal("beforeSwap did not run")
	}
	sameSums(t, want, e.checksums())
	// The lock is released: the site restores again.
	e.restore(idA, RestoreOptions{Prefix: "wp_"})
}
