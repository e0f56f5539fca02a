package service

import (
	"context"
	"errors"
	"sort"
	"time"

	"github.com/sitevault/sitevault/internal/backup"
	"github.com/sitevault/sitevault/internal/connection"
	"github.com/sitevault/sitevault/internal/connection/ssh"
	"github.com/sitevault/sitevault/internal/site"
	"github.com/sitevault/sitevault/internal/sitevault"
	"github.com/sitevault/sitevault/internal/wordpress"
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
	c, _, err := s.checkAndDiscover(ctx, entry, acceptKey, false)
	return c, err
}

// Discovery is what a backup of a checked site would take: its tables
// and files, and the rules that leave paths and tables out.
type Discovery struct {
	Tables, Views int
	SkippedTables []backup.SkippedTable
	TablesErr     string // why the tables could not be listed ("" when they were)
	Files         int
	Bytes         int64
	// Rules counts the paths each exclusion rule left out.
	Rules    []RuleCount
	Complete bool // false when the walk stopped at its time bound
	FilesErr string
}

// RuleCount is how many paths one exclusion rule left out.
type RuleCount struct {
	Rule  string
	Paths int
}

// discoverFor bounds the file walk of "test connection": a site with
// many files is counted partly, and the page says so.
const discoverFor = 10 * time.Second

var errWalkBound = errors.New("the walk reached its time bound")

// discover lists what a backup would take through conn.
func discover(ctx context.Context, conn connection.Connection, entry sitevault.Site, in *site.Inspection) *Discovery {
	d := &Discovery{Complete: true}
	if sel, err := backup.SelectTables(ctx, conn, entry, in); err != nil {
		d.TablesErr = err.Error()
	} else {
		d.Tables, d.Views, d.SkippedTables = len(sel.Tables), len(sel.Views), sel.Skipped
	}
	root, err := conn.FS(ctx)
	if err != nil {
		d.FilesErr = err.Error()
		return d
	}
	defer root.Close()
	rules := map[string]int{}
	deadline := time.Now().Add(discoverFor)
	err = wordpress.Explain(ctx, root, in.WordPress.Rules(wordpress.HeadReader(ctx, root)), func(dc wordpress.Decision) error {
		switch {
		case !dc.Taken:
			rules[dc.Reason]++
		case !dc.Info.Mode.IsDir():
			d.Files++
			d.Bytes += dc.Info.Size
		}
		if time.Now().After(deadline) {
			return errWalkBound
		}
		return nil
	})
	switch {
	case errors.Is(err, errWalkBound):
		d.Complete = false
	case err != nil:
		d.FilesErr = err.Error()
	}
	for r, n := range rules {
		d.Rules = append(d.Rules, RuleCount{Rule: r, Paths: n})
	}
	sort.Slice(d.Rules, func(i, j int) bool {
		if d.Rules[i].Paths != d.Rules[j].Paths {
			return d.Rules[i].Paths > d.Rules[j].Paths
		}
		return d.Rules[i].Rule < d.Rules[j].Rule
	})
	return d
}

// checkAndDiscover is checkSite, and with withDiscovery what a backup
// would take (the dashboard's "test connection").
func (s *Service) checkAndDiscover(ctx context.Context, entry *sitevault.Site, acceptKey string, withDiscovery bool) (*SiteCheck, *Discovery, error) {
	conn, res, err := site.Check(ctx, entry, site.CheckOptions{Logger: s.log,
		AcceptHostKey: func(unknown *ssh.UnknownHostKeyError) error {
			if acceptKey == "" || acceptKey != unknown.Fingerprint() {
				return &hostKeyError{fingerprint: unknown.Fingerprint(), err: unknown}
			}
			return nil
		}})
	if err != nil {
		return nil, nil, err
	}
	in := res.Inspection
	var disc *Discovery
	if withDiscovery {
		disc = discover(ctx, conn, *entry, in)
	}
	conn.Close()
	wp := in.WordPress
	return &SiteCheck{WordPress: wp.Version, Multisite: wp.Multisite(), ContentDir: wp.ContentDir,
		TablePrefix: in.Database.TablePrefix, DBName: in.Database.Name, DBHost: site.DBHostFor(res.DBAddr),
		HostKey: entry.SSH.HostKeyFingerprint, HostKeyRecorded: res.HostKeyRecorded}, disc, nil
}
