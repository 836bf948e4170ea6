package main

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/inventory-events/inventory/reports/trigger"
)

// config is the service's configuration, read from the environment.
type config struct {
	Port     string
	Mode     string // production or local
	Location *time.Location
	LogLevel slog.Level
	// Host is the address the service listens on: every interface in
	// production (Cloud Run), loopback only locally (the local trigger
	// checks no token).
	Host string
	// Wait is how long a single-date request waits for its run
	// (trigger.Config.Wait).
	Wait time.Duration

	// production
	Dataflow      trigger.DataflowConfig
	Audiences     []string
	InvokerEmails []string

	// local
	NightlyCommand []string // argv; the report date is passed as --date=YYYY-MM-DD
	LocalCron      string   // cron spec, or "off"
	MaxRuns        int      // nightly runs at once
}

// loadConfig reads:
//
//	PORT                 listen port (8080)
//	MODE                 production (default) or local
//	TIME_ZONE            IANA zone of report dates (UTC)
//	LOG_LEVEL            debug, info, warn, error (info)
//	RUN_WAIT             how long POST ?date= waits for its run: a failed run is answered 500, one
//	                     still going 503 with Retry-After, so that Scheduler retries (production 100s,
//	                     under the service's request timeout; local 0: answer 202 at launch)
//	production:
//	  PROJECT, REGION, TEMPLATE_GCS_PATH   required
//	  EXPECTED_AUDIENCE                    required: the audience(s) of callers' ID tokens, comma-separated:
//	                                       the service's URLs, https://SERVICE-PROJECTNUMBER.REGION.run.app
//	                                       and https://SERVICE-HASH-REGIONCODE.a.run.app
//	  INVOKER_SA_EMAIL                     required: allowed caller(s), comma-separated
//	  TEMPLATE_PARAMETERS                  k=v,k=v passed to every launch
//	  DATE_PARAMETER                       template parameter for the date (date)
//	  DATAFLOW_SERVICE_ACCOUNT, TEMP_LOCATION, STAGING_LOCATION, MAX_WORKERS, SUBNETWORK
//	local (listens on 127.0.0.1 only):
//	  NIGHTLY_COMMAND      command running the nightly job on Prism, e.g. "bin/nightly --runner=prism"
//	  LOCAL_CRON           cron spec fired at this service (0 3 * * *), or off
//	  MAX_RUNS             nightly runs at once (2); more are answered 429
func loadConfig(getenv func(string) string) (config, error) {
	env := func(k, def string) string {
		if v := strings.TrimSpace(getenv(k)); v != "" {
			return v
		}
		return def
	}
	c := config{Port: env("PORT", "8080"), Mode: env("MODE", "production")}
	if _, err := strconv.ParseUint(c.Port, 10, 16); err != nil {
		return c, fmt.Errorf("PORT %q: not a port", c.Port)
	}
	loc, err := time.LoadLocation(env("TIME_ZONE", "UTC"))
	if err != nil {
		return c, fmt.Errorf("TIME_ZONE: %w", err)
	}
	c.Location = loc
	if err := c.LogLevel.UnmarshalText([]byte(env("LOG_LEVEL", "info"))); err != nil {
		return c, fmt.Errorf("LOG_LEVEL: %w", err)
	}
	switch c.Mode {
	case "production":
		err = c.loadProduction(env)
	case "local":
		err = c.loadLocal(env)
	default:
		err = fmt.Errorf("MODE %q: want production or local", c.Mode)
	}
	return c, err
}

// loadWait reads RUN_WAIT, def when unset.
func (c *config) loadWait(env func(k, def string) string, def string) error {
	v := env("RUN_WAIT", def)
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return fmt.Errorf("RUN_WAIT %q: not a duration", v)
	}
	c.Wait = d
	return nil
}

// loadProduction reads what MODE=production needs: the Dataflow template
// launch and the OIDC callers.
func (c *config) loadProduction(env func(k, def string) string) error {
	if err := c.loadWait(env, "100s"); err != nil {
		return err
	}
	var missing []string
	for _, k := range []string{"PROJECT", "REGION", "TEMPLATE_GCS_PATH", "EXPECTED_AUDIENCE", "INVOKER_SA_EMAIL"} {
		if env(k, "") == "" {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("MODE=production needs %s", strings.Join(missing, ", "))
	}
	params, err := parseKV(env("TEMPLATE_PARAMETERS", ""))
	if err != nil {
		return fmt.Errorf("TEMPLATE_PARAMETERS: %w", err)
	}
	var maxWorkers int64
	if v := env("MAX_WORKERS", ""); v != "" {
		if maxWorkers, err = strconv.ParseInt(v, 10, 32); err != nil || maxWorkers < 0 {
			return fmt.Errorf("MAX_WORKERS %q: not a count", v)
		}
	}
	c.Dataflow = trigger.DataflowConfig{
		Project:             env("PROJECT", ""),
		Region:              env("REGION", ""),
		TemplatePath:        env("TEMPLATE_GCS_PATH", ""),
		Parameters:          params,
		DateParameter:       env("DATE_PARAMETER", "date"),
		ServiceAccountEmail: env("DATAFLOW_SERVICE_ACCOUNT", ""),
		TempLocation:        env("TEMP_LOCATION", ""),
		StagingLocation:     env("STAGING_LOCATION", ""),
		MaxWorkers:          int32(maxWorkers),
		Subnetwork:          env("SUBNETWORK", ""),
	}
	if !strings.HasPrefix(c.Dataflow.TemplatePath, "gs://") {
		return fmt.Errorf("TEMPLATE_GCS_PATH %q: want gs://", c.Dataflow.TemplatePath)
	}
	if c.Dataflow.Parameters[c.Dataflow.DateParameter] != "" {
		return fmt.Errorf("TEMPLATE_PARAMETERS must not set %s: the trigger sets it", c.Dataflow.DateParameter)
	}
	c.Audiences = commaList(env("EXPECTED_AUDIENCE", ""))
	c.InvokerEmails = commaList(env("INVOKER_SA_EMAIL", ""))
	return nil
}

// loadLocal reads what MODE=local needs: the nightly job's command line,
// the runs at once and the in-process schedule.
func (c *config) loadLocal(env func(k, def string) string) error {
	c.Host = "127.0.0.1"
	if err := c.loadWait(env, "0s"); err != nil {
		return err
	}
	n, err := strconv.Atoi(env("MAX_RUNS", strconv.Itoa(trigger.DefaultMaxRunning)))
	if err != nil || n < 1 {
		return fmt.Errorf("MAX_RUNS %q: not a count of at least 1", env("MAX_RUNS", ""))
	}
	c.MaxRuns = n
	c.NightlyCommand = strings.Fields(env("NIGHTLY_COMMAND", ""))
	if len(c.NightlyCommand) == 0 {
		return errors.New("MODE=local needs NIGHTLY_COMMAND (the nightly job's command line)")
	}
	c.LocalCron = env("LOCAL_CRON", trigger.DefaultSchedule)
	if c.LocalCron != "off" {
		if _, err := trigger.ParseCron(c.LocalCron); err != nil {
			return fmt.Errorf("LOCAL_CRON: %w", err)
		}
	}
	return nil
}

// commaList splits a comma-separated list, dropping blanks.
func commaList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

func parseKV(s string) (map[string]string, error) {
	out := map[string]string{}
	if s == "" {
		return out, nil
	}
	for _, pair := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(pair, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("%q: want key=value", pair)
		}
		out[k] = strings.TrimSpace(v)
	}
	return out, nil
}
