package web

import (
	"errors"
	"net/http"
	"net/mail"
	"strconv"
	"strings"
	"time"

	"github.com/sitevault/sitevault/internal/sitevault"
)

// --- site settings: schedule, retention, notify, connector pairing ---

type siteSettingsData struct {
	Site                     sitevault.Site
	Start, Window, TimeZone  string
	Retention                sitevault.Retention
	Notify                   string
	Connection               string
	Paired                   bool
	PairedSince              string
	Code, CodeExpires, Error string
	Check                    *SiteCheck
	Fingerprint              string
}

func (d *Dashboard) siteSettingsData(r *http.Request, st sitevault.Site) siteSettingsData {
	data := siteSettingsData{Site: st, Start: st.Schedule.Start, TimeZone: st.Schedule.TimeZone,
		Window: shortWindow(st.Schedule.WindowOrDefault()), Retention: st.RetentionOrDefault(),
		Notify: strings.Join(st.Notify, "\n"), Connection: st.Location()}
	if data.Start == "" {
		data.Start = sitevault.DefaultStart
	}
	if data.TimeZone == "" {
		data.TimeZone = "UTC"
	}
	paired, since, _ := d.svc.Catalog().Paired(r.Context(), st.Name)
	data.Paired = paired
	if paired {
		data.PairedSince = since.UTC().Format("2 Jan 2006")
	}
	return data
}

func (d *Dashboard) siteSettingsPage(w http.ResponseWriter, r *http.Request, u *sitevault.User) {
	st, err := d.svc.Catalog().Site(r.Context(), r.PathValue("site"))
	if err != nil {
		d.failErr(w, r, u, err)
		return
	}
	d.render(w, r, http.StatusOK, "sitesettings", page{Title: st.Name + " · Settings", Nav: "sites", User: u, D: d.siteSettingsData(r, st)})
}

// siteSettingsForm saves the schedule, retention and notify addresses
// (action "save"), or makes a pairing code (action "pairing-code").
func (d *Dashboard) siteSettingsForm(w http.ResponseWriter, r *http.Request, u *sitevault.User) {
	ctx := r.Context()
	st, err := d.svc.Catalog().Site(ctx, r.PathValue("site"))
	if err != nil {
		d.failErr(w, r, u, err)
		return
	}
	if r.PostFormValue("action") == "pairing-code" {
		code, exp, err := d.svc.PairingCode(ctx, st.Name)
		if err != nil {
			d.failErr(w, r, u, err)
			return
		}
		data := d.siteSettingsData(r, st)
		data.Code, data.CodeExpires = code, exp.UTC().Format("15:04 MST")
		d.render(w, r, http.StatusOK, "sitesettings", page{Title: st.Name + " · Settings", Nav: "sites", User: u, D: data})
		return
	}
	if r.PostFormValue("action") == "test" {
		// The saved settings, checked as when the site was added; an
		// accepted host key is recorded (and the site saved with it).
		data := d.siteSettingsData(r, st)
		check, err := d.svc.CheckSite(ctx, &st, r.PostFormValue("accept_host_key"), true)
		var hk *HostKeyUnknown
		switch {
		case errors.As(err, &hk):
			data.Fingerprint, data.Error = hk.Fingerprint, "The SSH server's host key is not the one recorded or not known: compare the fingerprint with the server's before you accept it."
		case err != nil:
			data.Error = err.Error()
		default:
			data.Check = check
			if check.HostKey != "" && check.HostKey != data.Site.SSH.HostKeyFingerprint {
				if err := d.svc.SaveSiteSettings(ctx, st); err != nil {
					data.Error = err.Error()
				}
			}
		}
		status := http.StatusOK
		if data.Error != "" {
			status = http.StatusUnprocessableEntity
		}
		d.render(w, r, status, "sitesettings", page{Title: st.Name + " · Settings", Nav: "sites", User: u, D: data})
		return
	}
	bad := func(msg string) {
		data := d.siteSettingsData(r, st)
		data.Error = msg
		d.render(w, r, http.StatusUnprocessableEntity, "sitesettings", page{Title: st.Name + " · Settings", Nav: "sites", User: u, D: data})
	}
	sched := sitevault.Schedule{Off: r.PostFormValue("schedule_off") != "", Start: strings.TrimSpace(r.PostFormValue("start")),
		TimeZone: strings.TrimSpace(r.PostFormValue("time_zone"))}
	if sched.TimeZone == "UTC" {
		sched.TimeZone = ""
	}
	if v := strings.TrimSpace(r.PostFormValue("window")); v != "" {
		win, err := time.ParseDuration(v)
		if err != nil || win <= 0 || win > 24*time.Hour {
			bad("Window: give a duration between 1m and 24h, such as 2h or 90m.")
			return
		}
		sched.Window = win
	}
	var ret sitevault.Retention
	for name, dst := range map[string]*int{"keep_last": &ret.KeepLast, "keep_daily": &ret.KeepDaily,
		"keep_weekly": &ret.KeepWeekly, "keep_monthly": &ret.KeepMonthly} {
		n, err := strconv.Atoi(strings.TrimSpace(r.PostFormValue(name)))
		if err != nil || n < 0 || n > 100000 {
			bad("Retention: " + strings.ReplaceAll(name, "_", " ") + " must be a whole number, 0 or more.")
			return
		}
		*dst = n
	}
	var notify []string
	for _, a := range lines(r.PostFormValue("notify")) {
		addr, err := mail.ParseAddress(a)
		if err != nil || addr.Name != "" || addr.Address != a {
			bad("Notify: " + a + " is not an email address; give one address a line.")
			return
		}
		notify = append(notify, a)
	}
	st.Schedule, st.Retention, st.Notify = sched, &ret, notify
	if err := d.svc.SaveSiteSettings(ctx, st); err != nil {
		bad(err.Error())
		return
	}
	data := d.siteSettingsData(r, st)
	d.render(w, r, http.StatusOK, "sitesettings", page{Title: st.Name + " · Settings", Nav: "sites", User: u,
		Flash: "Saved.", D: data})
}

// shortWindow writes a window as people do: "2h", "90m", "1h30m" (not
// time.Duration's "2h0m0s"); the form reads it back with ParseDuration.
func shortWindow(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
