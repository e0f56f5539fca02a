// Command sftpsite starts what bench/sftp.sh backs a site up from: a private
// OpenSSH sshd on loopback (as the tests start one) and a private MariaDB
// holding a small WordPress database, and writes a wp-config.php for that
// database into the site folder. It writes shell assignments (SSH_USER,
// SSH_ADDR, SSH_KEY) to -env, then serves until its standard input closes,
// and stops both servers.
//
//	go run ./bench/sftpsite -site DIR -env FILE <fifo
package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"strings"

	driver "github.com/go-sql-driver/mysql"
	"github.com/sitevault/sitevault/internal/mysql"
	"github.com/sitevault/sitevault/internal/testsrv"
)

func main() {
	site := flag.String("site", "", "the site folder (gets a wp-config.php)")
	env := flag.String("env", "", "file to write the connection settings to")
	flag.Parse()
	if *site == "" || *env == "" {
		log.Fatal("sftpsite: -site and -env are required")
	}
	if err := run(*site, *env); err != nil {
		log.Fatalf("sftpsite: %v", err)
	}
}

func run(site, env string) error {
	ctx := context.Background()
	db, stopDB, err := testsrv.StartMariaDBMain()
	if err != nil {
		return err
	}
	defer stopDB()
	sshd, err := testsrv.StartSSHDMain()
	if err != nil {
		return err
	}
	defer sshd.Stop()

	root, err := db.Root()
	if err != nil {
		return err
	}
	defer root.Close()
	w := &testsrv.WordPress{
		Root: site, Prefix: "wp_", DBHost: db.Addr,
		DB: testsrv.MariaDBDatabase{Name: "sv_bench", User: "sv_bench", Password: "bench-db-password"},
	}
	for _, q := range []string{
		"CREATE DATABASE sv_bench CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci",
		"CREATE USER 'sv_bench'@'%' IDENTIFIED BY '" + w.DB.Password + "'",
		"GRANT ALL ON sv_bench.* TO 'sv_bench'@'%'",
	} {
		if _, err := root.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	// A small WordPress database (20,000 postmeta rows, about 2 MB of SQL): the files dominate.
	dc := driver.NewConfig()
	dc.Net, dc.Addr, dc.User, dc.Passwd, dc.DBName = "unix", db.Socket, "root", db.RootPassword, "sv_bench"
	connector, err := driver.NewConnector(dc)
	if err != nil {
		return err
	}
	dbw := sql.OpenDB(connector)
	defer dbw.Close()
	if err := mysql.GenerateWordPress(ctx, dbw, "wp_", 20000); err != nil {
		return fmt.Errorf("generate the database: %w", err)
	}
	if err := os.WriteFile(filepath.Join(site, "wp-config.php"), []byte(w.Config()), 0o640); err != nil {
		return err
	}
	vars := strings.Join([]string{
		"SSH_USER=" + sshd.User,
		"SSH_ADDR=" + sshd.Addr,
		"SSH_KEY=" + sshd.ClientKeyFile,
		"",
	}, "\n")
	if err := os.WriteFile(env, []byte(vars), 0o600); err != nil {
		return err
	}
	io.Copy(io.Discard, os.Stdin)
	return nil
}
