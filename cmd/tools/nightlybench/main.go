// Command nightlybench measures the nightly job on Prism against DuckDB
// computing the same per-key summary over the same files.
//
//	go run ./cmd/tools/nightlybench -events 1000000
//
// It generates the events (synth), the snapshot and the thresholds into
// -dir once, then runs each engine in a child process of its own, so that
// each peak RSS is its own, and prints seconds, peak RSS, the ratio and how
// many keys' closing stock the two agree on.
package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"cloud.google.com/go/civil"
	_ "github.com/duckdb/duckdb-go/v2"
	"github.com/inventory-events/inventory/internal/testkit/synth"
	"github.com/inventory-events/inventory/loaders/snapshot"
	_ "github.com/inventory-events/inventory/loaders/warehouse/bigquery" // bq:// warehouses
	_ "github.com/inventory-events/inventory/loaders/warehouse/local"    // local warehouse directories
	"github.com/inventory-events/inventory/pipelines/nightly"
)

var (
	events    = flag.Int("events", 1_000_000, "events to generate")
	skus      = flag.Int("skus", 5000, "SKUs (x 6 locations = keys)")
	seed      = flag.Uint64("seed", 1, "generator seed")
	dir       = flag.String("dir", filepath.Join(os.TempDir(), "nightlybench"), "working directory")
	shards    = flag.Int("shards", nightly.DefaultShards, "key shards of the job")
	chunk     = flag.Int64("chunk_bytes", nightly.DefaultChunkBytes, "CSV bytes per element")
	phase     = flag.String("phase", "", "internal: beam or duckdb (run in a child process)")
	cpuProf   = flag.String("cpuprofile", "", "write a CPU profile of the Beam job here")
	reportDay = civil.Date{Year: 2026, Month: time.November, Day: 24}
)

func main() {
	flag.Parse()
	ctx := context.Background()
	switch *phase {
	case "beam":
		if err := runBeam(ctx); err != nil {
			log.Fatal(err)
		}
		return
	case "duckdb":
		if err := runDuckDB(ctx); err != nil {
			log.Fatal(err)
		}
		return
	case "duckdb-sums":
		if err := runDuckDBSums(ctx); err != nil {
			log.Fatal(err)
		}
		return
	}
	if err := generate(ctx); err != nil {
		log.Fatal(err)
	}
	beamSec, beamRSS, err := child("beam")
	if err != nil {
		log.Fatal(err)
	}
	duckSec, duckRSS, err := child("duckdb")
	if err != nil {
		log.Fatal(err)
	}
	sumsSec, sumsRSS, err := child("duckdb-sums")
	if err != nil {
		log.Fatal(err)
	}
	agree, keys, err := compare(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fi, _ := os.Stat(filepath.Join(*dir, "events.csv"))
	fmt.Printf("events %d (%d MB CSV), keys %d, shards %d, chunk %d MB\n", *events, fi.Size()>>20, keys, *shards, *chunk>>20)
	fmt.Printf("%-22s %8s %12s\n", "engine", "seconds", "peak RSS MB")
	fmt.Printf("%-22s %8.2f %12d\n", "beam nightly (prism)", beamSec, beamRSS>>20)
	fmt.Printf("%-22s %8.2f %12d\n", "duckdb", duckSec, duckRSS>>20)
	fmt.Printf("%-22s %8.2f %12d  (sums per key and reason only, no replay)\n", "duckdb group-by", sumsSec, sumsRSS>>20)
	fmt.Printf("ratio beam/duckdb: %.2fx time, %.2fx memory (vs group-by only: %.1fx time)\n",
		beamSec/duckSec, float64(beamRSS)/float64(duckRSS), beamSec/sumsSec)
	fmt.Printf("closing on-hand agrees on %d of %d keys\n", agree, keys)
}

func path(name string) string { return filepath.Join(*dir, name) }

func synthConfig() synth.Config {
	return synth.Config{Events: *events, SKUs: *skus, Locations: 6, Seed: *seed,
		Start: reportDay.In(time.UTC), Span: 24 * time.Hour}
}

// generate writes events.csv, inventory_state.json and thresholds.csv
// unless they are there already for the same parameters.
func generate(ctx context.Context) error {
	stamp := fmt.Sprintf("events=%d skus=%d seed=%d\n", *events, *skus, *seed)
	if b, err := os.ReadFile(path("params")); err == nil && string(b) == stamp {
		return nil
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		return err
	}
	c := synthConfig()
	f, err := os.Create(path("events.csv"))
	if err != nil {
		return err
	}
	if err := synth.Generate(f, c); err != nil {
		f.Close()
		return fmt.Errorf("generate: %w", err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := snapshot.Write(ctx, path("inventory_state.json"), synth.Snapshot(c)); err != nil {
		return err
	}
	t, err := os.Create(path("thresholds.csv"))
	if err != nil {
		return err
	}
	if err := synth.WriteThresholds(t, c); err != nil {
		return err
	}
	if err := t.Close(); err != nil {
		return err
	}
	return os.WriteFile(path("params"), []byte(stamp), 0o644)
}

// child runs one phase in a child process; it returns its wall seconds as
// the child measured them and the child's peak RSS in bytes.
func child(phase string) (float64, int64, error) {
	args := append([]string{"-phase", phase}, os.Args[1:]...)
	cmd := exec.Command(os.Args[0], args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return 0, 0, fmt.Errorf("phase %s: %w", phase, err)
	}
	var sec float64
	if _, err := fmt.Sscan(strings.TrimSpace(string(out)), &sec); err != nil {
		return 0, 0, fmt.Errorf("phase %s printed %q: %w", phase, out, err)
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	return sec, ru.Maxrss * 1024, nil
}

func runBeam(ctx context.Context) error {
	wh, out := path("warehouse"), path("reports")
	os.RemoveAll(wh)
	if *cpuProf != "" {
		f, err := os.Create(*cpuProf)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	start := time.Now()
	res, err := nightly.Run(ctx, nightly.Config{Date: reportDay, Input: path("events.csv"), Warehouse: wh,
		Snapshot: path("inventory_state.json"), Thresholds: path("thresholds.csv"), Output: out,
		RunID: "bench", Shards: *shards, ChunkBytes: *chunk})
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "beam: %d keys, %d events applied, %d rows read\n", res.Keys, res.Events, res.Read)
	fmt.Println(time.Since(start).Seconds())
	return nil
}

// duckQuery is the same per-key summary in SQL: opening from the snapshot,
// event-time replay with counts resetting on-hand (segments between counts),
// sums per reason, minimum and closing on-hand, minutes out of stock.
const duckQuery = `
CREATE TABLE duck AS
WITH snap AS (
  SELECT i.sku, i.location_id, i.on_hand FROM (SELECT unnest(items) AS i FROM read_json_auto('%[1]s'))
), ev AS (
  SELECT DISTINCT ON (event_id) event_id, event_time::TIMESTAMPTZ AS t, sku, location_id, reason, quantity
  FROM read_csv('%[2]s', header = true, columns = {'event_id': 'VARCHAR', 'event_time': 'VARCHAR',
    'sku': 'VARCHAR', 'location_id': 'VARCHAR', 'reason': 'VARCHAR', 'quantity': 'BIGINT', 'source': 'VARCHAR'})
  WHERE event_time::TIMESTAMPTZ >= TIMESTAMPTZ '%[3]s' AND event_time::TIMESTAMPTZ < TIMESTAMPTZ '%[4]s'
), seg AS (
  SELECT *, sum(CASE WHEN reason = 'COUNTED' THEN 1 ELSE 0 END)
    OVER (PARTITION BY sku, location_id ORDER BY t, event_id ROWS UNBOUNDED PRECEDING) AS seg FROM ev
), lvl AS (
  SELECT s.*, CASE WHEN seg = 0 THEN coalesce(sn.on_hand, 0) ELSE 0 END
    + sum(quantity) OVER (PARTITION BY s.sku, s.location_id, seg ORDER BY t, event_id ROWS UNBOUNDED PRECEDING) AS on_hand,
    lead(t, 1, TIMESTAMPTZ '%[4]s') OVER (PARTITION BY s.sku, s.location_id ORDER BY t, event_id) AS next_t
  FROM seg s LEFT JOIN snap sn USING (sku, location_id)
), agg AS (
  SELECT sku, location_id, count(*) AS events,
    sum(quantity) FILTER (reason = 'RECEIVED') AS received, sum(quantity) FILTER (reason = 'SOLD') AS sold,
    sum(quantity) FILTER (reason = 'RETURNED') AS returned, sum(quantity) FILTER (reason = 'DAMAGED') AS damaged,
    sum(quantity) FILTER (reason = 'ADJUSTED') AS adjusted, sum(quantity) FILTER (reason = 'TRANSFER_IN') AS transfer_in,
    sum(quantity) FILTER (reason = 'TRANSFER_OUT') AS transfer_out, min(on_hand) AS min_on_hand,
    arg_max(on_hand, t) AS closing,
    sum(CASE WHEN on_hand <= 0 THEN epoch(next_t) - epoch(t) ELSE 0 END) / 60 AS minutes_out_of_stock
  FROM lvl GROUP BY sku, location_id
)
SELECT coalesce(a.sku, sn.sku) AS sku, coalesce(a.location_id, sn.location_id) AS location_id,
  coalesce(sn.on_hand, 0) AS opening, coalesce(a.closing, sn.on_hand) AS closing, a.* EXCLUDE (sku, location_id, closing)
FROM agg a FULL JOIN snap sn ON a.sku = sn.sku AND a.location_id = sn.location_id`

func runDuckDB(ctx context.Context) error {
	start, end := reportDay.In(time.UTC), reportDay.AddDays(1).In(time.UTC)
	db, err := sql.Open("duckdb", path("bench.duckdb"))
	if err != nil {
		return err
	}
	defer db.Close()
	t0 := time.Now()
	if _, err := db.ExecContext(ctx, "DROP TABLE IF EXISTS duck"); err != nil {
		return err
	}
	q := fmt.Sprintf(duckQuery, path("inventory_state.json"), path("events.csv"),
		start.Format(time.RFC3339), end.Format(time.RFC3339))
	if _, err := db.ExecContext(ctx, q); err != nil {
		return fmt.Errorf("duckdb: %w", err)
	}
	fmt.Println(time.Since(t0).Seconds())
	return nil
}

// compare counts the keys whose closing stock DuckDB and the job agree on.
func compare(ctx context.Context) (agree, keys int64, err error) {
	db, err := sql.Open("duckdb", path("bench.duckdb"))
	if err != nil {
		return 0, 0, err
	}
	defer db.Close()
	err = db.QueryRowContext(ctx, fmt.Sprintf(`SELECT count(*) FILTER (d.closing = s.closing_on_hand), count(*)
FROM duck d FULL JOIN read_csv('%s', header = true) s ON d.sku = s.sku AND d.location_id = s.location_id`,
		filepath.Join(path("reports"), reportDay.String(), nightly.CSVFile))).Scan(&agree, &keys)
	return agree, keys, err
}

// runDuckDBSums is the cheap baseline: sums per key and reason, no replay.
func runDuckDBSums(ctx context.Context) error {
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return err
	}
	defer db.Close()
	t0 := time.Now()
	var n int64
	err = db.QueryRowContext(ctx, fmt.Sprintf(`SELECT count(*) FROM (SELECT sku, location_id, reason, sum(quantity), count(*)
FROM read_csv('%s', header = true) GROUP BY ALL)`, path("events.csv"))).Scan(&n)
	if err != nil {
		return fmt.Errorf("duckdb: %w", err)
	}
	fmt.Println(time.Since(t0).Seconds())
	return nil
}
