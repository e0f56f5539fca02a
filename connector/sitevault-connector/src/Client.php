<?php

namespace Sitevault\Connector;

/**
 * Talks to the service as docs/connector-protocol.md says: pairing
 * (unsigned), and signed requests (events, key rotation).
 */
final class Client
{
    /** Seconds an HTTP request to the service may take (it runs after the response or in cron). */
    public const TIMEOUT = 10;

    /** Days between key rotations. */
    public const ROTATE_DAYS = 30;

    /**
     * Decodes a pairing code: "svp1." + base64url (no padding) of
     * {"u": service URL, "s": site name, "c": secret}.
     *
     * @return array{u: string, s: string, c: string}|\WP_Error
     */
    public static function decodeCode(string $code)
    {
        $code = trim($code);
        if (strncmp($code, 'svp1.', 5) !== 0) {
            return new \WP_Error('sitevault_code', 'This is not a sitevault pairing code (it starts with "svp1."). '
                . 'Make one with `sitevault site connect NAME` and paste it whole.');
        }
        $raw = base64_decode(strtr(substr($code, 5), '-_', '+/'), true);
        $data = is_string($raw) ? json_decode($raw, true) : null;
        $fields = is_array($data)
            ? array_filter([$data['u'] ?? null, $data['s'] ?? null, $data['c'] ?? null], 'is_string')
            : [];
        if (count($fields) !== 3) {
            return new \WP_Error(
                'sitevault_code',
                'The pairing code is damaged (it does not decode). Copy it again, whole.'
            );
        }
        $url = wp_parse_url($data['u']);
        $scheme = is_array($url) ? strtolower((string) ($url['scheme'] ?? '')) : '';
        $host = is_array($url) ? strtolower(trim((string) ($url['host'] ?? ''), '[]')) : '';
        $loopback = in_array($host, ['localhost', '::1'], true) || strncmp($host, '127.', 4) === 0;
        if (!($scheme === 'https' || ($scheme === 'http' && $loopback))) {
            return new \WP_Error('sitevault_code', sprintf(
                'The pairing code names the service %s, which is neither HTTPS nor on this machine; '
                . 'serve sitevault over HTTPS and make a new code.',
                $data['u']
            ));
        }
        return ['u' => rtrim($data['u'], '/'), 's' => $data['s'], 'c' => $data['c']];
    }

    /**
     * Exchanges a pairing code for the site's signing key and stores the
     * pairing.
     *
     * @return true|\WP_Error
     */
    public static function pair(string $code)
    {
        $d = self::decodeCode($code);
        if (is_wp_error($d)) {
            return $d;
        }
        $body = Recorder::encode([
            'code' => trim($code),
            'site_url' => home_url(),
            'wp_version' => get_bloginfo('version'),
            'plugin_version' => Plugin::VERSION,
        ]);
        $resp = wp_remote_post($d['u'] . '/api/v1/connector/pair', [
            'timeout' => self::TIMEOUT,
            'redirection' => 0,
            'headers' => ['Content-Type' => 'application/json'],
            'body' => $body,
        ]);
        if (is_wp_error($resp)) {
            return new \WP_Error('sitevault_pair', sprintf(
                'Could not reach the sitevault service at %s: %s. Check that it runs and that this site can reach it.',
                $d['u'],
                $resp->get_error_message()
            ));
        }
        $status = (int) wp_remote_retrieve_response_code($resp);
        if ($status === 401) {
            return new \WP_Error('sitevault_pair_refused', 'The service refused the pairing code: it was already used, '
                . 'has expired (codes last one hour) or is unknown. '
                . 'Make a new one with `sitevault site connect NAME`.');
        }
        $a = json_decode((string) wp_remote_retrieve_body($resp), true);
        $key = is_array($a) && is_string($a['key'] ?? null) ? base64_decode($a['key'], true) : false;
        if (
            $status !== 200 || !is_array($a) || !is_string($key) || strlen($key) !== 32 || empty($a['site'])
            || empty($a['key_id']) || empty($a['events_url']) || empty($a['rotate_url'])
        ) {
            return new \WP_Error('sitevault_pair', sprintf(
                'The service at %s answered the pairing with HTTP %d and not the expected keys; '
                . 'check that its version matches this plugin.',
                $d['u'],
                $status
            ));
        }
        Store::saveConnection([
            'site' => (string) $a['site'],
            'key_id' => (string) $a['key_id'],
            'key' => (string) $a['key'],
            'events_url' => (string) $a['events_url'],
            'rotate_url' => (string) $a['rotate_url'],
            'service_url' => $d['u'],
            'paired_at' => time(),
            'rotated_at' => time(),
        ]);
        Store::updateState(static fn (array $s): array => array_merge($s, [
            'attempt' => 0, 'next_attempt' => 0, 'dropped' => 0, 'full_backup' => false, 'last_error' => '',
        ]));
        Outbox::ensureTable();
        Plugin::schedule();
        return true;
    }

    /**
     * Pairs with SITEVAULT_PAIRING_CODE. A code the service refused is not
     * tried again; a service that could not be reached is tried again after
     * five minutes.
     */
    public static function pairFromConstant(string $code): void
    {
        $state = Store::state();
        if ($state['pair_refused'] === sha1($code) || (int) $state['pair_retry'] > time()) {
            return;
        }
        $r = self::pair($code);
        if (is_wp_error($r)) {
            $refused = $r->get_error_code() === 'sitevault_pair_refused' || $r->get_error_code() === 'sitevault_code';
            Store::updateState(static function (array $s) use ($r, $code, $refused): array {
                $s['last_error'] = 'SITEVAULT_PAIRING_CODE: ' . $r->get_error_message();
                if ($refused) {
                    $s['pair_refused'] = sha1($code);
                } else {
                    $s['pair_retry'] = time() + 300;
                }
                return $s;
            });
        }
    }

    /**
     * The protocol's headers for a signed request.
     *
     * @param array<string, mixed> $c the pairing
     * @return array<string, string>
     */
    public static function signedHeaders(array $c, string $method, string $url, string $body): array
    {
        $path = (string) wp_parse_url($url, PHP_URL_PATH);
        $path = $path === '' ? '/' : $path;
        $ts = (string) time();
        $nonce = rtrim(strtr(base64_encode(random_bytes(24)), '+/', '-_'), '=');
        $canonical = strtoupper($method) . "\n" . $path . "\n" . $ts . "\n" . $nonce . "\n" . hash('sha256', $body);
        $key = base64_decode((string) $c['key'], true);
        return [
            'X-Sitevault-Site' => (string) $c['site'],
            'X-Sitevault-Key' => (string) $c['key_id'],
            'X-Sitevault-Timestamp' => $ts,
            'X-Sitevault-Nonce' => $nonce,
            'X-Sitevault-Signature' => hash_hmac('sha256', $canonical, (string) $key),
        ];
    }

    /**
     * Sends a signed POST.
     *
     * @param array<string, mixed> $c the pairing
     * @param array<string, string> $headers more headers
     * @return array<string, mixed>|\WP_Error wp_remote_post's answer
     */
    public static function post(array $c, string $url, string $body, array $headers = [])
    {
        return wp_remote_post($url, [
            'timeout' => self::TIMEOUT,
            'redirection' => 0,
            'headers' => $headers + self::signedHeaders($c, 'POST', $url, $body),
            'body' => $body,
        ]);
    }

    /**
     * Rotates the signing key when the current one is ROTATE_DAYS old: the
     * service answers a new key (the old one stays valid for 24 hours).
     * A failure is tried again an hour later.
     */
    public static function maybeRotate(): void
    {
        $c = Store::connection();
        if ($c === null || (int) ($c['rotated_at'] ?? 0) > time() - self::ROTATE_DAYS * DAY_IN_SECONDS) {
            return;
        }
        if ((int) Store::state()['rotate_retry'] > time()) {
            return;
        }
        $resp = self::post($c, (string) $c['rotate_url'], '');
        $status = is_wp_error($resp) ? 0 : (int) wp_remote_retrieve_response_code($resp);
        $a = $status === 200 ? json_decode((string) wp_remote_retrieve_body($resp), true) : null;
        $key = is_array($a) && is_string($a['key'] ?? null) ? base64_decode($a['key'], true) : false;
        if (!is_array($a) || empty($a['key_id']) || !is_string($key) || strlen($key) !== 32) {
            $why = is_wp_error($resp) ? $resp->get_error_message() : 'HTTP ' . $status;
            Store::updateState(static function (array $s) use ($why): array {
                $s['rotate_retry'] = time() + HOUR_IN_SECONDS;
                $s['last_error'] = 'key rotation failed: ' . $why;
                return $s;
            });
            return;
        }
        $c['key_id'] = (string) $a['key_id'];
        $c['key'] = (string) $a['key'];
        $c['rotated_at'] = time();
        Store::saveConnection($c);
    }
}
