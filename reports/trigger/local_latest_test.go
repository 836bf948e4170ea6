package trigger

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestLocalLauncherLatest: the run that changed last, whatever its date,
// for the local stack's health signals.
func TestLocalLauncherLatest(t *testing.T) {
	release := map[string]chan struct{}{"2026-03-01": make(chan struct{}), "2026-03-02": make(chan struct{})}
	l := NewLocalLauncher(func(_ context.Context, date string) (string, error) {
		<-release[date]
		if date == "2026-03-01" {
			return "", errors.New("no data")
		}
		return "report written", nil
	}, nil)
	defer l.Close(context.Background())
	if _, ok := l.Latest(); ok {
		t.Fatal("Latest before any run: found one")
	}
	ctx := context.Background()
	for _, d := range []string{"2026-03-02", "2026-03-01"} {
		if _, err := l.Launch(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	close(release["2026-03-02"])
	if err := waitState(l, "2026-03-02", StateDone); err != nil {
		t.Fatal(err)
	}
	close(release["2026-03-01"]) // the older date ends last
	if err := l.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	r, ok := l.Latest()
	if !ok || r.Date != "2026-03-01" || r.State != StateFailed || r.Error != "no data" {
		t.Errorf("Latest: %+v %v, want the failed run of 2026-03-01, which ended last", r, ok)
	}
}

// waitState waits until the run of date is in state.
func waitState(l *LocalLauncher, date string, state State) error {
	for {
		r, err := l.Lookup(context.Background(), date)
		if err != nil {
			return err
		}
		if r.State == state {
			return nil
		}
		if !r.State.Active() {
			return errors.New("run of " + date + " ended " + string(r.State))
		}
		time.Sleep(time.Millisecond)
	}
}
