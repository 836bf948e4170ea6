package trigger_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"time"

	"github.com/inventory-events/inventory/reports/trigger"
)

// A trigger for a date launches the job; a retry for the same date returns
// the run that is already going instead of starting another.
func ExampleNewServer() {
	launcher := trigger.NewLocalLauncher(func(ctx context.Context, date string) (string, error) {
		<-ctx.Done() // a long job: still running when the retry comes
		return "", ctx.Err()
	}, nil)
	defer launcher.Close(context.Background())
	h := trigger.NewServer(trigger.Config{Now: func() time.Time { return time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC) }}, launcher, nil)

	for range 2 {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", "/v1/nightly", nil))
		fmt.Println(rec.Code)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/v1/nightly?date=2026-02-30", nil))
	fmt.Println(rec.Code, rec.Body.String())
	// Output:
	// 202
	// 200
	// 400 {
	//   "error": "date \"2026-02-30\": parsing time \"2026-02-30\": day out of range"
	// }
}
