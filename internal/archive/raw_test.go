package archive

import (
	"archive/tar"
	"archive/zip"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
)

var errorsIs = errors.Is

// rawMember is an archive entry as tests rewrite it.
type rawMember struct {
	name   string
	typ    byte // f file, d dir, l symlink, h hard link, c char device
	data   []byte
	target string
	mode   fs.FileMode
	mtime  time.Time
}

func readRaw(tb testing.TB, path string, format Format) []rawMember {
	tb.Helper()
	var out []rawMember
	for _, m := range readMembers(tb, path, format) {
		r := rawMember{name: m.name, data: m.data, target: m.target, mode: m.mode, mtime: m.mtime}
		switch m.typ {
		case "file":
			r.typ = 'f'
		case "dir":
			r.typ = 'd'
		case "symlink":
			r.typ = 'l'
		default:
			tb.Fatalf("entry %q of type %s", m.name, m.typ)
		}
		out = append(out, r)
	}
	return out
}

func writeRaw(tb testing.TB, path string, format Format, ms []rawMember) {
	tb.Helper()
	f, err := os.Create(path)
	must(tb, err)
	defer f.Close()
	switch format {
	case TarGz:
		gz := gzip.NewWriter(f)
		tw := tar.NewWriter(gz)
		for _, m := range ms {
			h := &tar.Header{Name: m.name, Mode: int64(m.mode.Perm()), ModTime: m.mtime, Format: tar.FormatPAX}
			switch m.typ {
			case 'f':
				h.Typeflag, h.Size = tar.TypeReg, int64(len(m.data))
			case 'd':
				h.Typeflag, h.Name = tar.TypeDir, m.name+"/"
			case 'l':
				h.Typeflag, h.Linkname = tar.TypeSymlink, m.target
			case 'h':
				h.Typeflag, h.Linkname = tar.TypeLink, m.target
			case 'c':
				h.Typeflag, h.Devmajor, h.Devminor = tar.TypeChar, 1, 3
			}
			must(tb, tw.WriteHeader(h))
			if m.typ == 'f' {
				_, err := tw.Write(m.data)
				must(tb, err)
			}
		}
		must(tb, tw.Close())
		must(tb, gz.Close())
	case Zip:
		zw := zip.NewWriter(f)
		for _, m := range ms {
			h := &zip.FileHeader{Name: m.name, Method: zip.Deflate, Modified: m.mtime}
			var w io.Writer
			switch m.typ {
			case 'f':
				h.SetMode(m.mode)
				w, err = zw.CreateHeader(h)
				must(tb, err)
				_, err = w.Write(m.data)
			case 'd':
				h.Name += "/"
				h.SetMode(fs.ModeDir | m.mode)
				_, err = zw.CreateHeader(h)
			case 'l':
				h.SetMode(fs.ModeSymlink | 0o777)
				w, err = zw.CreateHeader(h)
				must(tb, err)
				_, err = io.WriteString(w, m.target)
			default:
				tb.Fatalf("zip cannot hold entry type %c", m.typ)
			}
			must(tb, err)
		}
		must(tb, zw.Close())
	}
	must(tb, f.Close())
}

func findRaw(ms []rawMember, name string) int {
	for i, m := range ms {
		if m.name == name {
			return i
		}
	}
	panic("no entry " + name)
}

// insertRaw adds m before manifest.json.
func insertRaw(ms []rawMember, m rawMember) []rawMember {
	m.mode, m.mtime = 0o644, time.Now()
	n := len(ms) - 1
	return append(ms[:n:n], m, ms[n])
}

// fixManifest recomputes the manifest's sizes and checksums, as an
// attacker who edits a download would.
func fixManifest(tb testing.TB, ms []rawMember) []rawMember {
	tb.Helper()
	i := findRaw(ms, ManifestName)
	var man Manifest
	must(tb, json.Unmarshal(ms[i].data, &man))
	for k := range man.Entries {
		e := &man.Entries[k]
		name, _ := e.name()
		for _, m := range ms {
			if m.name == name && m.typ == 'f' {
				e.Size, e.SHA256 = int64(len(m.data)), sha(m.data)
			}
		}
	}
	b, err := json.Marshal(man)
	must(tb, err)
	ms[i].data = b
	return ms
}
