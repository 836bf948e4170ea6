package local

// SetCompactHook sets the hook called at each step of placing a
// compaction ("merged", "committed", "placed"); nil removes it.
func SetCompactHook(h func(step string) error) { compactHook = h }

// SetQueryHook sets the hook called once a query has listed a table's
// files; nil removes it.
func SetQueryHook(h func(table string)) { queryHook = h }
