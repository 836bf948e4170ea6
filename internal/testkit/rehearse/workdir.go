package rehearse

import (
	"fmt"
	"os"
	"path/filepath"
)

// Workdir is where a rehearsal tool works: root made absolute, after
// checking that it is the repository root (marker, a slash-separated path
// relative to it, exists), and a new scratch directory outside the
// repository named tool-*. The caller removes the scratch directory.
func Workdir(tool, root, marker string) (abs, tmp string, err error) {
	abs, err = filepath.Abs(root)
	if err != nil {
		return "", "", err
	}
	if _, err := os.Stat(filepath.Join(abs, filepath.FromSlash(marker))); err != nil {
		return "", "", fmt.Errorf("%s: %s is not the repository root: %w", tool, abs, err)
	}
	tmp, err = os.MkdirTemp("", tool+"-")
	if err != nil {
		return "", "", err
	}
	return abs, tmp, nil
}
