package service

import (
	"context"
	"errors"
	"fmt"

	"github.com/sitevault/sitevault/internal/connection"
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

// checkSite connects to the site, inspects its files and logs in to its
// database, recording the login that worked and, when acceptKey is the
// server's fingerprint, its host key. Secrets come from entry only.
func (s *Service) checkSite(ctx context.Context, entry *sitevault.Site, acceptKey string) (*SiteCheck, error) {
	opts := connection.Options{Logger: s.log, Env: noEnv}
	conn, err := connection.Open(ctx, *entry, opts)
	var unknown *ssh.UnknownHostKeyError
	recorded := false
	if errors.As(err, &unknown) {
		if acceptKey == "" || acceptKey != unknown.Fingerprint() {
			return nil, &hostKeyError{fingerprint: unknown.Fingerprint(), err: err}
		}
		entry.SSH.HostKey, entry.SSH.HostKeyFingerprint = unknown.AuthorizedKey(), unknown.Fingerprint()
		recorded = true
		conn, err = connection.Open(ctx, *entry, opts)
	}
	if err != nil {
		return nil, fmt.Errorf("site %s: connect: %w", entry.Name, err)
	}
	defer conn.Close()
	in, err := site.Inspect(ctx, conn, *entry)
	if err != nil {
		return nil, fmt.Errorf("site %s: %w", entry.Name, err)
	}
	if in.DatabaseErr != nil {
		return nil, fmt.Errorf("%w: site %s: wp-config.php does not say everything the database connection needs: %v; set the missing values in the site's database settings",
			sitevault.ErrInvalid, entry.Name, in.DatabaseErr)
	}
	addr, err := site.CheckDatabase(ctx, conn, in.Database)
	if err != nil {
		return nil, fmt.Errorf("site %s: %w", entry.Name, err)
	}
	entry.LastDB = &sitevault.DBCredentials{Host: site.DBHostFor(addr), Name: in.Database.Name, User: in.Database.User,
		Password: sitevault.Secret(in.Database.Password)}
	wp := in.WordPress
	return &SiteCheck{WordPress: wp.Version, Multisite: wp.Multisite(), ContentDir: wp.ContentDir,
		TablePrefix: in.Database.TablePrefix, DBName: in.Database.Name, DBHost: site.DBHostFor(addr),
		HostKey: entry.SSH.HostKeyFingerprint, HostKeyRecorded: recorded}, nil
}
