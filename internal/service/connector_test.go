package service

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sitevault/sitevault/internal/catalog"
	"github.com/sitevault/sitevault/internal/connector"
	"github.com/sitevault/sitevault/internal/mysql"
	"github.com/sitevault/sitevault/internal/sitevault"
)

// plugin plays the connector's side of the protocol, as the PHP plugin
// does (the real plugin is tested against the real service end to end).
type plugin struct {
	t      *testing.T
	e      *env
	site   string
	keyID  string
	key    []byte
	events string
	rotate string
}

func (e *env) pairPlugin(site string) *plugin {
	e.t.Helper()
	owner := e.token(sitevault.RoleOwner)
	resp, body := e.do("POST", "/api/v1/sites/"+site+"/connector", owner, nil)
	var pc struct{ Code string }
	json.Unmarshal(body, &pc)
	if resp.StatusCode != http.StatusCreated || !strings.HasPrefix(pc.Code, "svp1.") {
		e.t.Fatalf("pairing code: %d %s", resp.StatusCode, body)
	}
	resp, body = e.do("POST", "/api/v1/connector/pair", "", pairRequest{Code: pc.Code, SiteURL: "http://blog.example", PluginVersion: "1.0.0"})
	var ans struct{ Site, Key_id, Key, Events_url, Rotate_url string }
	json.Unmarshal(body, &ans)
	if resp.StatusCode != 200 || ans.Site != site {
		e.t.Fatalf("pair: %d %s", resp.StatusCode, body)
	}
	// The same code twice is refused.
	if resp, _ := e.do("POST", "/api/v1/connector/pair", "", pairRequest{Code: pc.Code}); resp.StatusCode != http.StatusUnauthorized {
		e.t.Fatalf("a pairing code used twice: %d", resp.StatusCode)
	}
	key, _ := base64.StdEncoding.DecodeString(ans.Key)
	return &plugin{t: e.t, e: e, site: site, keyID: ans.Key_id, key: key, events: ans.Events_url, rotate: ans.Rotate_url}
}

// send signs and posts body to path; tweak may spoil the request.
func (p *plugin) send(path string, body []byte, tweak func(h http.Header)) (int, []byte) {
	p.t.Helper()
	ts := strconv.FormatInt(p.e.svc.cfg.Now().Unix(), 10)
	nonce := strings.ReplaceAll(uuid.NewString(), "-", "")
	req, _ := http.NewRequest("POST", p.e.srv.URL+path, bytes.NewReader(body))
	req.Header.Set(connector.HeaderSite, p.site)
	req.Header.Set(connector.HeaderKey, p.keyID)
	req.Header.Set(connector.HeaderTimestamp, ts)
	req.Header.Set(connector.HeaderNonce, nonce)
	req.Header.Set(connector.HeaderSignature, connector.Sign(p.key, "POST", path, ts, nonce, body))
	req.Header.Set("Content-Type", "application/json")
	if tweak != nil {
		tweak(req.Header)
		// A tweak of the timestamp or nonce is signed, so that only it is wrong.
		if req.Header.Get("X-Resign") != "" {
			req.Header.Set(connector.HeaderSignature, connector.Sign(p.key, "POST", path, req.Header.Get(connector.HeaderTimestamp),
				req.Header.Get(connector.HeaderNonce), body))
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func batch(events ...connector.Event) []byte {
	b, _ := json.Marshal(connector.Batch{Events: events})
	return b
}

func ev(name, summary string, at time.Time) connector.Event {
	return connector.Event{UUID: uuid.NewString(), Name: name, Time: float64(at.UnixMilli()) / 1000,
		Actor:   connector.Actor{Kind: "user", ID: 1, Name: "admin", Role: "administrator"},
		Object:  connector.Object{Type: "post", ID: "42", Name: "Hello"},
		Summary: summary, Details: json.RawMessage(`{"post_type":"post"}`)}
}

func TestConnectorIngestAndRefusals(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	e := newEnv(t, func(c *Config) {
		c.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
		c.QuietPeriod, c.MaxRealtimeDelay = 30*time.Second, 5*time.Minute
	})
	e.cat.Now = e.svc.cfg.Now // one clock, as in a real service
	ctx := context.Background()
	if _, err := e.cat.AddSite(ctx, sitevault.Site{Name: "blog", Kind: sitevault.Local, Path: "/srv/blog"}); err != nil {
		t.Fatal(err)
	}
	p := e.pairPlugin("blog")
	const path = "/api/v1/connector/events"
	published := ev("post__published", "Post “Hello” was published", now.Add(-time.Second))
	body := batch(published, ev("plugin__activated", "Plugin Akismet was activated", now))
	var counts struct{ Accepted, Duplicates int }
	code, ans := p.send(path, body, nil)
	json.Unmarshal(ans, &counts)
	if code != 200 || counts.Accepted != 2 || counts.Duplicates != 0 {
		t.Fatalf("first batch: %d %s", code, ans)
	}
	// The same events again (a retry whose answer was lost): stored once.
	code, ans = p.send(path, body, nil)
	json.Unmarshal(ans, &counts)
	if code != 200 || counts.Duplicates != 2 {
		t.Fatalf("the batch again: %d %s", code, ans)
	}
	// gzip on the wire.
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(batch(ev("comment__approved", "A comment was approved", now)))
	zw.Close()
	code, ans = p.send(path, gz.Bytes(), func(h http.Header) { h.Set("Content-Encoding", "gzip") })
	if code != 200 {
		t.Fatalf("gzip batch: %d %s", code, ans)
	}
	// Refusals: each says only "refused".
	refusals := map[string]func(h http.Header){
		"bad signature": func(h http.Header) { h.Set(connector.HeaderSignature, strings.Repeat("0", 64)) },
		"old timestamp": func(h http.Header) {
			h.Set(connector.HeaderTimestamp, fmt.Sprint(now.Add(-6*time.Minute).Unix()))
			h.Set("X-Resign", "1")
		},
		"future timestamp": func(h http.Header) {
			h.Set(connector.HeaderTimestamp, fmt.Sprint(now.Add(6*time.Minute).Unix()))
			h.Set("X-Resign", "1")
		},
		"unknown site": func(h http.Header) { h.Set(connector.HeaderSite, "shop") },
		"unknown key":  func(h http.Header) { h.Set(connector.HeaderKey, "k-nope") },
		"no headers":   func(h http.Header) { h.Del(connector.HeaderNonce); h.Del(connector.HeaderSignature) },
		"user token only": func(h http.Header) {
			h.Del(connector.HeaderSignature)
			h.Set("Authorization", "Bearer "+e.token(sitevault.RoleOwner))
		},
		"short nonce": func(h http.Header) { h.Set(connector.HeaderNonce, "abc"); h.Set("X-Resign", "1") },
	}
	for name, tweak := range refusals {
		code, ans := p.send(path, batch(ev("post__updated", "x", now)), tweak)
		var pr problem
		json.Unmarshal(ans, &pr)
		if code != http.StatusUnauthorized || pr.Code != "refused" || pr.Detail != "refused" {
			t.Errorf("%s: %d %s, want 401 refused with no reason", name, code, ans)
		}
	}
	// A replayed request (same nonce, same signature) is refused.
	var saved http.Header
	p.send(path, batch(ev("post__updated", "y", now)), func(h http.Header) { saved = h.Clone() })
	code, _ = p.send(path, batch(ev("post__updated", "y", now)), func(h http.Header) {
		for k, v := range saved {
			h[k] = v
		}
	})
	if code != http.StatusUnauthorized {
		t.Errorf("a replayed request: %d, want 401", code)
	}
	// Malformed batches are 400, oversized 413.
	if code, ans := p.send(path, []byte(`{"events":[{"uuid":"x","name":"Bad Name","time":1,"actor":{"kind":"user"}}]}`), nil); code != 400 {
		t.Errorf("a malformed event: %d %s", code, ans)
	}
	if code, _ := p.send(path, bytes.Repeat([]byte(" "), connector.MaxBatchBytes+100<<10), nil); code != http.StatusRequestEntityTooLarge {
		t.Errorf("an oversized batch: %d, want 413", code)
	}

	// The activity log: newest first, with counts per group; sitevault's own pairing event is there.
	owner := e.token(sitevault.RoleOwner)
	resp, lb := e.do("GET", "/api/v1/sites/blog/activity", owner, nil)
	var log struct {
		Events          []sitevault.Event
		Groups          map[string]int
		ConnectorPaired bool `json:"connector_paired"`
	}
	json.Unmarshal(lb, &log)
	if resp.StatusCode != 200 || log.Groups["post"] != 2 || log.Groups["plugin"] != 1 || log.Groups["comment"] != 1 ||
		log.Groups["sitevault"] != 1 || !log.ConnectorPaired {
		t.Fatalf("activity: %d %s", resp.StatusCode, lb)
	}
	resp, lb = e.do("GET", "/api/v1/sites/blog/activity?group=plugin,comment&q=akismet", owner, nil)
	json.Unmarshal(lb, &log)
	if len(log.Events) != 1 || log.Events[0].Name != "plugin__activated" || log.Events[0].Actor.Name != "admin" {
		t.Fatalf("filtered activity: %s", lb)
	}

	// Real time: the burst's first changes are backed up at once; later
	// ones wait for the quiet period, then are backed up once.
	if err := e.svc.scheduleOnce(ctx); err != nil {
		t.Fatal(err)
	}
	jobs, _ := e.cat.Jobs(ctx, catalog.JobFilter{Site: "blog"})
	if len(jobs) != 1 || jobs[0].Trigger != "realtime" || jobs[0].Kind != sitevault.JobBackup {
		t.Fatalf("a first burst: %v, want one real-time backup at once", jobs)
	}
	mu.Lock()
	now = now.Add(5 * time.Second)
	mu.Unlock()
	mu.Lock()
	later := now
	mu.Unlock()
	if code, ans := p.send(path, batch(ev("post__updated", "later", later)), nil); code != http.StatusOK {
		t.Fatalf("another event: %d %s", code, ans)
	}
	if err := e.svc.scheduleOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if jobs, _ := e.cat.Jobs(ctx, catalog.JobFilter{Site: "blog"}); len(jobs) != 1 {
		t.Fatalf("a backup was queued during the quiet period: %v", jobs)
	}
	mu.Lock()
	now = now.Add(31 * time.Second)
	mu.Unlock()
	if err := e.svc.scheduleOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if jobs, _ := e.cat.Jobs(ctx, catalog.JobFilter{Site: "blog"}); len(jobs) != 2 {
		t.Fatalf("after the quiet period: %v, want a second real-time backup", jobs)
	}
	if err := e.svc.scheduleOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if jobs, _ := e.cat.Jobs(ctx, catalog.JobFilter{Site: "blog"}); len(jobs) != 2 {
		t.Fatalf("the burst was backed up twice: %v", jobs)
	}
	// Restore to an event without a point yet: 409.
	resp, rb := e.do("POST", fmt.Sprintf("/api/v1/sites/blog/activity/%d/restore", log.Events[0].ID), owner, map[string]any{})
	if resp.StatusCode != http.StatusConflict || !strings.Contains(string(rb), "not_restorable_yet") {
		t.Fatalf("restore to an event without a point: %d %s", resp.StatusCode, rb)
	}

	// Key rotation: the new key works, the old one still does for a day.
	code, ans = p.send("/api/v1/connector/rotate", nil, nil)
	var rot struct{ Key_id, Key string }
	json.Unmarshal(ans, &rot)
	if code != 200 || rot.Key_id == "" || rot.Key_id == p.keyID {
		t.Fatalf("rotate: %d %s", code, ans)
	}
	if code, _ := p.send(path, batch(ev("post__updated", "z", now)), nil); code != 200 {
		t.Fatalf("the old key during the overlap: %d", code)
	}
	old := *p
	p.keyID = rot.Key_id
	p.key, _ = base64.StdEncoding.DecodeString(rot.Key)
	if code, _ := p.send(path, batch(ev("post__updated", "z2", now)), nil); code != 200 {
		t.Fatalf("the new key: %d", code)
	}
	mu.Lock()
	now = now.Add(25 * time.Hour)
	mu.Unlock()
	if code, _ := old.send(path, batch(ev("post__updated", "z3", now)), nil); code != http.StatusUnauthorized {
		t.Fatalf("the old key after the overlap: %d, want 401", code)
	}
}

// The database changes events carry are stored with them and handed to
// the site's next backup as hints, grouped and each value once; events a
// point holds already hint nothing; malformed changes are dropped.
func TestConnectorChangeHints(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	e := newEnv(t, func(c *Config) { c.Now = func() time.Time { return now } })
	e.cat.Now = e.svc.cfg.Now
	ctx := context.Background()
	if _, err := e.cat.AddSite(ctx, sitevault.Site{Name: "blog", Kind: sitevault.Local, Path: "/srv/blog"}); err != nil {
		t.Fatal(err)
	}
	p := e.pairPlugin("blog")
	const path = "/api/v1/connector/events"
	old := ev("post__updated", "before the last point", now.Add(-time.Hour))
	old.DB = []connector.Change{{Table: "wp_posts", Values: connector.ChangeValues{"7"}}}
	if code, ans := p.send(path, batch(old), nil); code != 200 {
		t.Fatalf("send: %d %s", code, ans)
	}
	if _, err := e.cat.SetEventsPoint(ctx, "blog", now.Add(-time.Minute), "0123abcd"); err != nil {
		t.Fatal(err)
	}
	a := ev("post__updated", "a", now)
	a.DB = []connector.Change{{Table: "wp_posts", Values: connector.ChangeValues{"42"}},
		{Table: "wp_postmeta", Column: "post_id", Values: connector.ChangeValues{"42"}}}
	b := ev("post__updated", "b", now)
	b.DB = []connector.Change{{Table: "wp_posts", Values: connector.ChangeValues{"43", "42"}},
		{Table: "wp_posts`; DROP TABLE wp_users; --", Values: connector.ChangeValues{"1"}}}
	c := ev("option__updated", "c", now)
	c.Details = json.RawMessage(`{"option":"blogname","db":[{"table":"wp_users","values":["1"]}]}`) // not the protocol's place
	if code, ans := p.send(path, batch(a, b, c), nil); code != 200 {
		t.Fatalf("send: %d %s", code, ans)
	}
	got := e.svc.changeHints(ctx, "blog")
	want := []mysql.Hint{{Table: "wp_posts", Values: []string{"42", "43"}}, {Table: "wp_postmeta", Column: "post_id", Values: []string{"42"}}}
	slices.SortFunc(got, func(x, y mysql.Hint) int { return strings.Compare(y.Table, x.Table) })
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("hints %v, want %v", got, want)
	}
	// The activity log shows the change with the event.
	owner := e.token(sitevault.RoleOwner)
	_, lb := e.do("GET", "/api/v1/sites/blog/activity", owner, nil)
	lb = []byte(strings.Join(strings.Fields(string(lb)), ""))
	if strings.Contains(string(lb), "wp_users") || !strings.Contains(string(lb), `"column":"post_id"`) || !strings.Contains(string(lb), `"option":"blogname"`) {
		t.Errorf("activity: a db the plugin put in its details kept, or the changes or details lost: %s", lb)
	}
	// Every event in a point: no hints.
	if _, err := e.cat.SetEventsPoint(ctx, "blog", now, "4567cdef"); err != nil {
		t.Fatal(err)
	}
	if got := e.svc.changeHints(ctx, "blog"); len(got) != 0 {
		t.Errorf("hints after the point: %v", got)
	}
	// Too many values for one table: left out.
	var evs []connector.Event
	for i := range mysql.MaxHintValues/connector.MaxChangeValues + 1 {
		x := ev("post__updated", "many", now.Add(time.Second))
		vals := make(connector.ChangeValues, connector.MaxChangeValues)
		for j := range vals {
			vals[j] = strconv.Itoa(i*connector.MaxChangeValues + j + 1)
		}
		x.DB = []connector.Change{{Table: "wp_postmeta", Values: vals}, {Table: "wp_posts", Values: connector.ChangeValues{"5"}}}
		evs = append(evs, x)
	}
	if code, ans := p.send(path, batch(evs...), nil); code != 200 {
		t.Fatalf("send: %d %s", code, ans)
	}
	if got := e.svc.changeHints(ctx, "blog"); fmt.Sprint(got) != fmt.Sprint([]mysql.Hint{{Table: "wp_posts", Values: []string{"5"}}}) {
		t.Errorf("hints with too many values: %v", got)
	}
}
