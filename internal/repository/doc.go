// Package repository is sitevault's storage engine: encrypted,
// deduplicated, content-addressed storage of restore points on a
// backend.Backend. It knows nothing of WordPress; the backup and restore
// packages compose it with a site.
//
// # Glossary
//
//   - master key: 96 random bytes made at init: a 32-byte AES-256 key
//     (encryption), a 32-byte BLAKE3 key (blob ids) and a 32-byte chunker
//     seed. It never leaves the process unwrapped.
//   - key slot: a keys/<id> file holding the master key wrapped by a key
//     derived from one password (scrypt). Several passwords open one
//     repository; removing the last slot is refused (ErrLastKey).
//   - blob: a chunk of file or database-segment content (data blob) or a
//     serialized directory (tree blob), named by its id: the keyed BLAKE3
//     of its plaintext. Identical content has one id, so it is stored once.
//   - chunk: a piece of a stream cut by the content-defined chunker
//     (FastCDC, package chunker); each chunk becomes a data blob.
//   - pack: an immutable file of about 16 MiB holding many encrypted blobs
//     and, at its end, an encrypted header listing them.
//   - index: index/ files saying which pack holds which blob; loaded into
//     memory at Open. Bounded in size; rebuilt from the packs by
//     RepairIndex.
//   - tombstone: an index record by which prune marks a blob copy unused
//     at a time; after the grace period the copy may be deleted.
//   - snapshot: a restore point: a root tree id plus metadata.
//   - orphan pack: a pack no index lists (its writer died before writing
//     the index, or has not written it yet); RecoverOrphans or prune
//     indexes it. A pack a prune is deleting is never an orphan: it stays
//     in the index, tombstoned, until it is gone.
//
// # On-disk format (version 2, index files version 2; version 1 differences at the end)
//
// All multi-byte integers are little endian. "Sealed" means
// nonce(12 random bytes) || AES-256-GCM ciphertext || tag(16), under the
// master key's encryption key. Sealed files and pack headers carry their
// kind as associated data (AD): "sitevault config", "sitevault index",
// "sitevault snapshot", "sitevault lock", "sitevault pack header"; an index
// file copied into snapshots/ fails authentication (ErrDamaged) instead of
// being parsed. Blobs carry none: a blob's id is the keyed hash of its
// plaintext, checked on every read. All ids are 32
// bytes, written as 64 lower-case hex characters in names and JSON.
// []byte values in JSON are standard base64 (as encoding/json writes them).
//
// Files (see package backend for where each lives):
//
//	config            plaintext JSON {"version":2,"id":"<64 hex>","params":"<base64 sealed file>"}
//	keys/<sha256>     plaintext JSON key slot; name = SHA-256 of the file
//	data/xx/<sha256>  packs; name = SHA-256 of the whole file
//	index/<sha256>    sealed file (below); name = SHA-256 of the stored bytes
//	snapshots/<sha256> sealed file; name = SHA-256 of the stored bytes
//
// Sealed file (config params, index, snapshot, lock): seal(flag ||
// payload), flag 0 = payload is the JSON, 1 = payload is a zstd frame of
// the JSON; AD = its kind. For the config params the AD is
// "sitevault config" NUL "version 2" NUL "id <id>", so a header whose
// version or id was changed does not open.
//
// config: "version" is readable without any key, so a newer format fails
// with ErrNewerFormat before decryption. The config is never replaced:
// every backend stores it only if none exists (local: link(2) of the
// synced temporary file; SFTP: the plain SFTP rename, which OpenSSH
// performs with link(2) and so refuses an existing target; S3: PUT with
// If-None-Match: *, which AWS S3 and VersityGW honour — an S3 server that
// ignores it lets both inits write), so of two concurrent inits exactly
// one succeeds and the other gets ErrRepositoryExists and removes its key
// slot. "params" decrypts to
// {"chunker":{"min":n,"avg":n,"max":n},"compression":"zstd"|"none"}
// (chunk sizes in bytes; avg a power of two).
//
// Key slot JSON: {"version":2, "kdf":"scrypt", "n":N, "r":r, "p":p,
// "salt":base64(32 bytes), "created":RFC 3339, "hostname", "username",
// "label", "data":base64(sealed master key), "meta_mac":base64(32 bytes)}.
// The file is stored as keys/<SHA-256 of its bytes>; a file whose name is
// not that hash is damaged. The wrapping key is
// scrypt(password, salt, N, r, p, 32 bytes); "data" is
// nonce || AES-256-GCM(wrapping key, enc||mac||chunker seed) || tag (96
// bytes of plaintext, no AD). "meta_mac" is HMAC-SHA256(wrapping key, the
// fields "sitevault key", version, kdf, n, r, p, salt, created (RFC 3339
// with nanoseconds, UTC), hostname, username, label, each as uint32
// length || bytes): a slot whose metadata was changed is ErrDamaged, named
// in the error. Default N=2^16, r=8, p=1: 64 MiB (128·N·r bytes) and a few
// hundred milliseconds. Every slot's KDF runs at Open until one opens, so
// readers refuse, before running it, a slot asking for N outside
// 2^10…2^20, r > 32, p > 16, more than 256 MiB of memory or more than 4
// times the default work (N·r·p; about 4 s on a loaded 2-core machine): such a slot is ErrDamaged and named, and
// does not stop another slot from opening. Open tries every slot; none
// opening is ErrWrongPassword.
//
// Blob id: BLAKE3-256 keyed with the master key's MAC key, of the blob's
// plaintext. Data and tree blobs are distinct even with equal ids
// (the index is keyed by type and id).
//
// Blob encoding inside a pack: seal(payload), where payload is the zstd
// frame of the plaintext if the blob's compressed flag is set, else the
// plaintext itself. Compression is skipped for data whose sampled byte
// entropy is ≥ 7.95 bits/byte, and dropped when it saves less than 3%.
// A reader verifies the GCM tag, decompresses, checks the length against
// raw_length and the keyed hash against the id: a damaged blob is
// ErrDamaged, never wrong data.
//
// Pack layout:
//
//	blob_1 … blob_n | sealed header | uint32 len(sealed header)
//
// The header plaintext is a version byte (1) followed by n entries of 46
// bytes: type(1: 1 data, 2 tree) flags(1: bit 0 = compressed)
// offset(u32, from the pack's start) length(u32, stored bytes)
// raw_length(u32, plaintext bytes) id(32). Packs are self-describing:
// RecoverOrphans and a rebuild read only the trailer and header.
//
// Index files. Each lists at most 65,536 blobs (a pack is never split
// across files, so a pack of more blobs makes one larger file, bounded by
// the pack): no file grows with the repository, and none comes near the
// 256 MiB a reader decompresses. Version 2 (written since issue 9) is a
// JSON envelope {"version":2,"data":"<base64>"} around a binary body; the
// envelope makes readers that know only version 1 fail with
// ErrNewerFormat ("upgrade sitevault") rather than skip the file. Body:
//
//	version u8 (2) | created i64 (unix ns)
//	n u32 | n × superseded index file id (32)
//	n u32 | n × pack: id(32) size(u64) m(u32) m × 46-byte entry (as in a pack header)
//	n u32 | n × tombstone: type(1) blob id(32) pack id(32) deleted(i64 unix ns, 0 = none) revived(i64, 0 = none)
//
// Counts are checked against the bytes left before anything is allocated;
// trailing bytes are an error. Version 1 (JSON, still read):
// {"version":1, "created":RFC 3339,
// "supersedes":[ids of index files this one replaces],
// "packs":[{"id", "size", "blobs":[{"type", "id", "offset", "length",
// "raw_length", "compressed" (omitted when false)}]}],
// "tombstones":[{"type", "id", "pack", "deleted":RFC 3339, "revived":RFC 3339}]}.
// A repository written before issue 9 (version 1 files only) opens as it
// is; new index files are version 2, and `sitevault repair index`
// rewrites all of them in version 2 at once.
//
// Reading all index files: drop every file another lists in
// "supersedes"; for each (blob, pack) take the latest "deleted" and the
// latest "revived" over all files; the copy is tombstoned when deleted >
// revived. A pack may appear in several files (merge by pack id). A blob
// with a live copy is live (backups deduplicate against it); a blob with
// only tombstoned copies can still be read but is never deduplicated
// against (a backup stores it again). A writer that replaces files
// (prune's compaction, repair) writes its files one by one and lists the
// superseded files only in the last, so a writer killed half-way leaves
// the old files in force. An index file that cannot be read makes Open
// fail (ErrIndexDamaged, an *IndexError naming the file): a partial index
// would make restores miss blobs and backups upload everything again.
// RepairIndex rebuilds the index from the pack headers (packs are
// self-describing) and supersedes every index file.
//
// Tree blob: JSON {"nodes":[…]} with nodes sorted by name (byte order),
// names unique, never "", ".", "..", containing '/' or NUL. Node fields:
// "name" (or "name_b64" when the name is not valid UTF-8), "type"
// (dir|file|symlink), "mode", "mtime"/"ctime" (RFC 3339 with nanoseconds,
// omitted when zero), "inode", "dev", "size", "link" (or "link_b64"),
// "content" (data blob ids, in order), "subtree" (tree id), "meta" (or
// "meta_b64": [[key, value] …] base64 pairs when any key or value is not
// valid UTF-8). Encoding is deterministic, so an unchanged directory has
// an unchanged id.
//
// Snapshot JSON: {"version":1} merged with the fields of Snapshot
// ("time", "site", "hostname", "trigger", "tree", "parent", "tags",
// "meta", "summary").
//
// Format 1 (config "version":1), as written before format 2: sealed files
// and pack headers carry no AD, key slots are "version":1 without
// "meta_mac" (their metadata is not authenticated). This sitevault reads
// and writes a format 1 repository in format 1 (it never mixes formats, so
// an older sitevault still reads it); a format 2 repository refuses
// version 1 key slots. To get format 2's protections, init a new
// repository and back up into it. testdata/format1 is such a repository,
// opened and restored by TestFormat1KeysAndSealing.
//
// # In memory
//
// The index costs about 54 bytes per blob (IndexBytesPerBlob rounds up to
// 56): one 48-byte entry per blob — id(32) pack number(4) offset(4)
// length(4) and raw length with the type, compressed and tombstoned bits
// (4) — in one array sorted by id and type and searched by bisection, plus
// 1/8 spare capacity. Blobs added after the load (this session's packs,
// other writers' new index files) wait in a small map that is merged into
// the array, in place from its end, whenever it exceeds an eighth of it.
// Further copies of a blob (stored twice by concurrent backups, or by a
// repack) sit in an overflow map; LoadBlob falls back to them, live
// copies first, when a copy is missing or damaged. LoadIndex converts each
// index file to entries as it arrives and builds the array with one
// counting sort on the ids' first two bytes (ids are uniform keyed hashes)
// and a sort of each bucket; its peak is the new array plus the entries
// waiting for it and a few decoded files, while the previous index keeps
// serving readers. A refresh after a prune drops the packs the prune
// deleted instead of loading everything again.
//
// Unfinished packs are buffered in
// memory: at most (Packers + Connections) × (PackSize + largest blob),
// 6 × ~24 MiB ≈ 150 MiB with the defaults on 2 cores. With
// Options.SpillDir (the CLI sets it to the OS temp dir) each pack is
// written to an unlinked temporary file as it fills and uploaded from it;
// the heap keeps only the blob lists and a 1 MiB write buffer per packer,
// and the files hold only sealed blobs (ciphertext). SaveStream holds
// about three chunks plus the chunker's 2 × Max buffer (16 MiB).
// SaveSnapshot's protection set (below) costs ~50 bytes per blob a
// backup touched.
//
// # Write order and crash safety
//
// Every file is written once, atomically, under a content-derived name:
// packs, then the index files naming them (every IndexEvery packs and at
// Flush), then the snapshot. Before a pack is uploaded it is verified as a
// reader would (its bytes hash to its name, the header opens, every blob
// authenticates and hashes to its id), and the SHA-256 of the bytes the
// backend read must equal the name: a bit flipped in memory between
// hashing and upload fails the backup with ErrPackCorrupted, and the pack
// is removed, never indexed. A process killed at any moment leaves only
// complete files; packs it uploaded without an index are orphans, which
// the next backup indexes with RecoverOrphans so it does not upload them
// again. Backups take no lock:
// two processes backing up at once both succeed (they may store some
// blobs twice; prune removes the extra copies).
//
// Writer markers: before its first pack upload a writer saves
// locks/writer-<random> (sealed JSON {host, pid, started}, kind "sitevault
// lock"), and removes it when it closes with every pack it uploaded named
// by an index file. RecoverOrphans (run by every backup) lists data/ only
// when another writer's marker exists, indexes the orphans, then removes
// those markers; a backup after clean ones reads no listing of data/.
// Orphans without a marker (older repositories, a writer that died after
// another one's recovery removed its marker) are indexed by prune's step 0.
//
// # Prune
//
// Prune is a two-phase, time-based garbage collection (as in Kopia). Only
// one prune runs at a time per repository: it holds a lock file
// locks/prune-<random>, re-written every LockRefresh (5 minutes) and
// ignored by other prunes once not re-written for LockStale (30 minutes,
// comparing the two lock files' modification times on the backend).
// Before every destructive step (repack, index write, each removal) a
// prune proves it still holds the lock: a lock write that started less
// than LockStale/2 ago by its own monotonic clock, and its lock file still
// present. Otherwise it stops with ErrPruneLockLost, so a prune suspended
// or cut off for longer than the staleness never deletes beside the
// prune that took over. Backups take no lock. One run:
//
//  0. index every orphan pack whose header reads (a damaged or foreign
//     file in data/ is left alone, and check reports it);
//  1. L := now; list and load every snapshot;
//  2. load every index file (after the snapshots: a snapshot's index
//     files are written before it) and walk all trees to get the used
//     blobs. A damaged snapshot, tree or index file aborts prune;
//  3. drop from the index the packs it lists that the backend lacks:
//     quietly those a prune deleted or repacked (every copy tombstoned),
//     with a warning and PruneResult.MissingPacks the others
//     (lost data; check names the restore points that lost it);
//  4. per blob copy: the first live copy of a used blob is needed; a used
//     blob with only tombstoned copies gets one revived; any other live
//     copy is tombstoned, unless its pack is young (listed by a backup's
//     own index file, not yet compacted, created less than Grace before
//     L by the backup's clock: a running backup may be about to use it;
//     this only saves re-uploads, safety does not rest on it). A pack
//     whose copies are all tombstoned with a stamp at or before
//     L − Grace − LockStale/4 is deleted; a pack where such copies exceed
//     MaxUnused of its bytes (and no copy waits for its grace) is
//     repacked: its needed blobs are copied into new packs and all its
//     copies tombstoned;
//  5. the compacted index is written (bounded files, the last one
//     superseding every file read in step 2), with every pack still present (including those about to be
//     deleted or repacked, tombstoned) and their tombstone state. The new
//     tombstones and revivals are stamped with the time T just before
//     this write; if the write takes LockStale/4 or longer, it is written
//     again with a new stamp, superseding the first (the latest stamp
//     wins in the merge), so a tombstone is visible by its stamp plus
//     LockStale/4: a tombstone's time is when it became visible, not when
//     prune started;
//  6. only then the superseded index files, then the deleted and repacked
//     packs, are removed.
//
// The rule a user must keep: every backup finishes (Open → SaveSnapshot)
// within Grace of its start, and prunes' clocks agree to well within
// Grace. The CLI refuses a Grace under MinGrace (1 h). Pack modification
// times are never used, so copying a repository (rclone, S3 replication)
// is safe.
//
// Why a snapshot S is never left referencing a deleted blob. Let backup B
// start at s (Snapshot.Time) and write S at w < s + Grace; every blob S
// references was saved or deduplicated (SaveBlob, SaveStream, SaveTree)
// or declared (MarkUsed) by B after s. Let prune P delete pack X, deciding
// at its listing time L: each copy in X was tombstoned by stamp D with
// D + Grace + LockStale/4 ≤ L, visible from V ≤ D + LockStale/4 (step 5),
// so V + Grace ≤ L.
//   - If P listed S (w before L), P walked S: each blob S uses has a
//     needed copy, kept live or revived; X holds none (a pack holding a
//     needed copy is neither deleted nor without its copy repacked).
//   - Otherwise w ≥ L ≥ V + Grace, so s > w − Grace ≥ V: B started after
//     X's tombstones were visible. SaveSnapshot re-reads the index (after
//     s, so after V) and re-saves from the tombstoned copy every blob B
//     used since s that has no live copy; if X is already gone, that
//     fails SaveSnapshot (ErrBlobNotFound or a load error) instead of
//     writing an incomplete snapshot. So each blob S uses has a live copy
//     outside X, uploaded before S.
//   - A backup never adopts X as an orphan (RecoverOrphans): from the
//     moment its copies were tombstoned until it is gone, an index file
//     lists X (the compacted index is written before the files it
//     supersedes are removed, and a later prune drops X only once the
//     backend lacks it).
//   - Two prunes never act at once: a prune proves its lock before each
//     destructive step, and a lock is taken over only after LockStale.
//
// The argument takes B's index to hold every tombstone visible at s. A
// session opened for one backup does (Open loads the index); one that
// lives across backups (the service's) must call Refresh when each backup
// starts, as backup.Run does: otherwise B may deduplicate against a copy
// tombstoned before s, and a prune may delete it before w, failing B.
//
// A snapshot written just after a prune listed snapshots may reference
// blobs that prune tombstoned; the next prune sees the snapshot and
// revives them. A layer that reuses blob or tree ids without saving them
// (unchanged files from a parent snapshot) must call MarkUsed.
package repository
