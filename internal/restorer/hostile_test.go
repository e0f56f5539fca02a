package restorer_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sitevault/sitevault/internal/archiver"
	"github.com/sitevault/sitevault/internal/fsys"
	"github.com/sitevault/sitevault/internal/repository"
	"github.com/sitevault/sitevault/internal/restorer"
)

// A restore point (crafted, or of a site that had them) may hold links to
// anywhere; a restore never places one that leads out of the site root.
func TestRestoreRefusesLinksOutside(t *testing.T) {
	repo := newRepo(t)
	dst := t.TempDir()
	secret := filepath.Join(t.TempDir(), "secret.key")
	writeFile(t, secret, "secret")
	id := saveTree(t, repo, []tn{
		link("robots.txt", "/etc/shadow"),
		dir("wp-content", dir("uploads",
			link("leak.txt", "../../"+strings.Repeat("../", 8)+secret[1:]),
			link("climb", "../../.."),
			link("ok", "../themes/style.css"),
		)),
		link("abs-inside", filepath.Join(dst, "wp-content/uploads/ok")),
		link("rel-inside", "wp-content/uploads"),
		link("kept", "/etc/wordpress/htaccess"),
	})
	// An identical link already on the site is left alone, not refused.
	must(t, os.Symlink("/etc/wordpress/htaccess", filepath.Join(dst, "kept")))

	rep := restore(t, repo, newLocal(t, dst), id, restorer.Options{Root: dst})
	want := []string{"robots.txt", "wp-content/uploads/climb", "wp-content/uploads/leak.txt"}
	if got := skippedPaths(rep); !slices.Equal(got, want) {
		t.Errorf("refused %q, want %q", got, want)
	}
	for _, s := range rep.Skipped {
		if !strings.Contains(s.Reason, "outside the site root") {
			t.Errorf("%s refused for %q", s.Path, s.Reason)
		}
	}
	for _, p := range want {
		if _, err := os.Lstat(filepath.Join(dst, p)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s was planted: %v", p, err)
		}
	}
	for _, p := range []string{"abs-inside", "rel-inside", "wp-content/uploads/ok"} {
		if _, err := os.Readlink(filepath.Join(dst, p)); err != nil {
			t.Errorf("link %s inside the root not restored: %v", p, err)
		}
	}
	if rep.Symlinks != 3 || rep.SymlinksKept != 1 || rep.OK() {
		t.Errorf("report: %d links written, %d kept, OK %v; want 3, 1, false", rep.Symlinks, rep.SymlinksKept, rep.OK())
	}

	// Without Root, every absolute target is refused.
	dst2 := t.TempDir()
	rep = restore(t, repo, newLocal(t, dst2), id, restorer.Options{})
	if !slices.Contains(skippedPaths(rep), "abs-inside") {
		t.Errorf("absolute link restored without a known root: %q", skippedPaths(rep))
	}
}

// One damaged blob or tree does not stop a restore: every other file is
// restored and the damaged ones are listed.
func TestRestoreGoesOnPastDamage(t *testing.T) {
	base := newRepo(t)
	id := saveTree(t, base, []tn{
		file("a-damaged.php", "damaged content"),
		dir("b", file("c.txt", "sound")),
		dir("broken", file("x", "in a damaged tree")),
		dir("wp-content", dir("uploads", file("photo.jpg", "photo bytes"))),
	})
	root, err := base.LoadTree(context.Background(), id)
	must(t, err)
	repo := &failingRepo{testRepo: base, fail: "damaged content", err: fmt.Errorf("load blob: %w", repository.ErrDamaged)}
	dr := &damagedTreeRepo{failingRepo: repo, badTree: *root.Find("broken").Subtree}
	dst := t.TempDir()
	rep, err := restorer.New(dr, newLocal(t, dst), restorer.Options{Workers: 1}).Restore(context.Background(), id, "")
	if err != nil {
		t.Fatalf("Restore stopped: %v", err)
	}
	if got := readFile(t, filepath.Join(dst, "wp-content/uploads/photo.jpg")); got != "photo bytes" {
		t.Errorf("photo.jpg = %q", got)
	}
	if got := readFile(t, filepath.Join(dst, "b/c.txt")); got != "sound" {
		t.Errorf("b/c.txt = %q", got)
	}
	var failed []string
	for _, e := range rep.Errors {
		if !errors.Is(e, repository.ErrDamaged) {
			t.Errorf("%s failed with %v, want ErrDamaged", e.Path, e.Err)
		}
		failed = append(failed, e.Path)
	}
	if !slices.Equal(failed, []string{"a-damaged.php", "broken"}) || rep.OK() {
		t.Errorf("failed %q (OK %v), want a-damaged.php and broken", failed, rep.OK())
	}
	noTemps(t, dst)
}

type damagedTreeRepo struct {
	*failingRepo
	badTree repository.ID
}

func (r *damagedTreeRepo) LoadTree(ctx context.Context, id repository.ID) (*repository.Tree, error) {
	if id == r.badTree {
		return nil, fmt.Errorf("load tree: %w", repository.ErrDamaged)
	}
	return r.failingRepo.LoadTree(ctx, id)
}

// A sparse file comes back with its holes.
func TestRestoreKeepsHoles(t *testing.T) {
	const size = 8 << 20
	data := make([]byte, size)
	copy(data[1<<20:], "data in the middle")
	copy(data[size-5000:], "and near the end")
	repo := newRepo(t)
	id := saveTree(t, repo, []tn{file("disk.img", string(data)), file("tail-hole", string(make([]byte, 3<<20)))})
	dst := t.TempDir()
	rep := restore(t, repo, newLocal(t, dst), id, restorer.Options{})
	if !rep.OK() || rep.BytesWritten != size+3<<20 {
		t.Fatalf("report %+v", rep)
	}
	for name, want := range map[string][]byte{"disk.img": data, "tail-hole": make([]byte, 3<<20)} {
		p := filepath.Join(dst, name)
		if got, err := os.ReadFile(p); err != nil || string(got) != string(want) {
			t.Fatalf("%s differs (%v)", name, err)
		}
		var st syscall.Stat_t
		must(t, syscall.Stat(p, &st))
		if allocated := st.Blocks * 512; allocated > int64(len(want))/4 {
			t.Errorf("%s: %d bytes allocated for %d with holes", name, allocated, len(want))
		}
	}
}

// Database parts of a point carry no modification time: a restore into a
// folder gives them the time they are written, not 1901-12-13.
func TestRestoreZeroModTime(t *testing.T) {
	repo := newRepo(t)
	ctx := context.Background()
	ids, size, err := repo.SaveStream(ctx, strings.NewReader("CREATE TABLE t (id int primary key);"))
	must(t, err)
	sub, err := repo.SaveTree(ctx, &repository.Tree{Nodes: []*repository.Node{
		{Name: "schema.sql", Type: repository.NodeFile, Mode: 0o644, Content: ids, Size: size},
	}})
	must(t, err)
	id, err := repo.SaveTree(ctx, &repository.Tree{Nodes: []*repository.Node{
		{Name: "database", Type: repository.NodeDir, Mode: uint32(os.ModeDir | 0o755), Subtree: &sub},
	}})
	must(t, err)
	must(t, repo.Flush(ctx))
	dst := t.TempDir()
	restore(t, repo, newLocal(t, dst), id, restorer.Options{})
	for _, p := range []string{"database", "database/schema.sql"} {
		fi, err := os.Stat(filepath.Join(dst, p))
		must(t, err)
		if time.Since(fi.ModTime()) > time.Hour {
			t.Errorf("%s has mtime %v", p, fi.ModTime())
		}
	}
}

// killEnv makes the test binary a restore that is killed mid-write.
const killEnv = "SITEVAULT_TEST_RESTORE_KILL"

// TestKilledRestoreHelper is the subprocess of TestKilledRestoreLeftovers:
// it restores a large file into the folder killEnv names, stalling halfway.
func TestKilledRestoreHelper(t *testing.T) {
	dst := os.Getenv(killEnv)
	if dst == "" {
		return // the entry point of TestKilledRestoreLeftovers's subprocess, not a test of its own
	}
	base := newRepo(t)
	big := strings.Repeat("0123456789abcdef", 1<<18) // 4 MiB
	id := saveTree(t, base, []tn{file("big.zip", big)})
	repo := &failingRepo{testRepo: base, fail: big, before: func() {
		fmt.Println("half written")
		time.Sleep(time.Hour) // until SIGKILL
	}}
	restore(t, repo, newLocal(t, dst), id, restorer.Options{Workers: 1})
}

// A restore killed mid-write leaves its temporary file; the next backup of
// the site does not take it and removes it.
func TestKilledRestoreLeftovers(t *testing.T) {
	dst := t.TempDir()
	writeFile(t, filepath.Join(dst, "keep.txt"), "site file")
	// looks like ours but is not: kept and backed up
	writeFile(t, filepath.Join(dst, fsys.TempPrefix+"notours.txt"), "user file")
	cmd := exec.Command(os.Args[0], "-test.run=^TestKilledRestoreHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), killEnv+"="+dst)
	out, err := cmd.StdoutPipe()
	must(t, err)
	must(t, cmd.Start())
	buf := make([]byte, 64)
	n, _ := out.Read(buf)
	if !strings.Contains(string(buf[:n]), "half written") {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("the restore did not reach the middle of its file: %q", buf[:n])
	}
	must(t, cmd.Process.Signal(syscall.SIGKILL))
	cmd.Wait()
	var temps []string
	for _, p := range listAll(t, dst) {
		if fsys.IsTemp(filepath.Base(p)) {
			temps = append(temps, p)
		}
	}
	if len(temps) != 1 {
		t.Fatalf("after the kill: temporary files %q, want one", temps)
	}
	if fi, err := os.Stat(filepath.Join(dst, temps[0])); err != nil || fi.Size() == 0 {
		t.Fatalf("the kill did not land mid-write: %v %v", fi, err)
	}

	repo := repository.TestRepository(t)
	tree, rep, err := archiver.New(repo, newLocal(t, dst), archiver.Options{RemoveTemps: true}).Snapshot(context.Background(), "", nil)
	must(t, err)
	must(t, repo.Flush(context.Background()))
	if !slices.Equal(rep.TempsRemoved, temps) {
		t.Errorf("removed %q, want %q", rep.TempsRemoved, temps)
	}
	if _, err := os.Lstat(filepath.Join(dst, temps[0])); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("leftover still there: %v", err)
	}
	root, err := repo.LoadTree(context.Background(), tree)
	must(t, err)
	var names []string
	for _, n := range root.Nodes {
		names = append(names, n.Name)
	}
	if want := []string{fsys.TempPrefix + "notours.txt", "keep.txt"}; !slices.Equal(names, want) {
		t.Errorf("backed up %q, want %q", names, want)
	}
}
