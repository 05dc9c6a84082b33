package follow

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
)

// FileStore keeps a local copy in two files: path holds the records of the
// last Reset and their position (written to a temporary file, synced and
// renamed over path), and path+".journal" one line per Commit since (each
// appended in one write and synced before Commit returns). A line the
// process died while writing is incomplete; Load drops it, and the
// journal's lines of an earlier Reset (a crash between the rename and the
// journal's truncation) by their epoch.
type FileStore struct {
	path    string
	journal *os.File
	epoch   uint64
	// baseBytes and journalBytes are the sizes of the two files:
	// ShouldCompact asks for a Reset once the journal outgrows the records.
	baseBytes, journalBytes int64
	buf                     []byte // the last commit's line, reused
}

// NewFileStore returns the store at path (its directory must exist).
func NewFileStore(path string) *FileStore { return &FileStore{path: path} }

// fileFormat names the layout of the records file.
const fileFormat = "clarity-follow/1"

// maxLine bounds one line of either file: larger is not something this
// store wrote. A commit is one line, of events of less than MaxBatchBytes
// plus one event (at most maxEvent) together; each change is written with
// fewer fields than its event had, and its strings grow at most three
// times as they are written again (a byte that was not UTF-8 becomes
// U+FFFD, U+2028 its escape), hence three times that, and room for the
// per-change fields of a batch of small events. A record is one line
// of less than one event.
const maxLine = 3*(MaxBatchBytes+maxEvent) + 4<<20

// header is the first line of the records file.
type header struct {
	Format   string `json:"format"`
	Epoch    uint64 `json:"epoch"`
	Sequence int64  `json:"sequence"`
	Next     uint64 `json:"next"`
	Records  int64  `json:"records"`
}

// commitLine is one line of the journal.
type commitLine struct {
	Epoch    uint64   `json:"epoch"`
	Sequence int64    `json:"sequence"`
	Next     uint64   `json:"next"`
	Changes  []Change `json:"changes"`
}

func (s *FileStore) journalPath() string { return s.path + ".journal" }

// Load implements Store.
func (s *FileStore) Load(ctx context.Context, fn func(Change) error) (Position, error) {
	s.close()
	f, err := os.Open(s.path)
	if errors.Is(err, os.ErrNotExist) {
		// Without the records, a journal left is of records gone: it is
		// emptied, never replayed onto a later Reset's.
		if err := os.Truncate(s.journalPath(), 0); err != nil && !errors.Is(err, os.ErrNotExist) {
			return Position{}, err
		}
		s.epoch = 0
		return Position{}, nil
	}
	if err != nil {
		return Position{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return Position{}, err
	}
	s.baseBytes = st.Size()
	r := bufio.NewReaderSize(f, 1<<20)
	line, err := readLine(r)
	if err != nil {
		return Position{}, fmt.Errorf("%s: header: %w", s.path, err)
	}
	var h header
	if err := json.Unmarshal(line, &h); err != nil || h.Format != fileFormat {
		return Position{}, fmt.Errorf("%s: not a %s file", s.path, fileFormat)
	}
	for i := int64(0); i < h.Records; i++ {
		line, err := readLine(r)
		if err != nil {
			return Position{}, fmt.Errorf("%s: record %d of %d: %w", s.path, i+1, h.Records, err)
		}
		var rec Record
		if err := json.Unmarshal(line, &rec); err != nil {
			return Position{}, fmt.Errorf("%s: record %d: %w", s.path, i+1, err)
		}
		if err := fn(Change{Kind: rec.Kind, Op: opCreated, Key: rec.Key, Data: rec.Data, Sequence: h.Sequence}); err != nil {
			return Position{}, err
		}
	}
	s.epoch = h.Epoch
	pos := Position{Sequence: h.Sequence, Next: h.Next}

	j, err := os.OpenFile(s.journalPath(), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return Position{}, err
	}
	jr := bufio.NewReaderSize(j, 1<<20)
	var good int64
	for {
		line, err := readLine(jr)
		if errors.Is(err, io.EOF) || errors.Is(err, errTorn) {
			break // the end, or a commit the process died while writing
		}
		if err != nil {
			j.Close()
			return Position{}, fmt.Errorf("%s: %w", s.journalPath(), err)
		}
		var c commitLine
		if err := json.Unmarshal(line, &c); err != nil {
			break // a torn write that happens to end in a newline
		}
		good += int64(len(line)) + 1
		if c.Epoch != s.epoch {
			continue
		}
		for _, ch := range c.Changes {
			if err := fn(ch); err != nil {
				j.Close()
				return Position{}, err
			}
		}
		pos = Position{Sequence: c.Sequence, Next: c.Next}
	}
	// Drop what follows the last whole commit, and append after it.
	if err := j.Truncate(good); err != nil {
		j.Close()
		return Position{}, err
	}
	if _, err := j.Seek(good, io.SeekStart); err != nil {
		j.Close()
		return Position{}, err
	}
	s.journal, s.journalBytes = j, good
	return pos, ctx.Err()
}

// errTorn is a last line without its newline.
var errTorn = errors.New("incomplete line")

func readLine(r *bufio.Reader) ([]byte, error) {
	var buf []byte
	for {
		part, err := r.ReadSlice('\n')
		buf = append(buf, part...)
		if len(buf) > maxLine {
			return nil, fmt.Errorf("line longer than %d bytes", maxLine)
		}
		switch {
		case err == nil:
			return buf[:len(buf)-1], nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(buf) > 0:
			return nil, errTorn
		default:
			return nil, err
		}
	}
}

// Reset implements Store.
func (s *FileStore) Reset(ctx context.Context, pos Position, records iter.Seq[Record]) error {
	tmp := s.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer os.Remove(tmp) // gone by then when renamed
	defer f.Close()
	var n int64
	for range records {
		n++
	}
	// An epoch is unique to its Reset, also across a records file lost
	// (its journal's lines are then never taken as the new records'):
	// the time, or one more than the last when the clock went back.
	epoch := max(s.epoch+1, uint64(time.Now().UnixNano()))
	w := bufio.NewWriterSize(f, 1<<20)
	b, _ := json.Marshal(header{Format: fileFormat, Epoch: epoch, Sequence: pos.Sequence, Next: pos.Next, Records: n})
	w.Write(append(b, '\n'))
	var written int64
	var line []byte
	for r := range records {
		if written == n {
			break
		}
		line = append(appendRecord(line[:0], r), '\n')
		w.Write(line)
		written++
	}
	if written != n {
		return fmt.Errorf("the records changed while they were saved (%d, then %d)", n, written)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, s.path); err != nil {
		return err
	}
	syncDir(filepath.Dir(s.path))
	// From here Load reads the new records; journal lines of the earlier
	// epoch, were the truncation lost, are skipped.
	s.epoch, s.baseBytes = epoch, st.Size()
	if s.journal == nil {
		if s.journal, err = os.OpenFile(s.journalPath(), os.O_RDWR|os.O_CREATE, 0o600); err != nil {
			return err
		}
	}
	if err := s.journal.Truncate(0); err != nil {
		return err
	}
	if _, err := s.journal.Seek(0, io.SeekStart); err != nil {
		return err
	}
	s.journalBytes = 0
	return ctx.Err()
}

// Commit implements Store. It finishes its write whatever ctx says: a
// commit half done is what it must never leave.
func (s *FileStore) Commit(_ context.Context, pos Position, changes []Change) error {
	if s.journal == nil {
		return errors.New("commit before load or reset")
	}
	b := appendCommit(s.buf[:0], commitLine{Epoch: s.epoch, Sequence: pos.Sequence, Next: pos.Next, Changes: changes})
	s.buf = b[:0]
	if _, err := s.journal.Write(b); err != nil {
		return err
	}
	if err := s.journal.Sync(); err != nil {
		return err
	}
	s.journalBytes += int64(len(b))
	return nil
}

// The lines of both files are written by hand, without reflection, as
// json.Marshal would write them; data is JSON already (it was read as
// such) and is copied, compacted only if it spans lines.

func appendRecord(b []byte, r Record) []byte {
	b = append(b, `{"kind":`...)
	b = clarity.AppendJSONString(b, r.Kind, false)
	b = append(b, `,"key":`...)
	b = clarity.AppendJSONString(b, r.Key, false)
	b = append(b, `,"data":`...)
	b = appendData(b, r.Data)
	return append(b, '}')
}

func appendCommit(b []byte, c commitLine) []byte {
	b = append(b, `{"epoch":`...)
	b = strconv.AppendUint(b, c.Epoch, 10)
	b = append(b, `,"sequence":`...)
	b = strconv.AppendInt(b, c.Sequence, 10)
	b = append(b, `,"next":`...)
	b = strconv.AppendUint(b, c.Next, 10)
	b = append(b, `,"changes":[`...)
	for i, ch := range c.Changes {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"id":`...)
		b = clarity.AppendJSONString(b, ch.ID, false)
		b = append(b, `,"sequence":`...)
		b = strconv.AppendInt(b, ch.Sequence, 10)
		b = append(b, `,"kind":`...)
		b = clarity.AppendJSONString(b, ch.Kind, false)
		b = append(b, `,"op":`...)
		b = clarity.AppendJSONString(b, ch.Op, false)
		b = append(b, `,"key":`...)
		b = clarity.AppendJSONString(b, ch.Key, false)
		b = append(b, `,"time":"`...)
		b = ch.Time.AppendFormat(b, time.RFC3339Nano)
		b = append(b, `","data":`...)
		b = appendData(b, ch.Data)
		if ch.Removal != "" {
			b = append(b, `,"removal":`...)
			b = clarity.AppendJSONString(b, ch.Removal, false)
		}
		b = append(b, '}')
	}
	return append(b, "]}\n"...)
}

func appendData(b []byte, data json.RawMessage) []byte {
	if len(data) == 0 {
		return append(b, "null"...)
	}
	if bytes.IndexByte(data, '\n') < 0 && bytes.IndexByte(data, '\r') < 0 {
		return append(b, data...)
	}
	var buf bytes.Buffer
	if json.Compact(&buf, data) != nil {
		return append(b, "null"...)
	}
	return append(b, buf.Bytes()...)
}

// ShouldCompact implements Compactor: once the journal is larger than the
// records file (and 4 MiB), Load would replay more than a Reset writes.
func (s *FileStore) ShouldCompact() bool {
	return s.journalBytes > max(s.baseBytes, 4<<20)
}

// Close closes the journal.
func (s *FileStore) Close() error {
	return s.close()
}

func (s *FileStore) close() error {
	if s.journal == nil {
		return nil
	}
	err := s.journal.Close()
	s.journal = nil
	return err
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}
