package service

import (
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"

	"github.com/sitevault/sitevault/internal/backup"
	"github.com/sitevault/sitevault/internal/catalog"
	"github.com/sitevault/sitevault/internal/connection/ssh"
	"github.com/sitevault/sitevault/internal/mysql"
	"github.com/sitevault/sitevault/internal/point"
	"github.com/sitevault/sitevault/internal/restore"
	"github.com/sitevault/sitevault/internal/site"
	"github.com/sitevault/sitevault/internal/sitevault"
	"github.com/sitevault/sitevault/internal/wordpress"
)

// A failure's code is its identity for grouping, alerts and the API: the
// same facts the CLI turns into flag advice, said as data.
var errorCodes = []struct {
	err  error
	code string
	// what to do, in words that fit a mail and the dashboard.
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
	{backup.ErrBusy, "busy", "Another backup or restore of the site was running; the backup is retried."},
	{restore.ErrNothingToUndo, "nothing_to_undo", "The site has no restore to undo."},
	{restore.ErrUsage, "bad_request", "Check the restore's items, paths and tables."},
	{restore.ErrPreRestore, "pre_restore_failed", "The site could not be backed up before the restore, so nothing was changed: fix the backup's error first."},
	{point.ErrNoPoint, "point_not_found", "Pick a restore point from the site's list of points."},
	{fs.ErrPermission, "permission", "sitevault may not read or write a file of the site: check the owner and mode of the site's files for the connection's user."},
	{fs.ErrNotExist, "not_found", "A file or folder the site needs is missing: check the site's path."},
}

// errorCode returns the code of err's first known cause ("error" if none).
func errorCode(err error) string {
	for _, c := range errorCodes {
		if errors.Is(err, c.err) {
			return c.code
		}
	}
	return "error"
}

// adviceFor returns what to do about a failure with code.
func adviceFor(code string) string {
	for _, c := range errorCodes {
		if c.code == code {
			return c.advice
		}
	}
	switch code {
	case "repository_damaged":
		return "The repository reports damage: run `sitevault check` on the sitevault machine to see what is affected."
	case "worker_lost":
		return "The sitevault process running the backup stopped; it is retried. If this repeats, check the service's logs and memory."
	case "site_not_found":
		return "The site was removed from sitevault."
	}
	return ""
}

// jobAdvice is adviceFor, with a general hint for failures without one.
func jobAdvice(code string) string {
	if a := adviceFor(code); a != "" {
		return a
	}
	return "See the job's error in the sitevault dashboard or with `sitevault jobs show ID`, fix what it names, then run a backup by hand to check."
}

// problem is an RFC 9457 problem document: the API's error body.
type problem struct {
	Type   string `json:"type"`   // a URI naming the problem kind
	Title  string `json:"title"`  // the kind in words
	Status int    `json:"status"` // the HTTP status
	Detail string `json:"detail"` // this occurrence
	// Code is the stable code of the failure (as jobs' error_code).
	Code   string `json:"code"`
	Advice string `json:"advice,omitempty"`
	// Extensions of some problems.
	Fingerprint string            `json:"fingerprint,omitempty"` // host_key_unknown
	Errors      map[string]string `json:"errors,omitempty"`      // invalid fields
}

// writeProblem writes a problem for err (status 0: chosen from err).
func writeProblem(w http.ResponseWriter, status int, code, detail string) {
	p := problem{Type: "https://sitevault.dev/problems/" + code, Title: titleFor(code), Status: status, Detail: detail,
		Code: code, Advice: adviceFor(code)}
	writeProblemDoc(w, p)
}

func writeProblemDoc(w http.ResponseWriter, p problem) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(p.Status)
	json.NewEncoder(w).Encode(p)
}

func titleFor(code string) string {
	switch code {
	case "unauthorized":
		return "Sign in or give an API token"
	case "forbidden":
		return "Your role does not allow this"
	case "not_found", "site_not_found", "point_not_found", "job_not_found":
		return "Not found"
	case "bad_request", "invalid":
		return "The request is not valid"
	case "conflict", "exists":
		return "It exists already"
	case "too_many_requests":
		return "Too many attempts"
	}
	return "The request failed"
}

// errorProblem maps a library error to a status and code.
func errorProblem(w http.ResponseWriter, err error) {
	var je *jobError
	code := errorCode(err)
	if errors.As(err, &je) {
		code = je.code
	}
	status := http.StatusInternalServerError
	switch {
	case errors.Is(err, catalog.ErrSiteNotFound):
		status, code = http.StatusNotFound, "site_not_found"
	case errors.Is(err, catalog.ErrNotFound):
		status, code = http.StatusNotFound, "not_found"
	case errors.Is(err, catalog.ErrSiteExists), errors.Is(err, catalog.ErrExists):
		status, code = http.StatusConflict, "exists"
	case errors.Is(err, sitevault.ErrInvalid):
		status, code = http.StatusUnprocessableEntity, "invalid"
	case errors.Is(err, point.ErrNoPoint), errors.Is(err, point.ErrBadRef), errors.Is(err, point.ErrOtherSite), errors.Is(err, point.ErrAmbiguous):
		status, code = http.StatusNotFound, "point_not_found"
	case code != "error":
		status = http.StatusUnprocessableEntity
	}
	writeProblem(w, status, code, err.Error())
}
