<?php

namespace Sitevault\Connector;

/**
 * Sends the outbox to the service in batches (gzip, at most MAX_EVENTS
 * events and MAX_BYTES of JSON), under a lock so that two requests never
 * send the same batch, and handles the answers as the protocol says.
 * It runs after the response (the shutdown hook, once fastcgi_finish_request
 * has closed the connection) or in WP-Cron, never while a page is served.
 */
final class Sender
{
    /** Events per request (the protocol's limit). */
    public const MAX_EVENTS = 200;

    /** Bytes of JSON per request before gzip (the protocol's limit: 256 KiB). */
    public const MAX_BYTES = 262144;

    /** First backoff after a failure, doubled up to MAX_BACKOFF. */
    public const MIN_BACKOFF = 30;

    /** Longest backoff. */
    public const MAX_BACKOFF = 3600;

    /** Batches one run sends at most (a cron run must end). */
    public const MAX_BATCHES = 20;

    /** The event recorded when the service refuses a batch for good (400). */
    public const REFUSED_EVENT = 'sitevault__batch_refused';

    /**
     * Shutdown: when this request recorded events, sends them once the
     * response is complete. Without fastcgi_finish_request (or LiteSpeed's
     * equivalent) a web request leaves them to WP-Cron, so the visitor never
     * waits; WP-CLI and cron runs send at once.
     */
    public static function onShutdown(): void
    {
        if (!Recorder::$recorded) {
            return;
        }
        $cli = PHP_SAPI === 'cli' || (defined('WP_CLI') && WP_CLI);
        if (!$cli && !wp_doing_cron()) {
            if (function_exists('fastcgi_finish_request')) {
                fastcgi_finish_request();
            } elseif (function_exists('litespeed_finish_request')) {
                litespeed_finish_request();
            } else {
                return;
            }
            ignore_user_abort(true);
        }
        self::run(self::MAX_BATCHES);
    }

    /** The WP-Cron event: sends what is due. */
    public static function fromCron(): void
    {
        self::run(self::MAX_BATCHES);
    }

    /**
     * Sends up to $maxBatches batches unless the backoff says to wait or
     * another request holds the lock. Returns what happened: "unpaired",
     * "waiting", "locked", or the last batch's outcome ("empty", "sent",
     * "refused", "busy", "failed").
     */
    public static function run(int $maxBatches = 1): string
    {
        if (!Store::paired()) {
            return 'unpaired';
        }
        Outbox::flush(); // what this request recorded goes with the batch
        if ((int) Store::state()['next_attempt'] > time()) {
            return 'waiting';
        }
        if (!Store::acquireLock()) {
            return 'locked';
        }
        try {
            // The lock says no other sender runs: claims left behind belong to a sender that died.
            Outbox::releaseAll();
            Client::maybeRotate();
            $outcome = 'empty';
            $sent = false;
            for ($i = 0; $i < $maxBatches; $i++) {
                $outcome = self::sendBatch();
                $sent = $sent || $outcome === 'sent';
                if ($outcome !== 'sent' && $outcome !== 'smaller') {
                    break;
                }
            }
            return $sent && $outcome === 'empty' ? 'sent' : $outcome;
        } finally {
            Store::releaseLock();
        }
    }

    /**
     * Sends one batch and handles the answer.
     */
    private static function sendBatch(): string
    {
        $c = Store::connection();
        if ($c === null) {
            return 'unpaired';
        }
        $state = Store::state();
        $envelope = 256;
        $batch = Outbox::claim(max(1, min(self::MAX_EVENTS, (int) $state['max_events'])), self::MAX_BYTES - $envelope);
        $dropped = (int) $state['dropped'];
        $full = (bool) $state['full_backup'];
        if (!$batch['ids'] && $dropped === 0 && !$full) {
            return 'empty';
        }
        $json = Recorder::encode(['events' => $batch['events'], 'dropped' => $dropped, 'full_backup' => $full]);
        $headers = ['Content-Type' => 'application/json'];
        $body = $json;
        if (function_exists('gzencode')) { // zlib is optional in PHP; gzip is optional in the protocol
            $body = (string) gzencode($json, 6);
            $headers['Content-Encoding'] = 'gzip';
        }
        $resp = Client::post($c, (string) $c['events_url'], $body, $headers);
        $status = is_wp_error($resp) ? 0 : (int) wp_remote_retrieve_response_code($resp);
        $n = count($batch['events']);

        if ($status === 200) {
            Outbox::delete($batch['ids']);
            Store::updateState(static function (array $s) use ($dropped, $full, $n): array {
                $s['dropped'] = max(0, (int) $s['dropped'] - $dropped);
                if ($full && $s['dropped'] === 0) {
                    $s['full_backup'] = false;
                }
                $s['attempt'] = 0;
                $s['next_attempt'] = 0;
                $s['last_sent'] = time();
                $s['last_count'] = $n;
                $s['last_error'] = '';
                $s['max_events'] = min(self::MAX_EVENTS, max(1, (int) $s['max_events']) * 2);
                return $s;
            });
            return 'sent';
        }

        if ($status === 413 && count($batch['ids']) > 1) {
            Outbox::release($batch['ids']);
            Store::updateState(static function (array $s) use ($n): array {
                $s['max_events'] = max(1, intdiv($n, 2));
                return $s;
            });
            return 'smaller';
        }

        if ($status === 400 || $status === 413) {
            // The service will never take this batch: drop it, and say so in the log.
            Outbox::delete($batch['ids']);
            Store::updateState(static function (array $s) use ($status): array {
                $s['attempt'] = 0;
                $s['next_attempt'] = 0;
                $s['last_error'] = sprintf('the service refused a batch (HTTP %d); it was dropped', $status);
                return $s;
            });
            Recorder::record(
                self::REFUSED_EVENT,
                ['type' => 'sitevault', 'id' => 'outbox', 'name' => 'outbox'],
                sprintf('The service refused a batch of %d events (HTTP %d); they were dropped', $n, $status),
                [
                    'status' => $status,
                    'events' => $n,
                    'answer' => substr((string) wp_remote_retrieve_body($resp), 0, 500),
                ],
                ['kind' => 'wordpress', 'name' => 'WordPress']
            );
            return 'refused';
        }

        Outbox::release($batch['ids']);
        $retryAfter = $status === 429 || $status === 503
            ? self::retryAfter((string) wp_remote_retrieve_header($resp, 'retry-after'))
            : 0;
        $why = is_wp_error($resp) ? $resp->get_error_message() : 'HTTP ' . $status;
        if ($status === 401) {
            $why .= ' (the service refused the signature: check the clock, or pair again)';
        }
        Store::updateState(static function (array $s) use ($retryAfter, $why): array {
            if ($retryAfter > 0) {
                $s['next_attempt'] = time() + $retryAfter;
            } else {
                $s['attempt'] = (int) $s['attempt'] + 1;
                $s['next_attempt'] = time() + self::backoff((int) $s['attempt']);
            }
            $s['last_error'] = 'sending failed: ' . $why;
            return $s;
        });
        return $retryAfter > 0 ? 'busy' : 'failed';
    }

    /**
     * Seconds to wait after the $attempt-th failure in a row: 30 s doubling
     * to an hour, plus up to a quarter more at random so that many sites do
     * not retry in step.
     */
    public static function backoff(int $attempt): int
    {
        $base = min(self::MAX_BACKOFF, self::MIN_BACKOFF * (2 ** min(20, max(0, $attempt - 1))));
        return $base + random_int(0, intdiv($base, 4));
    }

    /** Seconds from a Retry-After header (seconds or an HTTP date); 0 when absent or unreadable. */
    public static function retryAfter(string $value): int
    {
        $value = trim($value);
        if ($value === '') {
            return 0;
        }
        if (ctype_digit($value)) {
            $s = (int) $value;
        } else {
            $t = strtotime($value);
            $s = $t === false ? 0 : $t - time();
        }
        return $s > 0 ? min($s, DAY_IN_SECONDS) : 0;
    }
}
