// Command dbbench compares sitevault's database backup and restore with
// mariadb-dump, `mariadb < dump.sql`, mydumper and myloader, side by side in
// one run, on a generated WordPress database (mysql.GenerateWordPress: a
// 1M-row postmeta table and the other core tables) in a private MariaDB
// (started like the tests start theirs: own port, socket and data
// directory). bench/db.sh runs it; see there.
//
// Every tool connects over TCP to 127.0.0.1 as root (mydumper needs
// FLUSH TABLES WITH READ LOCK). sitevault writes to a local repository
// on disk (compressed and encrypted, as in real use). Each figure is the
// median of -runs rounds.
package main

import (
	"bytes"
	"context"
	"database/sql"
	"flag"
	"fmt"
	"io/fs"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	driver "github.com/go-sql-driver/mysql"

	"github.com/sitevault/sitevault/internal/backend/local"
	"github.com/sitevault/sitevault/internal/mysql"
	"github.com/sitevault/sitevault/internal/repository"
	"github.com/sitevault/sitevault/internal/testsrv"
)

const dbName = "svbench"

func main() {
	rows := flag.Int("rows", 1_000_000, "rows of wp_postmeta")
	runs := flag.Int("runs", 3, "rounds; each figure is the median")
	workDir := flag.String("dir", "", "work folder (default: a temporary one, removed at the end)")
	outDir := flag.String("out", "bench/out", "folder for db-latest.md and a dated copy")
	command := flag.String("command", "bench/db.sh", "command line shown in the results")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("dbbench: ")
	if err := run(*rows, *runs, *workDir, *outDir, *command); err != nil {
		log.Fatal(err)
	}
}

type bench struct {
	ctx  context.Context
	srv  *testsrv.MariaDB
	port string
	dir  string
	db   *sql.DB // root on the bench database, over the socket
	cfg  mysql.Config
}

func run(rows, runs int, workDir, outDir, command string) error {
	ctx := context.Background()
	loadBefore := loadAvg()
	for _, tool := range []string{"mariadb-dump", "mariadb"} {
		if testsrv.LookPath(tool) == "" {
			return fmt.Errorf("%s is missing (apt-get install mariadb-client)", tool)
		}
	}
	haveMydumper := testsrv.LookPath("mydumper") != "" && testsrv.LookPath("myloader") != ""
	if !haveMydumper {
		log.Print("mydumper/myloader missing (scripts/deps.sh bench installs them): their columns stay empty")
	}
	if workDir == "" {
		d, err := os.MkdirTemp("", "sitevault-dbbench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		workDir = d
	}
	srv, stop, err := testsrv.StartMariaDBMain()
	if err != nil {
		return err
	}
	defer stop()
	b := &bench{ctx: ctx, srv: srv, port: srv.Addr[strings.LastIndexByte(srv.Addr, ':')+1:], dir: workDir}
	b.cfg = mysql.Config{Addr: srv.Addr, User: "root", Password: srv.RootPassword, Database: dbName}
	root, err := srv.Root()
	if err != nil {
		return err
	}
	if _, err := root.ExecContext(ctx, "CREATE DATABASE "+dbName+" CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"); err != nil {
		return err
	}
	root.Close()
	dc := driver.NewConfig()
	dc.Net, dc.Addr, dc.User, dc.Passwd, dc.DBName = "unix", srv.Socket, "root", srv.RootPassword, dbName
	conn, err := driver.NewConnector(dc)
	if err != nil {
		return err
	}
	b.db = sql.OpenDB(conn)
	defer b.db.Close()

	log.Printf("generating a WordPress database with %d postmeta rows", rows)
	start := time.Now()
	if err := mysql.GenerateWordPress(ctx, b.db, "wp_", rows); err != nil {
		return err
	}
	log.Printf("generated in %v", time.Since(start).Round(time.Millisecond))
	var version string
	b.db.QueryRowContext(ctx, "SELECT VERSION()").Scan(&version)

	var (
		svFull, dumpFull, mydFull    []time.Duration
		svFullBytes, dumpBytes       int64
		mydBytes                     int64
		svInc, dumpInc               []time.Duration
		svIncBytes                   []int64
		svRestore, mLoad, myloadTime []time.Duration
	)
	dumpFile := filepath.Join(workDir, "dump.sql")
	mydDir := filepath.Join(workDir, "mydumper")
	var repoDir string
	var last repository.ID
	for r := range runs {
		log.Printf("round %d of %d", r+1, runs)
		// Full backups: sitevault into a new repository, each tool fresh.
		if repoDir != "" {
			os.RemoveAll(repoDir)
		}
		repoDir = filepath.Join(workDir, "repo"+strconv.Itoa(r))
		repo, err := newRepo(ctx, repoDir)
		if err != nil {
			return err
		}
		before := dirBytes(repoDir)
		d, id, err := b.backup(repo, nil)
		if err != nil {
			return err
		}
		svFull, last = append(svFull, d), id
		svFullBytes = dirBytes(repoDir) - before

		d, err = timeCmd(dumpFile, "", "mariadb-dump", b.clientArgs("--single-transaction", "--hex-blob", "--max-allowed-packet=64M", "--triggers", dbName)...)
		if err != nil {
			return err
		}
		dumpFull = append(dumpFull, d)
		dumpBytes = fileBytes(dumpFile)

		if haveMydumper {
			os.RemoveAll(mydDir)
			d, err = timeCmd("", "", "mydumper", "-h", "127.0.0.1", "-P", b.port, "-u", "root", "-p", b.srv.RootPassword,
				"-B", dbName, "-o", mydDir, "-t", "2", "-r", "100000", "--trx-consistency-only", "-G", "-v", "1")
			if err != nil {
				return err
			}
			mydFull = append(mydFull, d)
			mydBytes = dirBytes(mydDir)
		}

		// 1% of the rows change (a region of recent posts); then an
		// incremental backup, against a new full dump.
		lo := rows/10 + r*(rows/100)
		if _, err := b.db.ExecContext(ctx, fmt.Sprintf("UPDATE wp_postmeta SET meta_value = CONCAT('changed %d ', meta_id) WHERE meta_id BETWEEN %d AND %d",
			r, lo+1, lo+rows/100)); err != nil {
			return err
		}
		before = dirBytes(repoDir)
		d, id, err = b.backup(repo, &last)
		if err != nil {
			return err
		}
		svInc, last = append(svInc, d), id
		svIncBytes = append(svIncBytes, dirBytes(repoDir)-before)
		d, err = timeCmd(dumpFile, "", "mariadb-dump", b.clientArgs("--single-transaction", "--hex-blob", "--max-allowed-packet=64M", "--triggers", dbName)...)
		if err != nil {
			return err
		}
		dumpInc = append(dumpInc, d)

		// Restores of the same state, each replacing the tables.
		want, err := b.checksums()
		if err != nil {
			return err
		}
		settle()
		start := time.Now()
		if _, err := mysql.Restore(ctx, b.cfg, repo, last, mysql.RestoreOptions{Prefix: "wp_"}); err != nil {
			return fmt.Errorf("sitevault restore: %w", err)
		}
		svRestore = append(svRestore, time.Since(start))
		if got, err := b.checksums(); err != nil || got != want {
			return fmt.Errorf("sitevault restore: CHECKSUM TABLE differs (%v):\n%s\nwant\n%s", err, got, want)
		}
		repo.Close()

		settle()
		d, err = timeCmd("", dumpFile, "mariadb", b.clientArgs("--max-allowed-packet=64M", dbName)...)
		if err != nil {
			return err
		}
		mLoad = append(mLoad, d)
		if got, err := b.checksums(); err != nil || got != want {
			return fmt.Errorf("mariadb < dump.sql: CHECKSUM TABLE differs (%v)", err)
		}
		if haveMydumper {
			settle()
			d, err = timeCmd("", "", "myloader", "-h", "127.0.0.1", "-P", b.port, "-u", "root", "-p", b.srv.RootPassword,
				"-d", mydDir, "-o", "-t", "2", "-B", dbName, "-v", "1")
			if err != nil {
				return err
			}
			myloadTime = append(myloadTime, d)
			// mydumper's dump is of the state before the change: put the
			// current one back for the next round.
			if _, err := timeCmd("", dumpFile, "mariadb", b.clientArgs("--max-allowed-packet=64M", dbName)...); err != nil {
				return err
			}
		}
	}

	// The page.
	cpu := cpuModel()
	var md bytes.Buffer
	fmt.Fprintf(&md, "# Database backup and restore: sitevault vs mariadb-dump, mydumper\n\n")
	fmt.Fprintf(&md, "- date: %s\n", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&md, "- machine: %d cores (nproc), %s, %s/%s; load average at the start: %s, at the end: %s\n", runtime.NumCPU(), cpu, runtime.GOOS, runtime.GOARCH, loadBefore, loadAvg())
	fmt.Fprintf(&md, "- server: MariaDB %s, private (testsrv settings: 256 MiB buffer pool, no binlog, flush at commit 0)\n", version)
	fmt.Fprintf(&md, "- command: `%s` (rows=%d, runs=%d); figures are medians of %d rounds\n", command, rows, runs, runs)
	fmt.Fprintf(&md, "- data: mysql.GenerateWordPress: WordPress core tables, wp_postmeta with %d rows; mariadb-dump's SQL: %s\n", rows, mib(dumpBytes))
	fmt.Fprintf(&md, "- sitevault: mysql.Backup/Restore into a local repository on disk (zstd, encrypted), 2 connections; mydumper/myloader: 2 threads, 100k-row chunks; a 3 s pause before each timed restore lets InnoDB purge what the step before dropped\n\n")
	fmt.Fprintf(&md, "| operation | sitevault | mariadb-dump / mariadb | mydumper / myloader | sitevault ÷ mariadb |\n|---|---|---|---|---|\n")
	fmt.Fprintf(&md, "| full backup | %s (stored %s) | %s (%s) | %s | %.2f× |\n",
		secs(median(svFull)), mib(svFullBytes), secs(median(dumpFull)), mib(dumpBytes), orDash(mydFull, mydBytes), ratio(svFull, dumpFull))
	fmt.Fprintf(&md, "| backup after 1%% of rows changed | %s (stored %s, %.1f%% of full) | %s (%s, a full dump) | — | %.2f× |\n",
		secs(median(svInc)), mib(medianInt(svIncBytes)), 100*float64(medianInt(svIncBytes))/float64(svFullBytes), secs(median(dumpInc)), mib(dumpBytes), ratio(svInc, dumpInc))
	fmt.Fprintf(&md, "| restore | %s | %s (`mariadb < dump.sql`) | %s | %.2f× |\n",
		secs(median(svRestore)), secs(median(mLoad)), orDash(myloadTime, -1), ratio(svRestore, mLoad))
	fmt.Fprintf(&md, "\nTargets (issue 4): full ≤ 1× mariadb-dump; incremental ≤ 0.3× and ≤ 5%% of the full backup's bytes; restore ≤ 0.5× `mariadb < dump.sql`.\n")
	fmt.Fprintf(&md, "\nEvery round: sitevault's restore and `mariadb < dump.sql` are checked with CHECKSUM TABLE against the live tables.\n")
	fmt.Fprintf(&md, "\nAll rounds (s): full %v | dump %v | mydumper %v | incremental %v | dump after change %v | restore %v | mariadb < dump %v | myloader %v\n",
		list(svFull), list(dumpFull), list(mydFull), list(svInc), list(dumpInc), list(svRestore), list(mLoad), list(myloadTime))
	os.Stdout.Write(md.Bytes())
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return err
	}
	stamp := time.Now().UTC().Format("20060102T150405Z")
	if err := os.WriteFile(filepath.Join(outDir, "db-"+stamp+".md"), md.Bytes(), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(outDir, "db-latest.md"), md.Bytes(), 0o644)
}

// settle gives InnoDB's background work (purging the tables the previous
// step dropped, flushing its pages) a moment, so that it is not charged
// to the next measurement.
func settle() { time.Sleep(3 * time.Second) }

func newRepo(ctx context.Context, dir string) (*repository.Repository, error) {
	be, err := local.Create(ctx, dir)
	if err != nil {
		return nil, err
	}
	return repository.Init(ctx, be, "dbbench", repository.InitOptions{ScryptN: 1 << 12})
}

// backup runs mysql.Backup and flushes the repository, timed together.
func (b *bench) backup(repo *repository.Repository, prev *repository.ID) (time.Duration, repository.ID, error) {
	start := time.Now()
	id, _, err := mysql.Backup(b.ctx, b.cfg, repo, mysql.BackupOptions{Prefix: "wp_", Previous: prev})
	if err != nil {
		return 0, id, fmt.Errorf("sitevault backup: %w", err)
	}
	if err := repo.Flush(b.ctx); err != nil {
		return 0, id, err
	}
	return time.Since(start), id, nil
}

func (b *bench) clientArgs(extra ...string) []string {
	return append([]string{"--no-defaults", "-h127.0.0.1", "-P" + b.port, "-uroot", "-p" + b.srv.RootPassword}, extra...)
}

// checksums returns CHECKSUM TABLE of every table, as one string.
func (b *bench) checksums() (string, error) {
	rows, err := b.db.QueryContext(b.ctx, "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() ORDER BY TABLE_NAME")
	if err != nil {
		return "", err
	}
	var names []string
	for rows.Next() {
		var n string
		rows.Scan(&n)
		names = append(names, "`"+n+"`")
	}
	rows.Close()
	crows, err := b.db.QueryContext(b.ctx, "CHECKSUM TABLE "+strings.Join(names, ", "))
	if err != nil {
		return "", err
	}
	defer crows.Close()
	var s strings.Builder
	for crows.Next() {
		var n string
		var sum sql.NullString
		crows.Scan(&n, &sum)
		fmt.Fprintf(&s, "%s %s\n", n, sum.String)
	}
	return s.String(), crows.Err()
}

// timeCmd runs a program (stdout to a file, stdin from one, if given) and
// returns its wall time.
func timeCmd(stdout, stdin, name string, args ...string) (time.Duration, error) {
	cmd := exec.Command(testsrv.LookPath(name), args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if stdout != "" {
		f, err := os.Create(stdout)
		if err != nil {
			return 0, err
		}
		defer f.Close()
		cmd.Stdout = f
	}
	if stdin != "" {
		f, err := os.Open(stdin)
		if err != nil {
			return 0, err
		}
		defer f.Close()
		cmd.Stdin = f
	}
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("%s: %v\n%s", name, err, stderr.String())
	}
	return time.Since(start), nil
}

func dirBytes(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

func fileBytes(name string) int64 {
	fi, err := os.Stat(name)
	if err != nil {
		return 0
	}
	return fi.Size()
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func medianInt(ns []int64) int64 {
	s := slices.Clone(ns)
	slices.Sort(s)
	return s[len(s)/2]
}

func ratio(a, b []time.Duration) float64 { return median(a).Seconds() / median(b).Seconds() }

func secs(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }

func mib(n int64) string {
	if n < 1<<20 {
		return fmt.Sprintf("%.0f KiB", float64(n)/1024)
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

func orDash(ds []time.Duration, bytes int64) string {
	if len(ds) == 0 {
		return "—"
	}
	if bytes >= 0 {
		return fmt.Sprintf("%s (%s)", secs(median(ds)), mib(bytes))
	}
	return secs(median(ds))
}

func list(ds []time.Duration) string {
	var s []string
	for _, d := range ds {
		s = append(s, fmt.Sprintf("%.2f", d.Seconds()))
	}
	return "[" + strings.Join(s, " ") + "]"
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "model name") {
			if _, v, ok := strings.Cut(l, ":"); ok {
				return strings.TrimSpace(v)
			}
		}
	}
	return "unknown CPU"
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
