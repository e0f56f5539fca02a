package wordpress

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
	"syscall"

	"github.com/sitevault/sitevault/internal/fsys"
)

var (
	// ErrNotWordPress means the folder holds no WordPress install
	// (neither wp-includes/version.php nor wp-settings.php).
	ErrNotWordPress = errors.New("not a WordPress site")
	// ErrNoConfig means wp-config.php is neither in the site root nor in the
	// folder above it (or that folder is itself a WordPress root).
	ErrNoConfig = errors.New("wp-config.php not found")
	// ErrTooLarge means a PHP file sitevault reads is implausibly large.
	ErrTooLarge = errors.New("file too large")
)

// maxPHPSize bounds what ParseConfig reads; wp-config.php files are a few KiB.
const maxPHPSize = 4 << 20

// Reader is the part of an fsys.FS that discovery needs; fsys.FS has it.
type Reader interface {
	Lstat(ctx context.Context, name string) (fsys.FileInfo, error)
	Open(ctx context.Context, name string) (fsys.File, error)
}

// Lister is the part of an fsys.FS that Explain needs; fsys.FS has it.
type Lister interface {
	ReadDir(ctx context.Context, dir string) ([]fsys.FileInfo, error)
}

var (
	_ Reader = fsys.FS(nil)
	_ Lister = fsys.FS(nil)
)

// DiscoverOptions tunes Discover.
type DiscoverOptions struct {
	// Parent reads the folder above the site root, where WordPress also
	// looks for wp-config.php. Nil means only the root is searched.
	Parent Reader
	// Env is the site's environment for getenv() in wp-config.php.
	Env func(name string) (string, bool)
	// RootPath is the root's absolute path on the site's host, so that
	// conditions on absolute paths (file_exists('/srv/site/local.php'))
	// can be decided when they point inside the root or the folder above.
	// "" leaves them undecided.
	RootPath string
}

// Site is what Discover learned about a WordPress install.
type Site struct {
	Version     string // $wp_version from wp-includes/version.php, "" if absent
	ConfigAbove bool   // wp-config.php was found in the folder above the root
	Config      *Config
	// ContentDir is the content folder relative to the root ("wp-content",
	// or where WP_CONTENT_DIR points inside the root).
	ContentDir string
	// ExternalContentDir is WP_CONTENT_DIR as written when it lies outside
	// the root or cannot be evaluated; the files there are not part of the
	// site's FS, and callers should warn about it.
	ExternalContentDir string
}

// Multisite reports whether the site is a multisite network.
func (s *Site) Multisite() bool { return s.Config.Multisite() }

// Rules returns the selection rules for the site's layout.
func (s *Site) Rules(readHead func(name string, n int) ([]byte, error)) *Rules {
	return NewRules(RulesOptions{ContentDir: s.ContentDir, ReadHead: readHead})
}

// Discover finds the WordPress install rooted at site: it checks that the
// folder is WordPress, reads the version, finds wp-config.php as
// wp-load.php does (in the root, else in the folder above when that folder
// holds no wp-settings.php) and parses it.
func Discover(ctx context.Context, site Reader, opts DiscoverOptions) (*Site, error) {
	s := &Site{}
	version, err := readFile(ctx, site, "wp-includes/version.php")
	switch {
	case err == nil:
		cfg, err := ParseConfig(version, ParseOptions{})
		if err != nil {
			return nil, fmt.Errorf("read wp-includes/version.php: %w", err)
		}
		if v, ok := cfg.Vars["wp_version"]; ok && v.Kind == KindString {
			s.Version = v.Text
		}
	case errors.Is(err, fs.ErrNotExist):
		if _, err := site.Lstat(ctx, "wp-settings.php"); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("discover site: %w: neither wp-includes/version.php nor wp-settings.php is there", ErrNotWordPress)
			}
			return nil, fmt.Errorf("discover site: %w", err)
		}
	default:
		return nil, fmt.Errorf("discover site: %w", err)
	}

	src, err := readFile(ctx, site, "wp-config.php")
	if errors.Is(err, fs.ErrNotExist) {
		if opts.Parent == nil {
			return nil, fmt.Errorf("discover site: %w in the site root", ErrNoConfig)
		}
		src, err = readFile(ctx, opts.Parent, "wp-config.php")
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("discover site: %w in the site root or the folder above it", ErrNoConfig)
		}
		if err == nil {
			// wp-load.php ignores a config above the root when that
			// folder is a WordPress root itself.
			_, serr := opts.Parent.Lstat(ctx, "wp-settings.php")
			if serr == nil {
				return nil, fmt.Errorf("discover site: %w: the folder above the root holds its own WordPress (wp-settings.php), so its wp-config.php is not this site's", ErrNoConfig)
			}
			if !errors.Is(serr, fs.ErrNotExist) {
				return nil, fmt.Errorf("discover site: %w", serr)
			}
			s.ConfigAbove = true
		}
	}
	if err != nil {
		return nil, fmt.Errorf("discover site: %w", err)
	}
	s.Config, err = ParseConfig(src, ParseOptions{Env: opts.Env, Stat: statFunc(ctx, site, opts, s.ConfigAbove)})
	if err != nil {
		return nil, fmt.Errorf("discover site: %w", err)
	}
	if dir, ok := s.Config.ContentDir(s.ConfigAbove); ok {
		s.ContentDir = dir
	} else {
		s.ContentDir = "wp-content"
		s.ExternalContentDir = dir
	}
	return s, nil
}

// errOutside means a path in a condition lies where the connection
// cannot look; the condition stays undecided.
var errOutside = errors.New("outside the site root and the folder above it")

// statFunc answers ParseOptions.Stat through the site's readers: paths
// relative to ABSPATH, to wp-config.php's folder, or absolute under
// opts.RootPath, reaching into the folder above when one is readable.
func statFunc(ctx context.Context, site Reader, opts DiscoverOptions, configAbove bool) func(base, name string) (fs.FileMode, error) {
	return func(base, name string) (fs.FileMode, error) {
		name = path.Clean(name)
		inParent := false
		switch base {
		case BaseConfDir:
			inParent = configAbove
		case BaseABSPATH:
		default:
			if !path.IsAbs(opts.RootPath) || !path.IsAbs(name) {
				return 0, errOutside
			}
			root := path.Clean(opts.RootPath)
			if rel, ok := under(root, name); ok {
				name = rel
				break
			}
			rel, ok := under(path.Dir(root), name)
			if !ok || root == "/" {
				return 0, errOutside
			}
			name, inParent = rel, true
		}
		if !inParent && (name == ".." || strings.HasPrefix(name, "../")) {
			name, inParent = path.Clean(strings.TrimPrefix(strings.TrimPrefix(name, ".."), "/")), true
			if name == "" {
				name = "."
			}
		}
		if name == ".." || strings.HasPrefix(name, "../") {
			return 0, errOutside
		}
		r := site
		if inParent {
			if opts.Parent == nil {
				return 0, errOutside
			}
			r = opts.Parent
		}
		if name == "." {
			return fs.ModeDir, nil
		}
		return statThrough(ctx, r, name)
	}
}

// under returns name relative to dir ("." for dir itself), both clean and absolute.
func under(dir, name string) (string, bool) {
	switch {
	case name == dir:
		return ".", true
	case dir == "/":
		return name[1:], true
	case strings.HasPrefix(name, dir+"/"):
		return name[len(dir)+1:], true
	}
	return "", false
}

// statThrough returns name's mode, following a final symbolic link as
// PHP's file_exists does; a missing parent or a file used as a folder is
// fs.ErrNotExist, as PHP answers false.
func statThrough(ctx context.Context, r Reader, name string) (fs.FileMode, error) {
	fi, err := r.Lstat(ctx, name)
	if errors.Is(err, syscall.ENOTDIR) {
		return 0, fs.ErrNotExist
	}
	if err != nil {
		return 0, err
	}
	if fi.Mode&fs.ModeSymlink == 0 {
		return fi.Mode, nil
	}
	f, err := r.Open(ctx, name)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	fi, err = f.Stat()
	if err != nil {
		return 0, err
	}
	return fi.Mode, nil
}

// readFile reads a small file through r.
func readFile(ctx context.Context, r Reader, name string) ([]byte, error) {
	f, err := r.Open(ctx, name)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			// Open fails on a link that leaves the FS; say so.
			if fi, lerr := r.Lstat(ctx, name); lerr == nil && fi.Mode&fs.ModeSymlink != 0 {
				return nil, fmt.Errorf("read %s (a symbolic link, perhaps to outside the site): %w", name, err)
			}
		}
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxPHPSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if len(data) > maxPHPSize {
		return nil, fmt.Errorf("read %s: %w (over %d bytes)", name, ErrTooLarge, maxPHPSize)
	}
	return data, nil
}

// HeadReader returns a RulesOptions.ReadHead that reads through r with ctx.
func HeadReader(ctx context.Context, r Reader) func(name string, n int) ([]byte, error) {
	return func(name string, n int) ([]byte, error) {
		f, err := r.Open(ctx, name)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		buf := make([]byte, n)
		m, err := io.ReadFull(f, buf)
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, err
		}
		return buf[:m], nil
	}
}

// Decision is the fate of one path, as Explain reports it.
type Decision struct {
	Path   string // slash-separated, relative to the root; "" is the root
	Info   fsys.FileInfo
	Taken  bool
	Reason string // the rule that excluded the path, "" when taken
	Item   string // the item the path belongs to
}

// Explain walks the site depth-first in name order and calls fn for every
// path: taken, or excluded with the rule that excluded it. Nothing below an
// excluded folder is reported, and symbolic links are not followed. The
// root is reported only when it is excluded. An error from fn stops the
// walk and is returned.
func Explain(ctx context.Context, site Lister, rules *Rules, fn func(Decision) error) error {
	return explainDir(ctx, site, rules, "", fsys.FileInfo{Mode: fs.ModeDir}, fn)
}

func explainDir(ctx context.Context, site Lister, rules *Rules, dir string, info fsys.FileInfo, fn func(Decision) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	entries, err := site.ReadDir(ctx, dir)
	if err != nil {
		return fmt.Errorf("explain: list %q: %w", dir, err)
	}
	take, reason := rules.Dir(dir, entries)
	if dir != "" || !take {
		if err := fn(Decision{Path: dir, Info: info, Taken: take, Reason: reason, Item: rules.Item(dir)}); err != nil {
			return err
		}
	}
	if !take {
		return nil
	}
	sortInfos(entries)
	for _, e := range entries {
		p := e.Name
		if dir != "" {
			p = dir + "/" + e.Name
		}
		take, reason := rules.Entry(p, e)
		if take && e.Mode.IsDir() {
			if err := explainDir(ctx, site, rules, p, e, fn); err != nil {
				return err
			}
			continue
		}
		if err := fn(Decision{Path: p, Info: e, Taken: take, Reason: reason, Item: rules.Item(p)}); err != nil {
			return err
		}
	}
	return nil
}

// sortInfos sorts by name in byte order, as names are byte strings.
func sortInfos(entries []fsys.FileInfo) {
	slices.SortFunc(entries, func(a, b fsys.FileInfo) int { return strings.Compare(a.Name, b.Name) })
}
