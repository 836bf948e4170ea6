package bigquery

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	bq "cloud.google.com/go/bigquery"
	"cloud.google.com/go/civil"

	"github.com/inventory-events/inventory/loaders/warehouse"
)

// replaceDate replaces one partition atomically with a load job
// (WRITE_TRUNCATE on the partition decorator table$YYYYMMDD).
func replaceDate(ctx context.Context, project, dataset string, date civil.Date, rows warehouse.TableRows, o Options) error {
	o = o.withDefaults()
	t := rows.Table()
	wrap := func(err error) error {
		return fmt.Errorf("warehouse: replace bq://%s.%s.%s %s: %w", project, dataset, t.Name, date, err)
	}
	client, err := bq.NewClient(ctx, project, o.REST...)
	if err != nil {
		return wrap(err)
	}
	defer client.Close()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for i := range rows.Len() {
		if err := enc.Encode(columnMap(t, rows.Values(i))); err != nil {
			return wrap(err)
		}
	}
	src := bq.NewReaderSource(&buf)
	src.SourceFormat = bq.JSON
	src.Schema = schema(t)
	decorator := fmt.Sprintf("%s$%04d%02d%02d", t.Name, date.Year, int(date.Month), date.Day)
	loader := client.Dataset(dataset).Table(decorator).LoaderFrom(src)
	loader.WriteDisposition = bq.WriteTruncate
	loader.CreateDisposition = bq.CreateNever
	job, err := loader.Run(ctx)
	if err != nil {
		return wrap(err)
	}
	st, err := job.Wait(ctx)
	if err != nil {
		return wrap(err)
	}
	if err := st.Err(); err != nil {
		return wrap(err)
	}
	return nil
}
