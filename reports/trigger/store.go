package trigger

import (
	"context"
	"slices"
	"strings"
	"sync"
)

// Store records the runs the service launched or looked up, one per date (the
// latest). The in-memory store serves one instance; a warehouse-backed store
// (report_runs) can take its place behind the same interface.
type Store interface {
	Put(ctx context.Context, r Run) error
	Get(ctx context.Context, date string) (Run, bool, error)
	// List returns the recorded runs, newest date first.
	List(ctx context.Context) ([]Run, error)
}

// memoryStore is a Store in memory. It keeps at most Limit dates (the newest).
type memoryStore struct {
	Limit int

	mu   sync.Mutex
	runs map[string]Run
}

var _ Store = (*memoryStore)(nil)

// newMemoryStore returns an empty memoryStore keeping about a year of runs.
func newMemoryStore() *memoryStore { return &memoryStore{Limit: 400, runs: map[string]Run{}} }

// Put records r as the latest run of its date.
func (s *memoryStore) Put(_ context.Context, r Run) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.runs == nil {
		s.runs = map[string]Run{}
	}
	s.runs[r.Date] = r
	if s.Limit > 0 && len(s.runs) > s.Limit {
		oldest := ""
		for d := range s.runs {
			if oldest == "" || d < oldest {
				oldest = d
			}
		}
		delete(s.runs, oldest)
	}
	return nil
}

// Get returns the run recorded for date.
func (s *memoryStore) Get(_ context.Context, date string) (Run, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.runs[date]
	return r, ok, nil
}

// List returns all recorded runs, newest date first.
func (s *memoryStore) List(_ context.Context) ([]Run, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Run, 0, len(s.runs))
	for _, r := range s.runs {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b Run) int { return strings.Compare(b.Date, a.Date) })
	return out, nil
}
