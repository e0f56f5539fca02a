<?php

/**
 * One step of the connector's tests, run with php-cli against a real
 * WordPress (internal/connectortest drives it; see bootstrap.php for the
 * environment):
 *
 *     php connector/tests/steps.php STEP [ARG…]
 *
 * It prints one line of JSON: what the step did and what it found (the
 * outbox, the plugin's state). Steps that must not send at shutdown say
 * so with Recorder::$recorded = false; the others send as WP-CLI would,
 * after the work is done.
 */

use Sitevault\Connector\Admin;
use Sitevault\Connector\Outbox;
use Sitevault\Connector\Recorder;
use Sitevault\Connector\Sender;
use Sitevault\Connector\Store;

require __DIR__ . '/bootstrap.php';
require_once ABSPATH . 'wp-admin/includes/plugin.php';

$svPlugin = 'sitevault-connector/sitevault-connector.php';

$svFail = static function (string $message): void {
    fwrite(STDERR, 'Fatal error: ' . $message . "\n");
    exit(1);
};

// What the outbox holds, oldest first, and the plugin's state.
$svOutbox = static function (): array {
    global $wpdb;
    $rows = [];
    $t = $wpdb->prefix . 'sitevault_outbox';
    if ($wpdb->get_var($wpdb->prepare('SHOW TABLES LIKE %s', $t)) === $t) {
        foreach ((array) $wpdb->get_results("SELECT * FROM {$t} ORDER BY id") as $r) {
            $rows[] = ['name' => $r->name, 'count' => (int) $r->count, 'claimed' => (int) $r->claimed,
                'event' => json_decode($r->payload, true), 'uuid' => $r->uuid,
                'first_time' => (float) ($r->first_time ?? 0), 'db' => (string) ($r->db ?? '')];
        }
    }
    return ['rows' => $rows, 'bytes' => Outbox::stats()['bytes'], 'state' => Store::state(),
        'connection' => Store::connection(), 'cron_next' => wp_next_scheduled('sitevault_connector_send'),
        'now' => time()];
};

$svSteps = [
    'activate' => static function () use ($svPlugin, $svFail): array {
        $r = activate_plugin($svPlugin);
        if (is_wp_error($r)) {
            $svFail($r->get_error_message());
        }
        return ['active' => is_plugin_active($svPlugin)];
    },
    'deactivate' => static function () use ($svPlugin): array {
        Recorder::$recorded = false;
        deactivate_plugins($svPlugin);
        return ['active' => is_plugin_active($svPlugin)];
    },
    'init' => static function () use ($svOutbox): array {
        // Nothing but loading WordPress (as a cron run when SV_CRON=1): pairing from the constant.
        return $svOutbox();
    },
    'outbox' => static function () use ($svOutbox): array {
        Recorder::$recorded = false;
        return $svOutbox();
    },
    'publish' => static function (array $args) use ($svFail): array {
        wp_set_current_user(1);
        $ids = [];
        $n = (int) ($args[1] ?? 1);
        for ($i = 0; $i < $n; $i++) {
            $id = wp_insert_post([
                'post_title' => $n > 1 ? $args[0] . ' ' . $i : $args[0],
                'post_content' => 'Content of ' . $args[0],
                'post_status' => 'publish',
            ], true);
            if (is_wp_error($id)) {
                $svFail($id->get_error_message());
            }
            $ids[] = $id;
        }
        if (($args[2] ?? '') === 'nosend') {
            // Not sent at shutdown, even when the outbox's bound records the drop event there.
            Recorder::$recorded = false;
            remove_action('shutdown', [Sender::class, 'onShutdown'], 1000);
        }
        // Events still in memory (the rest were written out when BUFFER_MAX were waiting).
        return ['ids' => $ids, 'buffered' => Outbox::buffered()];
    },
    'update' => static function (array $args): array {
        wp_set_current_user(1);
        $id = (int) $args[0];
        for ($i = 1; $i <= (int) $args[1]; $i++) {
            wp_update_post(['ID' => $id, 'post_content' => 'Revision ' . $i]);
        }
        Recorder::$recorded = false;
        return ['id' => $id];
    },
    'churn' => static function (array $args): array {
        // One change request as bench/realtime's makes it (a post's content and a meta value, by
        // the admin), with SV_SAVEQUERIES=1: the plugin's queries in it, counted at shutdown after
        // the outbox is written (priority 999) and before the sender would run (1000; it does not,
        // this step is not meant to send), by the call stacks SAVEQUERIES keeps. That line is
        // printed last, so it is what the test reads.
        add_action('shutdown', static function (): void {
            global $wpdb;
            $mine = [];
            foreach ((array) $wpdb->queries as $q) {
                if (strpos((string) ($q[2] ?? ''), 'Sitevault\\Connector\\') !== false) {
                    $mine[] = preg_replace('/\s+/', ' ', trim((string) $q[0]));
                }
            }
            echo wp_json_encode(['plugin_queries' => count($mine), 'queries' => (int) $wpdb->num_queries,
                'sql' => $mine]), "\n";
        }, 999);
        wp_set_current_user(1);
        foreach ($args as $id) {
            $id = (int) $id;
            wp_update_post(['ID' => $id, 'post_content' => 'Changed at ' . microtime(true)]);
            update_post_meta($id, '_sv_bench_counter', (int) get_post_meta($id, '_sv_bench_counter', true) + 1);
        }
        Recorder::$recorded = false;
        return ['ok' => true];
    },
    'record' => static function (array $args): array {
        // record NAME OBJECT_ID TABLE VALUE…: one event on a test object whose db names TABLE's rows by key.
        Recorder::record(
            $args[0],
            ['type' => 'test', 'id' => $args[1], 'name' => 'Test object ' . $args[1]],
            'Test object ' . $args[1] . ' changed',
            ['n' => 1],
            null,
            [['table' => $args[2], 'values' => array_slice($args, 3)]]
        );
        Recorder::$recorded = false;
        return ['ok' => true];
    },
    'old-schema' => static function (array $args): array {
        // The outbox as version 1 of the plugin left it: the table without first_time and db, one row
        // (NAME OBJECT_ID, counted 3 times) whose payload holds its uuid, first time and db, and the
        // schema version "1", not autoloaded. The next request's plugin load upgrades it.
        global $wpdb;
        Recorder::$recorded = false;
        $t = Outbox::table();
        $wpdb->query("DROP TABLE IF EXISTS {$t}");
        $wpdb->query("CREATE TABLE {$t} (
  id bigint(20) unsigned NOT NULL AUTO_INCREMENT,
  uuid char(36) NOT NULL,
  name varchar(64) NOT NULL,
  ckey char(40) NOT NULL,
  created double NOT NULL,
  count int(10) unsigned NOT NULL DEFAULT 1,
  claimed tinyint(1) NOT NULL DEFAULT 0,
  bytes int(10) unsigned NOT NULL,
  payload longtext NOT NULL,
  PRIMARY KEY  (id),
  KEY ckey (ckey,created)
) " . $wpdb->get_charset_collate());
        $now = round(microtime(true), 3);
        $uuid = wp_generate_uuid4();
        $e = ['uuid' => $uuid, 'name' => $args[0], 'time' => $now - 5,
            'actor' => ['kind' => 'wordpress', 'name' => 'WordPress'],
            'object' => ['type' => 'test', 'id' => $args[1], 'name' => 'Test object ' . $args[1]],
            'summary' => 'Test object ' . $args[1] . ' changed (schema 1)',
            'details' => ['first_time' => $now - 20, 'n' => 1],
            'db' => [['table' => $wpdb->posts, 'values' => ['101']]]];
        $payload = Recorder::encode($e);
        $wpdb->insert($t, ['uuid' => $uuid, 'name' => $args[0],
            'ckey' => sha1(implode('|', [$args[0], 'test', $args[1], 'wordpress', ''])), 'created' => $now - 5,
            'count' => 3, 'bytes' => strlen($payload), 'payload' => $payload]);
        delete_option(Store::DB_VERSION);
        add_option(Store::DB_VERSION, '1', '', false);
        return ['uuid' => $uuid, 'first_time' => $now - 20];
    },
    'fatal' => static function (array $args): array {
        // Publishes a post, then dies of a fatal error before the request ends.
        wp_set_current_user(1);
        wp_insert_post(['post_title' => $args[0], 'post_status' => 'publish', 'post_content' => 'x']);
        Recorder::$recorded = false;
        $undefined = 'sv_test_undefined_function';
        $undefined();
        return ['survived' => true];
    },
    'send' => static function (): array {
        $outcome = Sender::run(Sender::MAX_BATCHES);
        Recorder::$recorded = false;
        return ['outcome' => $outcome];
    },
    'blogname' => static function (array $args): array {
        // No user: the actor is WordPress itself, or cron when SV_CRON=1.
        update_option('blogname', $args[0]);
        Recorder::$recorded = false;
        return ['ok' => true];
    },
    'set-key-id' => static function (array $args): array {
        Recorder::$recorded = false;
        $c = Store::connection();
        $c['key_id'] = $args[0];
        Store::saveConnection($c);
        return ['connection' => Store::connection()];
    },
    'cron-due' => static function (): array {
        // Makes the send event due now (WP-Cron then runs it on the next wp-cron.php request).
        Recorder::$recorded = false;
        $next = wp_next_scheduled('sitevault_connector_send');
        if ($next === false) {
            throw new RuntimeException('the send event is not scheduled');
        }
        wp_unschedule_event($next, 'sitevault_connector_send');
        wp_schedule_event(time() - 1, 'sitevault_every_minute', 'sitevault_connector_send');
        return ['was' => $next, 'recurrence' => wp_get_schedule('sitevault_connector_send')];
    },
    'drop-table' => static function (): array {
        global $wpdb;
        Recorder::$recorded = false;
        $wpdb->query('DROP TABLE ' . Outbox::table());
        return ['exists' => Outbox::tableExists()];
    },
    'decode' => static function (array $args): array {
        Recorder::$recorded = false;
        $d = \Sitevault\Connector\Client::decodeCode($args[0]);
        return is_wp_error($d) ? ['error' => $d->get_error_message()] : ['decoded' => $d];
    },
    'set-state' => static function (array $args): array {
        Recorder::$recorded = false;
        $s = Store::updateState(static function (array $s) use ($args): array {
            foreach ($args as $kv) {
                [$k, $v] = explode('=', $kv, 2);
                $s[$k] = is_numeric($v) ? (int) $v : $v;
            }
            return $s;
        });
        return ['state' => $s];
    },
    'rotate-due' => static function (): array {
        Recorder::$recorded = false;
        $c = Store::connection();
        $c['rotated_at'] = time() - 31 * DAY_IN_SECONDS;
        Store::saveConnection($c);
        return ['connection' => Store::connection()];
    },
    'lock' => static function (): array {
        Recorder::$recorded = false;
        $first = Store::acquireLock();
        // A second request (same database, its own token) must not get it.
        $reflection = new ReflectionProperty(Store::class, 'lockToken');
        $reflection->setAccessible(true);
        $mine = $reflection->getValue();
        $reflection->setValue(null, null);
        $second = Store::acquireLock();
        $whileHeld = Sender::run(1);
        $reflection->setValue(null, $mine);
        Store::releaseLock();
        $afterRelease = Store::acquireLock();
        Store::releaseLock();
        return [
            'first' => $first,
            'second' => $second,
            'run_while_held' => $whileHeld,
            'after_release' => $afterRelease,
        ];
    },
    'events' => static function (): array {
        // A tour of the hooks, each by WordPress's own functions.
        wp_set_current_user(1);
        wp_authenticate('admin', 'not-the-password');
        $r = activate_plugin('akismet/akismet.php');
        if (is_wp_error($r)) {
            throw new RuntimeException($r->get_error_message());
        }
        deactivate_plugins('akismet/akismet.php');
        update_option('blogname', 'Renamed by the test');
        update_option('some_plugin_cache', 'not on the allow-list');
        $term = wp_insert_term('Gardening', 'category');
        wp_update_term($term['term_id'], 'category', ['name' => 'Gardening tips']);
        $post = wp_insert_post(['post_title' => 'Commented', 'post_status' => 'publish', 'post_content' => 'x']);
        $comment = wp_insert_comment(['comment_post_ID' => $post, 'comment_author' => 'Visitor',
            'comment_content' => 'Nice post', 'comment_approved' => 0]);
        wp_set_comment_status($comment, 'approve');
        wp_spam_comment($comment);
        $user = wp_insert_user(['user_login' => 'editor1', 'user_pass' => wp_generate_password(),
            'user_email' => 'editor1@example.invalid', 'role' => 'author']);
        (new WP_User($user))->set_role('editor');
        require_once ABSPATH . 'wp-admin/includes/user.php';
        wp_delete_user($user, 1);
        $menu = wp_create_nav_menu('Main menu');
        wp_delete_nav_menu($menu);
        $upload = wp_upload_bits('photo.txt', null, 'not really a photo');
        $att = wp_insert_attachment(['post_title' => 'Holiday photo', 'post_mime_type' => 'text/plain',
            'post_status' => 'inherit'], $upload['file']);
        wp_delete_attachment($att, true);
        wp_trash_post($post);
        wp_untrash_post($post);
        wp_delete_post($post, true);
        require_once ABSPATH . 'wp-admin/includes/post.php';
        $draft = wp_insert_post(['post_title' => 'Autosaved', 'post_status' => 'draft', 'post_content' => 'x']);
        wp_create_post_autosave(['post_ID' => $draft, 'post_title' => 'Autosaved', 'post_content' => 'changed',
            'post_type' => 'post']);
        // Plugins and themes: deleted, switched, edited in the file editor (its ajax action, as admin-ajax.php
        // fires it), by WordPress's own functions.
        require_once ABSPATH . 'wp-admin/includes/file.php';
        require_once ABSPATH . 'wp-admin/includes/theme.php';
        if (delete_plugins(['akismet/akismet.php']) !== true) {
            throw new RuntimeException('delete_plugins failed');
        }
        $theme = get_theme_root() . '/svtest';
        wp_mkdir_p($theme);
        file_put_contents($theme . '/style.css', "/*\nTheme Name: SV Test Theme\nVersion: 1.0\n*/\n");
        file_put_contents($theme . '/index.php', "<?php\n");
        search_theme_directories(true);
        switch_theme('svtest');
        switch_theme('twentytwentythree');
        if (delete_theme('svtest') !== true) {
            throw new RuntimeException('delete_theme failed');
        }
        $_POST = ['plugin' => 'hello.php', 'file' => 'hello.php'];
        do_action('wp_ajax_edit-theme-plugin-file');
        $_POST = ['theme' => 'twentytwentythree', 'file' => 'style.css'];
        do_action('wp_ajax_edit-theme-plugin-file');
        $_POST = [];
        // Widgets, a profile, an export, a core update (the hooks export_wp() and update_core() fire).
        $sidebars = (array) get_option('sidebars_widgets', []);
        $sidebars['sidebar-1'] = array_merge((array) ($sidebars['sidebar-1'] ?? []), ['block-99']);
        update_option('sidebars_widgets', $sidebars);
        update_option('widget_block', [99 => ['content' => '<p>Hello</p>'], '_multiwidget' => 1]);
        wp_update_user(['ID' => 1, 'user_url' => 'https://example.invalid/']);
        do_action('export_wp', ['content' => 'all']);
        do_action('_core_updated_successfully', '6.1.10');
        do_action('import_start');
        do_action('import_end');
        // WooCommerce is not packaged for Debian: its documented hooks, fired with the arguments WooCommerce
        // passes (the order and product objects are the test's stand-ins for WC_Order and WC_Product).
        if (class_exists('WooCommerce', false)) {
            $order = new SvTestOrder(501);
            do_action('woocommerce_new_order', 501, $order);
            do_action('woocommerce_order_status_changed', 501, 'pending', 'processing', $order);
            do_action('woocommerce_order_refunded', 501, 502);
            do_action('woocommerce_new_product', 77, new SvTestProduct(77));
            do_action('woocommerce_update_product', 77, new SvTestProduct(77));
        }
        wp_set_current_user(0);
        Recorder::$recorded = false;
        return ['ok' => true];
    },
    'render' => static function (): array {
        Recorder::$recorded = false;
        require_once ABSPATH . 'wp-admin/includes/template.php'; // loaded on every admin page
        wp_set_current_user(1);
        ob_start();
        Admin::render();
        $html = (string) ob_get_clean();
        wp_set_current_user(0);
        ob_start();
        Admin::render();
        return ['admin' => $html, 'anonymous' => (string) ob_get_clean()];
    },
    'uninstall' => static function () use ($svPlugin): array {
        global $wpdb;
        Recorder::$recorded = false;
        deactivate_plugins($svPlugin);
        $cronAfterDeactivate = (bool) wp_next_scheduled('sitevault_connector_send');
        // What Plugins → Delete does: uninstall_plugin() runs uninstall.php.
        set_transient('sitevault_connector_notice_1', 'left from the screen', 300);
        uninstall_plugin($svPlugin);
        $cron = [];
        foreach ((array) _get_cron_array() as $hooks) {
            foreach (array_keys((array) $hooks) as $hook) {
                if (stripos((string) $hook, 'sitevault') !== false) {
                    $cron[] = $hook;
                }
            }
        }
        return [
            'cron_after_deactivate' => $cronAfterDeactivate,
            'tables' => $wpdb->get_col($wpdb->prepare('SHOW TABLES LIKE %s', '%sitevault%')),
            'options' => $wpdb->get_col(
                "SELECT option_name FROM {$wpdb->options} WHERE option_name LIKE '%sitevault%'"
            ),
            'cron' => $cron,
        ];
    },
    'mu' => static function () use ($svOutbox): array {
        // Loaded from mu-plugins/ by the loader; never activated.
        global $wpdb;
        Recorder::$recorded = false;
        $t = $wpdb->prefix . 'sitevault_outbox';
        Outbox::stats();
        return [
            'loaded' => class_exists('Sitevault\\Connector\\Plugin', false),
            'file' => \Sitevault\Connector\Plugin::$file,
            'table' => $wpdb->get_var($wpdb->prepare('SHOW TABLES LIKE %s', $t)) === $t,
            'paired' => Store::paired(),
        ];
    },
];

$svStep = $argv[1] ?? '';
if (!isset($svSteps[$svStep])) {
    $svFail('unknown step "' . $svStep . '"; steps: ' . implode(', ', array_keys($svSteps)));
}
echo wp_json_encode($svSteps[$svStep](array_slice($argv, 2))), "\n";
