package repository_test

// Fault tests at the repository level, on the real servers: each fault
// (a connection dropped mid-upload or mid-download, a slow link, refused
// credentials, a full disk, a damaged pack) ends with a clear error or
// with success after retries, the repository passes Check (structure and
// read-data), a following backup completes and every snapshot restores
// byte for byte. Backends are opened as sitevault opens them
// (location.OpenWith: the backend wrapped in the retry decorator).

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"golang.org/x/crypto/ssh"

	"github.com/sitevault/sitevault/internal/backend"
	"github.com/sitevault/sitevault/internal/backend/backendtest"
	"github.com/sitevault/sitevault/internal/backend/local"
	"github.com/sitevault/sitevault/internal/backend/retry"
	"github.com/sitevault/sitevault/internal/location"
	"github.com/sitevault/sitevault/internal/repository"
	"github.com/sitevault/sitevault/internal/testsrv"
)

// sftpLocation returns the location and credentials of folder name on s,
// reached at addr (a proxy in front of s).
func sftpLocation(t *testing.T, s *testsrv.SSHD, addr, name string) (location.Location, location.Credentials) {
	host, port := hostPort(t, addr)
	loc := location.Location{Scheme: location.SFTP, User: s.User, Host: host, Port: port, Path: path.Join(s.Dir, name)}
	// The proxy's address is not in known_hosts: pin the fingerprint.
	creds := location.Credentials{SFTPIdentity: s.ClientKeyFile, SFTPFingerprint: s.HostKeyFingerprint()}
	return loc, creds
}

func s3Location(t *testing.T, s *testsrv.S3, addr, bucket string) (location.Location, location.Credentials) {
	host, port := hostPort(t, addr)
	loc := location.Location{Scheme: location.S3, Host: host, Port: port, Bucket: bucket, Insecure: true}
	creds := location.Credentials{S3AccessKey: s.AccessKey, S3SecretKey: s.SecretKey, S3Region: s.Region}
	return loc, creds
}

// openProxied opens (creating) loc through the retry decorator.
func openProxied(t *testing.T, loc location.Location, creds location.Credentials, log *retryLog) backend.Backend {
	t.Helper()
	be, err := location.OpenWith(context.Background(), loc, creds, true, fastRetry(log))
	if err != nil {
		t.Fatalf("open %v: %v", loc, err)
	}
	t.Cleanup(func() { be.Close() })
	return be
}

func TestFaultsSFTP(t *testing.T) {
	s := testsrv.StartSSHD(t)
	proxied := func(t *testing.T, name string) (backend.Backend, *testsrv.FaultProxy, *retryLog) {
		p := testsrv.StartFaultProxy(t, s.Addr)
		log := &retryLog{}
		loc, creds := sftpLocation(t, s, p.Addr, name)
		return openProxied(t, loc, creds, log), p, log
	}
	t.Run("Drops", func(t *testing.T) {
		be, p, log := proxied(t, "drops")
		testDrops(t, be, p, log)
		// A save cut off by a dropped connection may leave its temporary
		// file on the server (package sftp says so); nothing removes it yet.
		if tmp := backendtest.TempFiles(t, filepath.Join(s.Dir, "drops")); len(tmp) > 0 {
			t.Logf("temporary files left on the server by cut uploads: %d", len(tmp))
		}
		testDamage(t, be, log)
	})
	t.Run("Slow", func(t *testing.T) {
		be, p, _ := proxied(t, "slow")
		testSlow(t, be, p)
	})
	t.Run("WrongKey", func(t *testing.T) {
		testSFTPWrongKey(t, s)
	})
}

func TestFaultsS3(t *testing.T) {
	s := testsrv.StartS3(t)
	proxied := func(t *testing.T) (backend.Backend, *testsrv.FaultProxy, *retryLog) {
		p := testsrv.StartFaultProxy(t, s.Endpoint)
		log := &retryLog{}
		loc, creds := s3Location(t, s, p.Addr, s.NewBucket(t))
		return openProxied(t, loc, creds, log), p, log
	}
	t.Run("Drops", func(t *testing.T) {
		be, p, log := proxied(t)
		testDrops(t, be, p, log)
		testDamage(t, be, log)
	})
	t.Run("Slow", func(t *testing.T) {
		be, p, _ := proxied(t)
		testSlow(t, be, p)
	})
	t.Run("WrongCredentials", func(t *testing.T) {
		testS3WrongCredentials(t, s)
	})
}

// testDrops cuts the connection in the middle of a pack upload, of a
// download during a restore and of a download during check --read-data;
// the retry decorator cures each, and the repository stays sound.
func testDrops(t *testing.T, be backend.Backend, p *testsrv.FaultProxy, log *retryLog) {
	r := repository.TestRepositoryWith(t, be, faultOptions)
	h := history{}
	h.backup(t, r, siteFiles(1, 1200<<10, 500<<10))

	// Upload: the first upstream bytes of the next backup are its first
	// pack's (packs are 1 MiB); cut 300 KiB into it.
	p.CutAfter(testsrv.Upstream, 300<<10)
	h.backup(t, r, siteFiles(2, 1500<<10, 400<<10))
	if p.Drops() != 1 {
		t.Fatalf("proxy cut %d connections during the backup, want 1", p.Drops())
	}
	if log.count("save", "data/") == 0 {
		t.Fatalf("no pack save was retried after the cut (retries: %s)", log)
	}
	checkOK(t, r)

	// Download during a restore: 150 KiB in, inside the blob reads.
	p.CutAfter(testsrv.Downstream, 150<<10)
	h.restoreAll(t, r)
	if p.Drops() != 2 {
		t.Fatalf("proxy cut %d connections, want 2 (one during the restore)", p.Drops())
	}
	if log.count("load", "data/") == 0 {
		t.Fatalf("no pack load was retried during the restore (retries: %s)", log)
	}

	// Download during check --read-data: past the index files, inside a
	// pack (check reads whole packs).
	loads := log.count("load", "data/")
	p.CutAfter(testsrv.Downstream, 600<<10)
	res, err := r.Check(context.Background(), repository.CheckOptions{ReadData: true})
	if err != nil || !res.OK() {
		t.Fatalf("check --read-data with a dropped download: err %v, problems %v", err, res.Problems)
	}
	if p.Drops() != 3 || log.count("load", "data/") == loads {
		t.Fatalf("check: %d cuts (want 3), pack load retries %d → %d (retries: %s)", p.Drops(), loads, log.count("load", "data/"), log)
	}

	// A following backup completes; a fresh process sees a sound
	// repository where every snapshot restores exactly.
	h.backup(t, r, siteFiles(3, 800<<10, 300<<10))
	r2 := repository.TestOpen(t, be, faultOptions)
	checkOK(t, r2)
	h.restoreAll(t, r2)
	if p.Drops() != 3 {
		t.Errorf("proxy cut %d connections, want 3", p.Drops())
	}
}

// testSlow backs up, restores and checks through a link that delays every
// chunk of data in both directions. No timing is asserted: it must finish.
func testSlow(t *testing.T, be backend.Backend, p *testsrv.FaultProxy) {
	p.SetDelay(10 * time.Millisecond)
	r := repository.TestRepositoryWith(t, be, faultOptions)
	h := history{}
	h.backup(t, r, siteFiles(10, 1<<20, 300<<10))
	h.backup(t, r, siteFiles(11, 500<<10, 200<<10))
	h.restoreAll(t, r)
	// Check lists data/ (256 folders, one round trip or more each on
	// SFTP), which is slow on a slow link: check at full speed.
	p.SetDelay(0)
	checkOK(t, r)
}

// testDamage flips a byte inside a data blob and truncates another pack;
// reading them is an error wrapping ErrDamaged, never wrong data, it is
// not retried, Check names the pack and the snapshot, and the other
// snapshots still restore.
func testDamage(t *testing.T, be backend.Backend, log *retryLog) {
	ctx := context.Background()
	r := repository.TestOpen(t, be, faultOptions)
	sns, err := r.Snapshots(ctx)
	if err != nil {
		t.Fatal(err)
	}
	older := len(sns)

	// Save the content and flush before saving the tree: the new packs
	// then hold data blobs only, so any byte of their blob area is a data
	// blob's.
	before := packNames(t, be)
	content := randomData(20, 1600<<10)
	ids, size, err := r.SaveStream(ctx, bytes.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	var dataPacks []string
	for name, size := range packNames(t, be) {
		if _, ok := before[name]; !ok && size > 100<<10 {
			dataPacks = append(dataPacks, name)
		}
	}
	if len(dataPacks) < 2 {
		t.Fatalf("want at least two new data packs, got %v", dataPacks)
	}
	now := time.Now()
	tid, err := r.SaveTree(ctx, &repository.Tree{Nodes: []*repository.Node{{Name: "damaged.bin", Type: repository.NodeFile, Mode: 0o644, Size: size, Content: ids, ModTime: now}}})
	if err != nil {
		t.Fatal(err)
	}
	snID, err := r.SaveSnapshot(ctx, &repository.Snapshot{Time: now, Site: "faults", Tree: tid})
	if err != nil {
		t.Fatal(err)
	}

	flipped, truncated := dataPacks[0], dataPacks[1]
	rewritePack(t, be, flipped, func(b []byte) []byte { b[len(b)/2] ^= 0x01; return b })
	rewritePack(t, be, truncated, func(b []byte) []byte { return b[:len(b)*2/3] })

	r2 := repository.TestOpen(t, be, faultOptions)
	retries := log.total()

	// WriteContent stops at the first damaged blob; what it wrote before
	// is the file's true beginning.
	var buf bytes.Buffer
	err = r2.WriteContent(ctx, ids, &buf)
	if !errors.Is(err, repository.ErrDamaged) {
		t.Errorf("restore of a damaged file: err = %v, want ErrDamaged", err)
	}
	if buf.Len() >= len(content) || !bytes.Equal(buf.Bytes(), content[:buf.Len()]) {
		t.Errorf("restore of a damaged file wrote %d bytes that are not a proper prefix of the content", buf.Len())
	}

	// Blob by blob: every blob either loads exactly or fails with
	// ErrDamaged. Damaged blobs' lengths are unknown, so verify the good
	// ones against the content up to the first damaged one.
	damaged, off := 0, 0
	for _, id := range ids {
		data, err := r2.LoadBlob(ctx, repository.DataBlob, id, nil)
		if err != nil {
			if !errors.Is(err, repository.ErrDamaged) {
				t.Errorf("load of blob %v: err = %v, want ErrDamaged", id.Short(), err)
			}
			damaged++
			continue
		}
		if damaged == 0 {
			if !bytes.Equal(data, content[off:off+len(data)]) {
				t.Fatalf("blob %v loaded wrong data", id.Short())
			}
			off += len(data)
		}
	}
	if damaged < 2 {
		t.Errorf("%d damaged blobs, want at least 2 (one flipped, one or more truncated)", damaged)
	}
	if log.total() != retries {
		t.Errorf("damaged data was retried: %s", log)
	}

	res, err := r2.Check(ctx, repository.CheckOptions{ReadData: true})
	if err != nil {
		t.Fatal(err)
	}
	// Each damaged pack is named by a problem that reports the damaged
	// snapshot, and no problem blames another snapshot. (A pack-level
	// "content does not match its name" problem lists no snapshots: its
	// damaged blobs' problems do.)
	found := map[string]bool{}
	for _, p := range res.Problems {
		if len(p.Snapshots) == 0 {
			continue
		}
		if len(p.Snapshots) != 1 || p.Snapshots[0] != snID {
			t.Errorf("problem %v: affects %v, want only the damaged snapshot %v", p, p.Snapshots, snID.Short())
		}
		found[strings.TrimPrefix(p.File, "data/")] = true
	}
	if !found[flipped] || !found[truncated] {
		t.Errorf("check --read-data: problems %v do not name both damaged packs %s… and %s… with the damaged snapshot", res.Problems, flipped[:8], truncated[:8])
	}

	// The older snapshots do not share the damaged blobs: they restore.
	sns, err = r2.Snapshots(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(sns) != older+1 {
		t.Fatalf("%d snapshots, want %d", len(sns), older+1)
	}
	for _, sn := range sns {
		if sn.ID == snID {
			continue
		}
		if _, err := repository.TestRestore(t, r2, sn.ID); err != nil {
			t.Errorf("restore of undamaged snapshot %v: %v", sn.ID.Short(), err)
		}
	}
}

// testSFTPWrongKey: a key the server does not accept fails Init and Open
// at once with ErrAccess, over one connection, and writes nothing.
func testSFTPWrongKey(t *testing.T, s *testsrv.SSHD) {
	ctx := context.Background()
	cc := startConnCounter(t, s.Addr)
	log := &retryLog{}
	loc, creds := sftpLocation(t, s, cc.Addr, "wrongkey")

	// With the right key: a repository, through the same counting proxy.
	be := openProxied(t, loc, creds, log)
	r := repository.TestRepositoryWith(t, be, faultOptions)
	h := history{}
	h.backup(t, r, siteFiles(30, 100<<10, 50<<10))
	before := treeFiles(t, filepath.Join(s.Dir, "wrongkey"))

	wrong := creds
	wrong.SFTPIdentity = writeKey(t)
	for _, tc := range []struct {
		name   string
		folder string
		create bool
	}{
		{"open existing", "wrongkey", false},
		{"init new", "wrongkey-new", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conns := cc.conns.Load()
			l := loc
			l.Path = path.Join(s.Dir, tc.folder)
			start := time.Now()
			be, err := location.OpenWith(ctx, l, wrong, tc.create, fastRetry(log))
			if err == nil {
				// Open succeeded (it should not): the repository must refuse.
				_, err = repository.Init(ctx, be, repository.TestPassword, repository.InitOptions{ScryptN: repository.TestScryptN})
				be.Close()
			}
			if !errors.Is(err, backend.ErrAccess) || !backend.IsPermanent(err) {
				t.Fatalf("wrong key: err = %v, want a permanent error wrapping ErrAccess", err)
			}
			if !strings.Contains(err.Error(), "check the user, key or password") {
				t.Errorf("error %q does not say what to check", err)
			}
			if n := cc.conns.Load() - conns; n != 1 || log.total() != 0 {
				t.Errorf("wrong key: %d connections and %d retries (%s), want 1 and none", n, log.total(), log)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("refused login took %v", d)
			}
		})
	}
	if exists(filepath.Join(s.Dir, "wrongkey-new")) {
		t.Errorf("a refused init made its folder")
	}
	if after := treeFiles(t, filepath.Join(s.Dir, "wrongkey")); !slicesEqual(before, after) {
		t.Errorf("a refused open changed the repository: %v → %v", before, after)
	}
	r2 := repository.TestOpen(t, be, faultOptions)
	checkOK(t, r2)
	h.restoreAll(t, r2)
}

// writeKey writes a fresh ed25519 key that no server accepts.
func writeKey(t *testing.T) string {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "not authorized")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "id_ed25519")
	if err := os.WriteFile(file, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

func slicesEqual(a, b []string) bool {
	return strings.Join(a, "\x00") == strings.Join(b, "\x00")
}

// testS3WrongCredentials: a wrong secret or access key fails Init and
// Open at once with ErrAccess, in one request, and writes nothing: no
// bucket, no object.
func testS3WrongCredentials(t *testing.T, s *testsrv.S3) {
	ctx := context.Background()
	rc := startRequestCounter(t, s.Endpoint)
	log := &retryLog{}
	bucket := s.NewBucket(t)
	loc, creds := s3Location(t, s, rc.Addr, bucket)

	// With the right keys, through the same counting proxy.
	be := openProxied(t, loc, creds, log)
	r := repository.TestRepositoryWith(t, be, faultOptions)
	h := history{}
	h.backup(t, r, siteFiles(40, 100<<10, 50<<10))
	client, err := s.Client()
	if err != nil {
		t.Fatal(err)
	}
	objects := func(bucket string) []string {
		var names []string
		for o := range client.ListObjects(ctx, bucket, minio.ListObjectsOptions{Recursive: true}) {
			if o.Err != nil {
				t.Fatal(o.Err)
			}
			names = append(names, o.Key+"@"+o.ETag)
		}
		return names
	}
	before := objects(bucket)

	for _, tc := range []struct {
		name   string
		creds  func(c *location.Credentials)
		bucket string
		create bool
	}{
		{"wrong secret, open existing", func(c *location.Credentials) { c.S3SecretKey += "x" }, bucket, false},
		{"wrong access key, open existing", func(c *location.Credentials) { c.S3AccessKey = "nobody" }, bucket, false},
		{"wrong secret, init new bucket", func(c *location.Credentials) { c.S3SecretKey += "x" }, bucket + "-new", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wrong := creds
			tc.creds(&wrong)
			l := loc
			l.Bucket = tc.bucket
			reqs := rc.requests.Load()
			start := time.Now()
			be, err := location.OpenWith(ctx, l, wrong, tc.create, fastRetry(log))
			if err == nil {
				_, err = repository.Init(ctx, be, repository.TestPassword, repository.InitOptions{ScryptN: repository.TestScryptN})
				be.Close()
			}
			if !errors.Is(err, backend.ErrAccess) || !backend.IsPermanent(err) {
				t.Fatalf("wrong credentials: err = %v, want a permanent error wrapping ErrAccess", err)
			}
			if strings.Contains(err.Error(), wrong.S3SecretKey) {
				t.Errorf("error %q shows the secret key", err)
			}
			if n := rc.requests.Load() - reqs; n != 1 || log.total() != 0 {
				t.Errorf("wrong credentials: %d requests and %d retries (%s), want 1 and none", n, log.total(), log)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("refused credentials took %v", d)
			}
		})
	}
	if ok, err := client.BucketExists(ctx, bucket+"-new"); err != nil || ok {
		t.Errorf("a refused init made its bucket (exists %v, err %v)", ok, err)
	}
	if after := objects(bucket); !slicesEqual(before, after) {
		t.Errorf("a refused open changed the repository: %v → %v", before, after)
	}
	r2 := repository.TestOpen(t, be, faultOptions)
	checkOK(t, r2)
	h.restoreAll(t, r2)
}

// TestFaultsFullDisk backs up into a local repository that has 8 MiB of
// space: a backup larger than that fails with ErrNoSpace, without retries
// or temporary files; the repository passes Check as it is, the earlier
// snapshot restores, and once there is more space the backup completes
// and every snapshot restores. The disk is a real tmpfs where mounting is
// permitted (root), and always an injected ENOSPC (fullDisk), which runs
// the same path in the local backend.
func TestFaultsFullDisk(t *testing.T) {
	t.Run("Tmpfs", func(t *testing.T) {
		mnt := testsrv.MountTmpfs(t, "8m")
		dir := filepath.Join(mnt, "repo")
		testFullDisk(t, dir, func(be backend.Backend) backend.Backend { return be }, func() {
			if err := syscall.Mount("tmpfs", mnt, "tmpfs", syscall.MS_REMOUNT, "size=64m"); err != nil {
				t.Fatalf("grow the tmpfs: %v", err)
			}
		})
	})
	t.Run("Injected", func(t *testing.T) {
		disk := &fullDisk{free: 8 << 20}
		testFullDisk(t, filepath.Join(t.TempDir(), "repo"), func(be backend.Backend) backend.Backend {
			disk.Backend = be
			return disk
		}, func() { disk.grow(56 << 20) })
	})
}

// testFullDisk runs the full-disk scenario on a local repository in dir;
// wrap sits between the local backend and the retry decorator, grow makes
// space.
func testFullDisk(t *testing.T, dir string, wrap func(backend.Backend) backend.Backend, grow func()) {
	ctx := context.Background()
	log := &retryLog{}
	lbe, err := local.Create(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	be := retry.New(wrap(lbe), fastRetry(log))
	r := repository.TestRepositoryWith(t, be, faultOptions)
	h := history{}
	h.backup(t, r, siteFiles(50, 1<<20, 500<<10))

	big := siteFiles(51, 12<<20, 200<<10)
	_, err = repository.SaveTestSnapshot(ctx, r, "faults", time.Now(), big)
	if !errors.Is(err, backend.ErrNoSpace) {
		t.Fatalf("backup larger than the disk: err = %v, want ErrNoSpace", err)
	}
	if !strings.Contains(err.Error(), "no space left on the backend") {
		t.Errorf("error %q does not say the backend is out of space", err)
	}
	t.Logf("full disk: %v", err)
	r.Close() // waits for the uploads still running
	if log.total() != 0 {
		t.Errorf("a full disk was retried: %s", log)
	}
	if tmp := backendtest.TempFiles(t, dir); len(tmp) != 0 {
		t.Errorf("temporary files left after a full disk: %v", tmp)
	}

	// As it is, still full: sound, and the earlier snapshot restores.
	r2 := repository.TestOpen(t, be, faultOptions)
	checkOK(t, r2)
	h.restoreAll(t, r2)

	// More space: the same backup completes, then another.
	grow()
	r3 := repository.TestOpen(t, be, faultOptions)
	if _, err := r3.RecoverOrphans(ctx); err != nil {
		t.Fatalf("recover the failed backup's packs: %v", err)
	}
	h.backup(t, r3, big)
	h.backup(t, r3, siteFiles(52, 300<<10, 100<<10))
	r4 := repository.TestOpen(t, be, faultOptions)
	checkOK(t, r4)
	h.restoreAll(t, r4)
	if tmp := backendtest.TempFiles(t, dir); len(tmp) != 0 {
		t.Errorf("temporary files left: %v", tmp)
	}
}
