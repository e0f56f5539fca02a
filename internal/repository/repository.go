package repository

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sitevault/sitevault/internal/backend"
	"github.com/sitevault/sitevault/internal/repository/chunker"
)

// DefaultPackSize is the target size of a pack file.
const DefaultPackSize = 16 << 20

// Options tune an opened repository.
type Options struct {
	// PackSize is the target pack size; 0 means the default (16 MiB).
	PackSize int
	// Connections bounds concurrent backend uploads; 0 means 2 (each
	// upload holds one pack in memory, or in a file with SpillDir).
	Connections int
	// Packers is the number of packs filled in parallel; 0 means 1
	// (filling is a copy: hashing, compression and encryption run before,
	// in the callers' goroutines). Memory for unfinished packs is bounded by
	// (Packers + Connections) × (PackSize + largest blob); with SpillDir,
	// by Packers × (1 MiB + largest blob) plus the blob lists.
	Packers int
	// SpillDir, if set, is where packs are assembled, each in a temporary
	// file (created there with O_EXCL and mode 0600, unlinked at once so a
	// crash leaves nothing, closed after its upload or failure), and
	// uploaded from it: packs leave the heap, which then holds only each
	// pack's blob list and a 1 MiB write buffer. The files hold only
	// sealed (encrypted) blobs. The folder needs room for
	// (Packers + Connections) packs. "" keeps packs in memory.
	SpillDir string
	// IndexEvery writes an index file after that many packs are uploaded
	// (and at Flush); 0 means 4.
	IndexEvery int
	// Now is the clock; nil means time.Now. Tests age data with it.
	Now func() time.Time
	// Logger receives debug and warning logs; nil discards them.
	Logger *slog.Logger
	// NoIndex opens without loading the index: for RepairIndex, which
	// rebuilds it, when Open fails with ErrIndexDamaged. Nothing else
	// works on such a session.
	NoIndex bool
}

// InitOptions choose a new repository's parameters.
type InitOptions struct {
	Options
	// KDF cost override for tests (0 = default, strong: 2^16).
	ScryptN int
	Label   string // label of the first key slot
	// Chunker overrides the chunk sizes (zero = 512 KiB / 1 MiB / 8 MiB).
	Chunker chunker.Params
}

// Repository is an opened, unlocked repository. It is safe for concurrent use.
type Repository struct {
	be      backend.Backend
	opts    Options
	log     *slog.Logger
	now     func() time.Time
	id      string
	mk      *masterKey
	crypt   *crypter
	params  configParams
	table   *chunker.Table
	keyName string
	kdf     struct{ N, R, P int }

	idx atomic.Pointer[index]

	// saving
	mu       sync.Mutex              // guards inflight, used, pending, err, idxFiles
	inflight map[BlobHandle]struct{} // blobs in packs not yet indexed in memory
	// snaps caches decoded snapshot files by id: a file never changes (its
	// name is its content's hash), so a listing decodes only new ones.
	snapsMu  sync.Mutex
	snaps    map[ID]*Snapshot
	used     map[BlobHandle]int64 // blob → last time (unix ns) SaveBlob or MarkUsed saw it
	pending  []*packInfo          // uploaded packs not yet in an index file
	saveErr  error
	idxFiles map[ID][]ID     // index files applied to idx → the packs they name
	idxGone  map[ID]struct{} // index files known to be superseded (not applied)
	reloads  int             // full index loads (tests: refreshes should not need them)
	saved    SaveStats       // what this process stored

	writerMu sync.Mutex
	writer   *backend.Handle // this process's writer marker (writers.go)

	packers   chan *packer
	uploadSem chan struct{}
	uploads   waitCounter // running uploads; unlike sync.WaitGroup, Add may race with Wait
	indexMu   sync.Mutex  // serialises index file writes
	chunkBufs sync.Pool
}

func (o Options) withDefaults() Options {
	if o.PackSize <= 0 {
		o.PackSize = DefaultPackSize
	}
	if o.Connections <= 0 {
		o.Connections = 2
	}
	if o.Packers <= 0 {
		o.Packers = 1
	}
	if o.IndexEvery <= 0 {
		o.IndexEvery = 4
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Init creates a repository on be with one key slot for password.
func Init(ctx context.Context, be backend.Backend, password string, opts InitOptions) (*Repository, error) {
	_, err := be.Stat(ctx, backend.Handle{Type: backend.ConfigFile})
	if err == nil {
		return nil, fmt.Errorf("init %s: %w", be.Location(), ErrRepositoryExists)
	}
	if !errors.Is(err, backend.ErrNotExist) {
		return nil, fmt.Errorf("init %s: stat config: %w", be.Location(), err)
	}
	o := opts.Options.withDefaults()
	mk, err := newMasterKey()
	if err != nil {
		return nil, fmt.Errorf("init: %w", err)
	}
	n := opts.ScryptN
	if n == 0 {
		n = defaultScryptN
	}
	kb, _, err := newKeyFile(mk, password, opts.Label, keyFileVersion, n, defaultScryptR, defaultScryptP, o.Now())
	if err != nil {
		return nil, fmt.Errorf("init: %w", err)
	}
	cp := configParams{Chunker: opts.Chunker, Compression: "zstd"}
	if cp.Chunker == (chunker.Params{}) {
		cp.Chunker = chunker.DefaultParams()
	}
	if err := cp.Chunker.Validate(); err != nil {
		return nil, fmt.Errorf("init: %w", err)
	}
	crypt, err := newCrypter(mk, FormatVersion)
	if err != nil {
		return nil, fmt.Errorf("init: %w", err)
	}
	pj, err := jsonMarshal(cp)
	if err != nil {
		return nil, err
	}
	rid := make([]byte, 32)
	if _, err := rand.Read(rid); err != nil {
		return nil, err
	}
	cf := &configFile{Version: FormatVersion, ID: hex.EncodeToString(rid)}
	cf.Params = crypt.sealFile(kindConfig, pj, configAD(cf)...)
	// key first: a config without a key would be a repository nobody opens
	keyName, err := saveKeyFile(ctx, be, kb)
	if err != nil {
		return nil, fmt.Errorf("init: %w", err)
	}
	if err := saveConfig(ctx, be, cf); err != nil {
		if errors.Is(err, ErrRepositoryExists) {
			// Another init won the race: our slot wraps a master key
			// that config does not belong to.
			_ = be.Remove(ctx, backend.Handle{Type: backend.KeyFile, Name: keyName})
		}
		return nil, fmt.Errorf("init %s: %w", be.Location(), err)
	}
	return Open(ctx, be, password, opts.Options)
}

// Open unlocks the repository on be with password and loads its index.
func Open(ctx context.Context, be backend.Backend, password string, opts Options) (*Repository, error) {
	cf, err := loadConfigHeader(ctx, be)
	if err != nil {
		return nil, fmt.Errorf("open: %w", err)
	}
	mk, keyName, kf, err := unlock(ctx, be, password, cf.Version)
	if err != nil {
		return nil, fmt.Errorf("open: %w", err)
	}
	crypt, err := newCrypter(mk, cf.Version)
	if err != nil {
		return nil, fmt.Errorf("open: %w", err)
	}
	params, err := parseConfigParams(crypt, cf)
	if err != nil {
		return nil, fmt.Errorf("open: %w", err)
	}
	o := opts.withDefaults()
	r := &Repository{
		be: be, opts: o, log: o.Logger, now: o.Now, id: cf.ID, mk: mk, crypt: crypt,
		params: *params, table: chunker.NewTable(mk.ChunkerSeed[:]), keyName: keyName,
		inflight:  make(map[BlobHandle]struct{}),
		used:      make(map[BlobHandle]int64),
		idxFiles:  make(map[ID][]ID),
		idxGone:   make(map[ID]struct{}),
		packers:   make(chan *packer, o.Packers),
		uploadSem: make(chan struct{}, o.Connections),
	}
	r.kdf.N, r.kdf.R, r.kdf.P = kf.N, kf.R, kf.P
	r.idx.Store(newIndex())
	for range o.Packers {
		r.packers <- nil
	}
	if o.NoIndex {
		return r, nil
	}
	if err := r.LoadIndex(ctx); err != nil {
		return nil, fmt.Errorf("open: %w", err)
	}
	return r, nil
}

// Backend returns the backend the repository lives on.
func (r *Repository) Backend() backend.Backend { return r.be }

// ID returns the repository's id.
func (r *Repository) ID() string { return r.id }

// Close waits for running uploads and releases resources; it flushes
// nothing (call Flush first to persist) and does not close the backend.
func (r *Repository) Close() error {
	r.uploads.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := r.unmarkWriter(ctx)
	r.dropSpilled()
	return err
}

// errClosedUnsaved fails a session closed while spilled packs were still
// being filled (a backup that failed before its Flush).
var errClosedUnsaved = errors.New("repository closed with blobs not yet uploaded: run the backup again")

// dropSpilled closes the temporary files of packs still being filled:
// after a failed backup nothing uploads them, and their files must not
// stay open. Their blobs are released (failPacker), so the session fails
// rather than treat them as stored.
func (r *Repository) dropSpilled() {
	for range r.opts.Packers {
		p := <-r.packers
		if p != nil && p.spill != nil {
			if len(p.blobs) > 0 {
				r.failPacker(p, errClosedUnsaved)
			}
			r.releasePacker(p)
			p = nil
		}
		r.packers <- p
	}
}

func (r *Repository) setErr(err error) {
	r.mu.Lock()
	if r.saveErr == nil {
		r.saveErr = err
	}
	r.mu.Unlock()
}

func (r *Repository) err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.saveErr
}
