package service

import (
	"context"

	"github.com/sitevault/sitevault/internal/connection/ssh"
	"github.com/sitevault/sitevault/internal/site"
	"github.com/sitevault/sitevault/internal/sitevault"
)

// SiteCheck is what checking a site's settings found: the test-connection
// step of adding or editing a site.
type SiteCheck struct {
	WordPress       string `json:"wordpress_version"`
	Multisite       bool   `json:"multisite"`
	ContentDir      string `json:"content_dir"`
	TablePrefix     string `json:"table_prefix"`
	DBName          string `json:"db_name"`
	DBHost          string `json:"db_host"`
	HostKey         string `json:"host_key_fingerprint,omitempty"`
	HostKeyRecorded bool   `json:"host_key_recorded,omitempty"`
}

// hostKeyError asks the caller to accept an unknown host key.
type hostKeyError struct {
	fingerprint string
	err         error
}

func (e *hostKeyError) Error() string { return e.err.Error() }
func (e *hostKeyError) Unwrap() error { return e.err }

// checkSite runs the registration check of the CLI (site.Check):
// connect, inspect the files, read wp-config.php, log in to the database;
// it records the login that worked and, when acceptKey is the server's
// fingerprint, its host key. Secrets come from entry only, never from the
// service's environment.
func (s *Service) checkSite(ctx context.Context, entry *sitevault.Site, acceptKey string) (*SiteCheck, error) {
	conn, res, err := site.Check(ctx, entry, site.CheckOptions{Logger: s.log,
		AcceptHostKey: func(unknown *ssh.UnknownHostKeyError) error {
			if acceptKey == "" || acceptKey != unknown.Fingerprint() {
				return &hostKeyError{fingerprint: unknown.Fingerprint(), err: unknown}
			}
			return nil
		}})
	if err != nil {
		return nil, err
	}
	conn.Close()
	in := res.Inspection
	wp := in.WordPress
	return &SiteCheck{WordPress: wp.Version, Multisite: wp.Multisite(), ContentDir: wp.ContentDir,
		TablePrefix: in.Database.TablePrefix, DBName: in.Database.Name, DBHost: site.DBHostFor(res.DBAddr),
		HostKey: entry.SSH.HostKeyFingerprint, HostKeyRecorded: res.HostKeyRecorded}, nil
}
