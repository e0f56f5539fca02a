// Package point is the restore-point layout in the repository: the names of
// a point's parts, its triggers and metadata keys, what kind of point a
// snapshot is, how a reference (an id, "latest" or a day) names a point
// (Find), how points are listed by day, and which points a retention policy
// keeps (Plan).
//
// # Kinds of point
//
// A restore point is one of three kinds, chosen by its trigger:
//
//   - a backup point (KindBackup): a backup of the site, taken by hand
//     (trigger manual), by the schedule (daily) or after a change
//     (realtime). Any trigger this package does not name (a `dir backup
//     --trigger NAME`, an old repository's) is a backup point too.
//   - a pre-restore point (KindPreRestore, trigger pre-restore): the state a
//     restore replaced, saved before it changed anything. It is a safety
//     net, not a backup: it may hold what the restore was meant to get rid
//     of (a hacked site, a broken update) and may lack the database (taken
//     while the database was down). Meta restore_of names the point the
//     restore wrote.
//   - an imported point (KindImport, trigger archive): a downloaded archive
//     that `restore --from-archive` imported to restore it. It is what the
//     user chose to restore, not a backup of the site: it may come from
//     another site or another machine, and its time is the time of the
//     import, not of the state it holds.
//
// # References
//
// "latest" names the site's newest backup point and a day (YYYY-MM-DD, in
// the caller's time zone) that day's newest backup point. Pre-restore and
// imported points are never named by them, so that running the same
// restore twice restores the same state and a download of "latest" after
// recovering from a hack holds the backup, not the hacked site. They are
// reached by id (and a pre-restore point by `sitevault undo`).
//
// # Retention
//
// Plan applies a repository.Policy to the backup points only. A
// pre-restore point is kept while it is the undo of the site's latest
// restore (the newest pre-restore point: what undo restores), and for
// Grace (7 days) after it was taken; then it is forgotten. An imported
// point, and the pre-restore point an undo restored, is kept while the
// latest restore wrote it (undo needs it to know which files that restore
// created) and for Grace after it was taken.
package point
