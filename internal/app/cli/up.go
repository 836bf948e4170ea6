package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/inventory-events/inventory/internal/app/console"
	"github.com/inventory-events/inventory/internal/app/health"
	"github.com/inventory-events/inventory/internal/app/localstack"
	"github.com/inventory-events/inventory/internal/names"
	"github.com/inventory-events/inventory/reports/trigger"
)

// upFlags are up's flags that are not fields of localstack.Config.
type upFlags struct {
	host                       string
	port, triggerPort, opsPort int
	noCron                     bool
	debugAddr                  string
}

func newUpCmd(g *globals) *cobra.Command {
	cfg := localstack.Config{}
	var o upFlags
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run the local stack until interrupted",
		Long: `up runs the whole product on this machine until Ctrl-C: the local Pub/Sub
(persisted in --data-dir), topics, schemas and warehouse tables, the streaming
job on Prism, the nightly trigger service, a cron firing the nightly
schedule at it, and an operations server (--ops-port) serving the health
signals at /metrics, which a status line also shows (STALLED when nothing is
stored although messages wait), and the live operations page at /. Point publishers at it with
PUBSUB_EMULATOR_HOST. Ctrl-C stops
it all; a message is acked only once its effects are in the warehouse, so
nothing acknowledged is lost and the rest is delivered after the next start.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if ran, err := reexecConfined(); ran {
				return err
			}
			return runUp(cmd, g, cfg, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.host, "host", "localhost", "interface the local Pub/Sub, the trigger and the operations server listen on")
	f.IntVar(&o.port, "port", 8085, "local Pub/Sub port (0: any)")
	f.IntVar(&o.triggerPort, "trigger-port", 8080, "trigger service port (0: any)")
	f.IntVar(&o.opsPort, "ops-port", 8090, "operations server port: /metrics and the operations page (0: any)")
	f.StringVar(&cfg.DataDir, "data-dir", ".inventory-data", "where the local Pub/Sub persists (empty: memory only)")
	addMaxTopicBytesFlag(cmd, &cfg.EmulatorMaxTopicBytes)
	f.StringVar(&cfg.Warehouse, "warehouse", names.Warehouse, "local warehouse directory")
	f.StringVar(&cfg.Reports, "reports", "./reports-out", "report root directory")
	f.StringVar(&cfg.Snapshot, "snapshot", "testdata/inventory_state.json", "starting stock of the streaming and nightly jobs")
	f.StringVar(&cfg.Thresholds, "thresholds", "testdata/thresholds.csv", "reorder thresholds")
	f.StringVar(&cfg.Cron, "schedule", trigger.DefaultSchedule, "cron spec of the nightly summary")
	f.StringVar(&cfg.TimeZone, "timezone", "UTC", "time zone of the schedule and of report dates")
	f.BoolVar(&o.noCron, "no-cron", false, "do not fire the nightly schedule")
	f.DurationVar(&cfg.CompactEvery, "compact-every", localstack.DefaultCompactEvery, "how often to compact the warehouse's small files (negative: never; inventory compact does it once)")
	f.StringVar(&o.debugAddr, "debug-addr", "", "serve net/http/pprof at host:port, e.g. localhost:6060 (port 0: any; empty: off)")
	return cmd
}

// runUp is up's run: it starts the stack, prints its addresses, serves the
// operations server, and stops it all when ctx is done.
func runUp(cmd *cobra.Command, g *globals, cfg localstack.Config, o upFlags) error {
	ctx := cmd.Context()
	// The status line stays at the bottom of a terminal; logs and
	// every other line go above it (out).
	line := console.NewLine(cmd.ErrOrStderr())
	out := line.Writer(cmd.ErrOrStderr())
	logger, err := lineLogger(g, out)
	if err != nil {
		return err
	}
	cfg.Project = g.Project
	cfg.Logger = logger
	cfg.Holder = "inventory up"
	cfg.EmulatorAddr = net.JoinHostPort(o.host, strconv.Itoa(o.port))
	cfg.TriggerAddr = net.JoinHostPort(o.host, strconv.Itoa(o.triggerPort))
	if o.noCron {
		cfg.Cron = ""
	}
	fmt.Fprintln(out, "starting the local stack...")
	restored := restoredLine(ctx, cfg.Warehouse, cfg.Snapshot)
	if err := startPrism(ctx, out); err != nil {
		return err
	}
	stack, err := localstack.Start(ctx, cfg)
	if err != nil {
		return withInUseHint(err)
	}
	printUpAddrs(out, cfg, stack)
	fmt.Fprintln(out, restored)
	stopPage, stopServing, err := serveUpOps(ctx, out, cfg, stack, net.JoinHostPort(o.host, strconv.Itoa(o.opsPort)), o.debugAddr)
	if err != nil {
		return err
	}
	defer stopServing()
	fmt.Fprintln(out, "ready; Ctrl-C stops")
	return waitAndStopUp(ctx, line, out, stack, stopPage)
}

// printUpAddrs prints where the started stack's parts are.
func printUpAddrs(out io.Writer, cfg localstack.Config, stack *localstack.Stack) {
	warnExposed(out, "the local Pub/Sub", stack.Emulator.Addr())
	warnExposed(out, "the trigger", strings.TrimPrefix(stack.TriggerURL, "http://"))
	fmt.Fprintf(out, "pubsub    %s  (export PUBSUB_EMULATOR_HOST=%s; data in %s)\n", stack.Emulator.Addr(), stack.Emulator.Addr(), orMemory(cfg.DataDir))
	fmt.Fprintf(out, "stream    running on Prism: inventory-sub -> %s, alerts -> low-stock-alerts; thresholds live from threshold-updates-sub\n", cfg.Warehouse)
	fmt.Fprintf(out, "trigger   %s/v1/nightly  (POST ?date=YYYY-MM-DD; GET /v1/nightly/DATE)\n", stack.TriggerURL)
	if c := stack.Cron(); c != nil {
		fmt.Fprintf(out, "cron      %q in %s -> the trigger; next at %s\n", cfg.Cron, cfg.TimeZone, c.Next().Format(time.RFC3339))
	} else {
		fmt.Fprintln(out, "cron      off")
	}
	fmt.Fprintf(out, "reports   %s; warehouse %s (inventory sql \"...\")\n", cfg.Reports, cfg.Warehouse)
}

// serveUpOps serves the operations server at opsAddr (/metrics and the
// operations page) and, unless debugAddr is empty, net/http/pprof there, and
// prints their addresses. It returns a stop of the page, which ends its event
// streams, and a stop of all it serves. On an error it stops the stack.
func serveUpOps(ctx context.Context, out io.Writer, cfg localstack.Config, stack *localstack.Stack, opsAddr, debugAddr string) (func(), func(), error) {
	mux := opsMux(stack)
	stopPage, err := registerOpsPage(ctx, mux, cfg, stack.Health)
	if err != nil {
		stack.Stop(context.WithoutCancel(ctx))
		return nil, nil, err
	}
	opsURL, stopOps, err := serveOps(opsAddr, mux)
	if err != nil {
		stopPage()
		stack.Stop(context.WithoutCancel(ctx))
		return nil, nil, err
	}
	// stopPage first: it ends the page's event streams, which the server's
	// stop waits for.
	stop := func() { stopPage(); stopOps() }
	warnExposed(out, "the operations server", strings.TrimPrefix(opsURL, "http://"))
	fmt.Fprintf(out, "ops       %s/metrics  (Prometheus text: the health signals)\n", opsURL)
	fmt.Fprintf(out, "page      %s/  (the operations page: health, low keys, live alerts, thresholds, reports)\n", opsURL)
	if debugAddr == "" {
		return stopPage, stop, nil
	}
	url, stopDebug, err := serveDebug(debugAddr)
	if err != nil {
		stack.Stop(context.WithoutCancel(ctx))
		stop()
		return nil, nil, err
	}
	warnExposed(out, "the debug server (net/http/pprof)", strings.TrimSuffix(strings.TrimPrefix(url, "http://"), "/debug/pprof/"))
	fmt.Fprintf(out, "debug     %s  (net/http/pprof)\n", url)
	return stopPage, func() { stopDebug(); stop() }, nil
}

// waitAndStopUp shows the status line until ctx is done, then stops the
// operations page and the stack.
func waitAndStopUp(ctx context.Context, line *console.Line, out io.Writer, stack *localstack.Stack, stopPage func()) error {
	statusCtx, stopStatus := context.WithCancel(ctx)
	statusDone := make(chan struct{})
	go func() {
		defer close(statusDone)
		showStatus(statusCtx, line, out, stack.Health, 5*time.Second)
	}()
	<-ctx.Done()
	stopStatus()
	<-statusDone
	fmt.Fprintln(out, "stopping...")
	stopPage()
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	if err := stack.Stop(stopCtx); err != nil {
		return err
	}
	fmt.Fprintln(out, "stopped")
	return nil
}

// opsMux is the operations server's mux: /metrics, the stack's health
// signals in the Prometheus text format. Other pages of the operations
// server register on it too.
func opsMux(stack *localstack.Stack) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", health.MetricsHandler(stack.Health))
	return mux
}

// serveOps serves mux at addr (up --ops-port) and returns its URL and a
// stop.
func serveOps(addr string, mux *http.ServeMux) (string, func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("up: operations server: %w", err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	return "http://" + ln.Addr().String(), func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}, nil
}

// lineLogger is the command's logger writing to w (above up's status
// line), at the level of --log-level; it becomes the default logger, which
// the Beam SDK and Prism log to.
func lineLogger(g *globals, w io.Writer) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(g.LogLevel)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	l := slog.New(console.QuietCancel(slog.NewTextHandler(w, &slog.HandlerOptions{Level: lvl})))
	g.Logger = l
	slog.SetDefault(l)
	return l, nil
}

// serveDebug serves the net/http/pprof handlers at addr (up --debug-addr,
// off by default: cmd/tools/soak reads the goroutine count there) on a mux
// of their own, and returns their URL and a stop.
func serveDebug(addr string) (string, func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("up: debug listener: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	return "http://" + ln.Addr().String() + "/debug/pprof/", func() { srv.Close() }, nil
}

// withInUseHint adds to a refused claim on a directory of the local stack
// (localstack.InUseError) what to do about it.
func withInUseHint(err error) error {
	var e *localstack.InUseError
	if !errors.As(err, &e) {
		return err
	}
	stop := "stop it first (Ctrl-C where it runs)"
	if e.PID > 0 {
		stop = fmt.Sprintf("stop it first (Ctrl-C where it runs, or kill %d)", e.PID)
	}
	switch e.What {
	case "data directory":
		return fmt.Errorf("%w: %s, or give this one another --data-dir", err, stop)
	case "warehouse":
		return fmt.Errorf("%w, and two streams must not store into one warehouse: %s, or give this one another --warehouse (and --data-dir)", err, stop)
	}
	return fmt.Errorf("%w: %s", err, stop)
}

func orMemory(dir string) string {
	if dir == "" {
		return "memory only"
	}
	return dir
}
