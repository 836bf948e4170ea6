package event_test

import (
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/inventory-events/inventory/internal/event"
	"github.com/inventory-events/inventory/internal/testkit/badinput"
)

const corpus = "../../testdata/badinput"

// corpusNow is the validation clock of the corpus.
var corpusNow = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func TestBadInputCorpus(t *testing.T) {
	cases, err := badinput.Cases(corpus)
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) < 30 {
		t.Fatalf("%d cases, the corpus promises at least 30", len(cases))
	}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			data, err := c.Payload(corpus)
			if err != nil {
				t.Fatal(err)
			}
			var a event.Adjustment
			err = event.Decode(data, c.Encoding, &a)
			if err == nil {
				err = event.Validate(&a, corpusNow)
			}
			var inv *event.Invalid
			if !errors.As(err, &inv) {
				t.Fatalf("accepted (%v): %+v", err, a)
			}
			if inv.Code != c.Reason {
				t.Fatalf("reason %q (%s), want %q", inv.Code, inv.Detail, c.Reason)
			}
		})
	}
}

func TestBadCSVCorpus(t *testing.T) {
	cases, err := badinput.CSVCases(corpus)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(c.File, func(t *testing.T) {
			f, err := os.Open(c.Path(corpus))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			r, err := event.NewCSVReader(f, c.File)
			if c.HeaderError != "" {
				if err == nil || !strings.Contains(err.Error(), c.HeaderError) {
					t.Fatalf("header error %v, want one saying %q", err, c.HeaderError)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			accepted, rejected := 0, 0
			for {
				var a event.Adjustment
				err := r.Next(&a)
				if errors.Is(err, io.EOF) {
					break
				}
				var re *event.RowError
				if err == nil {
					// Rows that parse are validated as the publisher does.
					if verr := event.Validate(&a, corpusNow); verr != nil {
						var inv *event.Invalid
						errors.As(verr, &inv)
						re = &event.RowError{Name: c.File, Line: r.Line(), Err: inv}
					}
				} else if !errors.As(err, &re) {
					t.Fatal(err)
				}
				if re == nil {
					accepted++
					continue
				}
				if rejected >= len(c.Rejected) {
					t.Fatalf("unexpected rejection %v", re)
				}
				w := c.Rejected[rejected]
				if re.Line != w.Line || re.Err.Code != w.Reason {
					t.Fatalf("rejection %v, want line %d reason %s", re, w.Line, w.Reason)
				}
				rejected++
			}
			if accepted != c.Accepted || rejected != len(c.Rejected) {
				t.Fatalf("accepted %d rejected %d, want %d and %d", accepted, rejected, c.Accepted, len(c.Rejected))
			}
		})
	}
}
