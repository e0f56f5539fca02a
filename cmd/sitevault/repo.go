package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/sitevault/sitevault/internal/config"
	"github.com/sitevault/sitevault/internal/memlimit"
	"github.com/sitevault/sitevault/internal/repository"
)

// session is an opened repository and how it was found.
type session struct {
	cfg  *config.Config
	repo *repository.Repository
	// where names the repository in messages (password stripped).
	where string
}

// Close releases the repository and its backend.
func (s *session) Close() error {
	err := s.repo.Close()
	if cerr := s.repo.Backend().Close(); err == nil {
		err = cerr
	}
	return err
}

// openRepository resolves the configuration, reads the password and opens
// the repository. Errors say what to do and wrap the sentinels exit codes
// are chosen by.
func openRepository(ctx context.Context, g *globalOptions) (*session, error) {
	return openRepositoryWith(ctx, g, nil)
}

// openRepositoryWith is openRepository with the options edited by tune
// (nil: the defaults).
func openRepositoryWith(ctx context.Context, g *globalOptions, tune func(*repository.Options)) (*session, error) {
	cfg, err := g.config()
	if err != nil {
		return nil, err
	}
	be, err := openBackend(ctx, g, cfg, false)
	if err != nil {
		return nil, err
	}
	where := be.Location()
	password, source, err := cfg.Password(g.prompt())
	if err != nil {
		be.Close()
		return nil, err
	}
	opts := g.repoOptions()
	if tune != nil {
		tune(&opts)
	}
	repo, err := repository.Open(ctx, be, password, opts)
	if err != nil {
		be.Close()
		return nil, openError(err, cfg, where, source)
	}
	g.logger().Debug("repository opened", "location", where, "id", repo.ID(), "password_from", source)
	if !opts.NoIndex { // the index is not loaded yet: its size is unknown
		memlimit.ForIndex(repo.IndexedBlobs())
	}
	return &session{cfg: cfg, repo: repo, where: where}, nil
}

func (g *globalOptions) repoOptions() repository.Options {
	// Packs are assembled in temporary files, out of the heap: the soft
	// memory limit (memlimit) then leaves the GC little to chase.
	return repository.Options{Logger: g.logger(), Now: g.now, SpillDir: os.TempDir()}
}

// openError turns repository.Open's failures into messages that say what to do.
func openError(err error, cfg *config.Config, where, source string) error {
	switch {
	case errors.Is(err, repository.ErrWrongPassword):
		return userErrorf(err, "no key of repository %s opens with the password from %s; give the right one in %s or --password-file (for the embedded repository, remove them to use its key file %s)",
			where, source, config.EnvPassword, cfg.KeyFile())
	case errors.Is(err, repository.ErrNotRepository):
		return notRepositoryError(err, cfg, where)
	case errors.Is(err, repository.ErrNewerFormat):
		return fmt.Errorf("open repository %s: %w", where, err)
	case errors.Is(err, repository.ErrIndexDamaged):
		return userErrorf(err, "open repository %s: %v; run `sitevault repair index` to rebuild the index from the packs (no data is lost), then `sitevault check`", where, err)
	case errors.Is(err, repository.ErrDamaged):
		return userErrorf(err, "open repository %s: its config or key files are damaged (%v); restore them from a copy of the repository, or run `sitevault check` to see what else is affected", where, err)
	}
	return fmt.Errorf("open repository %s: %w", where, err)
}

func notRepositoryError(err error, cfg *config.Config, where string) error {
	if cfg.Embedded {
		return userErrorf(repository.ErrNotRepository,
			"there is no repository at %s yet; create it with `sitevault init`, or point --repo / %s at an existing one",
			where, config.EnvRepository)
	}
	return userErrorf(repository.ErrNotRepository,
		"%s is not a sitevault repository (%v); check --repo / %s, or create one there with `sitevault init --repo %s`",
		where, err, config.EnvRepository, where)
}
