// Package e2e holds sitevault's end-to-end tests: the built binary, run as a
// user runs it, against a real WordPress (Debian's package, installed with
// php-cli and served by `php -S`), a real MariaDB and a real OpenSSH sshd,
// all private to the test run (see internal/testsrv).
//
// The tests live in package e2e_test; this file only gives the package its
// comment. `go test -short` skips them (README: quick local runs).
package e2e
