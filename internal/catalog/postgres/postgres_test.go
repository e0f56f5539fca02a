package postgres

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/sitevault/sitevault/internal/catalog"
	"github.com/sitevault/sitevault/internal/catalog/catalogtest"
	"github.com/sitevault/sitevault/internal/seal"
	"github.com/sitevault/sitevault/internal/testsrv"
)

func TestMain(m *testing.M) { os.Exit(testsrv.RunWithSharedPostgres(m)) }

func open(t *testing.T, url string, sealer *seal.Sealer) *catalog.Catalog {
	t.Helper()
	c, err := Open(context.Background(), url, sealer)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestConformance(t *testing.T) {
	pg := testsrv.SharedPostgres(t)
	catalogtest.Run(t, func(t *testing.T) (*catalog.Catalog, func() *catalog.Catalog) {
		url := pg.NewDatabase(t)
		sealer, err := seal.OpenKeyFile(filepath.Join(t.TempDir(), seal.KeyFileName))
		if err != nil {
			t.Fatal(err)
		}
		return open(t, url, sealer), func() *catalog.Catalog { return open(t, url, sealer) }
	})
}

// TestConcurrentMigrations starts eight processes' worth of catalogs on
// one new database at once: the migrations run once, none fails.
func TestConcurrentMigrations(t *testing.T) {
	url := testsrv.SharedPostgres(t).NewDatabase(t)
	sealer, err := seal.OpenKeyFile(filepath.Join(t.TempDir(), seal.KeyFileName))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := Open(context.Background(), url, sealer)
			if err != nil {
				errs <- err
				return
			}
			c.Close()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	c := open(t, url, sealer)
	v, err := c.SchemaVersion(context.Background())
	if err != nil || v != len(Migrations) {
		t.Fatalf("schema version %d, %v", v, err)
	}
}

func TestRedact(t *testing.T) {
	if got := Redact("postgres://u:s3cret@db:5432/sv"); got != "postgres://u:xxxxx@db:5432/sv" {
		t.Errorf("Redact = %q", got)
	}
	if _, err := Open(context.Background(), "postgres://u:s3cret-pw@127.0.0.1:1/sv?connect_timeout=2", nil); err == nil {
		t.Error("connected to nothing")
	} else if s := err.Error(); contains(s, "s3cret-pw") {
		t.Errorf("the password is in the error: %s", s)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
