<?php

/**
 * Uninstall: removes everything the connector created — its outbox table,
 * its options (the pairing, the sending state, the lock, the schema
 * version), its cron event and its transients.
 */

if (!defined('WP_UNINSTALL_PLUGIN')) {
    exit;
}

global $wpdb;

$sitevaultRemove = static function () use ($wpdb): void {
    $wpdb->query('DROP TABLE IF EXISTS ' . $wpdb->prefix . 'sitevault_outbox');
    $options = [
        'sitevault_connector',
        'sitevault_connector_state',
        'sitevault_connector_lock',
        'sitevault_connector_db_version',
    ];
    foreach ($options as $option) {
        delete_option($option);
    }
    wp_clear_scheduled_hook('sitevault_connector_send');
    // Transients (the settings screen's notices), and any option a later
    // version may add: every name starts with "sitevault_connector".
    $like = $wpdb->esc_like('sitevault_connector') . '%';
    $names = $wpdb->get_col($wpdb->prepare(
        "SELECT option_name FROM {$wpdb->options}
         WHERE option_name LIKE %s OR option_name LIKE %s OR option_name LIKE %s",
        $like,
        $wpdb->esc_like('_transient_sitevault_connector') . '%',
        $wpdb->esc_like('_transient_timeout_sitevault_connector') . '%'
    ));
    foreach ((array) $names as $name) {
        delete_option($name);
    }
};

if (is_multisite()) {
    foreach (get_sites(['fields' => 'ids', 'number' => 0]) as $sitevaultBlog) {
        switch_to_blog((int) $sitevaultBlog);
        $sitevaultRemove();
        restore_current_blog();
    }
} else {
    $sitevaultRemove();
}
