package main

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/dustin/go-humanize"
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
