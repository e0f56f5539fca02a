// Command svcbench measures `sitevault serve` at scale: it registers N
// small simulated WordPress sites (one folder and one table prefix each,
// all in one private MariaDB) through the HTTP API, sets every site's
// daily window to start at the same minute a few moments ahead and last
// -window, and lets that compressed "day" run, first with one serve
// process on the SQLite catalog, then with two serve processes sharing a
// private PostgreSQL catalog (and one repository). bench/service.sh runs
// it; see there.
//
// Everything is measured from outside, on whole processes: the jobs as
// GET /api/v1/jobs lists them (created, started, finished, worker and the
// backup's own "seconds" in the result), the CPU time and memory of every
// process from /proc (serve, mariadbd, the PostgreSQL server), and the
// whole machine's CPU from /proc/stat (the machine is shared: what the
// bench's processes did not use is shown as "other").
package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"os/signal"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	driver "github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver

	"github.com/sitevault/sitevault/internal/schedule"
	"github.com/sitevault/sitevault/internal/testsrv"
)

const (
	dbName        = "svbench"
	dbUser        = "svbench"
	ownerEmail    = "bench@localhost"
	repoPassword  = "bench-password"
	clockTicks    = 100 // USER_HZ on Linux
	ownerPassword = "bench-owner-password-1"
)

type options struct {
	bin         string
	n           int
	window      time.Duration
	concurrency int
	parallel    int
	modes       []string
	dir         string
	out         string
	command     string
	timeout     time.Duration
	lead        time.Duration
	stall       time.Duration
}

func main() {
	var o options
	var modes string
	flag.StringVar(&o.bin, "sitevault", "bin/sitevault", "the sitevault binary")
	flag.IntVar(&o.n, "n", 1000, "sites")
	flag.DurationVar(&o.window, "window", 5*time.Minute, "every site's schedule window (the compressed day)")
	flag.IntVar(&o.concurrency, "concurrency", 2, "--concurrency of each serve process")
	flag.IntVar(&o.parallel, "parallel", 4, "API requests at once while registering the sites")
	flag.StringVar(&modes, "modes", "sqlite,postgres", "runs: sqlite (one serve), postgres (two serve processes)")
	flag.StringVar(&o.dir, "dir", "", "work folder (default: a temporary one, removed at the end)")
	flag.StringVar(&o.out, "out", "bench/out", "folder for service-latest.md and a dated copy")
	flag.StringVar(&o.command, "command", "bench/service.sh", "command line shown in the results")
	flag.DurationVar(&o.timeout, "timeout", 60*time.Minute, "give up on a run after this long past the window's start")
	flag.DurationVar(&o.lead, "lead", 40*time.Second, "least time between the end of the set-up and the window's start")
	flag.DurationVar(&o.stall, "stall", 2*time.Minute, "after the window, give up when no backup ended for this long (the serve processes then dump their goroutines into their logs)")
	flag.Parse()
	o.modes = strings.Split(modes, ",")
	log.SetFlags(log.Ltime)
	log.SetPrefix("svcbench: ")
	if err := run(o); err != nil {
		log.Fatal(err)
	}
}

// run is the whole benchmark.
func run(o options) (err error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	bin, err := filepath.Abs(o.bin)
	if err != nil {
		return err
	}
	o.bin = bin
	loadBefore := loadAvg()
	if o.dir == "" {
		d, err := os.MkdirTemp("", "sitevault-svcbench-")
		if err != nil {
			return err
		}
		// PostgreSQL runs as the postgres user when we are root: it must
		// be able to enter the work folder to reach its own data folder.
		if err := os.Chmod(d, 0o755); err != nil {
			return err
		}
		defer func() {
			if err == nil {
				os.RemoveAll(d)
			} else {
				log.Printf("the work folder %s is kept: it holds the logs", d)
			}
		}()
		o.dir = d
	}
	o.dir, _ = filepath.Abs(o.dir)

	log.Print("starting a private MariaDB")
	srv, stopDB, err := testsrv.StartMariaDBMain()
	if err != nil {
		return err
	}
	defer stopDB()
	dbPassword := randomHex(12)
	gen := time.Now()
	if err := makeDatabase(ctx, srv, dbPassword, o.n); err != nil {
		return err
	}
	if err := makeSites(filepath.Join(o.dir, "sites"), srv.Addr, dbPassword, o.n); err != nil {
		return err
	}
	log.Printf("%d sites generated in %v", o.n, time.Since(gen).Round(time.Millisecond))
	mariadbPID := readPID(filepath.Join(filepath.Dir(srv.Socket), "mariadbd.pid"))

	var results []*result
	for _, mode := range o.modes {
		var r *result
		switch mode {
		case "sqlite":
			r, err = runMode(ctx, o, "sqlite", 1, "", mariadbPID, nil)
		case "postgres":
			pg, perr := startPostgres(filepath.Join(o.dir, "pg"))
			if perr != nil {
				return perr
			}
			r, err = runMode(ctx, o, "postgres", 2, pg.url, mariadbPID, pg)
			pg.stop()
		default:
			return fmt.Errorf("-modes: unknown run %q (sqlite or postgres)", mode)
		}
		if err != nil {
			return err
		}
		results = append(results, r)
	}
	report := formatReport(o, results, loadBefore)
	fmt.Println(report)
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	stamp := time.Now().UTC().Format("20060102T150405Z")
	os.WriteFile(filepath.Join(o.out, "service-"+stamp+".md"), []byte(report+"\n"), 0o644)
	return os.WriteFile(filepath.Join(o.out, "service-latest.md"), []byte(report+"\n"), 0o644)
}

// --- the simulated sites ---

func siteName(i int) string { return fmt.Sprintf("s%04d", i) }

// makeDatabase creates the shared database, its user and each site's
// three tables (options, posts, postmeta; primary keys; ~240 rows).
func makeDatabase(ctx context.Context, srv *testsrv.MariaDB, password string, n int) error {
	root, err := srv.Root()
	if err != nil {
		return err
	}
	defer root.Close()
	for _, q := range []string{
		"CREATE DATABASE " + dbName + " CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci",
		"CREATE USER '" + dbUser + "'@'%' IDENTIFIED BY '" + password + "'",
		"GRANT ALL ON " + dbName + ".* TO '" + dbUser + "'@'%'",
	} {
		if _, err := root.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", strings.Fields(q)[0]+" "+strings.Fields(q)[1], err)
		}
	}
	dc := driver.NewConfig()
	dc.Net, dc.Addr, dc.User, dc.Passwd, dc.DBName, dc.MultiStatements = "unix", srv.Socket, "root", srv.RootPassword, dbName, true
	conn, err := driver.NewConnector(dc)
	if err != nil {
		return err
	}
	db := sql.OpenDB(conn)
	defer db.Close()
	db.SetMaxOpenConns(4)
	errs := make(chan error, n)
	work := make(chan int)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				if _, err := db.ExecContext(ctx, siteTablesSQL(siteName(i)+"_", i)); err != nil {
					errs <- fmt.Errorf("tables of %s: %w", siteName(i), err)
				}
			}
		}()
	}
	for i := 1; i <= n; i++ {
		work <- i
	}
	close(work)
	wg.Wait()
	close(errs)
	return <-errs
}

func siteTablesSQL(p string, seed int) string {
	r := rand.New(rand.NewPCG(uint64(seed), 7))
	var b strings.Builder
	fmt.Fprintf(&b, `CREATE TABLE %[1]soptions (option_id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
		option_name VARCHAR(191) NOT NULL UNIQUE, option_value LONGTEXT NOT NULL, autoload VARCHAR(20) NOT NULL DEFAULT 'yes');
	CREATE TABLE %[1]sposts (ID BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, post_author BIGINT UNSIGNED NOT NULL,
		post_date DATETIME NOT NULL, post_title TEXT NOT NULL, post_content LONGTEXT NOT NULL, post_status VARCHAR(20) NOT NULL,
		post_name VARCHAR(200) NOT NULL, post_type VARCHAR(20) NOT NULL, KEY type_status (post_type, post_status));
	CREATE TABLE %[1]spostmeta (meta_id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, post_id BIGINT UNSIGNED NOT NULL,
		meta_key VARCHAR(255), meta_value LONGTEXT, KEY post_id (post_id));
	`, p)
	b.WriteString("INSERT INTO " + p + "options (option_name, option_value) VALUES ")
	for i := range 40 {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, "('option_%d','%s')", i, words(r, 8))
	}
	b.WriteString(";\nINSERT INTO " + p + "posts (post_author, post_date, post_title, post_content, post_status, post_name, post_type) VALUES ")
	for i := range 100 {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, "(1, '2026-%02d-%02d 10:00:00', '%s', '%s', 'publish', 'post-%d', 'post')", 1+i%12, 1+i%28, words(r, 5), words(r, 60), i)
	}
	b.WriteString(";\nINSERT INTO " + p + "postmeta (post_id, meta_key, meta_value) VALUES ")
	for i := range 100 {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, "(%d, '_meta_%d', '%s')", 1+i, i%7, words(r, 4))
	}
	b.WriteString(";")
	return b.String()
}

var vocabulary = strings.Fields("lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore et dolore magna aliqua backup restore site press theme plugin upload")

func words(r *rand.Rand, n int) string {
	w := make([]string, n)
	for i := range w {
		w[i] = vocabulary[r.IntN(len(vocabulary))]
	}
	return strings.Join(w, " ")
}

// makeSites writes each site's folder: wp-config.php, the two files
// sitevault recognises WordPress by, and a few small files in plugins,
// themes and uploads (about 12 KB a site, different in every site).
func makeSites(dir, dbAddr, password string, n int) error {
	for i := 1; i <= n; i++ {
		name := siteName(i)
		root := filepath.Join(dir, name)
		r := rand.New(rand.NewPCG(uint64(i), 11))
		files := map[string]string{
			"wp-config.php": fmt.Sprintf(`<?php
define( 'DB_NAME', '%s' );
define( 'DB_USER', '%s' );
define( 'DB_PASSWORD', '%s' );
define( 'DB_HOST', '%s' );
define( 'DB_CHARSET', 'utf8mb4' );
define( 'DB_COLLATE', '' );
define( 'AUTH_KEY', '%s' );
$table_prefix = '%s_';
define( 'WP_DEBUG', false );
if ( ! defined( 'ABSPATH' ) ) {
	define( 'ABSPATH', __DIR__ . '/' );
}
require_once ABSPATH . 'wp-settings.php';
`, dbName, dbUser, password, dbAddr, randomHex(16), name),
			"wp-settings.php":                       "<?php\n// WordPress core (stub for the benchmark)\n",
			"wp-includes/version.php":               "<?php\n$wp_version = '6.7.1';\n$wp_db_version = 58975;\n",
			"index.php":                             "<?php\ndefine( 'WP_USE_THEMES', true );\nrequire __DIR__ . '/wp-blog-header.php';\n",
			".htaccess":                             "# BEGIN WordPress\nRewriteEngine On\n# END WordPress\n",
			"wp-content/plugins/hello/hello.php":    "<?php\n/* Plugin Name: Hello " + name + " */\n// " + words(r, 200) + "\n",
			"wp-content/themes/bench/style.css":     "/* Theme Name: Bench " + name + " */\n/* " + words(r, 150) + " */\n",
			"wp-content/themes/bench/functions.php": "<?php\n// " + words(r, 150) + "\n",
			"wp-content/uploads/2026/12/notes.txt":  words(r, 300) + "\n",
			"wp-content/uploads/2026/11/notes.txt":  words(r, 300) + "\n",
		}
		for rel, content := range files {
			p := filepath.Join(root, rel)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
				return err
			}
		}
	}
	return nil
}

// --- PostgreSQL ---

type postgres struct {
	url  string
	pid  int
	cmd  *exec.Cmd
	dir  string
	done chan struct{}
}

// startPostgres starts a private PostgreSQL (initdb in dir, loopback, a
// free port, its socket in dir); as root it runs as the postgres user.
func startPostgres(dir string) (*postgres, error) {
	bindir := ""
	if m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb"); len(m) > 0 {
		slices.Sort(m)
		bindir = filepath.Dir(m[len(m)-1])
	} else if p, err := exec.LookPath("initdb"); err == nil {
		bindir = filepath.Dir(p)
	} else {
		return nil, errors.New("PostgreSQL is not installed (scripts/deps.sh bench installs it)")
	}
	os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	var wrap []string
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root, PostgreSQL needs the postgres user: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, err
		}
		wrap = []string{"runuser", "-u", "postgres", "--"}
	}
	command := func(args ...string) *exec.Cmd {
		all := append(slices.Clone(wrap), args...)
		return exec.Command(all[0], all[1:]...)
	}
	data := filepath.Join(dir, "data")
	if out, err := command(filepath.Join(bindir, "initdb"), "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(filepath.Dir(dir), "postgres.log"))
	if err != nil {
		return nil, err
	}
	cmd := command(filepath.Join(bindir, "postgres"), "-D", data, "-c", "listen_addresses=127.0.0.1",
		"-c", "port="+strconv.Itoa(port), "-c", "unix_socket_directories="+dir, "-c", "max_connections=100")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	pg := &postgres{cmd: cmd, dir: dir, done: make(chan struct{}),
		url: fmt.Sprintf("postgres://postgres@127.0.0.1:%d/sitevault?sslmode=disable", port)}
	go func() { cmd.Wait(); logf.Close(); close(pg.done) }()
	admin := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	deadline := time.Now().Add(60 * time.Second)
	for {
		db, err := sql.Open("pgx", admin)
		if err == nil {
			_, err = db.Exec("CREATE DATABASE sitevault")
			db.Close()
		}
		if err == nil {
			break
		}
		select {
		case <-pg.done:
			return nil, fmt.Errorf("postgres exited during start-up; see %s", logf.Name())
		default:
		}
		if time.Now().After(deadline) {
			pg.stop()
			return nil, fmt.Errorf("postgres not ready after 60 s: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	pg.pid = readPID(filepath.Join(data, "postmaster.pid"))
	log.Printf("PostgreSQL on 127.0.0.1:%d (pid %d)", port, pg.pid)
	return pg, nil
}

func (pg *postgres) stop() {
	if pg.pid > 0 {
		syscall.Kill(pg.pid, syscall.SIGINT) // fast shutdown
	} else {
		pg.cmd.Process.Signal(syscall.SIGINT)
	}
	select {
	case <-pg.done:
	case <-time.After(30 * time.Second):
		syscall.Kill(-pg.cmd.Process.Pid, syscall.SIGKILL)
		<-pg.done
	}
	os.RemoveAll(pg.dir)
}

// --- one run ---

type serveProc struct {
	name string
	home string
	addr string
	cmd  *exec.Cmd
	done chan struct{}
	logf *os.File
}

func (p *serveProc) pid() int { return p.cmd.Process.Pid }

type result struct {
	mode        string
	workers     int
	concurrency int
	n           int
	window      time.Duration
	start       time.Time // the window's start

	register       time.Duration // N POSTs
	registerP50    time.Duration
	registerP95    time.Duration
	patch          time.Duration // N PATCHes of the schedule
	jobs           []job
	duplicates     int
	failed         int
	missing        int
	rssStart       map[string]int64 // KiB, right after start
	rssSites       map[string]int64 // KiB, with the sites registered and scheduled
	hwm            map[string]int64 // KiB, peak
	threads        map[string]int
	cpu            map[string]float64 // CPU seconds during the day
	machineBusy    float64            // share of the machine's CPU time in use during the day
	machineIOWait  float64
	dayWall        time.Duration // the window's start to the last job's end
	repoBytes      int64
	serveCommands  []string
	timedOut       bool
	lateSchedulers int // jobs queued more than 2 s after their moment
	lostEdits      int // schedule edits the scheduler overwrote
}

type job struct {
	ID       int64           `json:"id"`
	Kind     string          `json:"kind"`
	Site     string          `json:"site"`
	Trigger  string          `json:"trigger"`
	State    string          `json:"state"`
	Worker   string          `json:"worker"`
	Attempt  int             `json:"attempt"`
	Created  time.Time       `json:"created"`
	RunAfter time.Time       `json:"run_after"`
	Started  *time.Time      `json:"started"`
	Finished *time.Time      `json:"finished"`
	Result   json.RawMessage `json:"result"`
	Error    string          `json:"error"`

	seconds   float64   // the backup's own time, from the result
	scheduled time.Time // the site's moment in the window
}

func runMode(ctx context.Context, o options, mode string, workers int, catalogURL string, mariadbPID int, pg *postgres) (*result, error) {
	log.Printf("run %s: %d serve process(es), --concurrency %d, %d sites, window %v", mode, workers, o.concurrency, o.n, o.window)
	base := filepath.Join(o.dir, mode)
	os.RemoveAll(base)
	repo := filepath.Join(base, "repo")
	if err := os.MkdirAll(base, 0o700); err != nil {
		return nil, err
	}
	env := append(os.Environ(), "SITEVAULT_PASSWORD="+repoPassword, "SITEVAULT_OWNER_EMAIL="+ownerEmail,
		"SITEVAULT_OWNER_PASSWORD="+ownerPassword, "SITEVAULT_CATALOG="+catalogURL)
	env = slices.DeleteFunc(env, func(s string) bool { return strings.HasPrefix(s, "SITEVAULT_REPOSITORY=") })
	home1 := filepath.Join(base, "home-1")
	init := exec.Command(o.bin, "--home", home1, "--repo", repo, "init")
	init.Env = env
	if out, err := init.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("sitevault init: %v\n%s", err, out)
	}
	res := &result{mode: mode, workers: workers, concurrency: o.concurrency, n: o.n, window: o.window,
		rssStart: map[string]int64{}, rssSites: map[string]int64{}, hwm: map[string]int64{}, threads: map[string]int{}, cpu: map[string]float64{}}
	var procs []*serveProc
	defer func() {
		for _, p := range procs {
			p.stop()
		}
	}()
	for w := 1; w <= workers; w++ {
		home := filepath.Join(base, fmt.Sprintf("home-%d", w))
		if err := os.MkdirAll(home, 0o700); err != nil {
			return nil, err
		}
		if w > 1 {
			// Every worker seals and opens secrets with the same key.
			key, err := os.ReadFile(filepath.Join(home1, "secret.key"))
			if err != nil {
				return nil, fmt.Errorf("the first worker's secret.key: %w", err)
			}
			if err := os.WriteFile(filepath.Join(home, "secret.key"), key, 0o600); err != nil {
				return nil, err
			}
		}
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		p := &serveProc{name: fmt.Sprintf("serve-%d", w), home: home, addr: fmt.Sprintf("127.0.0.1:%d", port), done: make(chan struct{})}
		args := []string{"--home", home, "--repo", repo, "serve", "--listen", p.addr, "--worker", p.name,
			"--concurrency", strconv.Itoa(o.concurrency), "--scheduler-every", "1s", "--check-every", "0", "--prune-every", "0", "--log-format", "json"}
		res.serveCommands = append(res.serveCommands, "sitevault "+strings.Join(args, " "))
		p.logf, err = os.Create(filepath.Join(base, p.name+".log"))
		if err != nil {
			return nil, err
		}
		p.cmd = exec.Command(o.bin, args...)
		p.cmd.Env, p.cmd.Stdout, p.cmd.Stderr = env, p.logf, p.logf
		if err := p.cmd.Start(); err != nil {
			return nil, err
		}
		go func() { p.cmd.Wait(); close(p.done) }()
		procs = append(procs, p)
		if err := waitHealthy(p); err != nil {
			return nil, err
		}
		res.rssStart[p.name] = procStatus(p.pid(), "VmRSS")
	}

	api, err := signIn(procs[0].addr)
	if err != nil {
		return nil, err
	}
	// Register every site with its schedule off; the window is set once
	// all are in, so that the "day" starts at a known moment.
	log.Printf("registering %d sites through POST /api/v1/sites (%d at once)", o.n, o.parallel)
	lat, took, err := forEachSite(o.n, o.parallel, func(name string) error {
		return api.do("POST", "/api/v1/sites", map[string]any{"name": name, "path": filepath.Join(o.dir, "sites", name),
			"schedule": map[string]any{"off": true}}, http.StatusCreated)
	})
	if err != nil {
		return nil, err
	}
	res.register = took
	res.registerP50, res.registerP95 = durPercentile(lat, 50), durPercentile(lat, 95)
	log.Printf("registered in %v (p50 %v, p95 %v per request)", took.Round(time.Millisecond), res.registerP50, res.registerP95)

	// The window starts at the first whole minute far enough ahead for
	// the PATCHes (estimated from the POSTs, which also check the site).
	est := o.lead + took/4
	start := time.Now().UTC().Add(est).Truncate(time.Minute).Add(time.Minute)
	res.start = start
	sched := map[string]any{"start": start.Format("15:04"), "window": int64(o.window), "time_zone": "UTC"}
	log.Printf("setting every window to %s UTC + %v", start.Format("15:04"), o.window)
	_, took, err = forEachSite(o.n, o.parallel, func(name string) error {
		return api.do("PATCH", "/api/v1/sites/"+name, map[string]any{"schedule": sched, "skip_check": true}, http.StatusOK)
	})
	if err != nil {
		return nil, err
	}
	res.patch = took
	if now := time.Now(); !now.Before(start.Add(-2 * time.Second)) {
		return nil, fmt.Errorf("setting the schedules ended at %s, after the window's start %s: raise -lead", now.Format(time.TimeOnly), start.Format(time.TimeOnly))
	}
	log.Printf("schedules set in %v; the day starts in %v", took.Round(time.Millisecond), time.Until(start).Round(time.Second))
	// Check that every site is due at its moment. An edit that lands
	// while a scheduler computes the site's first moment can be lost
	// (see docs/benchmarks.md); such sites are edited again with the same
	// schedule spelt "Etc/UTC", which the catalog takes for a change.
	for round := 0; ; round++ {
		time.Sleep(3 * time.Second)
		lost, err := api.lostSchedules(start, o.window)
		if err != nil {
			return nil, err
		}
		if round == 0 {
			res.lostEdits = len(lost)
		}
		if len(lost) == 0 {
			break
		}
		if round == 3 {
			return nil, fmt.Errorf("%d sites are not due at their moment after 3 edits (e.g. %s)", len(lost), lost[0])
		}
		log.Printf("%d sites are not due at their moment (a lost schedule edit): editing them again", len(lost))
		alt := map[string]any{"start": start.Format("15:04"), "window": int64(o.window), "time_zone": []string{"Etc/UTC", "UTC"}[round%2]}
		for _, name := range lost {
			if err := api.do("PATCH", "/api/v1/sites/"+name, map[string]any{"schedule": alt, "skip_check": true}, http.StatusOK); err != nil {
				return nil, err
			}
		}
	}
	if now := time.Now(); !now.Before(start.Add(-2 * time.Second)) {
		return nil, fmt.Errorf("the schedules were right only at %s, after the window's start %s: raise -lead", now.Format(time.TimeOnly), start.Format(time.TimeOnly))
	}

	// Sample the processes from now until the last job ends.
	pids := map[string]int{"mariadbd": mariadbPID}
	for _, p := range procs {
		pids[p.name] = p.pid()
	}
	if pg != nil {
		pids["postgres"] = pg.pid
	}
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(time.Until(start.Add(-3 * time.Second))):
	}
	for _, p := range procs {
		res.rssSites[p.name] = procStatus(p.pid(), "VmRSS")
	}
	sampler := newSampler(pids)
	before := sampler.take()

	// Wait for every site's scheduled backup to end.
	deadline := start.Add(o.window + o.timeout)
	progress, progressAt := -1, time.Now()
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(3 * time.Second):
		}
		// The job counts from /metrics: listing the jobs themselves
		// while they run would weigh on the serve process (each
		// result is large, see the notes).
		ended, err := api.endedBackups()
		if err != nil {
			return nil, err
		}
		log.Printf("%s: %d of %d backups ended", time.Now().UTC().Format(time.TimeOnly), ended, o.n)
		if ended >= o.n {
			break
		}
		if ended != progress {
			progress, progressAt = ended, time.Now()
		} else if time.Since(progressAt) > o.stall && time.Now().After(start.Add(o.window)) {
			return nil, stalled(base, procs, pg, ended, o.n, o.stall)
		}
		for _, p := range procs {
			select {
			case <-p.done:
				return nil, fmt.Errorf("%s exited; see %s", p.name, p.logf.Name())
			default:
			}
		}
		if time.Now().After(deadline) {
			res.timedOut = true
			break
		}
	}
	after := sampler.take()
	for _, p := range procs {
		res.hwm[p.name] = procStatus(p.pid(), "VmHWM")
		res.threads[p.name] = int(procStatus(p.pid(), "Threads"))
	}
	res.hwm["mariadbd"] = procStatus(mariadbPID, "VmHWM")
	all, err := api.jobs("")
	if err != nil {
		return nil, err
	}
	for _, p := range procs {
		p.stop()
	}
	procs = nil
	res.repoBytes = duBytes(repo)

	// The jobs of the day.
	if b, err := json.Marshal(mapf(all, func(j job) job { j.Result = nil; return j })); err == nil {
		os.WriteFile(filepath.Join(base, "jobs.json"), b, 0o644)
	}
	perSite := map[string]int{}
	var last time.Time
	for _, j := range all {
		if j.Kind != "backup" || j.Trigger != "daily" {
			continue
		}
		switch j.State {
		case "succeeded":
			perSite[j.Site]++
			var r struct {
				Seconds float64 `json:"seconds"`
			}
			json.Unmarshal(j.Result, &r)
			j.seconds = r.Seconds
			j.scheduled = start.Add(schedule.Offset(j.Site, o.window))
			if j.Finished.After(last) {
				last = *j.Finished
			}
			if j.Created.Sub(j.scheduled) > 2*time.Second {
				res.lateSchedulers++
			}
			res.jobs = append(res.jobs, j)
		case "failed":
			res.failed++
			log.Printf("failed: job %d of %s on %s: %s", j.ID, j.Site, j.Worker, j.Error)
		}
	}
	for _, c := range perSite {
		if c > 1 {
			res.duplicates += c - 1
		}
	}
	res.missing = o.n - len(perSite)
	res.dayWall = last.Sub(start)
	// CPU during the day: from the first sample (3 s before the window)
	// to the last (after the last job); the machine's share is over the
	// same span.
	span := after.t.Sub(before.t).Seconds()
	for name := range after.ticks {
		res.cpu[name] = float64(after.ticks[name]-before.ticks[name]) / clockTicks
	}
	total := float64(after.total - before.total)
	if total > 0 {
		res.machineBusy = float64(after.busy-before.busy) / total
		res.machineIOWait = float64(after.iowait-before.iowait) / total
	}
	res.cpu["(span s)"] = span
	log.Printf("run %s: %d jobs, the day took %v", mode, len(res.jobs), res.dayWall.Round(time.Millisecond))
	return res, nil
}

// stalled records why a run stopped making progress: the PostgreSQL
// sessions (what each waits for) and every serve process's goroutines
// (SIGQUIT makes a Go program print them and exit), into the run's folder.
func stalled(base string, procs []*serveProc, pg *postgres, done, n int, stall time.Duration) error {
	if pg != nil {
		if db, err := sql.Open("pgx", pg.url); err == nil {
			var b strings.Builder
			rows, err := db.Query(`SELECT pid, application_name, state, coalesce(wait_event_type, ''), coalesce(wait_event, ''),
				coalesce(now() - xact_start, '0'::interval)::text, left(query, 300) FROM pg_stat_activity WHERE datname = 'sitevault'`)
			if err == nil {
				for rows.Next() {
					var pid int
					var app, state, wt, we, age, q string
					rows.Scan(&pid, &app, &state, &wt, &we, &age, &q)
					fmt.Fprintf(&b, "%d\t%s\t%s\t%s/%s\ttx age %s\t%s\n", pid, app, state, wt, we, age, strings.Join(strings.Fields(q), " "))
				}
				rows.Close()
			}
			db.Close()
			os.WriteFile(filepath.Join(base, "pg_stat_activity.txt"), []byte(b.String()), 0o644)
			log.Printf("PostgreSQL sessions:\n%s", b.String())
		}
	}
	for _, p := range procs {
		p.cmd.Process.Signal(syscall.SIGQUIT)
	}
	for _, p := range procs {
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
		}
	}
	return fmt.Errorf("stalled: %d of %d sites backed up and none more for %v; the serve logs in %s end with their goroutines", done, n, stall, base)
}

func (p *serveProc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(40 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
	p.logf.Close()
}

func waitHealthy(p *serveProc) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + p.addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited at start; see %s", p.name, p.logf.Name())
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s did not answer /healthz within 30 s; see %s", p.name, p.logf.Name())
}

// --- the API ---

type client struct {
	base string
	http *http.Client
}

func signIn(addr string) (*client, error) {
	jar, _ := cookiejar.New(nil)
	c := &client{base: "http://" + addr, http: &http.Client{Jar: jar, Timeout: 2 * time.Minute,
		Transport: &http.Transport{MaxIdleConnsPerHost: 32}}}
	if err := c.do("POST", "/api/v1/session", map[string]string{"email": ownerEmail, "password": ownerPassword}, http.StatusOK); err != nil {
		return nil, fmt.Errorf("sign in: %w", err)
	}
	return c, nil
}

func (c *client) do(method, path string, body any, want int) error {
	_, err := c.call(method, path, body, want)
	return err
}

func (c *client) call(method, path string, body any, want int) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		return nil, fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(out))
	}
	return out, nil
}

// jobs lists every job matching query (…&state=…), all pages.
func (c *client) jobs(query string) ([]job, error) {
	var all []job
	before := int64(0)
	for {
		q := "/api/v1/jobs?limit=100" + query
		if before > 0 {
			q += "&before=" + strconv.FormatInt(before, 10)
		}
		b, err := c.call("GET", q, nil, http.StatusOK)
		if err != nil {
			return nil, err
		}
		var page struct {
			Jobs []job `json:"jobs"`
		}
		if err := json.Unmarshal(b, &page); err != nil {
			return nil, fmt.Errorf("GET %s: %w", q, err)
		}
		all = append(all, page.Jobs...)
		if len(page.Jobs) < 100 {
			return all, nil
		}
		before = page.Jobs[len(page.Jobs)-1].ID
	}
}

// endedBackups counts the backup jobs that succeeded or failed for good,
// from /metrics (sitevault_jobs{kind="backup",state=…}).
func (c *client) endedBackups() (int, error) {
	b, err := c.call("GET", "/metrics", nil, http.StatusOK)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		for _, st := range []string{"succeeded", "failed"} {
			if v, ok := strings.CutPrefix(line, `sitevault_jobs{kind="backup",state="`+st+`"} `); ok {
				k, _ := strconv.Atoi(strings.TrimSpace(v))
				n += k
			}
		}
	}
	return n, nil
}

// lostSchedules lists the sites whose next backup is not their moment
// in the window starting at start.
func (c *client) lostSchedules(start time.Time, window time.Duration) ([]string, error) {
	b, err := c.call("GET", "/api/v1/sites", nil, http.StatusOK)
	if err != nil {
		return nil, err
	}
	var list struct {
		Sites []struct {
			Name   string `json:"name"`
			Status *struct {
				NextBackup *time.Time `json:"next_backup"`
			} `json:"status"`
		} `json:"sites"`
	}
	if err := json.Unmarshal(b, &list); err != nil {
		return nil, fmt.Errorf("GET /api/v1/sites: %w", err)
	}
	var lost []string
	for _, st := range list.Sites {
		want := start.Add(schedule.Offset(st.Name, window))
		if st.Status == nil || st.Status.NextBackup == nil || !st.Status.NextBackup.Equal(want) {
			lost = append(lost, st.Name)
		}
	}
	return lost, nil
}

// forEachSite calls f for every site, parallel at once, and returns each
// call's latency and the whole time.
func forEachSite(n, parallel int, f func(name string) error) ([]time.Duration, time.Duration, error) {
	start := time.Now()
	lat := make([]time.Duration, n)
	work := make(chan int)
	var mu sync.Mutex
	var first error
	var wg sync.WaitGroup
	for range parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				t := time.Now()
				err := f(siteName(i))
				lat[i-1] = time.Since(t)
				if err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for i := 1; i <= n; i++ {
		work <- i
	}
	close(work)
	wg.Wait()
	return lat, time.Since(start), first
}

// --- /proc ---

type snapshot struct {
	t                   time.Time
	ticks               map[string]int64
	busy, total, iowait int64
}

type sampler struct{ pids map[string]int }

func newSampler(pids map[string]int) *sampler { return &sampler{pids: pids} }

// take reads the CPU ticks of each process (for PostgreSQL: the
// postmaster, its live children and the children it reaped) and of the
// machine.
func (s *sampler) take() snapshot {
	sn := snapshot{t: time.Now(), ticks: map[string]int64{}}
	children := childrenOf()
	for name, pid := range s.pids {
		if pid <= 0 {
			continue
		}
		u, sy, cu, cs := procTicks(pid)
		sn.ticks[name] = u + sy
		if name == "postgres" {
			sn.ticks[name] += cu + cs
			for _, c := range children[pid] {
				cu, cs, _, _ := procTicks(c)
				sn.ticks[name] += cu + cs
			}
		}
	}
	b, _ := os.ReadFile("/proc/stat")
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)[1:]
	var v []int64
	for _, x := range f {
		n, _ := strconv.ParseInt(x, 10, 64)
		v = append(v, n)
	}
	// user nice system idle iowait irq softirq steal
	for i, x := range v[:min(8, len(v))] {
		sn.total += x
		if i != 3 && i != 4 {
			sn.busy += x
		}
	}
	sn.iowait = v[4]
	return sn
}

func procTicks(pid int) (utime, stime, cutime, cstime int64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	// f[0] is field 3 (state): utime is field 14.
	p := func(i int) int64 { n, _ := strconv.ParseInt(f[i-3], 10, 64); return n }
	return p(14), p(15), p(16), p(17)
}

func childrenOf() map[int][]int {
	out := map[int][]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		ppid, _ := strconv.Atoi(f[1])
		out[ppid] = append(out[ppid], pid)
	}
	return out
}

// procStatus returns a /proc/PID/status field's number (KiB for memory).
func procStatus(pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			return n
		}
	}
	return 0
}

func readPID(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	n, _ := strconv.Atoi(strings.TrimSpace(line))
	return n
}

func duBytes(dir string) int64 {
	var n int64
	filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			n += fi.Size()
		}
		return nil
	})
	return n
}

func loadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randomHex(n int) string {
	const hex = "0123456789abcdef"
	b := make([]byte, 2*n)
	for i := range b {
		b[i] = hex[rand.IntN(16)]
	}
	return string(b)
}

// --- figures ---

func durPercentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(float64(len(s)-1)*p/100 + 0.5)
	return s[i]
}

func mean(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	var sum time.Duration
	for _, x := range d {
		sum += x
	}
	return sum / time.Duration(len(d))
}

// figures are what a run's jobs say.
type figures struct {
	perMinute                     float64 // jobs per minute over the day
	busyPerMinute                 float64 // jobs per minute from the first start to the last end
	delay, queued, wall, own, ovh []time.Duration
	handoff                       []time.Duration
	perWorker                     map[string]int
}

func compute(r *result) figures {
	f := figures{perWorker: map[string]int{}}
	if len(r.jobs) == 0 {
		return f
	}
	var first, last time.Time
	for _, j := range r.jobs {
		f.delay = append(f.delay, j.Started.Sub(j.scheduled))
		f.queued = append(f.queued, j.Created.Sub(j.scheduled))
		w := j.Finished.Sub(*j.Started)
		own := time.Duration(j.seconds * float64(time.Second))
		f.wall, f.own, f.ovh = append(f.wall, w), append(f.own, own), append(f.ovh, w-own)
		f.perWorker[j.Worker]++
		if first.IsZero() || j.Started.Before(first) {
			first = *j.Started
		}
		if j.Finished.After(last) {
			last = *j.Finished
		}
	}
	f.perMinute = float64(len(r.jobs)) / r.dayWall.Minutes()
	f.busyPerMinute = float64(len(r.jobs)) / last.Sub(first).Minutes()
	// Hand-off: after a job ends on a worker while another job waits
	// (queued and runnable before that end, started after it), how long until that
	// worker starts its next job — the claim's share of the overhead.
	byWorker := map[string][]job{}
	for _, j := range r.jobs {
		byWorker[j.Worker] = append(byWorker[j.Worker], j)
	}
	for _, js := range byWorker {
		slices.SortFunc(js, func(a, b job) int { return a.Started.Compare(*b.Started) })
		for _, j := range js {
			end := *j.Finished
			waiting := false
			for _, k := range r.jobs {
				if !k.Created.After(end) && !k.RunAfter.After(end) && k.Started.After(end) {
					waiting = true
					break
				}
			}
			if !waiting {
				continue
			}
			i, _ := slices.BinarySearchFunc(js, end, func(a job, t time.Time) int { return a.Started.Compare(t) })
			if i < len(js) {
				f.handoff = append(f.handoff, js[i].Started.Sub(end))
			}
		}
	}
	return f
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond)) }
func secs(d time.Duration) string {
	return fmt.Sprintf("%.1f s", d.Seconds())
}
func mib(kib int64) string { return fmt.Sprintf("%.1f MiB", float64(kib)/1024) }

func formatReport(o options, rs []*result, loadBefore string) string {
	var b strings.Builder
	host, _ := os.Hostname()
	_ = host
	rev, _ := exec.Command("git", "describe", "--always", "--dirty").Output()
	fmt.Fprintf(&b, "## Service at scale: results %s\n\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&b, "- machine: %s, %d cores (nproc), %s RAM — shared with other work (load average before the run: %s, after: %s)\n",
		cpuModel(), runtime.NumCPU(), memTotal(), loadBefore, loadAvg())
	fmt.Fprintf(&b, "- sitevault %s (%s); MariaDB and PostgreSQL from Debian, private servers started for the run\n", strings.TrimSpace(string(rev)), runtime.Version())
	fmt.Fprintf(&b, "- command: `%s`\n", o.command)
	fmt.Fprintf(&b, "- %d sites of 10 small files (about 12 KB) and 3 tables (240 rows, about 40 KB) each, all in one MariaDB database with a prefix each; every window starts at the same minute and lasts %v (a compressed day); `--concurrency %d` per serve process; a local repository, new for each run\n\n", o.n, o.window, o.concurrency)
	for _, r := range rs {
		for _, c := range r.serveCommands {
			fmt.Fprintf(&b, "- %s: `%s`\n", r.mode, c)
		}
	}
	b.WriteString("\n| measure | " + strings.Join(mapf(rs, func(r *result) string { return fmt.Sprintf("%s, %d × serve", r.mode, r.workers) }), " | ") + " |\n")
	b.WriteString("|---" + strings.Repeat("|---", len(rs)) + "|\n")
	fs := mapf(rs, compute)
	row := func(name string, f func(i int, r *result) string) {
		cells := make([]string, len(rs))
		for i, r := range rs {
			cells[i] = f(i, r)
		}
		fmt.Fprintf(&b, "| %s | %s |\n", name, strings.Join(cells, " | "))
	}
	row("registering the sites (POST /api/v1/sites, checks each)", func(_ int, r *result) string {
		return fmt.Sprintf("%s (%.0f/s; p50 %s, p95 %s per request, %d at once)", secs(r.register), float64(r.n)/r.register.Seconds(), ms(r.registerP50), ms(r.registerP95), o.parallel)
	})
	row("setting the schedules (PATCH, skip_check)", func(_ int, r *result) string { return secs(r.patch) })
	row("schedule edits lost (the site stayed off; edited again)", func(_ int, r *result) string { return strconv.Itoa(r.lostEdits) })
	row("scheduled backups that succeeded / failed / missing / ran twice", func(_ int, r *result) string {
		s := fmt.Sprintf("%d / %d / %d / %d", len(r.jobs), r.failed, r.missing, r.duplicates)
		if r.timedOut {
			s += " (timed out)"
		}
		return s
	})
	row("the day: window start → last job's end", func(_ int, r *result) string { return secs(r.dayWall) })
	row("jobs per minute over the day / from first start to last end", func(i int, r *result) string {
		return fmt.Sprintf("%.0f / %.0f", fs[i].perMinute, fs[i].busyPerMinute)
	})
	row("delay, the site's moment → job started: p50 / p95 / max", func(i int, r *result) string {
		return fmt.Sprintf("%s / %s / %s", secs(durPercentile(fs[i].delay, 50)), secs(durPercentile(fs[i].delay, 95)), secs(durPercentile(fs[i].delay, 100)))
	})
	row("… of which the scheduler: moment → queued, p50 / p95 / max", func(i int, r *result) string {
		return fmt.Sprintf("%s / %s / %s", ms(durPercentile(fs[i].queued, 50)), ms(durPercentile(fs[i].queued, 95)), ms(durPercentile(fs[i].queued, 100)))
	})
	row("job wall time (started → finished): p50 / p95", func(i int, r *result) string {
		return fmt.Sprintf("%s / %s", ms(durPercentile(fs[i].wall, 50)), ms(durPercentile(fs[i].wall, 95)))
	})
	row("the backup's own time (result `seconds`): p50 / p95", func(i int, r *result) string {
		return fmt.Sprintf("%s / %s", ms(durPercentile(fs[i].own, 50)), ms(durPercentile(fs[i].own, 95)))
	})
	row("service overhead inside a job (wall − own): mean / p50 / p95", func(i int, r *result) string {
		return fmt.Sprintf("%s / %s / %s", ms(mean(fs[i].ovh)), ms(durPercentile(fs[i].ovh, 50)), ms(durPercentile(fs[i].ovh, 95)))
	})
	row("hand-off (a job ends while others wait → that worker's next start): mean / p95 (n)", func(i int, r *result) string {
		return fmt.Sprintf("%s / %s (%d)", ms(mean(fs[i].handoff)), ms(durPercentile(fs[i].handoff, 95)), len(fs[i].handoff))
	})
	row("wall − own, first 100 jobs / last 100 jobs (by start)", func(i int, r *result) string {
		js := slices.Clone(r.jobs)
		slices.SortFunc(js, func(a, b job) int { return a.Started.Compare(*b.Started) })
		k := min(100, len(js))
		part := func(js []job) (ovh, own []time.Duration) {
			for _, j := range js {
				o := time.Duration(j.seconds * float64(time.Second))
				ovh, own = append(ovh, j.Finished.Sub(*j.Started)-o), append(own, o)
			}
			return
		}
		o1, w1 := part(js[:k])
		o2, w2 := part(js[len(js)-k:])
		return fmt.Sprintf("%s / %s (own time %s / %s)", ms(mean(o1)), ms(mean(o2)), ms(mean(w1)), ms(mean(w2)))
	})
	row("jobs per worker", func(i int, r *result) string {
		var parts []string
		for _, w := range slices.Sorted(maps.Keys(fs[i].perWorker)) {
			parts = append(parts, fmt.Sprintf("%s %d (%.1f %%)", w, fs[i].perWorker[w], 100*float64(fs[i].perWorker[w])/float64(len(r.jobs))))
		}
		return strings.Join(parts, ", ")
	})
	row("memory of serve: RSS at start / with the sites scheduled / peak (VmHWM)", func(_ int, r *result) string {
		var parts []string
		for w := 1; w <= r.workers; w++ {
			name := fmt.Sprintf("serve-%d", w)
			parts = append(parts, fmt.Sprintf("%s: %s / %s / %s, %d threads", name, mib(r.rssStart[name]), mib(r.rssSites[name]), mib(r.hwm[name]), r.threads[name]))
		}
		return strings.Join(parts, "; ")
	})
	row("CPU seconds during the day (machine: 2 cores × span)", func(_ int, r *result) string {
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(r.cpu)) {
			if k == "(span s)" {
				continue
			}
			parts = append(parts, fmt.Sprintf("%s %.0f", k, r.cpu[k]))
		}
		span := r.cpu["(span s)"]
		var ours float64
		for k, v := range r.cpu {
			if k != "(span s)" {
				ours += v
			}
		}
		machine := r.machineBusy * span * float64(runtime.NumCPU())
		parts = append(parts, fmt.Sprintf("other work on the machine %.0f", max(0, machine-ours)))
		return fmt.Sprintf("%s; span %.0f s, machine busy %.0f %%, iowait %.0f %%", strings.Join(parts, ", "), span, 100*r.machineBusy, 100*r.machineIOWait)
	})
	row("repository after the day", func(_ int, r *result) string { return mib(r.repoBytes / 1024) })
	if len(rs) == 2 && rs[0].dayWall > 0 {
		fmt.Fprintf(&b, "\nTwo workers / one: the day took %.2f× the time (%s / %s); the busy period (first start → last end) %.2f×.\n",
			rs[1].dayWall.Seconds()/rs[0].dayWall.Seconds(), secs(rs[1].dayWall), secs(rs[0].dayWall), fs[0].busyPerMinute/max(fs[1].busyPerMinute, 1e-9))
	}
	return b.String()
}

func mapf[T, U any](s []T, f func(T) U) []U {
	out := make([]U, len(s))
	for i, x := range s {
		out[i] = f(x)
	}
	return out
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "model name"); ok {
			return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
		}
	}
	return "unknown CPU"
}

func memTotal() string {
	return fmt.Sprintf("%.1f GiB", float64(procMeminfo("MemTotal"))/1048576)
}

func procMeminfo(field string) int64 {
	b, _ := os.ReadFile("/proc/meminfo")
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			return n
		}
	}
	return 0
}
