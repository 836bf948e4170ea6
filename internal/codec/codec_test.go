package codec_test

import (
	"errors"
	"math"
	"testing"

	"github.com/inventory-events/inventory/internal/codec"
)

func TestRoundTrip(t *testing.T) {
	b := codec.AppendUvarint(nil, 300)
	b = codec.AppendVarint(b, math.MinInt64)
	b = codec.AppendVarint(b, -1)
	b = codec.AppendString(b, "héllo")
	b = codec.AppendBytes(b, []byte{0, 1, 2})
	b = codec.AppendUvarint(b, 2)
	r := codec.NewReader(b)
	if v := r.Uvarint(); v != 300 {
		t.Errorf("Uvarint = %d", v)
	}
	if v := r.Varint(); v != math.MinInt64 {
		t.Errorf("Varint = %d", v)
	}
	if v := r.Varint(); v != -1 {
		t.Errorf("Varint = %d", v)
	}
	if v := r.String(); v != "héllo" {
		t.Errorf("String = %q", v)
	}
	if v := r.Bytes(); string(v) != "\x00\x01\x02" {
		t.Errorf("Bytes = %q", v)
	}
	if err := r.Done(); !errors.Is(err, codec.ErrCorrupt) {
		t.Errorf("Done with a byte left = %v, want ErrCorrupt", err)
	}
	if n := r.Len(); n != 0 || r.Err() == nil {
		t.Errorf("Len of 2 with nothing left = %d, err %v: want corrupt", n, r.Err())
	}
}

func TestFlags(t *testing.T) {
	b := codec.AppendFlags(nil, true, false, true)
	if string(b) != "\x05" {
		t.Fatalf("AppendFlags(true, false, true) = %q, want 0b101", b)
	}
	f := codec.NewReader(b).Uvarint()
	for i, want := range []bool{true, false, true, false} {
		if got := codec.Flag(f, i); got != want {
			t.Errorf("Flag(%b, %d) = %v, want %v", f, i, got, want)
		}
	}
}

func TestTruncated(t *testing.T) {
	full := codec.AppendString(codec.AppendVarint(nil, 1<<40), "abcdef")
	for i := range len(full) {
		r := codec.NewReader(full[:i])
		r.Varint()
		_ = r.String()
		if r.Done() == nil {
			t.Errorf("%d of %d bytes: no error", i, len(full))
		}
	}
	r := codec.NewReader(full)
	r.Varint()
	_ = r.String()
	if err := r.Done(); err != nil {
		t.Errorf("whole input: %v", err)
	}
}
