// Command dbbench compares sitevault's database backup and restore with
// mariadb-dump, `mariadb < dump.sql`, mydumper and myloader, side by side in
// one run, on a generated WordPress database (mysql.GenerateWordPress: a
// 1M-row postmeta table and the other core tables) in a private MariaDB
// (started like the tests start theirs: own port, socket and data
// directory). bench/db.sh runs it; see there.
//
// Every tool is timed as a whole process, as a user runs it. sitevault is
// the `sitevault` binary (one or more builds, -bins): a repository made by
// `sitevault init` on embedded defaults (its generated key file; with
// -password env, a password in $SITEVAULT_PASSWORD, never in argv), a site registered with `sitevault
// site add` whose wp-config.php names the bench database over TCP
// 127.0.0.1:port, then `sitevault backup SITE` and `sitevault restore SITE
// --to latest --only database --yes`, each including opening the
// repository. mariadb-dump, mariadb, mydumper and myloader connect over TCP
// to 127.0.0.1 as root (mydumper needs FLUSH TABLES WITH READ LOCK).
//
// Each round has four cases: a full backup (into a fresh repository), a
// backup after 1% of wp_postmeta changed in one region (clustered), one
// after 1% changed evenly across the key range (scattered), and a restore of
// the database; every load is checked with CHECKSUM TABLE against the
// source. The tools run in one order in odd rounds and in the reverse order
// in even rounds; the load average is recorded before every run.
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
	"strings"
	"time"

	driver "github.com/go-sql-driver/mysql"

	"github.com/sitevault/sitevault/internal/mysql"
	"github.com/sitevault/sitevault/internal/testsrv"
)

const (
	dbName     = "svbench"
	dbUser     = "svbench"
	dbPassword = "bench-db-password"
	siteName   = "bench"
	// repoPassword is handed to sitevault in $SITEVAULT_PASSWORD.
	repoPassword = "bench-password"
	// threads is what sitevault uses (mysql's Parallel default: the
	// connections of an incremental backup's checksums and of a restore);
	// mydumper and myloader get as many.
	threads = "2"
)

// The cases of a round, in the order they run.
const (
	caseFull      = "full backup"
	caseClustered = "backup after 1% changed, clustered"
	caseScattered = "backup after 1% changed, scattered"
	caseRestore   = "restore"
)

var cases = []string{caseFull, caseClustered, caseScattered, caseRestore}

func main() {
	rows := flag.Int("rows", 1_000_000, "rows of wp_postmeta")
	runs := flag.Int("runs", 3, "rounds; each figure is the median")
	workDir := flag.String("dir", "", "work folder (default: a temporary one, removed at the end)")
	outDir := flag.String("out", "bench/out", "folder for db-latest.md and a dated copy")
	command := flag.String("command", "bench/db.sh", "command line shown in the results")
	bins := flag.String("bins", "", "space-separated NAME=PATH sitevault binaries to time")
	commit := flag.String("commit", "", "the commit the bench runs from, shown in the results")
	flag.StringVar(&passwordMode, "password", "keyfile", "keyfile: the embedded defaults (the repository in the data home, opened by the key file `sitevault init` generates); "+
		"env: a repository at its own path opened by a password in $SITEVAULT_PASSWORD (a typed password's slot, scrypt N=2^16)")
	flag.Parse()
	if passwordMode != "keyfile" && passwordMode != "env" {
		log.Fatalf("-password %q: want keyfile or env", passwordMode)
	}
	log.SetFlags(0)
	log.SetPrefix("dbbench: ")
	tools, err := parseBins(*bins)
	if err != nil {
		log.Fatal(err)
	}
	if err := run(*rows, *runs, *workDir, *outDir, *command, *commit, tools); err != nil {
		log.Fatal(err)
	}
}

// passwordMode says how sitevault opens its repository (-password).
var passwordMode string

// tool is one program the bench times.
type tool struct {
	name string // as the results show it
	kind string // "sitevault", "mariadb" (mariadb-dump / mariadb < dump.sql) or "mydumper" (mydumper / myloader)
	bin  string // sitevault: the binary
	home string // sitevault: its data home (catalog with the registered site)
	repo string // sitevault: its repository
}

func parseBins(s string) ([]*tool, error) {
	var tools []*tool
	for _, nb := range strings.Fields(s) {
		name, path, ok := strings.Cut(nb, "=")
		if !ok || name == "" || path == "" {
			return nil, fmt.Errorf("-bins: %q is not NAME=PATH", nb)
		}
		abs, err := filepath.Abs(path)
		if err != nil {
			return nil, err
		}
		tools = append(tools, &tool{name: "sitevault " + name, kind: "sitevault", bin: abs})
	}
	if len(tools) == 0 {
		return nil, fmt.Errorf("-bins names no sitevault binary (NAME=PATH …)")
	}
	return tools, nil
}

// sample is one timed run.
type sample struct {
	round  int
	cas    string
	tool   string
	wall   time.Duration
	cpu    time.Duration // user + system of the process (not of the server)
	load   string        // load average (1, 5, 15 min) just before the run
	stored int64         // bytes added to the repository, or the dump's size
}

type bench struct {
	ctx     context.Context
	srv     *testsrv.MariaDB
	port    string
	dir     string
	site    string
	db      *sql.DB // root on the bench database, over the socket
	rows    int
	samples []sample
}

func run(rows, runs int, workDir, outDir, command, commit string, svTools []*tool) error {
	ctx := context.Background()
	loadBefore := loadAvg()
	for _, name := range []string{"mariadb-dump", "mariadb"} {
		if testsrv.LookPath(name) == "" {
			return fmt.Errorf("%s is missing (apt-get install mariadb-client)", name)
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
	workDir, err := filepath.Abs(workDir)
	if err != nil {
		return err
	}
	srv, stop, err := testsrv.StartMariaDBMain()
	if err != nil {
		return err
	}
	defer stop()
	b := &bench{ctx: ctx, srv: srv, port: srv.Addr[strings.LastIndexByte(srv.Addr, ':')+1:], dir: workDir, rows: rows}
	root, err := srv.Root()
	if err != nil {
		return err
	}
	for _, q := range []string{
		"CREATE DATABASE " + dbName + " CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci",
		"CREATE USER '" + dbUser + "'@'%' IDENTIFIED BY '" + dbPassword + "'",
		"GRANT ALL ON " + dbName + ".* TO '" + dbUser + "'@'%'",
	} {
		if _, err := root.ExecContext(ctx, q); err != nil {
			root.Close()
			return fmt.Errorf("%s: %w", q, err)
		}
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

	if err := b.makeSite(); err != nil {
		return err
	}
	for i, t := range svTools {
		t.home = filepath.Join(workDir, fmt.Sprintf("home%d", i))
		t.repo = filepath.Join(workDir, fmt.Sprintf("repo%d", i))
		if passwordMode == "keyfile" {
			t.repo = filepath.Join(t.home, "repo") // the embedded repository
		}
		if err := b.register(t); err != nil {
			return err
		}
	}
	tools := slices.Clone(svTools)
	tools = append(tools, &tool{name: "mariadb-dump", kind: "mariadb"})
	if haveMydumper {
		tools = append(tools, &tool{name: "mydumper", kind: "mydumper"})
	}

	var orders []string
	for r := 1; r <= runs; r++ {
		log.Printf("round %d of %d", r, runs)
		order := slices.Clone(tools)
		if r%2 == 0 {
			slices.Reverse(order)
		}
		var names []string
		for _, t := range order {
			names = append(names, t.name)
		}
		orders = append(orders, strings.Join(names, ", "))
		for _, t := range svTools {
			if err := b.initRepo(t); err != nil {
				return err
			}
		}
		for _, c := range cases {
			switch c {
			case caseClustered:
				if err := b.changeClustered(r); err != nil {
					return err
				}
			case caseScattered:
				if err := b.changeScattered(r); err != nil {
					return err
				}
			}
			var want string
			if c == caseRestore {
				if want, err = b.checksums(); err != nil {
					return err
				}
			}
			for _, t := range order {
				settle()
				if c == caseRestore {
					err = b.restore(r, t, want)
				} else {
					err = b.backup(r, c, t)
				}
				if err != nil {
					return err
				}
			}
		}
	}

	md := b.page(pageInfo{
		rows: rows, runs: runs, command: command, commit: commit, version: version,
		loadBefore: loadBefore, tools: tools, svTools: svTools, orders: orders,
	})
	os.Stdout.Write(md)
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return err
	}
	stamp := time.Now().UTC().Format("20060102T150405Z")
	if err := os.WriteFile(filepath.Join(outDir, "db-"+stamp+".md"), md, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(outDir, "db-latest.md"), md, 0o644)
}

// makeSite writes the smallest site discovery accepts: a wp-config.php
// naming the bench database over TCP (prefix wp_) and the two core files
// discovery looks for. Its files are a few hundred bytes: the database is
// what the backups take.
func (b *bench) makeSite() error {
	b.site = filepath.Join(b.dir, "site")
	if err := os.MkdirAll(filepath.Join(b.site, "wp-includes"), 0o755); err != nil {
		return err
	}
	w := &testsrv.WordPress{
		Root: b.site, Prefix: "wp_", DBHost: b.srv.Addr,
		DB: testsrv.MariaDBDatabase{Name: dbName, User: dbUser, Password: dbPassword},
	}
	files := map[string]string{
		"wp-config.php":           w.Config(),
		"wp-includes/version.php": "<?php\n$wp_version = '6.4.3';\n",
		"wp-settings.php":         "<?php\n// core\n",
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(b.site, name), []byte(text), 0o640); err != nil {
			return err
		}
	}
	return nil
}

// sv runs a sitevault binary with its home and repository: the embedded
// one and its key file (-password keyfile), or its own with the password
// in the environment (-password env).
func (b *bench) sv(t *tool, args ...string) *exec.Cmd {
	base := []string{"--home", t.home, "-q"}
	var env []string
	if passwordMode == "env" {
		base = append(base, "--repo", t.repo)
		env = append(env, "SITEVAULT_PASSWORD="+repoPassword)
	}
	cmd := exec.Command(t.bin, append(base, args...)...)
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "SITEVAULT_") {
			env = append(env, e)
		}
	}
	cmd.Env = env
	return cmd
}

// register adds the bench site to the tool's catalog (a first repository
// is initialised for it; initRepo replaces it each round).
func (b *bench) register(t *tool) error {
	if err := b.initRepo(t); err != nil {
		return err
	}
	if _, _, err := runCmd(b.sv(t, "site", "add", siteName, "--path", b.site), "", ""); err != nil {
		return fmt.Errorf("%s site add: %w", t.name, err)
	}
	return nil
}

// initRepo replaces the tool's repository with a new one, as `sitevault
// init` makes it (with -password keyfile, a new key file too).
func (b *bench) initRepo(t *tool) error {
	if err := os.RemoveAll(t.repo); err != nil {
		return err
	}
	if passwordMode == "keyfile" {
		if err := os.Remove(filepath.Join(t.home, "repo.key")); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	if _, _, err := runCmd(b.sv(t, "init"), "", ""); err != nil {
		return fmt.Errorf("%s init: %w", t.name, err)
	}
	return nil
}

// changeClustered changes 1% of the generated postmeta rows in one
// region: half appended at the end of the key range, half updated in a
// contiguous range (a different one each round).
func (b *bench) changeClustered(round int) error {
	half := max(b.rows/200, 1)
	lo := b.rows/10 + (round-1)*(b.rows/100)
	for _, q := range []string{
		fmt.Sprintf("INSERT INTO wp_postmeta (post_id, meta_key, meta_value) SELECT (%d + seq) DIV 8, CONCAT('_meta_key_', seq MOD 40), "+
			"CONCAT(MD5(seq), ' added in round %d') FROM seq_1_to_%d", b.rows, round, half),
		fmt.Sprintf("UPDATE wp_postmeta SET meta_value = CONCAT('clustered change %d ', meta_id) WHERE meta_id BETWEEN %d AND %d",
			round, lo+1, lo+half),
	} {
		if _, err := b.db.ExecContext(b.ctx, q); err != nil {
			return fmt.Errorf("clustered change: %w", err)
		}
	}
	return nil
}

// changeScattered changes 1% of the postmeta rows evenly across the key
// range: every hundredth row (a different residue each round).
func (b *bench) changeScattered(round int) error {
	q := fmt.Sprintf("UPDATE wp_postmeta SET meta_value = CONCAT('scattered change %d ', meta_id) WHERE meta_id %% 100 = %d", round, round%100)
	if _, err := b.db.ExecContext(b.ctx, q); err != nil {
		return fmt.Errorf("scattered change: %w", err)
	}
	return nil
}

func (b *bench) dumpFile() string { return filepath.Join(b.dir, "dump.sql") }
func (b *bench) mydDir() string   { return filepath.Join(b.dir, "mydumper") }

// backup times one tool's backup of the current state.
func (b *bench) backup(round int, c string, t *tool) error {
	s := sample{round: round, cas: c, tool: t.name, load: loadAvg()}
	var err error
	switch t.kind {
	case "sitevault":
		before := dirBytes(t.repo)
		s.wall, s.cpu, err = runCmd(b.sv(t, "backup", siteName), "", "")
		s.stored = dirBytes(t.repo) - before
	case "mariadb":
		s.wall, s.cpu, err = runCmd(exec.Command(testsrv.LookPath("mariadb-dump"),
			b.clientArgs("--single-transaction", "--hex-blob", "--max-allowed-packet=64M", "--triggers", dbName)...), b.dumpFile(), "")
		s.stored = fileBytes(b.dumpFile())
	case "mydumper":
		os.RemoveAll(b.mydDir())
		s.wall, s.cpu, err = runCmd(exec.Command(testsrv.LookPath("mydumper"), "-h", "127.0.0.1", "-P", b.port, "-u", "root", "-p", b.srv.RootPassword,
			"-B", dbName, "-o", b.mydDir(), "-t", threads, "-r", "100000", "--trx-consistency-only", "-G", "-v", "1"), "", "")
		s.stored = dirBytes(b.mydDir())
	}
	if err != nil {
		return fmt.Errorf("%s, %s: %w", c, t.name, err)
	}
	log.Printf("round %d, %s, %s: %.2f s (load %s)", round, c, t.name, s.wall.Seconds(), s.load)
	b.samples = append(b.samples, s)
	return nil
}

// restore times one tool's load of the state the backups of the scattered
// case saved, then checks it with CHECKSUM TABLE.
func (b *bench) restore(round int, t *tool, want string) error {
	s := sample{round: round, cas: caseRestore, tool: t.name, load: loadAvg(), stored: -1}
	var err error
	switch t.kind {
	case "sitevault":
		s.wall, s.cpu, err = runCmd(b.sv(t, "restore", siteName, "--to", "latest", "--only", "database", "--yes"), "", "")
	case "mariadb":
		s.tool = "mariadb < dump.sql"
		s.wall, s.cpu, err = runCmd(exec.Command(testsrv.LookPath("mariadb"), b.clientArgs("--max-allowed-packet=64M", dbName)...), "", b.dumpFile())
	case "mydumper":
		s.tool = "myloader"
		s.wall, s.cpu, err = runCmd(exec.Command(testsrv.LookPath("myloader"), "-h", "127.0.0.1", "-P", b.port, "-u", "root", "-p", b.srv.RootPassword,
			"-d", b.mydDir(), "-o", "-t", threads, "-B", dbName, "-v", "1"), "", "")
	}
	if err != nil {
		return fmt.Errorf("restore, %s: %w", s.tool, err)
	}
	got, err := b.checksums()
	if err != nil || got != want {
		return fmt.Errorf("restore, %s: CHECKSUM TABLE differs from the source (%v):\n%s\nwant\n%s", s.tool, err, got, want)
	}
	log.Printf("round %d, restore, %s: %.2f s, CHECKSUM TABLE equal (load %s)", round, s.tool, s.wall.Seconds(), s.load)
	b.samples = append(b.samples, s)
	return nil
}

// settle gives InnoDB's background work (purging what the step before
// changed or dropped, flushing its pages) a moment, so that it is not
// charged to the next measurement.
func settle() { time.Sleep(3 * time.Second) }

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

// runCmd runs cmd (stdout to a file, stdin from one, if given) and returns
// its wall time and CPU time (user + system).
func runCmd(cmd *exec.Cmd, stdout, stdin string) (wall, cpu time.Duration, err error) {
	var out bytes.Buffer
	cmd.Stderr = &out
	cmd.Stdout = &out
	if stdout != "" {
		f, err := os.Create(stdout)
		if err != nil {
			return 0, 0, err
		}
		defer f.Close()
		cmd.Stdout = f
	}
	if stdin != "" {
		f, err := os.Open(stdin)
		if err != nil {
			return 0, 0, err
		}
		defer f.Close()
		cmd.Stdin = f
	}
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return 0, 0, fmt.Errorf("%s: %v\n%s", filepath.Base(cmd.Path), err, out.String())
	}
	wall = time.Since(start)
	return wall, cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), nil
}

type pageInfo struct {
	rows, runs                           int
	command, commit, version, loadBefore string
	tools, svTools                       []*tool
	orders                               []string
}

// The goals of issue 11.
const (
	goalFull        = 1.0  // full backup time ÷ mariadb-dump time
	goalIncTime     = 0.5  // incremental backup time ÷ mariadb-dump time
	goalIncBytes    = 0.05 // incremental stored bytes ÷ full stored bytes
	goalRestoreTime = 0.5  // restore time ÷ `mariadb < dump.sql` time
)

// page renders the results as markdown.
func (b *bench) page(p pageInfo) []byte {
	walls := func(c, name string) []time.Duration {
		var ds []time.Duration
		for _, s := range b.samples {
			if s.cas == c && s.tool == name {
				ds = append(ds, s.wall)
			}
		}
		return ds
	}
	stored := func(c, name string) []int64 {
		var ns []int64
		for _, s := range b.samples {
			if s.cas == c && s.tool == name {
				ns = append(ns, s.stored)
			}
		}
		return ns
	}
	met := func(ok bool) string {
		if ok {
			return "met"
		}
		return "not met"
	}
	var md bytes.Buffer
	fmt.Fprintf(&md, "# Database backup and restore: sitevault vs mariadb-dump, mydumper (whole processes)\n\n")
	fmt.Fprintf(&md, "- date: %s; commit %s\n", time.Now().UTC().Format("2006-01-02 15:04 MST"), p.commit)
	fmt.Fprintf(&md, "- machine: %d cores (nproc), %s, %s/%s; load average (1, 5, 15 min) at the start: %s, at the end: %s; each run's is listed below\n",
		runtime.NumCPU(), cpuModel(), runtime.GOOS, runtime.GOARCH, p.loadBefore, loadAvg())
	fmt.Fprintf(&md, "- server: MariaDB %s, private (testsrv settings: 256 MiB buffer pool, no binlog, flush at commit 0)\n", p.version)
	fmt.Fprintf(&md, "- command: `%s` (rows=%d, runs=%d); figures are medians of %d rounds\n", p.command, p.rows, p.runs, p.runs)
	var bins []string
	for _, t := range p.svTools {
		bins = append(bins, fmt.Sprintf("%s = %s", t.name, t.bin))
	}
	fmt.Fprintf(&md, "- binaries: %s\n", strings.Join(bins, "; "))
	fmt.Fprintf(&md, "- data: mysql.GenerateWordPress: WordPress core tables, wp_postmeta with %d rows (plus 0.5%% appended each round by the clustered change)\n", p.rows)
	fmt.Fprintf(&md, "- sitevault: whole `sitevault` processes, as a user runs them: a repository from `sitevault init` on local disk "+
		"(zstd, encrypted; %s), a site from `sitevault site add` "+
		"(a folder holding only wp-config.php and two core files; the database as wp-config.php names it, TCP 127.0.0.1, prefix wp_); "+
		"timed: `sitevault backup %s` and `sitevault restore %s --to latest --only database --yes` (which first saves a pre-restore point of the database, as every restore does), "+
		"each opening the repository. Stored: bytes added to the repository directory (apparent size, as du -sb).\n", passwordDesc(), siteName, siteName)
	fmt.Fprintf(&md, "- mariadb-dump --single-transaction to a file; `mariadb < dump.sql`; mydumper/myloader with %s threads (sitevault's connections for checksums and loads) and 100k-row chunks; all as root over TCP 127.0.0.1\n", threads)
	fmt.Fprintf(&md, "- clustered change: %d rows appended and %d contiguous rows updated (1%%); scattered change: `UPDATE wp_postmeta … WHERE meta_id %% 100 = k` (1%%, evenly across the key range); each backup case is a full mariadb-dump / mydumper for those tools\n",
		max(p.rows/200, 1), max(p.rows/200, 1))
	fmt.Fprintf(&md, "- every load (sitevault restore, `mariadb < dump.sql`, myloader) is checked with CHECKSUM TABLE against the source; a 3 s pause before each run lets InnoDB purge and flush\n\n")

	fmt.Fprintf(&md, "| case | tool | time | stored | mariadb-dump (or `mariadb < dump.sql`) | mydumper (or myloader) | time ÷ mariadb | stored ÷ full | goal | result |\n|---|---|---|---|---|---|---|---|---|---|\n")
	refName := map[string]string{caseRestore: "mariadb < dump.sql"}
	mydName := map[string]string{caseRestore: "myloader"}
	for _, c := range cases {
		ref, myd := "mariadb-dump", "mydumper"
		if n, ok := refName[c]; ok {
			ref, myd = n, mydName[c]
		}
		refT := median(walls(c, ref))
		refCol := secs(refT)
		if c != caseRestore {
			refCol += " (" + size(medianInt(stored(c, ref))) + ")"
		}
		mydCol := "—"
		if ds := walls(c, myd); len(ds) > 0 {
			mydCol = secs(median(ds))
		}
		for _, t := range p.svTools {
			tm := median(walls(c, t.name))
			r := tm.Seconds() / refT.Seconds()
			storedCol, bytesRatio, goal, ok := "—", "—", "", false
			if c != caseRestore {
				storedCol = size(medianInt(stored(c, t.name)))
			}
			switch c {
			case caseFull:
				goal, ok = fmt.Sprintf("time ≤ %.1f×", goalFull), r <= goalFull
			case caseClustered, caseScattered:
				br := float64(medianInt(stored(c, t.name))) / float64(medianInt(stored(caseFull, t.name)))
				bytesRatio = fmt.Sprintf("%.1f%%", 100*br)
				goal, ok = fmt.Sprintf("time ≤ %.1f×, stored ≤ %.0f%%", goalIncTime, 100*goalIncBytes), r <= goalIncTime && br <= goalIncBytes
			case caseRestore:
				goal, ok = fmt.Sprintf("time ≤ %.1f×", goalRestoreTime), r <= goalRestoreTime
			}
			fmt.Fprintf(&md, "| %s | %s | %s | %s | %s | %s | %.2f× | %s | %s | %s |\n",
				c, t.name, secs(tm), storedCol, refCol, mydCol, r, bytesRatio, goal, met(ok))
		}
	}

	fmt.Fprintf(&md, "\nEach run (wall and CPU of the process, not the server's; load average before it). Order of the tools:\n\n")
	for i, o := range p.orders {
		fmt.Fprintf(&md, "- round %d: %s\n", i+1, o)
	}
	fmt.Fprintf(&md, "\n| round | case | tool | wall | CPU | stored | load before |\n|---|---|---|---|---|---|---|\n")
	for _, s := range b.samples {
		st := "—"
		if s.stored >= 0 {
			st = size(s.stored)
		}
		fmt.Fprintf(&md, "| %d | %s | %s | %s | %s | %s | %s |\n", s.round, s.cas, s.tool, secs(s.wall), secs(s.cpu), st, s.load)
	}
	return md.Bytes()
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

// median of ds: the middle one, or the mean of the two middle ones.
func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 0 {
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return s[len(s)/2]
}

func medianInt(ns []int64) int64 {
	if len(ns) == 0 {
		return 0
	}
	s := slices.Clone(ns)
	slices.Sort(s)
	if len(s)%2 == 0 {
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return s[len(s)/2]
}

func secs(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }

func size(n int64) string {
	if n < 1<<20 {
		return fmt.Sprintf("%.0f KiB", float64(n)/1024)
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
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

// loadAvg is the load average over 1, 5 and 15 minutes, as uptime shows it.
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

// passwordDesc says in the results how sitevault opened its repository.
func passwordDesc() string {
	if passwordMode == "env" {
		return "at its own path, the password in $SITEVAULT_PASSWORD: a typed password's slot, scrypt N=2^16 r=8"
	}
	return "the embedded defaults: the repository in the data home, opened by the key file `sitevault init` generated (its slot scrypt N=2^10: 256 random bits need no stretching)"
}
