package notify

import (
	"fmt"
	"strings"
	"time"
)

// The mails sitevault sends. Each returns a Message without recipients;
// the caller adds them. Texts are plain and short, in the manner of
// Jetpack's backup mails: which site, what happened, the error, what to do.
//
// Values that go into a subject are made one line (a site name with a
// line break must not stop an alert), and every text ends with the same
// signature.

// timeLayout is how mails show a time, in the location of the time given.
const timeLayout = "Mon 2 Jan 2006 at 15:04 MST"

const signature = "\n-- \nsitevault, your self-hosted WordPress backups\n"

// BackupFailing is the mail for AlertFailing: failures backups of site
// failed in a row, the first of them at since; lastErr is the newest
// error, whatToDo the advice that goes with it (empty: a general one),
// siteURL where the site's page in sitevault is (empty: left out).
func BackupFailing(site string, failures int, since time.Time, lastErr string, whatToDo string, siteURL string) Message {
	var b strings.Builder
	fmt.Fprintf(&b, "Hello,\n\nThe last %d backups of %s failed. The first failure was on %s;\n", failures, site, since.Format(timeLayout))
	fmt.Fprintf(&b, "the newest restore point of %s is older than that.\n\n", site)
	fmt.Fprintf(&b, "The last error was:\n\n%s\n\n", indent(orText(lastErr, "(no error message was recorded)")))
	fmt.Fprintf(&b, "What to do:\n\n%s\n\n", indent(orText(whatToDo,
		"Check that the site is online and that sitevault can still reach it (its\nconnection settings and credentials), then start a backup by hand.")))
	if siteURL != "" {
		fmt.Fprintf(&b, "See the site's backups: %s\n\n", siteURL)
	}
	b.WriteString("sitevault keeps trying on schedule. You will not get another mail for\nthese failures; you will get one when a backup succeeds again.\n")
	b.WriteString(signature)
	return Message{Subject: fmt.Sprintf("[sitevault] Backups of %s are failing", oneLine(site)), Text: b.String()}
}

// BackupRecovered is the mail for AlertRecovered: a backup of site
// succeeded and made restore point point, after failures since failedSince.
func BackupRecovered(site string, point string, failedSince time.Time) Message {
	var b strings.Builder
	fmt.Fprintf(&b, "Hello,\n\nGood news: backups of %s work again. The last backup succeeded and\nmade restore point %s.\n\n", site, point)
	if !failedSince.IsZero() {
		fmt.Fprintf(&b, "Backups had been failing since %s. There are no restore points\nfrom that time.\n\n", failedSince.Format(timeLayout))
	}
	b.WriteString("Nothing else to do.\n")
	b.WriteString(signature)
	return Message{Subject: fmt.Sprintf("[sitevault] Backups of %s work again", oneLine(site)), Text: b.String()}
}

// RestoreStarted says that site is being restored to point, saved at
// pointTime; items are the parts restored (themes, plugins, uploads,
// roots, contents, database), empty for all of them.
func RestoreStarted(site, point string, pointTime time.Time, items []string) Message {
	var b strings.Builder
	fmt.Fprintf(&b, "Hello,\n\nsitevault started restoring %s to restore point %s, saved on\n%s.\n\n", site, point, pointTime.Format(timeLayout))
	if len(items) == 0 {
		b.WriteString("Restoring: everything in the restore point (files and database).\n\n")
	} else {
		fmt.Fprintf(&b, "Restoring: %s.\n\n", strings.Join(items, ", "))
	}
	b.WriteString("Before it changes anything, sitevault backs up the site as it is now\n(a pre-restore point), so this restore can be undone.\n\n")
	b.WriteString("You will get a mail when the restore ends.\n")
	b.WriteString(signature)
	return Message{Subject: fmt.Sprintf("[sitevault] Restoring %s to %s", oneLine(site), pointTime.Format("2 Jan 2006 15:04 MST")), Text: b.String()}
}

// RestoreFinished says that site was restored to point in took; summary
// says what was restored (files written, tables replaced…).
func RestoreFinished(site, point string, took time.Duration, summary string) Message {
	var b strings.Builder
	fmt.Fprintf(&b, "Hello,\n\nThe restore of %s to restore point %s finished. It took %s.\n\n", site, point, roundDuration(took))
	if summary != "" {
		fmt.Fprintf(&b, "%s\n\n", strings.TrimRight(summary, "\n"))
	}
	b.WriteString("Please look at the site now. If something is not right, undo the restore:\nit brings back the site as it was just before, from the pre-restore point.\n")
	b.WriteString(signature)
	return Message{Subject: fmt.Sprintf("[sitevault] Restore of %s finished", oneLine(site)), Text: b.String()}
}

// RestoreFailed says that restoring site to point failed with errText;
// whatToDo is the advice that goes with it (empty: a general one).
func RestoreFailed(site, point string, errText, whatToDo string) Message {
	var b strings.Builder
	fmt.Fprintf(&b, "Hello,\n\nRestoring %s to restore point %s failed.\n\n", site, point)
	fmt.Fprintf(&b, "The error was:\n\n%s\n\n", indent(orText(errText, "(no error message was recorded)")))
	fmt.Fprintf(&b, "What to do:\n\n%s\n\n", indent(orText(whatToDo,
		"Check that sitevault can still reach the site (its connection settings and\ncredentials), then start the restore again.")))
	b.WriteString("The database is never left half-restored: the restored tables replace the\nlive ones all at once, or not at all. Files restored before the error stay\nrestored; undo brings back the site as it was before the restore.\n")
	b.WriteString(signature)
	return Message{Subject: fmt.Sprintf("[sitevault] Restoring %s failed", oneLine(site)), Text: b.String()}
}

// DownloadReady says that a download of site's restore point point can be
// fetched from link until expires.
func DownloadReady(site, point string, link string, expires time.Time) Message {
	var b strings.Builder
	fmt.Fprintf(&b, "Hello,\n\nThe download of %s you asked for (restore point %s) is ready:\n\n    %s\n\n", site, point, link)
	fmt.Fprintf(&b, "The link works until %s. After that, ask for a new download.\n\n", expires.Format(timeLayout))
	b.WriteString("The archive holds the site's files and database, passwords included:\nkeep the link to yourself.\n")
	b.WriteString(signature)
	return Message{Subject: fmt.Sprintf("[sitevault] Your download of %s is ready", oneLine(site)), Text: b.String()}
}

// oneLine turns control characters (line breaks, tabs) into spaces, for
// values put in a subject.
func oneLine(s string) string {
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }), " ")
}

func indent(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = "    " + l
	}
	return strings.Join(lines, "\n")
}

func orText(s, def string) string {
	if strings.TrimSpace(s) == "" {
		return def
	}
	return s
}

// roundDuration shows a duration the way people say it: 45s, 3m10s, 1h5m.
func roundDuration(d time.Duration) string {
	switch {
	case d < time.Second:
		return "less than a second"
	case d < time.Hour:
		return d.Round(time.Second).String()
	}
	return strings.TrimSuffix(d.Round(time.Minute).String(), "0s")
}
