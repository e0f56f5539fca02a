package archive

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sitevault/sitevault/internal/mysql"
	"github.com/sitevault/sitevault/internal/repository"
	"github.com/sitevault/sitevault/internal/site"
)

// Repo is the slice of the repository Write needs: trees and content, and
// the database manifest read through them. *repository.Repository
// satisfies it.
type Repo = mysql.Store

// Options tune Write. The zero value is usable.
type Options struct {
	// Progress, if not nil, is updated while the archive is written.
	Progress *Progress
	// Now is the clock for the manifest's creation time; nil means time.Now.
	Now func() time.Time
}

// Progress holds counters a caller may poll while a download or an
// import runs.
type Progress struct {
	Files  atomic.Int64 // regular files and links under files/
	Bytes  atomic.Int64 // content bytes of files and tables (before compression)
	Tables atomic.Int64 // table files
}

// Snapshot metadata keys the download repeats at the manifest's top level.
const (
	MetaTablePrefix = "table_prefix"
	MetaWPVersion   = "wp_version"
)

// Write writes restore point sn as an archive of format to w, streaming:
// memory stays bounded whatever the size of a file or a table. Nothing in
// the point is left out silently: a node the archive cannot hold (an
// unknown type, a name with "/" or NUL) fails the download. On error the
// bytes written so far are not a usable archive; the caller removes them.
func Write(ctx context.Context, repo Repo, sn *repository.Snapshot, w io.Writer, format Format, opts Options) error {
	if opts.Progress == nil {
		opts.Progress = new(Progress)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	var s sink
	switch format {
	case TarGz:
		ts, err := newTarSink(w)
		if err != nil {
			return err
		}
		s = ts
	case Zip:
		s = newZipSink(w)
	default:
		return fmt.Errorf("write archive: unknown format %v", format)
	}
	aw := &writer{repo: repo, s: s, p: opts.Progress, sn: sn, hash: sha256.New()}
	if err := aw.write(ctx, opts.Now()); err != nil {
		return fmt.Errorf("download restore point %s: %w", sn.ID.Short(), err)
	}
	return nil
}

type writer struct {
	repo    Repo
	s       sink
	p       *Progress
	sn      *repository.Snapshot
	hash    hash.Hash
	entries []Entry
}

func (aw *writer) write(ctx context.Context, now time.Time) error {
	root, err := aw.repo.LoadTree(ctx, aw.sn.Tree)
	if err != nil {
		return fmt.Errorf("load root tree: %w", err)
	}
	m := &Manifest{
		Format: manifestFormat, Version: Version,
		Site: aw.sn.Site, Point: aw.sn.ID.String(), Time: aw.sn.Time, Trigger: aw.sn.Trigger,
		Meta: aw.sn.Meta, Created: now.UTC(), Tables: []Table{},
		TablePrefix:      aw.sn.Meta[MetaTablePrefix],
		WordPressVersion: aw.sn.Meta[MetaWPVersion],
	}
	if m.WordPressVersion == "" {
		m.WordPressVersion = aw.sn.Meta[site.MetaVersion]
	}
	m.WordPressCore = CoreNote(m.WordPressVersion)
	files, database := root.Find(site.FilesNode), root.Find(site.DatabaseNode)
	if (files == nil || files.Subtree == nil) && (database == nil || database.Subtree == nil) {
		return fmt.Errorf("restore point holds neither %q nor %q (it is not a site restore point)", site.FilesNode, site.DatabaseNode)
	}
	if files != nil && files.Subtree != nil {
		m.Files = true
		if err := aw.s.dir(FilesDir, fs.FileMode(files.Mode)&permBits, files.ModTime); err != nil {
			return err
		}
		aw.entries = append(aw.entries, newEntry(FilesDir, EntryDir))
		if err := aw.tree(ctx, *files.Subtree, FilesDir); err != nil {
			return err
		}
	}
	if database != nil && database.Subtree != nil {
		m.Database = true
		if err := aw.database(ctx, *database.Subtree, m); err != nil {
			return err
		}
	}
	m.Entries = aw.entries
	b, err := json.MarshalIndent(m, "", " ")
	if err != nil {
		return fmt.Errorf("encode manifest: %w", err)
	}
	b = append(b, '\n')
	w, err := aw.s.file(ManifestName, int64(len(b)), 0o644, now)
	if err != nil {
		return fmt.Errorf("write %s: %w", ManifestName, err)
	}
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("write %s: %w", ManifestName, err)
	}
	if err := aw.s.close(); err != nil {
		return fmt.Errorf("finish archive: %w", err)
	}
	return nil
}

// tree writes the contents of a files tree under prefix, depth first in
// the tree's (byte) order, so that a folder's entries are contiguous.
func (aw *writer) tree(ctx context.Context, id repository.ID, prefix string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	t, err := aw.repo.LoadTree(ctx, id)
	if err != nil {
		return fmt.Errorf("load tree of %q: %w", prefix, err)
	}
	for _, n := range t.Nodes {
		p := prefix + "/" + n.Name
		if n.Name == "" || n.Name == "." || n.Name == ".." || strings.ContainsAny(n.Name, "/\x00") {
			return fmt.Errorf("restore point holds the name %q in %q, which no archive can hold: %w", n.Name, prefix, repository.ErrDamaged)
		}
		mode := fs.FileMode(n.Mode) & permBits
		switch n.Type {
		case repository.NodeDir:
			if err := aw.s.dir(p, mode, n.ModTime); err != nil {
				return fmt.Errorf("write %q: %w", p, err)
			}
			aw.entries = append(aw.entries, newEntry(p, EntryDir))
			if n.Subtree != nil {
				if err := aw.tree(ctx, *n.Subtree, p); err != nil {
					return err
				}
			}
		case repository.NodeSymlink:
			if err := aw.s.symlink(p, n.LinkTarget, mode, n.ModTime); err != nil {
				return fmt.Errorf("write %q: %w", p, err)
			}
			e := newEntry(p, EntrySymlink)
			e.setTarget(n.LinkTarget)
			aw.entries = append(aw.entries, e)
			aw.p.Files.Add(1)
		case repository.NodeFile:
			err := aw.file(p, n.Size, mode, n.ModTime, func(w io.Writer) error {
				return aw.repo.WriteContent(ctx, n.Content, w)
			})
			if err != nil {
				return err
			}
			aw.p.Files.Add(1)
		default:
			return fmt.Errorf("restore point holds %q of unknown type %q: %w", p, n.Type, repository.ErrDamaged)
		}
	}
	return nil
}

// file writes one regular file entry whose content fill writes, and
// records its size and SHA-256.
func (aw *writer) file(name string, size int64, mode fs.FileMode, mtime time.Time, fill func(io.Writer) error) error {
	w, err := aw.s.file(name, size, mode, mtime)
	if err != nil {
		return fmt.Errorf("write %q: %w", name, err)
	}
	aw.hash.Reset()
	cw := &countWriter{w: w, h: aw.hash, p: aw.p}
	if err := fill(cw); err != nil {
		return fmt.Errorf("write %q: %w", name, err)
	}
	if cw.n != size {
		return fmt.Errorf("write %q: content is %d bytes, the restore point says %d: %w", name, cw.n, size, repository.ErrDamaged)
	}
	e := newEntry(name, EntryFile)
	e.Size = size
	e.SHA256 = hex.EncodeToString(aw.hash.Sum(nil))
	aw.entries = append(aw.entries, e)
	return nil
}

// countWriter counts and hashes what goes through it.
type countWriter struct {
	w io.Writer
	h hash.Hash
	p *Progress
	n int64
}

func (c *countWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.h.Write(b[:n])
	c.n += int64(n)
	c.p.Bytes.Add(int64(n))
	if err == nil && n < len(b) {
		err = io.ErrShortWrite
	}
	return n, err
}

// database writes a table file per table and the views file.
func (aw *writer) database(ctx context.Context, id repository.ID, m *Manifest) error {
	dm, err := mysql.LoadManifest(ctx, aw.repo, id)
	if err != nil {
		return err
	}
	if err := aw.s.dir(SQLDir, 0o755, aw.sn.Time); err != nil {
		return fmt.Errorf("write %q: %w", SQLDir, err)
	}
	aw.entries = append(aw.entries, newEntry(SQLDir, EntryDir))
	seen := map[string]bool{}
	for _, t := range dm.Tables {
		name := tableFile(t.Name)
		if seen[name] {
			return fmt.Errorf("restore point holds table %q twice: %w", t.Name, repository.ErrDamaged)
		}
		seen[name] = true
		head, tail := tableSQL(aw.sn, t)
		size := int64(len(head) + len(tail))
		for i, s := range t.Segments {
			n, err := segmentSize(ctx, aw.repo, t, s)
			if err != nil {
				return err
			}
			size += int64(len(segmentMarker(i))) + n
		}
		err := aw.file(name, size, 0o644, aw.sn.Time, func(w io.Writer) error {
			if _, err := io.WriteString(w, head); err != nil {
				return err
			}
			for i, s := range t.Segments {
				if _, err := io.WriteString(w, segmentMarker(i)); err != nil {
					return err
				}
				if err := mysql.SegmentSQL(ctx, aw.repo, t, s, w); err != nil {
					return err
				}
			}
			_, err := io.WriteString(w, tail)
			return err
		})
		if err != nil {
			return err
		}
		m.Tables = append(m.Tables, Table{Name: t.Name, File: name, Rows: t.Rows()})
		aw.p.Tables.Add(1)
	}
	if len(dm.Views) > 0 {
		text := viewsSQL(aw.sn, dm.Views)
		err := aw.file(ViewsFile, int64(len(text)), 0o644, aw.sn.Time, func(w io.Writer) error {
			_, err := io.WriteString(w, text)
			return err
		})
		if err != nil {
			return err
		}
		for _, v := range dm.Views {
			m.Views = append(m.Views, v.Name)
		}
	}
	return nil
}

// segmentSize is the size of a segment's SQL as mysql.SegmentSQL writes
// it: the stored size, or for a segment with deltas (merged as it is
// written), the size of one merging pass that writes nothing. (The archive
// needs each file's size before its content; the merge is CPU work on
// blobs the second pass reads again, cheaper than a temporary copy of the
// table.)
func segmentSize(ctx context.Context, repo Repo, t *mysql.TableManifest, s *mysql.Segment) (int64, error) {
	if len(s.Deltas) == 0 {
		return s.Size, nil
	}
	var c byteCounter
	if err := mysql.SegmentSQL(ctx, repo, t, s, &c); err != nil {
		return 0, fmt.Errorf("table %s: %w", t.Name, err)
	}
	return int64(c), nil
}

type byteCounter int64

func (c *byteCounter) Write(p []byte) (int, error) {
	*c += byteCounter(len(p))
	return len(p), nil
}

// Lines of a table file. The session is saved in @SV_OLD_… variables, not
// in mysqldump's @OLD_… ones, because every segment saves and restores
// those itself.
const (
	sqlSettings = "/*!40101 SET @SV_OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT, @SV_OLD_CHARACTER_SET_RESULTS=@@CHARACTER_SET_RESULTS, @SV_OLD_COLLATION_CONNECTION=@@COLLATION_CONNECTION */;\n" +
		"/*!40101 SET NAMES utf8mb4 */;\n" +
		"/*!40103 SET @SV_OLD_TIME_ZONE=@@TIME_ZONE, TIME_ZONE='+00:00' */;\n" +
		"/*!40014 SET @SV_OLD_UNIQUE_CHECKS=@@UNIQUE_CHECKS, UNIQUE_CHECKS=0 */;\n" +
		"/*!40014 SET @SV_OLD_FOREIGN_KEY_CHECKS=@@FOREIGN_KEY_CHECKS, FOREIGN_KEY_CHECKS=0 */;\n" +
		"/*!40101 SET @SV_OLD_SQL_MODE=@@SQL_MODE, SQL_MODE='NO_AUTO_VALUE_ON_ZERO' */;\n" +
		"/*!40111 SET @SV_OLD_SQL_NOTES=@@SQL_NOTES, SQL_NOTES=0 */;\n"
	sqlRestore = "/*!40111 SET SQL_NOTES=@SV_OLD_SQL_NOTES */;\n" +
		"/*!40101 SET SQL_MODE=@SV_OLD_SQL_MODE */;\n" +
		"/*!40014 SET FOREIGN_KEY_CHECKS=@SV_OLD_FOREIGN_KEY_CHECKS */;\n" +
		"/*!40014 SET UNIQUE_CHECKS=@SV_OLD_UNIQUE_CHECKS */;\n" +
		"/*!40103 SET TIME_ZONE=@SV_OLD_TIME_ZONE */;\n" +
		"/*!40101 SET CHARACTER_SET_CLIENT=@SV_OLD_CHARACTER_SET_CLIENT, CHARACTER_SET_RESULTS=@SV_OLD_CHARACTER_SET_RESULTS, COLLATION_CONNECTION=@SV_OLD_COLLATION_CONNECTION */;\n"
	segmentPrefix = "-- sitevault: segment "
	endOfRows     = "-- sitevault: end of rows\n"
)

func segmentMarker(i int) string { return fmt.Sprintf("%s%06d.sql\n", segmentPrefix, i+1) }

// sqlHeader is the comment block a table or views file starts with. Names
// are quoted Go-style so that no byte of them can end the comment line.
func sqlHeader(sn *repository.Snapshot, what string) string {
	return "-- sitevault download: " + what + "\n" +
		"-- site " + strconv.Quote(sn.Site) + ", restore point " + sn.ID.String() + " of " + sn.Time.UTC().Format(time.RFC3339) + "\n" +
		"-- load it with: mysql DATABASE < FILE\n" + sqlSettings + "\n"
}

// tableSQL returns what a table file holds before and after its segments.
func tableSQL(sn *repository.Snapshot, t *mysql.TableManifest) (head, tail string) {
	var h strings.Builder
	h.WriteString(sqlHeader(sn, "table "+strconv.Quote(t.Name)))
	h.WriteString("DROP TABLE IF EXISTS " + quoteIdent(t.Name) + ";\n")
	h.WriteString(t.Create + ";\n\n")
	var tl strings.Builder
	tl.WriteString(endOfRows)
	if len(t.Triggers) > 0 {
		tl.WriteString("\nDELIMITER ;;\n")
		for _, tr := range t.Triggers {
			tl.WriteString(tr + ";;\n")
		}
		tl.WriteString("DELIMITER ;\n")
	}
	tl.WriteString("\n" + sqlRestore)
	return h.String(), tl.String()
}

// viewsSQL returns the views file. Views are created in the restore
// point's order, each replacing a view of the same name.
func viewsSQL(sn *repository.Snapshot, views []mysql.View) string {
	var b strings.Builder
	b.WriteString(sqlHeader(sn, "views"))
	for _, v := range views {
		b.WriteString("DROP VIEW IF EXISTS " + quoteIdent(v.Name) + ";\n")
		b.WriteString(v.Create + ";\n")
	}
	b.WriteString("\n" + sqlRestore)
	return b.String()
}

// quoteIdent quotes an identifier with backticks, as the server does.
func quoteIdent(s string) string {
	return "`" + strings.ReplaceAll(s, "`", "``") + "`"
}
