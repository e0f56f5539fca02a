package connector

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestPairingCodeRoundTrip(t *testing.T) {
	p := PairingCode{URL: "https://backup.example.org", Site: "blog", Secret: "s3cr3t"}
	s := p.String()
	if !strings.HasPrefix(s, "svp1.") || strings.ContainsAny(s, "+/=") {
		t.Fatalf("code %q: want svp1. and URL-safe base64 without padding", s)
	}
	got, err := ParsePairingCode("  " + s + "\n")
	if err != nil || got != p {
		t.Fatalf("parse = %+v, %v", got, err)
	}
	for _, bad := range []string{"", "svp1.", "svp2." + s[5:], "svp1.!!!", PairingCode{URL: "ftp://x", Site: "a", Secret: "b"}.String(),
		PairingCode{URL: "https://x", Site: "", Secret: "b"}.String()} {
		if _, err := ParsePairingCode(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestSignature(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	body := []byte(`{"events":[]}`)
	sig := Sign(key, "post", "/api/v1/connector/events", "1733300000", "nonce-0123456789ab", body)
	// The protocol's example, computed independently with sha256sum and
	// `openssl dgst -sha256 -hmac`.
	const wantCanonical = "POST\n/api/v1/connector/events\n1733300000\nnonce-0123456789ab\n" +
		"24de1c4a19c43ad41b013f13dcd858c17b0daa7f33a53f19913e5b11366d1c2e"
	if got := Canonical("post", "/api/v1/connector/events", "1733300000", "nonce-0123456789ab", body); got != wantCanonical {
		t.Fatalf("canonical string %q, want %q", got, wantCanonical)
	}
	if want := "50b42fbfe5204af62783eafb18520e9318d43dc0d0226dd16c72077cf17eb32e"; sig != want {
		t.Fatalf("signature %s, want %s", sig, want)
	}
	if !VerifySignature(key, "POST", "/api/v1/connector/events", "1733300000", "nonce-0123456789ab", body, strings.ToUpper(sig)) {
		t.Fatal("a good signature (in upper case) refused")
	}
	for name, f := range map[string]func() bool{
		"body": func() bool {
			return VerifySignature(key, "POST", "/api/v1/connector/events", "1733300000", "nonce-0123456789ab", []byte(`{}`), sig)
		},
		"path": func() bool {
			return VerifySignature(key, "POST", "/api/v1/connector/rotate", "1733300000", "nonce-0123456789ab", body, sig)
		},
		"time": func() bool {
			return VerifySignature(key, "POST", "/api/v1/connector/events", "1733300001", "nonce-0123456789ab", body, sig)
		},
		"nonce": func() bool {
			return VerifySignature(key, "POST", "/api/v1/connector/events", "1733300000", "nonce-0123456789ac", body, sig)
		},
		"key": func() bool {
			return VerifySignature([]byte("other"), "POST", "/api/v1/connector/events", "1733300000", "nonce-0123456789ab", body, sig)
		},
	} {
		if f() {
			t.Errorf("a changed %s still verifies", name)
		}
	}
}

func TestCheckHeaders(t *testing.T) {
	now := time.Unix(1733300000, 0)
	if _, err := CheckHeaders("1733300299", "abcdefghijklmnop", now); err != nil {
		t.Errorf("299 s ahead: %v", err)
	}
	for _, c := range [][2]string{{"1733299699", "abcdefghijklmnop"}, {"1733300301", "abcdefghijklmnop"}, {"x", "abcdefghijklmnop"},
		{"1733300000", "short"}, {"1733300000", "has spaces in it!!"}} {
		if _, err := CheckHeaders(c[0], c[1], now); err == nil {
			t.Errorf("%v accepted", c)
		}
	}
}

func TestBatchValidate(t *testing.T) {
	good := Event{UUID: "6f1c2a8e-4b1d-4c3e-9a7f-2d5e8b9c0a1f", Name: "post__published", Time: 1733300000.5,
		Actor: Actor{Kind: "user", Name: "admin"}, Summary: "Post\n“Hello”   published " + strings.Repeat("x", 300),
		Details: json.RawMessage(`{"id":1}`)}
	b := Batch{Events: []Event{good}}
	if err := b.Validate(); err != nil {
		t.Fatal(err)
	}
	e := b.Events[0]
	if e.Count != 1 || strings.Contains(e.Summary, "\n") || len([]rune(e.Summary)) != 200 || e.Group() != "post" {
		t.Errorf("normalised event: %+v", e)
	}
	if got := e.EventTime(); !got.Equal(time.Unix(1733300000, 5e8)) {
		t.Errorf("EventTime = %s", got)
	}
	bad := map[string]func(*Event){
		"uuid":    func(e *Event) { e.UUID = "1" },
		"name":    func(e *Event) { e.Name = "Post Published" },
		"time":    func(e *Event) { e.Time = 0 },
		"actor":   func(e *Event) { e.Actor.Kind = "admin" },
		"details": func(e *Event) { e.Details = json.RawMessage(`[1,2]`) },
		"large":   func(e *Event) { e.Details = json.RawMessage(`{"x":"` + strings.Repeat("a", MaxDetails) + `"}`) },
	}
	for name, spoil := range bad {
		e := good
		spoil(&e)
		b := Batch{Events: []Event{e}}
		if err := b.Validate(); err == nil {
			t.Errorf("a bad %s accepted", name)
		}
	}
	many := Batch{Events: make([]Event, MaxEvents+1)}
	if err := many.Validate(); err == nil {
		t.Error("too many events accepted")
	}
}

// An event's database changes are hints: a malformed one is dropped, the
// event kept.
func TestEventChanges(t *testing.T) {
	body := `{"events":[{"uuid":"6f1c2a8e-4b1d-4c3e-9a7f-2d5e8b9c0a1f","name":"post__updated","time":1733300000,
		"actor":{"kind":"user"},"summary":"s","db":[
		{"table":"wp_posts","values":[42,"43"]},
		{"table":"wp_postmeta","column":"post_id","values":["42"]},
		{"table":"wp_posts; DROP TABLE x","values":["1"]},
		{"table":"wp_posts","column":"a b","values":["1"]},
		{"table":"wp_posts","values":[{"x":1}]},
		{"table":"wp_posts","values":[1.5]},
		{"table":"wp_posts","values":[]},
		{"table":"wp_posts","values":[""]},
		{"table":"wp_posts","values":"1"},
		{"table":"wp_options","column":"option_name","values":["` + strings.Repeat("o", MaxChangeValueBytes+1) + `"]}]}]}`
	var b Batch
	if err := json.Unmarshal([]byte(body), &b); err != nil {
		t.Fatal(err)
	}
	if err := b.Validate(); err != nil {
		t.Fatal(err)
	}
	got := b.Events[0].DB
	want := []Change{{Table: "wp_posts", Values: ChangeValues{"42", "43"}}, {Table: "wp_postmeta", Column: "post_id", Values: ChangeValues{"42"}}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("changes %v, want %v", got, want)
	}
	// Too many values or changes.
	huge := make([]string, MaxChangeValues+1)
	for i := range huge {
		huge[i] = strconv.Itoa(i)
	}
	many := []Change{{Table: "wp_posts", Values: huge}}
	for range MaxChanges + 3 {
		many = append(many, want[0])
	}
	if got := ValidChanges(many); len(got) != MaxChanges || len(got[0].Values) != 2 {
		t.Errorf("%d changes kept (first with %d values), want %d", len(got), len(got[0].Values), MaxChanges)
	}
	// Stored in the details and read back; a "db" the plugin put in its
	// details is replaced.
	d := WithChanges(json.RawMessage(`{"post_type":"post","db":[{"table":"wp_users","values":["1"]}]}`), want)
	if got := ChangesOf(d); fmt.Sprint(got) != fmt.Sprint(want) || !strings.Contains(string(d), `"post_type":"post"`) {
		t.Errorf("details %s: changes %v", d, got)
	}
	if d := WithChanges(json.RawMessage(`{"db":[{"table":"wp_users","values":["1"]}]}`), nil); d != nil {
		t.Errorf("details without changes: %s", d)
	}
	if d := WithChanges(nil, nil); d != nil {
		t.Errorf("no details, no changes: %s", d)
	}
}
