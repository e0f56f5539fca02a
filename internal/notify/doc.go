// Package notify tells people by email what happened to their sites:
// backups that keep failing and then recover, restores that start, finish
// or fail, and downloads that are ready.
//
// It has three parts, kept apart so each can be tested alone:
//
//   - the alert policy, AfterBackup: pure logic over a BackupState that the
//     caller keeps in the catalog, deciding after each finished backup job
//     whether a "failing" or "recovered" mail is due. One failed backup is
//     not worth a mail (the next scheduled one often succeeds); the second
//     in a row is, once; the first success after that gets one recovery mail.
//   - the mail texts (BackupFailing, RestoreFinished, …): plain, short
//     messages that name the site, what happened, the error and what to do.
//     They return a Message without recipients.
//   - the Mailer that delivers a Message; SMTPMailer speaks SMTP with
//     STARTTLS or implicit TLS and never lets a CR or LF into a header.
//
// Words used here:
//
//	alert        a mail the policy decides to send (AlertFailing, AlertRecovered)
//	TLS mode     how the SMTP connection is encrypted: none, starttls, tls (implicit, port 465)
//	settings     SMTPSettings: the server, the account and the From address;
//	             the password is never printed, logged or put in an error
package notify
