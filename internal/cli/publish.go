package cli

import (
	"fmt"
	"io"
	"os"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/inventory-events/inventory/loaders/broker"
)

func newPublishCmd(g *Globals) *cobra.Command {
	cfg := broker.PublishConfig{}
	names := broker.DefaultNames()
	cmd := &cobra.Command{
		Use:   "publish [--format=json|proto] FILE|-",
		Short: "Publish adjustments from a CSV file or standard input",
		Long: `publish reads adjustments as CSV (header event_id,event_time,sku,location_id,
reason,quantity,source; extra columns ignored) and publishes each row to
inventory-topic: as JSON (--format=json), or as Protobuf in the encoding bound
to the topic (--format=proto). A bad row gets a line-numbered error, is sent to
the dead-letter topic and is not published; the command then exits non-zero
saying how many rows were rejected.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			var in io.Reader = cmd.InOrStdin()
			var size int64 = -1
			cfg.Name = args[0]
			if args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return fmt.Errorf("publish: %w", err)
				}
				defer f.Close()
				in = f
				if fi, err := f.Stat(); err == nil {
					size = fi.Size()
				}
			}
			errw := cmd.ErrOrStderr()
			cfg.Errors = errw
			var bar *progressbar.ProgressBar
			if isTerminal(errw) {
				bar = progressbar.DefaultBytes(size, "publishing")
				cfg.Progress = func(n int) { _ = bar.Add(n) }
			}
			admin, err := broker.NewAdmin(ctx, g.Project)
			if err != nil {
				return err
			}
			defer admin.Close()
			cfg.Topic, cfg.DeadLetterTopic = names.Topic, names.DeadLetterTopic
			st, err := admin.Publish(ctx, in, cfg)
			if bar != nil {
				_ = bar.Finish()
				fmt.Fprintln(errw)
			}
			if err != nil {
				return err
			}
			if st.Rejected > 0 || st.Failed > 0 || isTerminal(errw) {
				fmt.Fprintf(errw, "%d rows: %d published, %d rejected, %d failed\n", st.Rows, st.Published, st.Rejected, st.Failed)
			}
			if st.Rejected > 0 || st.Failed > 0 {
				return fmt.Errorf("publish: %d of %d rows rejected, %d failed (rejected rows went to %s)", st.Rejected, st.Rows, st.Failed, names.DeadLetterTopic)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&cfg.Format, "format", "json", "json, or proto (encoded as the topic's schema binding says)")
	cmd.Flags().StringVar(&names.Topic, "topic", names.Topic, "topic id")
	return cmd
}
