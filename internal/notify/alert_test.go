package notify

import (
	"testing"
	"time"
)

func TestAfterBackup(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 3, 0, 0, 0, time.UTC)
	day := func(n int) time.Time { return t0.Add(time.Duration(n) * 24 * time.Hour) }
	steps := []struct {
		name string
		ok   bool
		want Alert
		next BackupState
	}{
		{"first success", true, AlertNone, BackupState{}},
		{"first failure", false, AlertNone, BackupState{1, day(1), false}},
		{"second failure", false, AlertFailing, BackupState{2, day(1), true}},
		{"third failure", false, AlertNone, BackupState{3, day(1), true}},
		{"fourth failure", false, AlertNone, BackupState{4, day(1), true}},
		{"recovery", true, AlertRecovered, BackupState{}},
		{"success after recovery", true, AlertNone, BackupState{}},
		{"one failure again", false, AlertNone, BackupState{1, day(7), false}},
		{"success after one failure: nobody was told", true, AlertNone, BackupState{}},
		{"cycle again: first failure", false, AlertNone, BackupState{1, day(9), false}},
		{"cycle again: second failure", false, AlertFailing, BackupState{2, day(9), true}},
		{"cycle again: third failure", false, AlertNone, BackupState{3, day(9), true}},
		{"cycle again: recovery", true, AlertRecovered, BackupState{}},
	}
	var st BackupState
	for i, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			next, got := AfterBackup(st, s.ok, day(i))
			if got != s.want || next != s.next {
				t.Errorf("AfterBackup(%+v, ok=%v) = %+v, %q; want %+v, %q", st, s.ok, next, got, s.next, s.want)
			}
			st = next
		})
	}
}

func TestAfterBackupFromStateWithoutTime(t *testing.T) {
	// A state stored before FirstFailure was recorded still gets a time.
	at := time.Date(2026, 12, 4, 3, 0, 0, 0, time.UTC)
	next, alert := AfterBackup(BackupState{ConsecutiveFailures: 1}, false, at)
	if alert != AlertFailing || next.FirstFailure != at {
		t.Errorf("got %+v, %q", next, alert)
	}
}
