package restorer_test

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sitevault/sitevault/internal/archiver"
	"github.com/sitevault/sitevault/internal/connection/ssh"
	"github.com/sitevault/sitevault/internal/fsys"
	"github.com/sitevault/sitevault/internal/repository"
	"github.com/sitevault/sitevault/internal/restorer"
	"github.com/sitevault/sitevault/internal/testsrv"
)

// TestRestoreWritesOnlyWhatDiffers restores a point into an empty folder,
// then again into the folder it filled, then after changes on disk, on
// the local disk and over SFTP with a real sshd: only files whose content
// differs are written; a changed byte behind an unchanged size and mtime
// is found by the chunk hashes.
func TestRestoreWritesOnlyWhatDiffers(t *testing.T) {
	t.Run("local", func(t *testing.T) {
		dir := t.TempDir()
		testWritesOnlyWhatDiffers(t, dir, newLocal(t, dir))
	})
	t.Run("sftp", func(t *testing.T) {
		s := testsrv.StartSSHD(t)
		c, err := ssh.Dial(context.Background(), ssh.Config{
			User: s.User, Addr: s.Addr, Root: s.Dir, HostKey: ssh.AuthorizedKey(s.HostKey),
			IdentityFile: s.ClientKeyFile, Timeout: 10 * time.Second,
		})
		if err != nil {
			t.Fatalf("dial: %v\nsshd log:\n%s", err, s.Log())
		}
		t.Cleanup(func() { c.Close() })
		f, err := c.FS(context.Background())
		must(t, err)
		testWritesOnlyWhatDiffers(t, s.Dir, f)
	})
}

func testWritesOnlyWhatDiffers(t *testing.T, dst string, f fsys.FS) {
	repo := newRepo(t)
	rng := rand.New(rand.NewPCG(1, 2))
	big := make([]byte, 600<<10) // several chunks with the test chunker
	for i := range big {
		big[i] = byte(rng.Uint32())
	}
	private := file("private.txt", "secret settings")
	private.mode = 0o600
	id := saveTree(t, repo, []tn{
		file("index.php", "<?php require 'wp-blog-header.php';"),
		file("empty", ""),
		private,
		dir("wp-content",
			file("big.bin", string(big)),
			file("style.css", "body { color: red }"),
			file("touched.txt", "same bytes, new time"),
		),
	})
	const files = 6
	total := int64(len("<?php require 'wp-blog-header.php';") + len("secret settings") + len("body { color: red }") + len("same bytes, new time"))

	// A full restore into an empty folder writes everything.
	rep := restore(t, repo, f, id, restorer.Options{})
	if rep.FilesWritten != files || rep.FilesUnchanged != 0 || !rep.OK() {
		t.Fatalf("restore into an empty folder: %d written, %d unchanged (%v %v), want %d written", rep.FilesWritten, rep.FilesUnchanged, rep.Skipped, rep.Errors, files)
	}

	// Again into the folder it filled: nothing written.
	rep = restore(t, repo, f, id, restorer.Options{})
	if rep.FilesWritten != 0 || rep.FilesUnchanged != files || rep.AttrsFixed != 0 || rep.BytesUnchanged != int64(len(big))+total || !rep.OK() {
		t.Fatalf("restore into a matching folder: %d written, %d unchanged (%d bytes), %d fixed, want 0, %d", rep.FilesWritten, rep.FilesUnchanged, rep.BytesUnchanged, rep.AttrsFixed, files)
	}

	// One byte changed, same size, mtime set back.
	bigPath := filepath.Join(dst, "wp-content", "big.bin")
	before, err := os.Stat(bigPath)
	must(t, err)
	changed := bytes.Clone(big)
	changed[len(changed)/2] ^= 1
	must(t, os.WriteFile(bigPath, changed, 0o644))
	must(t, os.Chtimes(bigPath, before.ModTime(), before.ModTime()))
	// A size change.
	writeFile(t, filepath.Join(dst, "wp-content", "style.css"), "body { color: blue; }")
	// Mode only, and time only.
	must(t, os.Chmod(filepath.Join(dst, "private.txt"), 0o644))
	newTime := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	must(t, os.Chtimes(filepath.Join(dst, "wp-content", "touched.txt"), newTime, newTime))
	// Not in the point.
	writeFile(t, filepath.Join(dst, "wp-content", "mine.txt"), "kept")
	indexIno := statIno(t, filepath.Join(dst, "index.php"))

	rep = restore(t, repo, f, id, restorer.Options{})
	if rep.FilesWritten != 2 || rep.FilesUnchanged != files-2 || rep.AttrsFixed != 2 || !rep.OK() {
		t.Fatalf("restore after changes: %d written, %d unchanged, %d fixed (%v %v), want 2, %d, 2", rep.FilesWritten, rep.FilesUnchanged, rep.AttrsFixed, rep.Skipped, rep.Errors, files-2)
	}
	if got := readFile(t, bigPath); got != string(big) {
		t.Error("big.bin: the changed byte was not restored")
	}
	if got := readFile(t, filepath.Join(dst, "wp-content", "style.css")); got != "body { color: red }" {
		t.Errorf("style.css = %q", got)
	}
	if fi, err := os.Stat(filepath.Join(dst, "private.txt")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("private.txt: mode %v (%v), want 0600", fi.Mode(), err)
	}
	if fi, err := os.Stat(filepath.Join(dst, "wp-content", "touched.txt")); err != nil || !fi.ModTime().Truncate(time.Second).Equal(mtime.Truncate(time.Second)) {
		t.Errorf("touched.txt: mtime %v (%v), want %v", fi.ModTime(), err, mtime)
	}
	if got := readFile(t, filepath.Join(dst, "wp-content", "mine.txt")); got != "kept" {
		t.Errorf("mine.txt = %q, want it kept", got)
	}
	if statIno(t, filepath.Join(dst, "index.php")) != indexIno {
		t.Error("index.php was replaced although it was right")
	}
	noTemps(t, dst)

	// And once more: everything right.
	rep = restore(t, repo, f, id, restorer.Options{})
	if rep.FilesWritten != 0 || rep.FilesUnchanged != files || rep.AttrsFixed != 0 {
		t.Fatalf("restore after the fix: %d written, %d unchanged, %d fixed, want 0, %d, 0", rep.FilesWritten, rep.FilesUnchanged, rep.AttrsFixed, files)
	}
}

func statIno(t *testing.T, p string) uint64 {
	t.Helper()
	fi, err := os.Stat(p)
	must(t, err)
	return fi.Sys().(*syscall.Stat_t).Ino
}

// TestRestoreTrustsFilesTheBackupRead restores a point in place, into the
// folder it was backed up from: files the backup read and nothing wrote
// since (same inode, size, mtime and ctime) are left in place without
// being read; a file written since, even with its size and mtime set back,
// and a copy in a new inode are read and compared.
func TestRestoreTrustsFilesTheBackupRead(t *testing.T) {
	ctx := context.Background()
	dst := t.TempDir()
	content := map[string]string{}
	for i := range 20 {
		name := filepath.Join(dst, "f"+string(rune('a'+i))+".txt")
		content[name] = strings.Repeat(string(rune('a'+i)), 1000+i)
		writeFile(t, name, content[name])
	}
	repo := repository.TestRepository(t)
	tree, _, err := archiver.New(repo, newLocal(t, dst), archiver.Options{}).Snapshot(ctx, "", nil)
	must(t, err)
	must(t, repo.Flush(ctx))

	rep := restore(t, repo, newLocal(t, dst), tree, restorer.Options{})
	if rep.FilesWritten != 0 || rep.FilesUnchanged != 20 || rep.BytesHashed != 0 || !rep.OK() {
		t.Fatalf("in place, untouched: %d written, %d unchanged, %d bytes hashed; want 0, 20, 0", rep.FilesWritten, rep.FilesUnchanged, rep.BytesHashed)
	}

	// One byte changed behind the same size and mtime: its ctime moved.
	changed := filepath.Join(dst, "fc.txt")
	before, err := os.Stat(changed)
	must(t, err)
	b := []byte(content[changed])
	b[10] = 'X'
	must(t, os.WriteFile(changed, b, 0o644))
	must(t, os.Chtimes(changed, before.ModTime(), before.ModTime()))
	// The same bytes in a new inode.
	copied := filepath.Join(dst, "fd.txt")
	fi, err := os.Stat(copied)
	must(t, err)
	must(t, os.Remove(copied))
	writeFile(t, copied, content[copied])
	must(t, os.Chtimes(copied, fi.ModTime(), fi.ModTime()))

	rep = restore(t, repo, newLocal(t, dst), tree, restorer.Options{})
	want := int64(len(content[changed]) + len(content[copied]))
	if rep.FilesWritten != 1 || rep.FilesUnchanged != 19 || rep.BytesHashed != want || !rep.OK() {
		t.Fatalf("after changes: %d written, %d unchanged, %d bytes hashed; want 1, 19, %d", rep.FilesWritten, rep.FilesUnchanged, rep.BytesHashed, want)
	}
	if got := readFile(t, changed); got != content[changed] {
		t.Errorf("fc.txt = %.20q…, want it restored", got)
	}
}
