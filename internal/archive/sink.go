package archive

import (
	"archive/tar"
	"archive/zip"
	"io"
	"io/fs"
	"time"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/gzip"
)

// sink writes entries into one container format. Entries are written in
// order; file's writer is valid until the next call.
type sink interface {
	dir(name string, mode fs.FileMode, mtime time.Time) error
	symlink(name, target string, mode fs.FileMode, mtime time.Time) error
	file(name string, size int64, mode fs.FileMode, mtime time.Time) (io.Writer, error)
	// close ends the archive (not the underlying writer).
	close() error
}

// permBits are the mode bits an archive keeps.
const permBits = fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky

// tarMode turns permission bits into tar's c_ISUID… encoding.
func tarMode(m fs.FileMode) int64 {
	v := int64(m.Perm())
	if m&fs.ModeSetuid != 0 {
		v |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		v |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		v |= 0o1000
	}
	return v
}

type tarSink struct {
	gz *gzip.Writer
	tw *tar.Writer
}

func newTarSink(w io.Writer) (*tarSink, error) {
	gz, err := gzip.NewWriterLevel(w, gzip.DefaultCompression)
	if err != nil {
		return nil, err
	}
	return &tarSink{gz: gz, tw: tar.NewWriter(gz)}, nil
}

// header builds a PAX header: long and non-ASCII names and link targets go
// into PAX records byte-exact, and times keep their sub-second part.
func (s *tarSink) header(name string, typ byte, mode fs.FileMode, mtime time.Time) *tar.Header {
	return &tar.Header{Typeflag: typ, Name: name, Mode: tarMode(mode), ModTime: mtime, Format: tar.FormatPAX}
}

func (s *tarSink) dir(name string, mode fs.FileMode, mtime time.Time) error {
	return s.tw.WriteHeader(s.header(name+"/", tar.TypeDir, mode, mtime))
}

func (s *tarSink) symlink(name, target string, mode fs.FileMode, mtime time.Time) error {
	h := s.header(name, tar.TypeSymlink, mode, mtime)
	h.Linkname = target
	return s.tw.WriteHeader(h)
}

func (s *tarSink) file(name string, size int64, mode fs.FileMode, mtime time.Time) (io.Writer, error) {
	h := s.header(name, tar.TypeReg, mode, mtime)
	h.Size = size
	if err := s.tw.WriteHeader(h); err != nil {
		return nil, err
	}
	return s.tw, nil
}

func (s *tarSink) close() error {
	if err := s.tw.Close(); err != nil {
		return err
	}
	return s.gz.Close()
}

type zipSink struct {
	zw *zip.Writer
}

func newZipSink(w io.Writer) *zipSink {
	zw := zip.NewWriter(w)
	zw.RegisterCompressor(zip.Deflate, func(out io.Writer) (io.WriteCloser, error) {
		return flate.NewWriter(out, flate.DefaultCompression)
	})
	return &zipSink{zw: zw}
}

// create starts an entry. Sizes are left unknown, so the writer streams the
// content and follows it with a data descriptor (zip64 when needed).
func (s *zipSink) create(name string, method uint16, mode fs.FileMode, mtime time.Time) (io.Writer, error) {
	h := &zip.FileHeader{Name: name, Method: method, Modified: mtime}
	h.SetMode(mode)
	return s.zw.CreateHeader(h)
}

func (s *zipSink) dir(name string, mode fs.FileMode, mtime time.Time) error {
	_, err := s.create(name+"/", zip.Store, fs.ModeDir|mode&permBits, mtime)
	return err
}

func (s *zipSink) symlink(name, target string, mode fs.FileMode, mtime time.Time) error {
	w, err := s.create(name, zip.Store, fs.ModeSymlink|mode&permBits, mtime)
	if err != nil {
		return err
	}
	_, err = io.WriteString(w, target)
	return err
}

func (s *zipSink) file(name string, _ int64, mode fs.FileMode, mtime time.Time) (io.Writer, error) {
	return s.create(name, zip.Deflate, mode&permBits, mtime)
}

func (s *zipSink) close() error { return s.zw.Close() }
