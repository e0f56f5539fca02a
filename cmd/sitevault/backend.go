package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/sitevault/sitevault/internal/backend"
	"github.com/sitevault/sitevault/internal/backend/retry"
	"github.com/sitevault/sitevault/internal/config"
	"github.com/sitevault/sitevault/internal/location"
)

// openBackend connects to the repository's backend (wrapped in retries);
// with create, it prepares the location for init. Credentials come from
// the environment (location.CredentialsFromEnv), never from the URL.
func openBackend(ctx context.Context, g *globalOptions, cfg *config.Config, create bool) (backend.Backend, error) {
	loc, err := location.Parse(cfg.Repo)
	if err != nil {
		return nil, usageError(err)
	}
	g.logger().Debug("opening backend", "location", loc.String(), "create", create)
	be, err := location.OpenWith(ctx, loc, location.CredentialsFromEnv(), create, retry.Options{Logger: g.logger()})
	switch {
	case err == nil:
		return be, nil
	case !create && errors.Is(err, backend.ErrNotExist):
		return nil, notRepositoryError(err, cfg, loc.String())
	case create:
		return nil, fmt.Errorf("create repository at %s: %w", loc, err)
	}
	return nil, fmt.Errorf("open repository %s: %w", loc, err)
}
