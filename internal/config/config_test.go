package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// envMap is a fake environment.
func envMap(kv ...string) func(string) (string, bool) {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// fakePrompt answers prompts from a list.
type fakePrompt struct {
	answers []string
	asked   int
}

func (p *fakePrompt) Interactive() bool { return true }
func (p *fakePrompt) Prompt(string) (string, error) {
	if p.asked >= len(p.answers) {
		return "", errors.New("no more answers")
	}
	p.asked++
	return p.answers[p.asked-1], nil
}

func writeFile(t testing.TB, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func TestResolveHomeAndRepo(t *testing.T) {
	tmp := t.TempDir()
	tests := []struct {
		name         string
		flags        Flags
		env          []string
		wantHome     string
		wantRepo     string
		wantEmbedded bool
	}{
		{"defaults", Flags{}, []string{"HOME", tmp},
			filepath.Join(tmp, ".local/share/sitevault"), filepath.Join(tmp, ".local/share/sitevault/repo"), true},
		{"env home", Flags{}, []string{"HOME", tmp, EnvHome, filepath.Join(tmp, "h1")},
			filepath.Join(tmp, "h1"), filepath.Join(tmp, "h1/repo"), true},
		{"flag home wins", Flags{Home: filepath.Join(tmp, "h2")}, []string{EnvHome, filepath.Join(tmp, "h1")},
			filepath.Join(tmp, "h2"), filepath.Join(tmp, "h2/repo"), true},
		{"env repo", Flags{Home: tmp + "/h3"}, []string{EnvRepository, "sftp://u@h/p"},
			tmp + "/h3", "sftp://u@h/p", false},
		{"flag repo wins", Flags{Home: tmp + "/h3", Repo: "/srv/r"}, []string{EnvRepository, "sftp://u@h/p"},
			tmp + "/h3", "/srv/r", false},
		{"embedded named explicitly", Flags{Home: tmp + "/h4", Repo: tmp + "/h4/repo/"}, nil,
			tmp + "/h4", tmp + "/h4/repo/", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Resolve(tt.flags, envMap(tt.env...))
			if err != nil {
				t.Fatal(err)
			}
			if c.Home != tt.wantHome || c.Repo != tt.wantRepo || c.Embedded != tt.wantEmbedded {
				t.Errorf("got home %q repo %q embedded %v, want %q %q %v",
					c.Home, c.Repo, c.Embedded, tt.wantHome, tt.wantRepo, tt.wantEmbedded)
			}
			fi, err := os.Stat(c.Home)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o700 {
				t.Errorf("data home mode %o, want 0700", fi.Mode().Perm())
			}
		})
	}
}

func TestResolveHomeIsFile(t *testing.T) {
	f := filepath.Join(t.TempDir(), "file")
	writeFile(t, f, "x", 0o600)
	if _, err := Resolve(Flags{Home: f}, envMap()); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Fatalf("got %v, want a not-a-directory error", err)
	}
}

func TestPasswordOrder(t *testing.T) {
	home := t.TempDir()
	pwFile := filepath.Join(home, "pw")
	writeFile(t, pwFile, "from-file\n", 0o600)
	c, err := Resolve(Flags{Home: home}, envMap())
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, c.KeyFile(), "from-keyfile\n", 0o600)

	tests := []struct {
		name     string
		file     string
		env      []string
		embedded bool
		prompt   Prompter
		want     string
		wantSrc  string
	}{
		{"file first", pwFile, []string{EnvPassword, "from-env"}, true, nil, "from-file", "--password-file"},
		{"env second", "", []string{EnvPassword, "from-env"}, true, nil, "from-env", EnvPassword},
		{"key file third", "", nil, true, &fakePrompt{answers: []string{"typed"}}, "from-keyfile", "key file"},
		{"prompt for other repositories", "", nil, false, &fakePrompt{answers: []string{"typed"}}, "typed", "the prompt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cc := *c
			cc.PasswordFile, cc.Env, cc.Embedded = tt.file, envMap(tt.env...), tt.embedded
			pw, src, err := cc.Password(tt.prompt)
			if err != nil {
				t.Fatal(err)
			}
			if pw != tt.want || !strings.HasPrefix(src, tt.wantSrc) {
				t.Errorf("got %q from %q, want %q from %q", pw, src, tt.want, tt.wantSrc)
			}
		})
	}
}

func TestNoPassword(t *testing.T) {
	c, err := Resolve(Flags{Home: t.TempDir()}, envMap())
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = c.Password(NoPrompt{})
	if !errors.Is(err, ErrNoPassword) {
		t.Fatalf("got %v, want ErrNoPassword", err)
	}
	for _, hint := range []string{EnvPassword, "--password-file", "sitevault init"} {
		if !strings.Contains(err.Error(), hint) {
			t.Errorf("error %q does not mention %s", err, hint)
		}
	}
}

func TestSecretFilePermissions(t *testing.T) {
	home := t.TempDir()
	c, err := Resolve(Flags{Home: home}, envMap())
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, c.KeyFile(), "secret\n", 0o644)
	_, _, err = c.Password(NoPrompt{})
	var pe *PermissionError
	if !errors.As(err, &pe) {
		t.Fatalf("got %v, want a PermissionError", err)
	}
	if !strings.Contains(err.Error(), "chmod 600 "+c.KeyFile()) || !strings.Contains(err.Error(), "0644") {
		t.Errorf("error %q does not say how to fix it", err)
	}

	pwFile := filepath.Join(home, "pw")
	writeFile(t, pwFile, "secret", 0o640)
	c.PasswordFile = pwFile
	if _, _, err := c.Password(NoPrompt{}); !errors.As(err, &pe) {
		t.Fatalf("group-readable password file: got %v, want a PermissionError", err)
	}
}

func TestSecretFileContent(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, content, want, wantErr string
	}{
		{"newline trimmed", "pw\n", "pw", ""},
		{"crlf trimmed", "pw\r\n", "pw", ""},
		{"spaces kept", " pw ", " pw ", ""},
		{"empty", "\n", "", "is empty"},
		{"two lines", "a\nb\n", "", "more than one line"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "_"))
			writeFile(t, p, tt.content, 0o600)
			got, err := ReadSecretFile(p, "password file")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %q, %v; want error containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
	if _, err := ReadSecretFile(filepath.Join(dir, "missing"), "password file"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: got %v", err)
	}
}

func TestInitPasswordCreatesKeyFile(t *testing.T) {
	c, err := Resolve(Flags{Home: t.TempDir()}, envMap())
	if err != nil {
		t.Fatal(err)
	}
	pw, _, created, err := c.InitPassword(NoPrompt{})
	if err != nil || !created {
		t.Fatalf("got created=%v err=%v", created, err)
	}
	fi, err := os.Stat(c.KeyFile())
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %o, want 0600", fi.Mode().Perm())
	}
	if len(pw) != 44 { // 32 bytes in base64
		t.Errorf("key %q is not 32 bytes of base64", pw)
	}
	if !strings.Contains(c.KeyFileWarning(), c.KeyFile()) {
		t.Error("warning does not name the key file")
	}
	// A second call reuses the file rather than replacing it.
	pw2, _, created, err := c.InitPassword(NoPrompt{})
	if err != nil || created || pw2 != pw {
		t.Fatalf("second call: created=%v err=%v same=%v", created, err, pw2 == pw)
	}
	// Open reads the same password.
	pw3, _, err := c.Password(NoPrompt{})
	if err != nil || pw3 != pw {
		t.Fatalf("Password after init: %v, same=%v", err, pw3 == pw)
	}
}

func TestInitPasswordGivenOrPrompted(t *testing.T) {
	c, err := Resolve(Flags{Home: t.TempDir()}, envMap(EnvPassword, "env-pw"))
	if err != nil {
		t.Fatal(err)
	}
	pw, _, created, err := c.InitPassword(NoPrompt{})
	if err != nil || created || pw != "env-pw" {
		t.Fatalf("got %q created=%v err=%v", pw, created, err)
	}
	if _, err := os.Stat(c.KeyFile()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("key file created although a password was given: %v", err)
	}

	c2, err := Resolve(Flags{Home: t.TempDir(), Repo: "/elsewhere"}, envMap())
	if err != nil {
		t.Fatal(err)
	}
	pw, _, _, err = c2.InitPassword(&fakePrompt{answers: []string{"a", "a"}})
	if err != nil || pw != "a" {
		t.Fatalf("prompt twice: %q %v", pw, err)
	}
	_, _, _, err = c2.InitPassword(&fakePrompt{answers: []string{"a", "b"}})
	if !errors.Is(err, ErrPasswordMismatch) {
		t.Fatalf("mismatch: got %v", err)
	}
	_, _, _, err = c2.InitPassword(NoPrompt{})
	if !errors.Is(err, ErrNoPassword) {
		t.Fatalf("no terminal: got %v", err)
	}
}

func TestNewPassword(t *testing.T) {
	dir := t.TempDir()
	c, err := Resolve(Flags{Home: dir}, envMap(EnvNewPassword, "new-env"))
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(dir, "new")
	writeFile(t, f, "new-file\n", 0o600)
	if pw, err := c.NewPassword(f, nil); err != nil || pw != "new-file" {
		t.Errorf("file: %q %v", pw, err)
	}
	if pw, err := c.NewPassword("", nil); err != nil || pw != "new-env" {
		t.Errorf("env: %q %v", pw, err)
	}
	c.Env = envMap()
	if _, err := c.NewPassword("", NoPrompt{}); !errors.Is(err, ErrNoPassword) || !strings.Contains(err.Error(), EnvNewPassword) {
		t.Errorf("none: %v", err)
	}
}

// TestResolveHomeLooseModeRefused: issue 8 finding 12, a data home others
// could write or read was used silently. Writable by others is refused;
// readable only is tightened to 0700.
func TestResolveHomeLooseModeRefused(t *testing.T) {
	for _, mode := range []os.FileMode{0o755, 0o750, 0o701} {
		home := filepath.Join(t.TempDir(), "home")
		if err := os.Mkdir(home, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(home, mode); err != nil {
			t.Fatal(err)
		}
		if _, err := Resolve(Flags{Home: home}, envMap()); err != nil {
			t.Fatalf("mode %04o: Resolve: %v", mode, err)
		}
		if fi, err := os.Stat(home); err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("mode %04o: home now %v (%v), want 0700", mode, fi.Mode().Perm(), err)
		}
	}
	for _, mode := range []os.FileMode{0o777, 0o770, 0o722, 0o702} {
		home := filepath.Join(t.TempDir(), "home")
		if err := os.Mkdir(home, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(home, mode); err != nil {
			t.Fatal(err)
		}
		_, err := Resolve(Flags{Home: home}, envMap())
		var pe *PermissionError
		if !errors.As(err, &pe) || !strings.Contains(err.Error(), "chmod 700 "+home) {
			t.Errorf("mode %04o: Resolve = %v, want a PermissionError with chmod 700", mode, err)
		}
	}
}
