//go:build !unix

package localstack

import "os"

// tryLock has no flock here: every claim succeeds, and the claim file only
// records the last claimant.
func tryLock(*os.File) (held bool, err error) { return false, nil }

func unlock(*os.File) {}
