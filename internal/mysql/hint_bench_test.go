package mysql

import (
	"context"
	"os"
	"strconv"
	"testing"
)

// BenchmarkHints measures an incremental backup of a large postmeta-like
// table (1M rows, ~150 segments; BENCH_HINT_ROWS to change) with and
// without hints naming the changed rows, after a few rows changed (10, in
// 10 segments) and after changes scattered over the table (one row in
// about every segment). Each iteration changes other rows; rows-hashed is
// the rows whose key and hash the backup read to find the changed ones.
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
	full, rep, err := Backup(ctx, e.cfg, e.repo, BackupOptions{Prefix: "wp_"})
	if err != nil {
		b.Fatal(err)
	}
	e.repo.Flush(ctx)
	segs := tableReport(rep, "wp_postmeta").Segments
	b.Logf("%d rows, %d segments", rows, segs)
	round, last := 0, full // each backup follows the one before: it sees one round's changes
	for _, sc := range []struct {
		name    string
		changed int
	}{{"few", 10}, {"scattered", segs}} {
		for _, hinted := range []bool{false, true} {
			name := sc.name + "/without-hints"
			if hinted {
				name = sc.name + "/with-hints"
			}
			b.Run(name, func(b *testing.B) {
				var hashed, patched, fromHints int64
				for i := 0; i < b.N; i++ {
					b.StopTimer()
					round++
					step := rows / sc.changed
					var ids []string
					for k := range sc.changed {
						ids = append(ids, itoa(1+k*step+round%step))
					}
					e.exec("UPDATE wp_postmeta SET meta_value = CONCAT('round ', " + itoa(round) + ") WHERE meta_id IN (" + join(ids) + ")")
					o := BackupOptions{Prefix: "wp_", Previous: &last}
					if hinted {
						o.Hints = []Hint{{Table: "wp_postmeta", Values: ids}}
					}
					b.StartTimer()
					id, rep, err := Backup(ctx, e.cfg, e.repo, o)
					if err != nil {
						b.Fatal(err)
					}
					b.StopTimer()
					e.repo.Flush(ctx)
					tr := tableReport(rep, "wp_postmeta")
					if tr.RowsChanged != int64(sc.changed) {
						b.Fatalf("%d rows stored, want %d", tr.RowsChanged, sc.changed)
					}
					hashed += tr.RowsHashed
					patched += int64(tr.Patched)
					fromHints += int64(tr.Hinted)
					last = id
					b.StartTimer()
				}
				b.ReportMetric(float64(hashed)/float64(b.N), "rows-hashed/op")
				b.ReportMetric(float64(patched)/float64(b.N), "patched/op")
				b.ReportMetric(float64(fromHints)/float64(b.N), "from-hints/op")
			})
		}
	}
}

func join(s []string) string {
	out := ""
	for i, v := range s {
		if i > 0 {
			out += ","
		}
		out += v
	}
	return out
}
