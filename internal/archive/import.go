package archive

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/sitevault/sitevault/internal/mysql"
	"github.com/sitevault/sitevault/internal/repository"
	"github.com/sitevault/sitevault/internal/site"
)

// TriggerArchive is the trigger of restore points imported from a download.
const TriggerArchive = "archive"

// Metadata keys Import adds to the imported point.
const (
	MetaArchivePoint = "archive_point" // the downloaded point's id
	MetaArchiveSite  = "archive_site"  // the site it was of
	MetaArchiveTime  = "archive_time"  // when it was taken (RFC 3339)
)

// ImportRepo is the slice of the repository Import needs.
// *repository.Repository satisfies it.
type ImportRepo interface {
	mysql.Store
	SaveSnapshot(ctx context.Context, sn *repository.Snapshot) (repository.ID, error)
	// Flush writes pending blobs out, so that they can be read back (a
	// table renamed to the site's prefix is stored again from its rows).
	Flush(ctx context.Context) error
}

var _ ImportRepo = (*repository.Repository)(nil)

// ImportOptions tune Import. The zero value is usable.
type ImportOptions struct {
	// Progress, if not nil, is updated while the archive is read.
	Progress *Progress
	// Now is the clock for the point's time; nil means time.Now.
	Now func() time.Time
	// Hostname is recorded in the point.
	Hostname string
	// TablePrefix is the table prefix of the site the download is imported
	// into, as its wp-config.php (or the catalog's override) says. Every
	// table, view and trigger of the download must carry the download's
	// own prefix (manifest.json's table_prefix), which is replaced by this
	// one: the point restores into this site's tables only. Required when
	// the download holds tables or views (ErrNoPrefix).
	TablePrefix string
}

// MetaArchivePrefix is the metadata key of the download's own table
// prefix, when Import translated it to the site's.
const MetaArchivePrefix = "archive_table_prefix"

// ErrNoPrefix: Import was not told the site's table prefix, or the
// download names none, and the download holds tables.
var ErrNoPrefix = errors.New("no table prefix to confine the download's tables to")

// maxManifest bounds manifest.json (tens of bytes per entry).
const maxManifest = 512 << 20

// Import reads a download (.tar.gz or .zip, told by its first bytes) and
// records it as a restore point of site (the download's own site if
// site is ""), with trigger "archive" and the standard layout: a "files"
// tree and a "database" tree in the mysql manifest format, so it restores
// like any other point. The point's Time is the import's start (as for a
// backup); the downloaded point's id, site and time are in its Meta.
//
// Every entry is checked against manifest.json: a changed byte, an entry
// the manifest does not list or one it lists that is missing fails the
// import (ErrMismatch), and so do unsafe entries (ErrUnsafeEntry: absolute
// paths, "..", NUL, anything outside files/ and sql/, hard links, devices)
// and table files of another shape (ErrBadSQL).
//
// The download is confined to the site (see the package documentation):
// its tables, views and triggers are renamed from the download's prefix
// to opts.TablePrefix, its SQL is parsed and checked (literal rows only;
// definitions as sitevault writes them, naming only the site's tables),
// and symbolic links that lead outside the site root are left out and
// listed in the point's Summary.Skipped. On any error no restore point is
// recorded (content already stored is unreferenced; prune removes it).
func Import(ctx context.Context, repo ImportRepo, path, siteName string, opts ImportOptions) (*repository.Snapshot, error) {
	if opts.Progress == nil {
		opts.Progress = new(Progress)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	start := opts.Now()
	src, err := openSource(path)
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", path, err)
	}
	defer src.close()
	im := &importer{repo: repo, p: opts.Progress, seen: map[string]seenEntry{}, hash: sha256.New(),
		files: newTreeBuilder(repo, start)}
	sn, err := im.run(ctx, src, siteName, start, opts)
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", path, err)
	}
	return sn, nil
}

type seenEntry struct {
	kind   int
	size   int64
	sha    string
	target string
}

type importer struct {
	repo     ImportRepo
	p        *Progress
	hash     hash.Hash
	seen     map[string]seenEntry
	order    []string
	manifest []byte
	files    *treeBuilder
	hasFiles bool
	tables   map[string]*mysql.TableManifest // by file
	links    map[string]string               // symbolic links: path under files/ → target
	views    []mysql.View
	hasViews bool
	sum      repository.Summary
}

func (im *importer) run(ctx context.Context, src source, siteName string, start time.Time, opts ImportOptions) (*repository.Snapshot, error) {
	im.tables = map[string]*mysql.TableManifest{}
	im.links = map[string]string{}
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		e, err := src.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if err := im.entry(ctx, e); err != nil {
			return nil, err
		}
	}
	m, err := im.verify()
	if err != nil {
		return nil, err
	}
	return im.save(ctx, m, siteName, start, opts)
}

// entry checks and stores one entry, hashing what it reads.
func (im *importer) entry(ctx context.Context, e *entry) error {
	parts, err := checkName(e)
	if err != nil {
		return err
	}
	if _, dup := im.seen[e.name]; dup {
		return fmt.Errorf("entry %q: %w: it appears twice", e.name, ErrMismatch)
	}
	rec := seenEntry{kind: e.kind, target: e.target}
	if e.kind == kindFile {
		im.hash.Reset()
		cr := &countReader{r: e.body, h: im.hash, p: im.p}
		if err := im.content(ctx, e, parts, cr); err != nil {
			return err
		}
		// Whatever a parser left unread still counts.
		if _, err := io.Copy(io.Discard, cr); err != nil {
			return fmt.Errorf("entry %q: %w", e.name, err)
		}
		rec.size, rec.sha = cr.n, hex.EncodeToString(im.hash.Sum(nil))
	} else if parts[0] == FilesDir {
		if e.kind == kindSymlink {
			rel := strings.Join(parts[1:], "/")
			if err := linkTargetSafe(e.name, e.target); err != nil {
				return err
			}
			im.links[rel] = e.target // a link may lead through itself
			if _, err := followLink(im.links, parts[1:len(parts)-1], e.target, 0); err != nil && !errors.Is(err, errLinkLoop) {
				delete(im.links, rel)
				// Left out of the point, and said so: a site may hold such a
				// link (Debian's WordPress links .htaccess to /etc), but a
				// restore never plants one.
				im.sum.Skipped = append(im.sum.Skipped, fmt.Sprintf("%s: symbolic link to %q %v: not imported", e.name, e.target, err))
				im.seen[e.name] = seenEntry{kind: e.kind, target: e.target}
				im.order = append(im.order, e.name)
				return nil
			}
		}
		if err := im.files.add(ctx, e, parts[1:]); err != nil {
			return err
		}
		im.hasFiles = true
		if e.kind == kindSymlink {
			im.p.Files.Add(1)
		} else {
			im.sum.DirsTotal++
		}
	}
	im.seen[e.name] = rec
	im.order = append(im.order, e.name)
	return nil
}

// content reads a regular file entry into the repository.
func (im *importer) content(ctx context.Context, e *entry, parts []string, r io.Reader) error {
	switch parts[0] {
	case ManifestName:
		b, err := io.ReadAll(io.LimitReader(r, maxManifest+1))
		if err != nil {
			return fmt.Errorf("read %s: %w", ManifestName, err)
		}
		if len(b) > maxManifest {
			return fmt.Errorf("%s: %w: larger than %d MiB", ManifestName, ErrNotArchive, maxManifest>>20)
		}
		im.manifest = b
	case SQLDir:
		if e.name == ViewsFile {
			vs, err := parseViews(r, e.name)
			if err != nil {
				return err
			}
			im.views, im.hasViews = vs, true
			return nil
		}
		t, err := parseTable(ctx, im.repo, r, e.name)
		if err != nil {
			return err
		}
		im.tables[e.name] = t
		im.p.Tables.Add(1)
	case FilesDir:
		ids, size, err := im.repo.SaveStream(ctx, r)
		if err != nil {
			return fmt.Errorf("entry %q: %w", e.name, err)
		}
		if ids == nil {
			ids = []repository.ID{}
		}
		n := &repository.Node{Type: repository.NodeFile, Mode: uint32(e.mode), ModTime: e.mtime, Size: size, Content: ids}
		if err := im.files.addNode(ctx, parts[1:], n); err != nil {
			return err
		}
		im.hasFiles = true
		im.p.Files.Add(1)
		im.sum.FilesNew++
		im.sum.BytesTotal += size
	}
	return nil
}

// countReader counts and hashes what is read through it.
type countReader struct {
	r io.Reader
	h hash.Hash
	p *Progress
	n int64
}

func (c *countReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.h.Write(b[:n])
	c.n += int64(n)
	c.p.Bytes.Add(int64(n))
	return n, err
}

// verify compares what was read with manifest.json.
func (im *importer) verify() (*Manifest, error) {
	if im.manifest == nil {
		return nil, fmt.Errorf("%w: it has no %s", ErrNotArchive, ManifestName)
	}
	m := &Manifest{}
	if err := json.Unmarshal(im.manifest, m); err != nil {
		return nil, fmt.Errorf("%w: %s does not parse: %v", ErrNotArchive, ManifestName, err)
	}
	if m.Format != manifestFormat {
		return nil, fmt.Errorf("%w: %s is not a sitevault manifest (format %q)", ErrNotArchive, ManifestName, m.Format)
	}
	if m.Version > Version {
		return nil, fmt.Errorf("manifest version %d: %w", m.Version, ErrNewerFormat)
	}
	mismatch := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s (the download was altered or damaged; download it again)", ErrMismatch, fmt.Sprintf(format, args...))
	}
	listed := map[string]*Entry{}
	for i := range m.Entries {
		e := &m.Entries[i]
		name, err := e.name()
		if err != nil {
			return nil, mismatch("manifest entry %d: %v", i, err)
		}
		if listed[name] != nil {
			return nil, mismatch("manifest lists %q twice", name)
		}
		listed[name] = e
	}
	for _, name := range im.order {
		if name == ManifestName {
			continue
		}
		got, want := im.seen[name], listed[name]
		if want == nil {
			return nil, mismatch("entry %q is not in the manifest", name)
		}
		switch {
		case got.kind == kindFile && want.Type == EntryFile:
			if got.size != want.Size {
				return nil, mismatch("entry %q is %d bytes, the manifest says %d", name, got.size, want.Size)
			}
			if got.sha != want.SHA256 {
				return nil, mismatch("entry %q has SHA-256 %s, the manifest says %s", name, got.sha, want.SHA256)
			}
		case got.kind == kindDir && want.Type == EntryDir:
		case got.kind == kindSymlink && want.Type == EntrySymlink:
			target, err := want.target()
			if err != nil || target != got.target {
				return nil, mismatch("symbolic link %q points to %q, the manifest says %q", name, got.target, target)
			}
		default:
			return nil, mismatch("entry %q is not of the type the manifest says (%s)", name, want.Type)
		}
		delete(listed, name)
	}
	if len(listed) > 0 {
		missing := slices.Sorted(maps.Keys(listed))
		return nil, mismatch("%d entries of the manifest are missing, first %q", len(missing), missing[0])
	}
	if m.Files != im.hasFiles && im.hasFiles {
		return nil, mismatch("it holds files/ but the manifest says the point has no files")
	}
	// Symbolic links stay inside the site root.
	for _, l := range slices.Sorted(maps.Keys(im.links)) {
		if err := linkInside(im.links, l); err != nil {
			return nil, err
		}
	}
	if (len(im.tables) > 0 || im.hasViews) && m.TablePrefix == "" {
		return nil, fmt.Errorf("%w: %s names no table_prefix, so its tables cannot be told from other sites' (downloads of sitevault always name it)", ErrNoPrefix, ManifestName)
	}
	// Tables: every table file is listed with its table and rows.
	byFile := map[string]Table{}
	for _, t := range m.Tables {
		byFile[t.File] = t
	}
	if len(byFile) != len(im.tables) {
		return nil, mismatch("it holds %d table files, the manifest lists %d", len(im.tables), len(byFile))
	}
	names := map[string]bool{}
	for file, t := range im.tables {
		if names[t.Name] {
			return nil, mismatch("two table files create table %q", t.Name)
		}
		names[t.Name] = true
		want, ok := byFile[file]
		if !ok {
			return nil, mismatch("table file %q is not in the manifest's tables", file)
		}
		if want.Name != t.Name {
			return nil, mismatch("%s creates table %q, the manifest says %q", file, t.Name, want.Name)
		}
		if t.Rows() != want.Rows {
			return nil, mismatch("%s holds %d rows, the manifest says %d", file, t.Rows(), want.Rows)
		}
		if !strings.HasPrefix(t.Name, m.TablePrefix) {
			return nil, fmt.Errorf("%s: %w: table %q does not start with the download's table prefix %q", file, ErrBadSQL, t.Name, m.TablePrefix)
		}
	}
	var views []string
	for _, v := range im.views {
		if names[v.Name] {
			return nil, mismatch("%s creates %q twice, or a view named like a table", ViewsFile, v.Name)
		}
		names[v.Name] = true
		views = append(views, v.Name)
		if !strings.HasPrefix(v.Name, m.TablePrefix) {
			return nil, fmt.Errorf("%s: %w: view %q does not start with the download's table prefix %q", ViewsFile, ErrBadSQL, v.Name, m.TablePrefix)
		}
	}
	if !slices.Equal(views, m.Views) {
		return nil, mismatch("%s creates views %q, the manifest says %q", ViewsFile, views, m.Views)
	}
	if !m.Database && (len(im.tables) > 0 || im.hasViews) {
		return nil, mismatch("it holds sql/ but the manifest says the point has no database")
	}
	return m, nil
}

// save stores the database manifest, the root tree and the snapshot.
func (im *importer) save(ctx context.Context, m *Manifest, siteName string, start time.Time, opts ImportOptions) (*repository.Snapshot, error) {
	var filesID, dbID *repository.ID
	if m.Files || im.hasFiles {
		id, err := im.files.finish(ctx)
		if err != nil {
			return nil, err
		}
		filesID = &id
	}
	if m.Database {
		if err := im.translate(ctx, m.TablePrefix, opts.TablePrefix); err != nil {
			return nil, err
		}
		dm := &mysql.Manifest{Views: im.views}
		for _, file := range slices.Sorted(maps.Keys(im.tables)) {
			t := im.tables[file]
			var schema strings.Builder
			schema.WriteString(t.Create + ";\n")
			if len(t.Triggers) > 0 {
				schema.WriteString("DELIMITER ;;\n")
				for _, tr := range t.Triggers {
					schema.WriteString(tr + ";;\n")
				}
				schema.WriteString("DELIMITER ;\n")
			}
			ids, size, err := im.repo.SaveStream(ctx, strings.NewReader(schema.String()))
			if err != nil {
				return nil, fmt.Errorf("save schema of %s: %w", t.Name, err)
			}
			t.Schema = &repository.Node{Size: size, Content: ids}
			dm.Tables = append(dm.Tables, t)
		}
		id, err := dm.Save(ctx, im.repo)
		if err != nil {
			return nil, err
		}
		dbID = &id
	}
	root, err := site.SaveRoot(ctx, im.repo, filesID, dbID, start)
	if err != nil {
		return nil, fmt.Errorf("save root tree: %w", err)
	}
	if siteName == "" {
		siteName = m.Site
	}
	meta := maps.Clone(m.Meta)
	if meta == nil {
		meta = map[string]string{}
	}
	delete(meta, MetaTablePrefix)
	if m.Database && opts.TablePrefix != "" {
		meta[MetaTablePrefix] = opts.TablePrefix
		if m.TablePrefix != opts.TablePrefix {
			meta[MetaArchivePrefix] = m.TablePrefix
		}
	}
	meta[MetaArchivePoint] = m.Point
	meta[MetaArchiveSite] = m.Site
	meta[MetaArchiveTime] = m.Time.UTC().Format(time.RFC3339Nano)
	im.sum.BytesRead = im.p.Bytes.Load()
	im.sum.Started = start
	im.sum.Finished = opts.Now()
	sn := &repository.Snapshot{
		Time: start, Site: siteName, Hostname: opts.Hostname, Trigger: TriggerArchive,
		Tree: root, Meta: meta, Summary: &im.sum,
	}
	if _, err := im.repo.SaveSnapshot(ctx, sn); err != nil {
		return nil, err
	}
	return sn, nil
}

// treeBuilder builds the files tree from entries that arrive folder by
// folder (a folder's entries contiguous, as Write and tar/zip tools write
// them), holding only the folders on the current path: a folder's tree is
// saved when the entries move past it.
type treeBuilder struct {
	repo    mysql.Store
	defTime time.Time
	stack   []*dirFrame // stack[0] is files/
	closed  map[string]bool
}

type dirFrame struct {
	name     string
	path     string
	mode     fs.FileMode
	mtime    time.Time
	explicit bool
	nodes    []*repository.Node
}

func newTreeBuilder(repo mysql.Store, defTime time.Time) *treeBuilder {
	return &treeBuilder{repo: repo, defTime: defTime, closed: map[string]bool{},
		stack: []*dirFrame{{mode: 0o755, mtime: defTime}}}
}

// enter makes the folder at comps (relative to files/) the current one.
func (b *treeBuilder) enter(ctx context.Context, comps []string) error {
	common := 0
	for common < len(comps) && common+1 < len(b.stack) && b.stack[common+1].name == comps[common] {
		common++
	}
	for len(b.stack) > common+1 {
		if err := b.pop(ctx); err != nil {
			return err
		}
	}
	for _, c := range comps[common:] {
		p := b.stack[len(b.stack)-1].path
		if p != "" {
			p += "/"
		}
		p += c
		if b.closed[p] {
			return fmt.Errorf("entry in %q: %w: that folder's entries are not together in the archive (downloads keep each folder's entries together)", FilesDir+"/"+p, ErrUnsafeEntry)
		}
		b.stack = append(b.stack, &dirFrame{name: c, path: p, mode: 0o755, mtime: b.defTime})
	}
	return nil
}

// add records a folder or symbolic link entry at comps.
func (b *treeBuilder) add(ctx context.Context, e *entry, comps []string) error {
	if e.kind == kindDir {
		if err := b.enter(ctx, comps); err != nil {
			return err
		}
		top := b.stack[len(b.stack)-1]
		top.mode, top.mtime, top.explicit = e.mode, e.mtime, true
		return nil
	}
	if len(comps) == 0 {
		return fmt.Errorf("entry %q: %w: files/ must be a folder", e.name, ErrUnsafeEntry)
	}
	n := &repository.Node{Type: repository.NodeSymlink, Mode: uint32(fs.ModeSymlink | e.mode), ModTime: e.mtime,
		Size: int64(len(e.target)), LinkTarget: e.target}
	return b.addNode(ctx, comps, n)
}

// addNode adds a file or link node at comps.
func (b *treeBuilder) addNode(ctx context.Context, comps []string, n *repository.Node) error {
	if len(comps) == 0 {
		return fmt.Errorf("entry %q: %w: files/ must be a folder", FilesDir, ErrUnsafeEntry)
	}
	if err := b.enter(ctx, comps[:len(comps)-1]); err != nil {
		return err
	}
	n.Name = comps[len(comps)-1]
	top := b.stack[len(b.stack)-1]
	top.nodes = append(top.nodes, n)
	return nil
}

// pop saves the current folder's tree into its parent.
func (b *treeBuilder) pop(ctx context.Context) error {
	top := b.stack[len(b.stack)-1]
	b.stack = b.stack[:len(b.stack)-1]
	id, err := b.save(ctx, top)
	if err != nil {
		return err
	}
	b.closed[top.path] = true
	parent := b.stack[len(b.stack)-1]
	parent.nodes = append(parent.nodes, &repository.Node{Name: top.name, Type: repository.NodeDir,
		Mode: uint32(fs.ModeDir | top.mode), ModTime: top.mtime, Subtree: &id})
	return nil
}

func (b *treeBuilder) save(ctx context.Context, d *dirFrame) (repository.ID, error) {
	slices.SortFunc(d.nodes, func(x, y *repository.Node) int { return strings.Compare(x.Name, y.Name) })
	for i := 1; i < len(d.nodes); i++ {
		if d.nodes[i].Name == d.nodes[i-1].Name {
			p := d.path
			if p != "" {
				p += "/"
			}
			return repository.ID{}, fmt.Errorf("entry %q: %w: it appears twice", FilesDir+"/"+p+d.nodes[i].Name, ErrMismatch)
		}
	}
	id, err := b.repo.SaveTree(ctx, &repository.Tree{Nodes: d.nodes})
	if err != nil {
		return repository.ID{}, fmt.Errorf("save tree of %q: %w", FilesDir+"/"+d.path, err)
	}
	return id, nil
}

// finish saves every open folder and returns the files tree.
func (b *treeBuilder) finish(ctx context.Context) (repository.ID, error) {
	for len(b.stack) > 1 {
		if err := b.pop(ctx); err != nil {
			return repository.ID{}, err
		}
	}
	return b.save(ctx, b.stack[0])
}

// linkTargetSafe refuses a symbolic link whose target no file system
// can hold (empty, NUL).
func linkTargetSafe(name, target string) error {
	switch {
	case target == "":
		return fmt.Errorf("entry %q: %w: symbolic link with an empty target", name, ErrUnsafeEntry)
	case strings.Contains(target, "\x00"):
		return fmt.Errorf("entry %q: %w: symbolic link target holds NUL", name, ErrUnsafeEntry)
	}
	return nil
}

// maxLinkDepth bounds the links followed resolving one link (as the
// kernel's ELOOP does).
const maxLinkDepth = 40

// errLinkLoop: a link resolves through more links than the kernel follows.
var errLinkLoop = errors.New("goes through too many links")

// linkInside resolves the symbolic link at path (under files/) through
// the download's own tree, following its other links, and refuses it if
// it leads outside the site root. Import leaves out links that lead
// outside through the links before them in the archive (a site may have
// such links: restoring them would plant a path to anywhere on the
// machine, /etc/shadow or sitevault's own files, in the site); one that
// leads outside only through a link after it is a crafted chain, and
// fails the import.
func linkInside(links map[string]string, path string) error {
	comps := strings.Split(path, "/")
	_, err := followLink(links, comps[:len(comps)-1], links[path], 0)
	if err != nil && !errors.Is(err, errLinkLoop) {
		return fmt.Errorf("entry %q: %w: symbolic link to %q %v (a download's links may only point inside the site)", FilesDir+"/"+path, ErrUnsafeEntry, links[path], err)
	}
	return nil
}

// followLink resolves target from the folder dir (components under
// files/) and returns where it leads.
func followLink(links map[string]string, dir []string, target string, depth int) ([]string, error) {
	if depth > maxLinkDepth {
		// A loop (or a longer chain than the kernel follows, which counts
		// every link of a lookup against the same limit): it resolves to
		// nothing, so it leads nowhere either.
		return nil, errLinkLoop
	}
	if strings.HasPrefix(target, "/") {
		return nil, errors.New("leads outside the site root")
	}
	comps := slices.Clone(dir)
	for _, c := range strings.Split(target, "/") {
		switch c {
		case "", ".":
			continue
		case "..":
			if len(comps) == 0 {
				return nil, errors.New("leads outside the site root")
			}
			comps = comps[:len(comps)-1]
			continue
		}
		comps = append(comps, c)
		if t, ok := links[strings.Join(comps, "/")]; ok {
			var err error
			if comps, err = followLink(links, comps[:len(comps)-1], t, depth+1); err != nil {
				return nil, err
			}
		}
	}
	return comps, nil
}

// translate confines the download's tables, triggers and views to the
// site: each name loses the download's prefix src for the site's dst,
// and every definition is checked and rendered again under the new
// names (checkCreate, checkTrigger, checkView); a reference to a table
// without src (another site's, or none's) fails the import.
func (im *importer) translate(ctx context.Context, src, dst string) error {
	if len(im.tables) == 0 && len(im.views) == 0 {
		return nil
	}
	if dst == "" {
		return fmt.Errorf("%w: the site's table prefix is not known", ErrNoPrefix)
	}
	rename := func(n string) (string, error) {
		if src == "" || !strings.HasPrefix(n, src) {
			return "", fmt.Errorf("%s is not the site's: its name does not start with the download's table prefix %q", quoteIdent(n), src)
		}
		return dst + n[len(src):], nil
	}
	if src != dst {
		if err := im.repo.Flush(ctx); err != nil {
			return err
		}
	}
	for _, file := range slices.Sorted(maps.Keys(im.tables)) {
		t := im.tables[file]
		to, err := rename(t.Name)
		if err != nil {
			return fmt.Errorf("%s: %w: %v", file, ErrBadSQL, err)
		}
		create, err := checkCreate(t.Create, t.Name, to, rename)
		if err != nil {
			return fmt.Errorf("%s: %w: CREATE TABLE %s: %v", file, ErrBadSQL, quoteIdent(t.Name), err)
		}
		for i, tr := range t.Triggers {
			if t.Triggers[i], err = checkTrigger(tr, t.Name, to, rename); err != nil {
				return fmt.Errorf("%s: %w: %v", file, ErrBadSQL, err)
			}
		}
		if to != t.Name {
			keys := prefixedKeys{src: src, dst: dst, col: -1}
			switch rest := t.Name[len(src):]; {
			case rest == "usermeta": // <prefix>[N_]capabilities, <prefix>[N_]user_level, …
				keys.col = slices.Index(t.Columns, "meta_key")
			case optionsTable.MatchString(rest): // <prefix>[N_]user_roles
				// Only that one: options such as wp_page_for_privacy_policy
				// merely look prefixed.
				keys.col = slices.Index(t.Columns, "option_name")
				keys.only = strings.TrimSuffix(rest, "options") + "user_roles"
			}
			for _, seg := range t.Segments {
				if err := im.renameSegment(ctx, seg, t.Name, to, keys); err != nil {
					return fmt.Errorf("%s: %w", file, err)
				}
			}
		}
		t.Name, t.Create = to, create
	}
	for i, v := range im.views {
		name, create, err := checkView(v.Create, rename)
		if err != nil {
			return fmt.Errorf("%s: %w: %v", ViewsFile, ErrBadSQL, err)
		}
		im.views[i] = mysql.View{Name: name, Create: create}
	}
	return nil
}

// renameSegment stores seg again with its INSERTs into table from
// pointed at table to (the rest of each line was checked when read).
func (im *importer) renameSegment(ctx context.Context, seg *mysql.Segment, from, to string, keys prefixedKeys) error {
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := im.repo.WriteContent(ctx, seg.Content, pw)
		pw.CloseWithError(err)
		done <- err
	}()
	rr, rw := io.Pipe()
	go func() {
		oldHead, newHead := []byte("INSERT INTO "+quoteIdent(from)+" "), []byte("INSERT INTO "+quoteIdent(to)+" ")
		br := bufio.NewReaderSize(pr, 1<<20)
		bw := bufio.NewWriterSize(rw, 256<<10)
		lineStart := true
		var err error
		for err == nil {
			frag, rerr := br.ReadSlice('\n')
			if lineStart && keys.col >= 0 && bytes.HasPrefix(frag, oldHead) {
				// The whole line, to rename WordPress's prefixed keys in it.
				line := append([]byte(nil), frag...)
				for rerr == bufio.ErrBufferFull {
					if len(line) > maxStatement {
						err = fmt.Errorf("a row of %s is longer than %d MiB", from, maxStatement>>20)
						break
					}
					frag, rerr = br.ReadSlice('\n')
					line = append(line, frag...)
				}
				if err != nil {
					break
				}
				frag = keys.rewrite(line[len(oldHead):])
				bw.Write(newHead)
			} else if lineStart && bytes.HasPrefix(frag, oldHead) {
				bw.Write(newHead)
				frag = frag[len(oldHead):]
			}
			if _, werr := bw.Write(frag); werr != nil {
				err = werr
				break
			}
			lineStart = rerr != bufio.ErrBufferFull
			if rerr != nil && rerr != bufio.ErrBufferFull {
				if rerr != io.EOF {
					err = rerr
				}
				break
			}
		}
		if err == nil {
			err = bw.Flush()
		}
		rw.CloseWithError(err)
		pr.CloseWithError(err)
	}()
	ids, size, err := im.repo.SaveStream(ctx, rr)
	rr.CloseWithError(errors.New("rename abandoned"))
	if werr := <-done; err == nil && werr != nil {
		err = werr
	}
	if err != nil {
		return fmt.Errorf("rename the rows of %s to %s: %w", from, to, err)
	}
	if ids == nil {
		ids = []repository.ID{}
	}
	seg.Content, seg.Size = ids, size
	return nil
}

// prefixedKeys renames WordPress's own keys that embed the table prefix
// — the option <prefix>user_roles, the user meta <prefix>capabilities,
// <prefix>user_level and the like — in column col of a table's rows, so
// the site works under its new prefix (users keep their roles).
type prefixedKeys struct {
	src, dst string
	col      int    // -1: none
	only     string // if set, the one key (without src) to rename
}

// optionsTable matches the name, without the prefix, of a site's options
// table (multisite's N_options too).
var optionsTable = regexp.MustCompile(`^([0-9]+_)?options$`)

// rewrite returns the rest of an INSERT line after its table name,
// "(`a`,`b`) VALUES (…),(…);\n", with the string values of column col
// that start with src starting with dst instead. The line was checked by
// valuesChecker: only literals.
func (k prefixedKeys) rewrite(s []byte) []byte {
	i := bytes.Index(s, []byte(") VALUES "))
	if i < 0 || k.col < 0 {
		return s
	}
	i += len(") VALUES ")
	out := append([]byte(nil), s[:i]...)
	col, start := 0, false
	for i < len(s) {
		c := s[i]
		switch {
		case c == '(':
			col, start = 0, true
			out = append(out, c)
			i++
			continue
		case c == ',':
			col++
			start = true
			out = append(out, c)
			i++
			continue
		case c == '\'':
			j := i + 1
			for j < len(s) {
				if s[j] == '\\' {
					j += 2
					continue
				}
				if s[j] == '\'' {
					if j+1 < len(s) && s[j+1] == '\'' {
						j += 2
						continue
					}
					break
				}
				j++
			}
			lit := s[i:min(j+1, len(s))]
			if start && col == k.col && bytes.HasPrefix(lit[1:], []byte(k.src)) &&
				(k.only == "" || string(lit[1+len(k.src):]) == k.only+"'") {
				out = append(out, '\'')
				out = append(out, k.dst...)
				out = append(out, lit[1+len(k.src):]...)
			} else {
				out = append(out, lit...)
			}
			i = j + 1
		default:
			out = append(out, c)
			i++
		}
		start = false
	}
	return out
}
