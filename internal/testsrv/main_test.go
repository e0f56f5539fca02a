package testsrv

import (
	"os"
	"testing"
)

func TestMain(m *testing.M) { os.Exit(RunWithSharedPostgres(m)) }
