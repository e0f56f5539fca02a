package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
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
	Output string // .tar.gz, .tgz or .zip
}

func newDownloadCommand(g *globalOptions) *cobra.Command {
	var o downloadOptions
	cmd := &cobra.Command{
		Use:   "download SITE --to POINT|latest|YYYY-MM-DD -o FILE",
		Short: "Download a restore point as a .tar.gz or .zip: files/, sql/<table>.sql (loadable with mysql), manifest.json",
		Long: "Download a restore point of SITE into FILE (.tar.gz, .tgz or .zip, chosen by the name).\n\n" +
			"The archive holds files/ (the site's files with their modes and times), sql/<table>.sql\n" +
			"(one self-contained file per table: `mysql DATABASE < sql/wp_posts.sql` loads it), sql/views.sql\n" +
			"and manifest.json (what the download is of, and the SHA-256 of every file in it).\n" +
			"latest means the newest backup point (manual, daily or realtime) and a day (YYYY-MM-DD,\n" +
			"local time) that day's newest backup point; a pre-restore point (the state a restore\n" +
			"replaced) or an imported archive is downloaded by its id only. The archive is\n" +
			"written to FILE.partial and renamed when complete, so FILE is never half-written.\n" +
			"FILE holds wp-config.php and the whole database: it is created readable by you only.",
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Site = args[0]
			return runDownload(cmd.Context(), o, g, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&o.To, "to", "", "the restore point: an id (or its first characters), latest (the newest backup point), or a day YYYY-MM-DD (its newest backup point) (required)")
	cmd.Flags().StringVarP(&o.Output, "output", "o", "", "the file to write: NAME.tar.gz, NAME.tgz or NAME.zip (required)")
	return cmd
}

func runDownload(ctx context.Context, opts downloadOptions, g *globalOptions, stdout io.Writer) error {
	if opts.To == "" {
		return userErrorf(errUsage, "download needs --to POINT, --to latest or --to YYYY-MM-DD (see --help)")
	}
	if opts.Output == "" {
		return userErrorf(errUsage, "download needs -o FILE ending in .tar.gz, .tgz or .zip (see --help)")
	}
	format, ok := archive.FormatFor(opts.Output)
	if !ok {
		return userErrorf(errUsage, "-o %s: the name must end in .tar.gz, .tgz or .zip (it chooses the format)", opts.Output)
	}
	if c, err := g.remote(); err != nil || c != nil {
		if err != nil {
			return err
		}
		return runDownloadRemote(ctx, c, opts, g, stdout)
	}
	out, err := filepath.Abs(opts.Output)
	if err != nil {
		return fmt.Errorf("download to %s: %w", opts.Output, err)
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

	start := time.Now()
	progress := new(archive.Progress)
	var total int64
	if sn.Summary != nil {
		total = sn.Summary.BytesTotal
	}
	bar := startProgress(g.progressTTY(), g.errOut(), func(el time.Duration) string {
		done := progress.Bytes.Load()
		return fmt.Sprintf("%s  %d files  %d tables  %s/%s  %s", formatDuration(el), progress.Files.Load(),
			progress.Tables.Load(), humanize.IBytes(uint64(done)), humanize.IBytes(uint64(total)), rate(done, el))
	})
	size, err := writeDownload(ctx, s, sn, out, format, progress)
	bar.Stop()
	if err != nil {
		return err
	}
	took := time.Since(start)
	if !g.Quiet {
		fmt.Fprintf(stdout, "Downloaded restore point %s of site %q (%s) to %s\n", sn.ID.Short(), sn.Site,
			sn.Time.Local().Format(time.DateTime), out)
		fmt.Fprintf(stdout, "  %d files, %d tables; %s (%s before compression) in %s\n", progress.Files.Load(),
			progress.Tables.Load(), humanize.IBytes(uint64(size)), humanize.IBytes(uint64(progress.Bytes.Load())), formatDuration(took))
	}
	return nil
}

// writeDownload writes the archive to out.partial and renames it to out
// once complete; on any error or interruption the partial file is removed.
func writeDownload(ctx context.Context, s *session, sn *repository.Snapshot, out string, format archive.Format, p *archive.Progress) (size int64, err error) {
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
	if err := os.Rename(partial, out); err != nil {
		return 0, fmt.Errorf("download to %s: %w", out, err)
	}
	return fi.Size(), nil
}
