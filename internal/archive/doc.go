// Package archive turns a restore point into a download (.tar.gz or .zip)
// that needs no sitevault to use, and imports such a download back into a
// repository as a restore point.
//
// # Layout of a download
//
//	files/…              the site root as backed up: folders, regular files
//	                     (mode, modification time), symbolic links as links
//	sql/<table>.sql      one self-contained file per table, loadable with
//	                     `mysql DB < sql/<table>.sql`: session settings as
//	                     mysqldump writes them, DROP TABLE IF EXISTS,
//	                     CREATE TABLE, the rows, the triggers
//	sql/views.sql        the views, if the site has any
//	manifest.json        written last: what the download is of, and every
//	                     entry with its size and SHA-256
//
// # Glossary
//
//   - entry: one member of the archive (file, folder or symbolic link),
//     named by its full path in the archive ("files/wp-config.php").
//   - manifest: manifest.json, the download's table of contents (see
//     Manifest). Import trusts nothing the manifest does not vouch for.
//   - segment marker: a comment line "-- sitevault: segment NNNNNN.sql"
//     in a table file, before the rows of one database segment exactly as
//     the repository holds them. Import cuts the rows at the markers, so
//     an imported point stores the same segments (and deduplicates
//     against the point it was downloaded from).
//
// # Importing a download
//
// A download is hostile input: Import trusts nothing it does not check,
// and the point it records can reach nothing beyond the site it is
// imported for.
//
//   - Tables, views and triggers must carry the download's table prefix
//     (manifest.json's table_prefix; a download without one is refused)
//     and are renamed to the site's (ImportOptions.TablePrefix): the
//     manifest's prefix is translated, never trusted. Restoring site A's
//     download into site B writes B's tables only. WordPress's own keys
//     that embed the prefix (the option <prefix>user_roles, the user meta
//     <prefix>capabilities, <prefix>user_level, …) are renamed with it, so
//     users keep their roles.
//   - SQL is parsed into data, never passed through: rows are checked to
//     be literal values only (valuesChecker); CREATE TABLE, CREATE
//     TRIGGER and CREATE VIEW are tokenized, held to the shapes
//     sitevault writes (checkCreate, checkTrigger, checkView) and
//     rendered again with the translated names, without DEFINER. A
//     trigger may only be on its own table and only set and test that
//     row's columns; a view may only read the site's tables.
//   - Symbolic links that lead outside the site root (absolute targets,
//     or ".." above the root, following the download's own links) are
//     left out of the point and listed in its summary (Skipped).
//
// Because every table the point holds carries the site's prefix and has
// a primary or unique key, the pre-restore point a restore of it takes
// holds everything that restore replaces or drops, so undo brings it
// all back; triggers go with their tables.
//
// Names are written byte-exact: tar entries use PAX records for long or
// non-ASCII names and link targets, zip entries carry the name's bytes
// (flagged UTF-8 when they are). Table names, which may hold "/", are
// escaped in file names (see tableFile); manifest.json maps each file back
// to its table.
//
// Everything streams: a file or a table flows from the repository to the
// writer (and from the archive into the repository) through fixed-size
// buffers. What grows with the site is only the list of entries the
// manifest needs (tens of bytes per entry).
package archive
