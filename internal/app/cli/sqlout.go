package cli

import (
	"fmt"
	"io"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// escapeWriter passes query output to w with every character a terminal
// would act on rather than show written as an escape: control characters
// (C0 but newline and tab, DEL, C1: ESC and BEL among them), format
// characters (bidirectional overrides, zero-width ones), line and
// paragraph separators, and bytes that are not UTF-8. The table and CSV
// formats show them Go-style (\x1b, \u202e); JSON gets JSON's \u escapes,
// so the document still holds the same values. Data stored before
// validation refused control characters (event.Validate) prints safely.
type escapeWriter struct {
	w    io.Writer
	json bool
	// rest holds the start of a UTF-8 sequence cut by a Write.
	rest []byte
}

func newEscapeWriter(w io.Writer, json bool) *escapeWriter { return &escapeWriter{w: w, json: json} }

func (e *escapeWriter) Write(p []byte) (int, error) {
	buf := append(e.rest, p...)
	e.rest = nil
	out := make([]byte, 0, len(buf))
	for i := 0; i < len(buf); {
		if !utf8.FullRune(buf[i:]) {
			e.rest = append([]byte(nil), buf[i:]...)
			break
		}
		r, n := utf8.DecodeRune(buf[i:])
		out = e.appendRune(out, r, buf[i:i+n])
		i += n
	}
	if _, err := e.w.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Close writes what is left of a cut sequence, escaped.
func (e *escapeWriter) Close() error {
	if len(e.rest) == 0 {
		return nil
	}
	var out []byte
	for _, b := range e.rest {
		out = e.appendRune(out, utf8.RuneError, []byte{b})
	}
	e.rest = nil
	_, err := e.w.Write(out)
	return err
}

func (e *escapeWriter) appendRune(out []byte, r rune, raw []byte) []byte {
	switch {
	case r == utf8.RuneError && len(raw) == 1:
		if e.json {
			return append(out, `\ufffd`...)
		}
		return fmt.Appendf(out, `\x%02x`, raw[0])
	case r == '\n' || r == '\t' || !unsafeRune(r):
		return append(out, raw...)
	case e.json:
		if r > 0xffff {
			hi, lo := utf16.EncodeRune(r)
			return fmt.Appendf(out, `\u%04x\u%04x`, hi, lo)
		}
		return fmt.Appendf(out, `\u%04x`, r)
	case r < 0x80:
		return fmt.Appendf(out, `\x%02x`, r)
	case r > 0xffff:
		return fmt.Appendf(out, `\U%08x`, r)
	}
	return fmt.Appendf(out, `\u%04x`, r)
}

// unsafeRune reports whether r is a control, format or line/paragraph
// separator character.
func unsafeRune(r rune) bool {
	return unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp)
}
