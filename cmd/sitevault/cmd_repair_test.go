package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/sitevault/sitevault/internal/fsys"
	"github.com/sitevault/sitevault/internal/repository"
)

func repairIndexCmd(ctx context.Context, g *globalOptions, out *bytes.Buffer) error {
	return runRepairIndex(ctx, g, false, out)
}

// TestDamagedIndexRepair: a damaged index file makes commands fail with
// exit code 12 and say to run `sitevault repair index`; after it, check
// --read-data passes and the restore is exact.
func TestDamagedIndexRepair(t *testing.T) {
	e := newTestEnv(t)
	e.mustRun("", initCmd)
	src := t.TempDir()
	files := map[string]string{"a.txt": strings.Repeat("a", 100000), "b.txt": "b", "sub/c.txt": "c"}
	writeTree(t, src, files)
	e.mustRun("", backupCmd(src, "s"))

	repo := filepath.Join(e.home, "repo")
	idx, err := filepath.Glob(filepath.Join(repo, "index", "*"))
	if err != nil || len(idx) == 0 {
		t.Fatalf("no index files: %v", err)
	}
	b, err := os.ReadFile(idx[0])
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(idx[0], 0o600)
	if err := os.WriteFile(idx[0], flipByte(b, len(b)/2), 0o600); err != nil {
		t.Fatal(err)
	}

	dst := t.TempDir()
	_, err = e.run("", restoreCmd("latest", dst, "s"))
	if !errors.Is(err, repository.ErrIndexDamaged) || exitCode(err) != exitDamaged {
		t.Fatalf("restore with a damaged index file: %v (exit code %d), want ErrIndexDamaged and %d", err, exitCode(err), exitDamaged)
	}
	if !strings.Contains(err.Error(), "sitevault repair index") {
		t.Errorf("error does not say what to do: %v", err)
	}
	if out, err := e.run("", checkCmd(false)); exitCode(err) != exitDamaged || !strings.Contains(out, "index") {
		t.Errorf("check with a damaged index file: %v (exit code %d)\n%s", err, exitCode(err), out)
	}

	out := e.mustRun("", repairIndexCmd)
	if !strings.Contains(out, "Rebuilt the index") {
		t.Errorf("repair index output:\n%s", out)
	}
	out = e.mustRun("", checkCmd(true))
	if !strings.Contains(out, "No problems found") {
		t.Fatalf("check after repair:\n%s", out)
	}
	e.mustRun("", restoreCmd("latest", dst, "s"))
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join(dst, filepath.FromSlash(name)))
		if err != nil || string(got) != want {
			t.Errorf("restored %s: %q, %v", name, got, err)
		}
	}
}

// writerFS runs write once, when the backup opens name: another writer of
// the repository storing data in the middle of the backup.
type writerFS struct {
	fsys.FS
	name  string
	write func()
	once  sync.Once
}

func (w *writerFS) Open(ctx context.Context, name string) (fsys.File, error) {
	if name == w.name {
		w.once.Do(w.write)
	}
	return w.FS.Open(ctx, name)
}

// TestBackupCountsOnlyItsOwnData: "added" is what this backup stored, not
// what the repository's packs grew by while it ran (another backup into
// the same repository stored 2 MiB meanwhile).
func TestBackupCountsOnlyItsOwnData(t *testing.T) {
	e := newTestEnv(t)
	e.mustRun("", initCmd)
	src := t.TempDir()
	writeTree(t, src, map[string]string{"a.txt": strings.Repeat("a", 1000), "b.txt": "b"})
	g := e.global("")
	g.openDir = func(dir string) (fsys.FS, error) {
		l, err := fsys.NewLocal(dir)
		return &writerFS{FS: l, name: "b.txt", write: func() {
			s, err := openRepository(context.Background(), e.global(""))
			if err != nil {
				t.Error(err)
				return
			}
			defer s.Close()
			data := make([]byte, 2<<20)
			rand.Read(data)
			if _, _, err := s.repo.SaveBlob(context.Background(), repository.DataBlob, data); err != nil {
				t.Error(err)
			}
			if err := s.repo.Flush(context.Background()); err != nil {
				t.Error(err)
			}
		}}, err
	}
	var out bytes.Buffer
	if err := runDirBackup(context.Background(), dirBackupOptions{Dir: src, Site: "c", Trigger: "manual"}, g, &out); err != nil {
		t.Fatal(err)
	}
	s, err := openRepository(context.Background(), e.global(""))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	sn, err := s.repo.FindSnapshot(context.Background(), "latest", "c")
	if err != nil {
		t.Fatal(err)
	}
	if got := sn.Summary.BytesAddedSaved; got <= 0 || got >= 1<<20 {
		t.Errorf("backup of 1 KB says it added %d bytes (another writer stored 2 MiB meanwhile)", got)
	}
}
