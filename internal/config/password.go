package config

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"golang.org/x/term"
)

// ErrNoPassword: no password source is available (no file, no environment
// variable, no key file, no terminal). The error wrapping it says how to
// provide one.
var ErrNoPassword = errors.New("no repository password given")

// ErrPasswordMismatch: the two answers to a repeated prompt differ.
var ErrPasswordMismatch = errors.New("the passwords do not match")

// PermissionError reports a secret file that other users may read.
type PermissionError struct {
	Path string
	Mode fs.FileMode
	What string // "key file", "password file", "data home" (a folder: chmod 700)
}

func (e *PermissionError) Error() string {
	if e.Mode.IsDir() {
		return fmt.Sprintf("%s %s has mode %04o, so other users may reach the keys and the catalog in it; run: chmod 700 %s",
			e.What, e.Path, uint32(e.Mode.Perm()), e.Path)
	}
	return fmt.Sprintf("%s %s has mode %04o, so other users may read the password; run: chmod 600 %s",
		e.What, e.Path, uint32(e.Mode.Perm()), e.Path)
}

// Prompter asks for a password without echo. Terminal is the real one;
// tests pass their own.
type Prompter interface {
	// Interactive reports whether a person can answer.
	Interactive() bool
	// Prompt shows label and reads one line without echo.
	Prompt(label string) (string, error)
}

// Terminal prompts on the controlling terminal: it reads stdin when stdin
// is a terminal and writes the prompt to stderr.
type Terminal struct{}

// Interactive reports whether stdin is a terminal.
func (Terminal) Interactive() bool { return term.IsTerminal(int(os.Stdin.Fd())) }

// Prompt reads a password from the terminal without echo. Ctrl-C at the
// prompt restores the terminal and returns an error wrapping
// context.Canceled.
func (Terminal) Prompt(label string) (string, error) {
	fd := int(os.Stdin.Fd())
	state, err := term.GetState(fd)
	if err != nil {
		return "", fmt.Errorf("read password from the terminal: %w", err)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sig)

	fmt.Fprint(os.Stderr, label)
	type result struct {
		b   []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		b, err := term.ReadPassword(fd)
		done <- result{b, err}
	}()
	select {
	case r := <-done:
		fmt.Fprintln(os.Stderr)
		if r.err != nil {
			return "", fmt.Errorf("read password from the terminal: %w", r.err)
		}
		return string(r.b), nil
	case <-sig:
		term.Restore(fd, state)
		fmt.Fprintln(os.Stderr)
		return "", fmt.Errorf("password prompt: %w", context.Canceled)
	}
}

// NoPrompt is a Prompter for non-interactive runs.
type NoPrompt struct{}

// Interactive is always false.
func (NoPrompt) Interactive() bool { return false }

// Prompt always fails.
func (NoPrompt) Prompt(string) (string, error) { return "", ErrNoPassword }

// Password returns the repository password and a description of where it
// came from (for messages; never the password itself). Sources, in order:
// --password-file, SITEVAULT_PASSWORD, the embedded key file (embedded
// repository only), a prompt.
func (c *Config) Password(p Prompter) (password, source string, err error) {
	if pw, src, ok, err := c.givenPassword(); ok || err != nil {
		return pw, src, err
	}
	if c.Embedded {
		pw, err := ReadSecretFile(c.KeyFile(), "key file")
		if err == nil {
			return pw, "key file " + c.KeyFile(), nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", "", err
		}
	}
	if p != nil && p.Interactive() {
		pw, err := p.Prompt("Password for " + c.Repo + ": ")
		if err != nil {
			return "", "", err
		}
		if pw == "" {
			return "", "", fmt.Errorf("%w: the password is empty", ErrNoPassword)
		}
		return pw, "the prompt", nil
	}
	return "", "", c.noPasswordError()
}

// InitPassword returns the password for a new repository. Like Password,
// but a prompt asks twice, and for the embedded repository with no password
// given it creates a random key file: created reports that, and the caller
// must tell the user to keep a copy (KeyFileWarning) or, if init fails,
// remove it (RemoveKeyFile).
func (c *Config) InitPassword(p Prompter) (password, source string, created bool, err error) {
	if pw, src, ok, err := c.givenPassword(); ok || err != nil {
		return pw, src, false, err
	}
	if c.Embedded {
		pw, err := ReadSecretFile(c.KeyFile(), "key file")
		if err == nil {
			return pw, "key file " + c.KeyFile(), false, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", "", false, err
		}
		pw, err = createKeyFile(c.KeyFile())
		if err != nil {
			return "", "", false, err
		}
		return pw, "key file " + c.KeyFile(), true, nil
	}
	if p != nil && p.Interactive() {
		pw, err := promptTwice(p, "Password for the new repository "+c.Repo+": ")
		return pw, "the prompt", false, err
	}
	return "", "", false, c.noPasswordError()
}

// NewPassword returns the password for a new key slot: from file (if not
// empty), SITEVAULT_NEW_PASSWORD, or a prompt that asks twice.
func (c *Config) NewPassword(file string, p Prompter) (string, error) {
	if file != "" {
		return ReadSecretFile(file, "new password file")
	}
	if pw := c.env(EnvNewPassword); pw != "" {
		return pw, nil
	}
	if p != nil && p.Interactive() {
		return promptTwice(p, "New password: ")
	}
	return "", fmt.Errorf("%w for the new key: set %s, pass --new-password-file FILE, or run on a terminal to be asked",
		ErrNoPassword, EnvNewPassword)
}

// KeyFileWarning is what init prints after creating the key file.
func (c *Config) KeyFileWarning() string {
	return fmt.Sprintf(`The repository password is a random key stored in
    %s
Losing this file loses every backup in the repository: nothing can decrypt
them without it. Copy it now to somewhere safe that is not this machine
(a password manager, another disk).`, c.KeyFile())
}

// RemoveKeyFile deletes a key file InitPassword just created (init failed).
func (c *Config) RemoveKeyFile() error { return os.Remove(c.KeyFile()) }

// givenPassword returns a password given explicitly: --password-file, then
// SITEVAULT_PASSWORD. ok is false when neither is set.
func (c *Config) givenPassword() (pw, source string, ok bool, err error) {
	if c.PasswordFile != "" {
		pw, err := ReadSecretFile(c.PasswordFile, "password file")
		if err != nil {
			return "", "", false, err
		}
		return pw, "--password-file " + c.PasswordFile, true, nil
	}
	if pw := c.env(EnvPassword); pw != "" {
		return pw, EnvPassword, true, nil
	}
	if c.FilePasswordFile != "" {
		pw, err := ReadSecretFile(c.FilePasswordFile, "password file")
		if err != nil {
			return "", "", false, fmt.Errorf("%w (password_file in the config file %s)", err, c.File.Path)
		}
		return pw, "password_file " + c.FilePasswordFile + " (config file)", true, nil
	}
	return "", "", false, nil
}

func (c *Config) noPasswordError() error {
	hint := fmt.Sprintf("set %s, pass --password-file FILE, or run on a terminal to be asked", EnvPassword)
	if c.Embedded {
		return fmt.Errorf("%w for %s: its key file %s does not exist; %s (or run `sitevault init` to create the repository)",
			ErrNoPassword, c.Repo, c.KeyFile(), hint)
	}
	return fmt.Errorf("%w for %s: %s", ErrNoPassword, c.Repo, hint)
}

func promptTwice(p Prompter, label string) (string, error) {
	a, err := p.Prompt(label)
	if err != nil {
		return "", err
	}
	if a == "" {
		return "", fmt.Errorf("%w: the password is empty", ErrNoPassword)
	}
	b, err := p.Prompt("Repeat it: ")
	if err != nil {
		return "", err
	}
	if a != b {
		return "", fmt.Errorf("%w; try again", ErrPasswordMismatch)
	}
	return a, nil
}

// maxSecretFile bounds what ReadSecretFile reads: a password file is small.
const maxSecretFile = 64 << 10

// ReadSecretFile reads a password from path. The file must not be readable
// or writable by group or others (*PermissionError), and must not be empty.
// One trailing newline is removed.
func ReadSecretFile(path, what string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", what, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("read %s: %w", what, err)
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("read %s %s: not a regular file", what, path)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return "", &PermissionError{Path: path, Mode: fi.Mode(), What: what}
	}
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	if err != nil {
		return "", fmt.Errorf("read %s %s: %w", what, path, err)
	}
	if len(b) > maxSecretFile {
		return "", fmt.Errorf("read %s %s: larger than %d bytes; is it the right file?", what, path, maxSecretFile)
	}
	b = bytes.TrimSuffix(b, []byte("\n"))
	b = bytes.TrimSuffix(b, []byte("\r"))
	if len(b) == 0 {
		return "", fmt.Errorf("%s %s is empty; put the password in it", what, path)
	}
	if strings.ContainsRune(string(b), '\n') {
		return "", fmt.Errorf("%s %s holds more than one line; it must hold only the password", what, path)
	}
	return string(b), nil
}

// createKeyFile writes a new random key (32 bytes, base64) to path with mode
// 0600, refusing to replace an existing file.
func createKeyFile(path string) (string, error) {
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", fmt.Errorf("create key file: %w", err)
	}
	key := base64.StdEncoding.EncodeToString(raw[:])
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("create key file: %w", err)
	}
	if _, err := f.WriteString(key + "\n"); err != nil {
		f.Close()
		os.Remove(path)
		return "", fmt.Errorf("write key file %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return "", fmt.Errorf("write key file %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return "", fmt.Errorf("write key file %s: %w", path, err)
	}
	return key, nil
}
