<?php

namespace Sitevault\Connector;

/**
 * WooCommerce's orders and products, from the hooks WooCommerce documents,
 * registered only when WooCommerce is active. The order or product object
 * WooCommerce passes is read inside the hook.
 */
final class WooCommerce
{
    /** Post types WooCommerce's own hooks cover (the post hooks skip them). */
    public const POST_TYPES = [
        'shop_order', 'shop_order_refund', 'shop_order_placehold', 'product', 'product_variation', 'shop_coupon',
    ];

    /** Whether WooCommerce is loaded. */
    public static function active(): bool
    {
        return class_exists('WooCommerce', false);
    }

    /** plugins_loaded: adds the hooks when WooCommerce is active. */
    public static function registerIfActive(): void
    {
        if (!self::active()) {
            return;
        }
        $c = self::class;
        add_action('woocommerce_new_order', [$c, 'orderCreated'], 10, 2);
        add_action('woocommerce_order_status_changed', [$c, 'orderStatusChanged'], 10, 4);
        add_action('woocommerce_order_refunded', [$c, 'orderRefunded'], 10, 2);
        add_action('woocommerce_new_product', [$c, 'productCreated'], 10, 2);
        add_action('woocommerce_update_product', [$c, 'productUpdated'], 10, 2);
        add_action('woocommerce_trash_product', [$c, 'productTrashed'], 10, 1);
        add_action('woocommerce_delete_product', [$c, 'productDeleted'], 10, 1);
    }

    /**
     * WooCommerce's object for an id, or the one it passed.
     *
     * @param mixed $given
     * @return object|null
     */
    private static function object($id, $given, string $getter)
    {
        if (is_object($given)) {
            return $given;
        }
        return function_exists($getter) ? ($getter((int) $id) ?: null) : null;
    }

    /**
     * Calls $method on $o when it has it.
     *
     * @param mixed $o
     * @return mixed
     */
    private static function get($o, string $method, $default = '')
    {
        return is_object($o) && method_exists($o, $method) ? $o->$method() : $default;
    }

    /**
     * @param mixed $order
     * @return array{0: array{type: string, id: int, name: string}, 1: array<string, mixed>, 2: string}
     */
    private static function orderParts($id, $order): array
    {
        $number = (string) self::get($order, 'get_order_number', (string) $id);
        $details = [
            'status' => (string) self::get($order, 'get_status'),
            'total' => (string) self::get($order, 'get_total'),
            'currency' => (string) self::get($order, 'get_currency'),
            'customer_id' => (int) self::get($order, 'get_customer_id', 0),
            'items' => (int) self::get($order, 'get_item_count', 0),
            'payment_method' => (string) self::get($order, 'get_payment_method'),
        ];
        return [['type' => 'order', 'id' => (int) $id, 'name' => '#' . $number], $details, $number];
    }

    /**
     * woocommerce_new_order( $order_id, $order ).
     *
     * @param mixed $order
     */
    public static function orderCreated($id, $order = null): void
    {
        $order = self::object($id, $order, 'wc_get_order');
        [$obj, $d, $n] = self::orderParts($id, $order);
        Recorder::record(
            'woocommerce__order_created',
            $obj,
            sprintf('Order #%s was placed (%s %s)', $n, $d['total'], $d['currency']),
            $d,
            null,
            Changes::order((int) $id)
        );
    }

    /**
     * woocommerce_order_status_changed( $order_id, $from, $to, $order ).
     *
     * @param mixed $order
     */
    public static function orderStatusChanged($id, $from, $to, $order = null): void
    {
        $order = self::object($id, $order, 'wc_get_order');
        [$obj, $d, $n] = self::orderParts($id, $order);
        Recorder::record(
            'woocommerce__order_status_changed',
            $obj,
            sprintf('Order #%s changed from %s to %s', $n, (string) $from, (string) $to),
            ['from' => (string) $from, 'to' => (string) $to] + $d,
            null,
            Changes::order((int) $id)
        );
    }

    /** woocommerce_order_refunded( $order_id, $refund_id ). */
    public static function orderRefunded($id, $refundId): void
    {
        $order = self::object($id, null, 'wc_get_order');
        $refund = self::object($refundId, null, 'wc_get_order');
        [$obj, $d, $n] = self::orderParts($id, $order);
        $amount = (string) self::get($refund, 'get_amount');
        Recorder::record(
            'woocommerce__order_refunded',
            $obj,
            sprintf('Order #%s was refunded%s', $n, $amount !== '' ? ' (' . $amount . ' ' . $d['currency'] . ')' : ''),
            [
                'refund_id' => (int) $refundId,
                'amount' => $amount,
                'reason' => (string) self::get($refund, 'get_reason'),
            ] + $d,
            null,
            Changes::merge(Changes::order((int) $id), Changes::order((int) $refundId))
        );
    }

    /**
     * @param mixed $product
     */
    private static function product(string $verb, string $words, $id, $product): void
    {
        $product = self::object($id, $product, 'wc_get_product');
        $name = (string) self::get($product, 'get_name', '#' . $id);
        Recorder::record(
            'woocommerce__product_' . $verb,
            ['type' => 'product', 'id' => (int) $id, 'name' => $name],
            sprintf('Product “%s” was %s', $name, $words),
            [
                'sku' => (string) self::get($product, 'get_sku'),
                'price' => (string) self::get($product, 'get_price'),
                'status' => (string) self::get($product, 'get_status'),
                'stock' => self::get($product, 'get_stock_quantity', null),
            ],
            null,
            Changes::post((int) $id)
        );
    }

    /**
     * woocommerce_new_product( $product_id, $product ).
     *
     * @param mixed $product
     */
    public static function productCreated($id, $product = null): void
    {
        self::product('created', 'created', $id, $product);
    }

    /**
     * woocommerce_update_product( $product_id, $product ).
     *
     * @param mixed $product
     */
    public static function productUpdated($id, $product = null): void
    {
        self::product('updated', 'updated', $id, $product);
    }

    /** woocommerce_trash_product( $product_id ). */
    public static function productTrashed($id): void
    {
        self::product('trashed', 'moved to the trash', $id, null);
    }

    /** woocommerce_delete_product( $product_id ). */
    public static function productDeleted($id): void
    {
        self::product('deleted', 'deleted permanently', $id, null);
    }
}
