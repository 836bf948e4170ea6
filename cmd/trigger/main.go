// Command trigger is the Cloud Run service that launches the nightly summary:
// the Dataflow Flex Template in production (callers verified by their OIDC
// token), the nightly job on Prism in the background locally. See
// reports/trigger and loadConfig for the environment it reads.
package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"google.golang.org/api/idtoken"

	"github.com/inventory-events/inventory/loaders/warehouse"
	_ "github.com/inventory-events/inventory/loaders/warehouse/bigquery" // bq:// warehouses
	"github.com/inventory-events/inventory/reports/trigger"
)

func main() {
	logger := trigger.NewLogger(os.Stdout, slog.LevelInfo)
	cfg, err := loadConfig(os.Getenv)
	if err != nil {
		logger.Error("configuration", "error", err)
		os.Exit(2)
	}
	logger = trigger.NewLogger(os.Stdout, cfg.LogLevel)
	slog.SetDefault(logger)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx, cfg, logger); err != nil {
		logger.Error("trigger service failed", "error", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg config, logger *slog.Logger) error {
	srvCfg := trigger.Config{Location: cfg.Location, Wait: cfg.Wait}
	var launcher trigger.Launcher
	var closeLauncher func(context.Context) error
	switch cfg.Mode {
	case "production":
		dl, err := trigger.NewDataflowLauncher(ctx, cfg.Dataflow)
		if err != nil {
			return err
		}
		launcher, closeLauncher = dl, func(context.Context) error { return dl.Close() }
		v, err := idtoken.NewValidator(ctx)
		if err != nil {
			return err
		}
		srvCfg.Auth, err = trigger.RequireOIDC(v, trigger.OIDCConfig{Audiences: cfg.Audiences, AllowedEmails: cfg.InvokerEmails}, logger)
		if err != nil {
			return err
		}
		srvCfg.Earliest = earliest(cfg.Dataflow.Parameters["warehouse"], cfg.Location)
	case "local":
		ll := trigger.NewLocalLauncher(trigger.CommandRunner(cfg.NightlyCommand, "--date"), logger)
		ll.MaxRunning = cfg.MaxRuns
		launcher, closeLauncher = ll, ll.Close
	}

	srv := &http.Server{
		Addr:              net.JoinHostPort(cfg.Host, cfg.Port),
		Handler:           trigger.NewServer(srvCfg, launcher, logger),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      cfg.Wait + 2*time.Minute, // a Dataflow launch can take tens of seconds, then the wait
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    32 << 10,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	lis, err := net.Listen("tcp", srv.Addr)
	if err != nil {
		return err
	}
	if cfg.Mode == "local" && cfg.LocalCron != "off" {
		url := "http://" + net.JoinHostPort("127.0.0.1", cfg.Port) + "/v1/nightly"
		if _, err := trigger.StartLocalCron(ctx, cfg.LocalCron, cfg.Location.String(), url); err != nil {
			return err
		}
	}

	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	logger.Info("trigger service listening", "address", lis.Addr().String(), "mode", cfg.Mode)
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}

	// Cloud Run allows 10 s after SIGTERM.
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	err = srv.Shutdown(shutdownCtx)
	if cerr := closeLauncher(shutdownCtx); cerr != nil {
		err = errors.Join(err, cerr)
	}
	return err
}

// earliest returns the check of a backfill's start against the first day
// with data in the job's warehouse (the template's warehouse parameter), or
// nil when the launch names no warehouse.
func earliest(uri string, loc *time.Location) func(context.Context) (string, bool, error) {
	if uri == "" {
		return nil
	}
	return func(ctx context.Context) (string, bool, error) {
		d, ok, err := warehouse.FirstDataDate(ctx, uri, loc.String())
		return d.String(), ok, err
	}
}
