package repository

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

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
	if err := be.Save(context.Background(), h, bytes.NewReader(b), int64(len(b))); err != nil {
		tb.Fatal(err)
	}
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
			replaceFile(tb, be, backend.Handle{Type: backend.ConfigFile}, []byte(`{"version":2,"id":"`+strings.Repeat("ab", 32)+`","params":"AAAA"}`))
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
			replaceFile(tb, be, h, nb)
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
