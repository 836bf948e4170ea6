package clock

import (
	"os"
	"os/exec"
	"testing"
	"time"
)

// TestShift runs this test binary again with the shift set, so that the
// value is read fresh, and checks that Now moved by it.
func TestShift(t *testing.T) {
	if os.Getenv("CLOCK_TEST_CHILD") != "" {
		want := 24 * time.Hour
		if got := Now().Sub(time.Now()); got < want-time.Minute || got > want+time.Minute {
			t.Fatalf("Now is %v ahead, want %v", got, want)
		}
		if Shift() != want {
			t.Fatalf("Shift() = %v, want %v", Shift(), want)
		}
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestShift$", "-test.count=1")
	cmd.Env = append(os.Environ(), "CLOCK_TEST_CHILD=1", shiftEnv+"=24h")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child with %s=24h: %v\n%s", shiftEnv, err, out)
	}
}

func TestNoShift(t *testing.T) {
	if os.Getenv(shiftEnv) != "" {
		t.Skipf("%s is set for this run", shiftEnv)
	}
	if d := Now().Sub(time.Now()); d < -time.Second || d > time.Second {
		t.Fatalf("Now is %v off the wall clock with no shift", d)
	}
}
