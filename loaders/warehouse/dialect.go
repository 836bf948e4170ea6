package warehouse

import (
	"fmt"
	"strings"
	"time"
)

// IsBigQuery reports whether uri names a BigQuery warehouse (GoogleSQL)
// rather than the local DuckDB one.
func IsBigQuery(uri string) bool { return strings.HasPrefix(uri, "bq://") }

// TimestampSQL is the TIMESTAMP literal of micros (Unix microseconds) in
// the SQL dialect of the warehouse uri.
func TimestampSQL(uri string, micros int64) string {
	s := time.UnixMicro(micros).UTC().Format("2006-01-02 15:04:05.999999") + "+00"
	if IsBigQuery(uri) {
		return "TIMESTAMP '" + s + "'"
	}
	return "TIMESTAMPTZ '" + s + "'"
}

// AsString returns a value of QueryRows as text.
func AsString(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	return fmt.Sprint(v)
}

// AsInt returns a numeric value of QueryRows or QueryTable (a count or a
// sum) as an int64, and 0 for any other value (NULL). Backends return
// whole numbers as int64 (Result).
func AsInt(v any) int64 {
	switch x := v.(type) {
	case int64:
		return x
	case float64:
		return int64(x)
	}
	return 0
}
