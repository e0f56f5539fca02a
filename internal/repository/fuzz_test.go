package repository

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Fuzz targets for every parser of bytes read from a repository. They run
// over their seeds (in code and stored under testdata/fuzz/FuzzX) as normal
// tests; `go test -fuzz FuzzX` explores more. Each asserts: its good seeds
// parse, nothing panics, and any error wraps ErrDamaged or ErrNewerFormat.
// `go test -run Fuzz -update-fuzz-corpus` rewrites the stored seeds from
// the ones in code.

var updateFuzzCorpus = flag.Bool("update-fuzz-corpus", false, "rewrite testdata/fuzz from the seeds in code")

func fuzzCrypter(tb testing.TB) *crypter {
	tb.Helper()
	mk := &masterKey{Enc: [32]byte{1}, MAC: [32]byte{2}, ChunkerSeed: [32]byte{3}}
	c, err := newCrypter(mk, FormatVersion)
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

// mustBuild returns a function that fails the target when building a seed
// failed.
func mustBuild(tb testing.TB) func([]byte, error) []byte {
	return func(b []byte, err error) []byte {
		tb.Helper()
		if err != nil {
			tb.Fatalf("build seed: %v", err)
		}
		return b
	}
}

// seeds adds good seeds, which parse must accept, and bad ones, which
// only must not panic. With -update-fuzz-corpus it also stores them all
// under testdata/fuzz/<target>.
func seeds(f *testing.F, parse func([]byte) error, good, bad [][]byte) {
	f.Helper()
	for i, b := range good {
		if err := parse(b); err != nil {
			f.Fatalf("good seed %d does not parse: %v", i, err)
		}
	}
	all := append(append([][]byte{}, good...), bad...)
	for _, b := range all {
		f.Add(b)
	}
	if !*updateFuzzCorpus {
		return
	}
	dir := filepath.Join("testdata", "fuzz", f.Name())
	if err := os.RemoveAll(dir); err != nil {
		f.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		f.Fatal(err)
	}
	for i, b := range all {
		name := fmt.Sprintf("bad-%02d", i-len(good))
		if i < len(good) {
			name = fmt.Sprintf("good-%02d", i)
		}
		body := "go test fuzz v1\n[]byte(" + strconv.Quote(string(b)) + ")\n"
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			f.Fatal(err)
		}
	}
}

func FuzzPackHeader(f *testing.F) {
	c := fuzzCrypter(f)
	p := &packer{}
	p.add(c, BlobHandle{ID: ID{1}, Type: DataBlob}, []byte("hello"), 5, false)
	p.add(c, BlobHandle{ID: ID{2}, Type: TreeBlob}, []byte("compressed?"), 40, true)
	p.finish(c)
	parse := func(b []byte) error {
		blobs, need, err := parsePackTail(c, b, int64(len(b)))
		if err == nil && (need != 0 || len(blobs) != 2) {
			return fmt.Errorf("%d entries, need %d more bytes", len(blobs), need)
		}
		return err
	}
	hdr := encodePackHeader(p.blobs)
	truncated := bytes.Clone(p.buf[:len(p.buf)-1])
	flipped := bytes.Clone(p.buf)
	flipped[len(flipped)-10] ^= 1
	seeds(f, parse, [][]byte{p.buf}, [][]byte{hdr, truncated, flipped, {}, {1, 2, 3, 4}})
	if _, err := parsePackHeader(hdr, int64(p.blobs[1].Offset+p.blobs[1].Length)); err != nil {
		f.Fatalf("good header does not parse: %v", err)
	}
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
	must := mustBuild(f)
	c := fuzzCrypter(f)
	good := must(json.Marshal(&indexFile{Version: 1, Created: time.Unix(5, 0).UTC(), Supersedes: []ID{{7}},
		Packs:      []indexPack{{ID: ID{1}, Size: 1000, Blobs: []indexBlob{{Type: DataBlob, ID: ID{2}, Offset: 0, Length: 100, RawLength: 72}}}},
		Tombstones: []tombRecord{{Type: DataBlob, ID: ID{2}, Pack: ID{1}, Deleted: time.Unix(9, 0).UTC()}}}))
	parse := func(b []byte) error {
		f, err := parseIndexFile(b)
		if err == nil && (len(f.Packs) != 1 || len(f.Tombstones) != 1) {
			return fmt.Errorf("parsed %d packs, %d tombstones", len(f.Packs), len(f.Tombstones))
		}
		return err
	}
	sealed := c.sealFile(kindIndex, good)
	snap := c.sealFile(kindSnapshot, good) // right key, wrong kind
	seeds(f, parse, [][]byte{good}, [][]byte{sealed, snap, []byte(`{"version":2}`),
		[]byte(`{"version":1,"packs":[{"size":1,"blobs":[{"type":9}]}]}`), []byte(`null`)})
	if plain, err := c.openFile(kindIndex, sealed); err != nil || !bytes.Equal(plain, good) {
		f.Fatalf("sealed good seed does not open: %v", err)
	}
	if _, err := c.openFile(kindIndex, snap); !errors.Is(err, ErrDamaged) {
		f.Fatalf("a snapshot opened as an index: %v", err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_, err := parseIndexFile(b)
		wantParseError(t, err)
		_, err = c.openFile(kindIndex, b)
		wantParseError(t, err)
		x := newIndex()
		if f, err := parseIndexFile(b); err == nil {
			x.apply([]*indexFile{f}) // must not panic either
		}
	})
}

func FuzzTree(f *testing.F) {
	must := mustBuild(f)
	good := must(encodeTree(&Tree{Nodes: []*Node{
		{Name: "a\xff", Type: NodeFile, Content: []ID{{1}}, ModTime: time.Unix(1, 2).UTC(), Meta: map[string]string{"k\xfe": "v"}},
		{Name: "d", Type: NodeDir, Subtree: &ID{3}},
		{Name: "l", Type: NodeSymlink, LinkTarget: "a\xff"},
	}}))
	parse := func(b []byte) error {
		tr, err := decodeTree(b)
		if err == nil && len(tr.Nodes) != 3 {
			return fmt.Errorf("%d nodes", len(tr.Nodes))
		}
		return err
	}
	seeds(f, parse, [][]byte{good}, [][]byte{
		[]byte(`{"nodes":[{"name":"","type":"file"}]}`),
		[]byte(`{"nodes":[{"name":"x","mtime":"yesterday"}]}`),
		[]byte(`{"nodes":[{"name":"b","type":"file"},{"name":"a","type":"file"}]}`),
		[]byte(`[]`)})
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
	must := mustBuild(f)
	good := must(json.Marshal(snapshotFile{Version: 1, Snapshot: &Snapshot{Time: time.Unix(3, 0).UTC(), Site: "s", Tree: ID{1}, Summary: &Summary{FilesNew: 1}}}))
	parse := func(b []byte) error {
		sn, err := parseSnapshot(b)
		if err == nil && (sn.Site != "s" || sn.Tree != (ID{1})) {
			return fmt.Errorf("parsed %+v", sn)
		}
		return err
	}
	seeds(f, parse, [][]byte{good}, [][]byte{[]byte(`{"version":1}`), []byte(`{"version":99,"tree":"00"}`)})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, err := parseSnapshot(b)
		wantParseError(t, err)
	})
}

func FuzzKeyFile(f *testing.F) {
	mk := &masterKey{}
	at := time.Unix(0, 0)
	good, _, err := newKeyFile(mk, "pw", "l", keyFileVersion, minScryptN, 1, 1, at)
	if err != nil {
		f.Fatal(err)
	}
	good1, _, err := newKeyFile(mk, "pw", "l", 1, minScryptN, 1, 1, at)
	if err != nil {
		f.Fatal(err)
	}
	parse := func(b []byte) error {
		kf, err := parseKeyFile(b)
		if err != nil {
			return err
		}
		got, err := kf.unwrap("pw")
		if err == nil && *got != *mk {
			return errors.New("unwrapped another master key")
		}
		return err
	}
	relabelled := bytes.Replace(good, []byte(`"label":"l"`), []byte(`"label":"m"`), 1)
	seeds(f, parse, [][]byte{good, good1}, [][]byte{relabelled,
		[]byte(`{"version":1,"kdf":"scrypt","n":1073741824,"r":8,"p":1}`),
		[]byte(`{"version":2,"kdf":"scrypt","n":1048576,"r":32,"p":1}`),
		[]byte(`{"version":1,"kdf":"argon9"}`)})
	f.Fuzz(func(t *testing.T, b []byte) {
		kf, err := parseKeyFile(b)
		wantParseError(t, err)
		if err == nil && kf.N*kf.R*kf.P <= 1<<12 {
			if _, err := kf.unwrap("pw"); err != nil && !errors.Is(err, ErrWrongPassword) {
				wantParseError(t, err)
			}
		}
	})
}

func FuzzConfig(f *testing.F) {
	must := mustBuild(f)
	c := fuzzCrypter(f)
	params := must(json.Marshal(configParams{Chunker: TestChunkerParams, Compression: "zstd"}))
	cf := &configFile{Version: FormatVersion, ID: strings.Repeat("ab", 32)}
	cf.Params = c.sealFile(kindConfig, params, configAD(cf)...)
	good := must(json.Marshal(cf))
	parse := func(b []byte) error {
		cf, err := parseConfigHeader(b)
		if err != nil {
			return err
		}
		_, err = parseConfigParams(c, cf)
		return err
	}
	other := *cf
	other.ID = strings.Repeat("cd", 32) // params bound to another id
	seeds(f, parse, [][]byte{good}, [][]byte{must(json.Marshal(&other)), params, []byte(`{"version":3}`)})
	f.Fuzz(func(t *testing.T, b []byte) {
		cf, err := parseConfigHeader(b)
		wantParseError(t, err)
		if err == nil {
			_, err = parseConfigParams(c, cf)
			wantParseError(t, err)
		}
		bare := &configFile{Version: FormatVersion, ID: strings.Repeat("ab", 32)}
		bare.Params = c.sealFile(kindConfig, b, configAD(bare)...)
		_, err = parseConfigParams(c, bare)
		wantParseError(t, err)
	})
}
