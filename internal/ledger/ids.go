package ledger

import "iter"

// IDs is the set of event ids a key has seen within the horizon, each with
// its event time. It is a slice while small and a map from idsMapAt ids on:
// most keys see a handful of events in 8 days, and a Go map costs several
// times a slice even for one id (figures: docs/benchmarks.md#figures-behind-the-code).
type IDs struct {
	few  []idTime
	many map[string]int64
}

type idTime struct {
	id string
	t  int64
}

const idsMapAt = 16

// Len returns the number of ids.
func (s *IDs) Len() int {
	if s.many != nil {
		return len(s.many)
	}
	return len(s.few)
}

// has reports whether id is in the set.
func (s *IDs) has(id string) bool {
	if s.many != nil {
		_, ok := s.many[id]
		return ok
	}
	for i := range s.few {
		if s.few[i].id == id {
			return true
		}
	}
	return false
}

// add adds id, seen at event time t (Unix µs), or sets its time.
func (s *IDs) add(id string, t int64) {
	if s.many != nil {
		s.many[id] = t
		return
	}
	for i := range s.few {
		if s.few[i].id == id {
			s.few[i].t = t
			return
		}
	}
	if len(s.few) < idsMapAt {
		if s.few == nil {
			s.few = make([]idTime, 0, 2)
		}
		s.few = append(s.few, idTime{id, t})
		return
	}
	s.many = make(map[string]int64, 2*idsMapAt)
	for _, e := range s.few {
		s.many[e.id] = e.t
	}
	s.many[id] = t
	s.few = nil
}

// deleteBefore removes the ids seen before event time cut.
func (s *IDs) deleteBefore(cut int64) {
	if s.many != nil {
		for id, t := range s.many {
			if t < cut {
				delete(s.many, id)
			}
		}
		return
	}
	kept := s.few[:0]
	for _, e := range s.few {
		if e.t >= cut {
			kept = append(kept, e)
		}
	}
	clear(s.few[len(kept):])
	s.few = kept
}

// All yields every id with its event time, in no particular order.
func (s *IDs) All() iter.Seq2[string, int64] {
	return func(yield func(string, int64) bool) {
		if s.many != nil {
			for id, t := range s.many {
				if !yield(id, t) {
					return
				}
			}
			return
		}
		for _, e := range s.few {
			if !yield(e.id, e.t) {
				return
			}
		}
	}
}
