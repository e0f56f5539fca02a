package repository_test

import (
	"bytes"
	"context"
	"math/rand/v2"
	"testing"

	"github.com/sitevault/sitevault/internal/repository"
)

// TestContentMatches compares readers with stored content: the same bytes
// match; one changed byte, a missing or an extra tail do not.
func TestContentMatches(t *testing.T) {
	ctx := context.Background()
	repo := repository.TestRepository(t)
	rng := rand.New(rand.NewPCG(3, 4))
	data := make([]byte, 700<<10) // several chunks with the test chunker
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	ids, _, err := repo.SaveStream(ctx, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) < 2 {
		t.Fatalf("%d chunks, want several", len(ids))
	}
	changed := bytes.Clone(data)
	changed[len(changed)-10] ^= 1
	for _, c := range []struct {
		name string
		data []byte
		ids  []repository.ID
		want bool
	}{
		{"same", data, ids, true},
		{"one byte changed", changed, ids, false},
		{"shorter", data[:len(data)-1], ids, false},
		{"longer", append(bytes.Clone(data), 'x'), ids, false},
		{"empty against content", nil, ids, false},
		{"empty against none", nil, nil, true},
		{"content against none", data, nil, false},
	} {
		got, err := repo.ContentMatches(ctx, bytes.NewReader(c.data), c.ids)
		if err != nil || got != c.want {
			t.Errorf("%s: ContentMatches = %v, %v; want %v", c.name, got, err, c.want)
		}
	}
}
