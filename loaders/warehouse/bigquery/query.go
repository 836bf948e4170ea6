package bigquery

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"time"

	bq "cloud.google.com/go/bigquery"
	"google.golang.org/api/iterator"

	"github.com/inventory-events/inventory/loaders/warehouse"
)

// query runs GoogleSQL with project.dataset as the default dataset,
// so queries name tables unqualified like they do locally.
func query(ctx context.Context, project, dataset, sql string, o Options) (*warehouse.Result, error) {
	o = o.withDefaults()
	client, err := bq.NewClient(ctx, project, o.REST...)
	if err != nil {
		return nil, fmt.Errorf("warehouse: bq.NewClient: %w", err)
	}
	defer client.Close()
	q := client.Query(sql)
	q.DefaultProjectID = project
	q.DefaultDatasetID = dataset
	it, err := q.Read(ctx)
	if err != nil {
		return nil, fmt.Errorf("warehouse: query bq://%s.%s: %w", project, dataset, err)
	}
	res := &warehouse.Result{}
	for {
		var row []bq.Value
		err := it.Next(&row)
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("warehouse: query bq://%s.%s: read: %w", project, dataset, err)
		}
		if res.Columns == nil {
			for _, f := range it.Schema {
				res.Columns = append(res.Columns, f.Name)
			}
		}
		vals := make([]any, len(row))
		for i, v := range row {
			switch x := v.(type) {
			case *big.Rat:
				f, _ := x.Float64()
				vals[i] = f
			case time.Time:
				vals[i] = x.UTC()
			default:
				vals[i] = x
			}
		}
		res.Rows = append(res.Rows, vals)
	}
	if res.Columns == nil {
		for _, f := range it.Schema {
			res.Columns = append(res.Columns, f.Name)
		}
	}
	return res, nil
}
