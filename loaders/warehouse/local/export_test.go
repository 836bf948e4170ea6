package local

// SetCompactHook sets the hook called at each step of placing a
// compaction ("merged", "committed", "placed"); nil removes it.
func SetCompactHook(h func(step string) error) { compactHook = h }
