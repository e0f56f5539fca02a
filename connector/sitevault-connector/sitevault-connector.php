<?php

/**
 * Plugin Name:       sitevault connector
 * Plugin URI:        https://github.com/sitevault/sitevault
 * Description:       Sends this site's activity to your sitevault service: activity log, real-time restore points.
 * Version:           1.0.0
 * Requires at least: 6.1
 * Requires PHP:      8.0
 * Author:            sitevault
 * License:           GPL-2.0-or-later
 * License URI:       https://www.gnu.org/licenses/gpl-2.0.html
 * Text Domain:       sitevault-connector
 *
 * Works as a normal plugin (wp-content/plugins/sitevault-connector/) and as a
 * must-use plugin (this folder in wp-content/mu-plugins/ plus mu-loader.php
 * copied there as sitevault-connector-loader.php; see readme.txt).
 */

if (!defined('ABSPATH')) {
    exit;
}

// Loaded twice (a normal plugin and an mu-plugin at once): the first one wins.
if (class_exists('Sitevault\\Connector\\Plugin', false)) {
    return;
}

spl_autoload_register(static function (string $class): void {
    $prefix = 'Sitevault\\Connector\\';
    if (strncmp($class, $prefix, strlen($prefix)) !== 0) {
        return;
    }
    $file = __DIR__ . '/src/' . str_replace('\\', '/', substr($class, strlen($prefix))) . '.php';
    if (is_file($file)) {
        require $file;
    }
});

register_activation_hook(__FILE__, [\Sitevault\Connector\Plugin::class, 'activate']);
register_deactivation_hook(__FILE__, [\Sitevault\Connector\Plugin::class, 'deactivate']);

\Sitevault\Connector\Plugin::boot(__FILE__);
