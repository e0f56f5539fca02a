package repository

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
)

// sampleTree is a tree of n files, a folder, a link, and names, targets
// and meta that are not valid UTF-8.
func sampleTree(n int) *Tree {
	t := &Tree{}
	when := time.Date(2026, 12, 5, 13, 0, 0, 123456789, time.UTC)
	for i := range n {
		id := ID{byte(i), byte(i >> 8), 1}
		t.Nodes = append(t.Nodes, &Node{Name: fmt.Sprintf("file-%05d.php", i), Type: NodeFile, Mode: 0o644,
			ModTime: when, ChangeTime: when.Add(time.Second), Inode: uint64(i) + 1e6, Dev: 2049, Size: 30000, Content: []ID{id, {9}}})
	}
	t.Nodes = append(t.Nodes,
		&Node{Name: "bad\xffname", Type: NodeFile, Content: []ID{{7}}, Meta: map[string]string{"k\xfe": "v", "x": "y"}},
		&Node{Name: "dir", Type: NodeDir, Mode: 0o755 | 1<<31, Subtree: &ID{3}, Meta: map[string]string{"owner": "www-data"}},
		&Node{Name: "link", Type: NodeSymlink, LinkTarget: "../bad\xffname"},
		&Node{Name: "ünïcødé 文件", Type: NodeFile, Size: 0})
	return t
}

// decodeTree (go-json-experiment) reads what encodeTree writes exactly as
// encoding/json reads it.
func TestDecodeTreeAsEncodingJSON(t *testing.T) {
	blob, err := encodeTree(sampleTree(50))
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeTree(blob)
	if err != nil {
		t.Fatal(err)
	}
	var tj treeJSON
	if err := json.Unmarshal(blob, &tj); err != nil {
		t.Fatal(err)
	}
	var v2 treeJSON
	if err := jsonv2.Unmarshal(blob, &v2); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(tj, v2) {
		t.Fatal("go-json-experiment and encoding/json read the same tree differently")
	}
	again, err := encodeTree(got)
	if err != nil || string(again) != string(blob) {
		t.Fatalf("the decoded tree does not encode to the same bytes (%v)", err)
	}
	if n := got.Nodes[0]; n.Name != "bad\xffname" || n.Meta["k\xfe"] != "v" {
		t.Errorf("first node: %+v", n)
	}
}

func BenchmarkDecodeTree(b *testing.B) {
	blob, err := encodeTree(sampleTree(1000))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("decodeTree", func(b *testing.B) {
		for b.Loop() {
			if _, err := decodeTree(blob); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("go-json-experiment", func(b *testing.B) {
		for b.Loop() {
			var tj treeJSON
			if err := jsonv2.Unmarshal(blob, &tj); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		for b.Loop() {
			var tj treeJSON
			if err := json.Unmarshal(blob, &tj); err != nil {
				b.Fatal(err)
			}
		}
	})
}
