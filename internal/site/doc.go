// Package site composes what sitevault does with one registered site: it
// connects (connection), learns the site from its files (wordpress),
// checks the database login through the connection, runs the registration
// check that site add and edit (CLI and service) share (Check), and the file half
// of backup (archiver with the WordPress selection rules) and restore
// (restorer with a filter built from items and paths).
//
// Glossary:
//
//   - check: the registration flow, in steps (Step): connect, host key,
//     files, config (wp-config.php's database settings), database login.
//     A failure is a *CheckError naming its step, with the missing
//     wp-config.php values as data for the config step.
//   - inspection: what reading the site's files tells: the WordPress
//     version, multisite, where wp-config.php is, the content dir, and the
//     database settings with the catalog's overrides applied.
//   - restore point layout: a site's restore point has a root tree with one
//     directory node per part: "files" (the site root, as selected) and,
//     from the database issue on, "database". A restore point written by
//     `sitevault dir backup` has no such layout and is refused by
//     RestoreFiles' callers (FilesTree reports it).
package site
