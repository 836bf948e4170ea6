package csvsrc

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem"
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem/gcs"   // gs:// paths
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem/local" // local paths
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"

	"github.com/inventory-events/inventory/loaders/objects"
)

func init() {
	register.DoFn3x1[context.Context, []byte, func(Range), error](&splitFn{})
	register.Emitter1[Range]()
	beam.RegisterType(reflect.TypeFor[Range]())
}

// Range is a byte range of a CSV file: the rows that start in
// [Start, End), with the file's header line.
type Range struct {
	Path       string
	Header     string
	Start, End int64
}

// Split is a composite transform that lists the files of glob (local or
// gs://, with wildcards) and splits each into Ranges of about chunkBytes,
// reshuffled so that workers read them in parallel, in no order. It fails
// if glob matches no file.
func Split(s beam.Scope, glob string, chunkBytes int64) beam.PCollection {
	return SplitLanes(s, glob, chunkBytes, 1)[0]
}

// SplitLanes is Split into n PCollections, lanes, each with every n-th
// Range, from an Impulse of its own. A runner starts each lane's first
// bundle at once: Prism starts a ParDo's bundle with every element it has
// and splits it only once it has made no progress for a tick (100 ms or
// more), so a single lane kept a second core idle for the first 0.2 s of
// the nightly job's read (upstream report: docs/beam-notes.md#upstream-issues-ready-to-file,
// item 12).
func SplitLanes(s beam.Scope, glob string, chunkBytes int64, n int) []beam.PCollection {
	s = s.Scope("csvsrc.Split")
	lanes := make([]beam.PCollection, n)
	for i := range lanes {
		ls := s
		if n > 1 {
			ls = s.Scope(fmt.Sprintf("lane%d", i))
		}
		ranges := beam.ParDo(ls, &splitFn{Glob: glob, ChunkBytes: chunkBytes, Lane: i, Lanes: n}, beam.Impulse(ls))
		lanes[i] = beam.Reshuffle(ls, ranges)
	}
	return lanes
}

type splitFn struct {
	Glob       string
	ChunkBytes int64
	// Lane and Lanes: the fn emits the ranges i with i % Lanes == Lane (0
	// Lanes: all).
	Lane, Lanes int
}

func (f *splitFn) ProcessElement(ctx context.Context, _ []byte, emit func(Range)) error {
	fs, err := filesystem.New(ctx, f.Glob)
	if err != nil {
		return fmt.Errorf("csvsrc: input %s: %w", f.Glob, err)
	}
	defer fs.Close()
	files, err := fs.List(ctx, f.Glob)
	if err != nil {
		return fmt.Errorf("csvsrc: list %s: %w", f.Glob, err)
	}
	if len(files) == 0 {
		return fmt.Errorf("csvsrc: input %s: no such file", f.Glob)
	}
	i := 0 // ranges so far, of every file
	for _, name := range files {
		size, err := fs.Size(ctx, name)
		if err != nil {
			return fmt.Errorf("csvsrc: size of %s: %w", name, err)
		}
		r, err := objects.Open(ctx, name)
		if err != nil {
			return fmt.Errorf("csvsrc: %w", err)
		}
		header, err := bufio.NewReader(r).ReadString('\n')
		r.Close()
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("csvsrc: read header of %s: %w", name, err)
		}
		for start := int64(len(header)); start < size; start += f.ChunkBytes {
			if f.Lanes > 1 && i%f.Lanes != f.Lane {
				i++
				continue
			}
			i++
			emit(Range{Path: name, Header: header, Start: start, End: min(start+f.ChunkBytes, size)})
		}
	}
	return nil
}

// OpenRange returns a Reader of the rows of rg, in file order.
func OpenRange(ctx context.Context, rg Range) (*Reader, error) {
	data, err := readRange(ctx, rg)
	if err != nil {
		return nil, err
	}
	return newReader(io.MultiReader(strings.NewReader(rg.Header), bytes.NewReader(data)), rg.Path)
}

// readRange returns the bytes of the rows that start in [Start, End): it
// skips the partial row at Start (the previous range reads it) and reads
// past End to the end of the last row.
func readRange(ctx context.Context, rg Range) ([]byte, error) {
	// objects reads local files and GCS (honouring STORAGE_EMULATOR_HOST);
	// a local file seeks, a GCS object is read up to the range.
	r, err := objects.Open(ctx, rg.Path)
	if err != nil {
		return nil, fmt.Errorf("csvsrc: %w", err)
	}
	defer r.Close()
	// Start one byte early: if that byte is a newline, a row starts at Start.
	begin := rg.Start - 1
	if sk, ok := r.(io.Seeker); ok {
		_, err = sk.Seek(begin, io.SeekStart)
	} else {
		_, err = io.CopyN(io.Discard, r, begin)
	}
	if err != nil {
		return nil, fmt.Errorf("csvsrc: seek %s to %d: %w", rg.Path, begin, err)
	}
	br := bufio.NewReaderSize(r, 1<<20)
	skip, err := br.ReadSlice('\n')
	if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, fmt.Errorf("csvsrc: read %s: %w", rg.Path, err)
	}
	pos := begin + int64(len(skip))
	for errors.Is(err, bufio.ErrBufferFull) { // a very long row
		skip, err = br.ReadSlice('\n')
		pos += int64(len(skip))
	}
	data := make([]byte, 0, rg.End-rg.Start+4096)
	for pos < rg.End {
		line, err := br.ReadSlice('\n')
		data = append(data, line...)
		pos += int64(len(line))
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("csvsrc: read %s: %w", rg.Path, err)
		}
	}
	return data, nil
}
