package site

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/sitevault/sitevault/internal/connection"
	"github.com/sitevault/sitevault/internal/connection/ssh"
	"github.com/sitevault/sitevault/internal/sitevault"
	"github.com/sitevault/sitevault/internal/wordpress"
)

// Step names the part of Check that failed.
type Step string

// The steps of Check, in order.
const (
	// StepConnect: the connection could not be opened (the SSH server is
	// unreachable or refused the login, the identity file is unusable, a
	// local folder is missing).
	StepConnect Step = "connect"
	// StepHostKey: the SSH server's host key is unknown and was not
	// accepted, or differs from the recorded one.
	StepHostKey Step = "host_key"
	// StepFiles: the folder is not a WordPress site sitevault can read
	// (not WordPress, no wp-config.php, missing, unreadable).
	StepFiles Step = "files"
	// StepConfig: wp-config.php (with the site's overrides) does not give
	// every database setting; CheckError.Values lists them.
	StepConfig Step = "config"
	// StepDatabase: the database login failed (errors.Is ErrDBUnreachable,
	// ErrDBLogin or ErrDBName).
	StepDatabase Step = "database"
)

// CheckError says which step of Check failed for which site. Err is the
// cause (errors.Is/As reach it through Unwrap); it never holds a secret.
type CheckError struct {
	Site string
	Step Step
	// Values lists, for StepConfig, every database setting that is missing
	// or unusable (name, reason, line); nil for the other steps.
	Values []*wordpress.ValueError
	Err    error
}

func (e *CheckError) Error() string {
	what := map[Step]string{
		StepConnect:  "connect",
		StepHostKey:  "SSH host key",
		StepFiles:    "read the site's files",
		StepConfig:   "wp-config.php does not give every database setting",
		StepDatabase: "log in to the database",
	}[e.Step]
	if what == "" {
		what = string(e.Step)
	}
	return fmt.Sprintf("site %s: %s: %v", e.Site, what, e.Err)
}

func (e *CheckError) Unwrap() error { return e.Err }

// CheckOptions adjust Check.
type CheckOptions struct {
	// Env supplies SITEVAULT_SSH_PASSWORD and SITEVAULT_SSH_PASSPHRASE
	// (connection.Options.Env); nil means no environment (a service).
	Env    func(string) (string, bool)
	Logger *slog.Logger
	// AcceptHostKey decides about an SSH host key that is not recorded
	// yet: nil refuses it (StepHostKey); a nil error accepts it, and Check
	// records it in the entry; an error refuses it and becomes
	// CheckError.Err.
	AcceptHostKey func(*ssh.UnknownHostKeyError) error
	// PasswordPrompt and PassphrasePrompt ask for a secret that is neither
	// stored nor in Env; nil does not ask. What they return is recorded in
	// the entry (to be sealed with it).
	PasswordPrompt   func(user, addr string) (string, error)
	PassphrasePrompt func(file string) (string, error)
}

// CheckResult is what a successful Check found.
type CheckResult struct {
	Inspection *Inspection
	// DBAddr is the database address the login worked at.
	DBAddr wordpress.DBAddr
	// HostKeyRecorded is true when an unknown host key was accepted and
	// recorded in the entry.
	HostKeyRecorded bool
}

// Check is the registration check of a site, for site add and edit in the
// CLI and the service alike: it connects (accepting an unknown SSH host key
// through opts.AcceptHostKey), inspects the files, reads wp-config.php and
// logs in to the database. On success it records in entry the database
// login that worked (LastDB), an accepted host key, and secrets the
// prompts returned; the caller saves entry. It returns the open connection
// (the caller closes it). Any failure is a *CheckError naming the step;
// nothing is open then.
func Check(ctx context.Context, entry *sitevault.Site, opts CheckOptions) (connection.Connection, *CheckResult, error) {
	fail := func(step Step, err error) (connection.Connection, *CheckResult, error) {
		return nil, nil, &CheckError{Site: entry.Name, Step: step, Err: err}
	}
	copts := connection.Options{Env: opts.Env, Logger: opts.Logger}
	if opts.PasswordPrompt != nil {
		copts.PasswordPrompt = func(user, addr string) (string, error) {
			pw, err := opts.PasswordPrompt(user, addr)
			if err == nil {
				entry.SSH.Password = sitevault.Secret(pw)
			}
			return pw, err
		}
	}
	if opts.PassphrasePrompt != nil {
		copts.PassphrasePrompt = func(file string) (string, error) {
			pw, err := opts.PassphrasePrompt(file)
			if err == nil {
				entry.SSH.Passphrase = sitevault.Secret(pw)
			}
			return pw, err
		}
	}
	res := &CheckResult{}
	conn, err := connection.Open(ctx, *entry, copts)
	var unknown *ssh.UnknownHostKeyError
	if errors.As(err, &unknown) {
		if opts.AcceptHostKey == nil {
			return fail(StepHostKey, err)
		}
		if err := opts.AcceptHostKey(unknown); err != nil {
			return fail(StepHostKey, err)
		}
		entry.SSH.HostKey, entry.SSH.HostKeyFingerprint = unknown.AuthorizedKey(), unknown.Fingerprint()
		res.HostKeyRecorded = true
		conn, err = connection.Open(ctx, *entry, copts)
	}
	if err != nil {
		if errors.Is(err, ssh.ErrHostKeyChanged) || errors.Is(err, ssh.ErrHostKeyUnknown) {
			return fail(StepHostKey, err)
		}
		return fail(StepConnect, err)
	}
	in, err := Inspect(ctx, conn, *entry)
	if err != nil {
		conn.Close()
		return fail(StepFiles, err)
	}
	if in.DatabaseErr != nil {
		conn.Close()
		return nil, nil, &CheckError{Site: entry.Name, Step: StepConfig, Values: wordpress.ValueErrors(in.DatabaseErr), Err: in.DatabaseErr}
	}
	addr, err := CheckDatabase(ctx, conn, in.Database)
	if err != nil {
		conn.Close()
		return fail(StepDatabase, err)
	}
	entry.LastDB = &sitevault.DBCredentials{
		Host: DBHostFor(addr), Name: in.Database.Name, User: in.Database.User,
		Password: sitevault.Secret(in.Database.Password),
	}
	res.Inspection, res.DBAddr = in, addr
	return conn, res, nil
}
