// Package backup turns a registered site into a restore point: its files
// (archiver with the WordPress selection rules) and its database (package
// mysql) in one snapshot, incremental from the site's previous point.
// RunDir backs up a plain folder the same way, without WordPress rules or
// database: its point's root tree is the folder itself, and its Meta says
// source "dir" and the folder's path.
//
// # Restore point layout
//
// A site's restore point is a repository.Snapshot whose root tree holds two
// directory nodes (sorted by name):
//
//	database/   the tree mysql.Backup returns (see mysql.Manifest):
//	            tables/<table>/schema.sql, 000001.sql …, and views.sql
//	files/      the archiver's tree of the site root, as the WordPress
//	            Rules select it (paths relative to ABSPATH)
//
// A point may lack "database" when the database could not be reached for
// a pre-restore point of a files-only restore (Meta "database" = "missing"
// then says why); it never lacks "files".
//
// Snapshot fields:
//
//   - Site: the catalog name of the site.
//   - Time: when the backup STARTED. The engine's prune protection relies
//     on it (blobs a backup touched after Time are protected).
//   - Hostname: the machine that ran the backup.
//   - Trigger: what started it: manual, pre-restore, daily, realtime,
//     archive (a point imported from a downloaded archive).
//   - Parent: the site's previous point (the one the backup was
//     incremental from), if any.
//   - Summary: files new/changed/unchanged, bytes read, bytes added to the
//     repository (stored size, measured from the packs written), Skipped
//     (each excluded path or table with its rule), Warnings, Partial (some
//     files could not be read, or a table was left out because a row is
//     larger than the server's max_allowed_packet; the point holds
//     everything else).
//   - Meta (all values are strings):
//     wp_version, table_prefix, multisite ("true"/"false"), site_path (the
//     site's location: a path or user@host:path), content_dir, db_name,
//     tables (number of tables backed up), tables_changed (tables with at
//     least one segment written by this backup), files_changed (new +
//     changed files), and for pre-restore points restore_of (the id of the
//     point being restored) and items (comma-separated), plus paths and
//     tables (JSON arrays) when the restore named single paths or tables.
//
// # Concurrency
//
// One backup (or restore) per site runs at a time: each takes the site's
// lock from Deps.Locker. The CLI's FileLocker takes an exclusive flock(2)
// on <locks dir>/site-<name>.lock and writes who holds it into the file; a
// service shares its locks through its catalog. A second job waits up to
// Options.Wait, or fails at once with a *BusyError naming the running
// job, its start time and (when known) its pid.
//
// # Database credentials
//
// Every backup re-reads wp-config.php, so a changed database password is
// followed. When wp-config.php is broken or unreadable, or its login
// fails, the backup falls back to the last login that worked (recorded in
// the catalog by the previous backup) and warns. The catalog's overrides
// win over both. After the point is saved the login that worked is
// recorded with catalog.SetLastDB. There is one exception: when
// wp-config.php defines a setting inside a condition that cannot be
// decided (wordpress.ErrConditional), the backup fails naming the line and
// the override to set, since the last login may be the wrong guess.
//
// # Report
//
// Result.Warnings says in English what Result.Details holds as data (a
// Warning with a Rule such as WarnTableCountDrop, for grouping), and
// Result.SkippedTables names every table left out with its reason. A
// backup warns (WarnTableCountDrop) when it holds fewer than half the
// tables of the newest earlier point with a database (TableDropWarns):
// a wrong DB_NAME or table prefix looks like that.
package backup
