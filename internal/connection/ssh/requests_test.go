package ssh

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pkg/sftp"

	"github.com/sitevault/sitevault/internal/archiver"
	"github.com/sitevault/sitevault/internal/backend/mem"
	"github.com/sitevault/sitevault/internal/fsys"
	"github.com/sitevault/sitevault/internal/repository"
)

// SFTP request types (draft-ietf-secsh-filexfer-02), by name.
var sftpTypes = map[byte]string{
	3: "OPEN", 4: "CLOSE", 5: "READ", 6: "WRITE", 7: "LSTAT", 8: "FSTAT",
	11: "OPENDIR", 12: "READDIR", 16: "REALPATH", 17: "STAT", 200: "EXTENDED",
}

// requestCounter passes an SFTP client's output through and counts its
// requests by type (it parses the packets' framing: length, type).
type requestCounter struct {
	w io.WriteCloser

	mu     sync.Mutex
	buf    []byte
	counts map[string]int
}

func (c *requestCounter) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.buf = append(c.buf, p...)
	for len(c.buf) >= 5 {
		n := int(binary.BigEndian.Uint32(c.buf))
		if len(c.buf) < 4+n {
			break
		}
		name, ok := sftpTypes[c.buf[4]]
		if !ok {
			name = fmt.Sprint(c.buf[4])
		}
		c.counts[name]++
		c.buf = c.buf[4+n:]
	}
	c.mu.Unlock()
	return c.w.Write(p)
}

func (c *requestCounter) Close() error { return c.w.Close() }

// settle waits (up to 10 s) until closes CLOSE requests were sent (files
// are closed without waiting, in the background), then takes the counts.
func (c *requestCounter) settle(closes int) map[string]int {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		c.mu.Lock()
		n := c.counts["CLOSE"]
		c.mu.Unlock()
		if n >= closes {
			break
		}
	}
	return c.take()
}

func (c *requestCounter) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.counts
	c.counts = map[string]int{}
	return m
}

// countingFS opens an FS over one SFTP session of c whose requests are counted.
func countingFS(t *testing.T, c *Conn, root string) (*FS, *requestCounter) {
	t.Helper()
	s, err := c.client.NewSession()
	must(t, err)
	in, err := s.StdinPipe()
	must(t, err)
	out, err := s.StdoutPipe()
	must(t, err)
	must(t, s.RequestSubsystem("sftp"))
	rc := &requestCounter{w: in, counts: map[string]int{}}
	client, err := sftp.NewClientPipe(out, rc, sftp.UseConcurrentReads(true), sftp.MaxConcurrentRequestsPerFile(64))
	must(t, err)
	f, err := NewFS(context.Background(), client, root)
	must(t, err)
	t.Cleanup(func() { f.Close(); s.Close() })
	rc.take() // the FS's own start (STAT and REALPATH of the root)
	return f, rc
}

// openOnly hides an FS's OpenListed: the archiver then opens every file
// with Open, as it did before OpenListed existed.
type openOnly struct{ fsys.FS }

// TestRequestsPerSmallFile backs up folders of small files over the real
// sshd with the archiver and counts the SFTP requests: each small file
// costs OPEN, READ, FSTAT and CLOSE (4; Open alone costs 5 with the LSTAT
// before the OPEN), an empty file one LSTAT, and a folder its listing
// (OPENDIR, READDIR until EOF, CLOSE), with no per-file LSTAT, STAT or
// REALPATH.
func TestRequestsPerSmallFile(t *testing.T) {
	const dirs, perDir = 4, 50
	root := t.TempDir()
	for d := range dirs {
		dir := filepath.Join(root, fmt.Sprintf("d%d", d))
		must(t, os.MkdirAll(dir, 0o755))
		for i := range perDir {
			must(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%02d.php", i)), []byte(strings.Repeat("x", 100+i*100)), 0o644))
		}
	}
	must(t, os.WriteFile(filepath.Join(root, "empty"), nil, 0o644))
	files := dirs*perDir + 1

	cfg := testConfig(needSSHD(t))
	cfg.Root = root
	c := dialTest(t, cfg)

	backup := func(t *testing.T, f fsys.FS) *archiver.Report {
		t.Helper()
		ctx := context.Background()
		repo, err := repository.Init(ctx, mem.New(), repository.TestPassword, repository.InitOptions{ScryptN: repository.TestScryptN})
		must(t, err)
		defer repo.Close()
		_, rep, err := archiver.New(repo, f, archiver.Options{Workers: 16}).Snapshot(ctx, "", nil)
		must(t, err)
		if rep.Partial || rep.FilesNew != files || len(rep.Changed) != 0 {
			t.Fatalf("backup: %d new files of %d, partial %v, changed %v, errors %v", rep.FilesNew, files, rep.Partial, rep.Changed, rep.Errors)
		}
		return rep
	}
	// listing: the requests listing the root and the dirs folders cost.
	listing := func(counts map[string]int) int {
		return counts["OPENDIR"] + counts["READDIR"] + (dirs + 1) // a CLOSE per folder
	}

	t.Run("Open", func(t *testing.T) {
		f, rc := countingFS(t, c, root)
		backup(t, openOnly{f})
		counts := rc.settle(files + dirs + 1)
		perFile := float64(total(counts)-listing(counts)) / float64(files)
		t.Logf("Open: %v; %.2f requests per file", counts, perFile)
		// LSTAT, OPEN, READ, FSTAT and CLOSE; the empty file has no READ.
		want := map[string]int{"LSTAT": files, "OPEN": files, "READ": files - 1, "FSTAT": files, "CLOSE": files + dirs + 1}
		check(t, counts, want)
	})
	t.Run("OpenListed", func(t *testing.T) {
		f, rc := countingFS(t, c, root)
		backup(t, f)
		counts := rc.settle(files - 1 + dirs + 1)
		perFile := float64(total(counts)-listing(counts)) / float64(files)
		t.Logf("OpenListed: %v; %.2f requests per file", counts, perFile)
		n := files - 1 // the empty file costs one LSTAT and nothing else
		want := map[string]int{"LSTAT": 1, "OPEN": n, "READ": n, "FSTAT": n, "CLOSE": n + dirs + 1}
		check(t, counts, want)
	})
}

func total(counts map[string]int) int {
	n := 0
	for _, v := range counts {
		n += v
	}
	return n
}

// check compares the per-type counts of file requests with want, and
// fails on any request type that is neither listed nor a folder listing's.
func check(t *testing.T, counts, want map[string]int) {
	t.Helper()
	for typ, n := range counts {
		switch typ {
		case "OPENDIR", "READDIR":
			continue
		}
		if want[typ] != n {
			t.Errorf("%s requests: %d, want %d", typ, n, want[typ])
		}
	}
	for typ, n := range want {
		if counts[typ] != n {
			t.Errorf("%s requests: %d, want %d", typ, counts[typ], n)
		}
	}
}

// TestOpenListedChecksTheFile opens files as a listing described them:
// unchanged, empty, changed since the listing, and replaced by a symbolic
// link to a file outside the root, which must give ErrNotAsListed and none
// of the outside file's bytes.
func TestOpenListedChecksTheFile(t *testing.T) {
	base := t.TempDir()
	root, outside := filepath.Join(base, "site"), filepath.Join(base, "outside")
	must(t, os.MkdirAll(root, 0o755))
	must(t, os.MkdirAll(outside, 0o755))
	must(t, os.WriteFile(filepath.Join(outside, "secret"), []byte("outside!"), 0o644))
	for name, content := range map[string]string{"same": "inside", "empty": "", "grows": "inside", "swapped": "inside", "retimed": "inside"} {
		must(t, os.WriteFile(filepath.Join(root, name), []byte(content), 0o644))
		old := time.Now().Add(-time.Hour)
		must(t, os.Chtimes(filepath.Join(root, name), old, old))
	}
	cfg := testConfig(needSSHD(t))
	cfg.Root = root
	c := dialTest(t, cfg)
	f, err := c.FSAt(context.Background(), root)
	must(t, err)
	ctx := context.Background()
	list, err := f.ReadDir(ctx, "")
	must(t, err)
	listed := map[string]fsys.FileInfo{}
	for _, fi := range list {
		listed[fi.Name] = fi
	}

	// Changed after the listing.
	must(t, os.WriteFile(filepath.Join(root, "grows"), []byte("inside and more"), 0o644))
	must(t, os.Chtimes(filepath.Join(root, "retimed"), time.Now(), time.Now()))
	must(t, os.Remove(filepath.Join(root, "swapped")))
	must(t, os.Symlink(filepath.Join(outside, "secret"), filepath.Join(root, "swapped")))

	for name, want := range map[string]string{"same": "inside", "empty": ""} {
		file, err := f.OpenListed(ctx, name, listed[name])
		if err != nil {
			t.Fatalf("OpenListed(%s): %v", name, err)
		}
		before, err := file.Stat()
		must(t, err)
		got, err := io.ReadAll(file)
		must(t, err)
		after, err := file.Stat()
		must(t, err)
		must(t, file.Close())
		if string(got) != want || before != listed[name] || after.Size != before.Size || !after.ModTime.Equal(before.ModTime) || after.Mode != before.Mode {
			t.Errorf("OpenListed(%s): read %q, stat before %+v after %+v; want %q and the listing %+v twice", name, got, before, after, want, listed[name])
		}
	}
	for _, name := range []string{"grows", "retimed", "swapped"} {
		file, err := f.OpenListed(ctx, name, listed[name])
		if !errors.Is(err, fsys.ErrNotAsListed) {
			var got []byte
			if err == nil {
				got, _ = io.ReadAll(file)
			}
			t.Errorf("OpenListed(%s) after a change: %v (read %q), want ErrNotAsListed", name, err, got)
		}
	}
}
