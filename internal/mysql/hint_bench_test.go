package mysql

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkHints measures an incremental backup of a large postmeta-like
// table (1M rows, ~100 segments; BENCH_HINT_ROWS to change) with and
// without hints naming the changed rows, after a few rows changed (10, in
// 10 segments) and after changes scattered over the table (one row in
// every segment). Each iteration changes other rows, then backs them up
// twice from the same previous point, without hints and with them, one
// right after the other (the machine is shared: pairs keep the comparison
// fair); the next iteration follows the hinted one. Metrics per backup:
// ms, and rows-hashed, the rows whose key and hash were read to find the
// changed ones.
//
//	go test -run '^$' -bench Hints -benchtime 5x ./internal/mysql/
func BenchmarkHints(b *testing.B) {
	rows := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("BENCH_HINT_ROWS")); err == nil && v > 0 {
		rows = v
	}
	e := newEnv(b)
	ctx := context.Background()
	postmeta(e, "wp_postmeta", rows)
	last, rep, err := Backup(ctx, e.cfg, e.repo, BackupOptions{Prefix: "wp_"})
	if err != nil {
		b.Fatal(err)
	}
	e.repo.Flush(ctx)
	segs := tableReport(rep, "wp_postmeta").Segments
	b.Logf("%d rows, %d segments", rows, segs)
	round := 0
	for _, sc := range []struct {
		name    string
		changed int
	}{{"few", 10}, {"scattered", segs}} {
		b.Run(sc.name, func(b *testing.B) {
			b.StopTimer()
			var ms, hashed, patched, reread, explained [2]float64
			for range b.N {
				round++
				step := rows / sc.changed
				ids := make([]string, sc.changed)
				for k := range ids {
					ids[k] = itoa(1 + k*step + round%step)
				}
				e.exec("UPDATE wp_postmeta SET meta_value = CONCAT('round ', " + itoa(round) + ") WHERE meta_id IN (" + strings.Join(ids, ",") + ")")
				prev := last
				for v, hints := range [][]Hint{nil, {{Table: "wp_postmeta", Values: ids}}} {
					start := time.Now()
					id, rep, err := Backup(ctx, e.cfg, e.repo, BackupOptions{Prefix: "wp_", Previous: &prev, Hints: hints})
					if err != nil {
						b.Fatal(err)
					}
					ms[v] += float64(time.Since(start).Milliseconds())
					e.repo.Flush(ctx)
					tr := tableReport(rep, "wp_postmeta")
					hashed[v] += float64(tr.RowsHashed)
					patched[v] += float64(tr.Patched)
					reread[v] += float64(tr.Reread)
					explained[v] += float64(tr.Hinted)
					last = id
				}
			}
			n := float64(b.N)
			for v, name := range []string{"without", "with"} {
				b.ReportMetric(ms[v]/n, "ms-"+name+"/op")
				b.ReportMetric(hashed[v]/n, "rows-hashed-"+name+"/op")
				b.ReportMetric(patched[v]/n, "patched-"+name+"/op")
				b.ReportMetric(reread[v]/n, "reread-"+name+"/op")
			}
			b.ReportMetric(explained[1]/n, "explained-with/op")
		})
	}
}
