package repository

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sitevault/sitevault/internal/backend"
	"github.com/sitevault/sitevault/internal/backend/mem"
)

func keyNames(tb testing.TB, be backend.Backend) []string {
	tb.Helper()
	var names []string
	_ = be.List(context.Background(), backend.KeyFile, func(fi backend.FileInfo) error { names = append(names, fi.Name); return nil })
	return names
}

func replaceFile(tb testing.TB, be backend.Backend, h backend.Handle, b []byte) {
	tb.Helper()
	if h.Type == backend.ConfigFile {
		_ = be.Remove(context.Background(), h) // backends never replace a config
	}
	if err := be.Save(context.Background(), h, bytes.NewReader(b), int64(len(b))); err != nil {
		tb.Fatal(err)
	}
}

// renameKeyFile replaces key slot name by b, stored under its own SHA-256
// as a writer of the repository could.
func renameKeyFile(tb testing.TB, be backend.Backend, name string, b []byte) string {
	tb.Helper()
	if err := be.Remove(context.Background(), backend.Handle{Type: backend.KeyFile, Name: name}); err != nil {
		tb.Fatal(err)
	}
	n, err := saveKeyFile(context.Background(), be, b)
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

// editKeyFile rewrites the JSON fields of key slot name (stored under its
// new SHA-256) and returns the new name.
func editKeyFile(tb testing.TB, be backend.Backend, name string, edit func(map[string]any)) string {
	tb.Helper()
	b, err := loadFile(context.Background(), be, backend.Handle{Type: backend.KeyFile, Name: name})
	if err != nil {
		tb.Fatal(err)
	}
	var kf map[string]any
	if err := json.Unmarshal(b, &kf); err != nil {
		tb.Fatal(err)
	}
	edit(kf)
	nb, err := json.Marshal(kf)
	if err != nil {
		tb.Fatal(err)
	}
	return renameKeyFile(tb, be, name, nb)
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name    string
		damage  func(tb testing.TB, be *mem.Backend)
		pass    string
		want    error
		mention string
	}{
		{"ok", func(testing.TB, *mem.Backend) {}, TestPassword, nil, ""},
		{"wrong password", func(testing.TB, *mem.Backend) {}, "nope", ErrWrongPassword, ""},
		{"no repository", func(tb testing.TB, be *mem.Backend) {
			_ = be.Remove(ctx, backend.Handle{Type: backend.ConfigFile})
		}, TestPassword, ErrNotRepository, ""},
		{"newer format", func(tb testing.TB, be *mem.Backend) {
			replaceFile(tb, be, backend.Handle{Type: backend.ConfigFile}, []byte(`{"version":3,"id":"`+strings.Repeat("ab", 32)+`","params":"AAAA"}`))
		}, TestPassword, ErrNewerFormat, ""},
		{"config not json", func(tb testing.TB, be *mem.Backend) {
			replaceFile(tb, be, backend.Handle{Type: backend.ConfigFile}, []byte("garbage"))
		}, TestPassword, ErrDamaged, "config"},
		{"config params flipped", func(tb testing.TB, be *mem.Backend) {
			b, _ := loadFile(ctx, be, backend.Handle{Type: backend.ConfigFile})
			var cf configFile
			_ = json.Unmarshal(b, &cf)
			cf.Params[len(cf.Params)-1] ^= 1
			nb, _ := json.Marshal(cf)
			replaceFile(tb, be, backend.Handle{Type: backend.ConfigFile}, nb)
		}, TestPassword, ErrDamaged, "config"},
		{"key file not json", func(tb testing.TB, be *mem.Backend) {
			replaceFile(tb, be, backend.Handle{Type: backend.KeyFile, Name: keyNames(tb, be)[0]}, []byte("{not json"))
		}, TestPassword, ErrDamaged, "keys/"},
		{"key file hostile kdf", func(tb testing.TB, be *mem.Backend) {
			h := backend.Handle{Type: backend.KeyFile, Name: keyNames(tb, be)[0]}
			b, _ := loadFile(ctx, be, h)
			var kf map[string]any
			_ = json.Unmarshal(b, &kf)
			kf["n"] = 1 << 30
			nb, _ := json.Marshal(kf)
			renameKeyFile(tb, be, h.Name, nb)
		}, TestPassword, ErrDamaged, "out of range"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			be := mem.New()
			TestRepositoryWith(t, be, Options{})
			tc.damage(t, be)
			r, err := Open(ctx, be, tc.pass, Options{})
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				r.Close()
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("Open = %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.mention) {
				t.Errorf("error %q does not mention %q", err, tc.mention)
			}
		})
	}
}

func TestInitRefusesExisting(t *testing.T) {
	be := mem.New()
	TestRepositoryWith(t, be, Options{})
	_, err := Init(context.Background(), be, "x", InitOptions{ScryptN: TestScryptN})
	if !errors.Is(err, ErrRepositoryExists) {
		t.Fatalf("second Init = %v, want ErrRepositoryExists", err)
	}
}

func TestKeys(t *testing.T) {
	ctx := context.Background()
	be := mem.New()
	r := TestRepositoryWith(t, be, Options{})
	keys, err := r.Keys(ctx)
	if err != nil || len(keys) != 1 || !keys[0].Current {
		t.Fatalf("Keys = %+v, %v", keys, err)
	}
	if err := r.RemoveKey(ctx, keys[0].ID); !errors.Is(err, ErrLastKey) {
		t.Fatalf("removing the last key: %v, want ErrLastKey", err)
	}
	k2, err := r.AddKey(ctx, "second", "laptop")
	if err != nil || k2.Label != "laptop" || k2.Current {
		t.Fatalf("AddKey = %+v, %v", k2, err)
	}
	for _, pw := range []string{TestPassword, "second"} {
		r2, err := Open(ctx, be, pw, Options{})
		if err != nil {
			t.Fatalf("open with %q: %v", pw, err)
		}
		if r2.ID() != r.ID() {
			t.Error("another repository id")
		}
	}
	r2, _ := Open(ctx, be, "second", Options{})
	keys, _ = r2.Keys(ctx)
	if len(keys) != 2 {
		t.Fatalf("%d keys", len(keys))
	}
	for _, k := range keys {
		if k.Current != (k.ID == k2.ID) {
			t.Errorf("key %s current=%v", k.ID[:8], k.Current)
		}
	}
	if err := r2.RemoveKey(ctx, keys[0].ID[:8]); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, be, TestPassword, Options{}); !errors.Is(err, ErrWrongPassword) {
		t.Errorf("removed key still opens: %v", err)
	}
	// a key slot another password opens does not hide a damaged one
	replaceFile(t, be, backend.Handle{Type: backend.KeyFile, Name: strings.Repeat("0", 64)}, []byte("junk"))
	if _, err := Open(ctx, be, "second", Options{}); err != nil {
		t.Errorf("a damaged extra slot prevents opening: %v", err)
	}
	_, err = Open(ctx, be, "third", Options{})
	if !errors.Is(err, ErrWrongPassword) || !errors.Is(err, ErrDamaged) {
		t.Errorf("wrong password with a damaged slot: %v", err)
	}
}

// TestKeyFileKDFBounds: a key slot may not ask for more than 256 MiB of
// scrypt memory or 8 times the default work; parameters the old bounds let
// through (4 GiB, 16 times the work) are refused before any scrypt runs,
// with an error naming the key file.
func TestKeyFileKDFBounds(t *testing.T) {
	mk := &masterKey{}
	for _, c := range []struct{ n, r, p int }{
		{1 << 20, 32, 1}, // 4 GiB
		{1 << 22, 8, 1},  // 4 GiB
		{1 << 16, 8, 16}, // 16 times the work
		{1 << 20, 8, 1},  // 1 GiB
		{1 << 4, 8, 1},   // too weak
	} {
		kf := &keyFile{Version: keyFileVersion, KDF: "scrypt", N: c.n, R: c.r, P: c.p, Salt: make([]byte, 32), Data: make([]byte, 96+sealOverhead), MetaMAC: make([]byte, 32)}
		b, err := json.Marshal(kf)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := parseKeyFile(b); !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), "out of range") {
			t.Errorf("N=%d r=%d p=%d: parse = %v, want out of range", c.n, c.r, c.p, err)
		}
	}
	if err := validKDF("scrypt", 1<<18, 8, 1); err != nil {
		t.Errorf("256 MiB, 4 times the work: %v", err)
	}
	if _, _, err := newKeyFile(mk, "pw", "", keyFileVersion, 1<<21, 8, 1, time.Now()); err == nil {
		t.Error("newKeyFile made a slot over the bounds")
	}

	// At Open: the hostile slot is named in the error, and does not stop
	// the good slot from opening.
	ctx := context.Background()
	be := mem.New()
	TestRepositoryWith(t, be, Options{})
	good := keyNames(t, be)[0]
	b, _ := loadFile(ctx, be, backend.Handle{Type: backend.KeyFile, Name: good})
	var kf map[string]any
	_ = json.Unmarshal(b, &kf)
	kf["n"], kf["r"] = 1<<20, 32
	nb, _ := json.Marshal(kf)
	bad, err := saveKeyFile(ctx, be, nb)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, be, TestPassword, Options{}); err != nil {
		t.Fatalf("a hostile extra slot prevents opening: %v", err)
	}
	_, err = Open(ctx, be, "other", Options{})
	if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), "keys/"+bad) || !strings.Contains(err.Error(), "4096 MiB") {
		t.Errorf("Open with a hostile slot = %v, want it named with its cost", err)
	}
}

// TestKeySlotMetadataAuthenticated: changing a slot's label, hostname,
// creation time or KDF parameters without the password makes the slot
// damaged, not silently different.
func TestKeySlotMetadataAuthenticated(t *testing.T) {
	ctx := context.Background()
	for field, v := range map[string]any{"label": "evil", "hostname": "evil-host", "created": "2001-01-01T00:00:00Z", "username": "mallory"} {
		t.Run(field, func(t *testing.T) {
			be := mem.New()
			TestRepositoryWith(t, be, Options{})
			name := editKeyFile(t, be, keyNames(t, be)[0], func(m map[string]any) { m[field] = v })
			_, err := Open(ctx, be, TestPassword, Options{})
			if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), "keys/"+name) || !strings.Contains(err.Error(), "metadata") {
				t.Fatalf("Open after changing %s = %v, want a damaged slot named", field, err)
			}
		})
	}
	// a version 1 slot (no MAC) is refused in a format 2 repository
	be := mem.New()
	TestRepositoryWith(t, be, Options{})
	editKeyFile(t, be, keyNames(t, be)[0], func(m map[string]any) { m["version"] = 1; delete(m, "meta_mac") })
	if _, err := Open(ctx, be, TestPassword, Options{}); !errors.Is(err, ErrDamaged) {
		t.Fatalf("downgraded slot: Open = %v, want ErrDamaged", err)
	}
}

// TestKeyFileNameChecked: a key file must be stored under the SHA-256 of
// its bytes.
func TestKeyFileNameChecked(t *testing.T) {
	ctx := context.Background()
	be := mem.New()
	r := TestRepositoryWith(t, be, Options{})
	name := keyNames(t, be)[0]
	b, _ := loadFile(ctx, be, backend.Handle{Type: backend.KeyFile, Name: name})
	wrong := strings.Repeat("ab", 32)
	replaceFile(t, be, backend.Handle{Type: backend.KeyFile, Name: wrong}, b)
	if err := be.Remove(ctx, backend.Handle{Type: backend.KeyFile, Name: name}); err != nil {
		t.Fatal(err)
	}
	_, err := Open(ctx, be, TestPassword, Options{})
	if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), "keys/"+wrong) || !strings.Contains(err.Error(), "SHA-256") {
		t.Fatalf("Open with a misnamed key file = %v, want ErrDamaged naming it", err)
	}
	if _, err := r.Keys(ctx); !errors.Is(err, ErrDamaged) {
		t.Fatalf("Keys with a misnamed key file = %v, want ErrDamaged", err)
	}
}

// TestRemoveHostileKey: a slot Open refuses (and names) can be removed by
// its id, so the user can act on the error; the last working slot cannot.
func TestRemoveHostileKey(t *testing.T) {
	ctx := context.Background()
	be := mem.New()
	r := TestRepositoryWith(t, be, Options{})
	good := keyNames(t, be)[0]
	b, _ := loadFile(ctx, be, backend.Handle{Type: backend.KeyFile, Name: good})
	var kf map[string]any
	_ = json.Unmarshal(b, &kf)
	kf["n"], kf["r"] = 1<<20, 32
	nb, _ := json.Marshal(kf)
	bad, err := saveKeyFile(ctx, be, nb)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, be, "other", Options{}); !strings.Contains(err.Error(), "sitevault key remove "+bad) {
		t.Errorf("Open error does not say how to remove the slot: %v", err)
	}
	if err := r.RemoveKey(ctx, bad[:8]); err != nil {
		t.Fatalf("removing the hostile slot: %v", err)
	}
	if _, err := Open(ctx, be, "other", Options{}); !errors.Is(err, ErrWrongPassword) || errors.Is(err, ErrDamaged) {
		t.Errorf("after removing it, Open = %v, want only ErrWrongPassword", err)
	}
	// a damaged slot does not count as a working one
	replaceFile(t, be, backend.Handle{Type: backend.KeyFile, Name: strings.Repeat("0", 64)}, []byte("junk"))
	if err := r.RemoveKey(ctx, good); !errors.Is(err, ErrLastKey) {
		t.Fatalf("removing the last working slot: %v, want ErrLastKey", err)
	}
}
