package local

import (
	"fmt"
	"io"
	"os"
	"reflect"

	"github.com/inventory-events/inventory/loaders/warehouse"
)

// SetCompactHook sets the hook called at each step of placing a
// compaction ("merged", "committed", "placed"); nil removes it.
func SetCompactHook(h func(step string) error) { compactHook = h }

// SetQueryHook sets the hook called once a query has listed a table's
// files; nil removes it.
func SetQueryHook(h func(table string)) { queryHook = h }

// WriteReflective writes rows into a new part file in dir, created if
// need be, row by row with parquet-go's reflective writer (the way of a
// row type without a typed writer); it returns the file's name.
func WriteReflective(dir string, rows warehouse.TableRows) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	return writeReflective(dir, rows)
}

// WriteTyped writes rows into a new part file in dir, created if need be,
// with the typed writer of their row type; it returns the file's name.
func WriteTyped(dir string, rows warehouse.TableRows) (string, error) {
	write, ok := typedWriters[rows.Table().RowType]
	if !ok {
		return "", fmt.Errorf("no typed writer for %v", rows.Table().RowType)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	return createPart(dir, func(out io.Writer) error { return write(out, schemaOf(rows.Table()), rows) })
}

// HasTypedWriter reports whether rows of type t are written by a typed
// writer.
func HasTypedWriter(t reflect.Type) bool {
	_, ok := typedWriters[t]
	return ok
}
