package connectortest

import (
	"bytes"
	"compress/gzip"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// event is the protocol's EVENT.
type event struct {
	UUID  string  `json:"uuid"`
	Name  string  `json:"name"`
	Time  float64 `json:"time"`
	Actor struct {
		Kind string `json:"kind"`
		ID   int    `json:"id"`
		Name string `json:"name"`
		Role string `json:"role"`
	} `json:"actor"`
	Object struct {
		Type string `json:"type"`
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"object"`
	Summary string          `json:"summary"`
	Details json.RawMessage `json:"details"`
	Count   int             `json:"count"`
	// DB is the database change the event describes.
	DB []change `json:"db"`
}

// change is the protocol's CHANGE: rows of a table by key or by a column.
type change struct {
	Table  string   `json:"table"`
	Column string   `json:"column"`
	Values []string `json:"values"`
}

var identRE = regexp.MustCompile(`^[A-Za-z0-9_$]{1,64}$`)

// checkChanges checks an event's db against the protocol's bounds.
func checkChanges(db []change) error {
	if len(db) > 8 {
		return fmt.Errorf("%d changes (at most 8)", len(db))
	}
	for _, c := range db {
		if !identRE.MatchString(c.Table) || (c.Column != "" && !identRE.MatchString(c.Column)) || len(c.Values) == 0 || len(c.Values) > 100 {
			return fmt.Errorf("change %+v", c)
		}
	}
	return nil
}

// batch is one accepted POST to the events URL.
type batch struct {
	Events     []event `json:"events"`
	Dropped    int     `json:"dropped"`
	FullBackup bool    `json:"full_backup"`
	KeyID      string  // the X-Sitevault-Key that signed it
	Gzip       bool    // sent with Content-Encoding: gzip
}

// answer is what the receiver says to the next events request instead of 200.
type answer struct {
	Status     int
	RetryAfter string
	Delay      time.Duration // wait this long before answering (200 included)
}

var nonceRe = regexp.MustCompile(`^[A-Za-z0-9_-]{16,64}$`)

// receiver plays the service's side of the connector protocol.
type receiver struct {
	t    *testing.T
	srv  *httptest.Server
	site string

	mu        sync.Mutex
	codes     map[string]bool   // pairing secrets not yet used
	keys      map[string][]byte // key id → key
	nonces    map[string]bool
	batches   []batch
	requests  int      // requests to the events URL, answered or not
	refused   []string // why signed requests were refused (the service's log)
	pairs     []map[string]any
	rotations []string // key ids that signed rotate requests
	answers   []answer
	uuids     map[string]bool
	nextKey   int
}

func newReceiver(t *testing.T, site string) *receiver {
	r := &receiver{t: t, site: site, codes: map[string]bool{}, keys: map[string][]byte{},
		nonces: map[string]bool{}, uuids: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/connector/pair", r.pair)
	mux.HandleFunc("POST /api/v1/connector/events", r.events)
	mux.HandleFunc("POST /api/v1/connector/rotate", r.rotate)
	r.srv = httptest.NewServer(mux)
	t.Cleanup(r.srv.Close)
	return r
}

// code makes a pairing code as the protocol says.
func (r *receiver) code() string {
	secret := make([]byte, 16)
	rand.Read(secret)
	c := hex.EncodeToString(secret)
	r.mu.Lock()
	r.codes[c] = true
	r.mu.Unlock()
	j, _ := json.Marshal(map[string]string{"u": r.srv.URL, "s": r.site, "c": c})
	return "svp1." + base64.RawURLEncoding.EncodeToString(j)
}

func (r *receiver) newKey() (string, []byte) {
	key := make([]byte, 32)
	rand.Read(key)
	r.nextKey++
	id := "k" + strconv.Itoa(r.nextKey)
	r.keys[id] = key
	return id, key
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func (r *receiver) pair(w http.ResponseWriter, req *http.Request) {
	var body map[string]any
	if err := json.NewDecoder(req.Body).Decode(&body); err != nil {
		writeJSON(w, 400, map[string]string{"code": "bad_request"})
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pairs = append(r.pairs, body)
	code, _ := body["code"].(string)
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(code, "svp1."))
	var c struct{ U, S, C string }
	if err != nil || json.Unmarshal(raw, &c) != nil || !r.codes[c.C] || !strings.HasPrefix(code, "svp1.") {
		writeJSON(w, 401, map[string]string{"type": "about:blank", "title": "pairing refused", "code": "pairing_refused"})
		return
	}
	delete(r.codes, c.C)
	id, key := r.newKey()
	writeJSON(w, 200, map[string]string{"site": r.site, "key_id": id, "key": base64.StdEncoding.EncodeToString(key),
		"events_url": r.srv.URL + "/api/v1/connector/events", "rotate_url": r.srv.URL + "/api/v1/connector/rotate"})
}

// verify checks a signed request exactly as the protocol says; it returns
// the key id, or "" after answering 401 and logging why.
func (r *receiver) verify(w http.ResponseWriter, req *http.Request, body []byte) string {
	why := ""
	h := req.Header
	ts, err := strconv.ParseInt(h.Get("X-Sitevault-Timestamp"), 10, 64)
	nonce := h.Get("X-Sitevault-Nonce")
	key, known := r.keys[h.Get("X-Sitevault-Key")]
	switch {
	case h.Get("X-Sitevault-Site") != r.site || !known:
		why = "unknown site or key"
	case err != nil || time.Since(time.Unix(ts, 0)).Abs() > 300*time.Second:
		why = "timestamp outside ±300 s"
	case !nonceRe.MatchString(nonce):
		why = "malformed nonce"
	case r.nonces[nonce]:
		why = "replayed nonce"
	}
	if why == "" {
		sum := sha256.Sum256(body)
		canonical := req.Method + "\n" + req.URL.Path + "\n" + h.Get("X-Sitevault-Timestamp") + "\n" + nonce + "\n" + hex.EncodeToString(sum[:])
		mac := hmac.New(sha256.New, key)
		mac.Write([]byte(canonical))
		got, err := hex.DecodeString(h.Get("X-Sitevault-Signature"))
		if err != nil || h.Get("X-Sitevault-Signature") != strings.ToLower(h.Get("X-Sitevault-Signature")) || !hmac.Equal(got, mac.Sum(nil)) {
			why = "bad signature"
		}
	}
	if why != "" {
		r.refused = append(r.refused, why)
		writeJSON(w, 401, map[string]string{"code": "refused"})
		return ""
	}
	r.nonces[nonce] = true
	return h.Get("X-Sitevault-Key")
}

func (r *receiver) events(w http.ResponseWriter, req *http.Request) {
	raw, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	r.requests++
	keyID := r.verify(w, req, raw)
	if keyID == "" {
		r.mu.Unlock()
		return
	}
	var next answer
	if len(r.answers) > 0 {
		next, r.answers = r.answers[0], r.answers[1:]
	}
	r.mu.Unlock()
	if next.Delay > 0 {
		time.Sleep(next.Delay)
	}
	if next.Status != 0 && next.Status != 200 {
		if next.RetryAfter != "" {
			w.Header().Set("Retry-After", next.RetryAfter)
		}
		writeJSON(w, next.Status, map[string]string{"code": "test_answer"})
		return
	}
	body := raw
	gz := req.Header.Get("Content-Encoding") == "gzip"
	if gz {
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err == nil {
			body, err = io.ReadAll(zr)
		}
		if err != nil {
			writeJSON(w, 400, map[string]string{"code": "bad_gzip"})
			return
		}
	}
	if len(body) > 256<<10 {
		writeJSON(w, 413, map[string]string{"code": "too_large"})
		return
	}
	var b batch
	if err := json.Unmarshal(body, &b); err != nil || len(b.Events) > 200 {
		writeJSON(w, 400, map[string]string{"code": "bad_format"})
		return
	}
	b.KeyID, b.Gzip = keyID, gz
	dups := 0
	r.mu.Lock()
	for _, e := range b.Events {
		if err := checkEvent(e); err != nil {
			r.mu.Unlock()
			r.t.Errorf("event %s does not follow the protocol: %v", e.Name, err)
			writeJSON(w, 400, map[string]string{"code": "bad_event"})
			return
		}
		if r.uuids[e.UUID] {
			dups++
		}
		r.uuids[e.UUID] = true
	}
	r.batches = append(r.batches, b)
	r.mu.Unlock()
	writeJSON(w, 200, map[string]int{"accepted": len(b.Events), "duplicates": dups})
}

// checkEvent checks an EVENT's fields against the protocol.
func checkEvent(e event) error {
	var details map[string]any
	switch {
	case len(e.UUID) != 36:
		return fmt.Errorf("uuid %q is not 36 characters", e.UUID)
	case !strings.Contains(e.Name, "__"):
		return fmt.Errorf("name %q is not group__verb", e.Name)
	case e.Time < 1.7e9:
		return fmt.Errorf("time %v", e.Time)
	case e.Actor.Kind != "user" && e.Actor.Kind != "wordpress" && e.Actor.Kind != "wp-cli" && e.Actor.Kind != "cron":
		return fmt.Errorf("actor kind %q", e.Actor.Kind)
	case e.Object.Type == "":
		return fmt.Errorf("no object type")
	case e.Summary == "" || len([]rune(e.Summary)) > 200 || strings.ContainsAny(e.Summary, "\n\r"):
		return fmt.Errorf("summary %q is not one line of at most 200 characters", e.Summary)
	case json.Unmarshal(e.Details, &details) != nil || len(e.Details) > 8<<10:
		return fmt.Errorf("details %s are not a JSON object of at most 8 KiB", e.Details)
	case e.Count < 1:
		return fmt.Errorf("count %d", e.Count)
	case checkChanges(e.DB) != nil:
		return fmt.Errorf("db: %v", checkChanges(e.DB))
	}
	return nil
}

func (r *receiver) rotate(w http.ResponseWriter, req *http.Request) {
	raw, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.verify(w, req, raw)
	if old == "" {
		return
	}
	r.rotations = append(r.rotations, old)
	id, key := r.newKey() // the old key stays valid (the overlap)
	writeJSON(w, 200, map[string]string{"key_id": id, "key": base64.StdEncoding.EncodeToString(key)})
}

// queue makes the next events requests answer as given.
func (r *receiver) queue(a ...answer) {
	r.mu.Lock()
	r.answers = append(r.answers, a...)
	r.mu.Unlock()
}

// take returns the batches received since the last take.
func (r *receiver) take() []batch {
	r.mu.Lock()
	defer r.mu.Unlock()
	b := r.batches
	r.batches = nil
	return b
}

func (r *receiver) stats() (requests int, refused []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests, append([]string(nil), r.refused...)
}

// all returns every event in batches, in order.
func all(bs []batch) []event {
	var es []event
	for _, b := range bs {
		es = append(es, b.Events...)
	}
	return es
}

// find returns the events named name.
func find(es []event, name string) []event {
	var out []event
	for _, e := range es {
		if e.Name == name {
			out = append(out, e)
		}
	}
	return out
}

// names lists the events' names, for messages.
func names(es []event) []string {
	var n []string
	for _, e := range es {
		n = append(n, e.Name)
	}
	return n
}

// String keeps messages short.
func (b batch) String() string {
	return fmt.Sprintf("{%d events %v, dropped %d, full_backup %v, key %s}", len(b.Events), names(b.Events), b.Dropped, b.FullBackup, b.KeyID)
}

// TestReceiverRefuses shows that the receiver's check is the protocol's, so
// that TestConnector's "no request was refused" means something: a request
// signed as the protocol says is accepted once; a replayed nonce, a
// timestamp six minutes old, a bad signature, an unknown key or site are
// refused.
func TestReceiverRefuses(t *testing.T) {
	r := newReceiver(t, "shop")
	r.mu.Lock()
	id, key := r.newKey()
	r.mu.Unlock()
	body := []byte(`{"events":[],"dropped":0,"full_backup":false}`)
	sign := func(site, keyID string, key []byte, ts int64, nonce string, body []byte) *http.Request {
		sum := sha256.Sum256(body)
		canonical := "POST\n/api/v1/connector/events\n" + strconv.FormatInt(ts, 10) + "\n" + nonce + "\n" + hex.EncodeToString(sum[:])
		mac := hmac.New(sha256.New, key)
		mac.Write([]byte(canonical))
		req, _ := http.NewRequest("POST", r.srv.URL+"/api/v1/connector/events?x=1", bytes.NewReader(body))
		req.Header.Set("X-Sitevault-Site", site)
		req.Header.Set("X-Sitevault-Key", keyID)
		req.Header.Set("X-Sitevault-Timestamp", strconv.FormatInt(ts, 10))
		req.Header.Set("X-Sitevault-Nonce", nonce)
		req.Header.Set("X-Sitevault-Signature", hex.EncodeToString(mac.Sum(nil)))
		return req
	}
	status := func(req *http.Request) int {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	now := time.Now().Unix()
	other := make([]byte, 32)
	for _, c := range []struct {
		name string
		req  *http.Request
		want int
	}{
		{"good", sign("shop", id, key, now, "nonce-0123456789ab", body), 200},
		{"replayed nonce", sign("shop", id, key, now, "nonce-0123456789ab", body), 401},
		{"six minutes old", sign("shop", id, key, now-360, "nonce-0123456789ac", body), 401},
		{"bad signature", sign("shop", id, other, now, "nonce-0123456789ad", body), 401},
		{"unknown key", sign("shop", "k9", key, now, "nonce-0123456789ae", body), 401},
		{"unknown site", sign("blog", id, key, now, "nonce-0123456789af", body), 401},
		{"short nonce", sign("shop", id, key, now, "short", body), 401},
	} {
		if got := status(c.req); got != c.want {
			t.Errorf("%s: HTTP %d, want %d", c.name, got, c.want)
		}
	}
	// The body signed is the body sent: a changed body is a bad signature.
	req := sign("shop", id, key, now, "nonce-0123456789b0", body)
	req.Body = io.NopCloser(bytes.NewReader([]byte(`{"events":[],"dropped":1,"full_backup":false}`)))
	if got := status(req); got != 401 {
		t.Errorf("changed body: HTTP %d", got)
	}
	_, refused := r.stats()
	if len(refused) != 7 {
		t.Errorf("refusals logged: %v", refused)
	}
}
