package cli

import (
	"fmt"
	"net"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/inventory-events/inventory/internal/app/localstack"
	"github.com/inventory-events/inventory/internal/emulator/pubsubemu"
)

func newEmulatorCmd(g *globals) *cobra.Command {
	var (
		host          string
		port          int
		dataDir       string
		maxTopicBytes int64
	)
	cmd := &cobra.Command{
		Use:   "emulator",
		Short: "Run the local Pub/Sub (schemas enforced) until interrupted",
		Long: `emulator serves the Pub/Sub gRPC API (Publisher, Subscriber, SchemaService)
on --port, for the official clients through PUBSUB_EMULATOR_HOST. Schemas are
enforced, ack deadlines, redelivery, dead-letter policies and retention behave
as in Pub/Sub. With --data-dir it persists, so a restart loses nothing.
Each topic retains at most --max-topic-bytes of unacknowledged messages;
past that, a publish is refused with RESOURCE_EXHAUSTED (a quota error,
which the official clients retry) until subscribers catch up.

  inventory emulator --port 8085 &
  export PUBSUB_EMULATOR_HOST=localhost:8085`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			addr := net.JoinHostPort(host, strconv.Itoa(port))
			if dataDir != "" {
				// The data directory's claim, as `inventory up` takes it: a
				// second process on it is told who holds it.
				claim, err := localstack.ClaimDir(dataDir, "data directory", "inventory emulator")
				if err != nil {
					return fmt.Errorf("emulator: %w", withInUseHint(err))
				}
				defer claim.Release()
			}
			srv, err := pubsubemu.Start(addr, pubsubemu.Options{DataDir: dataDir, Logger: g.Logger, MaxTopicBytes: maxTopicBytes})
			if err != nil {
				return fmt.Errorf("emulator: %w", err)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "Pub/Sub emulator listening on %s (export PUBSUB_EMULATOR_HOST=%s)\n", srv.Addr(), srv.Addr())
			<-cmd.Context().Done()
			if err := srv.Close(); err != nil {
				return fmt.Errorf("emulator: close: %w", err)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&host, "host", "localhost", "interface to listen on")
	cmd.Flags().IntVar(&port, "port", 8085, "port to listen on (0: any free port)")
	cmd.Flags().StringVar(&dataDir, "data-dir", "", "persist topics, subscriptions and messages here (default: memory only)")
	addMaxTopicBytesFlag(cmd, &maxTopicBytes)
	return cmd
}

// addMaxTopicBytesFlag adds --max-topic-bytes, the local Pub/Sub's cap on
// each topic's backlog (emulator and up).
func addMaxTopicBytesFlag(cmd *cobra.Command, v *int64) {
	cmd.Flags().Int64Var(v, "max-topic-bytes", pubsubemu.DefaultMaxTopicBytes,
		"bytes of unacknowledged messages a topic of the local Pub/Sub retains before it refuses publishes with RESOURCE_EXHAUSTED (negative: no cap)")
}
