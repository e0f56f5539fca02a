package web

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/sitevault/sitevault/internal/catalog"
	"github.com/sitevault/sitevault/internal/sitevault"
)

// SiteCheck is what "test connection" found on a site.
type SiteCheck struct {
	WordPress, ContentDir, TablePrefix, DBName, DBHost string
	Multisite                                          bool
	HostKey                                            string // the SSH host key's fingerprint, when recorded
	// Found is what a backup would take; nil when not asked for.
	Found *SiteFound
}

// SiteFound is what discovery found on a site: the tables and files a
// backup takes and the rules that leave the rest out.
type SiteFound struct {
	Tables, Views int
	SkippedTables []SkippedTable
	TablesErr     string
	Files         int
	Size          string // the files' total size, for people
	Rules         []RuleCount
	Partial       bool // the file walk stopped at its time bound: Files counts part of the site
	FilesErr      string
}

// SkippedTable is a table a backup leaves out, and why.
type SkippedTable struct{ Table, Reason string }

// RuleCount is how many paths one exclusion rule leaves out.
type RuleCount struct {
	Rule  string
	Paths int
}

// HostKeyUnknown says an SSH server's host key is not known yet: the
// user compares Fingerprint with the server's and accepts it.
type HostKeyUnknown struct {
	Fingerprint string
	Err         error
}

func (e *HostKeyUnknown) Error() string { return e.Err.Error() }
func (e *HostKeyUnknown) Unwrap() error { return e.Err }

type addSiteData struct {
	Name, Path, SSH, IdentityFile    string
	DBHost, DBName, DBUser, DBPrefix string
	Fingerprint, Error               string
	// Accepted is true when the user ticked Fingerprint: the form keeps
	// it ticked so that "Add the site" after "Test connection" trusts
	// the same key.
	Accepted bool
	Check    *SiteCheck
}

func (d *Dashboard) addSitePage(w http.ResponseWriter, r *http.Request, u *sitevault.User) {
	d.render(w, r, http.StatusOK, "addsite", page{Title: "Add a site", Nav: "sites", User: u, D: addSiteData{}})
}

// parseSSH reads "user@host[:port]".
func parseSSH(v string) (user, host string, port int, err error) {
	user, rest, ok := strings.Cut(v, "@")
	if !ok || user == "" || rest == "" {
		return "", "", 0, errors.New("SSH: write it as user@host or user@host:port")
	}
	host = rest
	if h, p, ok := strings.Cut(rest, ":"); ok && !strings.Contains(p, ":") {
		n, err := strconv.Atoi(p)
		if err != nil || n <= 0 || n > 65535 {
			return "", "", 0, errors.New("SSH: the port after the colon must be a number from 1 to 65535")
		}
		host, port = h, n
	}
	if strings.ContainsAny(host, " /\\\r\n") || host == "" {
		return "", "", 0, errors.New("SSH: the host is not a host name or address")
	}
	return user, host, port, nil
}

func (d *Dashboard) addSiteForm(w http.ResponseWriter, r *http.Request, u *sitevault.User) {
	ctx := r.Context()
	f := func(k string) string { return strings.TrimSpace(r.PostFormValue(k)) }
	data := addSiteData{Name: f("name"), Path: f("path"), SSH: f("ssh"), IdentityFile: f("key"),
		DBHost: f("db_host"), DBName: f("db_name"), DBUser: f("db_user"), DBPrefix: f("table_prefix")}
	show := func(status int, err error) {
		if err != nil {
			data.Error = err.Error()
		}
		d.render(w, r, status, "addsite", page{Title: "Add a site", Nav: "sites", User: u, D: data})
	}
	if err := sitevault.ValidateName(data.Name); err != nil {
		show(http.StatusUnprocessableEntity, err)
		return
	}
	if _, err := d.svc.Catalog().Site(ctx, data.Name); err == nil {
		show(http.StatusConflict, errors.New("a site named "+data.Name+" exists already; choose another name"))
		return
	}
	st := sitevault.Site{Name: data.Name, Kind: sitevault.Local, Path: data.Path,
		DB: sitevault.DBOverrides{Host: data.DBHost, Name: data.DBName, User: data.DBUser, TablePrefix: data.DBPrefix,
			Password: sitevault.Secret(r.PostFormValue("db_password"))}}
	if data.SSH != "" {
		user, host, port, err := parseSSH(data.SSH)
		if err != nil {
			show(http.StatusUnprocessableEntity, err)
			return
		}
		st.Kind = sitevault.SSH
		st.SSH = sitevault.SSHSettings{User: user, Host: host, Port: port, IdentityFile: data.IdentityFile,
			Password: sitevault.Secret(r.PostFormValue("ssh_password")), Passphrase: sitevault.Secret(r.PostFormValue("key_passphrase"))}
	}
	if err := st.Validate(); err != nil {
		show(http.StatusUnprocessableEntity, err)
		return
	}
	check, err := d.svc.CheckSite(ctx, &st, r.PostFormValue("accept_host_key"), r.PostFormValue("action") != "add")
	var hk *HostKeyUnknown
	if errors.As(err, &hk) {
		data.Fingerprint = hk.Fingerprint
		show(http.StatusConflict, errors.New("the SSH server's host key is not known yet: compare its fingerprint below with the server's (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub on the server), tick it, and test again"))
		return
	}
	if err != nil {
		show(http.StatusUnprocessableEntity, err)
		return
	}
	data.Check = check
	if accepted := r.PostFormValue("accept_host_key"); accepted != "" && accepted == check.HostKey {
		data.Fingerprint, data.Accepted = accepted, true
	}
	if r.PostFormValue("action") != "add" {
		show(http.StatusOK, nil)
		return
	}
	if err := d.svc.AddSite(ctx, st); err != nil {
		if errors.Is(err, catalog.ErrSiteExists) {
			show(http.StatusConflict, err)
			return
		}
		d.failErr(w, r, u, err)
		return
	}
	http.Redirect(w, r, sitePath(st.Name, "backups"), http.StatusSeeOther)
}
