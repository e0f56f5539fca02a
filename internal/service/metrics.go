package service

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sitevault/sitevault/internal/sitevault"
)

// Metrics in Prometheus's text format. The figures that matter across
// workers (jobs by state, each site's last success) are read from the
// catalog at each scrape, so any worker answers for all; this process's
// own counters (job durations, mails) are its own. A handful of series
// does not justify client_golang and its dependencies.
type metrics struct {
	mu        sync.Mutex
	durations map[sitevault.JobKind]*summary
	bytes     float64
	mailsOK   float64
	mailsFail float64
}

type summary struct{ count, sum float64 }

func newMetrics() *metrics { return &metrics{durations: map[sitevault.JobKind]*summary{}} }

func (m *metrics) jobEnded(j *sitevault.Job) {
	if j.Started == nil || j.Finished == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	d := m.durations[j.Kind]
	if d == nil {
		d = new(summary)
		m.durations[j.Kind] = d
	}
	d.count++
	d.sum += j.Finished.Sub(*j.Started).Seconds()
	if j.Kind == sitevault.JobBackup && j.State == sitevault.JobSucceeded {
		var res BackupResult
		if decodeResult(j, &res) == nil {
			m.bytes += float64(res.BytesRead)
		}
	}
}

func (m *metrics) mailSent()   { m.mu.Lock(); m.mailsOK++; m.mu.Unlock() }
func (m *metrics) mailFailed() { m.mu.Lock(); m.mailsFail++; m.mu.Unlock() }

func label(v string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(v)
}

func (s *Service) serveMetrics(w http.ResponseWriter, r *http.Request) {
	counts, err := s.cat.CountJobs(r.Context())
	if err != nil {
		errorProblem(w, err)
		return
	}
	statuses, err := s.cat.Statuses(r.Context())
	if err != nil {
		errorProblem(w, err)
		return
	}
	var b strings.Builder
	b.WriteString("# HELP sitevault_jobs Jobs in the catalog by kind and state.\n# TYPE sitevault_jobs gauge\n")
	for _, c := range counts {
		fmt.Fprintf(&b, "sitevault_jobs{kind=%q,state=%q} %d\n", label(string(c.Kind)), label(string(c.State)), c.N)
	}
	b.WriteString("# HELP sitevault_site_last_success_timestamp_seconds When each site's last backup succeeded.\n# TYPE sitevault_site_last_success_timestamp_seconds gauge\n")
	for _, st := range statuses {
		v := 0.0
		if st.LastSuccess != nil {
			v = float64(st.LastSuccess.Unix())
		}
		fmt.Fprintf(&b, "sitevault_site_last_success_timestamp_seconds{site=%q} %g\n", label(st.Site), v)
	}
	b.WriteString("# HELP sitevault_site_failures Failed backups in a row of each site.\n# TYPE sitevault_site_failures gauge\n")
	for _, st := range statuses {
		fmt.Fprintf(&b, "sitevault_site_failures{site=%q} %d\n", label(st.Site), st.Failures)
	}
	b.WriteString("# HELP sitevault_site_backup_bytes Size of each site's last backup.\n# TYPE sitevault_site_backup_bytes gauge\n")
	for _, st := range statuses {
		fmt.Fprintf(&b, "sitevault_site_backup_bytes{site=%q} %d\n", label(st.Site), st.LastBytes)
	}
	m := s.metrics
	m.mu.Lock()
	kinds := make([]string, 0, len(m.durations))
	for k := range m.durations {
		kinds = append(kinds, string(k))
	}
	sort.Strings(kinds)
	b.WriteString("# HELP sitevault_job_duration_seconds Time jobs of this worker took.\n# TYPE sitevault_job_duration_seconds summary\n")
	for _, k := range kinds {
		d := m.durations[sitevault.JobKind(k)]
		fmt.Fprintf(&b, "sitevault_job_duration_seconds_sum{kind=%q} %g\nsitevault_job_duration_seconds_count{kind=%q} %g\n", k, d.sum, k, d.count)
	}
	fmt.Fprintf(&b, "# HELP sitevault_backup_read_bytes_total Bytes read by this worker's backups.\n# TYPE sitevault_backup_read_bytes_total counter\nsitevault_backup_read_bytes_total %g\n", m.bytes)
	fmt.Fprintf(&b, "# HELP sitevault_mails_total Alert mails of this worker by result.\n# TYPE sitevault_mails_total counter\nsitevault_mails_total{result=\"sent\"} %g\nsitevault_mails_total{result=\"failed\"} %g\n", m.mailsOK, m.mailsFail)
	m.mu.Unlock()
	fmt.Fprintf(&b, "# HELP sitevault_up_timestamp_seconds When this worker answered.\n# TYPE sitevault_up_timestamp_seconds gauge\nsitevault_up_timestamp_seconds %d\n", time.Now().Unix())
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	w.Write([]byte(b.String()))
}
