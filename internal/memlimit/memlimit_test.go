package memlimit

import (
	"math"
	"os"
	"runtime/debug"
	"testing"
)

// current reads the limit without changing it.
func current() int64 { return debug.SetMemoryLimit(-1) }

func TestLimit(t *testing.T) {
	saved := current()
	t.Cleanup(func() { debug.SetMemoryLimit(saved) })
	env, had := os.LookupEnv(Env)
	os.Unsetenv(Env)
	t.Cleanup(func() {
		if had {
			os.Setenv(Env, env)
		}
	})

	ForIndex(0)
	if got := current(); got != Work {
		t.Errorf("ForIndex(0): limit %d, want %d", got, Work)
	}
	ForIndex(1_000_000)
	if got, want := current(), int64(Work+1_000_000*PerBlob); got != want {
		t.Errorf("ForIndex(1e6): limit %d, want %d", got, want)
	}
	Lift()
	if got := current(); got != math.MaxInt64 {
		t.Errorf("Lift: limit %d, want none", got)
	}

	// GOMEMLIMIT wins: neither call changes the limit the runtime set.
	debug.SetMemoryLimit(64 << 20)
	t.Setenv(Env, "64MiB")
	ForIndex(10)
	Lift()
	if got := current(); got != 64<<20 {
		t.Errorf("with GOMEMLIMIT set: limit %d, want 64 MiB", got)
	}
}
