package restorer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"

	"github.com/sitevault/sitevault/internal/fsys"
	"github.com/sitevault/sitevault/internal/repository"
)

// Verify compares the files under dir with tree and returns one line per
// difference: missing entries, other types, sizes, modes, modification
// times, contents and link targets. Entries of dir that the tree does not
// hold are not differences (a restore keeps them). Nodes filter rejects and
// nodes a restore refuses (unsafe names) are not compared. The error is for
// what stops the comparison (the repository fails, ctx ends).
func Verify(ctx context.Context, repo Repo, fsy fsys.FS, tree repository.ID, dir string, filter Filter) ([]string, error) {
	v := &verifier{repo: repo, fs: fsy, filter: filter}
	if err := v.dir(ctx, tree, "", dir); err != nil {
		return v.diffs, err
	}
	return v.diffs, nil
}

type verifier struct {
	repo   Repo
	fs     fsys.FS
	filter Filter
	diffs  []string
}

func (v *verifier) diff(p, format string, args ...any) {
	v.diffs = append(v.diffs, fmt.Sprintf("%q: ", p)+fmt.Sprintf(format, args...))
}

func (v *verifier) dir(ctx context.Context, id repository.ID, p, fsDir string) error {
	t, err := v.repo.LoadTree(ctx, id)
	if err != nil {
		return fmt.Errorf("load tree: %w", err)
	}
	for _, n := range t.Nodes {
		if validName(n.Name) != "" {
			continue
		}
		np, fsPath := join(p, n.Name), join(fsDir, n.Name)
		if v.filter != nil && !v.filter(np, n) {
			continue
		}
		fi, err := v.fs.Lstat(ctx, fsPath)
		if errors.Is(err, fs.ErrNotExist) {
			v.diff(np, "missing")
			continue
		}
		if err != nil {
			v.diff(np, "lstat: %v", err)
			continue
		}
		want := fs.FileMode(n.Mode)
		if fi.Mode.Type() != want.Type() {
			v.diff(np, "type %v, want %v", fi.Mode.Type(), want.Type())
			continue
		}
		if n.Type != repository.NodeSymlink && fi.Mode&permBits != want&permBits {
			v.diff(np, "mode %v, want %v", fi.Mode&permBits, want&permBits)
		}
		if n.Type != repository.NodeSymlink && !fi.ModTime.Equal(n.ModTime) {
			v.diff(np, "mtime %v, want %v", fi.ModTime, n.ModTime)
		}
		switch n.Type {
		case repository.NodeDir:
			if n.Subtree != nil {
				if err := v.dir(ctx, *n.Subtree, np, fsPath); err != nil {
					return err
				}
			}
		case repository.NodeSymlink:
			target, err := v.fs.Readlink(ctx, fsPath)
			if err != nil {
				v.diff(np, "readlink: %v", err)
			} else if target != n.LinkTarget {
				v.diff(np, "link target %q, want %q", target, n.LinkTarget)
			}
		case repository.NodeFile:
			if fi.Size != n.Size {
				v.diff(np, "size %d, want %d", fi.Size, n.Size)
				continue
			}
			want := sha256.New()
			if err := v.repo.WriteContent(ctx, n.Content, want); err != nil {
				return fmt.Errorf("read content of %q: %w", np, err)
			}
			got := sha256.New()
			f, err := v.fs.Open(ctx, fsPath)
			if err != nil {
				v.diff(np, "open: %v", err)
				continue
			}
			_, err = io.Copy(got, f)
			f.Close()
			if err != nil {
				v.diff(np, "read: %v", err)
			} else if !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
				v.diff(np, "content differs")
			}
		}
	}
	return nil
}
