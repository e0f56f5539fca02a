<?php

namespace Sitevault\Connector;

/**
 * Wires the connector into WordPress: the event hooks, the sender (after
 * the response and in WP-Cron), pairing from the wp-config.php constant and
 * the settings screen.
 */
final class Plugin
{
    /** The WP-Cron hook that sends the outbox every minute while paired. */
    public const CRON_HOOK = 'sitevault_connector_send';

    /** The cron schedule the send event recurs on. */
    public const CRON_SCHEDULE = 'sitevault_every_minute';

    /** The plugin's version (the header's Version). */
    public const VERSION = '1.0.0';

    /** The main plugin file. */
    public static string $file = '';

    /**
     * Registers every hook; called once from the main plugin file.
     */
    public static function boot(string $file): void
    {
        self::$file = $file;
        add_filter('cron_schedules', [self::class, 'cronSchedules']);
        add_action(self::CRON_HOOK, [Sender::class, 'fromCron']);
        add_action('init', [self::class, 'init']);
        // The request's events are written at shutdown (after a fatal error too), before the sender.
        add_action('shutdown', [Outbox::class, 'onShutdown'], Outbox::FLUSH_PRIORITY);
        add_action('shutdown', [Sender::class, 'onShutdown'], 1000);
        Events::register();
        add_action('plugins_loaded', [WooCommerce::class, 'registerIfActive']);
        if (is_admin()) {
            Admin::register();
        }
    }

    /**
     * Adds the one-minute schedule the send event uses.
     *
     * @param array<string, array{interval: int, display: string}> $schedules
     * @return array<string, array{interval: int, display: string}>
     */
    public static function cronSchedules($schedules): array
    {
        $schedules = is_array($schedules) ? $schedules : [];
        $schedules[self::CRON_SCHEDULE] = [
            'interval' => 60,
            'display' => 'Every minute (sitevault connector)',
        ];
        return $schedules;
    }

    /**
     * On admin page loads, cron runs and WP-CLI: creates or upgrades the
     * outbox (a plugin update replaces the files without activating them;
     * the schema version is autoloaded, so the check costs no query), pairs
     * with the code in SITEVAULT_PAIRING_CODE while unpaired, and keeps the
     * send event scheduled while paired. A page view loads none of this (a
     * request that records events upgrades the outbox when it writes them).
     */
    public static function init(): void
    {
        if (!(is_admin() || wp_doing_cron() || (defined('WP_CLI') && WP_CLI))) {
            return;
        }
        Outbox::ensureTable();
        if (!Store::paired() && defined('SITEVAULT_PAIRING_CODE') && is_string(SITEVAULT_PAIRING_CODE)) {
            Client::pairFromConstant(SITEVAULT_PAIRING_CODE);
        }
        if (Store::paired()) {
            self::schedule();
        }
    }

    /** Schedules the recurring send event unless it is already scheduled. */
    public static function schedule(): void
    {
        if (!wp_next_scheduled(self::CRON_HOOK)) {
            wp_schedule_event(time() + 60, self::CRON_SCHEDULE, self::CRON_HOOK);
        }
    }

    /** Removes the send event. */
    public static function unschedule(): void
    {
        wp_clear_scheduled_hook(self::CRON_HOOK);
    }

    /** Activation: creates the outbox table; schedules sending if paired. */
    public static function activate(): void
    {
        Outbox::createTable();
        if (Store::paired()) {
            add_filter('cron_schedules', [self::class, 'cronSchedules']);
            self::schedule();
        }
    }

    /** Deactivation: stops sending (the outbox and the pairing stay for a later activation). */
    public static function deactivate(): void
    {
        self::unschedule();
        Store::releaseLockAnyway();
    }
}
