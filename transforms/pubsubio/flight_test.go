package pubsubio

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestFlightDrainWaitsForStored(t *testing.T) {
	a, b := NewFlight(), NewFlight()
	defer a.Close()
	defer b.Close()
	if got, err := LookupFlight(a.ID()); err != nil || got != a {
		t.Fatalf("LookupFlight(%q) = %p, %v; want %p", a.ID(), got, err, a)
	}
	a.emitted(&Batch{Messages: []Message{{AckID: "1"}, {AckID: "2"}, {AckID: ""}}})
	b.emitted(&Batch{Messages: []Message{{AckID: "x"}}})
	if n := a.unacked(); n != 2 {
		t.Fatalf("a.Unacked() = %d, want 2 (ids without an ack id are not tracked)", n)
	}

	// A drain of a ends only once a's messages are stored; b's do not
	// hold it up, and stored ids are forgotten.
	done := make(chan error, 1)
	go func() { done <- a.Drain(context.Background()) }()
	a.Stored([]string{"1"})
	select {
	case err := <-done:
		t.Fatalf("drain ended with a message unstored: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	if !a.paused.Load() || b.paused.Load() {
		t.Fatalf("paused: a %v, b %v; want only a", a.paused.Load(), b.paused.Load())
	}
	a.Stored([]string{"2"})
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := b.unacked(); n != 1 {
		t.Fatalf("b.Unacked() = %d, want 1", n)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := b.Drain(ctx); err == nil || !strings.Contains(err.Error(), "1 messages not stored") {
		t.Fatalf("b.Drain with a message unstored: %v, want a timeout naming it", err)
	}
}

func TestLookupFlightUnknown(t *testing.T) {
	f := NewFlight()
	f.Close()
	if _, err := LookupFlight(f.ID()); err == nil {
		t.Fatal("a closed flight was found")
	}
	if got, err := LookupFlight(""); err != nil || got != defaultFlight {
		t.Fatalf(`LookupFlight("") = %p, %v; want the default flight`, got, err)
	}
}
