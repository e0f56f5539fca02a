<?php
// A hand-edited config with every form sitevault must read right.
# define('DB_NAME', 'commented_hash');
// define('DB_NAME', 'commented_slashes');
/* define('DB_NAME', 'commented_block');
   define('DB_USER', 'commented_block'); */
/**
 * define( 'DB_PASSWORD', 'in a doc comment' );
 */
DEFINE ( "DB_NAME" ,
	'shop' ) ;
define('DB_USER', 'shop\'s user'); // define('DB_USER', 'trailing comment');
define('DB_PASSWORD', "p\"a\\ss\$\n\x41\u{e9}");
define('DB_HOST', 'localhost' . ':' . '/run/mysqld/mysqld.sock');
const DB_CHARSET = 'utf8mb4';
define('DB_COLLATE', DB_CHARSET . '_unicode_ci');
define('DB_NAME', 'second definition is ignored by PHP');
$table_prefix  = 'wp_';
$table_prefix = "shop_"; # the last assignment wins
define('WP_CACHE', true); //Added by WP-Cache Manager
define('WP_MEMORY_LIMIT', '256M');
define('AUTOSAVE_INTERVAL', 300);
define('WP_POST_REVISIONS', false);
if ( ! defined( 'ABSPATH' ) ) {
	define( 'ABSPATH', dirname( __FILE__ ) . '/' );
}
require_once ABSPATH . 'wp-settings.php';
?>
<!-- define('DB_NAME', 'html after the closing tag') -->
