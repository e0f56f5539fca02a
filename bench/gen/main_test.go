package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestPlan(t *testing.T) {
	const total, files = 64 << 20, 4000
	plan := makePlan(1, total, files)
	if len(plan) != files {
		t.Errorf("%d files, want %d", len(plan), files)
	}
	var sum [2]int64
	paths := map[string]bool{}
	for _, e := range plan {
		sum[e.kind] += e.size
		if paths[e.path] {
			t.Fatalf("path %s twice", e.path)
		}
		paths[e.path] = true
	}
	if all := sum[text] + sum[media]; all < total*99/100 || all > total*101/100 {
		t.Errorf("%d bytes, want about %d", all, total)
	}
	if sum[media] < total*45/100 || sum[media] > total*55/100 {
		t.Errorf("media is %d of %d bytes, want about half", sum[media], total)
	}
	again := makePlan(1, total, files)
	for i := range plan {
		if plan[i] != again[i] {
			t.Fatalf("plan differs at %d: %+v vs %+v", i, plan[i], again[i])
		}
	}
}

func TestDeterministic(t *testing.T) {
	dirs := []string{filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")}
	for _, d := range dirs {
		if err := run(d, 7, 4<<20, 300, 2); err != nil {
			t.Fatal(err)
		}
	}
	err := filepath.WalkDir(dirs[0], func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dirs[0], p)
		a, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		b, err := os.ReadFile(filepath.Join(dirs[1], rel))
		if err != nil {
			return err
		}
		if string(a) != string(b) {
			t.Errorf("%s differs between two runs with the same seed", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
