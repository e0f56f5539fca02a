package sftp

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"net"
	"strconv"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// HostKeyError reports a server whose host key could not be trusted: not
// recorded, changed, revoked or not the fingerprint configured. It is
// permanent: connecting again cannot make the key trusted.
type HostKeyError struct {
	Addr        string // host:port as dialled
	KeyType     string // the type of key the server offered, "ssh-ed25519"
	Fingerprint string // the offered key's SHA256 fingerprint, "SHA256:…"
	// Changed: known_hosts (or the configured fingerprint) records another
	// key for this host.
	Changed bool
	Revoked bool
	// KnownHostsFile is the file consulted, "" when a fingerprint was.
	KnownHostsFile string
	// Want is the configured fingerprint, when one was.
	Want string
}

func (e *HostKeyError) Error() string {
	host, port, _ := net.SplitHostPort(e.Addr)
	switch {
	case e.Revoked:
		return fmt.Sprintf("host key of %s (%s %s) is marked revoked in %s: refusing to connect", e.Addr, e.KeyType, e.Fingerprint, e.KnownHostsFile)
	case e.Want != "":
		return fmt.Sprintf("host key of %s has fingerprint %s, but %s was configured: if the server's key was really replaced, configure the new fingerprint; otherwise someone may be intercepting the connection", e.Addr, e.Fingerprint, e.Want)
	case e.Changed:
		return fmt.Sprintf("host key of %s changed: the server offered %s %s, but %s records another key; if the server's key was really replaced, remove the old entry (ssh-keygen -R '[%s]:%s' -f %s) and accept the new one; otherwise someone may be intercepting the connection", e.Addr, e.KeyType, e.Fingerprint, e.KnownHostsFile, host, port, e.KnownHostsFile)
	}
	return fmt.Sprintf("host key of %s is unknown (%s %s): check the fingerprint with the server's administrator, then accept it by adding it to %s (ssh-keyscan -p %s %s >> %s) or by configuring the fingerprint (SITEVAULT_SFTP_FINGERPRINT=%s)", e.Addr, e.KeyType, e.Fingerprint, e.KnownHostsFile, port, host, e.KnownHostsFile, e.Fingerprint)
}

// hostKeyCheck returns the callback that verifies the server's key and the
// host key algorithms to offer, so that the server presents a key of a
// type known_hosts records. It never accepts an unverified key.
func hostKeyCheck(cfg *Config, addr string) (ssh.HostKeyCallback, []string, error) {
	if cfg.HostKeyFingerprint != "" {
		want := cfg.HostKeyFingerprint
		return func(_ string, _ net.Addr, key ssh.PublicKey) error {
			if got := ssh.FingerprintSHA256(key); got != want {
				return &HostKeyError{Addr: addr, KeyType: key.Type(), Fingerprint: got, Changed: true, Want: want}
			}
			return nil
		}, nil, nil
	}
	if cfg.KnownHostsFile == "" {
		return nil, nil, errors.New("no way to verify the server's host key: configure a known_hosts file or the key's fingerprint")
	}
	kh, err := knownhosts.New(cfg.KnownHostsFile)
	if err != nil {
		return nil, nil, fmt.Errorf("read known hosts: %w (create the file, or configure the host key's fingerprint instead)", err)
	}
	file := cfg.KnownHostsFile
	cb := func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		err := kh(hostname, remote, key)
		var ke *knownhosts.KeyError
		var re *knownhosts.RevokedError
		switch {
		case err == nil:
			return nil
		case errors.As(err, &re):
			return &HostKeyError{Addr: addr, KeyType: key.Type(), Fingerprint: ssh.FingerprintSHA256(key), Revoked: true, KnownHostsFile: file}
		case errors.As(err, &ke):
			return &HostKeyError{Addr: addr, KeyType: key.Type(), Fingerprint: ssh.FingerprintSHA256(key), Changed: len(ke.Want) > 0, KnownHostsFile: file}
		}
		return err
	}
	return cb, knownAlgorithms(kh, addr), nil
}

// knownAlgorithms returns the host key algorithms matching the key types
// recorded for addr, or nil (the library's defaults) if none is recorded.
func knownAlgorithms(kh ssh.HostKeyCallback, addr string) []string {
	_, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	// Ask about a key no one has: the KeyError lists the recorded keys.
	probe, err := ssh.NewPublicKey(ed25519.PublicKey(make([]byte, ed25519.PublicKeySize)))
	if err != nil {
		return nil
	}
	var ke *knownhosts.KeyError
	if !errors.As(kh(addr, &net.TCPAddr{IP: net.IPv4zero, Port: p}, probe), &ke) {
		return nil
	}
	var algos []string
	seen := map[string]bool{}
	for _, k := range ke.Want {
		t := k.Key.Type()
		list := []string{t}
		if t == ssh.KeyAlgoRSA {
			list = []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
		}
		for _, a := range list {
			if !seen[a] {
				seen[a] = true
				algos = append(algos, a)
			}
		}
	}
	return algos
}
