package web

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/sitevault/sitevault/internal/catalog"
	"github.com/sitevault/sitevault/internal/notify"
	"github.com/sitevault/sitevault/internal/sitevault"
)

// --- service settings: mail, users, API tokens ---

type settingsData struct {
	SMTP        notify.SMTPSettings
	SMTPSet     bool
	PasswordSet bool
	Users       []*sitevault.User
	Tokens      []tokenRow
	Secret      string // a new token's secret, shown once
	Error       string
	// ConfirmRemove is the user a Remove asks to confirm (nil: none).
	ConfirmRemove *sitevault.User
}

func (d *Dashboard) settingsData(r *http.Request, u *sitevault.User) (settingsData, error) {
	ctx := r.Context()
	var data settingsData
	st, err := d.svc.SMTP(ctx)
	if err != nil {
		return data, err
	}
	if st != nil {
		data.SMTP, data.SMTPSet, data.PasswordSet = *st, true, st.Password != ""
		data.SMTP.Password = "" // never rendered
	}
	if data.Users, err = d.svc.Catalog().Users(ctx); err != nil {
		return data, err
	}
	toks, err := d.svc.Tokens(ctx, u)
	if err != nil {
		return data, err
	}
	emails := map[int64]string{}
	for _, x := range data.Users {
		emails[x.ID] = x.Email
	}
	for _, t := range toks {
		row := tokenRow{Token: t}
		if t.UserID != u.ID {
			row.Owner = emails[t.UserID]
		}
		data.Tokens = append(data.Tokens, row)
	}
	return data, nil
}

// tokenRow is a token in the list, with its user's email when it is
// someone else's (an owner sees every token).
type tokenRow struct {
	*sitevault.Token
	Owner string
}

func (d *Dashboard) renderSettings(w http.ResponseWriter, r *http.Request, u *sitevault.User, status int, flash string, edit func(*settingsData)) {
	data, err := d.settingsData(r, u)
	if err != nil {
		d.failErr(w, r, u, err)
		return
	}
	if edit != nil {
		edit(&data)
	}
	d.render(w, r, status, "settings", page{Title: "Settings", Nav: "settings", User: u, Flash: flash, D: data})
}

func (d *Dashboard) settingsPage(w http.ResponseWriter, r *http.Request, u *sitevault.User) {
	d.renderSettings(w, r, u, http.StatusOK, "", nil)
}

// refused shows err on the settings page (422 or the refusal's status).
func (d *Dashboard) settingsRefused(w http.ResponseWriter, r *http.Request, u *sitevault.User, err error) {
	status := http.StatusUnprocessableEntity
	if ref, ok := err.(*Refusal); ok {
		status = ref.Status
	}
	d.renderSettings(w, r, u, status, "", func(s *settingsData) { s.Error = err.Error() })
}

func (d *Dashboard) settingsForm(w http.ResponseWriter, r *http.Request, u *sitevault.User) {
	ctx := r.Context()
	switch r.PostFormValue("action") {
	case "smtp":
		port := 0
		if v := strings.TrimSpace(r.PostFormValue("smtp_port")); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 || n > 65535 {
				d.settingsRefused(w, r, u, &Refusal{http.StatusUnprocessableEntity, errString("Port: give a number from 1 to 65535, or leave it empty.")})
				return
			}
			port = n
		}
		st := notify.SMTPSettings{Host: strings.TrimSpace(r.PostFormValue("smtp_host")), Port: port,
			Username: strings.TrimSpace(r.PostFormValue("smtp_username")), Password: r.PostFormValue("smtp_password"),
			From: strings.TrimSpace(r.PostFormValue("smtp_from")), TLS: notify.TLSMode(r.PostFormValue("smtp_tls"))}
		if err := d.svc.SetSMTP(ctx, st); err != nil {
			d.settingsRefused(w, r, u, err)
			return
		}
		d.renderSettings(w, r, u, http.StatusOK, "Mail settings saved.", nil)
	case "test-mail":
		if err := d.svc.SendTestMail(ctx, u.Email); err != nil {
			d.settingsRefused(w, r, u, err)
			return
		}
		d.renderSettings(w, r, u, http.StatusOK, "A test mail went to "+u.Email+".", nil)
	case "add-user":
		role := sitevault.Role(r.PostFormValue("role"))
		if role != sitevault.RoleOwner && role != sitevault.RoleViewer {
			d.settingsRefused(w, r, u, errString("Role: choose owner or viewer."))
			return
		}
		if err := d.svc.AddUser(ctx, r.PostFormValue("email"), r.PostFormValue("name"), role, r.PostFormValue("password")); err != nil {
			d.settingsRefused(w, r, u, err)
			return
		}
		d.renderSettings(w, r, u, http.StatusOK, "User added.", nil)
	case "set-role", "remove-user":
		id, err := strconv.ParseInt(r.PostFormValue("user"), 10, 64)
		if err != nil || id <= 0 {
			d.settingsRefused(w, r, u, &Refusal{http.StatusUnprocessableEntity, errString("User: not a user's number; reload the page.")})
			return
		}
		if r.PostFormValue("action") == "remove-user" && r.PostFormValue("confirm") != "yes" {
			// Removing a user ends its sessions and tokens: ask first.
			victim, err := d.svc.Catalog().User(ctx, id)
			if errors.Is(err, catalog.ErrNotFound) {
				err = &Refusal{http.StatusNotFound, errString("No such user; reload the page.")}
			}
			if err != nil {
				d.settingsRefused(w, r, u, err)
				return
			}
			d.renderSettings(w, r, u, http.StatusOK, "", func(s *settingsData) { s.ConfirmRemove = victim })
			return
		}
		flash := "User removed."
		if r.PostFormValue("action") == "set-role" {
			flash = "Role changed."
			err = d.svc.SetUserRole(ctx, id, sitevault.Role(r.PostFormValue("role")))
		} else {
			err = d.svc.RemoveUser(ctx, id)
		}
		if err != nil {
			d.settingsRefused(w, r, u, err)
			return
		}
		if id == u.ID && (r.PostFormValue("action") == "remove-user" || sitevault.Role(r.PostFormValue("role")) != u.Role) {
			// The signed-in owner removed itself or stepped down: its sessions ended.
			http.Redirect(w, r, "/login", http.StatusSeeOther)
			return
		}
		d.renderSettings(w, r, u, http.StatusOK, flash, nil)
	default:
		d.settingsRefused(w, r, u, errString("Unknown action."))
	}
}

// tokenForm makes an API token of the signed-in user (viewers too: a
// viewer's token can only read).
func (d *Dashboard) tokenForm(w http.ResponseWriter, r *http.Request, u *sitevault.User) {
	secret, err := d.svc.NewToken(r.Context(), u, strings.TrimSpace(r.PostFormValue("name")))
	if err != nil {
		d.settingsRefused(w, r, u, err)
		return
	}
	d.renderSettings(w, r, u, http.StatusOK, "", func(s *settingsData) { s.Secret = secret })
}

// revokeTokenForm revokes an API token: an owner any, a viewer its own
// (as the API's DELETE /api/v1/tokens/{id}).
func (d *Dashboard) revokeTokenForm(w http.ResponseWriter, r *http.Request, u *sitevault.User) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		d.settingsRefused(w, r, u, &Refusal{http.StatusNotFound, errString("No such token; reload the page.")})
		return
	}
	if err := d.svc.RevokeToken(r.Context(), u, id); err != nil {
		d.settingsRefused(w, r, u, err)
		return
	}
	d.renderSettings(w, r, u, http.StatusOK, "Token revoked: programs using it are refused from now on.", nil)
}

type errString string

func (e errString) Error() string { return string(e) }
