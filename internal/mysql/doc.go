// Package mysql backs up a WordPress site's MySQL/MariaDB tables into a
// repository and restores them, through the site's connection (a dial
// function, so an SSH tunnel works like a local socket).
//
// Glossary:
//
//   - selected table: a base table whose name starts with the site's
//     prefix. Its key is its primary key or a unique key over NOT NULL
//     columns. A table without one is backed up whole (NoteWhole): its
//     rows, in no order, cut into segments by size, with empty key
//     bounds; it takes no part in segment reuse (an incremental backup
//     reuses its segments only when the whole table's checksum is
//     unchanged, else reads it all). A system-versioned table is backed
//     up whole too, current and history rows (read FOR SYSTEM_TIME ALL,
//     its period columns row_start/row_end stored as data columns, loaded
//     back with system_versioning_insert_history, MariaDB 10.11+;
//     NoteVersioned). Views with the prefix are kept as definitions.
//     Every other table (no prefix, sequences, sitevault's temporary
//     tables) is skipped with a reason. A row whose SQL does not fit in
//     a statement below max_allowed_packet is written as the row with its
//     largest values empty, followed by UPDATE … SET c = CONCAT(c, 0x…)
//     statements that append them in parts (the segment is marked parts=1
//     and loaded with INSERTs). A row that cannot be written so (a single
//     value larger than max_allowed_packet, or a table without a key or
//     system-versioned) leaves its table out: the backup is then partial (BackupReport.Partial), names the table and
//     the setting to raise, and records it in the manifest (LeftOut) so
//     that a restore leaves the live table alone.
//   - values: each is written as a literal a binary session loads back
//     exactly: numbers as the server's text, binary and geometry as 0x…,
//     text as escaped bytes, BIT as b'…', ENUM and SET as their numbers
//     (a binary session would not match a member name holding a 4-byte
//     character), and MariaDB's INET4, INET6 and UUID (and any type
//     without a character set this package does not know) as their binary
//     form, CAST(… AS BINARY), in 0x…. MariaDB's metadata is utf8mb3: a
//     4-byte character in an ENUM or SET member name or a comment cannot
//     be read back from SHOW CREATE TABLE (it shows "?"); the restore's
//     checksum check refuses such a table rather than restore it changed.
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
//   - row index and delta: each segment of a keyed table has a row index
//     (every row's key and hash, in the segment's order; see rowIndex). An
//     incremental backup brings a changed segment up to date row by row:
//     the server sends the keys and hashes of its range, only the new or
//     changed rows are read, by key, and stored as a delta (their SQL and
//     an index that also lists the rows they supersede). A restore or a
//     download reads a segment as its base and deltas merged
//     (SegmentSQL). A segment is read again whole, as a new base, when it
//     has no index (older backups), when more than a quarter of its rows
//     changed, or when its deltas grow past a share of it (see delta.go).
//     When most segments changed (changes scattered over a table), the
//     row hashes of every segment are read without asking for segment
//     checksums first: one pass over the table instead of two.
//   - hint: a row an event of the site's connector says changed
//     (BackupOptions.Hints, see hint.go): a key value of a table, or a
//     value of one of its columns (wp_postmeta's post_id). For a changed
//     segment, an incremental backup first checks whether the hinted
//     rows explain its new checksum exactly (count and XOR of row
//     hashes); if so it reads only them, else it looks at the segment
//     row by row as without hints. Hints are hostile input: checked
//     against the selected tables and column types, bounded in number.
//   - manifest: how a database backup is laid out as repository trees (see
//     Manifest): a tree with a "tables" dir (one dir per table holding
//     schema.sql — CREATE TABLE and triggers — and the segments
//     000001.sql…) and views.sql.
//
// Consistency: every InnoDB table is read inside REPEATABLE READ
// transactions started WITH CONSISTENT SNAPSHOT on BackupOptions.Parallel
// connections, together, while a coordinating connection holds LOCK TABLES
// … READ on the tables for a few milliseconds (see snapshot), so that they
// all see one state; without that privilege the backup stays on one
// connection. A full backup reads tables, and key ranges of big tables, on
// all of them at once (see parallelFull); an incremental one spreads its
// checksum queries over them. Non-transactional tables (MyISAM, Aria) are read
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
// Before the swap, each loaded table is compared with the backup's
// checksums: a keyed table segment by segment, each segment's key range
// as soon as it is loaded (the checks spread over the loading
// connections; they add about a third to a restore's time), a whole
// table after its last segment (the row count and the XOR of the row
// hashes over all its segments). A mismatch refuses the swap
// (ErrChecksumMismatch, naming the table), and so does any warning the server gives while loading
// (ErrLoadWarning, with the server's message naming the column), except
// an ENUM's invalid value, which can be loaded no other way.
// The restore point is hostile input (it may come from an imported
// archive): a restore refuses, before touching anything, a point holding
// a table, view or trigger whose name lacks the site's prefix, a CREATE
// TABLE for another table, a trigger on another table or a view
// statement naming another view (ErrForeignName); an empty prefix is
// refused unless RestoreOptions.EmptyPrefix says the site's truly is "".
// A whole-database restore names the live tables the point never held
// (RestoreReport.NotInPoint): it drops those created since, and keeps
// (RestoreReport.Kept) those the backup could not take or, for a point
// made before keyless tables were backed up, the keyless ones.
// Foreign keys are added after the swap (their names are unique per
// database); triggers and views are recreated after it too. A single-table
// restore of a table that other tables reference by foreign key leaves
// those references pointing at the dropped table: restore them together.
package mysql
