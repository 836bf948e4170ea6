// Package codec is the compact binary encoding of the project's Beam coders
// and state: protobuf varints, zigzag-encoded signed integers, and
// length-prefixed strings and bytes. Append functions write; a Reader reads
// them back and remembers the first error, so a decoder reads every field and
// checks once at the end.
package codec

import (
	"errors"

	"google.golang.org/protobuf/encoding/protowire"
)

// ErrCorrupt is the error of a Reader that ran past its input.
var ErrCorrupt = errors.New("codec: truncated or corrupt encoding")

// AppendUvarint appends v as a varint.
func AppendUvarint(b []byte, v uint64) []byte { return protowire.AppendVarint(b, v) }

// AppendVarint appends v zigzag-encoded as a varint.
func AppendVarint(b []byte, v int64) []byte {
	return protowire.AppendVarint(b, protowire.EncodeZigZag(v))
}

// AppendString appends s with its length.
func AppendString(b []byte, s string) []byte { return protowire.AppendString(b, s) }

// AppendBytes appends s with its length.
func AppendBytes(b, s []byte) []byte { return protowire.AppendBytes(b, s) }

// AppendFlags appends bits as one varint, bits[i] in bit i; Reader.Flag
// reads them back.
func AppendFlags(b []byte, bits ...bool) []byte {
	var v uint64
	for i, set := range bits {
		if set {
			v |= 1 << i
		}
	}
	return AppendUvarint(b, v)
}

// Flag reports whether bit i of flags, a varint written by AppendFlags, is set.
func Flag(flags uint64, i int) bool { return flags&(1<<i) != 0 }

// Reader reads what the Append functions wrote. After the first error every
// read returns a zero value and Err reports ErrCorrupt.
type Reader struct {
	b   []byte
	err error
}

// NewReader returns a Reader of b.
func NewReader(b []byte) *Reader { return &Reader{b: b} }

func (r *Reader) fail() {
	r.err, r.b = ErrCorrupt, nil
}

// Uvarint reads a varint.
func (r *Reader) Uvarint() uint64 {
	v, n := protowire.ConsumeVarint(r.b)
	if n < 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

// Varint reads a zigzag-encoded varint.
func (r *Reader) Varint() int64 { return protowire.DecodeZigZag(r.Uvarint()) }

// Len reads a count of items that follow, each at least one byte long: a
// count larger than the bytes left is corrupt, which keeps a corrupt input
// from allocating without bound.
func (r *Reader) Len() int {
	n := r.Uvarint()
	if n > uint64(len(r.b)) {
		r.fail()
		return 0
	}
	return int(n)
}

// Bytes reads length-prefixed bytes. The result shares the input's memory.
func (r *Reader) Bytes() []byte {
	v, n := protowire.ConsumeBytes(r.b)
	if n < 0 {
		r.fail()
		return nil
	}
	r.b = r.b[n:]
	return v[:len(v):len(v)]
}

// String reads a length-prefixed string.
func (r *Reader) String() string { return string(r.Bytes()) }

// Err returns ErrCorrupt if a read ran past the input, else nil.
func (r *Reader) Err() error { return r.err }

// Done returns the Reader's error, or ErrCorrupt if input is left over.
func (r *Reader) Done() error {
	if r.err == nil && len(r.b) != 0 {
		return ErrCorrupt
	}
	return r.err
}
