package ledger

import (
	"fmt"
	"testing"
)

// TestIDs checks the set on both sides of its switch from slice to map.
func TestIDs(t *testing.T) {
	for _, n := range []int{1, idsMapAt, idsMapAt + 1, 5 * idsMapAt} {
		var s IDs
		for i := range n {
			s.add(fmt.Sprint("e", i), int64(i))
		}
		s.add("e0", 0) // again: no second entry
		if s.Len() != n {
			t.Fatalf("n=%d: Len %d", n, s.Len())
		}
		if !s.has(fmt.Sprint("e", n-1)) || s.has("nope") {
			t.Fatalf("n=%d: Has wrong", n)
		}
		s.deleteBefore(int64(n / 2))
		want := n - n/2
		if s.Len() != want || s.has("e0") != (n/2 == 0) {
			t.Fatalf("n=%d: after DeleteBefore(%d): Len %d, want %d", n, n/2, s.Len(), want)
		}
		sum := int64(0)
		for _, at := range s.All() {
			sum += at
		}
		if wantSum := int64((n/2 + n - 1) * want / 2); sum != wantSum {
			t.Fatalf("n=%d: times sum to %d, want %d", n, sum, wantSum)
		}
		var st State
		st.Seen = s
		var back State
		if err := back.UnmarshalBinary(st.AppendBinary(nil)); err != nil || back.Seen.Len() != want {
			t.Fatalf("n=%d: round trip: %d ids, %v", n, back.Seen.Len(), err)
		}
	}
}
