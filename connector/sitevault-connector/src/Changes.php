<?php

namespace Sitevault\Connector;

/**
 * The database change an event describes (the protocol's "db"): the rows
 * it touched, each as a table (with the site's prefix) and the values of
 * its key, or of one column when the keys are not known (a post's meta by
 * post_id, an option by option_name). The service's database backup looks
 * at those rows first; a change missed here (a write that bypassed the
 * hooks) is still found by its checksums, only more slowly. So the lists
 * are kept short: at most MAX_CHANGES changes of at most MAX_VALUES values.
 */
final class Changes
{
    /** The protocol's bound on the changes of one event. */
    public const MAX_CHANGES = 8;

    /** The protocol's bound on the values of one change. */
    public const MAX_VALUES = 100;

    /**
     * A post (page, attachment, product, legacy order): its row, and its
     * meta by post_id (WordPress saves _edit_lock and _edit_last with it).
     *
     * @return list<array<string, mixed>>
     */
    public static function post(int $id): array
    {
        global $wpdb;
        if ($id <= 0) {
            return [];
        }
        return [
            self::change($wpdb->posts, '', [$id]),
            self::change($wpdb->postmeta, 'post_id', [$id]),
        ];
    }

    /**
     * A comment: its row, its meta, and its post's row (comment_count).
     *
     * @return list<array<string, mixed>>
     */
    public static function comment(int $id, int $postId): array
    {
        global $wpdb;
        if ($id <= 0) {
            return [];
        }
        $c = [
            self::change($wpdb->comments, '', [$id]),
            self::change($wpdb->commentmeta, 'comment_id', [$id]),
        ];
        if ($postId > 0) {
            $c[] = self::change($wpdb->posts, '', [$postId]);
        }
        return $c;
    }

    /**
     * An option, by name (its option_id is not at hand in the hook).
     *
     * @return list<array<string, mixed>>
     */
    public static function option(string $name): array
    {
        global $wpdb;
        return $name === '' ? [] : [self::change($wpdb->options, 'option_name', [$name])];
    }

    /**
     * A WooCommerce order: in its own tables (HPOS) or as a post, and its
     * items.
     *
     * @return list<array<string, mixed>>
     */
    public static function order(int $id): array
    {
        global $wpdb;
        if ($id <= 0) {
            return [];
        }
        $p = $wpdb->prefix;
        return [
            self::change($p . 'wc_orders', '', [$id]),
            self::change($p . 'wc_orders_meta', 'order_id', [$id]),
            self::change($p . 'wc_order_addresses', 'order_id', [$id]),
            self::change($p . 'wc_order_operational_data', 'order_id', [$id]),
            self::change($p . 'woocommerce_order_items', 'order_id', [$id]),
            self::change($wpdb->posts, '', [$id]),
            self::change($wpdb->postmeta, 'post_id', [$id]),
        ];
    }

    /**
     * The changes of two occurrences of one event (coalescing), each
     * table and column once; a change that would pass MAX_VALUES, or past
     * MAX_CHANGES, is left out (the backup then finds it by checksums).
     *
     * @param mixed $a
     * @param mixed $b
     * @return list<array<string, mixed>>
     */
    public static function merge($a, $b): array
    {
        $by = [];
        foreach ([$a, $b] as $list) {
            if (!is_array($list)) {
                continue;
            }
            foreach ($list as $c) {
                if (!is_array($c) || !isset($c['table'], $c['values']) || !is_array($c['values'])) {
                    continue;
                }
                $col = (string) ($c['column'] ?? '');
                $k = $c['table'] . "\0" . $col;
                if (!isset($by[$k])) {
                    if (count($by) >= self::MAX_CHANGES) {
                        continue;
                    }
                    $by[$k] = self::change((string) $c['table'], $col, []);
                }
                if ($by[$k]['values'] === null) {
                    continue; // over the bound already
                }
                $vals = array_values(array_unique(array_merge($by[$k]['values'], array_map('strval', $c['values']))));
                $by[$k]['values'] = count($vals) > self::MAX_VALUES ? null : $vals;
            }
        }
        $out = [];
        foreach ($by as $c) {
            if ($c['values'] !== null && $c['values'] !== []) {
                $out[] = $c;
            }
        }
        return $out;
    }

    /**
     * @param list<int|string> $values
     * @return array<string, mixed>
     */
    private static function change(string $table, string $column, array $values): array
    {
        $c = ['table' => $table];
        if ($column !== '') {
            $c['column'] = $column;
        }
        $c['values'] = array_map('strval', $values);
        return $c;
    }
}
