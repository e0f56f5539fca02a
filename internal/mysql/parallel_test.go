package mysql

import (
	"context"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sitevault/sitevault/internal/repository"
)

// splitTables adds to the fixture integer-keyed tables whose keys are
// sparse, negative or near the top of BIGINT UNSIGNED, for the key ranges
// of a parallel full backup to cut.
func splitTables(e *env) {
	e.tb.Helper()
	e.exec(
		"CREATE TABLE wp_split (id INT PRIMARY KEY, v VARCHAR(100), KEY v (v))",
		"INSERT INTO wp_split SELECT CAST(seq * seq AS SIGNED) - 500000, CONCAT('row ', seq) FROM seq_1_to_2000",
		"CREATE TABLE wp_ubig (id BIGINT UNSIGNED PRIMARY KEY, v INT)",
		"INSERT INTO wp_ubig SELECT 18446744073709551615 - seq * 1000003, seq FROM seq_0_to_999",
		"INSERT INTO wp_ubig VALUES (0, 0), (1, 1)",
		"CREATE TABLE wp_tiny (id TINYINT PRIMARY KEY, v INT)",
		"INSERT INTO wp_tiny SELECT CAST(seq AS SIGNED) - 128, seq FROM seq_0_to_255",
	)
	var names []string
	for n := range e.checksums() {
		names = append(names, quoteIdent(n))
	}
	// TABLE_ROWS, which decides what is cut, comes from fresh statistics.
	e.exec("ANALYZE TABLE " + strings.Join(names, ", "))
}

// manifestSum is a table's checksum over all its segments, "rows:xor".
func manifestSum(tb testing.TB, tm *TableManifest) string {
	tb.Helper()
	var rows, xor uint64
	for _, s := range tm.Segments {
		var n, x uint64
		if _, err := fmt.Sscanf(s.Checksum, "%d:%d", &n, &x); err != nil {
			tb.Fatalf("table %s: segment checksum %q: %v", tm.Name, s.Checksum, err)
		}
		rows += n
		xor ^= x
	}
	return fmt.Sprintf("%d:%d", rows, xor)
}

// A full backup that reads tables and key ranges of them on several
// connections holds the same rows as one read on one connection: same
// per-table checksums in the manifests, the same tables once restored,
// and segments of split tables in strictly increasing key order.
func TestParallelFullBackupMatchesSequential(t *testing.T) {
	e := newEnv(t)
	fixture(e)
	splitTables(e)
	want := e.checksums()

	seqID, seqRep := e.backup(BackupOptions{Prefix: "wp_", Parallel: 1})
	opts := BackupOptions{Prefix: "wp_", Parallel: 3, SegmentSize: 2 << 10}
	var mu sync.Mutex
	ranges := map[string]int{}
	setRangeRows(&opts, 50, func(table string, n int) {
		mu.Lock()
		ranges[table] = n
		mu.Unlock()
	})
	parID, parRep := e.backup(opts)
	for _, name := range []string{"wp_split", "wp_ubig", "wp_tiny", "wp_keys"} {
		if ranges[name] < 2 {
			t.Errorf("table %s read in %d key ranges, want it split", name, ranges[name])
		}
	}
	if len(parRep.Tables) != len(seqRep.Tables) || len(parRep.Warnings) != len(seqRep.Warnings) {
		t.Errorf("parallel report: %d tables, warnings %v; sequential: %d tables, warnings %v",
			len(parRep.Tables), parRep.Warnings, len(seqRep.Tables), seqRep.Warnings)
	}
	for i := range min(len(parRep.Tables), len(seqRep.Tables)) {
		p, s := parRep.Tables[i], seqRep.Tables[i]
		if p.Name != s.Name || p.Rows != s.Rows || !p.Full {
			t.Errorf("report table %d: parallel %+v, sequential %+v", i, p, s)
		}
	}

	ctx := context.Background()
	seqM, err := LoadManifest(ctx, e.repo, seqID)
	if err != nil {
		t.Fatal(err)
	}
	parM, err := LoadManifest(ctx, e.repo, parID)
	if err != nil {
		t.Fatal(err)
	}
	if len(parM.Tables) != len(seqM.Tables) {
		t.Fatalf("parallel backup holds %d tables, sequential %d", len(parM.Tables), len(seqM.Tables))
	}
	for i, pt := range parM.Tables {
		st := seqM.Tables[i]
		if pt.Name != st.Name || pt.Definition != st.Definition {
			t.Errorf("table %d: parallel %s (%s), sequential %s (%s)", i, pt.Name, pt.Definition, st.Name, st.Definition)
			continue
		}
		if p, s := manifestSum(t, pt), manifestSum(t, st); p != s {
			t.Errorf("table %s: parallel checksum %s, sequential %s", pt.Name, p, s)
		}
		if ranges[pt.Name] < 2 {
			continue
		}
		// Key order across segments, hence across ranges: every First
		// above the previous Last, every Last at or above its First.
		var last *big.Int
		for k, s := range pt.Segments {
			first, ok1 := new(big.Int).SetString(string(s.First[0]), 10)
			end, ok2 := new(big.Int).SetString(string(s.Last[0]), 10)
			if !ok1 || !ok2 || first.Cmp(end) > 0 || (last != nil && first.Cmp(last) <= 0) {
				t.Errorf("table %s segment %d: keys %s…%s after %v", pt.Name, k, s.First[0], s.Last[0], last)
			}
			last = end
		}
	}

	for _, b := range []struct {
		name string
		id   repository.ID
	}{{"sequential", seqID}, {"parallel", parID}} {
		t.Run(b.name, func(t *testing.T) {
			e.exec("DELETE FROM wp_split WHERE id > 0", "UPDATE wp_ubig SET v = -1", "DROP TABLE wp_tiny")
			e.restore(b.id, RestoreOptions{Prefix: "wp_"})
			sameSums(t, want, e.checksums())
		})
	}
}

// Transfers between rows far apart in one table (in different key ranges,
// read on different connections) and between two tables run while
// parallel full backups read them: every backup must hold a state where
// the money adds up, i.e. all its connections read one snapshot.
func TestParallelFullBackupConsistentUnderWrites(t *testing.T) {
	e := newEnv(t)
	const rows = 20000
	e.exec(
		"CREATE TABLE wp_a (id INT PRIMARY KEY, amount BIGINT NOT NULL, pad VARCHAR(200))",
		"CREATE TABLE wp_b (id INT PRIMARY KEY, amount BIGINT NOT NULL, pad VARCHAR(200))",
		"INSERT INTO wp_a SELECT seq, 1000, REPEAT('a', 200) FROM seq_1_to_"+itoa(rows),
		"INSERT INTO wp_b SELECT seq, 1000, REPEAT('b', 200) FROM seq_1_to_"+itoa(rows),
		"ANALYZE TABLE wp_a, wp_b",
	)
	const total = 2 * rows * 1000
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var transfers atomic.Int64
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; ctx.Err() == nil; i += 7919 {
				tx, err := e.root.BeginTx(ctx, nil)
				if err != nil {
					return
				}
				// From the first half of wp_a to its second half, and to wp_b.
				a, a2, b := 1+i%(rows/2), rows/2+1+(i*13)%(rows/2), 1+(i*31)%rows
				_, err1 := tx.ExecContext(ctx, "UPDATE wp_a SET amount = amount - 2 WHERE id = ?", a)
				_, err2 := tx.ExecContext(ctx, "UPDATE wp_a SET amount = amount + 1 WHERE id = ?", a2)
				_, err3 := tx.ExecContext(ctx, "UPDATE wp_b SET amount = amount + 1 WHERE id = ?", b)
				if err1 != nil || err2 != nil || err3 != nil || tx.Commit() != nil {
					tx.Rollback()
					continue
				}
				transfers.Add(1)
				time.Sleep(time.Millisecond) // paced: the backup needs the two cores too
			}
		}()
	}
	opts := BackupOptions{Prefix: "wp_", Parallel: 3, SegmentSize: 64 << 10}
	var split atomic.Int64
	setRangeRows(&opts, 1500, func(table string, n int) {
		if n > 1 {
			split.Add(1)
		}
	})
	var ids []repository.ID
	for i := 0; i < 3; i++ {
		id, _ := e.backup(opts)
		ids = append(ids, id)
	}
	cancel()
	wg.Wait()
	if transfers.Load() < 10 {
		t.Fatalf("only %d transfers ran during the backups", transfers.Load())
	}
	if split.Load() != 2*int64(len(ids)) {
		t.Errorf("%d tables split in %d backups, want 2 each", split.Load(), len(ids))
	}
	for i := range ids {
		e.restore(ids[i], RestoreOptions{Prefix: "wp_"})
		if sum := e.count("SELECT (SELECT SUM(amount) FROM wp_a) + (SELECT SUM(amount) FROM wp_b)"); sum != total {
			t.Errorf("backup %d: total %d, want %d", i, sum, total)
		}
	}
	t.Logf("%d transfers during %d backups", transfers.Load(), len(ids))
}

// A table cut into key ranges whose definition changes after the snapshot
// began is read again, in a new snapshot, after the other tables; the
// backup holds its new definition and all its rows.
func TestParallelFullBackupTableAltered(t *testing.T) {
	e := newEnv(t)
	e.exec(
		"CREATE TABLE wp_a (id INT PRIMARY KEY, v TEXT)", "INSERT INTO wp_a SELECT seq, 'a' FROM seq_1_to_3000",
		"CREATE TABLE wp_b (id INT PRIMARY KEY, v TEXT)", "INSERT INTO wp_b SELECT seq, 'b' FROM seq_1_to_3000",
		"CREATE TABLE wp_c (id INT PRIMARY KEY, v TEXT)", "INSERT INTO wp_c SELECT seq, 'c' FROM seq_1_to_3000",
		"ANALYZE TABLE wp_a, wp_b, wp_c",
	)
	opts := BackupOptions{Prefix: "wp_", Parallel: 2, SegmentSize: 4 << 10}
	var split atomic.Int64
	setRangeRows(&opts, 500, func(string, int) { split.Add(1) })
	setBeforeTable(&opts, func(table string, attempt int) {
		if table == "wp_b" && attempt == 0 {
			e.exec("ALTER TABLE wp_b ADD COLUMN x INT NOT NULL DEFAULT 1, ALGORITHM=COPY")
		}
	})
	id, rep := e.backup(opts)
	if len(rep.Warnings) != 1 || !strings.Contains(rep.Warnings[0], "wp_b") {
		t.Errorf("warnings %v", rep.Warnings)
	}
	if split.Load() < 2 {
		t.Errorf("%d tables cut into ranges, want wp_a and wp_c at least", split.Load())
	}
	if len(rep.Tables) != 3 || rep.Tables[1].Name != "wp_b" || rep.Tables[1].Rows != 3000 {
		t.Errorf("report tables: %+v", rep.Tables)
	}
	want := e.checksums()
	e.exec("DROP TABLE wp_b", "DELETE FROM wp_a", "DELETE FROM wp_c WHERE id > 1500")
	e.restore(id, RestoreOptions{Prefix: "wp_"})
	sameSums(t, want, e.checksums())
	m, err := LoadManifest(context.Background(), e.repo, id)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(m.Table("wp_b").Create, "`x`") {
		t.Errorf("wp_b backed up with the old definition")
	}
}
