package seal

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestKeyFileCreatedOnceWithMode0600(t *testing.T) {
	path := filepath.Join(t.TempDir(), KeyFileName)
	s1, err := OpenKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", fi.Mode().Perm())
	}
	sealed := s1.Seal([]byte("hunter2"), "site/a/db")
	s2, err := OpenKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s2.Open(sealed, "site/a/db")
	if err != nil || string(got) != "hunter2" {
		t.Fatalf("reopened key: Open = %q, %v", got, err)
	}
}

func TestSealOpen(t *testing.T) {
	s, err := OpenKeyFile(filepath.Join(t.TempDir(), KeyFileName))
	if err != nil {
		t.Fatal(err)
	}
	other, err := OpenKeyFile(filepath.Join(t.TempDir(), KeyFileName))
	if err != nil {
		t.Fatal(err)
	}
	secret := []byte("p@ss'w\"ord\n\x00ü")
	sealed := s.Seal(secret, "ctx")
	if strings.Contains(sealed, "p@ss") || bytes.Contains([]byte(sealed), secret) {
		t.Fatalf("sealed value shows the plaintext: %q", sealed)
	}
	if s.Seal(secret, "ctx") == sealed {
		t.Error("two seals of one value are equal; nonces must differ")
	}
	if got, err := s.Open(sealed, "ctx"); err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("Open = %q, %v", got, err)
	}
	tests := []struct {
		name   string
		s      *Sealer
		sealed string
		ctx    string
	}{
		{"other context", s, sealed, "ctx2"},
		{"other key", other, sealed, "ctx"},
		{"damaged", s, sealed[:len(sealed)-2] + "AA", "ctx"},
		{"truncated", s, sealed[:10], "ctx"},
		{"unknown format", s, "v9:abc", "ctx"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.s.Open(tt.sealed, tt.ctx); !errors.Is(err, ErrOpen) {
				t.Fatalf("Open = %v, want ErrOpen", err)
			}
		})
	}
	if s.Seal(nil, "ctx") != "" {
		t.Error("empty secret should seal to empty")
	}
	if got, err := s.Open("", "ctx"); got != nil || err != nil {
		t.Errorf(`Open("") = %q, %v`, got, err)
	}
}

func TestDamagedKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), KeyFileName)
	os.WriteFile(path, []byte("nothex\n"), 0o600)
	if _, err := OpenKeyFile(path); err == nil {
		t.Fatal("damaged key file accepted")
	}
}

// TestKeyFileLooseModeRefused: issue 8 finding 12, a secret.key that other
// users may read was used silently.
func TestKeyFileLooseModeRefused(t *testing.T) {
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604} {
		path := filepath.Join(t.TempDir(), KeyFileName)
		if _, err := OpenKeyFile(path); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		_, err := OpenKeyFile(path)
		var me *ModeError
		if !errors.As(err, &me) || !errors.Is(err, ErrLooseMode) || !strings.Contains(err.Error(), "chmod 600 "+path) {
			t.Errorf("mode %04o: OpenKeyFile = %v, want a ModeError with chmod 600", mode, err)
		}
	}
}

// An Ephemeral sealer creates no key file; what another key sealed does
// not open, and the error names the missing key file.
func TestEphemeral(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, KeyFileName)
	real, err := OpenKeyFile(filepath.Join(t.TempDir(), KeyFileName))
	if err != nil {
		t.Fatal(err)
	}
	sealed := real.Seal([]byte("hunter2"), "ctx")
	e, err := Ephemeral(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(keyFile); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Ephemeral wrote %s: %v", keyFile, err)
	}
	if b, err := e.Open("", "ctx"); err != nil || b != nil {
		t.Errorf("empty value: %q, %v", b, err)
	}
	_, err = e.Open(sealed, "ctx")
	if !errors.Is(err, ErrOpen) || !strings.Contains(err.Error(), keyFile) {
		t.Errorf("open of another key's value: %v, want ErrOpen naming %s", err, keyFile)
	}
	if b, err := e.Open(e.Seal([]byte("x"), "ctx"), "ctx"); err != nil || string(b) != "x" {
		t.Errorf("own value: %q, %v", b, err)
	}
}
