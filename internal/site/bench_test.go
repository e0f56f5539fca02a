package site

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/sitevault/sitevault/internal/archiver"
	"github.com/sitevault/sitevault/internal/backend/local"
	"github.com/sitevault/sitevault/internal/repository"
)

// BenchmarkSiteFiles backs up the site in $SITEVAULT_BENCH_SITE (bench/sftp.sh
// prepares a 30,000-file one) through a local and an SFTP connection over
// loopback, into a local repository with production settings:
//
//   - first: a first backup (b.SetBytes: MB/s is the throughput);
//   - unchanged: a backup of the unchanged site given the first as parent.
//
// Issue 3's goals: unchanged over SFTP ≤ 2× local, first over SFTP ≥ half
// the local throughput.
func BenchmarkSiteFiles(b *testing.B) {
	root := os.Getenv("SITEVAULT_BENCH_SITE")
	if root == "" {
		b.Skip("set SITEVAULT_BENCH_SITE to a WordPress root (bench/sftp.sh prepares one)")
	}
	for _, kind := range kinds {
		b.Run(kind, func(b *testing.B) {
			ctx := context.Background()
			conn := openTest(b, kind, root)
			in, err := Inspect(ctx, conn, testEntry(b, kind, root))
			if err != nil {
				b.Fatal(err)
			}
			src, err := conn.FS(ctx)
			if err != nil {
				b.Fatal(err)
			}
			defer src.Close()
			opts := archiver.Options{} // BackupFiles tunes it for SFTP
			newRepo := func(b *testing.B) *repository.Repository {
				be, err := local.Create(ctx, filepath.Join(b.TempDir(), "repo"))
				if err != nil {
					b.Fatal(err)
				}
				r, err := repository.Init(ctx, be, repository.TestPassword, repository.InitOptions{ScryptN: repository.TestScryptN})
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { r.Close() })
				return r
			}
			backup := func(b *testing.B, repo *repository.Repository, parent *repository.ID) (repository.ID, *archiver.Report) {
				files, rep, err := BackupFiles(ctx, repo, src, in.WordPress, parent, opts)
				if err == nil {
					err = repo.Flush(ctx)
				}
				if err != nil {
					b.Fatal(err)
				}
				if rep.Partial {
					b.Fatalf("partial backup: %v", rep.Errors)
				}
				return files, rep
			}

			b.Run("first", func(b *testing.B) {
				var bytes int64
				for b.Loop() {
					b.StopTimer()
					repo := newRepo(b)
					b.StartTimer()
					_, rep := backup(b, repo, nil)
					bytes = rep.BytesTotal
					b.ReportMetric(float64(rep.FilesNew), "files")
				}
				b.SetBytes(bytes)
			})
			b.Run("unchanged", func(b *testing.B) {
				repo := newRepo(b)
				first, _ := backup(b, repo, nil)
				for b.Loop() {
					_, rep := backup(b, repo, &first)
					if rep.BytesRead != 0 || rep.FilesNew+rep.FilesChanged != 0 {
						b.Fatalf("unchanged backup read %d bytes, %d new, %d changed files", rep.BytesRead, rep.FilesNew, rep.FilesChanged)
					}
					b.ReportMetric(float64(rep.FilesUnchanged), "files")
				}
			})
		})
	}
}
