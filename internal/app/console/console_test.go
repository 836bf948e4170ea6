package console

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// TestLineKeepsOutputAbove writes log lines while a status line shows: each
// written line starts on an erased line, and the status comes back after it,
// never inside it.
func TestLineKeepsOutputAbove(t *testing.T) {
	var buf bytes.Buffer
	l := NewLineWidth(&buf, 120)
	w := l.Writer(&buf)
	l.Set("progress 1")
	fmt.Fprintln(w, "rejected: line 3")
	l.Set("progress 2")
	fmt.Fprint(w, "partial ")
	l.Set("progress 3") // not drawn into the partial line
	fmt.Fprintln(w, "end")
	l.Clear()
	got := buf.String()
	want := "\rprogress 1\x1b[K" + "\r\x1b[K" + "rejected: line 3\n" + "\rprogress 1\x1b[K" +
		"\rprogress 2\x1b[K" + "\r\x1b[K" + "partial " + "end\n" + "\rprogress 3\x1b[K" + "\r\x1b[K"
	if got != want {
		t.Fatalf("output\n%q\nwant\n%q", got, want)
	}
	// Every line of text written arrives whole.
	for _, s := range []string{"rejected: line 3\n", "partial end\n"} {
		if !strings.Contains(strings.ReplaceAll(got, "\r\x1b[K", ""), s) {
			t.Errorf("%q was broken up: %q", s, got)
		}
	}
}

// TestLineNeverWraps: whatever the label, the line fits a 120-column
// terminal (and a narrow one).
func TestLineNeverWraps(t *testing.T) {
	long := "stream " + strings.Repeat("very/long/path/", 20) + "events.csv"
	for _, cols := range []int{40, 80, 120, 200} {
		l := NewLineWidth(&bytes.Buffer{}, cols)
		for _, s := range []string{
			Bar(long, 5, 10, "rows stored", 3*time.Second, l.Width()),
			Bar("nightly 2026-11-24", 123_456, 1_000_000, "rows read", time.Minute, l.Width()),
			Bar(long, 7, 0, "rows", time.Second, l.Width()),
		} {
			if n := utf8.RuneCountInString(s); n > l.Width() || n >= min(cols, maxWidth) {
				t.Errorf("cols %d: %d characters: %q", cols, n, s)
			}
		}
	}
	if s := Bar("x", 50, 100, "rows", 0, 60); !strings.Contains(s, "50/100 rows  50%") || !strings.Contains(s, "[") {
		t.Errorf("bar %q", s)
	}
	if s := Bar("x", 1234567, -1, "rows", 0, 60); s != "x 1,234,567 rows  0s" {
		t.Errorf("counting line %q", s)
	}
}

func TestNilLine(t *testing.T) {
	var l *Line // not a terminal
	var buf bytes.Buffer
	l.Set("x")
	l.Tick(time.Millisecond, func() string { return "y" })()
	fmt.Fprint(l.Writer(&buf), "plain")
	if buf.String() != "plain" {
		t.Fatalf("%q", buf.String())
	}
	if NewLine(&buf) != nil {
		t.Fatal("a buffer is not a terminal")
	}
}

// TestQuietCancel: the errors a cancelled Beam job logs on its way out are
// DEBUG; other errors stay errors.
func TestQuietCancel(t *testing.T) {
	noise := []string{
		"StateChannel[localhost:40123].read bad: rpc error: code = Canceled desc = context canceled",
		"[SDK] process bundle failed: context canceled",
	}
	for _, lvl := range []slog.Level{slog.LevelWarn, slog.LevelDebug} {
		var buf bytes.Buffer
		log := slog.New(QuietCancel(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: lvl})))
		for _, m := range noise {
			log.Error(m)
		}
		log.Error("Bundle Failed.", "error", "pipeline canceled")
		log.Error("StateChannel[x].read bad: rpc error: code = Unavailable desc = connection refused")
		log.ErrorContext(context.Background(), "warehouse write failed", "err", "disk full")
		out := buf.String()
		if strings.Count(out, "level=ERROR") != 2 || !strings.Contains(out, "disk full") || !strings.Contains(out, "Unavailable") {
			t.Errorf("level %v: real errors not kept as errors:\n%s", lvl, out)
		}
		debug := strings.Count(out, "level=DEBUG")
		if lvl == slog.LevelWarn && debug != 0 || lvl == slog.LevelDebug && debug != 3 {
			t.Errorf("level %v: %d DEBUG records:\n%s", lvl, debug, out)
		}
	}
}

func TestMessage(t *testing.T) {
	if m := Message("nightly", fmt.Errorf("nightly: x")); m != "nightly: x" {
		t.Error(m)
	}
	if m := Message("stream", fmt.Errorf("--input %q: no such file", "a.csv")); m != `stream: --input "a.csv": no such file` {
		t.Error(m)
	}
}
