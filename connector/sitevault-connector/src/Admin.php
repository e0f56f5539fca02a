<?php

namespace Sitevault\Connector;

/**
 * Tools → sitevault: pair with a code, see the pairing and the outbox,
 * unpair. Only users who can manage_options see or use it.
 */
final class Admin
{
    /** The screen's page slug. */
    public const PAGE = 'sitevault-connector';

    /** Adds the screen and its form handlers. */
    public static function register(): void
    {
        add_action('admin_menu', [self::class, 'menu']);
        add_action('admin_post_sitevault_pair', [self::class, 'handlePair']);
        add_action('admin_post_sitevault_unpair', [self::class, 'handleUnpair']);
        add_action('admin_post_sitevault_send', [self::class, 'handleSend']);
    }

    /** Adds Tools → sitevault. */
    public static function menu(): void
    {
        add_management_page('sitevault', 'sitevault', 'manage_options', self::PAGE, [self::class, 'render']);
    }

    private static function url(array $args = []): string
    {
        return add_query_arg(array_merge(['page' => self::PAGE], $args), admin_url('tools.php'));
    }

    private static function notice(string $message): void
    {
        set_transient('sitevault_connector_notice_' . get_current_user_id(), $message, 300);
    }

    /** Pairs with the pasted code. */
    public static function handlePair(): void
    {
        if (!current_user_can('manage_options')) {
            wp_die(esc_html__('You are not allowed to pair this site.', 'sitevault-connector'), 403);
        }
        check_admin_referer('sitevault_pair');
        $code = isset($_POST['sitevault_code']) ? sanitize_text_field(wp_unslash($_POST['sitevault_code'])) : '';
        $r = Client::pair($code);
        self::notice(is_wp_error($r) ? 'error:' . $r->get_error_message() : 'ok:Paired with sitevault.');
        wp_safe_redirect(self::url());
        exit;
    }

    /** Forgets the pairing, empties the outbox and stops sending. */
    public static function handleUnpair(): void
    {
        if (!current_user_can('manage_options')) {
            wp_die(esc_html__('You are not allowed to unpair this site.', 'sitevault-connector'), 403);
        }
        check_admin_referer('sitevault_unpair');
        self::unpair();
        self::notice('ok:Unpaired: nothing is recorded or sent until the site is paired again.');
        wp_safe_redirect(self::url());
        exit;
    }

    /** Sends the outbox now (ignoring the backoff). */
    public static function handleSend(): void
    {
        if (!current_user_can('manage_options')) {
            wp_die(esc_html__('You are not allowed to do this.', 'sitevault-connector'), 403);
        }
        check_admin_referer('sitevault_send');
        Store::updateState(static fn (array $s): array => array_merge($s, ['next_attempt' => 0]));
        $outcome = Sender::run(Sender::MAX_BATCHES);
        self::notice(($outcome === 'sent' || $outcome === 'empty' ? 'ok:' : 'error:') . 'Send: ' . $outcome . '.');
        wp_safe_redirect(self::url());
        exit;
    }

    /** Unpairs (also used by the tests). */
    public static function unpair(): void
    {
        Plugin::unschedule();
        Store::forget();
        Outbox::clear();
        Store::releaseLockAnyway();
    }

    /** Renders the screen. */
    public static function render(): void
    {
        if (!current_user_can('manage_options')) {
            return;
        }
        $key = 'sitevault_connector_notice_' . get_current_user_id();
        $notice = (string) get_transient($key);
        delete_transient($key);
        $c = Store::connection();
        echo '<div class="wrap"><h1>' . esc_html__('sitevault', 'sitevault-connector') . '</h1>';
        if ($notice !== '') {
            [$kind, $text] = array_pad(explode(':', $notice, 2), 2, '');
            printf(
                '<div class="notice notice-%s"><p>%s</p></div>',
                $kind === 'ok' ? 'success' : 'error',
                esc_html($text)
            );
        }
        if ($c === null) {
            self::renderUnpaired();
        } else {
            self::renderPaired($c);
        }
        echo '</div>';
    }

    private static function renderUnpaired(): void
    {
        $state = Store::state();
        echo '<p>' . esc_html__(
            'This site is not paired: nothing is recorded. Make a pairing code on the service with '
            . '`sitevault site connect NAME` and paste it here.',
            'sitevault-connector'
        ) . '</p>';
        if (defined('SITEVAULT_PAIRING_CODE')) {
            echo '<p>' . esc_html__(
                'wp-config.php sets SITEVAULT_PAIRING_CODE: the site pairs with it on the next admin page load '
                . 'or cron run.',
                'sitevault-connector'
            ) . '</p>';
        }
        if ($state['last_error'] !== '') {
            echo '<p><strong>' . esc_html__('Last error:', 'sitevault-connector') . '</strong> '
                . esc_html((string) $state['last_error']) . '</p>';
        }
        echo '<form method="post" action="' . esc_url(admin_url('admin-post.php')) . '">';
        wp_nonce_field('sitevault_pair');
        echo '<input type="hidden" name="action" value="sitevault_pair">';
        echo '<p><label for="sitevault_code">' . esc_html__('Pairing code', 'sitevault-connector') . '</label><br>';
        echo '<textarea id="sitevault_code" name="sitevault_code" rows="3" cols="80" class="large-text code" required>'
            . '</textarea></p>';
        submit_button(__('Pair', 'sitevault-connector'));
        echo '</form>';
    }

    /**
     * @param array<string, mixed> $c
     */
    private static function renderPaired(array $c): void
    {
        $state = Store::state();
        $stats = Outbox::stats();
        $when = static fn (int $t): string => $t > 0
            ? wp_date('Y-m-d H:i:s', $t) . ' (' . human_time_diff($t) . ')'
            : '—';
        $rows = [
            __('Site', 'sitevault-connector') => (string) $c['site'],
            __('Service', 'sitevault-connector') => (string) ($c['service_url'] ?? ''),
            __('Key id', 'sitevault-connector') => (string) $c['key_id'],
            __('Paired', 'sitevault-connector') => $when((int) ($c['paired_at'] ?? 0)),
            __('Key rotated', 'sitevault-connector') => $when((int) ($c['rotated_at'] ?? 0)),
            __('Last batch sent', 'sitevault-connector') => $state['last_sent']
                ? sprintf('%s, %d events', $when((int) $state['last_sent']), (int) $state['last_count']) : '—',
            __('Outbox', 'sitevault-connector') => sprintf(
                '%d events, %s (bounds: %d events, %s)',
                $stats['rows'],
                size_format($stats['bytes']) ?: '0 B',
                Outbox::maxRows(),
                size_format(Outbox::maxBytes())
            ),
            __('Dropped', 'sitevault-connector') => sprintf(
                '%d since pairing, %d not yet reported',
                (int) $state['dropped_total'],
                (int) $state['dropped']
            ),
            __('Next attempt', 'sitevault-connector') => (int) $state['next_attempt'] > time()
                ? $when((int) $state['next_attempt'])
                : __('now', 'sitevault-connector'),
            __('Last error', 'sitevault-connector') => (string) $state['last_error'] ?: '—',
        ];
        echo '<table class="widefat striped" style="max-width:60em"><tbody>';
        foreach ($rows as $label => $value) {
            echo '<tr><th scope="row">' . esc_html($label) . '</th><td>' . esc_html($value) . '</td></tr>';
        }
        echo '</tbody></table>';
        echo '<form method="post" action="' . esc_url(admin_url('admin-post.php'))
            . '" style="display:inline-block;margin-right:1em">';
        wp_nonce_field('sitevault_send');
        echo '<input type="hidden" name="action" value="sitevault_send">';
        submit_button(__('Send now', 'sitevault-connector'), 'secondary', 'submit', false);
        echo '</form>';
        echo '<form method="post" action="' . esc_url(admin_url('admin-post.php')) . '" style="display:inline-block">';
        wp_nonce_field('sitevault_unpair');
        echo '<input type="hidden" name="action" value="sitevault_unpair">';
        submit_button(__('Unpair', 'sitevault-connector'), 'delete', 'submit', false);
        echo '</form>';
    }
}
