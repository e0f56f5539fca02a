package archive

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"

	"github.com/sitevault/sitevault/internal/mysql"
	"github.com/sitevault/sitevault/internal/repository"
)

// maxStatement bounds the statements a table file's parser holds in memory
// (CREATE TABLE, a trigger, a view); rows are streamed, never held.
const maxStatement = 64 << 20

// lineReader reads a file line by line through a fixed buffer.
type lineReader struct {
	br   *bufio.Reader
	file string
	line int
}

func newLineReader(r io.Reader, file string) *lineReader {
	return &lineReader{br: bufio.NewReaderSize(r, 1<<20), file: file}
}

// full returns the next whole line (with its newline, if any), or io.EOF.
func (lr *lineReader) full() ([]byte, error) {
	var acc []byte
	for {
		frag, err := lr.br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			if len(acc)+len(frag) > maxStatement {
				return nil, lr.errorf("line longer than %d MiB", maxStatement>>20)
			}
			acc = append(acc, frag...)
			continue
		}
		if acc != nil {
			frag = append(acc, frag...)
		}
		if err == io.EOF {
			if len(frag) == 0 {
				return nil, io.EOF
			}
			err = nil
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", lr.file, err)
		}
		lr.line++
		return frag, nil
	}
}

func (lr *lineReader) errorf(format string, args ...any) error {
	return fmt.Errorf("%s line %d: %w: %s", lr.file, lr.line, ErrBadSQL, fmt.Sprintf(format, args...))
}

// isNoise tells the lines a parser skips between statements: blank lines,
// comments and the /*!…*/ session settings a dump opens and closes with.
func isNoise(line []byte) bool {
	t := bytes.TrimSpace(line)
	return len(t) == 0 || bytes.HasPrefix(t, []byte("--")) || bytes.HasPrefix(t, []byte("#")) ||
		(bytes.HasPrefix(t, []byte("/*!")) && bytes.HasSuffix(t, []byte("*/;")))
}

// statement accumulates lines until a statement ends with delim (outside
// quotes and comments). It returns the statement without the delimiter.
func (lr *lineReader) statement(first []byte, delim string) (string, error) {
	acc := append([]byte(nil), first...)
	for {
		if end := stmtEnd(acc, delim); end >= 0 {
			if rest := bytes.TrimSpace(acc[end+len(delim):]); len(rest) > 0 {
				return "", lr.errorf("text after the end of a statement: %.60q", rest)
			}
			return string(bytes.TrimSpace(acc[:end])), nil
		}
		line, err := lr.full()
		if err == io.EOF {
			return "", lr.errorf("file ends inside a statement")
		}
		if err != nil {
			return "", err
		}
		if len(acc)+len(line) > maxStatement {
			return "", lr.errorf("statement longer than %d MiB", maxStatement>>20)
		}
		acc = append(acc, line...)
	}
}

// Scanner states, as the mysql client reads SQL text.
const (
	inCode = iota
	inSingle
	inDouble
	inBacktick
	inLineComment
	inBlockComment
)

// stmtEnd returns the index of the first delim in s outside quotes and
// comments, or -1.
func stmtEnd(s []byte, delim string) int {
	st := inCode
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch st {
		case inCode:
			switch {
			case bytes.HasPrefix(s[i:], []byte(delim)):
				return i
			case c == '\'':
				st = inSingle
			case c == '"':
				st = inDouble
			case c == '`':
				st = inBacktick
			case c == '#':
				st = inLineComment
			case c == '-' && i+2 < len(s) && s[i+1] == '-' && (s[i+2] == ' ' || s[i+2] == '\t' || s[i+2] == '\n' || s[i+2] == '\r'):
				st = inLineComment
			case c == '/' && i+1 < len(s) && s[i+1] == '*':
				st = inBlockComment
				i++
			}
		case inSingle, inDouble:
			if c == '\\' {
				i++
			} else if (c == '\'' && st == inSingle) || (c == '"' && st == inDouble) {
				st = inCode
			}
		case inBacktick:
			if c == '`' {
				st = inCode
			}
		case inLineComment:
			if c == '\n' {
				st = inCode
			}
		case inBlockComment:
			if c == '*' && i+1 < len(s) && s[i+1] == '/' {
				st = inCode
				i++
			}
		}
	}
	return -1
}

// insertColumnList renders "(`a`,`b`) VALUES " as insertColumns reads it.
func insertColumnList(cols []string) string {
	q := make([]string, len(cols))
	for i, c := range cols {
		q[i] = quoteIdent(c)
	}
	return "(" + strings.Join(q, ",") + ") VALUES "
}

// segmentSession is what a segment holds besides its INSERTs: the session
// settings that make it loadable by the mysql client (mysql's
// segmentHeader and segmentFooter). Restore never runs them; Import keeps
// only these exact lines among the rows, so a download of the imported
// point holds nothing else either.
var segmentSession = map[string]bool{
	"/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT, @OLD_CHARACTER_SET_RESULTS=@@CHARACTER_SET_RESULTS, @OLD_COLLATION_CONNECTION=@@COLLATION_CONNECTION */;": true,
	"/*!40101 SET NAMES binary */;":                                                       true,
	"/*!40103 SET @OLD_TIME_ZONE=@@TIME_ZONE, TIME_ZONE='+00:00' */;":                     true,
	"/*!40014 SET @OLD_UNIQUE_CHECKS=@@UNIQUE_CHECKS, UNIQUE_CHECKS=0 */;":                true,
	"/*!40014 SET @OLD_FOREIGN_KEY_CHECKS=@@FOREIGN_KEY_CHECKS, FOREIGN_KEY_CHECKS=0 */;": true,
	"/*!40101 SET @OLD_SQL_MODE=@@SQL_MODE, SQL_MODE='NO_AUTO_VALUE_ON_ZERO' */;":         true,
	"/*!40101 SET SQL_MODE=@OLD_SQL_MODE */;":                                             true,
	"/*!40014 SET FOREIGN_KEY_CHECKS=@OLD_FOREIGN_KEY_CHECKS */;":                         true,
	"/*!40014 SET UNIQUE_CHECKS=@OLD_UNIQUE_CHECKS */;":                                   true,
	"/*!40103 SET TIME_ZONE=@OLD_TIME_ZONE */;":                                           true,
	"/*!40101 SET CHARACTER_SET_CLIENT=@OLD_CHARACTER_SET_CLIENT, CHARACTER_SET_RESULTS=@OLD_CHARACTER_SET_RESULTS, COLLATION_CONNECTION=@OLD_COLLATION_CONNECTION */;": true,
}

// rowNoise tells the lines allowed among the rows besides INSERTs: blank
// lines, "--" comments and the segments' session settings.
func rowNoise(line []byte) bool {
	t := bytes.TrimSpace(line)
	return len(t) == 0 || bytes.HasPrefix(t, []byte("-- ")) || bytes.Equal(t, []byte("--")) || segmentSession[string(t)]
}

// parseIdent reads a backtick-quoted identifier at the start of s and
// returns it and its length in s.
func parseIdent(s string) (string, int, bool) {
	if !strings.HasPrefix(s, "`") {
		return "", 0, false
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		if s[i] != '`' {
			b.WriteByte(s[i])
			continue
		}
		if i+1 < len(s) && s[i+1] == '`' {
			b.WriteByte('`')
			i++
			continue
		}
		return b.String(), i + 1, true
	}
	return "", 0, false
}

// insertColumns reads the column list "(`a`,`b`) VALUES " that starts s.
func insertColumns(s string) ([]string, bool) {
	if !strings.HasPrefix(s, "(") {
		return nil, false
	}
	s = s[1:]
	var cols []string
	for {
		col, n, ok := parseIdent(s)
		if !ok {
			return nil, false
		}
		cols = append(cols, col)
		s = s[n:]
		switch {
		case strings.HasPrefix(s, ","):
			s = s[1:]
		case strings.HasPrefix(s, ") VALUES "):
			return cols, true
		default:
			return nil, false
		}
	}
}

var (
	triggerRe = regexp.MustCompile("(?is)^CREATE\\s+(?:DEFINER\\s*=\\s*\\S+\\s+)?TRIGGER\\s")
	viewRe    = regexp.MustCompile("(?is)^CREATE\\s+(?:OR\\s+REPLACE\\s+)?(?:ALGORITHM\\s*=\\s*\\w+\\s+)?(?:DEFINER\\s*=\\s*\\S+\\s+)?(?:SQL\\s+SECURITY\\s+\\w+\\s+)?VIEW\\s+")
	engineRe  = regexp.MustCompile(`\bENGINE=(\w+)`)
)

// segSaver streams one segment's SQL into the repository.
type segSaver struct {
	pw   *io.PipeWriter
	bw   *bufio.Writer
	done chan error
	seg  *mysql.Segment
	size int64
}

func startSegment(ctx context.Context, st mysql.Store) *segSaver {
	pr, pw := io.Pipe()
	s := &segSaver{pw: pw, bw: bufio.NewWriterSize(pw, 256<<10), done: make(chan error, 1), seg: &mysql.Segment{}}
	go func() {
		ids, size, err := st.SaveStream(ctx, pr)
		pr.CloseWithError(err)
		s.seg.Content, s.seg.Size = ids, size
		s.done <- err
	}()
	return s
}

func (s *segSaver) write(b []byte) error {
	n, err := s.bw.Write(b)
	s.size += int64(n)
	return err
}

func (s *segSaver) finish() (*mysql.Segment, error) {
	if err := s.bw.Flush(); err != nil {
		s.abort(err)
		return nil, err
	}
	s.pw.Close()
	if err := <-s.done; err != nil {
		return nil, fmt.Errorf("save segment: %w", err)
	}
	if s.seg.Content == nil {
		s.seg.Content = []repository.ID{}
	}
	return s.seg, nil
}

func (s *segSaver) abort(err error) {
	if err == nil {
		err = errors.New("import abandoned")
	}
	s.pw.CloseWithError(err)
	<-s.done
}

// parseTable reads a table file of a download and stores its rows as
// segments, cut where the segment markers are (or about every
// mysql.DefaultSegmentSize bytes of rows when a file has none). The rows
// are streamed; only the statements of the schema are held.
func parseTable(ctx context.Context, st mysql.Store, r io.Reader, file string) (_ *mysql.TableManifest, err error) {
	lr := newLineReader(r, file)
	t := &mysql.TableManifest{}
	var drop string
	// Before the rows: settings, DROP TABLE, CREATE TABLE.
	for t.Create == "" {
		line, err := lr.full()
		if err == io.EOF {
			return nil, lr.errorf("no CREATE TABLE statement")
		}
		if err != nil {
			return nil, err
		}
		switch {
		case isNoise(line):
		case bytes.HasPrefix(line, []byte("DROP TABLE IF EXISTS ")):
			drop = string(bytes.TrimSpace(line))
		case bytes.HasPrefix(line, []byte("CREATE TABLE ")):
			if t.Create, err = lr.statement(line, ";"); err != nil {
				return nil, err
			}
		default:
			return nil, lr.errorf("unexpected statement before CREATE TABLE: %.60q", line)
		}
	}
	name, _, ok := parseIdent(t.Create[len("CREATE TABLE "):])
	if !ok || name == "" {
		return nil, lr.errorf("CREATE TABLE without a `quoted` table name")
	}
	t.Name = name
	if drop != "" && drop != "DROP TABLE IF EXISTS "+quoteIdent(name)+";" {
		return nil, lr.errorf("DROP TABLE names another table than CREATE TABLE %s", quoteIdent(name))
	}
	if _, err := checkCreate(t.Create, name, name, sameName); err != nil {
		return nil, lr.errorf("CREATE TABLE %s: %v", quoteIdent(name), err)
	}
	if m := engineRe.FindStringSubmatch(t.Create); m != nil {
		t.Engine = m[1]
	}

	// The rows, streamed into segments.
	insert := []byte("INSERT INTO " + quoteIdent(name) + " ")
	var (
		seg     *segSaver
		rows    int64
		markers bool
	)
	defer func() {
		if seg != nil && err != nil {
			seg.abort(err)
		}
	}()
	endSegment := func() error {
		if seg == nil {
			return nil
		}
		s, err := seg.finish()
		seg = nil
		if err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		s.Rows = rows
		t.Segments = append(t.Segments, s)
		rows = 0
		return nil
	}
	br := lr.br
	rowsDone := false
	for !rowsDone {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		frag, rerr := br.ReadSlice('\n')
		if len(frag) == 0 && rerr == io.EOF {
			break
		}
		if rerr != nil && rerr != io.EOF && rerr != bufio.ErrBufferFull {
			return nil, fmt.Errorf("read %s: %w", file, rerr)
		}
		lr.line++
		var values *valuesChecker
		switch {
		case bytes.HasPrefix(frag, []byte(segmentPrefix)):
			if err := endSegment(); err != nil {
				return nil, err
			}
			markers = true
			seg = startSegment(ctx, st)
			if rerr == bufio.ErrBufferFull {
				return nil, lr.errorf("segment marker too long")
			}
			continue
		case bytes.Equal(frag, []byte(endOfRows)):
			rowsDone = true
			continue
		case bytes.Equal(bytes.TrimSpace(frag), []byte("DELIMITER ;;")):
			// The triggers follow the rows (files without the end marker).
			if err := endSegment(); err != nil {
				return nil, err
			}
			trs, err := parseTriggers(lr, name)
			if err != nil {
				return nil, err
			}
			t.Triggers = append(t.Triggers, trs...)
			rowsDone = true
			continue
		case bytes.HasPrefix(frag, []byte("INSERT ")):
			if !bytes.HasPrefix(frag, insert) {
				return nil, lr.errorf("INSERT into another table than %s", quoteIdent(name))
			}
			if seg != nil && !markers && seg.size >= mysql.DefaultSegmentSize {
				if err := endSegment(); err != nil {
					return nil, err
				}
			}
			if seg == nil {
				seg = startSegment(ctx, st)
			}
			// Restore loads the rows into a table of the columns the
			// INSERTs name; every INSERT of a table names the same ones.
			cols, ok := insertColumns(string(frag[len(insert):]))
			if !ok {
				return nil, lr.errorf("INSERT into %s without a column list", quoteIdent(name))
			}
			if t.Columns == nil {
				t.Columns = cols
			} else if !slices.Equal(t.Columns, cols) {
				return nil, lr.errorf("INSERTs into %s name different columns", quoteIdent(name))
			}
			// The values are checked from after the column list on.
			values = &valuesChecker{}
			head := len(insert) + len(insertColumnList(cols))
			if seg != nil {
				if err := seg.write(frag[:head]); err != nil {
					return nil, fmt.Errorf("%s: %w", file, err)
				}
			}
			frag = frag[head:]
		case rowNoise(frag) && rerr != bufio.ErrBufferFull:
		default:
			return nil, lr.errorf("unexpected statement among the rows: %.60q", frag)
		}
		// Copy the line, in pieces, into the open segment.
		for {
			if values != nil {
				values.feed(frag)
				if values.err != nil {
					return nil, lr.errorf("INSERT into %s: %v", quoteIdent(name), values.err)
				}
			}
			if seg != nil {
				if err := seg.write(frag); err != nil {
					return nil, fmt.Errorf("%s: %w", file, err)
				}
			}
			if rerr != bufio.ErrBufferFull {
				break
			}
			frag, rerr = br.ReadSlice('\n')
			if rerr != nil && rerr != io.EOF && rerr != bufio.ErrBufferFull {
				return nil, fmt.Errorf("read %s: %w", file, rerr)
			}
		}
		if values != nil {
			if err := values.done(); err != nil {
				return nil, lr.errorf("INSERT into %s: %v", quoteIdent(name), err)
			}
			rows += values.groups
		}
		if rerr == io.EOF {
			break
		}
	}
	if err := endSegment(); err != nil {
		return nil, err
	}

	// After the rows: triggers and the closing settings.
	for {
		line, err := lr.full()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		switch {
		case isNoise(line):
		case bytes.Equal(bytes.TrimSpace(line), []byte("DELIMITER ;;")):
			trs, err := parseTriggers(lr, name)
			if err != nil {
				return nil, err
			}
			t.Triggers = append(t.Triggers, trs...)
		default:
			return nil, lr.errorf("unexpected statement after the rows: %.60q", line)
		}
	}
	return t, nil
}

// parseTriggers reads CREATE TRIGGER statements ended by ";;" up to
// "DELIMITER ;".
func parseTriggers(lr *lineReader, table string) ([]string, error) {
	var out []string
	for {
		line, err := lr.full()
		if err == io.EOF {
			return nil, lr.errorf("file ends before DELIMITER ;")
		}
		if err != nil {
			return nil, err
		}
		if bytes.Equal(bytes.TrimSpace(line), []byte("DELIMITER ;")) {
			return out, nil
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		stmt, err := lr.statement(line, ";;")
		if err != nil {
			return nil, err
		}
		if !triggerRe.MatchString(stmt) {
			return nil, lr.errorf("a statement other than CREATE TRIGGER among the triggers: %.60q", stmt)
		}
		if _, err := checkTrigger(stmt, table, table, sameName); err != nil {
			return nil, lr.errorf("%v", err)
		}
		out = append(out, stmt)
	}
}

// parseViews reads sql/views.sql: DROP VIEW IF EXISTS and CREATE VIEW
// statements.
func parseViews(r io.Reader, file string) ([]mysql.View, error) {
	lr := newLineReader(r, file)
	var views []mysql.View
	for {
		line, err := lr.full()
		if err == io.EOF {
			return views, nil
		}
		if err != nil {
			return nil, err
		}
		if isNoise(line) {
			continue
		}
		stmt, err := lr.statement(line, ";")
		if err != nil {
			return nil, err
		}
		if strings.HasPrefix(stmt, "DROP VIEW IF EXISTS ") {
			if _, n, ok := parseIdent(stmt[len("DROP VIEW IF EXISTS "):]); ok && len(stmt) == len("DROP VIEW IF EXISTS ")+n {
				continue
			}
		}
		loc := viewRe.FindStringIndex(stmt)
		if loc == nil {
			return nil, lr.errorf("a statement other than CREATE VIEW: %.60q", stmt)
		}
		name, _, ok := parseIdent(stmt[loc[1]:])
		if !ok || name == "" {
			return nil, lr.errorf("CREATE VIEW without a `quoted` view name")
		}
		if _, _, err := checkView(stmt, sameName); err != nil {
			return nil, lr.errorf("%v", err)
		}
		views = append(views, mysql.View{Name: name, Create: stmt})
	}
}
