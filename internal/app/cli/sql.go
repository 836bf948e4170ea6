package cli

import (
	"strings"

	"github.com/spf13/cobra"

	"github.com/inventory-events/inventory/internal/names"
	"github.com/inventory-events/inventory/loaders/warehouse"
)

func newSQLCmd(*globals) *cobra.Command {
	var (
		uri    string
		format string
	)
	cmd := &cobra.Command{
		Use:   `sql "SELECT ..."`,
		Short: "Query the warehouse (local files with DuckDB, or BigQuery)",
		Long: `sql runs an analyst query over the warehouse tables: adjustments,
stock_levels, low_stock_alerts, dead_letters, daily_summary, report_runs.
Locally each table is a view over its Parquet files, and the query sees every
file the stream has finished writing; with --warehouse=bq://PROJECT.DATASET it
runs in BigQuery. Example queries: docs/analyst-queries.md.

Locally it is read-only, enforced by DuckDB: one statement that DuckDB parses
as a query (SELECT, WITH, FROM, VALUES, TABLE, DESCRIBE, SHOW, SUMMARIZE),
reading the warehouse's own files and nothing else; COPY, CREATE, ATTACH,
INSTALL, SET, PRAGMA, EXPLAIN and the like are refused. On BigQuery a query
may do what your account's IAM roles allow: query with an account that holds
roles/bigquery.dataViewer and roles/bigquery.jobUser and nothing more.

Control and format characters in the output (ESC, BEL, bidirectional
overrides, ...) are printed escaped (\x1b, \u202e; in JSON, \u001b).

  inventory sql "SELECT sku, location_id, on_hand FROM stock_levels LIMIT 5"`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			q := strings.Join(args, " ")
			if err := checkWarehouseDir(uri); err != nil {
				return err
			}
			out := newEscapeWriter(cmd.OutOrStdout(), format == "json")
			if err := warehouse.Query(cmd.Context(), uri, q, format, out); err != nil {
				return err
			}
			return out.Close()
		},
	}
	cmd.Flags().StringVar(&uri, "warehouse", names.Warehouse, "local directory or bq://PROJECT.DATASET")
	cmd.Flags().StringVar(&format, "format", "table", "table, csv or json")
	return cmd
}
