package warehouse

import "fmt"

// TableError is a write that no retry can fix: the table refuses the
// writer itself (permission denied, no such table, a schema that differs
// from the job's), not one row. It names the table and the fix. The Beam
// sink logs it as an error and counts it (warehouse/permanent_errors_TABLE)
// before it fails the bundle: the runner retries the bundle, nothing is
// lost, and the stream resumes once the fix is made.
type TableError struct {
	// Table is the full table name, e.g. bq://PROJECT.DATASET.adjustments.
	Table string
	// Problem says what is wrong, Fix what to do about it.
	Problem, Fix string
	Err          error
}

func (e *TableError) Error() string {
	return fmt.Sprintf("warehouse: table %s: %s (%v); fix: %s", e.Table, e.Problem, e.Err, e.Fix)
}

func (e *TableError) Unwrap() error { return e.Err }
