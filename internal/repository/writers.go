package repository

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/sitevault/sitevault/internal/backend"
)

// writerPrefix names the marker a writer keeps in locks/ from before its
// first pack upload until every pack it uploaded is named by an index file
// (Close removes it then). A marker that stays means a writer died with
// packs no index names, or is still running: only then does
// RecoverOrphans list data/ to find and index such packs. Without markers
// every backup would list all of data/ (slow and costly on S3 at millions
// of blobs) to find orphans that almost never exist.
//
// Orphans are never lost when a marker is missing (a repository written
// before markers existed, a marker removed by another writer's recovery
// while its writer ran on and then died): prune indexes every orphan pack
// it finds (its step 0), since it lists data/ anyway.
const writerPrefix = "writer-"

type writerInfo struct {
	Host    string `json:"host"`
	PID     int    `json:"pid"`
	Started string `json:"started"`
}

// markWriter writes this process's writer marker once, before its first
// pack upload.
func (r *Repository) markWriter(ctx context.Context) error {
	r.writerMu.Lock()
	defer r.writerMu.Unlock()
	if r.writer != nil {
		return nil
	}
	host, _ := os.Hostname()
	plain, err := json.Marshal(writerInfo{Host: host, PID: os.Getpid(), Started: r.now().UTC().Format("2006-01-02T15:04:05Z")})
	if err != nil {
		return err
	}
	var rnd [8]byte
	rand.Read(rnd[:])
	h := backend.Handle{Type: backend.LockFile, Name: writerPrefix + hex.EncodeToString(rnd[:])}
	b := r.crypt.sealFile(kindLock, plain)
	if err := r.be.Save(ctx, h, bytes.NewReader(b), int64(len(b))); err != nil {
		return fmt.Errorf("write the writer marker %v: %w", h, err)
	}
	r.writer = &h
	return nil
}

// unmarkWriter removes the marker when every pack this process uploaded
// is indexed (nothing pending, no failed save); otherwise it stays, so the
// next backup looks for the orphans.
func (r *Repository) unmarkWriter(ctx context.Context) error {
	r.writerMu.Lock()
	defer r.writerMu.Unlock()
	if r.writer == nil {
		return nil
	}
	r.mu.Lock()
	clean := len(r.pending) == 0 && r.saveErr == nil
	r.mu.Unlock()
	if !clean {
		return nil
	}
	if err := r.be.Remove(ctx, *r.writer); err != nil && !errors.Is(err, backend.ErrNotExist) {
		return fmt.Errorf("remove the writer marker %v: %w", *r.writer, err)
	}
	r.writer = nil
	return nil
}

// otherWriters lists the writer markers of other processes.
func (r *Repository) otherWriters(ctx context.Context) ([]backend.Handle, error) {
	r.writerMu.Lock()
	own := r.writer
	r.writerMu.Unlock()
	var out []backend.Handle
	err := r.be.List(ctx, backend.LockFile, func(fi backend.FileInfo) error {
		if !strings.HasPrefix(fi.Name, writerPrefix) || (own != nil && fi.Name == own.Name) {
			return nil
		}
		out = append(out, backend.Handle{Type: backend.LockFile, Name: fi.Name})
		return nil
	})
	return out, err
}
