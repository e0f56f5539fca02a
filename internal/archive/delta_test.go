package archive

import (
	"context"
	"testing"
	"time"

	"github.com/sitevault/sitevault/internal/mysql"
	"github.com/sitevault/sitevault/internal/repository"
	"github.com/sitevault/sitevault/internal/site"
)

// A download of a point whose database segments hold deltas (rows changed
// since their base, see mysql.SegmentSQL) writes each table as one plain
// file of the merged rows; importing it and restoring gives the tables as
// they were at that point.
func TestDownloadMergesDeltas(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for _, s := range []string{
		"SET SESSION sql_mode = ''",
		"UPDATE wp_posts SET post_title = CONCAT('Changed ', ID, ' ☃') WHERE ID % 7 = 0",
		"DELETE FROM wp_posts WHERE ID % 11 = 0",
		"UPDATE wp_options SET option_value = 'http://moved.test' WHERE option_id = 1",
	} {
		_, err := f.root.Exec(s)
		must(t, err)
	}
	f.sums = checksums(t, f.root, f.db.Name)
	cfg := mysql.Config{Addr: srv.Addr, User: f.db.User, Password: f.db.Password, Database: f.db.Name}
	dbID, rep, err := mysql.Backup(ctx, cfg, f.repo, mysql.BackupOptions{Prefix: "wp_", SegmentSize: 8 << 10, Previous: &f.dbID})
	must(t, err)
	if n, _ := rep.Patched(); n < 2 {
		t.Fatalf("%d segments updated row by row, want several", n)
	}
	filesID, err := site.FilesTree(ctx, f.repo, f.sn)
	must(t, err)
	rootID, err := site.SaveRoot(ctx, f.repo, &filesID, &dbID, time.Now())
	must(t, err)
	f.sn = &repository.Snapshot{Time: time.Now(), Site: "example", Trigger: "manual", Tree: rootID, Meta: f.sn.Meta}
	_, err = f.repo.SaveSnapshot(ctx, f.sn)
	must(t, err)

	for _, format := range []Format{TarGz, Zip} {
		t.Run(format.String(), func(t *testing.T) {
			path := f.write(t, format)
			sn, err := Import(ctx, f.repo, path, "copy", ImportOptions{TablePrefix: "wp_"})
			must(t, err)
			rootTree, err := f.repo.LoadTree(ctx, sn.Tree)
			must(t, err)
			dbNode := rootTree.Find(site.DatabaseNode)
			if dbNode == nil || dbNode.Subtree == nil {
				t.Fatal("no database in the imported point")
			}
			db := srv.CreateDatabase(t)
			cfg := mysql.Config{Addr: srv.Addr, User: db.User, Password: db.Password, Database: db.Name}
			_, err = mysql.Restore(ctx, cfg, f.repo, *dbNode.Subtree, mysql.RestoreOptions{Prefix: "wp_"})
			must(t, err)
			sameSums(t, f.sums, checksums(t, srv.RootDB(t, db.Name), db.Name))
		})
	}
}
