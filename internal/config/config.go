// Package config resolves where sitevault keeps its data and which
// repository and password a command uses.
//
// Precedence is the same everywhere: defaults, then the config file (see
// file.go), then the environment, then flags; Resolve applies it in one
// place for the CLI and the service. Secrets never come from argv: a password comes from a file
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

	"github.com/sitevault/sitevault/internal/sitevault"
)

// Environment variables read by this package.
const (
	EnvHome        = "SITEVAULT_HOME"
	EnvRepository  = "SITEVAULT_REPOSITORY"
	EnvPassword    = "SITEVAULT_PASSWORD"
	EnvNewPassword = "SITEVAULT_NEW_PASSWORD"
	EnvCatalog     = "SITEVAULT_CATALOG"
	EnvServer      = "SITEVAULT_SERVER"
	EnvToken       = "SITEVAULT_TOKEN"
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
	// FilePasswordFile is the config file's password_file: used after
	// $SITEVAULT_PASSWORD.
	FilePasswordFile string
	// Catalog, Server and TokenFile are the effective values of
	// --catalog, --server and --token-file ("" : none given anywhere).
	Catalog, Server, TokenFile string
	// File is the config file read (nil: none).
	File *File
	// Sources says where each effective setting came from.
	Sources map[string]Source
	// Env looks up environment variables; nil means os.LookupEnv.
	Env func(string) (string, bool)
}

// Flags are the command-line values Resolve weighs against the environment.
type Flags struct {
	Home         string // --home
	Repo         string // --repo
	PasswordFile string // --password-file
	Catalog      string // --catalog
	Server       string // --server
	TokenFile    string // --token-file
	ConfigFile   string // --config
	// ReadOnly: the command only reads; a missing data home is left
	// missing.
	ReadOnly bool
}

// Resolve applies defaults, then the config file, then the environment
// (through env; nil means os.LookupEnv), then flags, and creates the data
// home if it is missing (unless f.ReadOnly). A config file that cannot be
// used is an error (*FileError) and nothing else happens.
func Resolve(f Flags, env func(string) (string, bool)) (*Config, error) {
	if env == nil {
		env = os.LookupEnv
	}
	home, err := homeDir(f.Home, env)
	if err != nil {
		return nil, err
	}
	path, fileSource, err := FindFile(f.ConfigFile, home, env)
	if err != nil {
		return nil, err
	}
	var file *File
	if path != "" {
		if file, err = LoadFile(path); err != nil {
			return nil, err
		}
	}
	if _, serr := os.Stat(home); f.ReadOnly && errors.Is(serr, os.ErrNotExist) {
		// A command that only reads creates nothing: no data home yet
		// means no catalog and no embedded repository.
	} else if err := ensureHome(home); err != nil {
		return nil, err
	}
	c := &Config{Home: home, PasswordFile: f.PasswordFile, Env: env, File: file, Sources: map[string]Source{}}
	homeSrc := SourceDefault
	switch {
	case f.Home != "":
		homeSrc = SourceFlag
	case nonEmpty(env, EnvHome) != "":
		homeSrc = SourceEnv
	}
	c.Sources["home"] = homeSrc
	if file != nil {
		c.Sources["config"] = Source(fileSource)
		if fileSource == "default" {
			c.Sources["config"] = SourceDefault
		}
	}
	var fileRepo, fileCatalog, fileServer, fileToken, filePW string
	if file != nil {
		fileRepo, fileCatalog, fileServer, fileToken, filePW = file.Repository, file.Catalog, file.Server, file.TokenFile, file.PasswordFile
	}
	pick := func(key, flag, envName, fromFile, def string) string {
		switch {
		case flag != "":
			c.Sources[key] = SourceFlag
			return flag
		case envName != "" && nonEmpty(env, envName) != "":
			c.Sources[key] = SourceEnv
			return nonEmpty(env, envName)
		case fromFile != "":
			c.Sources[key] = SourceFile
			return fromFile
		}
		c.Sources[key] = SourceDefault
		return def
	}
	c.Repo = pick("repository", f.Repo, EnvRepository, fileRepo, filepath.Join(home, embeddedRepoName))
	c.Catalog = pick("catalog", f.Catalog, EnvCatalog, fileCatalog, "")
	c.Server = pick("server", f.Server, EnvServer, fileServer, "")
	c.TokenFile = pick("token_file", f.TokenFile, "", fileToken, "")
	if c.TokenFile != "" && f.TokenFile == "" && nonEmpty(env, EnvToken) != "" {
		// $SITEVAULT_TOKEN beats the file's token_file.
		c.TokenFile, c.Sources["token_file"] = "", SourceDefault
	}
	switch {
	case f.PasswordFile != "":
		c.Sources["password"] = SourceFlag
	case nonEmpty(env, EnvPassword) != "":
		c.Sources["password"] = SourceEnv
	case filePW != "":
		c.FilePasswordFile = filePW
		c.Sources["password"] = SourceFile
	default:
		c.Sources["password"] = SourceDefault
	}
	c.Embedded = sameLocalPath(c.Repo, c.EmbeddedRepo())
	return c, nil
}

// Source is where an effective setting came from.
type Source string

// Sources, weakest first.
const (
	SourceDefault Source = "default"
	SourceFile    Source = "file"
	SourceEnv     Source = "env"
	SourceFlag    Source = "flag"
)

// ApplySite returns st with the config file's settings applied (see
// File.ApplySite); st unchanged without a file.
func (c *Config) ApplySite(st sitevault.Site) sitevault.Site { return c.File.ApplySite(st) }

// Excludes returns the config file's extra exclude patterns for site.
func (c *Config) Excludes(site string) []string { return c.File.Excludes(site) }

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
