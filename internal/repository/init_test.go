package repository_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"

	"github.com/sitevault/sitevault/internal/backend"
	"github.com/sitevault/sitevault/internal/location"
	"github.com/sitevault/sitevault/internal/repository"
	"github.com/sitevault/sitevault/internal/testsrv"
)

// TestConcurrentInit runs two inits of one location at the same time, each
// with its own connection, on every backend: exactly one succeeds, the
// other fails with ErrRepositoryExists and leaves no key slot behind, and
// the repository opens with the winner's password only.
func TestConcurrentInit(t *testing.T) {
	open := map[string]func(t *testing.T) func() backend.Backend{
		"local": func(t *testing.T) func() backend.Backend {
			loc := location.Location{Scheme: location.Local, Path: filepath.Join(t.TempDir(), "repo")}
			return func() backend.Backend { return openProxied(t, loc, location.Credentials{}, &retryLog{}) }
		},
		"sftp": func(t *testing.T) func() backend.Backend {
			s := testsrv.StartSSHD(t)
			loc, creds := sftpLocation(t, s, s.Addr, "repo")
			return func() backend.Backend { return openProxied(t, loc, creds, &retryLog{}) }
		},
		"s3": func(t *testing.T) func() backend.Backend {
			s := testsrv.StartS3(t)
			loc, creds := s3Location(t, s, s.Endpoint, s.NewBucket(t))
			return func() backend.Backend { return openProxied(t, loc, creds, &retryLog{}) }
		},
	}
	for name, mk := range open {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			newBackend := mk(t)
			const n = 2
			bes := make([]backend.Backend, n)
			for i := range bes {
				bes[i] = newBackend()
			}
			pw := []string{"first password", "second password"}
			errs := make([]error, n)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					r, err := repository.Init(ctx, bes[i], pw[i], repository.InitOptions{ScryptN: repository.TestScryptN})
					if err == nil {
						r.Close()
					}
					errs[i] = err
				}()
			}
			close(start)
			wg.Wait()
			winner := -1
			for i, err := range errs {
				switch {
				case err == nil && winner >= 0:
					t.Fatal("both inits succeeded")
				case err == nil:
					winner = i
				case !errors.Is(err, repository.ErrRepositoryExists):
					t.Errorf("init %d: %v, want ErrRepositoryExists", i, err)
				}
			}
			if winner < 0 {
				t.Fatalf("no init succeeded: %v", errs)
			}
			be := newBackend()
			r, err := repository.Open(ctx, be, pw[winner], repository.Options{})
			if err != nil {
				t.Fatalf("open with the winner's password: %v", err)
			}
			defer r.Close()
			keys, err := r.Keys(ctx)
			if err != nil || len(keys) != 1 {
				t.Errorf("keys = %+v, %v; want only the winner's slot", keys, err)
			}
			if _, err := repository.Open(ctx, be, pw[1-winner], repository.Options{}); !errors.Is(err, repository.ErrWrongPassword) {
				t.Errorf("open with the loser's password: %v, want ErrWrongPassword", err)
			}
		})
	}
}
