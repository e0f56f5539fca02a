// Package connectortest tests the WordPress plugin sitevault-connector
// (connector/ at the repository's root) without the sitevault service: a
// real WordPress (Debian's, installed by testsrv on a private MariaDB) runs
// the real plugin through php-cli steps (connector/tests/steps.php), and a
// small HTTP receiver in the test plays the service's side of
// docs/connector-protocol.md — it answers pairing, checks every signature
// exactly as the protocol says, records the batches and answers what a
// test asks (503 with Retry-After, 400, a slow answer …).
//
// The package has no code of its own; its tests also run `php -l` on every
// PHP file and Debian's phpcs (PSR-12) on the plugin.
package connectortest
