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
 *
 * A request keeps its events in memory, repeats coalesced there, and writes
 * them at shutdown (flush(), which also runs after a fatal error: PHP still
 * calls WordPress's shutdown hook), or as soon as BUFFER_MAX of them are
 * waiting (an import). A flush coalesces each event into its row from an
 * earlier request with one UPDATE (the row's first time, uuid and the rows
 * its events changed stay in columns, so nothing need be read first) and
 * inserts the rest with one multi-row INSERT: a change request costs two
 * small queries, the pairing's option and the UPDATE (and an INSERT the
 * first time an object changes).
 */
final class Outbox
{
    /**
     * Schema version, kept in the option Store::DB_VERSION. 2: the columns
     * first_time and db (they were in the payload in 1).
     */
    public const SCHEMA = '2';

    /** Repeats of one name and object within this many seconds are coalesced. */
    public const COALESCE_SECONDS = 60;

    /** The event recorded when the bound drops events. */
    public const DROPPED_EVENT = 'sitevault__events_dropped';

    /** At the bound, the oldest events are dropped until the outbox is at this share of it. */
    public const DROP_TO = 0.9;

    /**
     * The bound (a COUNT and a SUM over the table) is checked after a flush
     * that inserted this many rows, and otherwise at random, on average once
     * every this many new rows of the whole site.
     */
    public const CHECK_EVERY = 20;

    /** A request writes its events out once this many are waiting in memory. */
    public const BUFFER_MAX = 200;

    /**
     * A row's db column keeps at most this many bytes of change lists; a
     * further different list is left out (the backup then finds its rows by
     * checksums, only more slowly).
     */
    public const MAX_DB_BYTES = 16384;

    /** The shutdown hook's priority: before the sender (1000) and most other shutdown work. */
    public const FLUSH_PRIORITY = 1;

    /** Rows in one INSERT are cut at about this many bytes (max_allowed_packet is at least 1 MB). */
    private const INSERT_BYTES = 524288;

    private static bool $ready = false;

    /**
     * This request's events, by coalescing key: the latest event (without
     * uuid and db), its uuid, the first and latest time, the count, the merged db.
     *
     * @var array<string, array{event: array<string, mixed>, uuid: string, name: string, first: float,
     *     last: float, count: int, db: list<array<string, mixed>>}>
     */
    private static array $buffer = [];

    /** Whether a flush is running (an event it records, the drop event, waits for its loop). */
    private static bool $flushing = false;

    /** Whether the shutdown flush ran: later events (other shutdown hooks, the sender's) are written at once. */
    private static bool $shutDown = false;

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

    /**
     * Creates (or upgrades) the table with dbDelta, rewrites rows of an
     * older schema, and records the schema version (autoloaded: the check
     * on every load costs no query).
     */
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
  first_time double NOT NULL DEFAULT 0,
  created double NOT NULL,
  count int(10) unsigned NOT NULL DEFAULT 1,
  claimed tinyint(1) NOT NULL DEFAULT 0,
  bytes int(10) unsigned NOT NULL,
  payload longtext NOT NULL,
  db text NULL,
  PRIMARY KEY  (id),
  KEY ckey (ckey,created)
) {$charset};");
        self::upgradeRows();
        update_option(Store::DB_VERSION, self::SCHEMA, true);
        self::$ready = true;
    }

    /**
     * Creates or upgrades the table when its schema version is not this
     * one's: on admin, cron and WP-CLI loads (an update of the plugin
     * replaces its files without activating it) and on first use (an
     * mu-plugin is never activated).
     */
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

    /**
     * Rewrites the rows of schema 1 in place: their first time and the rows
     * they changed move from the payload to the columns first_time and db
     * (first_time 0 marks such a row; claim() reads one either way, so a
     * sender that claims it first still sends it whole).
     */
    private static function upgradeRows(): void
    {
        global $wpdb;
        $t = self::table();
        $lastId = 0;
        do {
            $rows = $wpdb->get_results($wpdb->prepare(
                "SELECT id, created, payload FROM {$t} WHERE first_time = 0 AND id > %d ORDER BY id LIMIT 500",
                $lastId
            ));
            foreach ((array) $rows as $r) {
                $lastId = (int) $r->id;
                $e = json_decode((string) $r->payload, true);
                if (!is_array($e)) {
                    continue;
                }
                $first = (float) ($e['details']['first_time'] ?? $e['time'] ?? $r->created);
                $db = self::dbLine(Changes::merge($e['db'] ?? [], []));
                unset($e['db'], $e['details']['first_time']);
                $payload = self::encode($e);
                $wpdb->query($wpdb->prepare(
                    "UPDATE {$t} SET first_time = %f, db = %s, payload = %s, bytes = %d
                     WHERE id = %d AND first_time = 0",
                    $first > 0 ? $first : (float) $r->created,
                    $db,
                    $payload,
                    strlen($payload) + strlen($db),
                    $lastId
                ));
            }
        } while ($rows && count($rows) === 500);
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
        self::$buffer = [];
        $wpdb->query('DROP TABLE IF EXISTS ' . self::table());
        self::$ready = false;
    }

    /**
     * Adds an event to this request's buffer, counted into the one with the
     * same name and object by the same actor; flush() writes it out.
     *
     * @param array<string, mixed> $event the protocol's EVENT without count
     */
    public static function add(array $event): void
    {
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
        $time = (float) $event['time'];
        $db = Changes::merge($event['db'] ?? [], []);
        $uuid = (string) $event['uuid'];
        unset($event['db'], $event['uuid']);
        $b = self::$buffer[$key] ?? null;
        if ($b !== null && $event['name'] !== self::DROPPED_EVENT && $time - $b['last'] > self::COALESCE_SECONDS) {
            // A long request (an import) saw this object again after the window: a new event.
            self::flush();
            $b = self::$buffer[$key] ?? null;
        }
        if ($b === null) {
            self::$buffer[$key] = ['event' => $event, 'uuid' => $uuid, 'name' => (string) $event['name'],
                'first' => $time, 'last' => $time, 'count' => 1, 'db' => $db];
        } else {
            // The event keeps its first uuid and time; it now describes the latest occurrence.
            self::$buffer[$key] = ['event' => $event, 'last' => $time, 'count' => $b['count'] + 1,
                'db' => Changes::merge($b['db'], $db)] + $b;
        }
        if (!self::$flushing && (self::$shutDown || count(self::$buffer) >= self::BUFFER_MAX)) {
            self::flush();
        }
    }

    /** Events waiting in this request's memory (tests and the settings screen). */
    public static function buffered(): int
    {
        return count(self::$buffer);
    }

    /** The shutdown hook: writes what the request recorded, and anything recorded after it at once. */
    public static function onShutdown(): void
    {
        self::$shutDown = true;
        try {
            self::flush();
        } catch (\Throwable $e) {
            // Recording must never break the site's own work (nor the shutdown hooks after this one).
            if (defined('WP_DEBUG') && WP_DEBUG) {
                error_log('sitevault connector: could not write the outbox: ' . $e->getMessage());
            }
        }
    }

    /**
     * Writes this request's events: each coalesced into its unsent row
     * from within COALESCE_SECONDS by one UPDATE, the others inserted by
     * one multi-row INSERT; then keeps the bound. Events recorded while it
     * runs (the drop event) are written by the same call.
     */
    public static function flush(): void
    {
        if (self::$flushing || self::$buffer === []) {
            return;
        }
        // Unpaired, uninstalled or unpaired in this request: nothing is kept (the pairing's option
        // is cached since the events were recorded, so this costs no query).
        if (!Store::paired()) {
            self::$buffer = [];
            return;
        }
        self::$flushing = true;
        try {
            self::ensureTable();
            while (self::$buffer !== []) {
                $entries = self::$buffer;
                self::$buffer = [];
                $new = [];
                foreach ($entries as $key => $b) {
                    if (!self::coalesce((string) $key, $b)) {
                        $new[$key] = $b;
                    }
                }
                [$rows, $bytes] = self::insert($new);
                if ($rows > 0 && self::mayBeOverBound($rows, $bytes, $new)) {
                    self::keepBound();
                }
            }
        } finally {
            self::$flushing = false;
        }
    }

    /**
     * Counts a buffered event into the newest unsent row with its key whose
     * latest occurrence is within COALESCE_SECONDS of the event's first in
     * this request: one UPDATE, which keeps the row's uuid and first time,
     * takes the latest payload and adds the change list to db unless the
     * row has it already. False when there is no such row (or the sender
     * claimed it meanwhile): the event is then inserted.
     *
     * @param array{event: array<string, mixed>, uuid: string, name: string, first: float,
     *     last: float, count: int, db: list<array<string, mixed>>} $b
     */
    private static function coalesce(string $key, array $b): bool
    {
        global $wpdb;
        $t = self::table();
        $payload = self::encode($b['event']);
        $line = $b['db'] === [] ? '' : self::encode($b['db']);
        $since = $b['name'] === self::DROPPED_EVENT ? 0.0 : $b['first'] - self::COALESCE_SECONDS;
        // db is "\n" followed by one change list a line; a list it holds already is not added again.
        // ORDER BY id DESC LIMIT 1: a released batch may leave two unsent rows with one key.
        $n = $wpdb->query($wpdb->prepare(
            "UPDATE {$t} SET count = count + %d, created = %f, payload = %s,
               db = CASE WHEN %s = '' OR LOCATE(BINARY %s, IFNULL(db, '')) > 0
                           OR LENGTH(IFNULL(db, '')) + LENGTH(%s) > %d THEN db
                         ELSE CONCAT(IF(IFNULL(db, '') = '', '\n', db), %s, '\n') END,
               bytes = %d + LENGTH(IFNULL(db, ''))
             WHERE ckey = %s AND claimed = 0 AND created >= %f
             ORDER BY id DESC LIMIT 1",
            $b['count'],
            $b['last'],
            $payload,
            $line,
            "\n" . $line . "\n",
            $line,
            self::MAX_DB_BYTES,
            $line,
            strlen($payload),
            $key,
            $since
        ));
        return $n === 1;
    }

    /**
     * Inserts buffered events as new rows, in as few INSERTs as their size allows.
     *
     * @param array<string, array{event: array<string, mixed>, uuid: string, name: string, first: float,
     *     last: float, count: int, db: list<array<string, mixed>>}> $entries
     * @return array{0: int, 1: int} rows and bytes inserted
     */
    private static function insert(array $entries): array
    {
        $rows = 0;
        $bytes = 0;
        $chunk = [];
        $chunkBytes = 0;
        foreach ($entries as $key => $b) {
            $payload = self::encode($b['event']);
            $db = self::dbLine($b['db']);
            $size = strlen($payload) + strlen($db);
            $chunk[] = [$b['uuid'], $b['name'], (string) $key, $b['first'], $b['last'], $b['count'], $size,
                $payload, $db];
            $chunkBytes += $size;
            $rows++;
            $bytes += $size;
            if ($chunkBytes >= self::INSERT_BYTES) {
                self::insertRows($chunk);
                $chunk = [];
                $chunkBytes = 0;
            }
        }
        if ($chunk !== []) {
            self::insertRows($chunk);
        }
        return [$rows, $bytes];
    }

    /**
     * @param list<array{0: string, 1: string, 2: string, 3: float, 4: float, 5: int, 6: int, 7: string,
     *     8: string}> $rows
     */
    private static function insertRows(array $rows): void
    {
        global $wpdb;
        $values = [];
        $args = [];
        foreach ($rows as $r) {
            $values[] = '(%s, %s, %s, %f, %f, %d, %d, %s, %s)';
            array_push($args, ...$r);
        }
        $sql = $wpdb->prepare(
            'INSERT INTO ' . self::table() . ' (uuid, name, ckey, first_time, created, count, bytes, payload, db)
             VALUES ' . implode(', ', $values),
            ...$args
        );
        if ($wpdb->query($sql) === false && !self::tableExists()) {
            // The table went missing (dropped by hand, a restored database): make it again.
            self::createTable();
            $wpdb->query($sql);
        }
    }

    /**
     * Whether to check the bound after a flush inserted $rows rows: when
     * they are many or large, else at random once in CHECK_EVERY new rows
     * (other requests add too; the outbox may pass its bound by about that
     * many rows between checks).
     *
     * @param array<string, array<string, mixed>> $new
     */
    private static function mayBeOverBound(int $rows, int $bytes, array $new): bool
    {
        if (count($new) === 1 && ($new[array_key_first($new)]['name'] ?? '') === self::DROPPED_EVENT) {
            return false;
        }
        return $rows >= self::CHECK_EVERY
            || $bytes * self::CHECK_EVERY >= self::maxBytes()
            || random_int(1, self::CHECK_EVERY) <= $rows;
    }

    /**
     * A change list as the db column keeps it: "\n" + JSON + "\n" ('' for none).
     *
     * @param list<array<string, mixed>> $db
     */
    private static function dbLine(array $db): string
    {
        return $db === [] ? '' : "\n" . self::encode($db) . "\n";
    }

    /**
     * JSON as the outbox stores it: ASCII only (\u escapes), so that wpdb
     * need not look up the table's charset before a query (a SHOW FULL
     * COLUMNS a request).
     *
     * @param mixed $value
     */
    private static function encode($value): string
    {
        $json = wp_json_encode($value, JSON_UNESCAPED_SLASHES | JSON_PRESERVE_ZERO_FRACTION);
        return is_string($json) ? $json : '{}';
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
        $maxRows = self::maxRows();
        $maxBytes = self::maxBytes();
        if ($stats['rows'] <= $maxRows && $stats['bytes'] <= $maxBytes) {
            return;
        }
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
            "SELECT id, uuid, first_time, count, bytes, payload, db FROM {$t} WHERE claimed = 0 ORDER BY id LIMIT %d",
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
            $events[] = self::event($e, $r);
            $bytes += $size;
        }
        if ($ids) {
            $wpdb->query("UPDATE {$t} SET claimed = 1 WHERE id IN (" . implode(',', $ids) . ')');
        }
        return ['ids' => $ids, 'events' => $events, 'bytes' => $bytes];
    }

    /**
     * The protocol's EVENT from a row: its uuid and count, the first time
     * when repeats were coalesced, and the rows all of them changed. A row
     * of schema 1 not yet rewritten (first_time 0) keeps these in its payload.
     *
     * @param array<string, mixed> $e the payload
     * @return array<string, mixed>
     */
    private static function event(array $e, object $r): array
    {
        $count = (int) $r->count;
        $details = is_array($e['details'] ?? null) ? $e['details'] : [];
        $first = (float) $r->first_time > 0 ? (float) $r->first_time : ($details['first_time'] ?? null);
        unset($details['first_time']);
        if ($count > 1 && $first !== null) {
            $details = ['first_time' => round((float) $first, 3)] + $details;
        }
        $db = Changes::merge($e['db'] ?? [], []);
        foreach (explode("\n", (string) $r->db) as $line) {
            if ($line !== '') {
                $db = Changes::merge($db, json_decode($line, true));
            }
        }
        unset($e['db']);
        $e = ['uuid' => (string) $r->uuid] + $e;
        $e['details'] = $details === [] ? new \stdClass() : $details; // {} stays an object
        $e['count'] = $count;
        if ($db !== []) {
            $e['db'] = $db;
        }
        return $e;
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
        self::$buffer = [];
        self::ensureTable();
        $wpdb->query('DELETE FROM ' . self::table());
    }
}
