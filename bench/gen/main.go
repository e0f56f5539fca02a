// Command gen writes a deterministic WordPress-like tree for the
// benchmarks: about half the bytes are incompressible media (random bytes
// behind JPEG/PNG/MP4 headers, in uploads and themes), half PHP/JS/CSS-like
// text drawn from a shared vocabulary of lines and blocks, as plugins share
// code; vendor libraries are copied byte for byte into several plugins, so
// whole files repeat across the tree. The same seed and sizes always give
// the same bytes.
//
//	go run ./bench/gen -out /tmp/sitevault-bench/tree [-seed 1] [-size 1.1GiB] [-files 32000]
package main

import (
	"bufio"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

func main() {
	out := flag.String("out", "", "directory to write the tree into (must not exist, or be empty)")
	seed := flag.Uint64("seed", 1, "seed: the same seed gives the same tree")
	size := flag.String("size", "1.1GiB", "total bytes (suffixes KiB, MiB, GiB)")
	files := flag.Int("files", 32000, "number of files")
	workers := flag.Int("workers", 2, "files written in parallel")
	flag.Parse()
	if *out == "" {
		fmt.Fprintln(os.Stderr, "gen: -out is required")
		os.Exit(2)
	}
	total, err := parseSize(*size)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(2)
	}
	if err := run(*out, *seed, total, *files, *workers); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func parseSize(s string) (int64, error) {
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		m      int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSuffix(s, u.suffix), u.m
			break
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f <= 0 {
		return 0, fmt.Errorf("invalid size %q", s)
	}
	return int64(f * float64(mult)), nil
}

type kind int

const (
	text kind = iota
	media
)

// entry is one file to write. Entries with the same content seed and size
// hold the same bytes (vendor libraries copied into several plugins).
type entry struct {
	path    string
	kind    kind
	ext     string
	content uint64 // seed of the bytes
	size    int64
}

func run(out string, seed uint64, total int64, nfiles, workers int) error {
	start := time.Now()
	plan := makePlan(seed, total, nfiles)
	voc := newVocabulary(seed)

	var sum int64
	for _, e := range plan {
		sum += e.size
	}
	fmt.Fprintf(os.Stderr, "gen: writing %d files, %.2f GiB, into %s\n", len(plan), float64(sum)/(1<<30), out)

	mtime := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	work := make(chan *entry)
	errc := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 0, 1<<20)
			for e := range work {
				if err := writeEntry(out, e, voc, &buf, mtime); err != nil {
					errc <- err
					for range work {
					}
					return
				}
			}
		}()
	}
	for i := range plan {
		work <- &plan[i]
	}
	close(work)
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
	}
	fmt.Fprintf(os.Stderr, "gen: done in %s\n", time.Since(start).Round(time.Millisecond))
	return nil
}

func writeEntry(out string, e *entry, voc *vocabulary, buf *[]byte, mtime time.Time) error {
	p := filepath.Join(out, filepath.FromSlash(e.path))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	switch e.kind {
	case media:
		err = writeMedia(w, e)
	default:
		err = voc.writeText(w, e, buf)
	}
	if err == nil {
		err = w.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	return os.Chtimes(p, mtime, mtime.Add(time.Duration(e.content%86400)*time.Second))
}

var mediaHeaders = map[string][]byte{
	".jpg": {0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, 'J', 'F', 'I', 'F', 0x00},
	".png": {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'},
	".mp4": {0, 0, 0, 0x20, 'f', 't', 'y', 'p', 'i', 's', 'o', 'm'},
	".pdf": []byte("%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"),
}

// writeMedia writes a header and random bytes: media does not compress.
func writeMedia(w *bufio.Writer, e *entry) error {
	var key [32]byte
	for i := range 4 {
		v := e.content + uint64(i)*0x9E3779B97F4A7C15
		for j := range 8 {
			key[i*8+j] = byte(v >> (8 * j))
		}
	}
	rng := rand.NewChaCha8(key)
	h := mediaHeaders[e.ext]
	n := min(int64(len(h)), e.size)
	if _, err := w.Write(h[:n]); err != nil {
		return err
	}
	left := e.size - n
	chunk := make([]byte, 64<<10)
	for left > 0 {
		c := chunk[:min(int64(len(chunk)), left)]
		rng.Read(c)
		if _, err := w.Write(c); err != nil {
			return err
		}
		left -= int64(len(c))
	}
	return nil
}

// vocabulary is the shared code every text file draws from: lines built
// from tokens, blocks (functions, rules) built from lines.
type vocabulary struct {
	lines  []string
	blocks [][]int // line indexes
	zipf   *rand.Zipf
	mu     sync.Mutex
}

var tokens = strings.Fields(`function return if else elseif foreach while for array echo
 $this $post $args $options $wpdb $query $result $value $key $item $data $settings $user $id
 add_action add_filter apply_filters do_action get_option update_option wp_enqueue_script
 wp_enqueue_style esc_html esc_attr esc_url __ _e sanitize_text_field wp_nonce_field isset
 empty null true false new class public private protected static const var let document
 window jQuery $ .each .on .ajax .addClass .removeClass margin padding display flex none block
 color background border font-size width height 0 1 2 10 100 px em rem % ( ) { } [ ] ; , = == ===
 != !== && || -> => :: . + - * / < > <= >= 'title' 'content' 'excerpt' 'meta' 'nonce' 'admin'
 "widget" "button" "form" "input" "label" "select" "option" 'the_content' 'init' 'wp_head'`)

func newVocabulary(seed uint64) *vocabulary {
	rng := rand.New(rand.NewPCG(seed, 0x766f6361))
	v := &vocabulary{}
	const nlines, nblocks = 40000, 6000
	for range nlines {
		var b strings.Builder
		b.WriteString(strings.Repeat("\t", rng.IntN(4)))
		for n := 2 + rng.IntN(12); n > 0; n-- {
			b.WriteString(tokens[rng.IntN(len(tokens))])
			b.WriteByte(' ')
		}
		if rng.IntN(4) == 0 {
			fmt.Fprintf(&b, "$%s_%x", tokens[rng.IntN(len(tokens))][:1], rng.Uint32()&0xffff)
		}
		b.WriteByte('\n')
		v.lines = append(v.lines, b.String())
	}
	lz := rand.NewZipf(rng, 1.1, 4, nlines-1)
	for range nblocks {
		blk := make([]int, 4+rng.IntN(60))
		for i := range blk {
			blk[i] = int(lz.Uint64())
		}
		v.blocks = append(v.blocks, blk)
	}
	v.zipf = rand.NewZipf(rand.New(rand.NewPCG(seed, 1)), 1.05, 8, nblocks-1)
	return v
}

// writeText writes e.size bytes of code: blocks from the shared vocabulary
// (popular ones often), with a few lines unique to the file.
func (v *vocabulary) writeText(w *bufio.Writer, e *entry, bufp *[]byte) error {
	rng := rand.New(rand.NewPCG(e.content, 0x74657874))
	zipf := rand.NewZipf(rng, 1.05, 8, uint64(len(v.blocks)-1))
	buf := (*bufp)[:0]
	switch e.ext {
	case ".php":
		buf = append(buf, "<?php\n"...)
	case ".js":
		buf = append(buf, "(function($){\n'use strict';\n"...)
	}
	buf = fmt.Appendf(buf, "/* %s %x */\n", e.ext, e.content)
	for int64(len(buf)) < e.size {
		if rng.IntN(8) == 0 {
			buf = fmt.Appendf(buf, "\t$v%x = '%x%x';\n", rng.Uint32(), rng.Uint64(), rng.Uint64())
			continue
		}
		for _, li := range v.blocks[zipf.Uint64()] {
			buf = append(buf, v.lines[li]...)
		}
	}
	buf = buf[:e.size]
	*bufp = buf
	_, err := w.Write(buf)
	return err
}

// makePlan lays out the tree: plugins (own code + shared vendor
// libraries), themes (code + images), uploads (media by year and month),
// languages, and a few root files. Sizes are drawn, then scaled so that
// text and media each hold about half of total.
func makePlan(seed uint64, total int64, nfiles int) []entry {
	rng := rand.New(rand.NewPCG(seed, 0x706c616e))
	next := uint64(seed) << 32
	newContent := func() uint64 { next++; return next*0x9E3779B97F4A7C15 + 1 }
	textSize := func() int64 { // log-normal around 6 KiB
		return int64(math.Exp(rng.NormFloat64()*1.2 + math.Log(6<<10)))
	}
	mediaSize := func() int64 { // log-uniform 8 KiB … 4 MiB
		return int64(math.Exp(math.Log(8<<10) + rng.Float64()*(math.Log(4<<20)-math.Log(8<<10))))
	}
	textExts := []string{".php", ".php", ".php", ".js", ".js", ".css", ".json", ".txt", ".html"}

	nmedia := nfiles / 8
	ntext := nfiles - nmedia
	var plan []entry

	// Root files.
	for _, name := range []string{"wp-config.php", ".htaccess", "robots.txt", "index.php", "wp-cli.yml"} {
		plan = append(plan, entry{path: name, kind: text, ext: filepath.Ext(name), content: newContent(), size: 1 + textSize()/4})
	}

	// Vendor libraries, copied into several plugins.
	type lib struct {
		name  string
		files []entry
	}
	var libs []lib
	for i := range 40 {
		l := lib{name: fmt.Sprintf("lib-%02d", i)}
		for j := range 30 + rng.IntN(90) {
			ext := textExts[rng.IntN(len(textExts))]
			l.files = append(l.files, entry{
				path: fmt.Sprintf("src/%s/file-%03d%s", []string{"Core", "Http", "Util", "Model"}[j%4], j, ext),
				kind: text, ext: ext, content: newContent(), size: textSize(),
			})
		}
		libs = append(libs, l)
	}
	addText := func(dir string, n int) {
		for j := range n {
			ext := textExts[rng.IntN(len(textExts))]
			sub := []string{"includes", "admin", "public", "assets/js", "assets/css", "templates", "languages"}[rng.IntN(7)]
			plan = append(plan, entry{path: fmt.Sprintf("%s/%s/f%04d%s", dir, sub, j, ext), kind: text, ext: ext, content: newContent(), size: textSize()})
		}
	}
	countText := func() int {
		n := 0
		for _, e := range plan {
			if e.kind == text {
				n++
			}
		}
		return n
	}

	// Themes: code plus a few images each.
	for i := range 8 {
		dir := fmt.Sprintf("wp-content/themes/theme-%02d", i)
		addText(dir, 80+rng.IntN(200))
		for j := range 10 + rng.IntN(20) {
			ext := []string{".jpg", ".png"}[rng.IntN(2)]
			plan = append(plan, entry{path: fmt.Sprintf("%s/assets/img/img-%03d%s", dir, j, ext), kind: media, ext: ext, content: newContent(), size: mediaSize()})
		}
	}
	// Languages.
	addText("wp-content/languages", 200)

	// Plugins until the text budget is spent.
	for i := 0; countText() < ntext; i++ {
		dir := fmt.Sprintf("wp-content/plugins/plugin-%03d", i)
		plan = append(plan, entry{path: dir + "/" + fmt.Sprintf("plugin-%03d.php", i), kind: text, ext: ".php", content: newContent(), size: textSize()})
		addText(dir, 40+rng.IntN(300))
		for _, li := range rng.Perm(len(libs))[:rng.IntN(4)] {
			l := libs[li]
			for _, f := range l.files {
				f.path = dir + "/vendor/" + l.name + "/" + f.path
				plan = append(plan, f)
			}
		}
	}
	// Trim text entries past the budget (from the end: the last plugin).
	for countText() > ntext {
		for k := len(plan) - 1; k >= 0; k-- {
			if plan[k].kind == text {
				plan = append(plan[:k], plan[k+1:]...)
				break
			}
		}
	}

	// Uploads: media by month, with resized copies (different bytes) and a few videos.
	for n := len(plan) - ntext; n < nmedia; {
		y, m := 2018+rng.IntN(7), 1+rng.IntN(12)
		dir := fmt.Sprintf("wp-content/uploads/%d/%02d", y, m)
		ext := []string{".jpg", ".jpg", ".jpg", ".png", ".pdf", ".mp4"}[rng.IntN(6)]
		size := mediaSize()
		if ext == ".mp4" {
			size *= 4
		}
		plan = append(plan, entry{path: fmt.Sprintf("%s/upload-%05d%s", dir, n, ext), kind: media, ext: ext, content: newContent(), size: size})
		n++
		if ext == ".jpg" && n < nmedia {
			plan = append(plan, entry{path: fmt.Sprintf("%s/upload-%05d-150x150%s", dir, n-1, ext), kind: media, ext: ext, content: newContent(), size: 4<<10 + size/20})
			n++
		}
	}

	// Scale each half to its budget. Copies share a content seed and
	// therefore must share a size: scale by content, not by entry.
	var sums [2]int64
	for _, e := range plan {
		sums[e.kind] += e.size
	}
	budget := [2]int64{total - total/2, total / 2}
	for i := range plan {
		e := &plan[i]
		e.size = max(1, int64(float64(e.size)*float64(budget[e.kind])/float64(sums[e.kind])))
	}
	sort.Slice(plan, func(i, j int) bool { return plan[i].path < plan[j].path })
	return plan
}
