<?php

/**
 * Loads a test site's WordPress for a step (see steps.php). The Go test
 * (internal/connectortest) sets:
 *
 *   SV_WP_ROOT   the WordPress root
 *   SV_WP_HOST   the site's host:port (WordPress reads HTTP_HOST)
 *   SV_CRON      "1": the step runs as a WP-Cron request (DOING_CRON)
 *   SV_PAIRING_CODE  SITEVAULT_PAIRING_CODE, when set (else wp-config.php may define it)
 *   SV_MAX_ROWS  SITEVAULT_OUTBOX_MAX_ROWS, when set
 *   SV_MAX_BYTES SITEVAULT_OUTBOX_MAX_BYTES, when set
 *   SV_SAVEQUERIES "1": SAVEQUERIES, so that a step can count the plugin's queries
 */

$svRoot = getenv('SV_WP_ROOT');
if (!is_string($svRoot) || !is_file($svRoot . '/wp-load.php')) {
    fwrite(STDERR, "SV_WP_ROOT does not name a WordPress root\n");
    exit(2);
}
$_SERVER['HTTP_HOST'] = (string) getenv('SV_WP_HOST');
$_SERVER['SERVER_NAME'] = '127.0.0.1';
$_SERVER['REQUEST_URI'] = '/';
$_SERVER['REQUEST_METHOD'] = 'GET';
$_SERVER['REMOTE_ADDR'] = '127.0.0.1';
if (getenv('SV_CRON') === '1') {
    define('DOING_CRON', true);
}
if (getenv('SV_PAIRING_CODE')) {
    define('SITEVAULT_PAIRING_CODE', getenv('SV_PAIRING_CODE'));
}
if (getenv('SV_MAX_ROWS')) {
    define('SITEVAULT_OUTBOX_MAX_ROWS', (int) getenv('SV_MAX_ROWS'));
}
if (getenv('SV_MAX_BYTES')) {
    define('SITEVAULT_OUTBOX_MAX_BYTES', (int) getenv('SV_MAX_BYTES'));
}
if (getenv('SV_SAVEQUERIES') === '1') {
    define('SAVEQUERIES', true);
}
define('WP_USE_THEMES', false);
require $svRoot . '/wp-load.php';
