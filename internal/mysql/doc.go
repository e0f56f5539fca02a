// Package mysql backs up a WordPress site's MySQL/MariaDB tables into a
// repository and restores them, through the site's connection (a dial
// function, so an SSH tunnel works like a local socket).
//
// Glossary:
//
//   - selected table: a table whose name starts with the site's prefix and
//     that has a primary key or a unique key over NOT NULL columns (its key).
//     Every other table is skipped with a reason.
//   - segment: a run of consecutive rows in key order, stored as one file of
//     self-contained SQL (multi-row INSERT statements, one per line) that any
//     mysql client loads into an existing table. Segment i covers the key
//     range (last key of segment i-1, its own last key]; the first segment
//     starts at minus infinity.
//   - segment checksum: COUNT(*) and BIT_XOR of a CRC32 of every row in
//     the segment's range, computed by the server in SQL (rowHashExpr,
//     checksumQuery). The dump reads each row's hash along with the row, so
//     a full backup scans a table once; an incremental backup asks the
//     server for the checksums and reuses the previous segment when its
//     checksum matches, without reading rows.
//   - manifest: how a database backup is laid out as repository trees (see
//     Manifest): a tree with a "tables" dir (one dir per table holding
//     schema.sql — CREATE TABLE and triggers — and the segments
//     000001.sql…) and views.sql.
//
// Consistency: every InnoDB table is read inside one REPEATABLE READ
// transaction started WITH CONSISTENT SNAPSHOT. An incremental backup spreads
// its checksum queries over several connections whose snapshots are started
// together while a coordinating connection holds LOCK TABLES … READ on the
// tables for a few milliseconds (see snapshot); without that privilege it
// stays on one connection. Non-transactional tables (MyISAM, Aria) are read
// on another connection under LOCK TABLES … READ, or, when the user may not
// lock, as they are with a warning. A table whose definition changes during
// the backup (error 1412) is read once more in a new snapshot, with a
// warning; a second change fails the backup (ErrDefinitionChanged).
//
// Restore loads the restore point's tables under a temporary name
// (svtmp_<scope>_<run>_<n>, scope being 8 hex digits of a hash of the
// site's prefix) on several connections, then swaps them in with a single
// RENAME TABLE and drops the old tables (renamed svold_<scope>_<run>_<n>).
// A restore holds a per-site lock (GET_LOCK on the database and prefix)
// from start to end: a second restore of the same site fails with
// ErrRestoreRunning, and the leftovers of the site's interrupted runs are
// dropped by its next run. Sites sharing a database (different prefixes)
// restore independently and never touch each other's temporary tables.
// The temporary InnoDB tables are created with their PRIMARY KEY only;
// their secondary indexes are added after the load in one ALTER TABLE per
// table (a sorted index build, as myloader does), in their original order,
// so that SHOW CREATE TABLE reads as before.
// Foreign keys are added after the swap (their names are unique per
// database); triggers and views are recreated after it too. A single-table
// restore of a table that other tables reference by foreign key leaves
// those references pointing at the dropped table: restore them together.
package mysql
