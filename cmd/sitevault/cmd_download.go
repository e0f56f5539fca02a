package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"

	"github.com/sitevault/sitevault/internal/archive"
	"github.com/sitevault/sitevault/internal/repository"
)

type downloadOptions struct {
	Site   string
	To     string // a restore point id (prefix), "latest" or a day YYYY-MM-DD
	Output string // .tar.gz, .tgz or .zip; "-" is stdout; "" a name made from the site and point
	Format string // tar.gz or zip: for -o - (else the name chooses)
	Force  bool   // replace an existing file
	JSON   bool
}

// downloadJSON is the stable JSON of `sitevault download --json`.
type downloadJSON struct {
	Site              string  `json:"site"`
	Point             string  `json:"point"`
	PointTime         string  `json:"point_time"`
	File              string  `json:"file"`
	Format            string  `json:"format"`
	Bytes             int64   `json:"bytes"`
	BytesUncompressed int64   `json:"bytes_uncompressed"`
	Files             int64   `json:"files"`
	Tables            int64   `json:"tables"`
	WordPressVersion  string  `json:"wordpress_version"`
	WordPressCore     string  `json:"wordpress_core"`
	Duration          float64 `json:"duration_seconds"`
}

func newDownloadCommand(g *globalOptions) *cobra.Command {
	var o downloadOptions
	cmd := &cobra.Command{
		Use:   "download SITE [--to POINT|latest|YYYY-MM-DD] [-o FILE|-] [--format tar.gz|zip] [--force]",
		Short: "Download a restore point as a .tar.gz or .zip: files/, sql/<table>.sql (loadable with mysql), manifest.json",
		Long: "Download a restore point of SITE (default --to latest) into FILE (.tar.gz, .tgz or .zip,\n" +
			"chosen by the name; default SITE-DATE-TIME-POINT.tar.gz in the current folder), or with -o -\n" +
			"to standard output (--format tar.gz or zip, default tar.gz) for piping. An existing FILE\n" +
			"is never replaced without --force.\n\n" +
			"The archive holds files/ (the site's files with their modes and times), sql/<table>.sql\n" +
			"(one self-contained file per table: `mysql DATABASE < sql/wp_posts.sql` loads it), sql/views.sql\n" +
			"and manifest.json (what the download is of, and the SHA-256 of every file in it).\n" +
			"latest means the newest backup point (manual, daily or realtime) and a day (YYYY-MM-DD,\n" +
			"local time) that day's newest backup point; a pre-restore point (the state a restore\n" +
			"replaced) or an imported archive is downloaded by its id only. The archive is\n" +
			"written to FILE.partial and renamed when complete, so FILE is never half-written.\n" +
			"FILE holds wp-config.php and the whole database: it is created readable by you only.\n" +
			"WordPress core is not in it (backups never take core files): the summary and\n" +
			"manifest.json say which WordPress version the site ran.",
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Site = args[0]
			return runDownload(cmd.Context(), o, g, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&o.To, "to", "latest", "the restore point: an id (or its first characters), latest (the newest backup point), or a day YYYY-MM-DD (its newest backup point)")
	cmd.Flags().StringVarP(&o.Output, "output", "o", "", "the `FILE` to write: NAME.tar.gz, NAME.tgz or NAME.zip; - writes to standard output (default SITE-DATE-TIME-POINT.tar.gz)")
	cmd.Flags().StringVar(&o.Format, "format", "", "tar.gz or zip: the format for -o - (with a file name, its ending chooses)")
	cmd.Flags().BoolVar(&o.Force, "force", false, "replace FILE if it exists")
	cmd.Flags().BoolVar(&o.JSON, "json", false, "print the result as JSON (see the README); not with -o -")
	return cmd
}

func runDownload(ctx context.Context, opts downloadOptions, g *globalOptions, stdout io.Writer) error {
	if opts.To == "" {
		opts.To = "latest"
	}
	toStdout := opts.Output == "-"
	if toStdout && opts.JSON {
		return userErrorf(errUsage, "-o - writes the archive to standard output: --json cannot share it")
	}
	var format archive.Format
	switch {
	case toStdout:
		switch opts.Format {
		case "", "tar.gz", "tgz":
			format = archive.TarGz
		case "zip":
			format = archive.Zip
		default:
			return userErrorf(errUsage, "--format %s: choose tar.gz or zip", opts.Format)
		}
	case opts.Format != "":
		return userErrorf(errUsage, "--format is for -o - (standard output); with a file name, its ending (.tar.gz, .tgz, .zip) chooses the format")
	case opts.Output != "":
		var ok bool
		if format, ok = archive.FormatFor(opts.Output); !ok {
			return userErrorf(errUsage, "-o %s: the name must end in .tar.gz, .tgz or .zip (it chooses the format)", opts.Output)
		}
	default:
		format = archive.TarGz
	}
	if c, err := g.remote(); err != nil || c != nil {
		if err != nil {
			return err
		}
		if toStdout || opts.Output == "" {
			return userErrorf(errUsage, "with --server, name the file: -o FILE.tar.gz or FILE.zip")
		}
		return runDownloadRemote(ctx, c, opts, g, stdout)
	}
	s, err := openRepository(ctx, g)
	if err != nil {
		return err
	}
	defer s.Close()
	sn, err := findPoint(ctx, g, s, opts.Site, opts.To)
	if err != nil {
		return err
	}
	core := archive.CoreNote(sn.Meta[archive.MetaWPVersion])
	if toStdout {
		// The archive is the output: no summary, no progress on stdout.
		bw := bufio.NewWriterSize(stdout, 1<<20)
		if err := archive.Write(ctx, s.repo, sn, bw, format, archive.Options{}); err != nil {
			return err
		}
		if err := bw.Flush(); err != nil {
			return fmt.Errorf("write to standard output: %w", err)
		}
		if !g.Quiet {
			fmt.Fprintf(g.errOut(), "Wrote restore point %s of site %q to standard output; WordPress core: %s\n", sn.ID.Short(), sn.Site, core)
		}
		return nil
	}
	if opts.Output == "" {
		opts.Output = fmt.Sprintf("%s-%s-%s.tar.gz", sn.Site, sn.Time.Local().Format("20060102-150405"), sn.ID.Short())
	}
	out, err := filepath.Abs(opts.Output)
	if err != nil {
		return fmt.Errorf("download to %s: %w", opts.Output, err)
	}
	if _, err := os.Lstat(out); err == nil && !opts.Force {
		return userErrorf(errUsage, "%s exists; pass --force to replace it, or choose another name with -o", out)
	}

	start := time.Now()
	progress := new(archive.Progress)
	var total int64
	if sn.Summary != nil {
		total = sn.Summary.BytesTotal
	}
	bar := startProgress(g.progressTTY() && !opts.JSON, g.errOut(), func(el time.Duration) string {
		done := progress.Bytes.Load()
		return fmt.Sprintf("%s  %d files  %d tables  %s/%s  %s%s", formatDuration(el), progress.Files.Load(),
			progress.Tables.Load(), humanize.IBytes(uint64(done)), humanize.IBytes(uint64(total)), rate(done, el), percentETA(done, total, el))
	})
	size, err := writeDownload(ctx, s, sn, out, format, progress, opts.Force)
	bar.Stop()
	if err != nil {
		return err
	}
	took := time.Since(start)
	if opts.JSON {
		return writeJSON(stdout, downloadJSON{Site: sn.Site, Point: sn.ID.String(), PointTime: sn.Time.Format(time.RFC3339), File: out,
			Format: map[archive.Format]string{archive.TarGz: "tar.gz", archive.Zip: "zip"}[format], Bytes: size,
			BytesUncompressed: progress.Bytes.Load(), Files: progress.Files.Load(), Tables: progress.Tables.Load(),
			WordPressVersion: sn.Meta[archive.MetaWPVersion], WordPressCore: core, Duration: took.Seconds()})
	}
	if !g.Quiet {
		fmt.Fprintf(stdout, "Downloaded restore point %s of site %q (%s) to %s\n", sn.ID.Short(), sn.Site,
			sn.Time.Local().Format(time.DateTime), out)
		fmt.Fprintf(stdout, "  %s, %s; %s (%s before compression) in %s\n", plural(int(progress.Files.Load()), "file"),
			plural(int(progress.Tables.Load()), "table"), humanize.IBytes(uint64(size)), humanize.IBytes(uint64(progress.Bytes.Load())), formatDuration(took))
		fmt.Fprintf(stdout, "  WordPress core: %s\n", core)
	}
	return nil
}

// writeDownload writes the archive to out.partial and renames it to out
// once complete; on any error or interruption the partial file is removed.
// Without force an existing out is never replaced, even one that appeared
// while the archive was written (a hard link, which fails if out exists).
func writeDownload(ctx context.Context, s *session, sn *repository.Snapshot, out string, format archive.Format, p *archive.Progress, force bool) (size int64, err error) {
	partial := out + ".partial"
	f, err := os.OpenFile(partial, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return 0, fmt.Errorf("download to %s: %w", out, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(partial)
		}
	}()
	bw := bufio.NewWriterSize(f, 1<<20)
	if err := archive.Write(ctx, s.repo, sn, bw, format, archive.Options{Progress: p}); err != nil {
		if errors.Is(err, repository.ErrDamaged) {
			return 0, userErrorf(err, "%v; run `sitevault check` to see what else is affected", err)
		}
		return 0, err
	}
	if err := bw.Flush(); err != nil {
		return 0, fmt.Errorf("write %s: %w", partial, err)
	}
	if err := f.Sync(); err != nil {
		return 0, fmt.Errorf("write %s: %w", partial, err)
	}
	fi, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("write %s: %w", partial, err)
	}
	if err := f.Close(); err != nil {
		return 0, fmt.Errorf("write %s: %w", partial, err)
	}
	if !force {
		lerr := os.Link(partial, out)
		switch {
		case lerr == nil:
			os.Remove(partial)
			return fi.Size(), nil
		case errors.Is(lerr, fs.ErrExist):
			return 0, userErrorf(errUsage, "%s appeared while the download was written; it was left alone (pass --force to replace it)", out)
		}
		// A file system without hard links: check, then rename.
		if _, serr := os.Lstat(out); serr == nil {
			return 0, userErrorf(errUsage, "%s appeared while the download was written; it was left alone (pass --force to replace it)", out)
		}
	}
	if err := os.Rename(partial, out); err != nil {
		return 0, fmt.Errorf("download to %s: %w", out, err)
	}
	return fi.Size(), nil
}
