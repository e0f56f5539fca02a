package connector

import (
	"bytes"
	"encoding/json"
	"regexp"
)

// Change is the database change an event describes: rows of one table,
// named by their key (Column "") or by the value of one column
// (wp_postmeta's post_id, wp_options's option_name). The service passes
// the changes of the events a real-time backup covers to the database
// backup as hints (mysql.Hint): it looks at the named rows first, and at
// the whole changed segments when they do not explain a change. A change
// is only a hint: wrong or missing ones cost time, never exactness.
type Change struct {
	Table  string       `json:"table"`
	Column string       `json:"column,omitempty"`
	Values ChangeValues `json:"values"`
}

// ChangeValues are the values of a Change. The protocol sends them as
// strings; integers are accepted too (PHP's json_encode of an ID).
type ChangeValues []string

// UnmarshalJSON reads an array of strings and integers; anything else
// leaves the values empty (the change is then dropped, not the batch).
func (v *ChangeValues) UnmarshalJSON(b []byte) error {
	var raw []json.RawMessage
	if json.Unmarshal(b, &raw) != nil {
		*v = nil
		return nil
	}
	out := make([]string, 0, min(len(raw), MaxChangeValues+1))
	for _, r := range raw {
		r = bytes.TrimSpace(r)
		var s string
		switch {
		case json.Unmarshal(r, &s) == nil:
		case intRE.Match(r):
			s = string(r)
		default:
			*v = nil
			return nil
		}
		out = append(out, s)
		if len(out) > MaxChangeValues {
			break
		}
	}
	*v = out
	return nil
}

// Bounds of the changes of one event.
const (
	// MaxChanges bounds the changes of one event (a post saved: the post,
	// its meta, its terms…).
	MaxChanges = 8
	// MaxChangeValues bounds the values of one change.
	MaxChangeValues = 100
	// MaxChangeValueBytes bounds one value (wp_options's option_name is
	// at most 191 characters).
	MaxChangeValueBytes = 191 * 4
)

var (
	identRE = regexp.MustCompile(`^[A-Za-z0-9_$]{1,64}$`)
	intRE   = regexp.MustCompile(`^-?[0-9]{1,20}$`)
)

// ValidChanges returns the changes that keep to the protocol's bounds
// (identifiers of at most 64 characters of [A-Za-z0-9_$], at most
// MaxChangeValues values of at most MaxChangeValueBytes each, at most
// MaxChanges), dropping the others: they are hints, and a dropped hint
// only costs the backup time.
func ValidChanges(cs []Change) []Change {
	var out []Change
	for _, c := range cs {
		if len(out) == MaxChanges {
			break
		}
		if !identRE.MatchString(c.Table) || (c.Column != "" && !identRE.MatchString(c.Column)) ||
			len(c.Values) == 0 || len(c.Values) > MaxChangeValues {
			continue
		}
		ok := true
		for _, v := range c.Values {
			ok = ok && v != "" && len(v) <= MaxChangeValueBytes
		}
		if ok {
			out = append(out, c)
		}
	}
	return out
}

// WithChanges returns an event's details (a JSON object, or empty) with
// the changes set under "db" (removed when there are none): how the
// service stores them with the event.
func WithChanges(details json.RawMessage, cs []Change) json.RawMessage {
	obj := map[string]json.RawMessage{}
	if len(details) > 0 && json.Unmarshal(details, &obj) != nil {
		return details
	}
	_, had := obj["db"]
	if len(cs) == 0 && !had {
		return details
	}
	delete(obj, "db")
	if len(cs) > 0 {
		b, _ := json.Marshal(cs)
		obj["db"] = b
	}
	if len(obj) == 0 {
		return nil
	}
	b, _ := json.Marshal(obj)
	return b
}

// ChangesOf reads the changes stored in an event's details by
// WithChanges (hostile input again: they are checked anew).
func ChangesOf(details []byte) []Change {
	var d struct {
		DB []Change `json:"db"`
	}
	if json.Unmarshal(details, &d) != nil {
		return nil
	}
	return ValidChanges(d.DB)
}
