package main

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/sitevault/sitevault/internal/testsrv"
)

// churnPlugin is a must-use plugin the -load mode adds to the site:
// /?sv_churn=ID changes post ID as its author would (its content and a
// meta value), the way an editor's save or a shop's stock update does.
const churnPlugin = `<?php
// sitevault bench: /?sv_churn=ID changes post ID as the site's admin would.
add_action('init', static function () {
    if (!isset($_GET['sv_churn'])) {
        return;
    }
    wp_set_current_user(1);
    $id = (int) $_GET['sv_churn'];
    wp_update_post(['ID' => $id, 'post_content' => 'Changed at ' . microtime(true)]);
    update_post_meta($id, '_sv_bench_counter', (int) get_post_meta($id, '_sv_bench_counter', true) + 1);
    echo 'ok';
    exit;
});
`

// phase is what one load phase measured.
type phase struct {
	name                string
	pages, changes      []time.Duration
	changeErrors        int
	outboxRows          int64 // largest seen
	outboxBytes         int64
	outboxLeft          int64 // after the phase, once the sender ran twice
	changesPerSecondGot float64
}

// loadTest changes the site rate times a second, for d with the connector
// active and for d with it deactivated, rounds times, while a reader loads
// the front page one request after another, and reports the page times of
// both.
func loadTest(w *testsrv.WordPress, db *testsrv.MariaDB, php func([]string, ...string) ([]byte, error), d time.Duration, rate, rounds int, base, token string) error {
	mu := filepath.Join(w.Root, "wp-content", "mu-plugins")
	os.MkdirAll(mu, 0o755)
	if err := os.WriteFile(filepath.Join(mu, "sitevault-bench-churn.php"), []byte(churnPlugin), 0o644); err != nil {
		return err
	}
	out, err := php(nil, "publish", "Load", "200", "nosend")
	if err != nil {
		return err
	}
	var pub struct{ IDs []int }
	if err := json.Unmarshal(out, &pub); err != nil || len(pub.IDs) == 0 {
		return fmt.Errorf("publish: %v: %s", err, out)
	}
	// php -S answers one request at a time unless told to fork workers.
	os.Setenv("PHP_CLI_SERVER_WORKERS", "8")
	if err := w.StartServe(); err != nil {
		return err
	}
	defer w.StopServe()
	root, err := db.Root()
	if err != nil {
		return err
	}
	defer root.Close()
	outbox := "`" + w.DB.Name + "`.`" + w.Prefix + "sitevault_outbox`"

	// The test site sets DISABLE_WP_CRON, as hosts that run wp-cron.php
	// from the system's cron do: the sender runs as such a cron run would,
	// every cronEvery.
	const cronEvery = 15 * time.Second
	stopCron := make(chan struct{})
	cronDone := make(chan struct{})
	go func() {
		defer close(cronDone)
		for {
			select {
			case <-stopCron:
				return
			case <-time.After(cronEvery):
				php([]string{"SV_CRON=1"}, "send")
			}
		}
	}()
	defer func() { close(stopCron); <-cronDone }()

	fmt.Printf("load: %d changes a second, %d rounds of %s with the connector active and %s deactivated, in alternating order; the front page read one request after another; the sender's cron every %s\n",
		rate, rounds, d, d, cronEvery)
	// The phases alternate (active first in odd rounds, deactivated first
	// in even ones): the database grows and the machine's load drifts
	// during a run, and a fixed order would charge that to one side.
	active, inactive := &phase{name: "connector active"}, &phase{name: "connector deactivated"}
	var ratios []float64
	activeNow := true // main activated it
	for round := 1; round <= rounds; round++ {
		order := []bool{true, false}
		if round%2 == 0 {
			order = []bool{false, true}
		}
		var a, b *phase
		for _, on := range order {
			step, box, name := "deactivate", "", "connector deactivated"
			if on {
				step, box, name = "activate", outbox, "connector active"
			}
			if on != activeNow {
				if _, err := php(nil, step); err != nil {
					return err
				}
				activeNow = on
			}
			p, err := runPhase(name, w.URL, pub.IDs, rate, d, root, box)
			if err != nil {
				return err
			}
			if on {
				time.Sleep(2 * cronEvery) // two cron runs: the outbox should be empty
				root.QueryRow("SELECT COUNT(*) FROM " + outbox).Scan(&p.outboxLeft)
				a = p
			} else {
				b = p
			}
		}
		r := pct(a.pages, 50).Seconds() / pct(b.pages, 50).Seconds()
		ratios = append(ratios, r)
		fmt.Printf("round %d (%s first): front page median %s active, %s deactivated: %.2f×; change request median %s vs %s\n",
			round, map[bool]string{true: "active", false: "deactivated"}[order[0]], ms(pct(a.pages, 50)), ms(pct(b.pages, 50)), r,
			ms(pct(a.changes, 50)), ms(pct(b.changes, 50)))
		active.add(a)
		inactive.add(b)
	}
	var events struct{ Groups map[string]int }
	req, _ := http.NewRequest("GET", base+"/api/v1/sites/blog/activity?group=post&limit=1", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		json.NewDecoder(resp.Body).Decode(&events)
		resp.Body.Close()
	}

	fmt.Printf("\n| phase (all rounds) | front page median | p95 | changes done a second | change request median | outbox rows (max) | outbox after two sends (max) |\n|---|---|---|---|---|---|---|\n")
	for _, p := range []*phase{active, inactive} {
		fmt.Printf("| %s | %s | %s | %.1f (%d failed) | %s | %d (%s) | %d |\n", p.name, ms(pct(p.pages, 50)), ms(pct(p.pages, 95)),
			p.changesPerSecondGot/float64(rounds), p.changeErrors, ms(pct(p.changes, 50)), p.outboxRows, mib(p.outboxBytes), p.outboxLeft)
	}
	ratio := pct(active.pages, 50).Seconds() / pct(inactive.pages, 50).Seconds()
	status := "met"
	if ratio > 1.10 {
		status = "not met"
	}
	sort.Float64s(ratios)
	fmt.Printf("\nfront page, active / deactivated (medians of all rounds' pages): %.2f× (goal ≤ 1.10×: %s); per round, sorted: %.2f; post events in the service's log: %d\n",
		ratio, status, ratios, events.Groups["post"])
	return nil
}

// add pools another round's figures of the same phase into p.
func (p *phase) add(o *phase) {
	p.pages = append(p.pages, o.pages...)
	p.changes = append(p.changes, o.changes...)
	p.changeErrors += o.changeErrors
	p.outboxRows, p.outboxBytes = max(p.outboxRows, o.outboxRows), max(p.outboxBytes, o.outboxBytes)
	p.outboxLeft = max(p.outboxLeft, o.outboxLeft)
	p.changesPerSecondGot += o.changesPerSecondGot
}

// runPhase drives the changes and the page reads for d.
func runPhase(name, site string, ids []int, rate int, d time.Duration, root *sql.DB, outbox string) (*phase, error) {
	p := &phase{name: name}
	client := &http.Client{Timeout: 30 * time.Second}
	get := func(url string) (time.Duration, error) {
		start := time.Now()
		resp, err := client.Get(url)
		if err != nil {
			return 0, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return 0, fmt.Errorf("%s: %s", url, resp.Status)
		}
		return time.Since(start), nil
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	stop := time.Now().Add(d)
	wg.Go(func() { // the reader
		for time.Now().Before(stop) {
			t, err := get(site + "/")
			mu.Lock()
			if err == nil {
				p.pages = append(p.pages, t)
			}
			mu.Unlock()
			time.Sleep(100 * time.Millisecond)
		}
	})
	if outbox != "" {
		wg.Go(func() { // the outbox's size, every second
			for time.Now().Before(stop) {
				var rows, bytes int64
				root.QueryRow("SELECT COUNT(*), IFNULL(SUM(LENGTH(payload)), 0) FROM "+outbox).Scan(&rows, &bytes)
				mu.Lock()
				p.outboxRows, p.outboxBytes = max(p.outboxRows, rows), max(p.outboxBytes, bytes)
				mu.Unlock()
				time.Sleep(time.Second)
			}
		})
	}
	tick := time.NewTicker(time.Second / time.Duration(rate))
	start := time.Now()
	done := 0
	var changes sync.WaitGroup
	for i := 0; time.Now().Before(stop); i++ {
		<-tick.C
		id := ids[i%len(ids)]
		changes.Go(func() {
			t, err := get(site + "/?sv_churn=" + strconv.Itoa(id))
			mu.Lock()
			if err != nil {
				p.changeErrors++
			} else {
				p.changes = append(p.changes, t)
				done++
			}
			mu.Unlock()
		})
	}
	tick.Stop()
	changes.Wait()
	wg.Wait()
	p.changesPerSecondGot = float64(done) / time.Since(start).Seconds()
	if len(p.pages) == 0 {
		return nil, fmt.Errorf("%s: no page was read", name)
	}
	return p, nil
}

func pct(ds []time.Duration, q int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[min(len(s)-1, len(s)*q/100)]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d.Microseconds())/1000) }

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
