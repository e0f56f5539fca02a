package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/sitevault/sitevault/internal/backup"
	"github.com/sitevault/sitevault/internal/config"
	"github.com/sitevault/sitevault/internal/fsys"
	"github.com/sitevault/sitevault/internal/repository"
	"github.com/sitevault/sitevault/internal/sitevault"
)

// testEnv is a data home and a fake environment for one test.
type testEnv struct {
	t      testing.TB
	home   string
	env    map[string]string
	stderr bytes.Buffer
	now    func() time.Time // the repository's clock; nil: time.Now
}

func newTestEnv(t testing.TB) *testEnv {
	t.Helper()
	return &testEnv{t: t, home: filepath.Join(t.TempDir(), "home"), env: map[string]string{}}
}

// global returns fresh global options pointing at the test's data home
// (and at repo, if not empty).
func (e *testEnv) global(repo string) *globalOptions {
	return &globalOptions{
		Home:     e.home,
		Repo:     repo,
		env:      func(k string) (string, bool) { v, ok := e.env[k]; return v, ok },
		prompter: config.NoPrompt{},
		stderr:   &e.stderr,
		scryptN:  repository.TestScryptN,
		now:      e.now,
		// Summaries as a person at a terminal reads them; the short
		// form cron gets is tested through the binary (internal/e2e).
		stdoutTTY: func() bool { return true },
	}
}

// run calls fn with fresh options and returns its stdout and error.
func (e *testEnv) run(repo string, fn func(context.Context, *globalOptions, *bytes.Buffer) error) (string, error) {
	e.t.Helper()
	var out bytes.Buffer
	err := fn(context.Background(), e.global(repo), &out)
	return out.String(), err
}

func (e *testEnv) mustRun(repo string, fn func(context.Context, *globalOptions, *bytes.Buffer) error) string {
	e.t.Helper()
	out, err := e.run(repo, fn)
	if err != nil {
		e.t.Fatalf("%v\nstdout:\n%s", err, out)
	}
	return out
}

func initCmd(ctx context.Context, g *globalOptions, out *bytes.Buffer) error {
	return runInit(ctx, initOptions{}, g, out)
}

func snapshotsCmd(ctx context.Context, g *globalOptions, out *bytes.Buffer) error {
	return runSnapshots(ctx, snapshotsOptions{}, g, out)
}

func backupCmd(dir, site string) func(context.Context, *globalOptions, *bytes.Buffer) error {
	return func(ctx context.Context, g *globalOptions, out *bytes.Buffer) error {
		return runDirBackup(ctx, dirBackupOptions{Dir: dir, Site: site, Trigger: "manual"}, g, out)
	}
}

func restoreCmd(ref, target, site string) func(context.Context, *globalOptions, *bytes.Buffer) error {
	return func(ctx context.Context, g *globalOptions, out *bytes.Buffer) error {
		return runDirRestore(ctx, dirRestoreOptions{Snapshot: ref, Target: target, Site: site}, g, out)
	}
}

// writeTree creates files (name → content) under dir.
func writeTree(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// treeState describes every entry under dir: type, permissions, content or
// link target, so two trees compare with ==.
func treeState(t testing.TB, dir string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		line := rel + " " + fi.Mode().String()
		switch {
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			line += " " + string(b)
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			line += " -> " + target
		}
		if rel != "." {
			lines = append(lines, line)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// repoState lists a repository folder's files with sizes and times, to
// show that a failed command changed nothing.
func repoState(t testing.TB, dir string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if !d.IsDir() {
			lines = append(lines, fmt.Sprintf("%s %v %v %d", p, fi.ModTime(), fi.Mode(), fi.Size()))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func TestExitCodes(t *testing.T) {
	tests := []struct {
		err  error
		want int
	}{
		{nil, 0},
		{errors.New("boom"), 1},
		{usageError(errors.New("bad flag")), 2},
		{userErrorf(errPartial, "partial"), 3},
		{userErrorf(repository.ErrNotRepository, "none"), 10},
		{fmt.Errorf("prune: %w", repository.ErrPruneRunning), 11},
		{userErrorf(repository.ErrWrongPassword, "wrong"), 12},
		{userErrorf(errUnreachable, "down"), 13},
		{userErrorf(errStale, "old"), 14},
		{userErrorf(repository.ErrDamaged, "damaged"), 15},
		{&sitevault.BusyError{}, 16},
		{context.Canceled, 130},
	}
	for _, tt := range tests {
		if got := exitCode(tt.err); got != tt.want {
			t.Errorf("exitCode(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"bogus"},
		{"--bogus"},
		{"init", "extra"},
		{"dir", "backup"},
		{"key", "bogus"},
		{"key", "remove"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			root := newRootCommand()
			root.SetArgs(args)
			root.SetOut(&bytes.Buffer{})
			root.SetErr(&bytes.Buffer{})
			err := root.Execute()
			if got := exitCode(err); got != exitUsage {
				t.Errorf("exit code %d (%v), want %d", got, err, exitUsage)
			}
		})
	}
}

func TestInitEmbeddedTwice(t *testing.T) {
	e := newTestEnv(t)
	out := e.mustRun("", initCmd)
	keyFile := filepath.Join(e.home, "repo.key")
	fi, err := os.Stat(keyFile)
	if err != nil {
		t.Fatalf("no key file: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %o, want 0600", fi.Mode().Perm())
	}
	for _, want := range []string{"Created repository", keyFile, "Losing this file loses every backup"} {
		if !strings.Contains(out, want) {
			t.Errorf("init output does not say %q:\n%s", want, out)
		}
	}
	key, _ := os.ReadFile(keyFile)
	before := repoState(t, filepath.Join(e.home, "repo"))

	out, err = e.run("", initCmd)
	if !errors.Is(err, repository.ErrRepositoryExists) || exitCode(err) != exitError {
		t.Fatalf("second init: %v (exit code %d), want ErrRepositoryExists", err, exitCode(err))
	}
	if !strings.Contains(err.Error(), "already exists") || !strings.Contains(err.Error(), "nothing was changed") {
		t.Errorf("unclear error: %v", err)
	}
	if key2, _ := os.ReadFile(keyFile); !bytes.Equal(key, key2) {
		t.Error("second init replaced the key file")
	}
	if after := repoState(t, filepath.Join(e.home, "repo")); after != before {
		t.Error("second init changed the repository")
	}
	// The key file opens it.
	e.mustRun("", snapshotsCmd)
}

func TestInitNoPasswordForOtherRepository(t *testing.T) {
	e := newTestEnv(t)
	repo := filepath.Join(t.TempDir(), "r")
	_, err := e.run(repo, initCmd)
	if !errors.Is(err, config.ErrNoPassword) || !strings.Contains(err.Error(), "SITEVAULT_PASSWORD") {
		t.Fatalf("got %v, want ErrNoPassword saying how to give one", err)
	}
	if _, err := os.Stat(filepath.Join(repo, "config")); err == nil {
		t.Error("a repository was created without a password")
	}
}

func TestWrongPassword(t *testing.T) {
	e := newTestEnv(t)
	repo := filepath.Join(t.TempDir(), "r")
	e.env["SITEVAULT_PASSWORD"] = "right"
	e.mustRun(repo, initCmd)
	src := t.TempDir()
	writeTree(t, src, map[string]string{"a.txt": "a"})
	e.mustRun(repo, backupCmd(src, "s"))
	before := repoState(t, repo)

	e.env["SITEVAULT_PASSWORD"] = "wrong"
	for name, fn := range map[string]func(context.Context, *globalOptions, *bytes.Buffer) error{
		"snapshots": snapshotsCmd,
		"backup":    backupCmd(src, "s"),
		"key add": func(ctx context.Context, g *globalOptions, out *bytes.Buffer) error {
			return runKeyAdd(ctx, keyAddOptions{}, g, out)
		},
	} {
		_, err := e.run(repo, fn)
		if !errors.Is(err, repository.ErrWrongPassword) || exitCode(err) != exitPassword {
			t.Fatalf("%s: got %v (exit code %d), want ErrWrongPassword and %d", name, err, exitCode(err), exitPassword)
		}
		for _, want := range []string{repo, "SITEVAULT_PASSWORD", "--password-file"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: error %q does not mention %s", name, err, want)
			}
		}
	}
	if after := repoState(t, repo); after != before {
		t.Error("a command with the wrong password changed the repository")
	}
}

func TestNotARepository(t *testing.T) {
	e := newTestEnv(t)
	e.env["SITEVAULT_PASSWORD"] = "pw"
	empty := t.TempDir()
	for name, repo := range map[string]string{
		"empty folder":   empty,
		"missing folder": filepath.Join(empty, "nothing-here"),
		"embedded":       "",
	} {
		_, err := e.run(repo, snapshotsCmd)
		if exitCode(err) != exitNoRepository {
			t.Errorf("%s: got %v (exit code %d), want %d", name, err, exitCode(err), exitNoRepository)
		}
		if err != nil && !strings.Contains(err.Error(), "sitevault init") {
			t.Errorf("%s: error %q does not say how to create one", name, err)
		}
	}
}

func TestKeyFileWrongMode(t *testing.T) {
	e := newTestEnv(t)
	e.mustRun("", initCmd)
	keyFile := filepath.Join(e.home, "repo.key")
	if err := os.Chmod(keyFile, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := e.run("", snapshotsCmd)
	var pe *config.PermissionError
	if !errors.As(err, &pe) || exitCode(err) != exitError {
		t.Fatalf("got %v (exit code %d), want a PermissionError", err, exitCode(err))
	}
	if !strings.Contains(err.Error(), "chmod 600 "+keyFile) {
		t.Errorf("error %q does not say chmod 600 %s", err, keyFile)
	}
}

func TestCorruptedConfig(t *testing.T) {
	e := newTestEnv(t)
	e.mustRun("", initCmd)
	cfg := filepath.Join(e.home, "repo", "config")
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(cfg, 0o600)
	for name, bad := range map[string][]byte{
		"flipped byte": flipByte(b, len(b)/2),
		"truncated":    b[:len(b)/3],
		"garbage":      []byte("not a config at all"),
		"empty":        {},
	} {
		if err := os.WriteFile(cfg, bad, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := e.run("", snapshotsCmd)
		if err == nil {
			t.Errorf("%s: a damaged config opened", name)
			continue
		}
		if code := exitCode(err); code != exitDamaged && code != exitNoRepository {
			t.Errorf("%s: exit code %d (%v), want %d", name, code, err, exitDamaged)
		}
	}
}

func flipByte(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 0x01
	return c
}

func TestKeyAddListRemove(t *testing.T) {
	e := newTestEnv(t)
	repo := filepath.Join(t.TempDir(), "r")
	e.env["SITEVAULT_PASSWORD"] = "first"
	e.mustRun(repo, initCmd)

	// The new password from the environment, then from a file.
	e.env["SITEVAULT_NEW_PASSWORD"] = "second"
	out := e.mustRun(repo, func(ctx context.Context, g *globalOptions, out *bytes.Buffer) error {
		return runKeyAdd(ctx, keyAddOptions{Label: "laptop"}, g, out)
	})
	if !strings.Contains(out, "Added key") {
		t.Errorf("key add output: %s", out)
	}
	delete(e.env, "SITEVAULT_NEW_PASSWORD")
	pwFile := filepath.Join(t.TempDir(), "third")
	if err := os.WriteFile(pwFile, []byte("third\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.mustRun(repo, func(ctx context.Context, g *globalOptions, out *bytes.Buffer) error {
		return runKeyAdd(ctx, keyAddOptions{NewPasswordFile: pwFile, Label: "server"}, g, out)
	})
	// No new password at all: a clear error.
	_, err := e.run(repo, func(ctx context.Context, g *globalOptions, out *bytes.Buffer) error {
		return runKeyAdd(ctx, keyAddOptions{}, g, out)
	})
	if !errors.Is(err, config.ErrNoPassword) || !strings.Contains(err.Error(), "SITEVAULT_NEW_PASSWORD") {
		t.Errorf("key add without a new password: %v", err)
	}

	keys := listKeys(t, e, repo)
	if len(keys) != 3 {
		t.Fatalf("got %d keys, want 3", len(keys))
	}
	labels := map[string]bool{}
	for _, k := range keys {
		labels[k.Label] = true
	}
	if !labels["laptop"] || !labels["server"] {
		t.Errorf("labels: %v", labels)
	}

	// Every password opens it; the listing marks the key in use.
	for _, pw := range []string{"first", "second", "third"} {
		e.env["SITEVAULT_PASSWORD"] = pw
		out := e.mustRun(repo, func(ctx context.Context, g *globalOptions, out *bytes.Buffer) error {
			return runKeyList(ctx, keyListOptions{}, g, out)
		})
		if strings.Count(out, "*") != 1 {
			t.Errorf("password %q: listing marks %d keys as current:\n%s", pw, strings.Count(out, "*"), out)
		}
	}

	// Remove the first key (opened with the second password): the first
	// password no longer opens the repository.
	var first string
	for _, k := range keys {
		if k.Current {
			first = k.ID
		}
	}
	e.env["SITEVAULT_PASSWORD"] = "second"
	e.mustRun(repo, func(ctx context.Context, g *globalOptions, out *bytes.Buffer) error {
		return runKeyRemove(ctx, keyRemoveOptions{ID: first[:8]}, g, out)
	})
	e.env["SITEVAULT_PASSWORD"] = "first"
	if _, err := e.run(repo, snapshotsCmd); exitCode(err) != exitPassword {
		t.Errorf("removed key still opens: %v", err)
	}

	// Removing down to the last key is refused.
	e.env["SITEVAULT_PASSWORD"] = "third"
	for _, k := range listKeys(t, e, repo) {
		if !k.Current {
			e.mustRun(repo, func(ctx context.Context, g *globalOptions, out *bytes.Buffer) error {
				return runKeyRemove(ctx, keyRemoveOptions{ID: k.ID}, g, out)
			})
		}
	}
	last := listKeys(t, e, repo)
	if len(last) != 1 {
		t.Fatalf("got %d keys, want 1", len(last))
	}
	_, err = e.run(repo, func(ctx context.Context, g *globalOptions, out *bytes.Buffer) error {
		return runKeyRemove(ctx, keyRemoveOptions{ID: last[0].ID}, g, out)
	})
	if !errors.Is(err, repository.ErrLastKey) {
		t.Errorf("removing the last key: %v", err)
	}
	_, err = e.run(repo, func(ctx context.Context, g *globalOptions, out *bytes.Buffer) error {
		return runKeyRemove(ctx, keyRemoveOptions{ID: "ffffffff"}, g, out)
	})
	if err == nil || !strings.Contains(err.Error(), "key list") {
		t.Errorf("removing an unknown key: %v", err)
	}
}

func listKeys(t testing.TB, e *testEnv, repo string) []repository.KeyInfo {
	t.Helper()
	g := e.global(repo)
	s, err := openRepository(context.Background(), g)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	keys, err := s.repo.Keys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

func TestDirBackupRestore(t *testing.T) {
	e := newTestEnv(t)
	e.mustRun("", initCmd)
	src := filepath.Join(t.TempDir(), "site")
	big := strings.Repeat("shared plugin code\n", 20000)
	writeTree(t, src, map[string]string{
		"wp-config.php":                    "<?php define('DB_NAME', 'wp');",
		"wp-content/plugins/a/a.php":       big + "a",
		"wp-content/plugins/b/b.php":       big + "b",
		"wp-content/uploads/2024/01/x.jpg": string(bytes.Repeat([]byte{0xff, 0xd8, 1, 2, 3}, 50000)),
		"empty.txt":                        "",
		"name with\nnewline":               "odd",
	})
	if err := os.Symlink("wp-config.php", filepath.Join(src, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(src, "wp-config.php"), 0o600); err != nil {
		t.Fatal(err)
	}
	want1 := treeState(t, src)

	out := e.mustRun("", backupCmd(src, "demo"))
	if !strings.Contains(out, "a full backup") || !strings.Contains(out, "6 new") {
		t.Errorf("first backup summary:\n%s", out)
	}
	out = e.mustRun("", backupCmd(src, "demo"))
	if !strings.Contains(out, "incremental from") || !strings.Contains(out, "6 unchanged") || !strings.Contains(out, "added:   0 B") {
		t.Errorf("unchanged backup summary:\n%s", out)
	}
	first := snapshotIDs(t, e)[0]

	writeTree(t, src, map[string]string{"wp-content/plugins/a/a.php": "changed", "new.txt": "new"})
	want2 := treeState(t, src)
	out = e.mustRun("", backupCmd(src, "demo"))
	if !strings.Contains(out, "1 new, 1 changed") {
		t.Errorf("third backup summary:\n%s", out)
	}

	list := e.mustRun("", snapshotsCmd)
	if !strings.Contains(list, "3 restore points") {
		t.Errorf("snapshots:\n%s", list)
	}

	dst := filepath.Join(t.TempDir(), "restored")
	e.mustRun("", restoreCmd("latest", dst, "demo"))
	if got := treeState(t, dst); got != want2 {
		t.Errorf("latest restore differs:\n%s\nwant\n%s", got, want2)
	}
	dst1 := filepath.Join(t.TempDir(), "restored1")
	e.mustRun("", restoreCmd(first.String()[:8], dst1, ""))
	if got := treeState(t, dst1); got != want1 {
		t.Errorf("first restore differs:\n%s\nwant\n%s", got, want1)
	}

	if _, err := e.run("", restoreCmd("latest", dst, "no-such-site")); err == nil || !strings.Contains(err.Error(), "no-such-site") {
		t.Errorf("restore of an unknown site: %v", err)
	}
	if _, err := e.run("", backupCmd(src, "")); exitCode(err) != exitUsage {
		t.Errorf("backup without --site: %v", err)
	}
	if _, err := e.run("", backupCmd(filepath.Join(src, "missing"), "demo")); exitCode(err) != exitUsage {
		t.Errorf("backup of a missing folder: %v", err)
	}
}

// unreadableFS fails to open one file, as a file without read permission
// would (root reads those, so the test injects the failure).
type unreadableFS struct {
	fsys.FS
	name string
}

func (u unreadableFS) Open(ctx context.Context, name string) (fsys.File, error) {
	if name == u.name {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrPermission}
	}
	return u.FS.Open(ctx, name)
}

func TestDirBackupPartial(t *testing.T) {
	e := newTestEnv(t)
	e.mustRun("", initCmd)
	src := t.TempDir()
	writeTree(t, src, map[string]string{"ok.txt": "ok", "secret.txt": "no"})
	g := e.global("")
	g.openDir = func(dir string) (fsys.FS, error) {
		l, err := fsys.NewLocal(dir)
		return unreadableFS{FS: l, name: "secret.txt"}, err
	}
	var out bytes.Buffer
	err := runDirBackup(context.Background(), dirBackupOptions{Dir: src, Site: "p", Trigger: "manual"}, g, &out)
	if !errors.Is(err, errPartial) || exitCode(err) != exitPartial {
		t.Fatalf("got %v (exit code %d), want a partial backup", err, exitCode(err))
	}
	if !strings.Contains(out.String(), "NOT BACKED UP") || !strings.Contains(out.String(), "secret.txt") {
		t.Errorf("summary does not name the unreadable file:\n%s", out.String())
	}
	// The partial restore point is saved, and says so.
	list := e.mustRun("", snapshotsCmd)
	if !strings.Contains(list, "(partial)") {
		t.Errorf("snapshots does not mark the partial restore point:\n%s", list)
	}
}

func snapshotIDs(t testing.TB, e *testEnv) []repository.ID {
	t.Helper()
	s, err := openRepository(context.Background(), e.global(""))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	sns, err := s.repo.Snapshots(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var ids []repository.ID
	for _, sn := range sns {
		ids = append(ids, sn.ID)
	}
	return ids
}

func checkCmd(readData bool) func(context.Context, *globalOptions, *bytes.Buffer) error {
	return func(ctx context.Context, g *globalOptions, out *bytes.Buffer) error {
		return runCheck(ctx, checkOptions{ReadData: readData}, g, out)
	}
}

// packFiles lists the pack files of a local repository.
func packFiles(t testing.TB, repo string) []string {
	t.Helper()
	var packs []string
	err := filepath.WalkDir(filepath.Join(repo, "data"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && !strings.HasPrefix(d.Name(), ".") {
			packs = append(packs, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(packs)
	return packs
}

func TestCheckFindsFlippedByte(t *testing.T) {
	e := newTestEnv(t)
	e.mustRun("", initCmd)
	src := t.TempDir()
	writeTree(t, src, map[string]string{"a.txt": strings.Repeat("a", 100000), "b.txt": "b"})
	e.mustRun("", backupCmd(src, "s"))

	out := e.mustRun("", checkCmd(true))
	if !strings.Contains(out, "No problems found") {
		t.Fatalf("check of a sound repository:\n%s", out)
	}

	repo := filepath.Join(e.home, "repo")
	packs := packFiles(t, repo)
	if len(packs) == 0 {
		t.Fatal("no packs")
	}
	for _, p := range packs {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, 0o600)
		if err := os.WriteFile(p, flipByte(b, len(b)/3), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// Structure alone may not see a flipped byte; --read-data must.
	out, err := e.run("", checkCmd(true))
	if !errors.Is(err, repository.ErrDamaged) || exitCode(err) != exitDamaged {
		t.Fatalf("check --read-data after a flipped byte: %v (exit code %d)\n%s", err, exitCode(err), out)
	}
	if !strings.Contains(out, "problems found") || !strings.Contains(out, "cannot be restored completely") {
		t.Errorf("check output does not list problems and affected restore points:\n%s", out)
	}
	// Restoring the damaged data is an error, never wrong data.
	dst := t.TempDir()
	if _, err := e.run("", restoreCmd("latest", dst, "s")); err == nil {
		t.Error("restore of damaged data succeeded")
	}
}

func TestForget(t *testing.T) {
	e := newTestEnv(t)
	e.mustRun("", initCmd)
	src := t.TempDir()
	for i := range 3 {
		writeTree(t, src, map[string]string{"f.txt": fmt.Sprint("version ", i)})
		e.mustRun("", backupCmd(src, "a"))
	}
	e.mustRun("", backupCmd(src, "b"))
	forget := func(o forgetOptions) func(context.Context, *globalOptions, *bytes.Buffer) error {
		return func(ctx context.Context, g *globalOptions, out *bytes.Buffer) error { return runForget(ctx, o, g, out) }
	}
	if _, err := e.run("", forget(forgetOptions{Site: "a"})); exitCode(err) != exitUsage {
		t.Errorf("forget without a policy: %v", err)
	}
	if _, err := e.run("", forget(forgetOptions{Policy: repository.Policy{KeepLast: 1}})); exitCode(err) != exitUsage {
		t.Errorf("forget without --site: %v", err)
	}
	out := e.mustRun("", forget(forgetOptions{Site: "a", Policy: repository.Policy{KeepLast: 1}, DryRun: true}))
	if !strings.Contains(out, "would keep 1 and remove 2") {
		t.Errorf("dry run:\n%s", out)
	}
	if n := len(snapshotIDs(t, e)); n != 4 {
		t.Fatalf("dry run removed restore points: %d left", n)
	}
	out = e.mustRun("", forget(forgetOptions{Site: "a", Policy: repository.Policy{KeepLast: 1}}))
	if !strings.Contains(out, "removed 2") || !strings.Contains(out, "sitevault prune") {
		t.Errorf("forget:\n%s", out)
	}
	if n := len(snapshotIDs(t, e)); n != 2 {
		t.Fatalf("%d restore points left, want 2 (the newest of a, and b)", n)
	}
	// The newest of site a is the one kept.
	dst := t.TempDir()
	e.mustRun("", restoreCmd("latest", dst, "a"))
	if b, _ := os.ReadFile(filepath.Join(dst, "f.txt")); string(b) != "version 2" {
		t.Errorf("kept restore point holds %q", b)
	}
	e.mustRun("", checkCmd(false))
}

func TestForgetPrune(t *testing.T) {
	e := newTestEnv(t)
	clock := repository.NewFakeClock(time.Now())
	e.now = clock.Now
	e.mustRun("", initCmd)
	src := t.TempDir()
	rnd := make([]byte, 300<<10)
	for i := range 3 {
		for j := range rnd {
			rnd[j] = byte(i*7919 + j*j%251)
		}
		writeTree(t, src, map[string]string{"keep.txt": "same in every backup", fmt.Sprintf("v%d.bin", i): string(rnd)})
		os.Remove(filepath.Join(src, fmt.Sprintf("v%d.bin", i-1)))
		e.mustRun("", backupCmd(src, "s"))
		clock.Advance(time.Minute)
	}
	want := treeState(t, src)
	e.mustRun("", func(ctx context.Context, g *globalOptions, out *bytes.Buffer) error {
		return runForget(ctx, forgetOptions{Site: "s", Policy: repository.Policy{KeepLast: 1}}, g, out)
	})
	prune := func(dry bool) string {
		return e.mustRun("", func(ctx context.Context, g *globalOptions, out *bytes.Buffer) error {
			return runPrune(ctx, pruneOptions{Grace: time.Hour, MaxUnused: 0.2, DryRun: dry}, g, out)
		})
	}
	repo := filepath.Join(e.home, "repo")
	before := repoState(t, repo)
	out := prune(true)
	if !strings.Contains(out, "dry run") {
		t.Errorf("dry run output:\n%s", out)
	}
	if repoState(t, repo) != before {
		t.Error("prune --dry-run changed the repository")
	}
	clock.Advance(2 * time.Hour)
	prune(false) // marks what forget left unused
	clock.Advance(2 * time.Hour)
	out = prune(false) // deletes it
	if strings.Contains(out, "space freed:          0 B") {
		t.Errorf("second prune freed nothing:\n%s", out)
	}
	e.mustRun("", checkCmd(true))
	dst := t.TempDir()
	e.mustRun("", restoreCmd("latest", dst, "s"))
	if got := treeState(t, dst); got != want {
		t.Errorf("restore after prune differs:\n%s\nwant\n%s", got, want)
	}
}

func TestInterrupted(t *testing.T) {
	e := newTestEnv(t)
	e.mustRun("", initCmd)
	src := t.TempDir()
	writeTree(t, src, map[string]string{"a.txt": strings.Repeat("a", 1<<20)})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out bytes.Buffer
	err := runDirBackup(ctx, dirBackupOptions{Dir: src, Site: "s", Trigger: "manual"}, e.global(""), &out)
	if exitCode(err) != exitInterrupted {
		t.Fatalf("cancelled backup: %v (exit code %d), want %d", err, exitCode(err), exitInterrupted)
	}
	if ids := snapshotIDs(t, e); len(ids) != 0 {
		t.Errorf("a cancelled backup saved %d restore points", len(ids))
	}
	e.mustRun("", checkCmd(false))
}

// TestDirBackupExcludeAndLock: --exclude leaves paths out (listed as
// skipped), and a dir backup takes the site's lock like a site backup.
func TestDirBackupExcludeAndLock(t *testing.T) {
	e := newTestEnv(t)
	e.mustRun("", initCmd)
	src := t.TempDir()
	writeTree(t, src, map[string]string{"keep.txt": "a", "cache/x": "b", "notes.tmp": "c"})
	out := e.mustRun("", func(ctx context.Context, g *globalOptions, out *bytes.Buffer) error {
		return runDirBackup(ctx, dirBackupOptions{Dir: src, Site: "d", Trigger: "manual", Excludes: []string{"cache", "*.tmp"}}, g, out)
	})
	for _, want := range []string{"1 new", "skipped: 2 entries", `"cache": excluded by pattern ("cache")`, `"notes.tmp": excluded by pattern ("*.tmp")`} {
		if !strings.Contains(out, want) {
			t.Errorf("dir backup --exclude output lacks %q:\n%s", want, out)
		}
	}
	_, err := e.run("", func(ctx context.Context, g *globalOptions, out *bytes.Buffer) error {
		return runDirBackup(ctx, dirBackupOptions{Dir: src, Site: "d", Excludes: []string{"["}}, g, out)
	})
	if exitCode(err) != exitUsage {
		t.Errorf("--exclude with a bad pattern: %v, want a usage error", err)
	}

	unlock, err := backup.FileLocker{Dir: filepath.Join(e.home, "locks")}.Lock(context.Background(), "d", "restore", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	g := e.global("")
	var buf bytes.Buffer
	err = runDirBackup(ctx, dirBackupOptions{Dir: src, Site: "d", Trigger: "manual"}, g, &buf)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("dir backup while the site is locked: %v, want it to wait until the deadline", err)
	}
}
