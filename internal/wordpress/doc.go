// Package wordpress understands a WordPress site from its files alone,
// without running PHP: it discovers a site (Discover), reads its
// wp-config.php (ParseConfig), turns DB_HOST into a network address
// (ParseDBHost) and decides which files a backup takes (Rules, Explain).
//
// It knows nothing of storage; backup and restore compose it with the
// repository.
//
// Glossary:
//
//   - root: the site's directory (ABSPATH), the root of the fsys.FS the
//     package reads. Paths are slash-separated and relative to it; "" is
//     the root itself.
//   - content dir: wp-content, or the folder WP_CONTENT_DIR names when it
//     lies inside the root.
//   - core: the files WordPress ships and updates itself (wp-admin/,
//     wp-includes/, the core *.php files, license.txt, readme.html in the
//     root). A backup never takes them; a restore reinstalls WordPress.
//   - item: a restorable part of a restore point, named as users know it:
//     themes, plugins, uploads, roots, contents (and database, which this
//     package does not handle).
//   - rule: one reason a path is not backed up ("WordPress core",
//     "cache folder (LiteSpeed Cache)", …). Every exclusion names its rule
//     so that `sitevault site files NAME --explain` can show it.
//
// The wp-config.php reader is a small PHP tokenizer and evaluator for the
// forms wp-config.php files use in practice (define, const, $table_prefix,
// string literals with PHP's escapes, concatenation, getenv and the official
// Docker image's getenv_docker). It never executes code: a value built from
// anything else is reported as unknown (a ValueError naming the setting),
// and the caller asks for it. Conditions are decided as PHP would where the site's files
// and environment tell (file_exists, is_file, is_dir through the site's
// connection, defined, isset, and getenv when ParseOptions.Env records the
// environment); a setting defined in a branch that
// cannot be decided is an ErrConditional naming the line, never a guess.
package wordpress
