// Package failure names failures: a stable code for each kind the library
// reports (ssh_login, database_unreachable, point_not_found …) and what to
// do about it, in words that fit a mail, the dashboard and a terminal. The
// service's API problems and job records, and the CLI's --json errors, use
// the same codes, so a script reads them alike from either.
package failure

import (
	"errors"
	"io/fs"

	"github.com/sitevault/sitevault/internal/backup"
	"github.com/sitevault/sitevault/internal/catalog"
	"github.com/sitevault/sitevault/internal/connection/ssh"
	"github.com/sitevault/sitevault/internal/mysql"
	"github.com/sitevault/sitevault/internal/point"
	"github.com/sitevault/sitevault/internal/repository"
	"github.com/sitevault/sitevault/internal/restore"
	"github.com/sitevault/sitevault/internal/site"
	"github.com/sitevault/sitevault/internal/wordpress"
)

// Generic is the code of a failure no entry of the table names.
const Generic = "error"

// codes maps library errors to codes and advice, most specific first.
var codes = []struct {
	err    error
	code   string
	advice string
}{
	{ssh.ErrUnreachable, "ssh_unreachable", "Check that the server is up and that its SSH port is reachable from the sitevault machine."},
	{ssh.ErrLogin, "ssh_login", "The SSH server refused the login: check the user, password or key in the site's connection settings."},
	{ssh.ErrIdentity, "ssh_identity", "The SSH key file cannot be used: check its path and passphrase in the site's connection settings."},
	{ssh.ErrHostKeyChanged, "host_key_changed", "The server's SSH host key changed. If the server was reinstalled, accept the new key in the site's settings; otherwise someone may be intercepting the connection."},
	{ssh.ErrHostKeyUnknown, "host_key_unknown", "No SSH host key is recorded for the server: check its fingerprint and accept it in the site's settings."},
	{site.ErrDBUnreachable, "database_unreachable", "The database server does not answer: check that it runs and that DB_HOST in wp-config.php is right."},
	{site.ErrDBLogin, "database_login", "The database refused the login: check DB_USER and DB_PASSWORD in wp-config.php or the site's database settings."},
	{mysql.ErrAccessDenied, "database_login", "The database refused the login: check DB_USER and DB_PASSWORD in wp-config.php or the site's database settings."},
	{site.ErrDBName, "database_name", "The database named by DB_NAME cannot be used by its user: check DB_NAME and the user's grants."},
	{wordpress.ErrNotWordPress, "not_wordpress", "The site's folder does not hold WordPress: check the site's path."},
	{wordpress.ErrNoConfig, "no_config", "wp-config.php was not found: check the site's path."},
	{backup.ErrBusy, "busy", "Another backup or restore of the site was running; try again when it has finished."},
	{restore.ErrNothingToUndo, "nothing_to_undo", "The site has no restore to undo."},
	{restore.ErrUsage, "bad_request", "Check the restore's items, paths and tables."},
	{restore.ErrPreRestore, "pre_restore_failed", "The site could not be backed up before the restore, so nothing was changed: fix the backup's error first."},
	{point.ErrNoPoint, "point_not_found", "Pick a restore point from the site's list of points."},
	{point.ErrBadRef, "point_not_found", "Name a restore point by its id (4 or more characters), latest, or a day YYYY-MM-DD."},
	{point.ErrOtherSite, "point_not_found", "The restore point belongs to another site: pick one from this site's list of points."},
	{point.ErrAmbiguous, "point_not_found", "Several restore points begin with those characters: give more of the id."},
	{catalog.ErrSiteNotFound, "site_not_found", "No site of that name is registered: `sitevault site list` shows the sites."},
	{repository.ErrWrongPassword, "wrong_password", "No key of the repository opens with that password: give the right one."},
	{repository.ErrNotRepository, "no_repository", "There is no repository there: create it with `sitevault init`, or point to an existing one."},
	{repository.ErrDamaged, "repository_damaged", "The repository reports damage: run `sitevault check` on the sitevault machine to see what is affected."},
	{fs.ErrPermission, "permission", "sitevault may not read or write a file of the site: check the owner and mode of the site's files for the connection's user."},
	{fs.ErrNotExist, "not_found", "A file or folder the site needs is missing: check the site's path."},
}

// Code returns the code of err's first known cause, Generic if none.
func Code(err error) string {
	for _, c := range codes {
		if errors.Is(err, c.err) {
			return c.code
		}
	}
	return Generic
}

// Advice returns what to do about a failure with code ("" when there is
// nothing better to say than the message).
func Advice(code string) string {
	for _, c := range codes {
		if c.code == code {
			return c.advice
		}
	}
	switch code {
	case "worker_lost":
		return "The sitevault process running the backup stopped; it is retried. If this repeats, check the service's logs and memory."
	}
	return ""
}

// Report is a failure as data: the fields the service's problem documents
// (RFC 9457) and the CLI's --json errors share.
type Report struct {
	Code   string `json:"code"`             // stable, snake_case
	Detail string `json:"detail"`           // this occurrence, in words
	Advice string `json:"advice,omitempty"` // what to do
}

// ReportOf describes err with code (Code(err) when empty).
func ReportOf(err error, code string) Report {
	if code == "" {
		code = Code(err)
	}
	return Report{Code: code, Detail: err.Error(), Advice: Advice(code)}
}
