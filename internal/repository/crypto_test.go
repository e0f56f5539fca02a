package repository

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/sitevault/sitevault/internal/backend"
	"github.com/sitevault/sitevault/internal/backend/mem"
)

func listNames(tb testing.TB, be backend.Backend, t backend.FileType) []string {
	tb.Helper()
	var names []string
	if err := be.List(context.Background(), t, func(fi backend.FileInfo) error { names = append(names, fi.Name); return nil }); err != nil {
		tb.Fatal(err)
	}
	return names
}

func copyFile(tb testing.TB, be backend.Backend, from, to backend.Handle) {
	tb.Helper()
	b, err := loadFile(context.Background(), be, from)
	if err != nil {
		tb.Fatal(err)
	}
	replaceFile(tb, be, to, b)
}

// TestSealedFilesBoundToKind: in a format 2 repository every sealed file
// carries its kind as associated data, so a file of one kind moved to
// another's folder is refused as damaged instead of being parsed.
func TestSealedFilesBoundToKind(t *testing.T) {
	ctx := context.Background()
	be := mem.New()
	r := TestRepositoryWith(t, be, Options{})
	TestSnapshot(t, r, "s", r.now(), map[string][]byte{"a": []byte("hello")})
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	idx := listNames(t, be, backend.IndexFile)
	snaps := listNames(t, be, backend.SnapshotFile)
	if len(idx) == 0 || len(snaps) != 1 {
		t.Fatalf("%d index files, %d snapshots", len(idx), len(snaps))
	}

	t.Run("snapshot as index", func(t *testing.T) {
		be2 := cloneMem(t, be)
		copyFile(t, be2, backend.Handle{Type: backend.SnapshotFile, Name: snaps[0]}, backend.Handle{Type: backend.IndexFile, Name: snaps[0]})
		if _, err := Open(ctx, be2, TestPassword, Options{}); !errors.Is(err, ErrIndexDamaged) || !strings.Contains(err.Error(), "not an index file") {
			t.Fatalf("Open with a snapshot in index/ = %v, want ErrIndexDamaged", err)
		}
		r2 := TestOpen(t, be2, Options{NoIndex: true})
		id, _ := ParseID(snaps[0])
		_, err := r2.loadIndexFile(ctx, id)
		if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), "not an index file") {
			t.Fatalf("loading a snapshot from index/ = %v, want ErrDamaged", err)
		}
	})
	t.Run("index as snapshot", func(t *testing.T) {
		be2 := cloneMem(t, be)
		copyFile(t, be2, backend.Handle{Type: backend.IndexFile, Name: idx[0]}, backend.Handle{Type: backend.SnapshotFile, Name: idx[0]})
		r2 := TestOpen(t, be2, Options{})
		id, _ := ParseID(idx[0])
		_, err := r2.LoadSnapshot(ctx, id)
		if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), "not a snapshot file") {
			t.Fatalf("LoadSnapshot of an index file = %v, want ErrDamaged", err)
		}
	})
	t.Run("config bound to its id", func(t *testing.T) {
		be2 := cloneMem(t, be)
		h := backend.Handle{Type: backend.ConfigFile}
		b, _ := loadFile(ctx, be2, h)
		var cf configFile
		if err := json.Unmarshal(b, &cf); err != nil {
			t.Fatal(err)
		}
		cf.ID = strings.Repeat("cd", 32)
		nb, _ := json.Marshal(cf)
		if err := be2.Remove(ctx, h); err != nil {
			t.Fatal(err)
		}
		replaceFile(t, be2, h, nb)
		_, err := Open(ctx, be2, TestPassword, Options{})
		if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), "config") {
			t.Fatalf("Open with another repository id in the config = %v, want ErrDamaged", err)
		}
	})
}

// cloneMem copies every file of be into a new mem backend.
func cloneMem(tb testing.TB, be backend.Backend) *mem.Backend {
	tb.Helper()
	out := mem.New()
	for _, t := range []backend.FileType{backend.KeyFile, backend.PackFile, backend.IndexFile, backend.SnapshotFile, backend.LockFile} {
		for _, n := range listNames(tb, be, t) {
			b, err := loadFile(context.Background(), be, backend.Handle{Type: t, Name: n})
			if err != nil {
				tb.Fatal(err)
			}
			replaceFile(tb, out, backend.Handle{Type: t, Name: n}, b)
		}
	}
	b, _ := loadFile(context.Background(), be, backend.Handle{Type: backend.ConfigFile})
	replaceFile(tb, out, backend.Handle{Type: backend.ConfigFile}, b)
	return out
}
