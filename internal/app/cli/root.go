package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/inventory-events/inventory/internal/app/console"
)

// globals are the flags every command takes.
type globals struct {
	Project  string
	LogLevel string
	Logger   *slog.Logger
}

// defaultProject is the project used with the local emulator when neither
// --project nor GOOGLE_CLOUD_PROJECT says otherwise.
const defaultProject = "local-inventory"

// NewRoot returns the root command.
func NewRoot() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:   "inventory",
		Short: "Inventory change-event pipeline: set up, publish, consume, run",
		Long: `inventory operates the inventory change-event pipeline.

Every command talks to Pub/Sub through the official client: it honours
PUBSUB_EMULATOR_HOST (run "inventory emulator" for a local Pub/Sub), and
without it uses real Pub/Sub with Application Default Credentials.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			var lvl slog.Level
			if err := lvl.UnmarshalText([]byte(g.LogLevel)); err != nil {
				return fmt.Errorf("--log-level: %w", err)
			}
			g.Logger = slog.New(console.QuietCancel(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: lvl})))
			slog.SetDefault(g.Logger)
			if g.Project == "" {
				return fmt.Errorf("--project is empty")
			}
			return nil
		},
	}
	project := os.Getenv("GOOGLE_CLOUD_PROJECT")
	if project == "" {
		project = defaultProject
	}
	root.PersistentFlags().StringVar(&g.Project, "project", project, "Google Cloud project (env GOOGLE_CLOUD_PROJECT)")
	root.PersistentFlags().StringVar(&g.LogLevel, "log-level", "warn", "log level: debug, info, warn, error")
	root.AddCommand(
		newSetupCmd(g),
		newPublishCmd(g),
		newConsumeCmd(g),
		newEmulatorCmd(g),
		newGenCmd(g),
		newSQLCmd(g),
		newCompactCmd(g),
		newDemoCmd(g),
		newUpCmd(g),
		newThresholdsCmd(g),
		newAlertsCmd(g),
		newReplayLateCmd(g),
	)
	return root
}

// Main runs the CLI and returns the process exit code.
func Main(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := NewRoot()
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		if code, ok := isExit(err); ok {
			return code
		}
		fmt.Fprintln(os.Stderr, "inventory:", err)
		return 1
	}
	return 0
}

// isTerminal reports whether w is a terminal, for progress bars.
func isTerminal(w io.Writer) bool { return console.IsTerminal(w) }
