package mysql

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/sitevault/sitevault/internal/repository"
)

// damagedStore fails reads of the blobs in bad as a damaged pack does.
type damagedStore struct {
	*repository.Repository
	bad map[repository.ID]bool
}

func (s *damagedStore) WriteContent(ctx context.Context, ids []repository.ID, w io.Writer) error {
	for _, id := range ids {
		if s.bad[id] {
			return fmt.Errorf("load blob %v: %w", id.Short(), repository.ErrDamaged)
		}
	}
	return s.Repository.WriteContent(ctx, ids, w)
}

// A table whose stored rows are damaged fails alone: every other table is
// restored, the damaged one keeps its live rows and is reported.
func TestRestoreGoesOnPastDamagedTable(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.exec(
		"CREATE TABLE wp_a (id INT PRIMARY KEY, v TEXT)", "INSERT INTO wp_a SELECT seq, 'a' FROM seq_1_to_3000",
		"CREATE TABLE wp_b (id INT PRIMARY KEY, v TEXT)", "INSERT INTO wp_b SELECT seq, 'b' FROM seq_1_to_3000",
		"CREATE TABLE wp_c (id INT PRIMARY KEY, v TEXT)", "INSERT INTO wp_c SELECT seq, 'c' FROM seq_1_to_3000",
	)
	id, _ := e.backup(BackupOptions{Prefix: "wp_"})
	backedUp := e.checksums()
	e.exec("UPDATE wp_a SET v = 'changed'", "UPDATE wp_b SET v = 'changed'", "UPDATE wp_c SET v = 'changed'")
	changed := e.checksums()

	m, err := LoadManifest(ctx, e.repo, id)
	if err != nil {
		t.Fatal(err)
	}
	st := &damagedStore{Repository: e.repo, bad: map[repository.ID]bool{}}
	for _, seg := range m.Table("wp_b").Segments {
		st.bad[seg.Content[0]] = true
	}
	rep, err := Restore(ctx, e.cfg, st, id, RestoreOptions{Prefix: "wp_"})
	if err != nil {
		t.Fatalf("Restore stopped at the damaged table: %v", err)
	}
	got := e.checksums()
	for _, tbl := range []string{"wp_a", "wp_c"} {
		if got[tbl] != backedUp[tbl] {
			t.Errorf("%s not restored", tbl)
		}
	}
	if got["wp_b"] != changed["wp_b"] {
		t.Errorf("wp_b (damaged in the point) changed: it must keep its live rows")
	}
	if len(rep.Failed) != 1 || rep.Failed[0].Table != "wp_b" || !errors.Is(rep.Failed[0], repository.ErrDamaged) {
		t.Errorf("failed = %v, want wp_b damaged", rep.Failed)
	}
	if slices.Contains(rep.Tables, "wp_b") || slices.Contains(rep.Removed, "wp_b") {
		t.Errorf("wp_b reported restored %v or removed %v", rep.Tables, rep.Removed)
	}
	for name := range got {
		if strings.HasPrefix(name, tmpPrefix) || strings.HasPrefix(name, oldPrefix) {
			t.Errorf("temporary table left: %s", name)
		}
	}
}
