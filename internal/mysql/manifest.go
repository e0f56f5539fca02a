package mysql

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
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
//	tables/                      dir; Meta format=1, whole=1 (tables without a key
//	                             are included, whole; absent in older backups),
//	                             leftout=JSON names of selected tables the backup could
//	                             not take (a row over max_allowed_packet)
//	  <table name>/              dir, one per table
//	    schema.sql               CREATE TABLE + triggers as a client would load them;
//	                             Meta: engine, key, columns, definition, create, triggers (JSON),
//	                             versioned=1 for a system-versioned table (segments hold
//	                             its history rows and period columns; key [])
//	    000001.sql …             segments in key order; Meta: first, last (JSON arrays of
//	                             hex key values), rows, checksum. A table without a key
//	                             (key []) has segments of rows in no order, first and
//	                             last []. Meta parts=1: the segment holds UPDATE lines
//	                             appending a large value in parts to the row before.
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
}

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
	tmeta := map[string]string{"format": "1"}
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
	if f := tn.Meta["format"]; f != "1" {
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
		for k, dst := range map[string]*[]string{"key": &t.Key, "columns": &t.Columns, "triggers": &t.Triggers} {
			if err := json.Unmarshal([]byte(sn.Meta[k]), dst); err != nil {
				return nil, fmt.Errorf("load table %s: %s: %w", n.Name, k, err)
			}
		}
		for _, sg := range tt.Nodes {
			if sg.Name == "schema.sql" || !strings.HasSuffix(sg.Name, ".sql") {
				continue
			}
			s := &Segment{Checksum: sg.Meta["checksum"], Size: sg.Size, Content: sg.Content, Parts: sg.Meta["parts"] == "1"}
			if s.First, err = decodeKey(sg.Meta["first"]); err == nil {
				s.Last, err = decodeKey(sg.Meta["last"])
			}
			if err == nil {
				s.Rows, err = strconv.ParseInt(sg.Meta["rows"], 10, 64)
			}
			if err != nil {
				return nil, fmt.Errorf("load table %s segment %s: %w", n.Name, sg.Name, err)
			}
			t.Segments = append(t.Segments, s)
		}
		m.Tables = append(m.Tables, t)
	}
	return m, nil
}
