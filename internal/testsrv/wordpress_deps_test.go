package testsrv

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDebianWordPressPackages: on a fresh machine the wordpress package
// comes without the theme and the translations the test sites use; the
// error names the Debian package to install.
func TestDebianWordPressPackages(t *testing.T) {
	dir := t.TempDir()
	mk := func(p string) {
		if err := os.MkdirAll(filepath.Join(dir, p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	steps := []struct {
		add  string // folder created before the check, "" for none
		want string // package the error names, "" for no error
	}{
		{"", "wordpress"},
		{"wp-includes", "wordpress"},
		{"wp-includes/version.php", "wordpress-theme-twentytwentythree"},
		{"wp-content/themes/twentytwentythree", "wordpress-l10n"},
		{"wp-content/languages", ""},
	}
	for _, s := range steps {
		if s.add == "wp-includes/version.php" {
			if err := os.WriteFile(filepath.Join(dir, s.add), []byte("<?php"), 0o644); err != nil {
				t.Fatal(err)
			}
		} else if s.add != "" {
			mk(s.add)
		}
		err := checkDebianWordPress(dir)
		if s.want == "" {
			if err != nil {
				t.Errorf("after %s: %v, want nil", s.add, err)
			}
			continue
		}
		var me *MissingPackageError
		if !errors.As(err, &me) || me.Package != s.want || !errors.Is(err, ErrWordPressMissing) || !strings.Contains(err.Error(), "apt-get install "+s.want) {
			t.Errorf("after %q: %v, want a MissingPackageError naming %s", s.add, err, s.want)
		}
	}
}
