package repository

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// Fuzz targets for every parser of bytes read from a repository. They run
// over their seeds as normal tests; `go test -fuzz FuzzX` explores more.
// Each asserts: no panic, and any error wraps ErrDamaged or ErrNewerFormat.

func fuzzCrypter(tb testing.TB) *crypter {
	tb.Helper()
	mk := &masterKey{Enc: [32]byte{1}, MAC: [32]byte{2}, ChunkerSeed: [32]byte{3}}
	c, err := newCrypter(mk)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func wantParseError(tb testing.TB, err error) {
	tb.Helper()
	if err != nil && !errors.Is(err, ErrDamaged) && !errors.Is(err, ErrNewerFormat) {
		tb.Fatalf("error wraps neither ErrDamaged nor ErrNewerFormat: %v", err)
	}
}

func FuzzPackHeader(f *testing.F) {
	c := fuzzCrypter(f)
	p := &packer{}
	p.add(c, BlobHandle{ID: ID{1}, Type: DataBlob}, []byte("hello"), 5, false)
	p.add(c, BlobHandle{ID: ID{2}, Type: TreeBlob}, []byte("compressed?"), 40, true)
	p.finish(c)
	f.Add(p.buf)
	f.Add(encodePackHeader(p.blobs))
	f.Add([]byte{})
	f.Add([]byte{1, 2, 3, 4})
	f.Fuzz(func(t *testing.T, b []byte) {
		blobs, _, err := parsePackTail(c, b, int64(len(b)))
		wantParseError(t, err)
		for _, pb := range blobs {
			if int64(pb.Offset)+int64(pb.Length) > int64(len(b)) {
				t.Fatal("accepted an entry outside the pack")
			}
		}
		_, err = parsePackHeader(b, int64(len(b)))
		wantParseError(t, err)
	})
}

func FuzzIndexFile(f *testing.F) {
	good, _ := json.Marshal(&indexFile{Version: 1, Created: time.Unix(5, 0).UTC(), Supersedes: []ID{{7}},
		Packs:      []indexPack{{ID: ID{1}, Size: 1000, Blobs: []indexBlob{{Type: DataBlob, ID: ID{2}, Offset: 0, Length: 100, RawLength: 72}}}},
		Tombstones: []tombRecord{{Type: DataBlob, ID: ID{2}, Pack: ID{1}, Deleted: time.Unix(9, 0).UTC()}}})
	f.Add(good)
	f.Add([]byte(`{"version":2}`))
	f.Add([]byte(`{"version":1,"packs":[{"size":1,"blobs":[{"type":9}]}]}`))
	f.Add([]byte(`null`))
	c := fuzzCrypter(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		_, err := parseIndexFile(b)
		wantParseError(t, err)
		_, err = c.openFile(b)
		wantParseError(t, err)
		x := newIndex()
		if f, err := parseIndexFile(b); err == nil {
			x.apply([]*indexFile{f}) // must not panic either
		}
	})
}

func FuzzTree(f *testing.F) {
	good, _ := encodeTree(&Tree{Nodes: []*Node{
		{Name: "a\xff", Type: NodeFile, Content: []ID{{1}}, ModTime: time.Unix(1, 2).UTC(), Meta: map[string]string{"k\xfe": "v"}},
		{Name: "d", Type: NodeDir, Subtree: &ID{3}},
	}})
	f.Add(good)
	f.Add([]byte(`{"nodes":[{"name":"","type":"file"}]}`))
	f.Add([]byte(`{"nodes":[{"name":"x","mtime":"yesterday"}]}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		tr, err := decodeTree(b)
		wantParseError(t, err)
		if err == nil {
			// what decodes is valid: it re-encodes
			if _, err := encodeTree(tr); err != nil {
				t.Fatalf("decoded tree does not re-encode: %v", err)
			}
		}
	})
}

func FuzzSnapshot(f *testing.F) {
	good, _ := json.Marshal(snapshotFile{Version: 1, Snapshot: &Snapshot{Time: time.Unix(3, 0).UTC(), Site: "s", Tree: ID{1}, Summary: &Summary{FilesNew: 1}}})
	f.Add(good)
	f.Add([]byte(`{"version":1}`))
	f.Add([]byte(`{"version":99,"tree":"00"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, err := parseSnapshot(b)
		wantParseError(t, err)
	})
}

func FuzzKeyFile(f *testing.F) {
	mk := &masterKey{}
	good, _, err := newKeyFile(mk, "pw", "l", 16, 1, 1, time.Unix(0, 0))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{"version":1,"kdf":"scrypt","n":1073741824,"r":8,"p":1}`))
	f.Add([]byte(`{"version":1,"kdf":"argon9"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		kf, err := parseKeyFile(b)
		wantParseError(t, err)
		if err == nil && kf.N <= 1<<12 {
			if _, err := kf.unwrap("pw"); err != nil && !errors.Is(err, ErrWrongPassword) {
				t.Fatalf("unwrap: %v", err)
			}
		}
	})
}

func FuzzConfig(f *testing.F) {
	c := fuzzCrypter(f)
	params, _ := json.Marshal(configParams{Chunker: TestChunkerParams, Compression: "zstd"})
	good, _ := json.Marshal(configFile{Version: 1, ID: strings.Repeat("ab", 32), Params: c.sealFile(params)})
	f.Add(good)
	f.Add(params)
	f.Add([]byte(`{"version":2}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		cf, err := parseConfigHeader(b)
		wantParseError(t, err)
		if err == nil {
			_, err = parseConfigParams(c, cf.Params)
			wantParseError(t, err)
		}
		_, err = parseConfigParams(c, c.sealFile(b))
		wantParseError(t, err)
	})
}
