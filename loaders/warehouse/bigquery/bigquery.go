// Package bigquery is the BigQuery warehouse backend, for URIs
// "bq://PROJECT.DATASET": rows go through the Storage Write API's default
// stream of each table, setup, queries and partition replacement through the
// BigQuery REST API. It registers itself for the scheme "bq"; link it with
//
//	import _ "github.com/inventory-events/inventory/loaders/warehouse/bigquery"
//
// It is pure Go.
package bigquery

import (
	"context"
	"fmt"
	"os"
	"strings"

	"cloud.google.com/go/civil"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/inventory-events/inventory/loaders/warehouse"
)

// Environment variables that point the BigQuery backend at local servers
// (test fakes or emulators); both are used without authentication.
const (
	// envEmulatorHost is host:port of a server of the BigQuery REST API
	// (datasets, tables, jobs).
	envEmulatorHost = "BIGQUERY_EMULATOR_HOST"
	// envStorageEmulatorHost is host:port of a plaintext gRPC server of the
	// BigQuery Storage Write API.
	envStorageEmulatorHost = "BIGQUERY_STORAGE_EMULATOR_HOST"
)

// scheme is the URI scheme of BigQuery warehouses: "bq://PROJECT.DATASET".
const scheme = "bq"

func init() { warehouse.Register(scheme, backend{}) }

// parseURI splits "bq://PROJECT.DATASET".
func parseURI(uri string) (project, dataset string, err error) {
	rest, ok := strings.CutPrefix(uri, scheme+"://")
	i := strings.LastIndex(rest, ".")
	if !ok || i <= 0 || i == len(rest)-1 {
		return "", "", fmt.Errorf("warehouse: %q: want bq://PROJECT.DATASET", uri)
	}
	return rest[:i], rest[i+1:], nil
}

// backend is the warehouse.Backend of bq:// URIs.
type backend struct{}

func (backend) Open(ctx context.Context, uri string) (warehouse.Writer, error) {
	project, dataset, err := parseURI(uri)
	if err != nil {
		return nil, err
	}
	return Open(ctx, project, dataset, Options{})
}

func (backend) Setup(ctx context.Context, uri, location string, dryRun bool) ([]string, error) {
	project, dataset, err := parseURI(uri)
	if err != nil {
		return nil, err
	}
	return setup(ctx, project, dataset, location, dryRun, Options{})
}

func (backend) Query(ctx context.Context, uri, sql string) (*warehouse.Result, error) {
	project, dataset, err := parseURI(uri)
	if err != nil {
		return nil, err
	}
	return query(ctx, project, dataset, sql, Options{})
}

func (backend) ReplaceDate(ctx context.Context, uri string, date civil.Date, rows warehouse.TableRows) error {
	project, dataset, err := parseURI(uri)
	if err != nil {
		return err
	}
	return replaceDate(ctx, project, dataset, date, rows, Options{})
}

// Options configures the BigQuery backend. Zero values take the
// environment (envEmulatorHost, envStorageEmulatorHost) and defaults.
type Options struct {
	// REST are client options of the BigQuery API client (setup, queries,
	// load jobs).
	REST []option.ClientOption
	// Storage are client options of the Storage Write API client.
	Storage []option.ClientOption
	// MaxAttempts bounds the attempts of one append on transient errors
	// (default 6); backoff starts at 100ms and doubles up to 5s.
	MaxAttempts int
	// BatchRows caps the rows of one AppendRows request (default 500).
	BatchRows int
	// BatchBytes caps the encoded rows of one AppendRows request (default
	// defaultBatchBytes). BigQuery refuses requests of 10 MB or more; a
	// row larger than the cap on its own is rejected to dead_letters.
	BatchBytes int
}

// defaultBatchBytes is the default Options.BatchBytes: below BigQuery's
// 10 MB per AppendRows request, with room for the request's stream name and
// writer schema.
const defaultBatchBytes = 9_000_000

func (o Options) withDefaults() Options {
	if o.REST == nil {
		if host := os.Getenv(envEmulatorHost); host != "" {
			o.REST = []option.ClientOption{
				option.WithEndpoint("http://" + host + "/bigquery/v2/"),
				option.WithoutAuthentication(),
			}
		}
	}
	if o.Storage == nil {
		if host := os.Getenv(envStorageEmulatorHost); host != "" {
			o.Storage = []option.ClientOption{
				option.WithEndpoint(host),
				option.WithoutAuthentication(),
				option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())),
			}
		}
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 6
	}
	if o.BatchRows <= 0 {
		o.BatchRows = 500
	}
	if o.BatchBytes <= 0 {
		o.BatchBytes = defaultBatchBytes
	}
	return o
}
