package localstack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"cloud.google.com/go/civil"

	"github.com/inventory-events/inventory/internal/app/health"
	"github.com/inventory-events/inventory/internal/emulator/pubsubemu"
	"github.com/inventory-events/inventory/loaders/broker"
	"github.com/inventory-events/inventory/loaders/warehouse"
	"github.com/inventory-events/inventory/pipelines/launch"
	"github.com/inventory-events/inventory/pipelines/nightly"
	"github.com/inventory-events/inventory/pipelines/stream"
	"github.com/inventory-events/inventory/reports/trigger"
)

// Config describes a local stack.
type Config struct {
	Project string
	// EmulatorAddr is where the local Pub/Sub listens ("127.0.0.1:0": any
	// port). DataDir persists it ("": memory only).
	EmulatorAddr string
	DataDir      string
	// EmulatorMaxTopicBytes caps the backlog of each topic of the local
	// Pub/Sub (pubsubemu.Options.MaxTopicBytes; 0: its default).
	EmulatorMaxTopicBytes int64
	// Warehouse is the local warehouse directory; Reports the report root.
	Warehouse string
	Reports   string
	// Snapshot and Thresholds seed the streaming and nightly jobs.
	Snapshot   string
	Thresholds string
	// TriggerAddr is where the trigger service listens.
	TriggerAddr string
	// Cron, when set, fires the nightly trigger on this spec in TimeZone.
	Cron     string
	TimeZone string
	// CompactEvery is how often the warehouse is compacted (0:
	// DefaultCompactEvery; negative: never).
	CompactEvery time.Duration
	Logger       *slog.Logger
	// Holder names the command that runs the stack ("inventory up") in the
	// claims on its directories (ClaimDir): Start claims DataDir and
	// Warehouse, so that a second stack on either is refused, and Stop
	// releases them.
	Holder string
	// WarehouseClaim, when set, is the caller's claim on Warehouse, which
	// the caller releases (the demo: it claims the warehouse before it
	// clears it); Start then takes no claim of its own on it.
	WarehouseClaim *Claim
}

// Stack is a running local stack.
type Stack struct {
	cfg        Config
	Emulator   *pubsubemu.Server
	Admin      *broker.Admin
	Stream     *StreamJob
	Prism      *launch.Prism // the job server the jobs run on
	TriggerURL string        // http://HOST:PORT
	http       *http.Server
	launcher   *trigger.LocalLauncher
	cron       *trigger.LocalCron
	compactor  *compactor
	claims     []*Claim // released last by Stop
	// Health is the stack's health signals (internal/app/health): sampled
	// every second from the running parts, the last ten minutes kept.
	Health     *health.Monitor
	stopHealth func()
	// Setup lists what setup did.
	Setup []string
}

// Start brings the stack up: local Pub/Sub, topics and tables, the
// streaming job, the trigger service and, if configured, the cron. It sets
// PUBSUB_EMULATOR_HOST for this process, so every client here uses the
// local Pub/Sub. On error, what was started is stopped.
func Start(ctx context.Context, cfg Config) (st *Stack, err error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Stack{cfg: cfg}
	defer func() {
		if err != nil {
			s.Stop(context.WithoutCancel(ctx))
		}
	}()
	if err := s.claim(); err != nil {
		return nil, err
	}
	// The job server of the stream and nightly jobs, first: on Linux,
	// confined to loopback (launch.StartPrism).
	if s.Prism, err = launch.StartPrism(ctx); err != nil {
		return nil, err
	}
	s.Emulator, err = pubsubemu.Start(cfg.EmulatorAddr, pubsubemu.Options{DataDir: cfg.DataDir, Logger: cfg.Logger, MaxTopicBytes: cfg.EmulatorMaxTopicBytes})
	if err != nil {
		return nil, fmt.Errorf("localstack: emulator: %w", err)
	}
	os.Setenv("PUBSUB_EMULATOR_HOST", s.Emulator.Addr())
	s.Admin, err = broker.NewAdmin(ctx, cfg.Project)
	if err != nil {
		return nil, err
	}
	acts, err := s.Admin.Setup(ctx, broker.SetupConfig{Project: cfg.Project})
	if err != nil {
		return nil, err
	}
	for _, a := range acts {
		s.Setup = append(s.Setup, a.String())
	}
	lines, err := warehouse.Setup(ctx, cfg.Warehouse, "", false)
	if err != nil {
		return nil, err
	}
	s.Setup = append(s.Setup, lines...)
	s.Stream, err = startStream(ctx, stream.Config{
		Runner: "prism", Project: cfg.Project, Subscription: stream.DefaultSubscription,
		ThresholdSubscription: stream.DefaultThresholdSubscription,
		Thresholds:            cfg.Thresholds, Snapshot: cfg.Snapshot,
		AlertTopic: stream.DefaultAlertTopic, AlertEncoding: "JSON", DeadLetterTopic: stream.DefaultDeadLetterTopic,
		Warehouse: cfg.Warehouse, Restore: true, InProcess: true, // startStream runs Prism here
	})
	if err != nil {
		return nil, err
	}
	if cfg.CompactEvery >= 0 {
		every := cfg.CompactEvery
		if every == 0 {
			every = DefaultCompactEvery
		}
		s.compactor, err = startCompactor(cfg.Warehouse, every, cfg.Logger)
		if err != nil {
			return nil, fmt.Errorf("localstack: compactor: %w", err)
		}
	}
	if err := s.startTrigger(ctx); err != nil {
		return nil, err
	}
	s.startHealth()
	return s, nil
}

// startTrigger starts the nightly trigger service on cfg.TriggerAddr and, if
// configured, the cron firing the nightly schedule at it.
func (s *Stack) startTrigger(ctx context.Context) error {
	s.launcher = trigger.NewLocalLauncher(s.runNightly, s.cfg.Logger)
	ln, err := net.Listen("tcp", s.cfg.TriggerAddr)
	if err != nil {
		return fmt.Errorf("localstack: trigger: %w", err)
	}
	loc, err := time.LoadLocation(s.cfg.TimeZone)
	if err != nil {
		return fmt.Errorf("localstack: time zone: %w", err)
	}
	earliest := func(ctx context.Context) (string, bool, error) {
		d, ok, err := nightly.EarliestDate(ctx, s.cfg.Warehouse, s.cfg.TimeZone)
		return d.String(), ok, err
	}
	s.http = &http.Server{Handler: trigger.NewServer(trigger.Config{Location: loc, Earliest: earliest}, s.launcher, s.cfg.Logger),
		ReadHeaderTimeout: 5 * time.Second}
	s.TriggerURL = "http://" + ln.Addr().String()
	go s.http.Serve(ln)
	if s.cfg.Cron != "" {
		s.cron, err = trigger.StartLocalCron(ctx, s.cfg.Cron, s.cfg.TimeZone, s.TriggerURL+"/v1/nightly")
		if err != nil {
			return err
		}
	}
	return nil
}

// claim claims the stack's data directory and local warehouse (see
// Config.Holder), the data directory first: the local Pub/Sub's own lock on
// its file would only time out.
func (s *Stack) claim() error {
	if s.cfg.DataDir != "" {
		c, err := ClaimDir(s.cfg.DataDir, "data directory", s.cfg.Holder)
		if err != nil {
			return fmt.Errorf("localstack: %w", err)
		}
		s.claims = append(s.claims, c)
	}
	if s.cfg.WarehouseClaim == nil && warehouse.Scheme(s.cfg.Warehouse) == warehouse.LocalScheme {
		c, err := ClaimDir(s.cfg.Warehouse, "warehouse", s.cfg.Holder)
		if err != nil {
			return fmt.Errorf("localstack: %w", err)
		}
		s.claims = append(s.claims, c)
	}
	return nil
}

// Cron returns the local cron, or nil.
func (s *Stack) Cron() *trigger.LocalCron { return s.cron }

// runNightly is the trigger's local engine: the nightly job on Prism here.
func (s *Stack) runNightly(ctx context.Context, date string) (string, error) {
	d, err := civil.ParseDate(date)
	if err != nil {
		return "", err
	}
	res, err := nightly.Run(ctx, nightly.Config{
		Date: d, TimeZone: s.cfg.TimeZone, Warehouse: s.cfg.Warehouse, Snapshot: s.cfg.Snapshot,
		Thresholds: s.cfg.Thresholds, Output: s.cfg.Reports, Runner: "prism",
	})
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%s: %d keys, %d events, %d mismatches", res.OutputURI, res.Keys, res.Events, res.Mismatch), nil
}

// Stop stops everything in reverse order: the cron, the trigger (waiting
// for a running nightly job), the warehouse compactor, the streaming job (drained first: its source
// paused until everything it emitted is in the warehouse and acked), then the
// local Pub/Sub, which flushes its data directory; then it releases the
// claims on the data directory and the warehouse.
func (s *Stack) Stop(ctx context.Context) error {
	var errs []error
	if s.stopHealth != nil {
		s.stopHealth()
	}
	if s.cron != nil {
		s.cron.Stop()
	}
	if s.http != nil {
		errs = append(errs, s.http.Shutdown(ctx))
	}
	if s.launcher != nil {
		errs = append(errs, s.launcher.Close(ctx))
	}
	if s.compactor != nil {
		s.compactor.stop()
	}
	if s.Stream != nil {
		dctx, cancel := context.WithTimeout(ctx, time.Minute)
		if ended, _ := s.Stream.Ended(); ended {
			// A job that failed stores nothing more: no drain to wait for.
		} else if err := s.Stream.drain(dctx); err != nil {
			s.cfg.Logger.Warn("stream not drained before stop; the messages not acked come back on the next start", "err", err)
		}
		cancel()
		errs = append(errs, s.Stream.stop(ctx))
	}
	if s.Admin != nil {
		errs = append(errs, s.Admin.Close())
	}
	if s.Emulator != nil {
		errs = append(errs, s.Emulator.Close())
	}
	for _, c := range s.claims {
		errs = append(errs, c.Release())
	}
	return errors.Join(errs...)
}
