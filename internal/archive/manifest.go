package archive

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Format is an archive's container format.
type Format int

// Formats.
const (
	TarGz Format = iota + 1 // a POSIX (PAX) tar stream, gzip-compressed
	Zip                     // a zip file, entries streamed with data descriptors
)

func (f Format) String() string {
	switch f {
	case TarGz:
		return "tar.gz"
	case Zip:
		return "zip"
	}
	return fmt.Sprintf("format(%d)", int(f))
}

// FormatFor chooses the format from a file name: .tar.gz or .tgz → TarGz,
// .zip → Zip (case-insensitive); false for anything else.
func FormatFor(name string) (Format, bool) {
	n := strings.ToLower(name)
	switch {
	case strings.HasSuffix(n, ".tar.gz"), strings.HasSuffix(n, ".tgz"):
		return TarGz, true
	case strings.HasSuffix(n, ".zip"):
		return Zip, true
	}
	return 0, false
}

// Sentinel errors callers branch on.
var (
	// ErrNotArchive: the file is neither a gzip-compressed tar nor a zip,
	// or holds no manifest.json (it is not a sitevault download).
	ErrNotArchive = errors.New("not a sitevault download (.tar.gz or .zip with a manifest.json)")
	// ErrUnsafeEntry: an entry could write outside the site or is of a kind
	// a download never holds (absolute path, "..", NUL, hard link, device…).
	ErrUnsafeEntry = errors.New("unsafe archive entry")
	// ErrMismatch: the archive does not match its manifest.json (a changed
	// byte, an entry added or missing): it was altered or damaged.
	ErrMismatch = errors.New("archive does not match its manifest")
	// ErrBadSQL: a table file does not have the shape a download's table
	// files have (one CREATE TABLE, INSERTs into that table, triggers).
	ErrBadSQL = errors.New("unexpected SQL in table file")
	// ErrNewerFormat: the download was written by a newer sitevault.
	ErrNewerFormat = errors.New("download format is newer than this sitevault understands: upgrade sitevault")
)

// ManifestName is the manifest's entry name; it is the archive's last entry.
const ManifestName = "manifest.json"

// Top-level folders of a download.
const (
	FilesDir = "files"
	SQLDir   = "sql"
)

// ViewsFile is the entry holding the views.
const ViewsFile = SQLDir + "/views.sql"

// Version is the manifest format this package writes and reads.
const Version = 1

// manifestFormat names the document in manifest.json.
const manifestFormat = "sitevault-download"

// Manifest is manifest.json.
type Manifest struct {
	Format  string    `json:"format"`  // "sitevault-download"
	Version int       `json:"version"` // Version
	Site    string    `json:"site"`
	Point   string    `json:"point"` // the restore point's full id
	Time    time.Time `json:"time"`  // when the restore point was taken
	Trigger string    `json:"trigger,omitempty"`
	// WordPressVersion and TablePrefix repeat the point's metadata for people.
	WordPressVersion string `json:"wordpress_version,omitempty"`
	TablePrefix      string `json:"table_prefix,omitempty"`
	// WordPressCore says, for people, that WordPress core is not in the
	// archive and which version the site ran (CoreNote).
	WordPressCore string            `json:"wordpress_core"`
	Meta          map[string]string `json:"meta,omitempty"` // the point's metadata, all of it
	Created       time.Time         `json:"created"`        // when the download was written
	// Files and Database say which parts the point holds.
	Files    bool     `json:"files"`
	Database bool     `json:"database"`
	Tables   []Table  `json:"tables"`
	Views    []string `json:"views,omitempty"`
	Entries  []Entry  `json:"entries"` // every entry but manifest.json, in archive order
}

// Table maps a table file to its table.
type Table struct {
	Name string `json:"name"`
	File string `json:"file"`
	Rows int64  `json:"rows"`
}

// Entry types in the manifest.
const (
	EntryFile    = "file"
	EntryDir     = "dir"
	EntrySymlink = "symlink"
)

// Entry is one archive entry in the manifest. Path and Target are JSON
// strings when they are valid UTF-8, else base64 in PathB64 / TargetB64,
// so that any name round-trips byte-exact.
type Entry struct {
	Path      string `json:"path,omitempty"`
	PathB64   string `json:"path_b64,omitempty"`
	Type      string `json:"type"`
	Size      int64  `json:"size,omitempty"`
	SHA256    string `json:"sha256,omitempty"`
	Target    string `json:"target,omitempty"`
	TargetB64 string `json:"target_b64,omitempty"`
}

func newEntry(path, typ string) Entry {
	e := Entry{Type: typ}
	e.Path, e.PathB64 = encodeName(path)
	return e
}

func (e *Entry) setTarget(t string) { e.Target, e.TargetB64 = encodeName(t) }

// name returns the entry's path.
func (e *Entry) name() (string, error) { return decodeName(e.Path, e.PathB64) }

// target returns the entry's link target.
func (e *Entry) target() (string, error) { return decodeName(e.Target, e.TargetB64) }

func encodeName(s string) (plain, b64 string) {
	if utf8.ValidString(s) {
		return s, ""
	}
	return "", base64.StdEncoding.EncodeToString([]byte(s))
}

func decodeName(plain, b64 string) (string, error) {
	if b64 == "" {
		return plain, nil
	}
	b, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return "", fmt.Errorf("bad base64 name: %w", err)
	}
	return string(b), nil
}

// tableFile names a table's file: sql/<table>.sql, with the bytes a path
// cannot hold ("/", NUL) and "%" escaped as %XX, and a table called
// "views" kept apart from sql/views.sql.
func tableFile(table string) string {
	var b strings.Builder
	b.WriteString(SQLDir + "/")
	for i := 0; i < len(table); i++ {
		switch c := table[i]; {
		case c == '/' || c == '%' || c == 0 || (i == 0 && table == "views"):
			fmt.Fprintf(&b, "%%%02X", c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteString(".sql")
	return b.String()
}

// CoreNote says that a download holds no WordPress core (backups never take
// it) and which version the site ran, for the manifest and summaries.
func CoreNote(version string) string {
	if version == "" {
		return "not included (backups never take WordPress core files); install WordPress, then restore files/ over it"
	}
	return "not included (backups never take WordPress core files); the site ran WordPress " + version +
		": install that version, then restore files/ over it"
}
