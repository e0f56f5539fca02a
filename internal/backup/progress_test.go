package backup

import "testing"

// Total is the previous point's size, else a first backup's finished
// scan, never below what the backup found; unknown (0) before either.
func TestProgressTotal(t *testing.T) {
	var p Progress
	p.Files.BytesTotal.Store(500)
	p.Files.ScanBytes.Store(2000)
	if got := p.Total(); got != 0 {
		t.Errorf("first backup, scan running: total %d, want 0 (unknown)", got)
	}
	p.Files.ScanDone.Store(true)
	if got := p.Total(); got != 2000 {
		t.Errorf("first backup, scan done: total %d, want 2000", got)
	}
	p.Files.BytesTotal.Store(2500) // files grew after the scan listed them
	if got := p.Total(); got != 2500 {
		t.Errorf("found beyond the scan: total %d, want 2500", got)
	}

	var inc Progress
	inc.Expected.Store(10000)
	inc.Files.BytesTotal.Store(300)
	if got := inc.Total(); got != 10000 {
		t.Errorf("incremental: total %d, want the previous point's 10000", got)
	}
}
