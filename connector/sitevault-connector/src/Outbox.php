<?php

namespace Sitevault\Connector;

/**
 * The outbox: events waiting to be sent, in the plugin's own table
 * {prefix}sitevault_outbox (never wp_options). It is bounded by rows
 * (SITEVAULT_OUTBOX_MAX_ROWS, default 10,000) and bytes
 * (SITEVAULT_OUTBOX_MAX_BYTES, default 5 MB); at the bound it drops the
 * oldest events and keeps one visible sitevault__events_dropped event.
 * Repeats (one name and object, by one actor, within COALESCE_SECONDS)
 * become one event with a count. Rows leave the table only when the service has
 * acknowledged them, or when they are dropped at the bound.
 */
final class Outbox
{
    /** Schema version, kept in the option Store::DB_VERSION. */
    public const SCHEMA = '1';

    /** Repeats of one name and object within this many seconds are coalesced. */
    public const COALESCE_SECONDS = 60;

    /** The event recorded when the bound drops events. */
    public const DROPPED_EVENT = 'sitevault__events_dropped';

    /** At the bound, the oldest events are dropped until the outbox is at this share of it. */
    public const DROP_TO = 0.9;

    /** A request checks the bound on its first event and at least every CHECK_EVERY events. */
    public const CHECK_EVERY = 20;

    private static bool $ready = false;

    /** @var array{rows: int, bytes: int}|null the outbox at this request's last check */
    private static ?array $known = null;

    private static int $addedRows = 0;
    private static int $addedBytes = 0;
    private static int $sinceCheck = 0;

    /** The table's name, with the site's prefix. */
    public static function table(): string
    {
        global $wpdb;
        return $wpdb->prefix . 'sitevault_outbox';
    }

    /** The row bound. */
    public static function maxRows(): int
    {
        return defined('SITEVAULT_OUTBOX_MAX_ROWS') ? max(10, (int) SITEVAULT_OUTBOX_MAX_ROWS) : 10000;
    }

    /** The byte bound (sum of the events' JSON sizes). */
    public static function maxBytes(): int
    {
        return defined('SITEVAULT_OUTBOX_MAX_BYTES') ? max(65536, (int) SITEVAULT_OUTBOX_MAX_BYTES) : 5 * 1024 * 1024;
    }

    /** Creates (or upgrades) the table with dbDelta. */
    public static function createTable(): void
    {
        global $wpdb;
        require_once ABSPATH . 'wp-admin/includes/upgrade.php';
        $table = self::table();
        $charset = $wpdb->get_charset_collate();
        dbDelta("CREATE TABLE {$table} (
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
) {$charset};");
        update_option(Store::DB_VERSION, self::SCHEMA, false);
        self::$ready = true;
    }

    /** Creates the table on first use when it is missing (an mu-plugin is never activated). */
    public static function ensureTable(): void
    {
        if (self::$ready) {
            return;
        }
        if (get_option(Store::DB_VERSION) !== self::SCHEMA) {
            self::createTable();
        }
        self::$ready = true;
    }

    /** Whether the table exists. */
    public static function tableExists(): bool
    {
        global $wpdb;
        $t = self::table();
        return $wpdb->get_var($wpdb->prepare('SHOW TABLES LIKE %s', $wpdb->esc_like($t))) === $t;
    }

    /** Drops the table (uninstall). */
    public static function dropTable(): void
    {
        global $wpdb;
        $wpdb->query('DROP TABLE IF EXISTS ' . self::table());
        self::$ready = false;
    }

    /**
     * Adds an event, or counts it into the unsent event with the same name
     * and object recorded within COALESCE_SECONDS, then keeps the bound.
     *
     * @param array<string, mixed> $event the protocol's EVENT without count
     */
    public static function add(array $event): void
    {
        self::ensureTable();
        $object = is_array($event['object'] ?? null) ? $event['object'] : [];
        // One name and object by one actor: saves by two people stay two events.
        $actor = is_array($event['actor'] ?? null) ? $event['actor'] : [];
        $key = sha1(implode('|', [
            $event['name'],
            $object['type'] ?? '',
            $object['id'] ?? '',
            $actor['kind'] ?? '',
            $actor['id'] ?? '',
        ]));
        $window = $event['name'] === self::DROPPED_EVENT ? PHP_INT_MAX : self::COALESCE_SECONDS;
        if (self::coalesce($event, $key, $window)) {
            // A repeat replaced its row: the outbox did not grow by a row,
            // and a payload is at most a few KB, so the bound (a COUNT and
            // a SUM over the table) is not checked on a repeat. Most of a
            // busy site's events are repeats (one post saved again and
            // again), so this keeps recording to two small queries.
            return;
        }
        self::$addedBytes += self::insert($event, $key, 1);
        self::$addedRows++;
        if ($event['name'] !== self::DROPPED_EVENT && self::mayBeOverBound()) {
            self::keepBound();
        }
    }

    /**
     * Whether the bound must be checked (a COUNT and a SUM over the table)
     * after a new row: on a request's first new row, every CHECK_EVERY events (other requests
     * add too), and whenever what this request added may have reached it.
     */
    private static function mayBeOverBound(): bool
    {
        self::$sinceCheck++;
        return self::$known === null
            || self::$sinceCheck >= self::CHECK_EVERY
            || self::$known['rows'] + self::$addedRows > self::maxRows()
            || self::$known['bytes'] + self::$addedBytes > self::maxBytes();
    }

    /**
     * @param array<string, mixed> $event
     */
    private static function coalesce(array $event, string $key, int $window): bool
    {
        global $wpdb;
        $t = self::table();
        $row = $wpdb->get_row($wpdb->prepare(
            "SELECT id, count, payload FROM {$t} WHERE ckey = %s AND claimed = 0 AND created >= %f
             ORDER BY id DESC LIMIT 1",
            $key,
            (float) $event['time'] - $window
        ));
        if (!$row) {
            return false;
        }
        $old = json_decode($row->payload, true);
        if (!is_array($old)) {
            return false;
        }
        // The event keeps its uuid; it now describes the latest occurrence
        // and remembers when the first one happened.
        $event['uuid'] = $old['uuid'];
        $first = $old['details']['first_time'] ?? $old['time'];
        $event['details'] = ['first_time' => $first] + (is_array($event['details']) ? $event['details'] : []);
        // The rows every occurrence changed (each save of a post may add meta).
        $db = Changes::merge($old['db'] ?? [], $event['db'] ?? []);
        unset($event['db']);
        if ($db !== []) {
            $event['db'] = $db;
        }
        $payload = Recorder::encode($event);
        $n = $wpdb->query($wpdb->prepare(
            "UPDATE {$t} SET count = count + 1, created = %f, payload = %s, bytes = %d WHERE id = %d AND claimed = 0",
            (float) $event['time'],
            $payload,
            strlen($payload),
            (int) $row->id
        ));
        return $n === 1;
    }

    /**
     * @param array<string, mixed> $event
     */
    private static function insert(array $event, string $key, int $count): int
    {
        global $wpdb;
        $payload = Recorder::encode($event);
        $row = [
            'uuid' => $event['uuid'],
            'name' => $event['name'],
            'ckey' => $key,
            'created' => (float) $event['time'],
            'count' => $count,
            'bytes' => strlen($payload),
            'payload' => $payload,
        ];
        $formats = ['%s', '%s', '%s', '%f', '%d', '%d', '%s'];
        if ($wpdb->insert(self::table(), $row, $formats) === false && !self::tableExists()) {
            // The table went missing (dropped by hand, a restored database): make it again.
            self::createTable();
            $wpdb->insert(self::table(), $row, $formats);
        }
        return strlen($payload);
    }

    /**
     * When the table is over a bound, drops the oldest events until it is
     * at DROP_TO of both (so that the next events do not each drop one),
     * counts them into the one sitevault__events_dropped event and the
     * state, and asks for a full backup with the next batch.
     */
    private static function keepBound(): void
    {
        global $wpdb;
        $t = self::table();
        $stats = self::stats();
        self::$known = $stats;
        self::$addedRows = 0;
        self::$addedBytes = 0;
        self::$sinceCheck = 0;
        $maxRows = self::maxRows();
        $maxBytes = self::maxBytes();
        if ($stats['rows'] <= $maxRows && $stats['bytes'] <= $maxBytes) {
            return;
        }
        self::$known = null; // check again after the drop
        // Leave room for the drop event itself.
        $excessRows = $stats['rows'] - (int) floor($maxRows * self::DROP_TO) + 1;
        $excessBytes = $stats['bytes'] - (int) floor($maxBytes * self::DROP_TO) + 2048;
        $dropped = 0;
        $lastId = 0;
        $freedRows = 0;
        $freedBytes = 0;
        while ($freedRows < $excessRows || $freedBytes < $excessBytes) {
            $rows = $wpdb->get_results($wpdb->prepare(
                "SELECT id, count, bytes FROM {$t} WHERE id > %d AND name <> %s AND claimed = 0 ORDER BY id LIMIT 500",
                $lastId,
                self::DROPPED_EVENT
            ));
            if (!$rows) {
                break;
            }
            foreach ($rows as $r) {
                $lastId = (int) $r->id;
                $freedRows++;
                $freedBytes += (int) $r->bytes;
                $dropped += (int) $r->count;
                if ($freedRows >= $excessRows && $freedBytes >= $excessBytes) {
                    break;
                }
            }
        }
        if ($lastId === 0) {
            return;
        }
        $wpdb->query($wpdb->prepare(
            "DELETE FROM {$t} WHERE id <= %d AND name <> %s AND claimed = 0",
            $lastId,
            self::DROPPED_EVENT
        ));
        $state = Store::updateState(static function (array $s) use ($dropped): array {
            $s['dropped'] += $dropped;
            $s['dropped_total'] += $dropped;
            $s['full_backup'] = true;
            return $s;
        });
        Recorder::recordDropped((int) $state['dropped'], (int) $state['dropped_total']);
    }

    /**
     * Rows and bytes in the outbox.
     *
     * @return array{rows: int, bytes: int}
     */
    public static function stats(): array
    {
        global $wpdb;
        self::ensureTable();
        $r = $wpdb->get_row('SELECT COUNT(*) AS n, COALESCE(SUM(bytes), 0) AS b FROM ' . self::table());
        return ['rows' => $r ? (int) $r->n : 0, 'bytes' => $r ? (int) $r->b : 0];
    }

    /**
     * Claims the oldest unsent events for one batch: at most $maxEvents and
     * $maxBytes of event JSON. Claimed rows are not coalesced into, so a
     * count cannot change while its batch is in flight.
     *
     * @return array{ids: int[], events: array<int, array<string, mixed>>, bytes: int}
     */
    public static function claim(int $maxEvents, int $maxBytes): array
    {
        global $wpdb;
        self::ensureTable();
        $t = self::table();
        $rows = $wpdb->get_results($wpdb->prepare(
            "SELECT id, count, bytes, payload FROM {$t} WHERE claimed = 0 ORDER BY id LIMIT %d",
            $maxEvents
        ));
        $ids = [];
        $events = [];
        $bytes = 0;
        foreach ((array) $rows as $r) {
            $size = (int) $r->bytes + 16;
            if ($ids && $bytes + $size > $maxBytes) {
                break;
            }
            $e = json_decode($r->payload, true);
            $ids[] = (int) $r->id;
            if (!is_array($e)) {
                continue;
            }
            if (($e['details'] ?? []) === []) {
                $e['details'] = new \stdClass(); // {} stays an object
            }
            $e['count'] = (int) $r->count;
            $events[] = $e;
            $bytes += $size;
        }
        if ($ids) {
            $wpdb->query("UPDATE {$t} SET claimed = 1 WHERE id IN (" . implode(',', $ids) . ')');
        }
        return ['ids' => $ids, 'events' => $events, 'bytes' => $bytes];
    }

    /**
     * Returns claimed rows to the queue (the batch was not accepted).
     *
     * @param int[] $ids
     */
    public static function release(array $ids): void
    {
        global $wpdb;
        if ($ids) {
            $ids = array_map('intval', $ids);
            $wpdb->query('UPDATE ' . self::table() . ' SET claimed = 0 WHERE id IN (' . implode(',', $ids) . ')');
        }
    }

    /** Releases every claim (a sender that died left its rows claimed; the lock says none is running). */
    public static function releaseAll(): void
    {
        global $wpdb;
        self::ensureTable();
        $wpdb->query('UPDATE ' . self::table() . ' SET claimed = 0 WHERE claimed = 1');
    }

    /**
     * Deletes rows (the service acknowledged them, or refused them for good).
     *
     * @param int[] $ids
     */
    public static function delete(array $ids): void
    {
        global $wpdb;
        if ($ids) {
            $ids = array_map('intval', $ids);
            $wpdb->query('DELETE FROM ' . self::table() . ' WHERE id IN (' . implode(',', $ids) . ')');
        }
    }

    /** Empties the outbox (unpairing). */
    public static function clear(): void
    {
        global $wpdb;
        self::ensureTable();
        $wpdb->query('DELETE FROM ' . self::table());
    }
}
