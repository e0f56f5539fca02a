package service

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/sitevault/sitevault/internal/archive"
	"github.com/sitevault/sitevault/internal/archiver"
	"github.com/sitevault/sitevault/internal/backup"
	"github.com/sitevault/sitevault/internal/catalog"
	"github.com/sitevault/sitevault/internal/connection"
	"github.com/sitevault/sitevault/internal/jobs"
	"github.com/sitevault/sitevault/internal/point"
	"github.com/sitevault/sitevault/internal/repository"
	"github.com/sitevault/sitevault/internal/restore"
	"github.com/sitevault/sitevault/internal/sitevault"
)

// The handlers of the job kinds: each calls the same library flow as the
// CLI's command of the same name.

// maxListed bounds the skipped paths and tables a job's result lists.
const maxListed = 200

// BackupParams are a backup job's parameters.
type BackupParams struct {
	// Trigger is stored with the point ("manual", "daily", "realtime").
	Trigger string `json:"trigger,omitempty"`
}

// BackupResult is what a backup job did.
type BackupResult struct {
	Point          string                `json:"point"`
	Parent         string                `json:"parent,omitempty"`
	Time           time.Time             `json:"time"`
	FilesNew       int                   `json:"files_new"`
	FilesChanged   int                   `json:"files_changed"`
	FilesUnchanged int                   `json:"files_unchanged"`
	Bytes          int64                 `json:"bytes"`
	BytesRead      int64                 `json:"bytes_read"`
	Tables         int                   `json:"tables"`
	TablesChanged  int                   `json:"tables_changed"`
	Partial        bool                  `json:"partial"`
	Warnings       []backup.Warning      `json:"warnings,omitempty"`
	Skipped        []archiver.Skip       `json:"skipped,omitempty"`        // at most 200
	SkippedTables  []backup.SkippedTable `json:"skipped_tables,omitempty"` // at most 200
	// SkippedTablesTotal and SkippedTotal count every table and path left out.
	SkippedTablesTotal int      `json:"skipped_tables_total"`
	SkippedTotal       int      `json:"skipped_total"`
	Forgotten          []string `json:"forgotten,omitempty"`
	Seconds            float64  `json:"seconds"`
	// DBHints says how the database changes of the connector's events
	// served the database backup (nil when there were none).
	DBHints *DBHints `json:"db_hints,omitempty"`
}

// DBHints: how many table-and-column hints the backup got, how many
// changed segments they explained (only the hinted rows were read) and
// how many they did not (read row by row, as without hints), and the
// first notes on hints ignored.
type DBHints struct {
	Hints       int      `json:"hints"`
	Explained   int      `json:"segments_explained"`
	Unexplained int      `json:"segments_unexplained"`
	Ignored     []string `json:"ignored,omitempty"`
}

// RestoreParams are a restore job's parameters.
type RestoreParams struct {
	// Point is a point id (a unique prefix), "latest" or a day.
	Point  string   `json:"point"`
	Items  []string `json:"items,omitempty"`
	Paths  []string `json:"paths,omitempty"`
	Tables []string `json:"tables,omitempty"`
	// Delete makes the restore exact (restore.Options.Delete).
	Delete bool `json:"delete,omitempty"`
}

// RestoreResult is what a restore or undo job did.
type RestoreResult struct {
	Point        string   `json:"point"`
	PreRestore   string   `json:"pre_restore,omitempty"`
	Items        []string `json:"items"`
	FilesWritten int      `json:"files_written"`
	// FilesUnchanged counts files already right on disk, left in place.
	FilesUnchanged int      `json:"files_unchanged"`
	FilesRemoved   []string `json:"files_removed,omitempty"`
	// FilesDeleted (Delete) and FilesLeft (without it) are the files the
	// point does not hold, removed or left in place.
	FilesDeleted []string `json:"files_deleted,omitempty"`
	FilesLeft    []string `json:"files_not_in_point,omitempty"`
	Tables       int      `json:"tables"`
	Failed       []string `json:"failed,omitempty"`
	Warnings     []string `json:"warnings,omitempty"`
	Complete     bool     `json:"complete"`
	Seconds      float64  `json:"seconds"`
}

// DownloadParams are a download job's parameters.
type DownloadParams struct {
	Point  string `json:"point"`
	Format string `json:"format"` // "tar.gz" (default) or "zip"
}

// DownloadResult is a prepared download.
type DownloadResult struct {
	Point  string    `json:"point"`
	Site   string    `json:"site"`
	Time   time.Time `json:"time"`
	Name   string    `json:"name"` // the file name offered to the browser
	Format string    `json:"format"`
	Size   int64     `json:"size"`
	Files  int64     `json:"files"`
	Tables int64     `json:"tables"`
}

// CheckParams are a check job's parameters.
type CheckParams struct {
	ReadData bool `json:"read_data"`
}

// jobError is a job's error with a stable code.
type jobError struct {
	code string
	err  error
}

func (e *jobError) Error() string { return e.err.Error() }
func (e *jobError) Unwrap() error { return e.err }
func (e *jobError) Code() string  { return e.code }

func coded(code string, err error) error {
	if err == nil {
		return nil
	}
	return &jobError{code: code, err: err}
}

func decodeParams(j *sitevault.Job, v any) error {
	if len(j.Params) == 0 {
		return nil
	}
	if err := json.Unmarshal(j.Params, v); err != nil {
		return coded("bad_params", fmt.Errorf("job %d: parameters: %w", j.ID, err))
	}
	return nil
}

// deps returns the backup/restore dependencies for the service: secrets
// come from the catalog only, never from the service's environment.
func (s *Service) deps() backup.Deps {
	return backup.Deps{
		Repo: s.repo, Catalog: s.cat, Logger: s.log,
		// A file lock against CLI runs on this machine, the catalog's
		// against every worker and CLI sharing the catalog.
		Locker: catalog.Both{backup.FileLocker{Dir: s.lockDir()}, &catalog.Locker{Catalog: s.cat}},
		Connect: func(ctx context.Context, site sitevault.Site) (connection.Connection, error) {
			return connection.Open(ctx, site, connection.Options{Logger: s.log, Env: noEnv})
		},
	}
}

// noEnv is the service's environment for connections: none, so that an
// SITEVAULT_SSH_PASSWORD set for the CLI never overrides a site's stored
// secret.
func noEnv(string) (string, bool) { return "", false }

func (s *Service) lockDir() string { return filepath.Join(s.cfg.Home, "locks") }

func (s *Service) runBackup(ctx context.Context, j *sitevault.Job, rep *jobs.Reporter) (any, error) {
	var p BackupParams
	if err := decodeParams(j, &p); err != nil {
		return nil, err
	}
	site, err := s.cat.Site(ctx, j.Site)
	if err != nil {
		return nil, coded("site_not_found", err)
	}
	prog := new(backup.Progress)
	var shown float64
	rep.Poll(func() sitevault.Progress {
		// The share done never goes back: a total that grows (folders
		// found beyond the previous point's size) slows it down instead.
		pr := backupProgress(prog)
		pr.Percent = max(pr.Percent, shown)
		shown = pr.Percent
		return pr
	})
	trigger := p.Trigger
	if trigger == "" {
		trigger = j.Trigger
	}
	var excludes []string
	if s.cfg.Excludes != nil {
		excludes = s.cfg.Excludes(site.Name)
	}
	hints := s.changeHints(ctx, site.Name)
	res, err := backup.Run(ctx, s.deps(), site, backup.Options{Trigger: trigger, Progress: prog, Wait: s.cfg.LockWait, Excludes: excludes, Hints: hints})
	if err != nil {
		return nil, classify(err)
	}
	var dbHints *DBHints
	if d := res.Database; d != nil && len(hints) > 0 {
		dbHints = &DBHints{Hints: len(hints), Ignored: d.HintsIgnored}
		for _, t := range d.Tables {
			dbHints.Explained += t.Hinted
			dbHints.Unexplained += t.HintsMissed
		}
		s.log.Info("database changes hinted", "site", site.Name, "hints", len(hints), "segments_explained", dbHints.Explained,
			"segments_unexplained", dbHints.Unexplained, "ignored", d.HintsIgnored)
	}
	// A site in a shared database skips every other site's tables: the
	// job keeps the first ones and the count, not thousands of lines.
	out := BackupResult{Point: res.Snapshot.ID.String(), Time: res.Snapshot.Time, Partial: res.Partial,
		Warnings: res.Details, SkippedTables: res.SkippedTables[:min(len(res.SkippedTables), maxListed)],
		SkippedTablesTotal: len(res.SkippedTables), Seconds: res.Duration.Seconds(), DBHints: dbHints}
	if res.Parent != nil {
		out.Parent = res.Parent.ID.String()
	}
	if f := res.Files; f != nil {
		out.FilesNew, out.FilesChanged, out.FilesUnchanged = f.FilesNew, f.FilesChanged, f.FilesUnchanged
		out.Bytes, out.BytesRead = f.BytesTotal, f.BytesRead
		out.Skipped, out.SkippedTotal = f.Skipped[:min(len(f.Skipped), maxListed)], len(f.Skipped)
	}
	if d := res.Database; d != nil {
		out.Tables = len(d.Tables)
		for _, t := range d.Tables {
			out.Bytes += t.Bytes
			if t.Written > 0 {
				out.TablesChanged++
			}
		}
	}
	// Retention after each backup, by the site's policy.
	r := site.RetentionOrDefault()
	_, removed, ferr := point.Forget(ctx, s.repo, site.Name, repository.Policy{KeepLast: r.KeepLast, KeepDaily: r.KeepDaily,
		KeepWeekly: r.KeepWeekly, KeepMonthly: r.KeepMonthly}, time.Now())
	for _, sn := range removed {
		out.Forgotten = append(out.Forgotten, sn.ID.String())
	}
	if ferr != nil {
		s.log.Warn("retention after backup", "site", site.Name, "err", ferr)
	}
	return out, nil
}

// backupProgress reads a running backup's counters: files take the share
// up to 80 % (by bytes, once the total is known: the previous point's size,
// or a first backup's scan), the database up to 95 %.
func backupProgress(p *backup.Progress) sitevault.Progress {
	phases := []string{"starting", "files", "database", "saving", "done"}
	ph := int(p.Phase.Load())
	out := sitevault.Progress{Files: p.Files.FilesDone.Load(), Tables: p.Tables.Load(), Bytes: p.Files.BytesDone.Load()}
	if ph >= 0 && ph < len(phases) {
		out.Phase = phases[ph]
	}
	if cur := p.Files.Current.Load(); cur != nil && ph == int(backup.PhaseFiles) {
		out.Current = *cur
	}
	total := p.Total()
	out.Total = total
	switch {
	case ph >= int(backup.PhaseDone):
		out.Percent = 100
	case ph == int(backup.PhaseSaving):
		out.Percent = 98
	case ph == int(backup.PhaseDatabase):
		out.Percent = 80 + min(15, float64(out.Tables)/2)
	case total > 0:
		out.Percent = min(80, 80*float64(out.Bytes)/float64(total))
	}
	return out
}

// findPoint resolves a reference (an id, latest, or a day in the site's
// time zone, as the points API lists them), reloading the index when the
// point was written by another process since this one loaded it.
func (s *Service) findPoint(ctx context.Context, site, ref string) (*repository.Snapshot, error) {
	if ref == "" {
		ref = point.Latest
	}
	// A day names the site's calendar day, in its schedule's time zone.
	loc := time.UTC
	if st, err := s.cat.Site(ctx, site); err == nil {
		if l, err := st.Schedule.Location(); err == nil {
			loc = l
		}
	}
	sn, err := point.Find(ctx, s.repo, site, ref, loc)
	switch {
	case errors.Is(err, point.ErrNoPoint), errors.Is(err, point.ErrBadRef), errors.Is(err, point.ErrAmbiguous), errors.Is(err, point.ErrOtherSite):
		return nil, coded("point_not_found", err)
	case err != nil:
		return nil, classify(err)
	}
	if !s.repo.HasBlob(repository.TreeBlob, sn.Tree) {
		if err := s.repo.LoadIndex(ctx); err != nil {
			return nil, coded("repository", err)
		}
	}
	return sn, nil
}

func (s *Service) runRestore(ctx context.Context, j *sitevault.Job, rep *jobs.Reporter) (any, error) {
	var p RestoreParams
	if err := decodeParams(j, &p); err != nil {
		return nil, err
	}
	site, err := s.cat.Site(ctx, j.Site)
	if err != nil {
		return nil, coded("site_not_found", err)
	}
	sn, err := s.findPoint(ctx, site.Name, p.Point)
	if err != nil {
		return nil, err
	}
	s.alertRestore(ctx, j, site, sn, "started", nil, nil)
	s.ownEvent(ctx, site.Name, "sitevault__restore_started", fmt.Sprintf("Restore to point %s started", sn.ID.Short()),
		map[string]any{"job": j.ID, "items": p.Items})
	prog := new(restore.Progress)
	rep.Poll(func() sitevault.Progress { return restoreProgress(prog) })
	res, err := restore.Run(ctx, s.deps(), site, sn, restore.Options{Items: p.Items, Paths: p.Paths, Tables: p.Tables, Delete: p.Delete, Progress: prog, Wait: s.cfg.LockWait})
	if err != nil {
		err = classify(err)
		s.alertRestore(ctx, j, site, sn, "failed", nil, err)
		return nil, err
	}
	out := restoreResult(res)
	s.alertRestore(ctx, j, site, sn, "finished", &out, nil)
	if !out.Complete {
		return out, coded("restore_incomplete", fmt.Errorf("the restore of %s finished, but not everything could be restored: %d tables failed; see the job's result, then restore again or undo", sn.ID.Short(), len(out.Failed)))
	}
	return out, nil
}

func (s *Service) runUndo(ctx context.Context, j *sitevault.Job, rep *jobs.Reporter) (any, error) {
	site, err := s.cat.Site(ctx, j.Site)
	if err != nil {
		return nil, coded("site_not_found", err)
	}
	if err := s.repo.LoadIndex(ctx); err != nil {
		return nil, coded("repository", err)
	}
	prog := new(restore.Progress)
	rep.Poll(func() sitevault.Progress { return restoreProgress(prog) })
	res, err := restore.Undo(ctx, s.deps(), site, restore.Options{Progress: prog, Wait: s.cfg.LockWait})
	if err != nil {
		return nil, classify(err)
	}
	out := restoreResult(res)
	if !out.Complete {
		return out, coded("restore_incomplete", errors.New("the undo finished, but not everything could be restored; see the job's result"))
	}
	return out, nil
}

func restoreResult(res *restore.Result) RestoreResult {
	out := RestoreResult{Point: res.Point.ID.String(), Items: res.Items, FilesRemoved: res.Removed, FilesDeleted: res.Deleted, FilesLeft: res.Left,
		Warnings: res.Warnings, Complete: res.OK(), Seconds: res.Duration.Seconds()}
	if res.PreRestore != nil && res.PreRestore.Snapshot != nil {
		out.PreRestore = res.PreRestore.Snapshot.ID.String()
	}
	if f := res.Files; f != nil {
		out.FilesWritten, out.FilesUnchanged = f.FilesWritten, f.FilesUnchanged
	}
	if d := res.Database; d != nil {
		out.Tables = len(d.Tables)
		for _, f := range d.Failed {
			out.Failed = append(out.Failed, f.Table)
		}
	}
	return out
}

// restoreProgress reads a running restore's counters: the files take the
// share from 40 to 95 % when their total is known (a whole-site restore).
func restoreProgress(p *restore.Progress) sitevault.Progress {
	out := sitevault.Progress{Files: p.Files.FilesDone.Load(), Bytes: p.Files.BytesDone.Load()}
	switch p.Phase.Load() {
	case restore.PhasePreRestore:
		out.Phase, out.Percent = "pre-restore", 5
	case restore.PhaseDatabase:
		out.Phase, out.Percent = "database", 15
	case restore.PhaseFiles:
		out.Phase, out.Percent = "files", 40
		if cur := p.Files.Current.Load(); cur != nil {
			out.Current = *cur
		}
		if done, known := p.FilesShare(); known > 0 {
			out.Bytes, out.Total = done, known
			out.Percent = 40 + 55*min(1, float64(done)/float64(known))
		}
	case restore.PhaseDone:
		out.Phase, out.Percent = "done", 100
	}
	return out
}

func (s *Service) downloadDir() string { return filepath.Join(s.cfg.Home, "downloads") }

func (s *Service) downloadPath(id int64, format string) string {
	return filepath.Join(s.downloadDir(), strconv.FormatInt(id, 10)+"."+format)
}

func (s *Service) runDownload(ctx context.Context, j *sitevault.Job, rep *jobs.Reporter) (any, error) {
	var p DownloadParams
	if err := decodeParams(j, &p); err != nil {
		return nil, err
	}
	format, ext, err := downloadFormat(p.Format)
	if err != nil {
		return nil, coded("bad_params", err)
	}
	sn, err := s.findPoint(ctx, j.Site, p.Point)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(s.downloadDir(), 0o700); err != nil {
		return nil, err
	}
	prog := new(archive.Progress)
	var total int64
	if sn.Summary != nil {
		total = sn.Summary.BytesTotal
	}
	rep.Poll(func() sitevault.Progress {
		b := prog.Bytes.Load()
		pr := sitevault.Progress{Phase: "writing", Bytes: b, Total: total, Files: prog.Files.Load(), Tables: prog.Tables.Load()}
		if total > 0 {
			pr.Percent = min(99, 100*float64(b)/float64(total))
		}
		return pr
	})
	out := s.downloadPath(j.ID, ext)
	size, err := writeFileAtomic(out, func(w *bufio.Writer) error {
		return archive.Write(ctx, s.repo, sn, w, format, archive.Options{Progress: prog})
	})
	if err != nil {
		return nil, classify(err)
	}
	res := DownloadResult{Point: sn.ID.String(), Site: sn.Site, Time: sn.Time, Format: ext, Size: size,
		Name:  fmt.Sprintf("%s-%s.%s", sn.Site, sn.Time.UTC().Format("20060102-150405"), ext),
		Files: prog.Files.Load(), Tables: prog.Tables.Load()}
	s.alertDownload(ctx, j, res)
	return res, nil
}

func downloadFormat(f string) (archive.Format, string, error) {
	switch f {
	case "", "tar.gz", "tgz":
		return archive.TarGz, "tar.gz", nil
	case "zip":
		return archive.Zip, "zip", nil
	}
	return 0, "", fmt.Errorf("download format %q: use tar.gz or zip", f)
}

// writeFileAtomic writes path through a temporary file renamed into place
// once complete; on any error nothing is left behind.
func writeFileAtomic(path string, write func(*bufio.Writer) error) (size int64, err error) {
	partial := path + ".partial"
	f, err := os.OpenFile(partial, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return 0, err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(partial)
		}
	}()
	bw := bufio.NewWriterSize(f, 1<<20)
	if err := write(bw); err != nil {
		return 0, err
	}
	if err := bw.Flush(); err != nil {
		return 0, err
	}
	if err := f.Sync(); err != nil {
		return 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	if err := f.Close(); err != nil {
		return 0, err
	}
	return fi.Size(), os.Rename(partial, path)
}

func (s *Service) runCheck(ctx context.Context, j *sitevault.Job, rep *jobs.Reporter) (any, error) {
	var p CheckParams
	if err := decodeParams(j, &p); err != nil {
		return nil, err
	}
	rep.Set(sitevault.Progress{Phase: "checking"})
	res, err := s.repo.Check(ctx, repository.CheckOptions{ReadData: p.ReadData})
	if err != nil {
		return nil, classify(err)
	}
	out := CheckResult{Snapshots: res.Snapshots, Packs: res.Packs, Blobs: res.Blobs, BytesRead: res.BytesRead, OrphanPacks: res.OrphanPacks}
	for _, p := range res.Problems {
		out.Problems = append(out.Problems, p.String())
	}
	if !res.OK() {
		return out, coded("repository_damaged", fmt.Errorf("check found %d problems (the job's result lists them); run `sitevault check` for the details and `sitevault repair index` if the index is affected", len(res.Problems)))
	}
	return out, nil
}

// CheckResult is what a check job found.
type CheckResult struct {
	Problems    []string `json:"problems,omitempty"`
	Snapshots   int      `json:"snapshots"`
	Packs       int      `json:"packs"`
	Blobs       int      `json:"blobs"`
	OrphanPacks int      `json:"orphan_packs"`
	BytesRead   int64    `json:"bytes_read"`
}

func (s *Service) runPrune(ctx context.Context, j *sitevault.Job, rep *jobs.Reporter) (any, error) {
	rep.Set(sitevault.Progress{Phase: "pruning"})
	res, err := s.repo.Prune(ctx, repository.PruneOptions{})
	if err != nil {
		return nil, classify(err)
	}
	return map[string]int{"blobs_used": res.BlobsUsed, "blobs_removed": res.BlobsRemoved, "packs_deleted": res.PacksDeleted,
		"packs_repacked": res.PacksRepacked, "missing_packs": res.MissingPacks}, nil
}

// classify gives errors of the flows a stable code.
func classify(err error) error {
	var c jobs.Coded
	switch {
	case err == nil:
		return nil
	case errors.As(err, &c):
		return err
	case errors.Is(err, backup.ErrBusy):
		return coded("busy", err)
	case errors.Is(err, context.Canceled):
		return err
	case repository.IsDamage(err):
		return coded("repository_damaged", err)
	}
	return coded(errorCode(err), err)
}
