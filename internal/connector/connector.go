// Package connector is the service's side of the protocol that the
// WordPress plugin sitevault-connector speaks (docs/connector-protocol.md):
// pairing codes, request signatures and the event batches. It holds no
// state; the service keeps keys, nonces and events in the catalog.
package connector

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Headers of a signed request.
const (
	HeaderSite      = "X-Sitevault-Site"
	HeaderKey       = "X-Sitevault-Key"
	HeaderTimestamp = "X-Sitevault-Timestamp"
	HeaderNonce     = "X-Sitevault-Nonce"
	HeaderSignature = "X-Sitevault-Signature"
)

// Limits of the protocol.
const (
	// MaxSkew is how far a request's timestamp may be from the clock.
	MaxSkew = 300 * time.Second
	// NonceTTL is how long a nonce is remembered (longer than 2×MaxSkew).
	NonceTTL = 10 * time.Minute
	// MaxEvents and MaxBatchBytes bound a batch (before gzip).
	MaxEvents     = 200
	MaxBatchBytes = 256 << 10
	// MaxDetails bounds one event's details.
	MaxDetails = 8 << 10
	// KeyOverlap is how long a rotated key stays valid.
	KeyOverlap = 24 * time.Hour
	// PairingTTL is how long a pairing code is valid.
	PairingTTL = time.Hour
)

const codePrefix = "svp1."

// PairingCode is what an owner pastes into the plugin: the service's URL,
// the site and a one-time secret.
type PairingCode struct {
	URL    string `json:"u"`
	Site   string `json:"s"`
	Secret string `json:"c"`
}

// String encodes the code as one string.
func (p PairingCode) String() string {
	b, _ := json.Marshal(p)
	return codePrefix + base64.RawURLEncoding.EncodeToString(b)
}

// ErrBadCode means a string is not a pairing code.
var ErrBadCode = errors.New("not a sitevault pairing code")

// ParsePairingCode decodes a code made by String.
func ParsePairingCode(s string) (PairingCode, error) {
	var p PairingCode
	rest, ok := strings.CutPrefix(strings.TrimSpace(s), codePrefix)
	if !ok {
		return p, ErrBadCode
	}
	b, err := base64.RawURLEncoding.DecodeString(rest)
	if err != nil || json.Unmarshal(b, &p) != nil || p.Secret == "" || p.Site == "" {
		return PairingCode{}, ErrBadCode
	}
	if u, err := url.Parse(p.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return PairingCode{}, ErrBadCode
	}
	return p, nil
}

// Canonical is the string a request's signature covers.
func Canonical(method, path, timestamp, nonce string, body []byte) string {
	sum := sha256.Sum256(body)
	return strings.ToUpper(method) + "\n" + path + "\n" + timestamp + "\n" + nonce + "\n" + hex.EncodeToString(sum[:])
}

// Sign returns the signature of a request.
func Sign(key []byte, method, path, timestamp, nonce string, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(Canonical(method, path, timestamp, nonce, body)))
	return hex.EncodeToString(m.Sum(nil))
}

// Refusal says why a signed request was refused; the service logs it and
// answers only "refused".
type Refusal struct{ Reason string }

func (r *Refusal) Error() string { return "connector request refused: " + r.Reason }

func refuse(format string, args ...any) error { return &Refusal{Reason: fmt.Sprintf(format, args...)} }

var nonceRE = regexp.MustCompile(`^[A-Za-z0-9_-]{16,64}$`)

// CheckHeaders checks a request's timestamp and nonce format against now
// and returns the timestamp.
func CheckHeaders(timestamp, nonce string, now time.Time) (time.Time, error) {
	secs, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return time.Time{}, refuse("timestamp %q is not unix seconds", timestamp)
	}
	t := time.Unix(secs, 0)
	if d := now.Sub(t); d > MaxSkew || d < -MaxSkew {
		return time.Time{}, refuse("timestamp %s is %s from the service's clock (at most %s)", t.UTC().Format(time.RFC3339), d.Round(time.Second), MaxSkew)
	}
	if !nonceRE.MatchString(nonce) {
		return time.Time{}, refuse("nonce is not 16–64 characters of [A-Za-z0-9_-]")
	}
	return t, nil
}

// VerifySignature checks sig against the request with key.
func VerifySignature(key []byte, method, path, timestamp, nonce string, body []byte, sig string) bool {
	want := Sign(key, method, path, timestamp, nonce, body)
	return hmac.Equal([]byte(strings.ToLower(sig)), []byte(want))
}

// Actor is who did what an event says.
type Actor struct {
	Kind string `json:"kind"` // user, wordpress, wp-cli, cron
	ID   int64  `json:"id,omitempty"`
	Name string `json:"name,omitempty"`
	Role string `json:"role,omitempty"`
}

// Object is what an event is about.
type Object struct {
	Type string `json:"type,omitempty"`
	ID   string `json:"id,omitempty"`
	Name string `json:"name,omitempty"`
}

// Event is one event of a batch.
type Event struct {
	UUID    string          `json:"uuid"`
	Name    string          `json:"name"`
	Time    float64         `json:"time"`
	Actor   Actor           `json:"actor"`
	Object  Object          `json:"object"`
	Summary string          `json:"summary"`
	Details json.RawMessage `json:"details,omitempty"`
	Count   int             `json:"count,omitempty"`
	// DB is the database change the event describes (see Change); Validate
	// keeps only the valid changes.
	DB []Change `json:"db,omitempty"`
}

// Group is the part of an event's name before "__".
func (e Event) Group() string {
	g, _, _ := strings.Cut(e.Name, "__")
	return g
}

// Batch is the body of an events request.
type Batch struct {
	Events     []Event `json:"events"`
	Dropped    int     `json:"dropped"`
	FullBackup bool    `json:"full_backup"`
}

var (
	uuidRE = regexp.MustCompile(`^[0-9a-fA-F-]{32,36}$`)
	nameRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,30}__[a-z][a-z0-9_]{0,62}$`)
	kinds  = map[string]bool{"user": true, "wordpress": true, "wp-cli": true, "cron": true}
)

// Validate checks a batch against the protocol's limits; every text a
// dashboard shows is trimmed to its bound, anything malformed refuses the
// batch with what is wrong.
func (b *Batch) Validate() error {
	if len(b.Events) > MaxEvents {
		return fmt.Errorf("%d events in one batch (at most %d)", len(b.Events), MaxEvents)
	}
	if b.Dropped < 0 {
		return errors.New("dropped is negative")
	}
	for i := range b.Events {
		e := &b.Events[i]
		switch {
		case !uuidRE.MatchString(e.UUID):
			return fmt.Errorf("event %d: uuid %q is not a UUID", i, e.UUID)
		case !nameRE.MatchString(e.Name):
			return fmt.Errorf("event %d: name %q is not group__verb", i, e.Name)
		case e.Time <= 0 || e.Time > 1e11:
			return fmt.Errorf("event %d: time %v is not unix seconds", i, e.Time)
		case !kinds[e.Actor.Kind]:
			return fmt.Errorf("event %d: actor kind %q (user, wordpress, wp-cli or cron)", i, e.Actor.Kind)
		case len(e.Details) > MaxDetails:
			return fmt.Errorf("event %d: details of %d bytes (at most %d)", i, len(e.Details), MaxDetails)
		}
		if len(e.Details) > 0 {
			var obj map[string]any
			if json.Unmarshal(e.Details, &obj) != nil {
				return fmt.Errorf("event %d: details are not a JSON object", i)
			}
		}
		if e.Count < 1 {
			e.Count = 1
		}
		e.DB = ValidChanges(e.DB)
		e.Summary = clip(oneLine(e.Summary), 200)
		e.Actor.Name, e.Actor.Role = clip(e.Actor.Name, 100), clip(e.Actor.Role, 50)
		e.Object.Type, e.Object.ID, e.Object.Name = clip(e.Object.Type, 50), clip(e.Object.ID, 64), clip(oneLine(e.Object.Name), 200)
	}
	return nil
}

// EventTime is an event's time.
func (e Event) EventTime() time.Time {
	sec := int64(e.Time)
	return time.Unix(sec, int64((e.Time-float64(sec))*1e9)).UTC()
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
