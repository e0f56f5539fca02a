package mysql

import (
	"context"
	"errors"
	"testing"

	"github.com/sitevault/sitevault/internal/repository"
)

// TestRestoreRefusesForeignNames: a restore point (say, from a hostile
// archive) that names a table, view or trigger outside the site's prefix,
// or a trigger on another table, is refused before anything changes; an
// empty prefix is refused unless the site's prefix truly is empty.
func TestRestoreRefusesForeignNames(t *testing.T) {
	e := newEnv(t)
	e.exec("CREATE TABLE wp_a (id INT PRIMARY KEY)", "INSERT INTO wp_a VALUES (1)",
		"CREATE TABLE wp_log (id INT AUTO_INCREMENT PRIMARY KEY)",
		"CREATE TRIGGER wp_a_ai AFTER INSERT ON wp_a FOR EACH ROW INSERT INTO wp_log VALUES ()",
		"CREATE VIEW wp_v AS SELECT id FROM wp_a")
	id, _ := e.backup(BackupOptions{Prefix: "wp_"})
	e.exec("CREATE TABLE other_a (id INT PRIMARY KEY)", "INSERT INTO other_a VALUES (7)")
	want := e.checksums()
	ctx := context.Background()
	tamper := func(f func(m *Manifest)) repository.ID {
		m, err := LoadManifest(ctx, e.repo, id)
		if err != nil {
			t.Fatal(err)
		}
		f(m)
		bad, err := m.Save(ctx, e.repo)
		if err != nil {
			t.Fatal(err)
		}
		e.repo.Flush(ctx)
		return bad
	}
	cases := map[string]func(m *Manifest){
		"table without prefix": func(m *Manifest) {
			ta := m.Table("wp_a")
			ta.Name, ta.Create, ta.Triggers = "other_a", "CREATE TABLE `other_a` (\n  `id` int(11) NOT NULL,\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB", nil
		},
		"create for another table": func(m *Manifest) {
			m.Table("wp_a").Create = "CREATE TABLE `other_a` (\n  `id` int(11) NOT NULL,\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB"
		},
		"trigger on another table": func(m *Manifest) {
			m.Table("wp_a").Triggers = []string{"CREATE TRIGGER wp_x BEFORE INSERT ON other_a FOR EACH ROW SET NEW.id = 0"}
		},
		"trigger on a qualified table": func(m *Manifest) {
			m.Table("wp_a").Triggers = []string{"CREATE TRIGGER wp_x BEFORE INSERT ON `db`.`wp_a` FOR EACH ROW SET NEW.id = 0"}
		},
		"trigger without prefix": func(m *Manifest) {
			m.Table("wp_a").Triggers = []string{"CREATE TRIGGER other_x BEFORE INSERT ON wp_a FOR EACH ROW SET NEW.id = 0"}
		},
		"view without prefix": func(m *Manifest) {
			m.Views = []View{{Name: "other_v", Create: "CREATE VIEW `other_v` AS SELECT 1"}}
		},
		"view statement for another view": func(m *Manifest) {
			m.Views = []View{{Name: "wp_v", Create: "CREATE OR REPLACE VIEW `other_a` AS SELECT 1"}}
		},
		"temporary name": func(m *Manifest) {
			ta := m.Table("wp_a")
			ta.Name = tmpPrefix + "x"
			ta.Create = "CREATE TABLE `" + ta.Name + "` (\n  `id` int(11) NOT NULL,\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB"
		},
	}
	for name, f := range cases {
		bad := tamper(f)
		_, err := Restore(ctx, e.cfg, e.repo, bad, RestoreOptions{Prefix: "wp_"})
		if !errors.Is(err, ErrForeignName) {
			t.Errorf("%s: restore: %v, want ErrForeignName", name, err)
		}
		sameSums(t, want, e.checksums())
	}
	// An empty prefix: refused, for single tables too, unless the site's
	// prefix truly is empty.
	for _, tables := range [][]string{nil, {"wp_a"}} {
		if _, err := Restore(ctx, e.cfg, e.repo, id, RestoreOptions{Tables: tables}); !errors.Is(err, ErrNoPrefix) {
			t.Errorf("restore %v with an empty prefix: %v, want ErrNoPrefix", tables, err)
		}
	}
	if _, err := Restore(ctx, e.cfg, e.repo, id, RestoreOptions{Tables: []string{"wp_a"}, EmptyPrefix: true}); err != nil {
		t.Errorf("restore with a truly empty prefix: %v", err)
	}
	// The untampered point restores, trigger and view included.
	e.restore(id, RestoreOptions{Prefix: "wp_"})
	if n := e.count("SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE()"); n != 1 {
		t.Errorf("%d triggers after restore", n)
	}
}
