package cli

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/inventory-events/inventory/internal/app/console"
	"github.com/inventory-events/inventory/loaders/warehouse"
)

const tallySQL = `SELECT
  (SELECT count(*) FROM adjustments WHERE status = 'APPLIED') AS applied,
  (SELECT count(*) FROM low_stock_alerts) AS alerts,
  (SELECT count(*) FROM dead_letters) AS dead_letters`

// tally is what the streaming job has stored: events applied, alerts
// raised, dead letters.
type tally struct{ applied, alerts, dead int64 }

func readTally(ctx context.Context, wh string) (tally, error) {
	rows, err := warehouse.QueryRows(ctx, wh, tallySQL)
	if err != nil || len(rows) != 1 {
		return tally{}, fmt.Errorf("tally: %w", err)
	}
	n := func(col string) int64 { v, _ := rows[0][col].(int64); return v }
	return tally{n("applied"), n("alerts"), n("dead_letters")}, nil
}

// printTally prints one line every period while the numbers move: what
// the job stored since printTally started, until ctx ends.
func printTally(ctx context.Context, w io.Writer, wh string, period time.Duration) {
	start, err := readTally(ctx, wh)
	if err != nil {
		fmt.Fprintf(w, "tally     off: %v\n", err)
		return
	}
	last := start
	console.Every(ctx, period, func() {
		cur, err := readTally(ctx, wh)
		if err != nil || cur == last {
			return
		}
		last = cur
		fmt.Fprintf(w, "%s  applied %d  alerts %d  dead letters %d  (since start)\n", time.Now().Format("15:04:05"),
			cur.applied-start.applied, cur.alerts-start.alerts, cur.dead-start.dead)
	})
}
