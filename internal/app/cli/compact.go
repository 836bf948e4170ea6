package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/inventory-events/inventory/internal/names"
	"github.com/inventory-events/inventory/loaders/warehouse/local"
)

func newCompactCmd(*globals) *cobra.Command {
	var (
		uri    string
		policy local.CompactPolicy
	)
	cmd := &cobra.Command{
		Use:   "compact",
		Short: "Merge the local warehouse's small files (up does it every 30 s)",
		Long: `compact merges the small Parquet files the streaming job writes (a few per
table per second) so queries open tens of files per partition, not thousands.
Files are grouped in size tiers; a tier holding --fanout files is merged into
one, files of --big bytes or more are left alone. It is safe while the stack
runs and after a crash: a merge lands whole or not at all. The local stack
runs it in the background (up --compact-every); this runs one round over
every partition.

  inventory compact --warehouse ./warehouse`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if strings.Contains(uri, "://") {
				return fmt.Errorf("compact: %q: only a local warehouse directory is compacted", uri)
			}
			if err := checkWarehouseDir(uri); err != nil {
				return err
			}
			w, err := local.Open(uri)
			if err != nil {
				return err
			}
			st, err := w.CompactAll(cmd.Context(), time.Time{}, policy)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d partitions: %d files merged into %d\n", st.Partitions, st.Merged, st.Written)
			return nil
		},
	}
	cmd.Flags().StringVar(&uri, "warehouse", names.Warehouse, "local warehouse directory")
	cmd.Flags().IntVar(&policy.Fanout, "fanout", 8, "files of a size tier merged together")
	cmd.Flags().Int64Var(&policy.Big, "big", 64<<20, "files of at least this many bytes are never merged")
	return cmd
}
