package mysql

import (
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/sitevault/sitevault/internal/testsrv"
)

func TestZZRestore(t *testing.T) {
	if os.Getenv("ZZ") == "" {
		t.Skip()
	}
	e := newEnv(t)
	postmeta(e, "wp_postmeta", 1_000_000)
	id, _ := e.backup(BackupOptions{Prefix: "wp_"})
	f, _ := os.Create("/tmp/zz.sql")
	cmd := exec.Command(testsrv.LookPath("mariadb-dump"), "--no-defaults", "-S", srv.Socket, "-uroot", "-p"+srv.RootPassword, "--single-transaction", e.db.Name)
	cmd.Stdout = f
	cmd.Run()
	f.Close()
	for range 2 {
		start := time.Now()
		e.restore(id, RestoreOptions{Prefix: "wp_", Parallel: 2})
		t.Logf("restore: %v", time.Since(start))
		in, _ := os.Open("/tmp/zz.sql")
		start = time.Now()
		cmd := exec.Command(testsrv.LookPath("mariadb"), "--no-defaults", "-S", srv.Socket, "-uroot", "-p"+srv.RootPassword, e.db.Name)
		cmd.Stdin = in
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatal(err, string(out))
		}
		in.Close()
		t.Logf("mariadb < dump: %v", time.Since(start))
	}
}
