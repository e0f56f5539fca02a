package repository

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sitevault/sitevault/internal/backend"
	"github.com/sitevault/sitevault/internal/backend/mem"
	"github.com/sitevault/sitevault/internal/repository/chunker"
)

// TestPassword is the password of repositories made by TestRepository.
const TestPassword = "test password"

// TestScryptN is a cheap KDF cost for tests.
const TestScryptN = 1 << 10

// TestChunkerParams are small chunk sizes (16 KiB / 64 KiB / 256 KiB) so
// that tests exercise many chunks with little data.
var TestChunkerParams = chunker.Params{Min: 16 << 10, Avg: 64 << 10, Max: 256 << 10}

// TestRepository returns a new repository on a fresh mem backend with a
// cheap KDF, small chunks and 1 MiB packs. It is closed when the test ends.
func TestRepository(tb testing.TB) *Repository {
	tb.Helper()
	return TestRepositoryWith(tb, mem.New(), Options{})
}

// TestRepositoryWith initialises a test repository on be with opts
// (PackSize defaults to 1 MiB).
func TestRepositoryWith(tb testing.TB, be backend.Backend, opts Options) *Repository {
	tb.Helper()
	if opts.PackSize == 0 {
		opts.PackSize = 1 << 20
	}
	r, err := Init(context.Background(), be, TestPassword, InitOptions{Options: opts, ScryptN: TestScryptN, Chunker: TestChunkerParams})
	if err != nil {
		tb.Fatalf("init test repository: %v", err)
	}
	tb.Cleanup(func() { _ = r.Close() })
	return r
}

// TestOpen opens the repository on be with TestPassword.
func TestOpen(tb testing.TB, be backend.Backend, opts Options) *Repository {
	tb.Helper()
	if opts.PackSize == 0 {
		opts.PackSize = 1 << 20
	}
	r, err := Open(context.Background(), be, TestPassword, opts)
	if err != nil {
		tb.Fatalf("open test repository: %v", err)
	}
	tb.Cleanup(func() { _ = r.Close() })
	return r
}

// FakeClock is a settable clock for Options.Now and mem.Backend.Now.
type FakeClock struct {
	mu sync.Mutex
	t  time.Time
}

// NewFakeClock starts a clock at t.
func NewFakeClock(t time.Time) *FakeClock { return &FakeClock{t: t} }

// Now returns the clock's time.
func (c *FakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *FakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestSnapshot saves files (name → content; names may hold any byte but
// '/') as one directory and writes a snapshot of it for site at time t.
func TestSnapshot(tb testing.TB, r *Repository, site string, t time.Time, files map[string][]byte) *Snapshot {
	tb.Helper()
	sn, err := SaveTestSnapshot(context.Background(), r, site, t, files)
	if err != nil {
		tb.Fatal(err)
	}
	return sn
}

// SaveTestSnapshot is TestSnapshot for goroutines: it returns its error.
func SaveTestSnapshot(ctx context.Context, r *Repository, site string, t time.Time, files map[string][]byte) (*Snapshot, error) {
	tree := &Tree{}
	for name, data := range files {
		ids, size, err := r.SaveStream(ctx, bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("save %q: %w", name, err)
		}
		tree.Nodes = append(tree.Nodes, &Node{Name: name, Type: NodeFile, Mode: 0o644, Size: size, Content: ids, ModTime: t})
	}
	tid, err := r.SaveTree(ctx, tree)
	if err != nil {
		return nil, err
	}
	sn := &Snapshot{Time: t, Site: site, Tree: tid}
	if _, err := r.SaveSnapshot(ctx, sn); err != nil {
		return nil, fmt.Errorf("save snapshot: %w", err)
	}
	return sn, nil
}

// TestRestore reads back the files of a snapshot made by TestSnapshot.
func TestRestore(tb testing.TB, r *Repository, id ID) (map[string][]byte, error) {
	tb.Helper()
	ctx := context.Background()
	sn, err := r.LoadSnapshot(ctx, id)
	if err != nil {
		return nil, err
	}
	tree, err := r.LoadTree(ctx, sn.Tree)
	if err != nil {
		return nil, err
	}
	out := make(map[string][]byte)
	for _, n := range tree.Nodes {
		var buf bytes.Buffer
		if err := r.WriteContent(ctx, n.Content, &buf); err != nil {
			return nil, fmt.Errorf("restore %q: %w", n.Name, err)
		}
		if int64(buf.Len()) != n.Size {
			return nil, fmt.Errorf("restore %q: %d bytes, want %d", n.Name, buf.Len(), n.Size)
		}
		out[n.Name] = buf.Bytes()
	}
	return out, nil
}
