<?php

/**
 * Plugin Name: WooCommerce stand-in (sitevault connector tests)
 * Description: WooCommerce is not packaged for Debian. The test copies this file into mu-plugins/ so that
 * the connector sees WooCommerce as active; steps.php then fires WooCommerce's documented hooks with the
 * arguments WooCommerce passes. SvTestOrder and SvTestProduct answer the WC_Order / WC_Product getters the
 * connector reads.
 */

// WooCommerce's class and method names, in the global namespace, as WooCommerce has them:
// phpcs:disable PSR1.Classes.ClassDeclaration
// phpcs:disable Squiz.Classes.ValidClassName
// phpcs:disable PSR1.Methods.CamelCapsMethodName

class WooCommerce
{
}

class SvTestOrder
{
    public function __construct(private int $id)
    {
    }

    public function get_id(): int
    {
        return $this->id;
    }

    public function get_order_number(): string
    {
        return (string) $this->id;
    }

    public function get_status(): string
    {
        return 'processing';
    }

    public function get_total(): string
    {
        return '42.50';
    }

    public function get_currency(): string
    {
        return 'EUR';
    }

    public function get_customer_id(): int
    {
        return 1;
    }

    public function get_item_count(): int
    {
        return 2;
    }

    public function get_payment_method(): string
    {
        return 'bacs';
    }
}

class SvTestProduct
{
    public function __construct(private int $id)
    {
    }

    public function get_name(): string
    {
        return 'Blue mug';
    }

    public function get_sku(): string
    {
        return 'MUG-' . $this->id;
    }

    public function get_price(): string
    {
        return '9.90';
    }

    public function get_status(): string
    {
        return 'publish';
    }

    public function get_stock_quantity(): int
    {
        return 12;
    }
}
