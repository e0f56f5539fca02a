package main

import (
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
)

// startProfiling writes a CPU profile to $SITEVAULT_CPU_PROFILE and a heap
// profile to $SITEVAULT_MEM_PROFILE, if set, for the benchmarks and for
// whoever chases a slow path (go tool pprof bin/sitevault FILE). The
// returned function finishes both.
func startProfiling() (stop func()) {
	cpu, mem := os.Getenv("SITEVAULT_CPU_PROFILE"), os.Getenv("SITEVAULT_MEM_PROFILE")
	var cpuFile *os.File
	if cpu != "" {
		f, err := os.Create(cpu)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "sitevault: cpu profile:", err)
		} else {
			cpuFile = f
		}
	}
	return func() {
		if cpuFile != nil {
			pprof.StopCPUProfile()
			cpuFile.Close()
		}
		if mem != "" {
			f, err := os.Create(mem)
			if err == nil {
				runtime.GC()
				err = pprof.Lookup("allocs").WriteTo(f, 0)
				f.Close()
			}
			if err != nil {
				fmt.Fprintln(os.Stderr, "sitevault: memory profile:", err)
			}
		}
	}
}
