package service

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/sitevault/sitevault/internal/catalog"
	"github.com/sitevault/sitevault/internal/connector"
	"github.com/sitevault/sitevault/internal/mysql"
	"github.com/sitevault/sitevault/internal/point"
	"github.com/sitevault/sitevault/internal/sitevault"
)

// The connector's side of the service (docs/connector-protocol.md):
// pairing, signed event batches, the activity log and the real-time
// backups that follow a burst of changes.

// PairingCode makes a one-time pairing code for site.
func (s *Service) PairingCode(ctx context.Context, site string) (string, time.Time, error) {
	return MakePairingCode(ctx, s.cat, site, s.cfg.BaseURL, s.cfg.Now())
}

// MakePairingCode makes a one-time pairing code, valid for an hour, for
// the plugin of site to pair with the service at baseURL (the API and
// `sitevault site connect` both call it).
func MakePairingCode(ctx context.Context, cat *catalog.Catalog, site, baseURL string, now time.Time) (string, time.Time, error) {
	if _, err := cat.Site(ctx, site); err != nil {
		return "", time.Time{}, err
	}
	secret := randomToken(24)
	expires := now.Add(connector.PairingTTL).Truncate(time.Second)
	if err := cat.AddPairingCode(ctx, site, secret, expires); err != nil {
		return "", time.Time{}, err
	}
	code := connector.PairingCode{URL: strings.TrimRight(baseURL, "/"), Site: site, Secret: secret}
	return code.String(), expires, nil
}

func (s *Service) createPairingCode(w http.ResponseWriter, r *http.Request) {
	code, expires, err := s.PairingCode(r.Context(), r.PathValue("site"))
	if err != nil {
		errorProblem(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"code": code, "expires": expires,
		"note": "paste it on the plugin's screen (Tools → sitevault) or define SITEVAULT_PAIRING_CODE in wp-config.php; it works once, for one hour"})
}

type pairRequest struct {
	Code          string `json:"code"`
	SiteURL       string `json:"site_url"`
	WPVersion     string `json:"wp_version"`
	PluginVersion string `json:"plugin_version"`
}

// newKey makes a signing key and its id.
func newKey() (id string, key []byte) {
	key = make([]byte, 32)
	rand.Read(key)
	return "k" + randomToken(9), key
}

func (s *Service) pair(w http.ResponseWriter, r *http.Request) {
	var req pairRequest
	if !readJSON(w, r, &req) {
		return
	}
	code, err := connector.ParsePairingCode(req.Code)
	if err == nil {
		err = s.cat.UsePairingCode(r.Context(), code.Site, code.Secret)
	}
	if err != nil {
		s.log.Warn("connector pairing refused", "err", err, "remote", clientIP(r))
		writeProblem(w, http.StatusUnauthorized, "pairing_refused", "the pairing code is unknown, used or expired; make a new one")
		return
	}
	id, key := newKey()
	if err := s.cat.AddConnectorKey(r.Context(), code.Site, id, key, time.Time{}); err != nil {
		errorProblem(w, err)
		return
	}
	s.ownEvent(r.Context(), code.Site, "sitevault__paired", "The sitevault connector was paired",
		map[string]any{"site_url": req.SiteURL, "wp_version": req.WPVersion, "plugin_version": req.PluginVersion})
	s.log.Info("connector paired", "site", code.Site, "site_url", req.SiteURL, "plugin", req.PluginVersion)
	base := strings.TrimRight(s.cfg.BaseURL, "/")
	writeJSON(w, http.StatusOK, map[string]string{"site": code.Site, "key_id": id, "key": base64.StdEncoding.EncodeToString(key),
		"events_url": base + "/api/v1/connector/events", "rotate_url": base + "/api/v1/connector/rotate"})
}

// refused answers a connector request that failed its checks: the
// answer says nothing, the log says why.
func (s *Service) refused(w http.ResponseWriter, r *http.Request, why error) {
	s.log.Warn("connector request refused", "site", r.Header.Get(connector.HeaderSite), "reason", why.Error(), "remote", clientIP(r))
	writeProblem(w, http.StatusUnauthorized, "refused", "refused")
}

// verifySigned reads and checks a signed request: it returns the site and
// the body, or has answered.
func (s *Service) verifySigned(w http.ResponseWriter, r *http.Request) (string, []byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, connector.MaxBatchBytes+64<<10))
	if err != nil {
		writeProblem(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("a batch may hold at most %d bytes", connector.MaxBatchBytes))
		return "", nil, false
	}
	h := r.Header
	site, keyID, ts, nonce, sig := h.Get(connector.HeaderSite), h.Get(connector.HeaderKey), h.Get(connector.HeaderTimestamp),
		h.Get(connector.HeaderNonce), h.Get(connector.HeaderSignature)
	if _, err := connector.CheckHeaders(ts, nonce, s.cfg.Now()); err != nil {
		s.refused(w, r, err)
		return "", nil, false
	}
	key, err := s.cat.ConnectorKey(r.Context(), site, keyID)
	if err != nil {
		s.refused(w, r, fmt.Errorf("unknown site or key %q: %v", keyID, err))
		return "", nil, false
	}
	if !connector.VerifySignature(key.Secret, r.Method, r.URL.Path, ts, nonce, body, sig) {
		s.refused(w, r, errors.New("bad signature"))
		return "", nil, false
	}
	fresh, err := s.cat.UseNonce(r.Context(), site, nonce, connector.NonceTTL)
	if err != nil {
		errorProblem(w, err)
		return "", nil, false
	}
	if !fresh {
		s.refused(w, r, errors.New("replayed nonce"))
		return "", nil, false
	}
	return site, body, true
}

func (s *Service) ingest(w http.ResponseWriter, r *http.Request) {
	site, body, ok := s.verifySigned(w, r)
	if !ok {
		return
	}
	if strings.EqualFold(r.Header.Get("Content-Encoding"), "gzip") {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err == nil {
			body, err = io.ReadAll(io.LimitReader(zr, connector.MaxBatchBytes+1))
		}
		if err != nil {
			writeProblem(w, http.StatusBadRequest, "bad_request", "the body is not gzip")
			return
		}
		if len(body) > connector.MaxBatchBytes {
			writeProblem(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("a batch may hold at most %d bytes", connector.MaxBatchBytes))
			return
		}
	}
	var b connector.Batch
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&b); err != nil {
		writeProblem(w, http.StatusBadRequest, "bad_request", "the batch is not the protocol's JSON: "+err.Error())
		return
	}
	if err := b.Validate(); err != nil {
		writeProblem(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	events := make([]sitevault.Event, 0, len(b.Events))
	var latest time.Time
	for _, e := range b.Events {
		ev := sitevault.Event{UUID: strings.ToLower(e.UUID), Name: e.Name, Group: e.Group(), Time: e.EventTime(),
			Summary: e.Summary, Details: connector.WithChanges(e.Details, e.DB), Count: e.Count}
		ev.Actor.Kind, ev.Actor.ID, ev.Actor.Name, ev.Actor.Role = e.Actor.Kind, e.Actor.ID, e.Actor.Name, e.Actor.Role
		ev.Object.Type, ev.Object.ID, ev.Object.Name = e.Object.Type, e.Object.ID, e.Object.Name
		events = append(events, ev)
		if ev.Time.After(latest) {
			latest = ev.Time
		}
	}
	added, err := s.cat.AddEvents(r.Context(), site, events)
	if err != nil {
		errorProblem(w, err)
		return
	}
	now := s.cfg.Now()
	if added > 0 {
		// The burst is timed by when changes arrive, not by the site's clock.
		if err := s.cat.MarkDirty(r.Context(), site, now); err != nil {
			s.log.Error("mark site changed", "site", site, "err", err)
		}
		select {
		case s.changed <- struct{}{}:
		default: // a round is already due
		}
	}
	if b.FullBackup {
		s.log.Warn("connector asks for a full backup", "site", site, "dropped", b.Dropped)
		_, err := s.Enqueue(r.Context(), catalog.NewJob{Kind: sitevault.JobBackup, Site: site, Trigger: "realtime",
			Params: BackupParams{Trigger: "realtime"}, CreatedBy: "connector"})
		if err != nil {
			s.log.Error("queue the full backup", "site", site, "err", err)
		}
	}
	writeJSON(w, http.StatusOK, map[string]int{"accepted": len(events), "duplicates": len(events) - added})
}

func (s *Service) rotateKey(w http.ResponseWriter, r *http.Request) {
	site, _, ok := s.verifySigned(w, r)
	if !ok {
		return
	}
	id, key := newKey()
	if err := s.cat.AddConnectorKey(r.Context(), site, id, key, s.cfg.Now().Add(connector.KeyOverlap)); err != nil {
		errorProblem(w, err)
		return
	}
	s.log.Info("connector key rotated", "site", site, "key_id", id)
	writeJSON(w, http.StatusOK, map[string]string{"key_id": id, "key": base64.StdEncoding.EncodeToString(key)})
}

// ownEvent records one of sitevault's own events in a site's log.
func (s *Service) ownEvent(ctx context.Context, site, name, summary string, details any) {
	e := sitevault.Event{UUID: uuid.NewString(), Name: name, Time: s.cfg.Now().UTC(), Summary: summary, Count: 1}
	e.Group, _, _ = strings.Cut(name, "__")
	e.Actor.Kind, e.Actor.Name = "sitevault", "sitevault"
	if details != nil {
		e.Details, _ = json.Marshal(details)
	}
	if _, err := s.cat.AddEvents(ctx, site, []sitevault.Event{e}); err != nil {
		s.log.Error("record an event", "site", site, "event", name, "err", err)
	}
}

// scheduleRealtime queues a backup of every site whose burst of changes
// is over.
func (s *Service) scheduleRealtime(ctx context.Context, now time.Time) (int, error) {
	dirty, err := s.cat.DirtySites(ctx, now, s.cfg.QuietPeriod, s.cfg.MaxRealtimeDelay, 500)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, d := range dirty {
		j, err := s.cat.StartRealtime(ctx, d, now.Add(s.cfg.QuietPeriod), catalog.NewJob{Kind: sitevault.JobBackup, Site: d.Site, Trigger: "realtime",
			MaxAttempts: s.cfg.BackupAttempts, Params: BackupParams{Trigger: "realtime"}})
		if err != nil {
			return n, err
		}
		if j != nil {
			n++
			s.log.Info("real-time backup queued", "site", d.Site, "job", j.ID, "changes_since", d.Since)
		}
	}
	return n, nil
}

// --- the activity log API ---

func (s *Service) listActivity(w http.ResponseWriter, r *http.Request) {
	st, ok := s.site(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	f := catalog.ActivityFilter{Site: st.Name, Actor: q.Get("actor"), Text: q.Get("q")}
	loc, err := st.Schedule.Location()
	if err != nil {
		loc = time.UTC
	}
	if tz := q.Get("tz"); tz != "" {
		if l, err := time.LoadLocation(tz); err == nil {
			loc = l
		}
	}
	for name, dst := range map[string]*time.Time{"from": &f.From, "to": &f.To} {
		v := q.Get(name)
		if v == "" {
			continue
		}
		t, err := parseWhen(v, loc)
		if err != nil {
			writeProblem(w, http.StatusBadRequest, "bad_request", name+": "+err.Error())
			return
		}
		if name == "to" && len(v) == len(time.DateOnly) {
			t = t.AddDate(0, 0, 1) // a day is included whole
		}
		*dst = t
	}
	for _, g := range q["group"] {
		for _, part := range strings.Split(g, ",") {
			if part != "" {
				f.Groups = append(f.Groups, part)
			}
		}
	}
	f.Before, _ = strconv.ParseInt(q.Get("before"), 10, 64)
	f.Limit, _ = strconv.Atoi(q.Get("limit"))
	events, groups, err := s.cat.Activity(r.Context(), f)
	if err != nil {
		errorProblem(w, err)
		return
	}
	paired, since, _ := s.cat.Paired(r.Context(), st.Name)
	out := map[string]any{"events": events, "groups": groups, "time_zone": loc.String(), "connector_paired": paired}
	if paired {
		out["connector_paired_since"] = since
	}
	if len(events) > 0 {
		out["next_before"] = events[len(events)-1].ID
	}
	writeJSON(w, http.StatusOK, out)
}

// parseWhen reads a day (YYYY-MM-DD, in loc) or an RFC 3339 time.
func parseWhen(v string, loc *time.Location) (time.Time, error) {
	if len(v) == len(time.DateOnly) {
		return point.ParseDay(v, loc)
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither YYYY-MM-DD nor an RFC 3339 time", v)
	}
	return t, nil
}

// restoreToEvent restores the point that holds the site as it was after
// the event; undoEvent the last backup point before it.
func (s *Service) restoreToEvent(w http.ResponseWriter, r *http.Request) { s.eventRestore(w, r, false) }
func (s *Service) undoEvent(w http.ResponseWriter, r *http.Request)      { s.eventRestore(w, r, true) }

func (s *Service) eventRestore(w http.ResponseWriter, r *http.Request, before bool) {
	st, ok := s.site(w, r)
	if !ok {
		return
	}
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	e, err := s.cat.ActivityEvent(r.Context(), st.Name, id)
	if err != nil {
		errorProblem(w, err)
		return
	}
	var req struct {
		Items  []string `json:"items"`
		Paths  []string `json:"paths"`
		Tables []string `json:"tables"`
	}
	if !readJSON(w, r, &req) {
		return
	}
	target, err := s.eventTarget(r.Context(), st.Name, e, before)
	if err != nil {
		requestProblem(w, err)
		return
	}
	params := RestoreParams{Point: target, Items: req.Items, Paths: req.Paths, Tables: req.Tables}
	s.enqueueFor(w, r, catalog.NewJob{Kind: sitevault.JobRestore, Site: st.Name, Params: params})
}

// eventTarget is the point that restores the site to just after event e,
// or (before) the last backup point older than it: what "restore to this
// event" and "undo this event" restore. The API and the dashboard use it.
func (s *Service) eventTarget(ctx context.Context, site string, e sitevault.Event, before bool) (string, error) {
	if !before {
		if e.Point == "" {
			return "", &requestError{http.StatusConflict, "not_restorable_yet", errors.New("no restore point holds this event yet; the next backup will")}
		}
		return e.Point, nil
	}
	points, err := point.List(ctx, s.repo, site)
	if err != nil {
		return "", err
	}
	var target string
	for _, sn := range points { // oldest first
		if point.IsBackup(sn) && sn.Time.Before(e.Time) {
			target = sn.ID.String()
		}
	}
	if target == "" {
		return "", &requestError{http.StatusConflict, "no_point_before", errors.New("no backup point of the site is older than this event: there is nothing to go back to")}
	}
	return target, nil
}

// maxHintEvents bounds the events whose database changes a backup reads
// as hints: past it the oldest changes go unhinted (their segments are
// looked at row by row, as without hints).
const maxHintEvents = 5000

// changeHints collects the database changes of the events the site's
// next point covers (those no point holds yet) as hints for its database
// backup: grouped by table and column, each value once. A table and
// column with more than mysql.MaxHintValues values is left out (reading
// that many rows by key saves nothing); the database backup checks the
// rest against the site's tables and column types (see mysql.Hint).
func (s *Service) changeHints(ctx context.Context, site string) []mysql.Hint {
	details, err := s.cat.PendingDetails(ctx, site, maxHintEvents)
	if err != nil {
		s.log.Warn("read the changes of the events", "site", site, "err", err)
		return nil
	}
	type target struct{ table, column string }
	groups := map[target]map[string]bool{}
	var order []target
	for _, d := range details {
		for _, c := range connector.ChangesOf(d) {
			k := target{c.Table, c.Column}
			vals := groups[k]
			if vals == nil {
				if len(groups) >= mysql.MaxHintTables*4 {
					continue
				}
				vals = map[string]bool{}
				groups[k] = vals
				order = append(order, k)
			}
			for _, v := range c.Values {
				if len(vals) <= mysql.MaxHintValues {
					vals[v] = true
				}
			}
		}
	}
	var hints []mysql.Hint
	for _, k := range order {
		vals := groups[k]
		if len(vals) > mysql.MaxHintValues {
			s.log.Info("too many changed rows to hint", "site", site, "table", k.table, "column", k.column)
			continue
		}
		h := mysql.Hint{Table: k.table, Column: k.column, Values: make([]string, 0, len(vals))}
		for v := range vals {
			h.Values = append(h.Values, v)
		}
		slices.Sort(h.Values)
		hints = append(hints, h)
	}
	return hints
}
