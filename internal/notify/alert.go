package notify

import "time"

// FailuresBeforeAlert is how many backups of a site must fail in a row
// before a "failing" mail is sent. A single failure is often transient (the
// site's host was restarting, the network dropped) and the next backup
// succeeds; two in a row mean someone should look.
const FailuresBeforeAlert = 2

// Alert is the mail the backup alert policy asks for.
type Alert string

// The alerts AfterBackup returns.
const (
	AlertNone      Alert = "none"      // send nothing
	AlertFailing   Alert = "failing"   // send BackupFailing
	AlertRecovered Alert = "recovered" // send BackupRecovered
)

// BackupState is what the alert policy remembers about one site between
// backups. The caller stores it (in the catalog, so a restart loses
// nothing) and passes it back to AfterBackup; the zero value is a site
// whose last backup succeeded or that never ran one.
type BackupState struct {
	ConsecutiveFailures int       // backups that failed in a row, 0 after a success
	FirstFailure        time.Time // when the first of those failures ended; zero if none
	Alerted             bool      // a "failing" mail was sent for this run of failures
}

// AfterBackup is the alert policy. The caller calls it once per finished
// backup job of a site — after the job's own retries, so a retried attempt
// is not a failure — with ok telling whether the job succeeded and at when
// it ended. It returns the state to store and the mail to send:
//
//   - AlertFailing once, when the FailuresBeforeAlert-th backup in a row
//     fails; later failures in the same run send nothing;
//   - AlertRecovered on the first success after a "failing" mail was sent;
//     a success after failures nobody was told about sends nothing;
//   - AlertNone otherwise.
//
// After a success the state is the zero BackupState, so the cycle starts again.
func AfterBackup(prev BackupState, ok bool, at time.Time) (next BackupState, send Alert) {
	if ok {
		if prev.Alerted {
			return BackupState{}, AlertRecovered
		}
		return BackupState{}, AlertNone
	}
	next = prev
	if next.ConsecutiveFailures <= 0 || next.FirstFailure.IsZero() {
		next.FirstFailure = at
	}
	if next.ConsecutiveFailures < 0 {
		next.ConsecutiveFailures = 0
	}
	next.ConsecutiveFailures++
	if next.ConsecutiveFailures >= FailuresBeforeAlert && !next.Alerted {
		next.Alerted = true
		return next, AlertFailing
	}
	return next, AlertNone
}
