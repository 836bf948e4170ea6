package benchkit

import (
	"os"
	"testing"
)

func TestRSS(t *testing.T) {
	mib, err := RSS(os.Getpid())
	if err != nil || mib < 1 || mib > 64<<10 {
		t.Errorf("RSS(self) = %v, %v", mib, err)
	}
}
