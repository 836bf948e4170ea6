package registry

import "testing"

func TestTable(t *testing.T) {
	var tb Table[int]
	id := NewID("x-")
	if _, ok := tb.Lookup(id); ok {
		t.Fatal("empty table finds an id")
	}
	tb.Add(id, 1)
	if v, ok := tb.Lookup(id); !ok || v != 1 {
		t.Fatalf("Lookup = %d, %v, want 1, true", v, ok)
	}
	if v := tb.LookupOrAdd(id, func() int { return 2 }); v != 1 {
		t.Errorf("LookupOrAdd of a registered id = %d, want 1", v)
	}
	tb.Remove(id)
	if v := tb.LookupOrAdd(id, func() int { return 2 }); v != 2 {
		t.Errorf("LookupOrAdd after Remove = %d, want 2", v)
	}
	if NewID("x-") == NewID("x-") {
		t.Error("NewID repeats")
	}
}

func TestTableKeepsNewest(t *testing.T) {
	tb := Table[int]{Keep: 2}
	tb.Add("a", 1)
	tb.Add("b", 2)
	tb.Add("a", 3) // a replacement, not a new id
	tb.Add("c", 4)
	if _, ok := tb.Lookup("a"); ok {
		t.Error("the oldest id is kept past Keep")
	}
	for id, want := range map[string]int{"b": 2, "c": 4} {
		if v, ok := tb.Lookup(id); !ok || v != want {
			t.Errorf("Lookup(%s) = %d, %v, want %d", id, v, ok, want)
		}
	}
}
