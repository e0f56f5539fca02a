<?php

namespace Sitevault\Connector;

/**
 * The connector's options: the pairing (`sitevault_connector`, as the
 * protocol names it), the sending state, the send lock and the outbox's
 * schema version. Only the schema version is autoloaded (a few bytes, read
 * on every load to upgrade the table after a plugin update); every name
 * starts with "sitevault_connector" so that uninstall.php finds them all.
 */
final class Store
{
    /** The pairing: site, key_id, key, events_url, rotate_url, service_url, paired_at, rotated_at. */
    public const CONNECTION = 'sitevault_connector';

    /** Sending state: backoff, dropped count, full_backup flag, last batch, last error. */
    public const STATE = 'sitevault_connector_state';

    /** The send lock (see acquireLock). */
    public const LOCK = 'sitevault_connector_lock';

    /** The outbox table's schema version (autoloaded). */
    public const DB_VERSION = 'sitevault_connector_db_version';

    /** Every option the plugin may create (uninstall.php deletes these). */
    public const ALL_OPTIONS = [self::CONNECTION, self::STATE, self::LOCK, self::DB_VERSION];

    /** How long a send lock is honoured before another request may break it. */
    private const LOCK_TTL = 300;

    /** @var string|null the value this request wrote into the lock row */
    private static ?string $lockToken = null;

    /**
     * The stored pairing, or null while unpaired.
     *
     * @return array<string, mixed>|null
     */
    public static function connection(): ?array
    {
        $c = get_option(self::CONNECTION);
        if (!is_array($c) || empty($c['site']) || empty($c['key']) || empty($c['events_url'])) {
            return null;
        }
        return $c;
    }

    /** Whether the site is paired with a service. */
    public static function paired(): bool
    {
        return self::connection() !== null;
    }

    /**
     * Saves the pairing.
     *
     * @param array<string, mixed> $connection
     */
    public static function saveConnection(array $connection): void
    {
        if (get_option(self::CONNECTION) === false) {
            add_option(self::CONNECTION, $connection, '', false);
        } else {
            update_option(self::CONNECTION, $connection, false);
        }
    }

    /** Forgets the pairing and the sending state. */
    public static function forget(): void
    {
        delete_option(self::CONNECTION);
        delete_option(self::STATE);
    }

    /**
     * The sending state, read fresh from the database (another request may
     * have changed it since this one started).
     *
     * @return array<string, mixed>
     */
    public static function state(): array
    {
        wp_cache_delete(self::STATE, 'options');
        wp_cache_delete('notoptions', 'options');
        $s = get_option(self::STATE);
        return array_merge(self::defaultState(), is_array($s) ? $s : []);
    }

    /**
     * Applies $change to the fresh state and saves it.
     *
     * @param callable(array<string, mixed>): array<string, mixed> $change
     * @return array<string, mixed> the new state
     */
    public static function updateState(callable $change): array
    {
        $s = $change(self::state());
        if (get_option(self::STATE) === false) {
            add_option(self::STATE, $s, '', false);
        } else {
            update_option(self::STATE, $s, false);
        }
        return $s;
    }

    /**
     * @return array<string, mixed>
     */
    private static function defaultState(): array
    {
        return [
            'attempt' => 0,          // consecutive failed sends
            'next_attempt' => 0,     // unix time before which nothing is sent
            'dropped' => 0,          // events dropped since the last accepted batch
            'dropped_total' => 0,    // events dropped since pairing (shown on the screen)
            'full_backup' => false,  // ask the service for a full backup with the next batch
            'last_sent' => 0,        // unix time of the last accepted batch
            'last_count' => 0,       // events in it
            'last_error' => '',      // why the last attempt failed
            'max_events' => 200,     // lowered after a 413
            'pair_refused' => '',    // sha1 of a SITEVAULT_PAIRING_CODE the service refused
            'pair_retry' => 0,       // unix time before which the constant is not tried again
            'rotate_retry' => 0,     // unix time before which key rotation is not tried again
        ];
    }

    /**
     * Takes the send lock: an atomic INSERT of the lock option (its unique
     * option_name makes a second insert fail), or the takeover of a lock
     * older than LOCK_TTL with a compare-and-swap UPDATE. Returns false when
     * another request holds it.
     */
    public static function acquireLock(): bool
    {
        global $wpdb;
        // "<unix time>:<random>": the time says when the lock was taken.
        $token = time() . ':' . bin2hex(random_bytes(8));
        $got = $wpdb->query($wpdb->prepare(
            "INSERT IGNORE INTO {$wpdb->options} (option_name, option_value, autoload) VALUES (%s, %s, 'no')",
            self::LOCK,
            $token
        ));
        if ($got !== 1) {
            $held = $wpdb->get_var($wpdb->prepare(
                "SELECT option_value FROM {$wpdb->options} WHERE option_name = %s",
                self::LOCK
            ));
            if (!is_string($held) || (int) strtok($held, ':') > time() - self::LOCK_TTL) {
                return false;
            }
            $got = $wpdb->query($wpdb->prepare(
                "UPDATE {$wpdb->options} SET option_value = %s WHERE option_name = %s AND option_value = %s",
                $token,
                self::LOCK,
                $held
            ));
            if ($got !== 1) {
                return false;
            }
        }
        self::$lockToken = $token;
        wp_cache_delete(self::LOCK, 'options');
        return true;
    }

    /** Releases the lock this request holds (and only that one). */
    public static function releaseLock(): void
    {
        global $wpdb;
        if (self::$lockToken === null) {
            return;
        }
        $wpdb->query($wpdb->prepare(
            "DELETE FROM {$wpdb->options} WHERE option_name = %s AND option_value = %s",
            self::LOCK,
            self::$lockToken
        ));
        self::$lockToken = null;
        wp_cache_delete(self::LOCK, 'options');
    }

    /** Removes the lock whoever holds it (deactivation, unpairing). */
    public static function releaseLockAnyway(): void
    {
        delete_option(self::LOCK);
        self::$lockToken = null;
    }
}
