package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/pflag"
)

// progressLine redraws one status line on a terminal every interval until
// stopped. line returns the text to show; elapsed is the time since start.
type progressLine struct {
	w     io.Writer
	line  func(elapsed time.Duration) string
	stop  chan struct{}
	done  sync.WaitGroup
	start time.Time
}

// startProgress starts drawing if enabled; otherwise it returns a no-op.
func startProgress(enabled bool, w io.Writer, line func(time.Duration) string) *progressLine {
	p := &progressLine{w: w, line: line, stop: make(chan struct{}), start: time.Now()}
	if !enabled {
		return p
	}
	p.done.Go(func() {
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				fmt.Fprint(p.w, "\r\033[K")
				return
			case <-t.C:
				fmt.Fprintf(p.w, "\r\033[K%s", p.line(time.Since(p.start)))
			}
		}
	})
	return p
}

// Stop clears the line.
func (p *progressLine) Stop() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	p.done.Wait()
}

func rate(bytes int64, d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	return humanize.IBytes(uint64(float64(bytes)/d.Seconds())) + "/s"
}

func formatDuration(d time.Duration) string {
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < 10*time.Second:
		return d.Round(10 * time.Millisecond).String()
	}
	return d.Round(100 * time.Millisecond).String()
}

// shortDuration writes a setting's duration as people do: 24h, 90m, 45s,
// 1h30m, 7d — never 24h0m0s.
func shortDuration(d time.Duration) string {
	if d == 0 {
		return "0"
	}
	if d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	s := d.String()
	for _, zero := range []string{"0s", "0m"} {
		if strings.HasSuffix(s, "m"+zero) || strings.HasSuffix(s, "h"+zero) {
			s = strings.TrimSuffix(s, zero)
		}
	}
	return s
}

// durationFlag is a time.Duration flag shown with shortDuration, that also
// takes whole days ("7d").
type durationFlag struct{ d *time.Duration }

func (f durationFlag) String() string { return shortDuration(*f.d) }
func (f durationFlag) Type() string   { return "duration" }
func (f durationFlag) Set(s string) error {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days < 0 {
			return fmt.Errorf("%q: give a duration such as 90m, 24h or 7d", s)
		}
		*f.d = time.Duration(days) * 24 * time.Hour
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q: give a duration such as 90m, 24h or 7d", s)
	}
	*f.d = d
	return nil
}

// durationVar defines a duration flag written as people write them.
func durationVar(f *pflag.FlagSet, p *time.Duration, name string, value time.Duration, usage string) {
	*p = value
	f.Var(durationFlag{p}, name, usage)
}

// percentETA says how far a job is and when it should end, from the bytes
// done of an expected total: "  42%  ETA 1m05s". It says nothing before
// there is a basis (no total, nothing done, under 2 s) and never 100 %
// before the end.
func percentETA(done, total int64, el time.Duration) string {
	if total <= 0 || done <= 0 || el < 2*time.Second {
		return ""
	}
	f := min(float64(done)/float64(total), 0.99)
	left := time.Duration(float64(el) * (1 - f) / f).Round(time.Second)
	return fmt.Sprintf("  %d%%  ETA %s", int(f*100), left)
}
