// Package config resolves where sitevault keeps its data and which
// repository and password a command uses.
//
// Precedence is the same everywhere: defaults, then the environment, then
// flags. Secrets never come from argv: a password comes from a file
// (--password-file), the environment (SITEVAULT_PASSWORD), the embedded key
// file in the data home, or a prompt on a terminal, in that order.
//
// Vocabulary:
//
//	data home            $SITEVAULT_HOME, default ~/.local/share/sitevault (mode 0700)
//	embedded repository  the default repository, a local directory <data home>/repo
//	key file             <data home>/repo.key: the embedded repository's random
//	                     password, created by `sitevault init` (mode 0600)
package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Environment variables read by this package.
const (
	EnvHome        = "SITEVAULT_HOME"
	EnvRepository  = "SITEVAULT_REPOSITORY"
	EnvPassword    = "SITEVAULT_PASSWORD"
	EnvNewPassword = "SITEVAULT_NEW_PASSWORD"
)

// Names inside the data home.
const (
	embeddedRepoName = "repo"
	keyFileName      = "repo.key"
)

// Config is what a command needs to find and unlock its repository. Build it
// with Resolve.
type Config struct {
	// Home is the data home, an absolute path that exists with mode 0700.
	Home string
	// Repo is the repository URL (or path) the command uses.
	Repo string
	// Embedded is true when Repo is the embedded default repository.
	Embedded bool
	// PasswordFile is --password-file, if given.
	PasswordFile string
	// Env looks up environment variables; nil means os.LookupEnv.
	Env func(string) (string, bool)
}

// Flags are the command-line values Resolve weighs against the environment.
type Flags struct {
	Home         string // --home
	Repo         string // --repo
	PasswordFile string // --password-file
	// ReadOnly: the command only reads; a missing data home is left
	// missing.
	ReadOnly bool
}

// Resolve applies defaults, then the environment (through env; nil means
// os.LookupEnv), then flags, and creates the data home if it is missing
// (unless f.ReadOnly).
func Resolve(f Flags, env func(string) (string, bool)) (*Config, error) {
	if env == nil {
		env = os.LookupEnv
	}
	home, err := homeDir(f.Home, env)
	if err != nil {
		return nil, err
	}
	if _, serr := os.Stat(home); f.ReadOnly && errors.Is(serr, os.ErrNotExist) {
		// A command that only reads creates nothing: no data home yet
		// means no catalog and no embedded repository.
	} else if err := ensureHome(home); err != nil {
		return nil, err
	}
	c := &Config{Home: home, PasswordFile: f.PasswordFile, Env: env}
	switch {
	case f.Repo != "":
		c.Repo = f.Repo
	case nonEmpty(env, EnvRepository) != "":
		c.Repo = nonEmpty(env, EnvRepository)
	default:
		c.Repo = c.EmbeddedRepo()
	}
	c.Embedded = sameLocalPath(c.Repo, c.EmbeddedRepo())
	return c, nil
}

// EmbeddedRepo is the path of the embedded default repository.
func (c *Config) EmbeddedRepo() string { return filepath.Join(c.Home, embeddedRepoName) }

// KeyFile is the path of the embedded repository's key file.
func (c *Config) KeyFile() string { return filepath.Join(c.Home, keyFileName) }

func (c *Config) env(name string) string {
	lookup := c.Env
	if lookup == nil {
		lookup = os.LookupEnv
	}
	return nonEmpty(lookup, name)
}

func nonEmpty(env func(string) (string, bool), name string) string {
	v, _ := env(name)
	return v
}

func homeDir(flag string, env func(string) (string, bool)) (string, error) {
	home := flag
	if home == "" {
		home = nonEmpty(env, EnvHome)
	}
	if home == "" {
		userHome := nonEmpty(env, "HOME")
		if userHome == "" {
			h, err := os.UserHomeDir()
			if err != nil {
				return "", fmt.Errorf("find the data home: %w; set %s", err, EnvHome)
			}
			userHome = h
		}
		home = filepath.Join(userHome, ".local", "share", "sitevault")
	}
	abs, err := filepath.Abs(home)
	if err != nil {
		return "", fmt.Errorf("data home %s: %w", home, err)
	}
	return abs, nil
}

// ensureHome creates the data home with mode 0700. An existing home that
// group or others may write is refused with the chmod that fixes it (they
// may have swapped a key file or the catalog already); one they may only
// read or enter is tightened to 0700, which loses nothing.
func ensureHome(home string) error {
	fi, err := os.Stat(home)
	if err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("data home %s is not a directory; set %s or --home to a directory", home, EnvHome)
		}
		switch perm := fi.Mode().Perm(); {
		case perm&0o022 != 0:
			return &PermissionError{Path: home, Mode: fi.Mode(), What: "data home"}
		case perm&0o077 != 0:
			if err := os.Chmod(home, perm&0o700|0o700); err != nil {
				return fmt.Errorf("data home %s: %w: %w", home, &PermissionError{Path: home, Mode: fi.Mode(), What: "data home"}, err)
			}
		}
		return nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("data home %s: %w", home, err)
	}
	if err := os.MkdirAll(home, 0o700); err != nil {
		return fmt.Errorf("create data home %s: %w; set %s or --home to a writable directory", home, err, EnvHome)
	}
	// MkdirAll applies the umask; make the mode exact.
	if err := os.Chmod(home, 0o700); err != nil {
		return fmt.Errorf("create data home %s: %w", home, err)
	}
	return nil
}

// sameLocalPath reports whether the repository URL u is the local path p.
func sameLocalPath(u, p string) bool {
	if filepath.IsAbs(u) || !hasScheme(u) {
		a, err := filepath.Abs(u)
		return err == nil && filepath.Clean(a) == filepath.Clean(p)
	}
	return false
}

// hasScheme reports whether s starts like "scheme://".
func hasScheme(s string) bool {
	for i, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case i > 0 && (c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.'):
		case c == ':' && i > 0:
			return len(s) >= i+3 && s[i+1:i+3] == "//"
		default:
			return false
		}
	}
	return false
}
