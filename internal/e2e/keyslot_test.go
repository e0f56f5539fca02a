package e2e_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// TestGeneratedKeyFileSlot: `sitevault init` on embedded defaults generates
// a random key file, and its slot is made with the cheapest KDF cost
// (2^10: a 256-bit random key needs no stretching), while a password added
// with `key add` (possibly typed) gets the default cost, 2^16. Both open
// the repository.
func TestGeneratedKeyFileSlot(t *testing.T) {
	home := t.TempDir()
	c := &cli{t: t, home: home, env: map[string]string{
		"SITEVAULT_HOME": filepath.Join(home, "sitevault"),
		"HOME":           home,
		"TZ":             "UTC",
	}}
	c.ok("init")
	keys := filepath.Join(home, "sitevault", "repo", "keys")
	if got := slotCosts(t, keys); len(got) != 1 || got[0] != 1<<10 {
		t.Fatalf("generated key file's slot: scrypt N %v, want [1024]", got)
	}
	c.env["SITEVAULT_NEW_PASSWORD"] = "a typed password, stretched"
	c.ok("key", "add")
	got := slotCosts(t, keys)
	if len(got) != 2 || got[0]+got[1] != 1<<10+1<<16 {
		t.Fatalf("after key add: scrypt N %v, want 1024 and 65536", got)
	}
	// The key file still opens it, and so does the added password.
	c.ok("snapshots")
	delete(c.env, "SITEVAULT_NEW_PASSWORD")
	c.env["SITEVAULT_PASSWORD"] = "a typed password, stretched"
	c.ok("snapshots")
	c.env["SITEVAULT_PASSWORD"] = "wrong"
	if r := c.run("snapshots"); r.code != 12 {
		t.Fatalf("wrong password: %v, want exit code 12", r)
	}
}

func slotCosts(t *testing.T, dir string) []int {
	t.Helper()
	ents, err := os.ReadDir(dir)
	must(t, err)
	var out []int
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		must(t, err)
		var kf struct {
			N int `json:"n"`
		}
		must(t, json.Unmarshal(b, &kf))
		out = append(out, kf.N)
	}
	return out
}
