package sitevault

import (
	"encoding/json"
	"time"
)

// Event is one entry of a site's activity log: something that happened on
// the site (reported by the connector plugin) or to it (sitevault's own
// backups, restores and downloads).
type Event struct {
	ID   int64  `json:"id"`
	Site string `json:"site"`
	// UUID identifies the event at its source, so that a batch sent twice
	// is stored once.
	UUID string    `json:"uuid"`
	Time time.Time `json:"time"`
	// Group and Name: Name is "group__verb" ("post__published").
	Group string `json:"group"`
	Name  string `json:"name"`
	Actor struct {
		Kind string `json:"kind"` // user, wordpress, wp-cli, cron, sitevault
		ID   int64  `json:"id,omitempty"`
		Name string `json:"name,omitempty"`
		Role string `json:"role,omitempty"`
	} `json:"actor"`
	Object struct {
		Type string `json:"type,omitempty"`
		ID   string `json:"id,omitempty"`
		Name string `json:"name,omitempty"`
	} `json:"object"`
	Summary string          `json:"summary"`
	Details json.RawMessage `json:"details,omitempty"`
	Count   int             `json:"count"`
	// Point is the restore point that holds the site as it was after the
	// event ("" until a backup after it finished): "restore to this event".
	Point string `json:"point,omitempty"`
}
