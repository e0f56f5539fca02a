package wordpress

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// Defaults PHP's mysqli uses where DB_HOST leaves something out.
const (
	DefaultDBPort   = 3306
	DefaultDBSocket = "/var/run/mysqld/mysqld.sock" // Debian's and Ubuntu's PHP default
)

// ErrBadDBHost means DB_HOST cannot be turned into an address, for
// example an IPv6 address WordPress itself could not parse.
var ErrBadDBHost = errors.New("invalid DB_HOST")

// DBAddr is where the database listens, ready for net.Dial.
type DBAddr struct {
	Network string // "tcp" or "unix"
	Address string // host:port, or a socket path
}

// ParseDBHost turns a DB_HOST value into an address, as WordPress
// (wpdb::parse_db_host) and PHP's mysqli read it:
//
//   - "host", "host:port", "[IPv6]:port", "[::1]", "::1": TCP, port 3306 by default;
//   - "localhost" (any case) or "": the Unix socket defaultSocket, even
//     with a port ("localhost:3307"), because mysqli ignores the port for
//     localhost; use 127.0.0.1 for TCP;
//   - "localhost:/path" or ":/path": the Unix socket /path;
//   - "host:/path" with another host: TCP to host (mysqli ignores the socket);
//   - a "p:" prefix (mysqli's persistent connections) is dropped.
//
// defaultSocket "" means DefaultDBSocket.
func ParseDBHost(dbHost, defaultSocket string) (DBAddr, error) {
	if defaultSocket == "" {
		defaultSocket = DefaultDBSocket
	}
	h := strings.TrimSpace(dbHost)
	h = strings.TrimPrefix(h, "p:")
	socket := ""
	if i := strings.Index(h, ":/"); i >= 0 {
		socket = h[i+1:]
		h = h[:i]
	}
	host, portText := h, ""
	if strings.Count(h, ":") > 1 {
		// IPv6, bracketed when a port follows: [::1]:3307, [::1], ::1
		rest := strings.TrimPrefix(h, "[")
		end := 0
		for end < len(rest) && (hexVal(rest[end]) >= 0 || rest[end] == ':') {
			end++
		}
		host = rest[:end]
		if strings.HasPrefix(rest[end:], "]:") {
			portText = leadingDigits(rest[end+2:])
		}
		if host == "" {
			return DBAddr{}, fmt.Errorf("%w %q: not an IPv6 address", ErrBadDBHost, dbHost)
		}
	} else if i := strings.IndexAny(h, ":/"); i >= 0 {
		host = h[:i]
		if h[i] == ':' {
			portText = leadingDigits(h[i+1:])
		}
	}
	if host == "" || strings.EqualFold(host, "localhost") {
		if socket == "" {
			socket = defaultSocket
		}
		return DBAddr{Network: "unix", Address: socket}, nil
	}
	port := DefaultDBPort
	if portText != "" {
		n, err := strconv.Atoi(portText)
		if err != nil || n > 65535 {
			return DBAddr{}, fmt.Errorf("%w %q: port %s is out of range", ErrBadDBHost, dbHost, portText)
		}
		if n != 0 { // WordPress reads port 0 as no port
			port = n
		}
	}
	return DBAddr{Network: "tcp", Address: net.JoinHostPort(host, strconv.Itoa(port))}, nil
}

func leadingDigits(s string) string {
	n := 0
	for n < len(s) && isDigit(s[n]) {
		n++
	}
	return s[:n]
}
