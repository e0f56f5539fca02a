package mysql

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sitevault/sitevault/internal/repository"
)

// Transfers between two tables run while full and incremental backups
// (checksums on two connections) read them: every backup must hold a
// state where the money adds up, i.e. one consistent snapshot.
func TestConsistentSnapshotUnderWrites(t *testing.T) { eachDial(t, testConsistentSnapshotUnderWrites) }

func testConsistentSnapshotUnderWrites(t *testing.T, mode dialMode) {
	e := newEnvVia(t, mode)
	e.exec(
		"CREATE TABLE wp_a (id INT PRIMARY KEY, amount BIGINT NOT NULL, pad VARCHAR(200))",
		"CREATE TABLE wp_b (id INT PRIMARY KEY, amount BIGINT NOT NULL, pad VARCHAR(200))",
		"INSERT INTO wp_a SELECT seq, 1000, REPEAT('a', 200) FROM seq_1_to_20000",
		"INSERT INTO wp_b SELECT seq, 1000, REPEAT('b', 200) FROM seq_1_to_20000",
	)
	const total = 2 * 20000 * 1000
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
				a, b := 1+i%20000, 1+(i*31)%20000
				_, err1 := tx.ExecContext(ctx, "UPDATE wp_a SET amount = amount - 1 WHERE id = ?", a)
				_, err2 := tx.ExecContext(ctx, "UPDATE wp_b SET amount = amount + 1 WHERE id = ?", b)
				if err1 != nil || err2 != nil || tx.Commit() != nil {
					tx.Rollback()
					continue
				}
				transfers.Add(1)
				// Paced, so that the writers do not starve the backup of
				// the two cores (through the tunnel sshd needs one).
				time.Sleep(time.Millisecond)
			}
		}()
	}
	opts := BackupOptions{Prefix: "wp_", SegmentSize: 64 << 10, Parallel: 3}
	id, _ := e.backup(opts)
	ids := []repository.ID{id}
	for i := 0; i < 3; i++ {
		opts.Previous = &id
		id, _ = e.backup(opts)
		ids = append(ids, id)
	}
	cancel()
	wg.Wait()
	if transfers.Load() < 10 {
		t.Fatalf("only %d transfers ran during the backups", transfers.Load())
	}
	for i, id := range ids {
		e.restore(id, RestoreOptions{Prefix: "wp_"})
		if sum := e.count("SELECT (SELECT SUM(amount) FROM wp_a) + (SELECT SUM(amount) FROM wp_b)"); sum != total {
			t.Errorf("backup %d: total %d, want %d", i, sum, total)
		}
	}
	t.Logf("%d transfers during %d backups", transfers.Load(), len(ids))
}
