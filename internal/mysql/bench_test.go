package mysql

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sitevault/sitevault/internal/repository"
	"github.com/sitevault/sitevault/internal/testsrv"
)

// BenchmarkDatabase measures, side by side on a generated WordPress
// database with a 1M-row postmeta table (GenerateWordPress, ~150 MB of
// SQL): a full backup and mariadb-dump, an incremental backup after 1% of
// the postmeta rows changed, and a restore and `mariadb < dump.sql`.
// bench/db.sh compares whole programs (mydumper and myloader too).
//
//	go test -run '^$' -bench Database -benchtime 3x ./internal/mysql/
func BenchmarkDatabase(b *testing.B) {
	e := newEnv(b)
	ctx := context.Background()
	if err := GenerateWordPress(ctx, e.root, "wp_", 1_000_000); err != nil {
		b.Fatal(err)
	}
	dump := testsrv.LookPath("mariadb-dump")
	client := testsrv.LookPath("mariadb")
	dumpFile := filepath.Join(b.TempDir(), "dump.sql")
	args := []string{"--no-defaults", "-h127.0.0.1", "-P" + portOf(srv.Addr), "-u" + e.db.User, "-p" + e.db.Password}
	var size int64
	var last repository.ID

	b.Run("full", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			id, rep, err := Backup(ctx, e.cfg, e.repo, BackupOptions{Prefix: "wp_"})
			if err != nil {
				b.Fatal(err)
			}
			size, last = rep.BytesWritten, id
		}
		b.SetBytes(size)
		e.repo.Flush(ctx)
	})
	b.Run("mariadb-dump", func(b *testing.B) {
		if dump == "" {
			b.Skip("no mariadb-dump")
		}
		for i := 0; i < b.N; i++ {
			f, _ := os.Create(dumpFile)
			cmd := exec.Command(dump, append(args, "--single-transaction", "--hex-blob", e.db.Name)...)
			var stderr strings.Builder
			cmd.Stdout, cmd.Stderr = f, &stderr
			if err := cmd.Run(); err != nil {
				b.Fatalf("%v %s", err, stderr.String())
			}
			f.Close()
		}
		fi, _ := os.Stat(dumpFile)
		b.SetBytes(fi.Size())
	})
	b.Run("incremental-1pct", func(b *testing.B) {
		var written int64
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			lo := 100_000 + (i%80)*10_000
			e.exec("UPDATE wp_postmeta SET meta_value = CONCAT('changed ', " + itoa(i) + ", meta_id) WHERE meta_id BETWEEN " + itoa(lo+1) + " AND " + itoa(lo+10_000))
			b.StartTimer()
			id, rep, err := Backup(ctx, e.cfg, e.repo, BackupOptions{Prefix: "wp_", Previous: &last})
			if err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			e.repo.Flush(ctx)
			b.StartTimer()
			last, written = id, rep.BytesWritten
		}
		b.ReportMetric(float64(written)/float64(size)*100, "%stored")
	})
	b.Run("restore", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, err := Restore(ctx, e.cfg, e.repo, last, RestoreOptions{Prefix: "wp_"}); err != nil {
				b.Fatal(err)
			}
		}
		b.SetBytes(size)
	})
	b.Run("mariadb-load", func(b *testing.B) {
		if client == "" || dump == "" {
			b.Skip("no mariadb client")
		}
		for i := 0; i < b.N; i++ {
			in, _ := os.Open(dumpFile)
			cmd := exec.Command(client, append(args, e.db.Name)...)
			cmd.Stdin = in
			if out, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("%v %s", err, out)
			}
			in.Close()
		}
		fi, _ := os.Stat(dumpFile)
		b.SetBytes(fi.Size())
	})
}

func portOf(addr string) string {
	for i := len(addr) - 1; i >= 0; i-- {
		if addr[i] == ':' {
			return addr[i+1:]
		}
	}
	return addr
}
