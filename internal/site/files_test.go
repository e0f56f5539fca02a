package site

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sitevault/sitevault/internal/archiver"
	"github.com/sitevault/sitevault/internal/fsys"
	"github.com/sitevault/sitevault/internal/repository"
	"github.com/sitevault/sitevault/internal/restorer"
	"github.com/sitevault/sitevault/internal/site/sitetest"
	"github.com/sitevault/sitevault/internal/wordpress"
)

// hookFS makes files misbehave while a backup reads them: grow appends to
// the file on disk at every read (a log being written), fail refuses to open
// (an unreadable file; chmod 000 does not stop root, who runs CI here).
type hookFS struct {
	fsys.FS
	disk string // the FS root on the local disk
	grow string
	fail string
}

func (h *hookFS) Open(ctx context.Context, name string) (fsys.File, error) {
	if name == h.fail && os.Geteuid() == 0 {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrPermission}
	}
	f, err := h.FS.Open(ctx, name)
	if err != nil || name != h.grow {
		return f, err
	}
	return &growingFile{File: f, disk: filepath.Join(h.disk, name)}, nil
}

type growingFile struct {
	fsys.File
	disk string
	once sync.Once
}

func (g *growingFile) Read(b []byte) (int, error) {
	g.once.Do(func() {
		f, err := os.OpenFile(g.disk, os.O_WRONLY|os.O_APPEND, 0)
		if err == nil {
			f.WriteString("another line\n")
			f.Close()
		}
	})
	return g.File.Read(b)
}

// walkTree maps every path of a files tree to its node.
func walkTree(t *testing.T, repo *repository.Repository, id repository.ID) map[string]*repository.Node {
	t.Helper()
	out := map[string]*repository.Node{}
	var walk func(id repository.ID, dir string)
	walk = func(id repository.ID, dir string) {
		tree, err := repo.LoadTree(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range tree.Nodes {
			p := path.Join(dir, n.Name)
			out[p] = n
			if n.Type == repository.NodeDir {
				walk(*n.Subtree, p)
			}
		}
	}
	walk(id, "")
	return out
}

func under(p, dir string) bool { return p == dir || strings.HasPrefix(p, dir+"/") }

func TestFilesRoundTrip(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) { filesRoundTrip(t, kind) })
	}
}

func filesRoundTrip(t *testing.T, kind string) {
	ctx := context.Background()
	root := sitetest.TestWordPress(t)
	sitetest.WriteTestConfig(t, root, sitetest.TestDB{Name: "wp", User: "wpuser", Password: "pw", Host: "127.0.0.1"})
	sitetest.AddFixture(t, root)
	grow, unreadable := "wp-content/uploads/growing.log", "wp-content/uploads/unreadable.txt"
	os.WriteFile(filepath.Join(root, grow), []byte("first line\n"), 0o644)
	os.WriteFile(filepath.Join(root, unreadable), []byte("nobody may read this"), 0o000)

	conn := openTest(t, kind, root)
	entry := testEntry(t, kind, root)
	in, err := Inspect(ctx, conn, entry)
	if err != nil {
		t.Fatal(err)
	}
	if in.WordPress.Version == "" || in.WordPress.ContentDir != "wp-content" || in.DatabaseErr != nil || in.Database.Name != "wp" {
		t.Fatalf("Inspect = %+v, version %q, db err %v", in.Database.Name, in.WordPress.Version, in.DatabaseErr)
	}

	repo := repository.TestRepository(t)
	src, err := conn.FS(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	hooked := &hookFS{FS: src, disk: root, grow: grow, fail: unreadable}
	files, rep, err := BackupFiles(ctx, repo, hooked, in.WordPress, nil, archiver.Options{Workers: 8})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := SaveRoot(ctx, repo, &files, nil, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := repo.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	// The report: partial because of the unreadable file, which it names;
	// the growing file named as changed; the FIFO skipped.
	if !rep.Partial || len(rep.Errors) != 1 || rep.Errors[0].Path != unreadable {
		t.Errorf("report: partial %v, errors %v; want exactly %q", rep.Partial, rep.Errors, unreadable)
	}
	if !slices.Contains(rep.Changed, grow) {
		t.Errorf("report.Changed = %q, want %q", rep.Changed, grow)
	}
	skipped, rules := map[string]string{}, map[string]string{}
	for _, s := range rep.Skipped {
		skipped[s.Path], rules[s.Path] = s.Reason, s.Rule
		if s.Rule == "" {
			t.Errorf("%q skipped without a rule (reason %q)", s.Path, s.Reason)
		}
	}
	for _, p := range sitetest.FixtureExcluded {
		if skipped[p] == "" {
			t.Errorf("%q not reported as skipped (skipped: %v)", p, skipped)
		}
	}
	// Rules group skips for a dashboard: every plugin's cache folder is
	// a cache-folder, whatever the reason's details.
	for p, want := range map[string]string{
		"wp-content/cache": "cache-folder", "wp-content/litespeed": "cache-folder", "wp-content/updraft": "backup-folder",
		"wp-admin": "wordpress-core", "blog": "another-wordpress-install", "private": "folder-holds-donotbackup",
		"wp-content/uploads/fifo": "not-a-regular-file",
	} {
		if rules[p] != want {
			t.Errorf("%q skipped with rule %q, want %q", p, rules[p], want)
		}
	}

	nodes := walkTree(t, repo, files)
	for _, p := range sitetest.FixtureTaken {
		if n := nodes[p]; n == nil || n.Type != repository.NodeFile {
			t.Errorf("%q not backed up as a file", p)
		}
	}
	for _, p := range sitetest.FixtureLinks {
		n := nodes[p]
		if n == nil || n.Type != repository.NodeSymlink {
			t.Errorf("%q not backed up as a link", p)
			continue
		}
		want, _ := os.Readlink(filepath.Join(root, p))
		if n.LinkTarget != want {
			t.Errorf("%q: link target %q, want %q", p, n.LinkTarget, want)
		}
	}
	for p := range nodes {
		for _, ex := range sitetest.FixtureExcluded {
			if under(p, ex) {
				t.Errorf("%q backed up, but %q is excluded", p, ex)
			}
		}
		if slices.Contains(wordpress.CoreRootFiles, p) {
			t.Errorf("core file %q backed up", p)
		}
	}
	// Debian's bundled plugin, theme and languages are site content.
	for _, p := range []string{"wp-content/plugins/akismet", "wp-content/themes/twentytwentythree", "wp-content/languages"} {
		if nodes[p] == nil {
			t.Errorf("%q not backed up", p)
		}
	}

	// Restore everything into an empty folder through the same kind of
	// connection, and compare with the source.
	dstDir := filepath.Join(t.TempDir(), "restored")
	os.Mkdir(dstDir, 0o755)
	dst, err := conn.FSAt(ctx, dstDir)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	rrep, err := RestoreFiles(ctx, repo, dst, files, nil, restorer.Options{Workers: 8})
	if err != nil {
		t.Fatal(err)
	}
	checkOutsideLinksRefused(t, rrep, sitetest.FixtureOutsideLinks)
	checked := 0
	for p, n := range nodes {
		if slices.Contains(sitetest.FixtureOutsideLinks, p) {
			continue
		}
		got := filepath.Join(dstDir, p)
		fi, err := os.Lstat(got)
		if err != nil {
			t.Errorf("%q not restored: %v", p, err)
			continue
		}
		switch n.Type {
		case repository.NodeFile:
			checked++
			if p != grow && !sitetest.SameFile(t, filepath.Join(root, p), got) {
				t.Errorf("%q restored with other content", p)
			}
			if fi.Mode().Perm() != fs.FileMode(n.Mode).Perm() || fi.ModTime().Unix() != n.ModTime.Unix() {
				t.Errorf("%q: restored %v %v, backed up %v %v", p, fi.Mode(), fi.ModTime(), fs.FileMode(n.Mode), n.ModTime)
			}
		case repository.NodeSymlink:
			if target, _ := os.Readlink(got); target != n.LinkTarget {
				t.Errorf("%q: restored link to %q, want %q", p, target, n.LinkTarget)
			}
		}
	}
	if checked < 200 {
		t.Errorf("only %d files compared", checked)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(dstDir, "*", ".sitevault-tmp-*")); len(leftovers) > 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}

	// A restore overwrites files of the same name and deletes nothing.
	os.WriteFile(filepath.Join(dstDir, "robots.txt"), []byte("changed"), 0o644)
	os.WriteFile(filepath.Join(dstDir, "extra.txt"), []byte("not in the backup"), 0o644)
	filter, err := Filter(nil, []string{"robots.txt"}, "wp-content")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := RestoreFiles(ctx, repo, dst, files, filter, restorer.Options{}); err != nil {
		t.Fatal(err)
	}
	if !sitetest.SameFile(t, filepath.Join(root, "robots.txt"), filepath.Join(dstDir, "robots.txt")) {
		t.Error("robots.txt not overwritten")
	}
	if _, err := os.Stat(filepath.Join(dstDir, "extra.txt")); err != nil {
		t.Error("a file not in the restore point was deleted")
	}

	// An incremental backup of the unchanged site reads only what changed.
	plain := &hookFS{FS: src, disk: root}
	_, rep2, err := BackupFiles(ctx, repo, plain, in.WordPress, &files, archiver.Options{Workers: 8})
	if err != nil {
		t.Fatal(err)
	}
	if rep2.Partial || rep2.FilesUnchanged < checked-3 || rep2.BytesRead > 1000 {
		t.Errorf("incremental: %d unchanged of %d, %d bytes read, partial %v", rep2.FilesUnchanged, checked, rep2.BytesRead, rep2.Partial)
	}
}

func TestRestoreItems(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			ctx := context.Background()
			root := sitetest.TestWordPress(t)
			sitetest.WriteTestConfig(t, root, sitetest.TestDB{Name: "wp", User: "u", Password: "p", Host: "localhost"})
			sitetest.AddFixture(t, root)
			conn := openTest(t, kind, root)
			in, err := Inspect(ctx, conn, testEntry(t, kind, root))
			if err != nil {
				t.Fatal(err)
			}
			src, _ := conn.FS(ctx)
			defer src.Close()
			repo := repository.TestRepository(t)
			files, _, err := BackupFiles(ctx, repo, src, in.WordPress, nil, archiver.Options{})
			if err != nil {
				t.Fatal(err)
			}
			repo.Flush(ctx)
			nodes := walkTree(t, repo, files)
			rules := wordpress.NewRules(wordpress.RulesOptions{ContentDir: "wp-content"})

			tests := []struct {
				items, paths []string
			}{
				{[]string{"themes"}, nil},
				{[]string{"plugins", "uploads"}, nil},
				{[]string{"roots"}, nil},
				{[]string{"contents"}, nil},
				{nil, []string{"shop-assets/deep", "wp-content/uploads/2024/05/photo.jpg"}},
				{[]string{"themes"}, []string{"robots.txt"}},
			}
			for _, tt := range tests {
				name := strings.Join(append(append([]string{}, tt.items...), tt.paths...), "+")
				t.Run(strings.ReplaceAll(name, "/", "_"), func(t *testing.T) {
					dstDir := t.TempDir()
					dst, err := conn.FSAt(ctx, dstDir)
					if err != nil {
						t.Fatal(err)
					}
					defer dst.Close()
					filter, err := Filter(tt.items, tt.paths, "wp-content")
					if err != nil {
						t.Fatal(err)
					}
					rep, err := RestoreFiles(ctx, repo, dst, files, filter, restorer.Options{})
					if err != nil {
						t.Fatalf("restore: %v", err)
					}
					var outside []string
					for _, p := range sitetest.FixtureOutsideLinks {
						if filter(p, nodes[p]) {
							outside = append(outside, p)
						}
					}
					checkOutsideLinksRefused(t, rep, outside)
					for p, n := range nodes {
						if n.Type == repository.NodeDir || slices.Contains(outside, p) {
							continue
						}
						want := slices.Contains(tt.items, rules.Item(p))
						for _, q := range tt.paths {
							want = want || under(p, q)
						}
						_, err := os.Lstat(filepath.Join(dstDir, p))
						if got := err == nil; got != want {
							t.Errorf("%q (item %s): restored %v, want %v", p, rules.Item(p), got, want)
						}
					}
				})
			}
			if _, err := Filter([]string{"database"}, nil, ""); !errors.Is(err, ErrUnknownItem) {
				t.Errorf("Filter(database) = %v, want ErrUnknownItem", err)
			}
		})
	}
}

// craftedRepo keeps trees the repository refuses to store (names "..",
// "a/b"), as a crafted restore point would hold them; content blobs go to
// the real repository.
type craftedRepo struct {
	*repository.Repository
	mu    sync.Mutex
	trees map[repository.ID]*repository.Tree
}

func (r *craftedRepo) SaveTree(_ context.Context, t *repository.Tree) (repository.ID, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var id repository.ID
	id[0], id[1] = byte(len(r.trees)), 0xcf
	r.trees[id] = t
	return id, nil
}

func (r *craftedRepo) LoadTree(ctx context.Context, id repository.ID) (*repository.Tree, error) {
	r.mu.Lock()
	t, ok := r.trees[id]
	r.mu.Unlock()
	if ok {
		return t, nil
	}
	return r.Repository.LoadTree(ctx, id)
}

// TestCraftedRestorePoint restores a restore point holding names a backup
// never makes ("..", "../x", names with "/") into a site whose uploads
// folder was replaced by a link leaving the root: nothing may be written
// outside the root. The repository itself refuses such trees (a tree blob
// with ".." fails to load as damaged); the restorer refuses them again.
func TestCraftedRestorePoint(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			ctx := context.Background()
			repo := &craftedRepo{Repository: repository.TestRepository(t), trees: map[repository.ID]*repository.Tree{}}
			content, size, err := repo.SaveStream(ctx, strings.NewReader("<?php evil();"))
			if err != nil {
				t.Fatal(err)
			}
			file := func(name string) *repository.Node {
				return &repository.Node{Name: name, Type: repository.NodeFile, Mode: 0o644, ModTime: time.Now(), Size: size, Content: content}
			}
			save := func(nodes ...*repository.Node) repository.ID {
				slices.SortFunc(nodes, func(a, b *repository.Node) int { return strings.Compare(a.Name, b.Name) })
				id, _ := repo.SaveTree(ctx, &repository.Tree{Nodes: nodes})
				return id
			}
			dir := func(name string, sub repository.ID) *repository.Node {
				return &repository.Node{Name: name, Type: repository.NodeDir, Mode: uint32(fs.ModeDir | 0o755), ModTime: time.Now(), Subtree: &sub}
			}
			files := save(
				dir("..", save(file("evil.php"))),
				file("../evil.php"),
				file("ok.php"),
				file("a/b.php"),
				dir("wp-content", save(dir("uploads", save(file("a.php"))), dir("sub", save(file(".."), file("fine.php"))))),
			)
			if err := repo.Flush(ctx); err != nil {
				t.Fatal(err)
			}

			base := t.TempDir()
			root := filepath.Join(base, "site")
			outside := filepath.Join(base, "outside")
			os.MkdirAll(filepath.Join(root, "wp-content"), 0o755)
			os.Mkdir(outside, 0o755)
			os.Symlink(outside, filepath.Join(root, "wp-content", "uploads"))
			conn := openTest(t, kind, root)
			dst, err := conn.FS(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer dst.Close()
			rep, err := RestoreFiles(ctx, repo, dst, files, nil, restorer.Options{})
			if err != nil {
				t.Fatal(err)
			}
			refused := map[string]bool{}
			for _, s := range rep.Skipped {
				refused[s.Path] = true
			}
			for _, p := range []string{"..", "../evil.php", "a/b.php", "wp-content/uploads", "wp-content/sub/.."} {
				if !refused[p] {
					t.Errorf("%q not refused (refused: %v)", p, rep.Skipped)
				}
			}
			for _, p := range []string{"ok.php", "wp-content/sub/fine.php"} {
				if _, err := os.Stat(filepath.Join(root, p)); err != nil {
					t.Errorf("%q not restored: %v", p, err)
				}
			}
			if entries, _ := os.ReadDir(outside); len(entries) > 0 {
				t.Errorf("written outside the root through a link: %v", entries)
			}
			if _, err := os.Lstat(filepath.Join(base, "evil.php")); err == nil {
				t.Error("evil.php written above the root")
			}

			// The same tree stored as a raw blob does not even load.
			raw, _, err := repo.Repository.SaveBlob(ctx, repository.TreeBlob,
				[]byte(`{"nodes":[{"name":"..","type":"file","mode":420,"size":0}]}`))
			if err != nil {
				t.Fatal(err)
			}
			repo.Flush(ctx)
			if _, err := RestoreFiles(ctx, repo.Repository, dst, raw, nil, restorer.Options{}); !errors.Is(err, repository.ErrDamaged) {
				t.Errorf("restore of a raw crafted tree = %v, want ErrDamaged", err)
			}
		})
	}
}

func TestInspectErrors(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			ctx := context.Background()
			// Not WordPress.
			plain := t.TempDir()
			os.WriteFile(filepath.Join(plain, "index.html"), []byte("hi"), 0o644)
			conn := openTest(t, kind, plain)
			if _, err := Inspect(ctx, conn, testEntry(t, kind, plain)); !errors.Is(err, wordpress.ErrNotWordPress) {
				t.Errorf("plain folder: %v, want ErrNotWordPress", err)
			}

			// Debian's own wp-config.php reads /etc/wordpress: its
			// constants cannot be read, and the error names the flags.
			root := sitetest.TestWordPress(t)
			conn = openTest(t, kind, root)
			in, err := Inspect(ctx, conn, testEntry(t, kind, root))
			if err != nil {
				t.Fatal(err)
			}
			// (it defines defaults for the rest, and WP_CONTENT_DIR
			// outside the root).
			var ve *wordpress.ValueError
			if !errors.As(in.DatabaseErr, &ve) || ve.Name != "DB_PASSWORD" || !errors.Is(ve, wordpress.ErrNotDefined) {
				t.Errorf("Debian's config: DatabaseErr = %v, want DB_PASSWORD not defined", in.DatabaseErr)
			}
			if in.WordPress.ExternalContentDir == "" {
				t.Errorf("Debian's WP_CONTENT_DIR outside the root not reported")
			}
			// Overrides fill them in.
			entry := testEntry(t, kind, root)
			entry.DB.Host, entry.DB.Name, entry.DB.User, entry.DB.Password, entry.DB.TablePrefix = "db", "n", "u", "p", "wp_"
			in, err = Inspect(ctx, conn, entry)
			if err != nil || in.DatabaseErr != nil || in.Database.Name != "n" || in.Database.Password != "p" {
				t.Errorf("with overrides: %v, %v, %+v", err, in.DatabaseErr, in.Database.Name)
			}

			// wp-config.php one folder above the root.
			above := sitetest.TestWordPress(t)
			sitetest.WriteTestConfig(t, above, sitetest.TestDB{Name: "above", User: "u", Password: "p", Host: "h"})
			parent := filepath.Dir(above)
			os.Rename(filepath.Join(above, "wp-config.php"), filepath.Join(parent, "wp-config.php"))
			conn = openTest(t, kind, above)
			in, err = Inspect(ctx, conn, testEntry(t, kind, above))
			if err != nil || !in.WordPress.ConfigAbove || in.Database.Name != "above" {
				t.Errorf("config above: %v, %+v", err, in)
			}
		})
	}
}

func TestFilterDirs(t *testing.T) {
	f, err := Filter([]string{"themes"}, nil, "wp-content")
	if err != nil {
		t.Fatal(err)
	}
	d := &repository.Node{Type: repository.NodeDir}
	file := &repository.Node{Type: repository.NodeFile}
	tests := []struct {
		p    string
		n    *repository.Node
		want bool
	}{
		{"wp-content", d, true},
		{"wp-content/themes", d, true},
		{"wp-content/themes/x/style.css", file, true},
		{"wp-content/object-cache.php", file, false},
		{"wp-content/plugins", d, false},
		{"robots.txt", file, false},
		{"custom", d, false},
	}
	for _, tt := range tests {
		if got := f(tt.p, tt.n); got != tt.want {
			t.Errorf("filter(%q) = %v, want %v", tt.p, got, tt.want)
		}
	}
	if f, err := Filter(nil, nil, ""); f != nil || err != nil {
		t.Error("empty filter should be nil (everything)")
	}
}

// checkOutsideLinksRefused fails unless the restore refused exactly the
// links in want, as leading out of the site root, and nothing else failed.
func checkOutsideLinksRefused(t *testing.T, rep *restorer.Report, want []string) {
	t.Helper()
	var got []string
	for _, sk := range rep.Skipped {
		if !strings.Contains(sk.Reason, "outside the site root") {
			t.Errorf("restore refused %s", sk)
		}
		got = append(got, sk.Path)
	}
	slices.Sort(got)
	want = slices.Sorted(slices.Values(want))
	if !slices.Equal(got, want) || len(rep.Errors) > 0 {
		t.Fatalf("restore refused %q (errors %v), want the links out of the site %q", got, rep.Errors, want)
	}
}
