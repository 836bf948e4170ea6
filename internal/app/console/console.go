// Package console is what the commands print on a terminal: fatal errors
// that are never filtered by a log level, one progress line redrawn in
// place that other output never breaks into, and a log handler that keeps
// Beam's benign cancellation errors out of sight.
package console

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// Fatal prints err on standard error as "prog: err" (whatever the log
// level) and exits with status 1.
func Fatal(prog string, err error) {
	fmt.Fprintln(os.Stderr, Message(prog, err))
	os.Exit(1)
}

// Message is err as Fatal prints it: prefixed with prog unless it already
// starts with it.
func Message(prog string, err error) string {
	msg := err.Error()
	if strings.HasPrefix(msg, prog+":") {
		return msg
	}
	return prog + ": " + msg
}

// IsTerminal reports whether w is a terminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// maxWidth caps the progress line, whatever the terminal's width.
const maxWidth = 120

// Line is one status line at the bottom of a terminal, redrawn in place.
// Text written through Writer goes above it and never into it. A nil *Line
// does nothing, so callers need not check for a terminal.
type Line struct {
	mu      sync.Mutex
	w       io.Writer
	width   int    // characters the line may use (the terminal's columns - 1)
	cur     string // what the line shows; "" when nothing
	shown   bool   // cur is drawn
	partial bool   // Writer left the cursor mid-line
}

// NewLine returns a Line on w when w is a terminal, else nil.
func NewLine(w io.Writer) *Line {
	if !IsTerminal(w) {
		return nil
	}
	cols, _, err := term.GetSize(int(w.(*os.File).Fd()))
	if err != nil || cols <= 0 {
		cols = 80
	}
	return NewLineWidth(w, cols)
}

// NewLineWidth returns a Line on w for a terminal cols columns wide
// (tests, and writers known to be terminals).
func NewLineWidth(w io.Writer, cols int) *Line {
	return &Line{w: w, width: max(min(cols, maxWidth)-1, 20)}
}

// Width is how many characters the line may hold without wrapping.
func (l *Line) Width() int {
	if l == nil {
		return maxWidth - 1
	}
	return l.width
}

// Set shows text on the line, cut to the line's width.
func (l *Line) Set(text string) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cur = fit(text, l.width)
	if !l.partial {
		l.draw()
	}
}

// Clear erases the line and shows nothing until the next Set.
func (l *Line) Clear() {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.erase()
	l.cur = ""
}

func (l *Line) draw() {
	if l.cur == "" {
		l.erase()
		return
	}
	fmt.Fprintf(l.w, "\r%s\x1b[K", l.cur)
	l.shown = true
}

func (l *Line) erase() {
	if l.shown {
		io.WriteString(l.w, "\r\x1b[K")
		l.shown = false
	}
}

// Writer returns a writer whose text goes above the line (w itself when l
// is nil). Use it for logs and per-row messages.
func (l *Line) Writer(w io.Writer) io.Writer {
	if l == nil {
		return w
	}
	return lineWriter{l}
}

type lineWriter struct{ l *Line }

func (lw lineWriter) Write(p []byte) (int, error) {
	l := lw.l
	l.mu.Lock()
	defer l.mu.Unlock()
	l.erase()
	n, err := l.w.Write(p)
	l.partial = len(p) > 0 && p[len(p)-1] != '\n' || l.partial && len(p) == 0
	if !l.partial && l.cur != "" {
		l.draw()
	}
	return n, err
}

// Every calls fn every interval until ctx ends, and then returns.
func Every(ctx context.Context, interval time.Duration, fn func()) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn()
		}
	}
}

// Tick calls text every interval and shows what it returns until stop is
// called; stop erases the line.
func (l *Line) Tick(interval time.Duration, text func() string) (stop func()) {
	if l == nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	l.Set(text())
	go func() {
		defer close(done)
		Every(ctx, interval, func() { l.Set(text()) })
	}()
	return func() {
		cancel()
		<-done
		l.Clear()
	}
}

// fit cuts s to width characters.
func fit(s string, width int) string {
	r := []rune(s)
	if len(r) <= width {
		return s
	}
	if width <= 1 {
		return string(r[:width])
	}
	return string(r[:width-1]) + "…"
}

// Bar renders "label [=====>    ] done/total unit  pct  elapsed" in at
// most width characters; with total <= 0, a counting line without a bar.
func Bar(label string, done, total int64, unit string, elapsed time.Duration, width int) string {
	el := elapsed.Round(time.Second).String()
	if total <= 0 {
		return fit(fmt.Sprintf("%s %s %s  %s", label, Thousands(done), unit, el), width)
	}
	done = min(done, total)
	pct := done * 100 / total
	tail := fmt.Sprintf(" %s/%s %s %3d%%  %s", Thousands(done), Thousands(total), unit, pct, el)
	room := width - len([]rune(label)) - len(tail) - 3 // " [" and "]"
	if room < 5 {
		return fit(label+tail, width)
	}
	room = min(room, 40)
	fill := int(int64(room) * done / total)
	bar := strings.Repeat("=", fill)
	if fill < room {
		bar += ">" + strings.Repeat(" ", room-fill-1)
	}
	return fmt.Sprintf("%s [%s]%s", label, bar, tail)
}

// Thousands formats n with comma separators: 1234567 -> "1,234,567".
func Thousands(n int64) string { return digits.Sprintf("%d", n) }

// digits formats numbers with English digit grouping.
var digits = message.NewPrinter(language.English)
