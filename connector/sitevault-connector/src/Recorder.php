<?php

namespace Sitevault\Connector;

/**
 * Turns what a hook saw into a protocol EVENT and puts it in the outbox
 * (in memory until the request's shutdown; see Outbox). Everything an event
 * says is captured when it is recorded: nothing is read again when it is sent.
 */
final class Recorder
{
    /** A summary's limit in characters (the protocol's). */
    public const MAX_SUMMARY = 200;

    /** A details object's limit in bytes of JSON (the protocol's). */
    public const MAX_DETAILS = 8192;

    /** Whether this request recorded an event (the shutdown hook then sends). */
    public static bool $recorded = false;

    /**
     * Records an event while the site is paired; does nothing unpaired.
     *
     * @param string $name group__verb
     * @param array{type: string, id: int|string, name?: string} $object
     * @param string $summary one line
     * @param array<string, mixed> $details
     * @param array<string, mixed>|null $actor null: who is acting now (see actor())
     * @param list<array<string, mixed>> $db the rows the event changed (see Changes)
     */
    public static function record(
        string $name,
        array $object,
        string $summary,
        array $details = [],
        ?array $actor = null,
        array $db = []
    ): void {
        if (!Store::paired()) {
            return;
        }
        try {
            Outbox::add(self::event($name, $object, $summary, $details, $actor, $db));
            self::$recorded = true;
        } catch (\Throwable $e) {
            // Recording must never break the site's own work.
            if (defined('WP_DEBUG') && WP_DEBUG) {
                error_log('sitevault connector: could not record ' . $name . ': ' . $e->getMessage());
            }
        }
    }

    /**
     * Builds an EVENT (without count).
     *
     * @param array{type: string, id: int|string, name?: string} $object
     * @param array<string, mixed> $details
     * @param array<string, mixed>|null $actor
     * @param list<array<string, mixed>> $db
     * @return array<string, mixed>
     */
    public static function event(
        string $name,
        array $object,
        string $summary,
        array $details,
        ?array $actor,
        array $db = []
    ): array {
        $e = [
            'uuid' => wp_generate_uuid4(),
            'name' => $name,
            'time' => round(microtime(true), 3),
            'actor' => $actor ?? self::actor(),
            'object' => [
                'type' => (string) $object['type'],
                'id' => (string) $object['id'],
                'name' => self::line((string) ($object['name'] ?? ''), 200),
            ],
            'summary' => self::line($summary, self::MAX_SUMMARY),
            'details' => self::details($details),
        ];
        $db = Changes::merge($db, []);
        if ($db !== []) {
            $e['db'] = $db;
        }
        return $e;
    }

    /**
     * Who is acting: a user (the one given, else the current one), else
     * WP-CLI, cron or WordPress itself.
     *
     * @return array<string, mixed>
     */
    public static function actor(?\WP_User $user = null): array
    {
        if ($user === null && function_exists('get_current_user_id') && get_current_user_id() > 0) {
            $user = get_userdata(get_current_user_id()) ?: null;
        }
        if ($user instanceof \WP_User && $user->ID > 0) {
            $roles = array_values((array) $user->roles);
            return [
                'kind' => 'user',
                'id' => (int) $user->ID,
                'name' => (string) $user->user_login,
                'role' => (string) ($roles[0] ?? ''),
            ];
        }
        if (defined('WP_CLI') && WP_CLI) {
            return ['kind' => 'wp-cli', 'name' => 'WP-CLI'];
        }
        if (function_exists('wp_doing_cron') && wp_doing_cron()) {
            return ['kind' => 'cron', 'name' => 'cron'];
        }
        return ['kind' => 'wordpress', 'name' => 'WordPress'];
    }

    /** Records (or updates) the one event that says the outbox dropped events. */
    public static function recordDropped(int $sinceLastBatch, int $total): void
    {
        self::record(
            Outbox::DROPPED_EVENT,
            ['type' => 'sitevault', 'id' => 'outbox', 'name' => 'outbox'],
            sprintf('%d events were dropped because the outbox was full; a full backup was requested', $sinceLastBatch),
            ['dropped' => $sinceLastBatch, 'dropped_total' => $total, 'max_rows' => Outbox::maxRows(),
                'max_bytes' => Outbox::maxBytes()],
            ['kind' => 'wordpress', 'name' => 'WordPress']
        );
    }

    /**
     * JSON as the outbox stores it and the batch sends it.
     *
     * @param mixed $value
     */
    public static function encode($value): string
    {
        $json = wp_json_encode($value, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_PRESERVE_ZERO_FRACTION);
        return is_string($json) ? $json : '{}';
    }

    /** Plain text on one line, at most $max characters. */
    public static function line(string $s, int $max): string
    {
        $s = html_entity_decode(wp_strip_all_tags($s), ENT_QUOTES, 'UTF-8');
        $s = trim((string) preg_replace('/\s+/u', ' ', $s));
        if (mb_strlen($s) > $max) {
            $s = mb_substr($s, 0, $max - 1) . '…';
        }
        return $s;
    }

    /**
     * Keeps details within MAX_DETAILS: long strings are cut first, then
     * the details are replaced by their keys.
     *
     * @param array<string, mixed> $details
     * @return array<string, mixed>|\stdClass
     */
    private static function details(array $details)
    {
        if ($details === []) {
            return new \stdClass();
        }
        if (strlen(self::encode($details)) <= self::MAX_DETAILS) {
            return $details;
        }
        array_walk_recursive($details, static function (&$v): void {
            if (is_string($v) && strlen($v) > 256) {
                $v = mb_substr($v, 0, 256) . '…'; // WordPress polyfills mb_substr
            }
        });
        if (strlen(self::encode($details)) <= self::MAX_DETAILS) {
            return $details + ['truncated' => true];
        }
        return ['truncated' => true, 'keys' => array_slice(array_map('strval', array_keys($details)), 0, 50)];
    }
}
