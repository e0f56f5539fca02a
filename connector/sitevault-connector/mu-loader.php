<?php

/**
 * Plugin Name: sitevault connector (must-use loader)
 * Description: Loads the sitevault connector as a must-use plugin.
 *
 * Copy the sitevault-connector folder into wp-content/mu-plugins/ and this
 * file to wp-content/mu-plugins/sitevault-connector-loader.php: WordPress
 * loads only the PHP files at the top of mu-plugins/, so this file includes
 * the plugin from its folder. A must-use plugin cannot be deactivated from
 * the Plugins screen; remove both to remove it (see readme.txt).
 */

if (!defined('ABSPATH')) {
    exit;
}

if (is_file(WPMU_PLUGIN_DIR . '/sitevault-connector/sitevault-connector.php')) {
    require_once WPMU_PLUGIN_DIR . '/sitevault-connector/sitevault-connector.php';
}
