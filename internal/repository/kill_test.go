package repository

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/sitevault/sitevault/internal/backend"
	"github.com/sitevault/sitevault/internal/backend/local"
	"github.com/sitevault/sitevault/internal/backend/s3"
	"github.com/sitevault/sitevault/internal/backend/sftp"
	"github.com/sitevault/sitevault/internal/testsrv"
)

const killEnv = "SITEVAULT_REPOSITORY_KILL_WRITER"

// killData is what the writer backs up: the same bytes in every process.
func killData() map[string][]byte {
	return map[string][]byte{"big": randBytes(500, 24<<20), "text": compressible(501, 4<<20)}
}

// killJob tells the writer subprocess where the repository is and where to
// stall: after StallAt bytes of its StallPack-th pack upload have been
// read by the backend, it reports "stalled <pack> <bytes>" on stdout and
// blocks that upload, so the parent kills it mid-write.
type killJob struct {
	Kind      string // local, sftp, s3
	Local     string
	SFTP      sftp.Config
	S3        s3.Config
	PackSize  int
	StallPack int
	StallAt   int64
}

func (j *killJob) open(ctx context.Context) (backend.Backend, error) {
	switch j.Kind {
	case "local":
		return local.Open(ctx, j.Local)
	case "sftp":
		return sftp.Open(ctx, j.SFTP)
	case "s3":
		return s3.Open(ctx, j.S3)
	}
	return nil, fmt.Errorf("unknown backend %q", j.Kind)
}

// stallBackend blocks the StallPack-th pack upload after StallAt bytes.
type stallBackend struct {
	backend.Backend
	job   *killJob
	packs int
}

func (b *stallBackend) Save(ctx context.Context, h backend.Handle, rd io.ReadSeeker, size int64) error {
	if h.Type == backend.PackFile {
		b.packs++ // uploads are serialised: Connections is 1
		if b.packs == b.job.StallPack {
			rd = &stallReader{rd: rd, left: b.job.StallAt, name: h.Name}
		}
	}
	return b.Backend.Save(ctx, h, rd, size)
}

type stallReader struct {
	rd   io.ReadSeeker
	left int64
	name string
	sent int64
}

func (r *stallReader) Read(p []byte) (int, error) {
	if r.left == 0 {
		// Every byte before this read has been handed to the backend.
		fmt.Printf("stalled %s %d\n", r.name, r.sent)
		time.Sleep(time.Hour) // until SIGKILL
	}
	p = p[:min(int64(len(p)), r.left)]
	n, err := r.rd.Read(p)
	r.left -= int64(n)
	r.sent += int64(n)
	return n, err
}

func (r *stallReader) Seek(off int64, whence int) (int64, error) { return r.rd.Seek(off, whence) }

// TestKillWriterHelper is the subprocess of TestKill: it backs up
// killData into the repository the job names, stalling one pack upload.
func TestKillWriterHelper(t *testing.T) {
	env := os.Getenv(killEnv)
	if env == "" {
		return // the entry point of TestKill's subprocess, not a test of its own
	}
	var job killJob
	if err := json.Unmarshal([]byte(env), &job); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	be, err := job.open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r := TestOpen(t, &stallBackend{Backend: be, job: &job}, Options{IndexEvery: 2, PackSize: job.PackSize, Connections: 1})
	if _, err := r.RecoverOrphans(ctx); err != nil {
		t.Fatal(err)
	}
	TestSnapshot(t, r, "killed", time.Now(), killData())
	fmt.Println("finished without stalling")
}

// killTarget is one backend TestKill runs on.
type killTarget struct {
	job      killJob
	be       backend.Backend
	stallAt  func(rnd *rand.Rand, round int) (pack int, at int64)
	midWrite func(t *testing.T, pack string, sent int64) error // nil once the partial upload is on the server
}

// TestKill SIGKILLs a writer while it is uploading a pack, on every backend:
// each kill is proven to land mid-write (part of the pack is on the server:
// a temporary file, or an incomplete multipart upload, holding bytes, and
// no complete pack of that name). Then it checks the repository and runs a
// backup that must reuse what the killed writers uploaded.
func TestKill(t *testing.T) {
	if os.Getenv(killEnv) != "" {
		return // in the subprocess, only TestKillWriterHelper runs
	}
	targets := map[string]func(t *testing.T) killTarget{
		"local": func(t *testing.T) killTarget {
			dir := filepath.Join(t.TempDir(), "repo")
			be, err := local.Create(context.Background(), dir)
			if err != nil {
				t.Fatal(err)
			}
			return killTarget{
				job: killJob{Kind: "local", Local: dir, PackSize: 1 << 20},
				be:  be, stallAt: smallPacks,
				midWrite: func(t *testing.T, pack string, sent int64) error { return tempFileHolds(dir, sent) },
			}
		},
		"sftp": func(t *testing.T) killTarget {
			s := testsrv.StartSSHD(t)
			cfg := sftp.Config{User: s.User, Host: s.Host, Port: s.Port, Path: filepath.Join(s.Dir, "repo"),
				IdentityFile: s.ClientKeyFile, KnownHostsFile: s.KnownHostsFile, Timeout: 10 * time.Second}
			be, err := sftp.Create(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { be.Close() })
			return killTarget{
				job: killJob{Kind: "sftp", SFTP: cfg, PackSize: 1 << 20},
				be:  be, stallAt: smallPacks,
				// the server has the bytes once they are in its temporary file
				midWrite: func(t *testing.T, pack string, sent int64) error { return tempFileHolds(cfg.Path, sent) },
			}
		},
		"s3": func(t *testing.T) killTarget {
			s := testsrv.StartS3(t)
			cfg := s3.Config{Endpoint: s.Endpoint, Bucket: s.NewBucket(t), AccessKey: s.AccessKey, SecretKey: s.SecretKey,
				Region: s.Region, PartSize: 5 << 20}
			be, err := s3.Open(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			mc, err := minio.New(s.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""), Region: s.Region})
			if err != nil {
				t.Fatal(err)
			}
			return killTarget{
				job: killJob{Kind: "s3", S3: cfg, PackSize: 12 << 20},
				be:  be,
				// 12 MiB packs in 5 MiB parts: stall in the second or
				// third part, so at least one part is stored. The first
				// round stalls in its second pack (the first is stored and
				// the last backup reuses it), the second in its first: what
				// is left to store then fills one pack, not two.
				stallAt: func(rnd *rand.Rand, round int) (int, int64) { return 2 - round, 6<<20 + rnd.Int64N(5<<20) },
				midWrite: func(t *testing.T, pack string, sent int64) error {
					return incompleteUpload(mc, cfg.Bucket, backend.Filename(backend.Handle{Type: backend.PackFile, Name: pack}))
				},
			}
		},
	}
	for name, mk := range targets {
		t.Run(name, func(t *testing.T) {
			testKill(t, mk(t))
		})
	}
}

// smallPacks stalls one of packs 3 to 12 (1 MiB each), somewhere inside
// it; more than 12 MiB are left to store in every round.
func smallPacks(rnd *rand.Rand, _ int) (int, int64) {
	return 3 + rnd.IntN(10), 64<<10 + rnd.Int64N(900<<10)
}

// tempFileHolds reports nil once a temporary file under dir holds at least
// half of sent bytes (pipelined SFTP writes may still be in flight).
func tempFileHolds(dir string, sent int64) error {
	var sizes []int64
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || !backend.IsTemp(d.Name()) {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		sizes = append(sizes, fi.Size())
		if fi.Size() >= sent/2 && fi.Size() > 0 {
			return filepath.SkipAll
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, s := range sizes {
		if s >= sent/2 && s > 0 {
			return nil
		}
	}
	return fmt.Errorf("no temporary file holds %d of the %d bytes sent (sizes %v)", sent/2, sent, sizes)
}

// incompleteUpload reports nil once an incomplete multipart upload of key
// exists with at least one part stored.
func incompleteUpload(mc *minio.Client, bucket, key string) error {
	ctx := context.Background()
	for u := range mc.ListIncompleteUploads(ctx, bucket, key, false) {
		if u.Err != nil {
			return u.Err
		}
		if u.Key != key {
			continue
		}
		core := minio.Core{Client: mc}
		parts, err := core.ListObjectParts(ctx, bucket, key, u.UploadID, 0, 100)
		if err != nil {
			return err
		}
		if len(parts.ObjectParts) > 0 && parts.ObjectParts[0].Size > 0 {
			return nil
		}
		return fmt.Errorf("upload %s of %s has no stored part yet", u.UploadID, key)
	}
	return fmt.Errorf("no incomplete upload of %s", key)
}

func testKill(t *testing.T, tg killTarget) {
	ctx := context.Background()
	be := tg.be
	TestRepositoryWith(t, be, Options{})
	rnd := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 3))
	const rounds = 2
	for round := range rounds {
		job := tg.job
		job.StallPack, job.StallAt = tg.stallAt(rnd, round)
		env, err := json.Marshal(&job)
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestKillWriterHelper$", "-test.count=1")
		cmd.Env = append(os.Environ(), killEnv+"="+string(env))
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		var pack string
		var sent int64
		for sc.Scan() {
			if _, err := fmt.Sscanf(sc.Text(), "stalled %s %d", &pack, &sent); err == nil {
				break
			}
		}
		if pack == "" {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("round %d: the writer never reached byte %d of pack %d", round, job.StallAt, job.StallPack)
		}
		// Kill only once the server holds part of the pack.
		var mid error
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if mid = tg.midWrite(t, pack, sent); mid == nil || time.Now().After(deadline) {
				break
			}
		}
		_ = cmd.Process.Signal(syscall.SIGKILL)
		go func() {
			for sc.Scan() {
			}
		}()
		_ = cmd.Wait()
		if mid != nil {
			t.Fatalf("round %d: %d bytes of pack %s sent, but not on the server: %v", round, sent, pack, mid)
		}
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
			t.Fatalf("round %d: the writer was not killed: %v", round, cmd.ProcessState)
		}
		// The kill landed mid-write: the partial upload is still there and
		// no complete pack of that name is.
		if err := tg.midWrite(t, pack, sent); err != nil {
			t.Errorf("round %d: after the kill: %v", round, err)
		}
		if _, err := be.Stat(ctx, backend.Handle{Type: backend.PackFile, Name: pack}); !errors.Is(err, backend.ErrNotExist) {
			t.Errorf("round %d: pack %s cut at byte %d exists: %v", round, pack, sent, err)
		}
		t.Logf("round %d: killed at byte %d of pack %d (%s)", round, sent, job.StallPack, pack[:8])
		// after every kill the repository is consistent
		res, err := TestOpen(t, be, Options{}).Check(ctx, CheckOptions{})
		if err != nil || !res.OK() {
			t.Fatalf("check after kill %d: %v %v", round, err, res.Problems)
		}
	}
	before := repoBytes(t, be, backend.PackFile)
	r := TestOpen(t, be, Options{})
	n, err := r.RecoverOrphans(ctx)
	if err != nil {
		t.Fatal(err)
	}
	files := killData()
	sn := TestSnapshot(t, r, "after", time.Now(), files)
	uploaded := repoBytes(t, be, backend.PackFile) - before
	var total int64
	for _, b := range files {
		total += int64(len(b))
	}
	t.Logf("%d kills, %d orphan packs recovered, %d of ~%d bytes uploaded by the final backup", rounds, n, uploaded, total)
	if before > 0 && uploaded >= total*9/10 {
		t.Errorf("final backup uploaded %d bytes of %d: it did not reuse the killed writers' packs (%d bytes)", uploaded, total, before)
	}
	mustCheck(t, r)
	mustRestore(t, TestOpen(t, be, Options{}), sn, files)
}
