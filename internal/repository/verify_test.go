package repository

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/sitevault/sitevault/internal/backend"
	"github.com/sitevault/sitevault/internal/backend/mem"
)

// flipDuringSave is a backend decorator that flips one bit of the pack in
// the repository's memory (the slice packSealedHook saw) after the backend
// has read its first bytes: a RAM bit flip while the upload runs.
type flipDuringSave struct {
	backend.Backend
	data  *[]byte
	flips int
}

func (f *flipDuringSave) Save(ctx context.Context, h backend.Handle, rd io.ReadSeeker, size int64) error {
	if h.Type != backend.PackFile || f.flips > 0 || *f.data == nil {
		return f.Backend.Save(ctx, h, rd, size)
	}
	f.flips++
	first := make([]byte, 16)
	if _, err := io.ReadFull(rd, first); err != nil {
		return err
	}
	(*f.data)[len(*f.data)/2] ^= 0x10
	return f.Backend.Save(ctx, h, &prefixed{first: first, rest: rd}, size)
}

// prefixed replays first, then rest; a rewind is not needed here.
type prefixed struct {
	first []byte
	rest  io.ReadSeeker
}

func (p *prefixed) Read(b []byte) (int, error) {
	if len(p.first) > 0 {
		n := copy(b, p.first)
		p.first = p.first[n:]
		return n, nil
	}
	return p.rest.Read(b)
}

func (p *prefixed) Seek(off int64, whence int) (int64, error) {
	if off == 0 && whence == io.SeekStart && len(p.first) == 16 {
		return 0, nil
	}
	return 0, errors.New("prefixed: cannot seek")
}

// indexedPacks lists the packs any index file names.
func indexedPacks(tb testing.TB, r *Repository) map[ID]bool {
	tb.Helper()
	ctx := context.Background()
	ids, err := r.listIndexNames(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	out := make(map[ID]bool)
	for _, id := range ids {
		f, err := r.loadIndexFile(ctx, id)
		if err != nil {
			tb.Fatal(err)
		}
		for _, p := range f.Packs {
			out[p.ID] = true
		}
	}
	return out
}

// TestPackVerifiedBeforeIndex: a bit flipped in a finished pack's memory,
// before its upload (caught by decrypt-and-hash) or while the backend
// reads it (caught by hashing what was sent), fails the backup with
// ErrPackCorrupted; the damaged pack is not stored (or removed again) and
// no index file names it. A backup after that stores the data intact.
func TestPackVerifiedBeforeIndex(t *testing.T) {
	files := map[string][]byte{"a": randBytes(11, 300<<10), "b": compressible(12, 200<<10)}
	for _, tc := range []struct {
		name   string
		before bool // flip before verification; else during the upload
	}{{"before upload", true}, {"during upload", false}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			inner := mem.New()
			var seen []byte
			dec := &flipDuringSave{Backend: inner, data: &seen}
			packSealedHook = func(data []byte) {
				if seen != nil {
					return // only the first pack
				}
				seen = data
				if tc.before {
					data[len(data)/3] ^= 0x01
					dec.flips++ // nothing more to do during the upload
				}
			}
			t.Cleanup(func() { packSealedHook = nil })
			r := TestRepositoryWith(t, dec, Options{})
			_, err := SaveTestSnapshot(ctx, r, "s", time.Now(), files)
			if !errors.Is(err, ErrPackCorrupted) {
				t.Fatalf("backup with a flipped bit = %v, want ErrPackCorrupted", err)
			}
			if seen == nil {
				t.Fatal("no pack was made")
			}
			badID := fileID(seen)
			r2 := TestOpen(t, inner, Options{})
			indexed := indexedPacks(t, r2)
			var stored []ID
			if err := inner.List(ctx, backend.PackFile, func(fi backend.FileInfo) error {
				id, err := ParseID(fi.Name)
				if err != nil {
					return err
				}
				stored = append(stored, id)
				var b []byte
				b, err = loadFile(ctx, inner, backend.Handle{Type: backend.PackFile, Name: fi.Name})
				if err == nil && fileID(b) != id {
					t.Errorf("pack %s stored with other bytes than its name", fi.Name)
				}
				return err
			}); err != nil {
				t.Fatal(err)
			}
			for _, id := range stored {
				if id == badID {
					t.Errorf("the damaged pack was stored")
				}
			}
			for id := range indexed {
				if id == badID {
					t.Errorf("an index names the damaged pack")
				}
			}
			// the data is stored intact by the next backup
			packSealedHook = nil
			if _, err := r2.RecoverOrphans(ctx); err != nil {
				t.Fatal(err)
			}
			sn := TestSnapshot(t, r2, "s", time.Now(), files)
			mustCheck(t, r2)
			mustRestore(t, TestOpen(t, inner, Options{}), sn, files)
		})
	}
}

// BenchmarkVerifyPack: the check every pack gets before upload, on a
// 16 MiB pack of 1 MiB blobs, half compressible text, half random.
func BenchmarkVerifyPack(b *testing.B) {
	r := TestRepositoryWith(b, mem.New(), Options{})
	p := &packer{}
	for i := range 16 {
		data := randBytes(uint64(i), 1<<20)
		if i%2 == 0 {
			data = compressible(uint64(i), 1<<20)
		}
		payload, ok := compress(nil, data)
		if !ok {
			payload = data
		}
		p.add(r.crypt, BlobHandle{Type: DataBlob, ID: r.crypt.blobID(data)}, payload, len(data), ok)
	}
	pi, err := p.finish(r.crypt)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(pi.Size)
	for b.Loop() {
		if err := r.verifyPack(pi, p.source(), pi.Size); err != nil {
			b.Fatal(err)
		}
	}
}
