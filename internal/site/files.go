package site

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"time"

	"github.com/sitevault/sitevault/internal/archiver"
	"github.com/sitevault/sitevault/internal/connection/ssh"
	"github.com/sitevault/sitevault/internal/fsys"
	"github.com/sitevault/sitevault/internal/repository"
	"github.com/sitevault/sitevault/internal/restorer"
	"github.com/sitevault/sitevault/internal/wordpress"
)

// Names of the parts in a site restore point's root tree.
const (
	FilesNode    = "files"
	DatabaseNode = "database"
)

// Snapshot metadata keys a file backup sets.
const (
	MetaContentDir = "content_dir"       // the content dir, relative to the root
	MetaVersion    = "wordpress_version" // as discovered
	MetaLocation   = "location"          // path or user@host:path
)

// ErrNoFiles means a restore point holds no "files" part (it was made by
// `sitevault dir backup`, or holds only a database).
var ErrNoFiles = errors.New("restore point holds no site files")

// Over SFTP each request waits a network round trip, so more files are
// read (SFTPWorkers) and folders listed (SFTPListers) at once than on a
// local disk. BackupFiles and RestoreFiles use these for an SFTP FS when
// the options leave Workers at zero.
const (
	SFTPWorkers = 32
	SFTPListers = 64
)

func isSFTP(f fsys.FS) bool {
	_, ok := f.(*ssh.FS)
	return ok
}

// BackupFiles backs up the site's files from root into repo with the
// WordPress selection rules for wp, incrementally from parentFiles (the
// "files" tree of the previous restore point) when not nil. It returns the
// files tree; the caller flushes the repository and saves the restore
// point (SaveRoot builds its root tree).
func BackupFiles(ctx context.Context, repo archiver.Repo, root fsys.FS, wp *wordpress.Site, parentFiles *repository.ID, opts archiver.Options) (repository.ID, *archiver.Report, error) {
	rules := wp.Rules(wordpress.HeadReader(ctx, root))
	if opts.Selector != nil {
		// Extra excludes (the config file's) narrow the site rules.
		opts.Selector = both{rules, opts.Selector}
	} else {
		opts.Selector = rules
	}
	if opts.Workers == 0 && isSFTP(root) {
		opts.Workers, opts.Listers = SFTPWorkers, SFTPListers
	}
	return archiver.New(repo, root, opts).Snapshot(ctx, "", parentFiles)
}

// TreeSaver stores a tree blob.
type TreeSaver interface {
	SaveTree(ctx context.Context, t *repository.Tree) (repository.ID, error)
}

// SaveRoot stores a restore point's root tree holding the given parts
// (nil parts are left out), with modTime on the part nodes.
func SaveRoot(ctx context.Context, repo TreeSaver, files, database *repository.ID, modTime time.Time) (repository.ID, error) {
	t := &repository.Tree{}
	for _, part := range []struct {
		name string
		id   *repository.ID
	}{{DatabaseNode, database}, {FilesNode, files}} { // sorted by name
		if part.id == nil {
			continue
		}
		id := *part.id
		t.Nodes = append(t.Nodes, &repository.Node{
			Name: part.name, Type: repository.NodeDir, Mode: uint32(fs.ModeDir | 0o700),
			ModTime: modTime.UTC(), Subtree: &id,
		})
	}
	return repo.SaveTree(ctx, t)
}

// TreeLoader loads a tree blob.
type TreeLoader interface {
	LoadTree(ctx context.Context, id repository.ID) (*repository.Tree, error)
}

// FilesTree returns the "files" tree of a site restore point, or an error
// wrapping ErrNoFiles.
func FilesTree(ctx context.Context, repo TreeLoader, sn *repository.Snapshot) (repository.ID, error) {
	t, err := repo.LoadTree(ctx, sn.Tree)
	if err != nil {
		return repository.ID{}, fmt.Errorf("load restore point %s: %w", sn.ID.Short(), err)
	}
	n := t.Find(FilesNode)
	if n == nil || n.Type != repository.NodeDir || n.Subtree == nil {
		return repository.ID{}, fmt.Errorf("restore point %s: %w", sn.ID.Short(), ErrNoFiles)
	}
	return *n.Subtree, nil
}

// ErrUnknownItem means an item name is not one of wordpress.Items().
var ErrUnknownItem = errors.New("unknown item")

// Filter returns the restore filter taking the named items (themes,
// plugins, uploads, roots, contents) and paths, or nil (everything) when
// both are empty. Folders that lead to a selected item are taken too
// (restoring themes creates wp-content), without the files in them.
// contentDir is the content dir the restore point was taken with.
func Filter(items, paths []string, contentDir string) (restorer.Filter, error) {
	for _, it := range items {
		if !slices.Contains(wordpress.Items(), it) {
			return nil, fmt.Errorf("%w %q: choose from %s", ErrUnknownItem, it, strings.Join(wordpress.Items(), ", "))
		}
	}
	if len(items) == 0 && len(paths) == 0 {
		return nil, nil
	}
	if contentDir == "" {
		contentDir = "wp-content"
	}
	rules := wordpress.NewRules(wordpress.RulesOptions{ContentDir: contentDir})
	byPath := restorer.Paths(paths...)
	below := false // an item lives below the content dir
	for _, it := range items {
		if it != wordpress.ItemRoots {
			below = true
		}
	}
	return func(p string, n *repository.Node) bool {
		if byPath != nil && byPath(p, n) {
			return true
		}
		if slices.Contains(items, rules.Item(p)) {
			return true
		}
		// The content dir and the folders above it lead to the items
		// below it.
		return below && n.Type == repository.NodeDir && (p == contentDir || strings.HasPrefix(contentDir, p+"/"))
	}, nil
}

// RestoreFiles writes the files tree into root, taking what filter selects
// (nil: everything). See package restorer for the rules it keeps.
func RestoreFiles(ctx context.Context, repo restorer.Repo, root fsys.FS, files repository.ID, filter restorer.Filter, opts restorer.Options) (*restorer.Report, error) {
	opts.Filter = filter
	if opts.Workers == 0 && isSFTP(root) {
		opts.Workers = SFTPWorkers
	}
	return restorer.New(repo, root, opts).Restore(ctx, files, "")
}

// both takes what a and b both take; the reason is the first refusal's.
type both [2]archiver.Selector

func (s both) Entry(p string, fi fsys.FileInfo) (bool, string) {
	if ok, why := s[0].Entry(p, fi); !ok {
		return false, why
	}
	return s[1].Entry(p, fi)
}

func (s both) Dir(p string, entries []fsys.FileInfo) (bool, string) {
	if ok, why := s[0].Dir(p, entries); !ok {
		return false, why
	}
	return s[1].Dir(p, entries)
}
