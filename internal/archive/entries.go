package archive

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
)

// Kinds of entries.
const (
	kindFile = iota
	kindDir
	kindSymlink
)

// entry is one archive member as Import reads it.
type entry struct {
	name   string // without a folder's trailing "/"
	kind   int
	mode   fs.FileMode // permission bits
	mtime  time.Time
	size   int64
	target string
	body   io.Reader // files
}

// source yields a container's entries in order; next returns io.EOF at the end.
type source interface {
	next() (*entry, error)
	close() error
}

// maxLinkTarget bounds a zip symlink's target (stored as its content).
const maxLinkTarget = 64 << 10

// openSource detects the container by its magic bytes.
func openSource(path string) (source, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	var magic [4]byte
	n, _ := io.ReadFull(f, magic[:])
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, err
	}
	switch {
	case n >= 2 && magic[0] == 0x1f && magic[1] == 0x8b:
		gz, err := gzip.NewReader(bufio.NewReaderSize(f, 1<<20))
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("%s: %w: %v", path, ErrNotArchive, err)
		}
		return &tarSource{f: f, gz: gz, tr: tar.NewReader(gz)}, nil
	case n == 4 && (bytes.Equal(magic[:], []byte("PK\x03\x04")) || bytes.Equal(magic[:], []byte("PK\x05\x06"))):
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, err
		}
		zr, err := zip.NewReader(f, fi.Size())
		if err != nil && err != zip.ErrInsecurePath {
			f.Close()
			return nil, fmt.Errorf("%s: %w: %v", path, ErrNotArchive, err)
		}
		// Insecure names are refused entry by entry, with their name.
		return &zipSource{f: f, files: zr.File}, nil
	}
	f.Close()
	return nil, fmt.Errorf("%s: %w: it starts with neither the gzip nor the zip signature", path, ErrNotArchive)
}

type tarSource struct {
	f  *os.File
	gz *gzip.Reader
	tr *tar.Reader
}

func (s *tarSource) next() (*entry, error) {
	h, err := s.tr.Next()
	if err == io.EOF {
		return nil, io.EOF
	}
	if err != nil {
		return nil, fmt.Errorf("read archive: %w", err)
	}
	e := &entry{name: h.Name, mode: h.FileInfo().Mode() & permBits, mtime: h.ModTime, size: h.Size}
	switch h.Typeflag {
	case tar.TypeReg, tar.TypeRegA:
		e.kind, e.body = kindFile, s.tr
	case tar.TypeDir:
		e.kind, e.name = kindDir, strings.TrimSuffix(h.Name, "/")
	case tar.TypeSymlink:
		e.kind, e.target, e.size = kindSymlink, h.Linkname, 0
	case tar.TypeLink:
		return nil, fmt.Errorf("entry %q: %w: a hard link (to %q); downloads never hold them", h.Name, ErrUnsafeEntry, h.Linkname)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		return nil, fmt.Errorf("entry %q: %w: a device or FIFO", h.Name, ErrUnsafeEntry)
	default:
		return nil, fmt.Errorf("entry %q: %w: tar entry type %q", h.Name, ErrUnsafeEntry, h.Typeflag)
	}
	return e, nil
}

func (s *tarSource) close() error {
	s.gz.Close()
	return s.f.Close()
}

type zipSource struct {
	f     *os.File
	files []*zip.File
	i     int
	open  io.Closer
}

func (s *zipSource) next() (*entry, error) {
	if s.open != nil {
		s.open.Close()
		s.open = nil
	}
	if s.i >= len(s.files) {
		return nil, io.EOF
	}
	zf := s.files[s.i]
	s.i++
	m := zf.Mode()
	e := &entry{name: zf.Name, mode: m & permBits, mtime: zf.Modified, size: int64(zf.UncompressedSize64)}
	switch {
	case m&(fs.ModeDevice|fs.ModeCharDevice|fs.ModeNamedPipe|fs.ModeSocket|fs.ModeIrregular) != 0:
		return nil, fmt.Errorf("entry %q: %w: a device, FIFO or socket", zf.Name, ErrUnsafeEntry)
	case m.IsDir() || strings.HasSuffix(zf.Name, "/"):
		e.kind, e.name, e.size = kindDir, strings.TrimSuffix(zf.Name, "/"), 0
	case m&fs.ModeSymlink != 0:
		rc, err := zf.Open()
		if err != nil {
			return nil, fmt.Errorf("entry %q: %w", zf.Name, err)
		}
		b, err := io.ReadAll(io.LimitReader(rc, maxLinkTarget+1))
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("entry %q: %w", zf.Name, err)
		}
		if len(b) > maxLinkTarget {
			return nil, fmt.Errorf("entry %q: %w: symbolic link target longer than %d bytes", zf.Name, ErrUnsafeEntry, maxLinkTarget)
		}
		e.kind, e.target, e.size = kindSymlink, string(b), 0
	default:
		rc, err := zf.Open()
		if err != nil {
			return nil, fmt.Errorf("entry %q: %w", zf.Name, err)
		}
		s.open = rc
		e.kind, e.body = kindFile, rc
	}
	return e, nil
}

func (s *zipSource) close() error {
	if s.open != nil {
		s.open.Close()
	}
	return s.f.Close()
}

// checkName refuses entry names that could reach outside the site or that
// a download never holds, and splits the others into components.
func checkName(e *entry) ([]string, error) {
	name := e.name
	bad := func(why string) error {
		return fmt.Errorf("entry %q: %w: %s", name, ErrUnsafeEntry, why)
	}
	switch {
	case name == "":
		return nil, bad("empty name")
	case strings.IndexByte(name, 0) >= 0:
		return nil, bad("name holds a NUL byte")
	case strings.HasPrefix(name, "/"):
		return nil, bad("absolute path")
	}
	parts := strings.Split(name, "/")
	for _, p := range parts {
		switch p {
		case "..":
			return nil, bad(`path with ".."`)
		case ".", "":
			return nil, bad(`path with an empty or "." component`)
		}
	}
	switch parts[0] {
	case FilesDir:
		return parts, nil
	case SQLDir:
		if len(parts) == 1 && e.kind == kindDir {
			return parts, nil
		}
		if len(parts) == 2 && e.kind == kindFile && strings.HasSuffix(parts[1], ".sql") {
			return parts, nil
		}
		return nil, bad("sql/ holds only <table>.sql files")
	case ManifestName:
		if len(parts) == 1 && e.kind == kindFile {
			return parts, nil
		}
	}
	return nil, bad("outside files/ and sql/")
}
