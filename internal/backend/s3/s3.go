// Package s3 stores a repository in a bucket of an S3-compatible object
// store (AWS S3, MinIO, VersityGW, Ceph, Wasabi, …), through minio-go.
//
// Each file is an object named <prefix>/<path of the backend layout>. A
// Save is one PUT with a known size, which S3 applies atomically: an object
// is whole or absent, so no temporary names are needed. Load reads ranges
// with range GETs. minio-go's own retries are off: the retry decorator is
// the single retry policy.
package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/sitevault/sitevault/internal/backend"
)

var _ backend.Backend = (*Backend)(nil)

var errShort = errors.New("reader ended before the size given")

// Config says which bucket holds the repository and how to reach it.
type Config struct {
	Endpoint string // host[:port], "s3.amazonaws.com", "127.0.0.1:7070"
	Bucket   string
	Prefix   string // folder inside the bucket, "" for its root
	// UseSSL selects HTTPS; plain HTTP is for local servers only.
	UseSSL    bool
	AccessKey string
	SecretKey string
	Region    string // "" lets the client discover it
	// Transport replaces the HTTP transport (tests, proxies); nil for the default.
	Transport http.RoundTripper
	// PartSize, if not zero, sends files larger than it as multipart
	// uploads in parts of that size (at least 5 MiB); zero sends every file
	// in one PUT (up to 5 GiB), which a cut-off upload never leaves behind.
	// A multipart upload cut off leaves an incomplete upload on the server
	// until a lifecycle rule or an abort removes it. Tests use it.
	PartSize int64
}

// Backend is a repository in an S3 bucket.
type Backend struct {
	cfg    Config
	client *minio.Client
	core   minio.Core
}

// maxSinglePut is the largest object S3 accepts in one PUT.
const maxSinglePut = 5 << 30

// Open opens the repository in an existing bucket. A missing bucket is an
// error wrapping backend.ErrNotExist; refused credentials are permanent
// errors wrapping backend.ErrAccess.
func Open(ctx context.Context, cfg Config) (*Backend, error) {
	b, err := newBackend(cfg)
	if err != nil {
		return nil, err
	}
	ok, err := b.bucketExists(ctx)
	if err != nil {
		return nil, b.reachError(err)
	}
	if !ok {
		return nil, fmt.Errorf("open repository %s: bucket %q does not exist (create the repository first): %w", b.Location(), cfg.Bucket, backend.ErrNotExist)
	}
	return b, nil
}

// Create creates the bucket if it is missing and opens the repository.
// Buckets are created only here, never as a side effect of Open.
func Create(ctx context.Context, cfg Config) (*Backend, error) {
	b, err := newBackend(cfg)
	if err != nil {
		return nil, err
	}
	ok, err := b.bucketExists(ctx)
	if err != nil {
		return nil, b.reachError(err)
	}
	if !ok {
		err := b.client.MakeBucket(ctx, cfg.Bucket, minio.MakeBucketOptions{Region: cfg.Region})
		if err != nil && minio.ToErrorResponse(err).Code != "BucketAlreadyOwnedByYou" {
			return nil, mapError(fmt.Errorf("create bucket %q at %s: %w", cfg.Bucket, b.endpoint(), err), err)
		}
	}
	return b, nil
}

// bucketExists lists at most one object of the repository: unlike a HEAD
// request, a listing's answer has a body that tells a missing bucket from
// refused credentials (some servers answer 404 to an unknown access key).
func (b *Backend) bucketExists(ctx context.Context) (bool, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for obj := range b.client.ListObjects(ctx, b.cfg.Bucket, minio.ListObjectsOptions{Prefix: b.cfg.Prefix, MaxKeys: 1}) {
		if obj.Err != nil {
			if minio.ToErrorResponse(obj.Err).Code == "NoSuchBucket" {
				return false, nil
			}
			return false, obj.Err
		}
		break
	}
	return true, nil
}

func newBackend(cfg Config) (*Backend, error) {
	if cfg.Endpoint == "" || cfg.Bucket == "" {
		return nil, backend.Permanent(errors.New("s3: endpoint and bucket are required"))
	}
	if cfg.AccessKey == "" || cfg.SecretKey == "" {
		return nil, backend.Permanent(fmt.Errorf("s3 %s: no access key or secret key given", cfg.Endpoint))
	}
	cfg.Prefix = strings.Trim(cfg.Prefix, "/")
	client, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:      credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure:     cfg.UseSSL,
		Region:     cfg.Region,
		Transport:  cfg.Transport,
		MaxRetries: 1,
	})
	if err != nil {
		return nil, backend.Permanent(fmt.Errorf("s3 %s: %w", cfg.Endpoint, err))
	}
	return &Backend{cfg: cfg, client: client, core: minio.Core{Client: client}}, nil
}

func (b *Backend) endpoint() string {
	if b.cfg.UseSSL {
		return "https://" + b.cfg.Endpoint
	}
	return "http://" + b.cfg.Endpoint
}

// reachError explains a failed first request.
func (b *Backend) reachError(err error) error {
	mapped := mapError(fmt.Errorf("open repository %s: %w", b.Location(), err), err)
	if minio.ToErrorResponse(err).Code == "" && !backend.IsPermanent(mapped) {
		return fmt.Errorf("reach S3 endpoint %s: %w (check the endpoint address, http or https, and that the server runs)", b.endpoint(), err)
	}
	return mapped
}

// Location implements backend.Backend: s3://host/bucket/prefix, or
// s3+http://… for plain HTTP. Keys never appear.
func (b *Backend) Location() string {
	scheme := "s3+http://"
	if b.cfg.UseSSL {
		scheme = "s3://"
	}
	return scheme + path.Join(b.cfg.Endpoint, b.cfg.Bucket, b.cfg.Prefix)
}

func (b *Backend) key(h backend.Handle) string {
	return path.Join(b.cfg.Prefix, backend.Filename(h))
}

// mapError wraps err (whose cause is cause) with the sentinel matching the
// server's answer; client-side mistakes and refusals are permanent.
func mapError(err, cause error) error {
	resp := minio.ToErrorResponse(cause)
	switch resp.Code {
	case "PreconditionFailed", "ConditionalRequestConflict":
		return fmt.Errorf("%w: %w", err, backend.ErrExist)
	case "NoSuchKey", "NoSuchBucket", "NotFound":
		return fmt.Errorf("%w: %w", err, backend.ErrNotExist)
	case "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "AllAccessDisabled", "AccountProblem", "InvalidSecurity", "ExpiredToken", "InvalidToken",
		"XAdminUserNotFound": // VersityGW's answer to an unknown access key
		return backend.Permanent(fmt.Errorf("%w: %w (check the access key and secret key)", err, backend.ErrAccess))
	case "InvalidRange":
		return backend.Permanent(fmt.Errorf("%w: %w", err, io.ErrUnexpectedEOF))
	case "QuotaExceeded", "EntityTooLarge", "StorageFull", "XMinioStorageFull":
		return backend.Permanent(fmt.Errorf("%w: %w", err, backend.ErrNoSpace))
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return fmt.Errorf("%w: %w", err, backend.ErrNotExist)
	case resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusUnauthorized:
		return backend.Permanent(fmt.Errorf("%w: %w (check the access key and secret key)", err, backend.ErrAccess))
	case resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != http.StatusRequestTimeout && resp.StatusCode != http.StatusTooManyRequests:
		return backend.Permanent(err)
	}
	return err
}

// Save implements backend.Backend with one PUT.
func (b *Backend) Save(ctx context.Context, h backend.Handle, rd io.ReadSeeker, size int64) error {
	if err := h.Valid(); err != nil {
		return backend.Permanent(fmt.Errorf("save: %w", err))
	}
	if _, err := rd.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("save %v: rewind: %w", h, err)
	}
	// Stop sending as soon as ctx is done: an upload whose body reached
	// the server whole could still be stored after Save returned.
	src := &sourceReader{rd: io.LimitReader(backend.ContextReader(ctx, rd), size), size: size}
	opts := minio.PutObjectOptions{
		ContentType:      "application/octet-stream",
		DisableMultipart: size <= maxSinglePut,
	}
	if b.cfg.PartSize > 0 && size > b.cfg.PartSize {
		opts.DisableMultipart = false
		opts.PartSize = uint64(b.cfg.PartSize)
	}
	if h.Type == backend.ConfigFile {
		// A conditional PUT: the server refuses it (412) if a config is
		// stored, so of two inits one fails.
		opts.SetMatchETagExcept("*")
	}
	_, err := b.client.PutObject(ctx, b.cfg.Bucket, b.key(h), src, size, opts)
	switch {
	case src.err != nil:
		// The caller's reader failed: report its error, not the transport's.
		return fmt.Errorf("save %v: read: %w", h, src.err)
	case src.eof && src.n < size:
		// The caller's reader is shorter than it said: retrying cannot help.
		return backend.Permanent(fmt.Errorf("save %v: read %d bytes, want %d: %w", h, src.n, size, io.ErrUnexpectedEOF))
	case err != nil && ctx.Err() != nil:
		return fmt.Errorf("save %v: %w", h, ctx.Err())
	case err != nil:
		return mapError(fmt.Errorf("save %v: %w", h, err), err)
	}
	return nil
}

// sourceReader counts what the caller's reader yielded and keeps its
// error, and whether it ended. A reader that ends before size fails with
// errShort instead of io.EOF, so that the upload is aborted: minio-go's
// streaming upload takes io.EOF and io.ErrUnexpectedEOF for the last chunk,
// and servers then store the short object.
type sourceReader struct {
	rd   io.Reader
	size int64
	n    int64
	eof  bool
	err  error
}

func (r *sourceReader) Read(p []byte) (int, error) {
	n, err := r.rd.Read(p)
	r.n += int64(n)
	if err == io.EOF {
		r.eof = true
		if r.n < r.size {
			return n, errShort
		}
	}
	if err != nil && err != io.EOF && r.err == nil {
		r.err = err
	}
	return n, err
}

// Load implements backend.Backend with a range GET.
func (b *Backend) Load(ctx context.Context, h backend.Handle, length int, offset int64, fn func(io.Reader) error) error {
	if err := h.Valid(); err != nil {
		return backend.Permanent(fmt.Errorf("load: %w", err))
	}
	if length < 0 || offset < 0 {
		return backend.Permanent(fmt.Errorf("load %v: negative range %d+%d", h, offset, length))
	}
	opts := minio.GetObjectOptions{}
	switch {
	case length > 0:
		opts.SetRange(offset, offset+int64(length)-1)
	case offset > 0:
		opts.SetRange(offset, 0)
	}
	body, info, _, err := b.core.GetObject(ctx, b.cfg.Bucket, b.key(h), opts)
	if err != nil {
		return mapError(fmt.Errorf("load %v: %w", h, err), err)
	}
	defer body.Close()
	n := info.Size // the length of the answer, a range's when one was asked
	if length > 0 {
		if n < int64(length) {
			return backend.Permanent(fmt.Errorf("load %v: range %d+%d outside the file: %w", h, offset, length, io.ErrUnexpectedEOF))
		}
		n = int64(length)
	}
	return fn(&loadReader{rd: backend.ExactReader(body, n), h: h})
}

// loadReader names the file in read errors.
type loadReader struct {
	rd io.Reader
	h  backend.Handle
}

func (r *loadReader) Read(p []byte) (int, error) {
	n, err := r.rd.Read(p)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("load %v: %w", r.h, err)
	}
	return n, err
}

// Stat implements backend.Backend.
func (b *Backend) Stat(ctx context.Context, h backend.Handle) (backend.FileInfo, error) {
	if err := h.Valid(); err != nil {
		return backend.FileInfo{}, backend.Permanent(fmt.Errorf("stat: %w", err))
	}
	info, err := b.client.StatObject(ctx, b.cfg.Bucket, b.key(h), minio.StatObjectOptions{})
	if err != nil {
		return backend.FileInfo{}, mapError(fmt.Errorf("stat %v: %w", h, err), err)
	}
	return backend.FileInfo{Name: h.Name, Size: info.Size, ModTime: info.LastModified}, nil
}

// List implements backend.Backend.
func (b *Backend) List(ctx context.Context, t backend.FileType, fn func(backend.FileInfo) error) error {
	if t == backend.ConfigFile {
		return backend.Permanent(fmt.Errorf("list %v: config is a single file", t))
	}
	prefix := path.Join(b.cfg.Prefix, string(t)) + "/"
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops the listing goroutine when fn fails
	for obj := range b.client.ListObjects(ctx, b.cfg.Bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if obj.Err != nil {
			return mapError(fmt.Errorf("list %v: %w", t, obj.Err), obj.Err)
		}
		name := path.Base(obj.Key)
		if strings.HasSuffix(obj.Key, "/") || backend.IsTemp(name) {
			continue
		}
		// Packs live one level down (data/ab/abcd…); anything else is not ours.
		depth := 0
		if t == backend.PackFile {
			depth = 1
		}
		if strings.Count(strings.TrimPrefix(obj.Key, prefix), "/") != depth {
			continue
		}
		if err := fn(backend.FileInfo{Name: name, Size: obj.Size, ModTime: obj.LastModified}); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// Remove implements backend.Backend. S3 deletes missing objects without
// complaint, so Remove asks first to keep the ErrNotExist contract.
func (b *Backend) Remove(ctx context.Context, h backend.Handle) error {
	if _, err := b.Stat(ctx, h); err != nil {
		return fmt.Errorf("remove: %w", err)
	}
	if err := b.client.RemoveObject(ctx, b.cfg.Bucket, b.key(h), minio.RemoveObjectOptions{}); err != nil {
		return mapError(fmt.Errorf("remove %v: %w", h, err), err)
	}
	return nil
}

// Close implements backend.Backend.
func (b *Backend) Close() error { return nil }
