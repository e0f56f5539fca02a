package mysql

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/sitevault/sitevault/internal/repository"
)

// Store is the slice of the repository a database backup and restore need.
// *repository.Repository satisfies it.
type Store interface {
	// SaveStream chunks rd into data blobs and returns their ids in order.
	SaveStream(ctx context.Context, rd io.Reader) (ids []repository.ID, size int64, err error)
	// WriteContent writes the concatenated content of data blobs to w.
	WriteContent(ctx context.Context, ids []repository.ID, w io.Writer) error
	// SaveTree saves a tree blob.
	SaveTree(ctx context.Context, t *repository.Tree) (repository.ID, error)
	// LoadTree loads a tree blob.
	LoadTree(ctx context.Context, id repository.ID) (*repository.Tree, error)
}

var _ Store = (*repository.Repository)(nil)

// Manifest is a database backup as the repository holds it.
//
// Tree layout (the tree whose id Backup returns; the backup layer puts it in
// the restore point as the "database" directory):
//
//	tables/                      dir; Meta format=2 (1: no row indexes), whole=1 (tables without a key
//	                             are included, whole; absent in older backups),
//	                             leftout=JSON names of selected tables the backup could
//	                             not take (a row over max_allowed_packet)
//	  <table name>/              dir, one per table
//	    schema.sql               CREATE TABLE + triggers as a client would load them;
//	                             Meta: engine, key, columns, definition, create, triggers (JSON),
//	                             versioned=1 for a system-versioned table (segments hold
//	                             its history rows and period columns; key []),
//	                             changed=N segments this backup found changed
//	    000001.sql …             segments in key order; Meta: first, last (JSON arrays of
//	                             hex key values), rows, checksum. A table without a key
//	                             (key []) has segments of rows in no order, first and
//	                             last []. Meta parts=1: the segment holds UPDATE lines
//	                             appending a large value in parts to the row before.
//	                             rows and checksum are those of the merged segment.
//	    000001.idx …             the segment's row index (format 2; see rowIndex)
//	    000001.d001.sql …        the segment's deltas, oldest first: changed rows' SQL;
//	                             Meta: rows (in this delta), parts
//	    000001.d001.idx …        each delta's row index (its rows, the rows it drops)
//	views.sql                    CREATE VIEW statements; Meta: views (JSON [{name, create}])
type Manifest struct {
	Tables []*TableManifest
	Views  []View
	// Whole says that the backup took tables without a key too (whole;
	// Meta whole=1 on "tables"). Backups before that left them out, so a
	// restore of such a backup keeps the live keyless tables it never held.
	Whole bool
	// LeftOut are tables the backup selected but could not take (see
	// BackupReport.Partial; Meta leftout on "tables", JSON): a restore
	// leaves the live ones alone.
	LeftOut []string
}

// TableManifest is one backed-up table.
type TableManifest struct {
	Name       string
	Engine     string
	Create     string   // CREATE TABLE as the server showed it
	Triggers   []string // CREATE TRIGGER statements without DEFINER
	Key        []string // the key's columns, in order
	Columns    []string // the columns INSERTs name (generated ones left out)
	Definition string   // hash of the definition and key choice
	// Versioned: a system-versioned table, whose segments hold its
	// history rows too and name its period columns (Meta versioned=1).
	Versioned bool
	Schema    *repository.Node
	Segments  []*Segment
	// Changed is how many of the segments the backup that made this
	// manifest found changed (Meta changed on schema.sql): when most were,
	// the next backup reads row hashes directly (see incremental).
	Changed int
}

// Segment is one file of rows of a table: the rows whose keys are in
// (previous segment's Last, Last].
type Segment struct {
	First, Last [][]byte // key values, raw bytes as the server sent them
	Rows        int64
	Checksum    string // "count:xor", see checksumQuery
	Size        int64
	Content     []repository.ID
	// Parts: the segment holds UPDATE statements that append a large
	// value in parts to the row just inserted (Meta parts=1); it is
	// loaded with INSERTs, never LOAD DATA. Restores before parts existed
	// skip those lines; the segment checks of later ones catch that.
	Parts bool
	// Index is the row index of Content (see rowIndex); nil in backups
	// made before row indexes, whose changed segments are read again whole.
	Index     []repository.ID
	IndexSize int64
	// Deltas are the changes since Content was read, oldest first: the
	// segment's rows are Content's and the deltas' rows, less those that a
	// later delta drops (see SegmentSQL). Rows and Checksum are those of
	// the merged rows.
	Deltas []*Delta
}

// Delta is one backup's changes to a segment's rows: the rows inserted or
// changed (Content, SQL like a segment's) and, in its index, those rows'
// keys and hashes and the rows of earlier streams it supersedes.
type Delta struct {
	Rows      int64 // rows in Content
	Size      int64
	Content   []repository.ID
	Index     []repository.ID
	IndexSize int64
	Parts     bool // Content holds UPDATE lines appending a large value (see Segment.Parts)
}

// deltaLimits say when a segment's deltas are folded into a new base (the
// segment's range read again whole; see compactDue).
const (
	// maxDeltas bounds the deltas a restore merges per segment.
	maxDeltas = 16
	// deltaShare: the deltas' stored SQL may reach this share of the
	// base's (scaled per segment between 1/2 and 3/2 of it, so that the
	// segments of a table changing evenly are not all read again in the
	// same backup).
	deltaShare = 0.5
)

// View is one view's definition.
type View struct {
	Name   string `json:"name"`
	Create string `json:"create"`
}

// Table returns the named table, or nil.
func (m *Manifest) Table(name string) *TableManifest {
	for _, t := range m.Tables {
		if t.Name == name {
			return t
		}
	}
	return nil
}

// Rows is the number of rows of the table in the backup.
func (t *TableManifest) Rows() int64 {
	var n int64
	for _, s := range t.Segments {
		n += s.Rows
	}
	return n
}

func encodeKey(k [][]byte) string {
	s := make([]string, len(k))
	for i, v := range k {
		s[i] = hex.EncodeToString(v)
	}
	b, _ := json.Marshal(s)
	return string(b)
}

func decodeKey(s string) ([][]byte, error) {
	var hs []string
	if err := json.Unmarshal([]byte(s), &hs); err != nil {
		return nil, err
	}
	k := make([][]byte, len(hs))
	for i, h := range hs {
		v, err := hex.DecodeString(h)
		if err != nil {
			return nil, err
		}
		if v == nil {
			v = []byte{}
		}
		k[i] = v
	}
	return k, nil
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// segmentName names the i-th (0-based) segment; names sort in key order.
func segmentName(i int) string { return fmt.Sprintf("%06d.sql", i+1) }

// deltaName names the k-th (1-based) delta of the i-th segment.
func deltaName(i, k int) string { return fmt.Sprintf("%06d.d%03d.sql", i+1, k) }

// indexName names the row index of the i-th segment's base (k 0) or of
// its k-th delta.
func indexName(i, k int) string {
	if k == 0 {
		return fmt.Sprintf("%06d.idx", i+1)
	}
	return fmt.Sprintf("%06d.d%03d.idx", i+1, k)
}

// segmentNodeRe matches the names of a table's segment nodes: 000001.sql,
// 000001.idx, 000001.d001.sql, 000001.d001.idx.
var segmentNodeRe = regexp.MustCompile(`^([0-9]{6})(?:\.d([0-9]{3}))?\.(sql|idx)$`)

// Save writes m as trees and returns the root tree's id.
func (m *Manifest) Save(ctx context.Context, st Store) (repository.ID, error) {
	tables := &repository.Tree{}
	sorted := append([]*TableManifest(nil), m.Tables...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	for _, t := range sorted {
		tt := &repository.Tree{}
		schema := *t.Schema
		schema.Name = "schema.sql"
		schema.Type = repository.NodeFile
		schema.Mode = 0o644
		schema.Meta = map[string]string{
			"engine":     t.Engine,
			"key":        jsonString(t.Key),
			"columns":    jsonString(t.Columns),
			"definition": t.Definition,
			"create":     t.Create,
			"triggers":   jsonString(t.Triggers),
		}
		if t.Versioned {
			schema.Meta["versioned"] = "1"
		}
		if t.Changed > 0 {
			schema.Meta["changed"] = strconv.Itoa(t.Changed)
		}
		tt.Nodes = append(tt.Nodes, &schema)
		for i, s := range t.Segments {
			tt.Nodes = append(tt.Nodes, &repository.Node{
				Name:    segmentName(i),
				Type:    repository.NodeFile,
				Mode:    0o644,
				Size:    s.Size,
				Content: s.Content,
				Meta: map[string]string{
					"first":    encodeKey(s.First),
					"last":     encodeKey(s.Last),
					"rows":     strconv.FormatInt(s.Rows, 10),
					"checksum": s.Checksum,
				},
			})
			if s.Parts {
				tt.Nodes[len(tt.Nodes)-1].Meta["parts"] = "1"
			}
			if s.Index != nil {
				tt.Nodes = append(tt.Nodes, &repository.Node{Name: indexName(i, 0), Type: repository.NodeFile, Mode: 0o644, Size: s.IndexSize, Content: s.Index})
			}
			for k, dl := range s.Deltas {
				n := &repository.Node{Name: deltaName(i, k+1), Type: repository.NodeFile, Mode: 0o644, Size: dl.Size, Content: dl.Content,
					Meta: map[string]string{"rows": strconv.FormatInt(dl.Rows, 10)}}
				if dl.Parts {
					n.Meta["parts"] = "1"
				}
				tt.Nodes = append(tt.Nodes, n,
					&repository.Node{Name: indexName(i, k+1), Type: repository.NodeFile, Mode: 0o644, Size: dl.IndexSize, Content: dl.Index})
			}
		}
		sort.Slice(tt.Nodes, func(i, j int) bool { return tt.Nodes[i].Name < tt.Nodes[j].Name })
		id, err := st.SaveTree(ctx, tt)
		if err != nil {
			return repository.ID{}, fmt.Errorf("save table %s: %w", t.Name, err)
		}
		tables.Nodes = append(tables.Nodes, &repository.Node{Name: t.Name, Type: repository.NodeDir, Mode: 0o755 | 1<<31, Subtree: &id})
	}
	tablesID, err := st.SaveTree(ctx, tables)
	if err != nil {
		return repository.ID{}, fmt.Errorf("save tables: %w", err)
	}
	var vsql strings.Builder
	for _, v := range m.Views {
		vsql.WriteString(v.Create + ";\n")
	}
	vids, vsize, err := st.SaveStream(ctx, strings.NewReader(vsql.String()))
	if err != nil {
		return repository.ID{}, fmt.Errorf("save views: %w", err)
	}
	views := m.Views
	if views == nil {
		views = []View{}
	}
	tmeta := map[string]string{"format": "2"}
	if m.Whole {
		tmeta["whole"] = "1"
	}
	if len(m.LeftOut) > 0 {
		tmeta["leftout"] = jsonString(m.LeftOut)
	}
	root := &repository.Tree{Nodes: []*repository.Node{
		{Name: "tables", Type: repository.NodeDir, Mode: 0o755 | 1<<31, Subtree: &tablesID, Meta: tmeta},
		{Name: "views.sql", Type: repository.NodeFile, Mode: 0o644, Size: vsize, Content: vids,
			Meta: map[string]string{"views": jsonString(views)}},
	}}
	return st.SaveTree(ctx, root)
}

// LoadManifest reads back a manifest saved by Save (the segment contents
// stay in the repository).
func LoadManifest(ctx context.Context, st Store, id repository.ID) (*Manifest, error) {
	root, err := st.LoadTree(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("load database tree: %w", err)
	}
	tn := root.Find("tables")
	if tn == nil || tn.Subtree == nil {
		return nil, fmt.Errorf("load database tree: no tables directory")
	}
	if f := tn.Meta["format"]; f != "1" && f != "2" {
		return nil, fmt.Errorf("load database tree: unknown format %q", f)
	}
	m := &Manifest{Whole: tn.Meta["whole"] == "1"}
	if lo := tn.Meta["leftout"]; lo != "" {
		if err := json.Unmarshal([]byte(lo), &m.LeftOut); err != nil {
			return nil, fmt.Errorf("load database tree: leftout: %w", err)
		}
	}
	if vn := root.Find("views.sql"); vn != nil && vn.Meta["views"] != "" {
		if err := json.Unmarshal([]byte(vn.Meta["views"]), &m.Views); err != nil {
			return nil, fmt.Errorf("load views: %w", err)
		}
	}
	tables, err := st.LoadTree(ctx, *tn.Subtree)
	if err != nil {
		return nil, fmt.Errorf("load tables tree: %w", err)
	}
	for _, n := range tables.Nodes {
		if n.Type != repository.NodeDir || n.Subtree == nil {
			continue
		}
		tt, err := st.LoadTree(ctx, *n.Subtree)
		if err != nil {
			return nil, fmt.Errorf("load table %s: %w", n.Name, err)
		}
		t := &TableManifest{Name: n.Name}
		sn := tt.Find("schema.sql")
		if sn == nil {
			return nil, fmt.Errorf("load table %s: no schema.sql", n.Name)
		}
		t.Schema = sn
		t.Engine, t.Create, t.Definition = sn.Meta["engine"], sn.Meta["create"], sn.Meta["definition"]
		t.Versioned = sn.Meta["versioned"] == "1"
		if c := sn.Meta["changed"]; c != "" {
			if t.Changed, err = strconv.Atoi(c); err != nil {
				return nil, fmt.Errorf("load table %s: changed: %w", n.Name, err)
			}
		}
		for k, dst := range map[string]*[]string{"key": &t.Key, "columns": &t.Columns, "triggers": &t.Triggers} {
			if err := json.Unmarshal([]byte(sn.Meta[k]), dst); err != nil {
				return nil, fmt.Errorf("load table %s: %s: %w", n.Name, k, err)
			}
		}
		if t.Segments, err = loadSegments(tt); err != nil {
			return nil, fmt.Errorf("load table %s: %w", n.Name, err)
		}
		m.Tables = append(m.Tables, t)
	}
	return m, nil
}

// loadSegments reads a table tree's segment nodes (see Manifest): each
// base segment, its index and its deltas, in order. Segment numbers must
// run from 1 without a gap, and each delta needs its index.
func loadSegments(tt *repository.Tree) ([]*Segment, error) {
	type parts struct {
		base, index *repository.Node
		deltas      map[int][2]*repository.Node // [sql, idx]
	}
	bySeg := map[int]*parts{}
	for _, n := range tt.Nodes {
		if n.Name == "schema.sql" {
			continue
		}
		m := segmentNodeRe.FindStringSubmatch(n.Name)
		if m == nil {
			continue // not a segment (a later format's node)
		}
		i, _ := strconv.Atoi(m[1])
		p := bySeg[i]
		if p == nil {
			p = &parts{deltas: map[int][2]*repository.Node{}}
			bySeg[i] = p
		}
		if m[2] == "" {
			if m[3] == "sql" {
				p.base = n
			} else {
				p.index = n
			}
			continue
		}
		k, _ := strconv.Atoi(m[2])
		d := p.deltas[k]
		if m[3] == "sql" {
			d[0] = n
		} else {
			d[1] = n
		}
		p.deltas[k] = d
	}
	segs := make([]*Segment, len(bySeg))
	for i, p := range bySeg {
		if i < 1 || i > len(bySeg) || p.base == nil {
			return nil, fmt.Errorf("segments are not numbered 1 to %d: %w", len(bySeg), repository.ErrDamaged)
		}
		sg := p.base
		s := &Segment{Checksum: sg.Meta["checksum"], Size: sg.Size, Content: sg.Content, Parts: sg.Meta["parts"] == "1"}
		var err error
		if s.First, err = decodeKey(sg.Meta["first"]); err == nil {
			s.Last, err = decodeKey(sg.Meta["last"])
		}
		if err == nil {
			s.Rows, err = strconv.ParseInt(sg.Meta["rows"], 10, 64)
		}
		if err != nil {
			return nil, fmt.Errorf("segment %s: %w", sg.Name, err)
		}
		if p.index != nil {
			s.Index, s.IndexSize = p.index.Content, p.index.Size
			if s.Index == nil {
				s.Index = []repository.ID{}
			}
		}
		for k := 1; k <= len(p.deltas); k++ {
			d, ok := p.deltas[k]
			if !ok || d[0] == nil || d[1] == nil || p.index == nil {
				return nil, fmt.Errorf("segment %s: deltas incomplete: %w", sg.Name, repository.ErrDamaged)
			}
			dl := &Delta{Size: d[0].Size, Content: d[0].Content, Index: d[1].Content, IndexSize: d[1].Size, Parts: d[0].Meta["parts"] == "1"}
			if dl.Index == nil {
				dl.Index = []repository.ID{}
			}
			if dl.Rows, err = strconv.ParseInt(d[0].Meta["rows"], 10, 64); err != nil {
				return nil, fmt.Errorf("segment %s delta %d: %w", sg.Name, k, err)
			}
			s.Deltas = append(s.Deltas, dl)
		}
		segs[i-1] = s
	}
	return segs, nil
}
