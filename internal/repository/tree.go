package repository

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	jsonv2 "github.com/go-json-experiment/json"
)

// nodeJSON is a Node on disk. Strings that are not valid UTF-8 (which
// encoding/json would mangle) are stored base64-encoded in the *_b64 field
// instead of the plain one; so are Meta maps holding such strings.
type nodeJSON struct {
	Name       string            `json:"name,omitempty"`
	NameB64    []byte            `json:"name_b64,omitempty"`
	Type       NodeType          `json:"type"`
	Mode       uint32            `json:"mode"`
	ModTime    string            `json:"mtime,omitempty"`
	ChangeTime string            `json:"ctime,omitempty"`
	Inode      uint64            `json:"inode,omitempty"`
	Dev        uint64            `json:"dev,omitempty"`
	Size       int64             `json:"size"`
	LinkTarget string            `json:"link,omitempty"`
	LinkB64    []byte            `json:"link_b64,omitempty"`
	Content    []ID              `json:"content,omitempty"`
	Subtree    *ID               `json:"subtree,omitempty"`
	Meta       map[string]string `json:"meta,omitempty"`
	MetaB64    [][2][]byte       `json:"meta_b64,omitempty"`
}

type treeJSON struct {
	Nodes []nodeJSON `json:"nodes"`
}

func encTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Format(time.RFC3339Nano)
}

func decTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	return time.Parse(time.RFC3339Nano, s)
}

// encodeTree serializes t deterministically: nodes sorted by name (byte
// order), names unique, fields in a fixed order, map keys sorted.
func encodeTree(t *Tree) ([]byte, error) {
	nodes := make([]*Node, len(t.Nodes))
	copy(nodes, t.Nodes)
	sort.SliceStable(nodes, func(i, j int) bool { return nodes[i].Name < nodes[j].Name })
	tj := treeJSON{Nodes: make([]nodeJSON, len(nodes))}
	for i, n := range nodes {
		if n == nil {
			return nil, fmt.Errorf("encode tree: nil node")
		}
		if !validName(n.Name) {
			return nil, fmt.Errorf("encode tree: invalid node name %q", n.Name)
		}
		if i > 0 && nodes[i-1].Name == n.Name {
			return nil, fmt.Errorf("encode tree: duplicate node name %q", n.Name)
		}
		nj := nodeJSON{
			Type: n.Type, Mode: n.Mode, ModTime: encTime(n.ModTime), ChangeTime: encTime(n.ChangeTime),
			Inode: n.Inode, Dev: n.Dev, Size: n.Size, Content: n.Content, Subtree: n.Subtree,
		}
		if utf8.ValidString(n.Name) {
			nj.Name = n.Name
		} else {
			nj.NameB64 = []byte(n.Name)
		}
		if utf8.ValidString(n.LinkTarget) {
			nj.LinkTarget = n.LinkTarget
		} else {
			nj.LinkB64 = []byte(n.LinkTarget)
		}
		if len(n.Meta) > 0 {
			valid := true
			for k, v := range n.Meta {
				valid = valid && utf8.ValidString(k) && utf8.ValidString(v)
			}
			if valid {
				nj.Meta = n.Meta
			} else {
				keys := make([]string, 0, len(n.Meta))
				for k := range n.Meta {
					keys = append(keys, k)
				}
				sort.Strings(keys)
				for _, k := range keys {
					nj.MetaB64 = append(nj.MetaB64, [2][]byte{[]byte(k), []byte(n.Meta[k])})
				}
			}
		}
		tj.Nodes[i] = nj
	}
	return json.Marshal(tj)
}

// validName accepts a directory entry name: not empty, ".", "..", and no
// '/' or NUL (so a restore can never be steered outside its folder).
func validName(s string) bool {
	return s != "" && s != "." && s != ".." && !strings.ContainsAny(s, "/\x00")
}

// decodeTree parses a tree blob; errors wrap ErrDamaged.
//
// Trees are decoded by go-json-experiment/json (the proposed
// encoding/json/v2), which reads a tree of 1,000 files 2.3× faster than
// encoding/json (BenchmarkDecodeTree: 1.9 vs 4.4 ms). Every restore,
// download and incremental backup decodes every tree of a point, and a
// restore that finds most files right spent a fifth of its CPU here. It
// reads what encodeTree (encoding/json) writes alike: exact member names,
// valid UTF-8, no duplicate members. It is stricter on the rest (a
// duplicate member or invalid UTF-8 is a damaged tree), which only a
// damaged tree holds.
func decodeTree(b []byte) (*Tree, error) {
	var tj treeJSON
	if err := jsonv2.Unmarshal(b, &tj); err != nil {
		return nil, fmt.Errorf("decode tree: %v: %w", err, ErrDamaged)
	}
	t := &Tree{Nodes: make([]*Node, 0, len(tj.Nodes))}
	for i, nj := range tj.Nodes {
		n := &Node{Name: nj.Name, Type: nj.Type, Mode: nj.Mode, Inode: nj.Inode, Dev: nj.Dev, Size: nj.Size,
			LinkTarget: nj.LinkTarget, Content: nj.Content, Subtree: nj.Subtree, Meta: nj.Meta}
		if nj.NameB64 != nil {
			n.Name = string(nj.NameB64)
		}
		if nj.LinkB64 != nil {
			n.LinkTarget = string(nj.LinkB64)
		}
		if nj.MetaB64 != nil {
			n.Meta = make(map[string]string, len(nj.MetaB64))
			for _, kv := range nj.MetaB64 {
				n.Meta[string(kv[0])] = string(kv[1])
			}
		}
		var err error
		if n.ModTime, err = decTime(nj.ModTime); err != nil {
			return nil, fmt.Errorf("decode tree: node %d mtime: %v: %w", i, err, ErrDamaged)
		}
		if n.ChangeTime, err = decTime(nj.ChangeTime); err != nil {
			return nil, fmt.Errorf("decode tree: node %d ctime: %v: %w", i, err, ErrDamaged)
		}
		if !validName(n.Name) {
			return nil, fmt.Errorf("decode tree: node %d: invalid name %q: %w", i, n.Name, ErrDamaged)
		}
		if i > 0 && t.Nodes[i-1].Name >= n.Name {
			return nil, fmt.Errorf("decode tree: node %d: names not sorted or not unique: %w", i, ErrDamaged)
		}
		t.Nodes = append(t.Nodes, n)
	}
	return t, nil
}

// SaveTree serializes (see encodeTree) and saves a tree blob. t is not
// modified; its nodes need not be sorted, but names must be unique.
func (r *Repository) SaveTree(ctx context.Context, t *Tree) (ID, error) {
	b, err := encodeTree(t)
	if err != nil {
		return ID{}, fmt.Errorf("save tree: %w", err)
	}
	id, _, err := r.SaveBlob(ctx, TreeBlob, b)
	if err != nil {
		return ID{}, fmt.Errorf("save tree: %w", err)
	}
	return id, nil
}

// LoadTree loads and decodes a tree blob.
func (r *Repository) LoadTree(ctx context.Context, id ID) (*Tree, error) {
	b, err := r.LoadBlob(ctx, TreeBlob, id, nil)
	if err != nil {
		return nil, fmt.Errorf("load tree: %w", err)
	}
	t, err := decodeTree(b)
	if err != nil {
		return nil, fmt.Errorf("load tree %v: %w", id.Short(), err)
	}
	return t, nil
}
