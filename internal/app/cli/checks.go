package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/api/iterator"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/inventory-events/inventory/internal/event"
	"github.com/inventory-events/inventory/loaders/broker"
	"github.com/inventory-events/inventory/loaders/warehouse"
)

// probeTimeout bounds how long a command waits to learn that Pub/Sub is
// not there, instead of the client's minute of retries.
const probeTimeout = 8 * time.Second

// pubsubHost is where the client library talks to: the emulator's address,
// or the Pub/Sub API's.
func pubsubHost() string {
	if h := os.Getenv("PUBSUB_EMULATOR_HOST"); h != "" {
		return h
	}
	return "pubsub.googleapis.com:443"
}

// probePubSub fails fast, with "cannot reach Pub/Sub at HOST", when nothing
// answers there: a TCP dial to the emulator, then one ListTopics call under
// a deadline. Answers other than "unavailable" (a permission denied, say)
// mean Pub/Sub is there, and are left to the command itself.
func probePubSub(ctx context.Context, admin *broker.Admin) error {
	host := pubsubHost()
	fail := func(err error) error {
		hint := ""
		if os.Getenv("PUBSUB_EMULATOR_HOST") != "" {
			hint = " (PUBSUB_EMULATOR_HOST is set: is `inventory up` or `inventory emulator` running there?)"
		}
		return fmt.Errorf("cannot reach Pub/Sub at %s: %v%s", host, err, hint)
	}
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	if os.Getenv("PUBSUB_EMULATOR_HOST") != "" {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", host)
		if err != nil {
			return fail(err)
		}
		c.Close()
	}
	it := admin.Client.TopicAdminClient.ListTopics(ctx, &pubsubpb.ListTopicsRequest{Project: "projects/" + admin.Project, PageSize: 1})
	_, err := it.Next()
	if err == nil || errors.Is(err, iterator.Done) {
		return nil
	}
	if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) {
		return fail(fmt.Errorf("no answer within %s", probeTimeout))
	}
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded:
		return fail(err)
	}
	return nil
}

// checkHeader reads the CSV header of r and checks it, before anything
// talks to the broker. It returns a reader of the whole input again.
func checkHeader(r io.Reader, name string) (io.Reader, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	header, err := br.ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("publish: read %s: %w", name, err)
	}
	if _, err := event.NewCSVReader(strings.NewReader(header), name); err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	return io.MultiReader(strings.NewReader(header), br), nil
}

// deadLetterSink gathers the rows a publish refused, as dead_letters rows of
// the publish stage, and stores them in a warehouse.
type deadLetterSink struct {
	name string
	mu   sync.Mutex
	rows []warehouse.DeadLetterRow
}

// add is a broker.PublishConfig.OnReject.
func (d *deadLetterSink) add(line int, payload []byte, inv *event.Invalid) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.addAt(line, payload, inv, 0)
}

// addAt records a row rejected at line+offset.
func (d *deadLetterSink) addAt(line int, payload []byte, inv *event.Invalid, offset int) {
	d.rows = append(d.rows, warehouse.DeadLetterRow{
		Reason: inv.Code, Error: inv.Error(), Payload: append([]byte(nil), payload...), Attributes: "{}",
		Stage: warehouse.StagePublish, Origin: fmt.Sprintf("%s:%d", d.name, line+offset),
		DeadLetteredAt: time.Now().UTC(),
	})
}

// store writes the gathered rows to the dead_letters table of uri.
func (d *deadLetterSink) store(ctx context.Context, uri string) error {
	d.mu.Lock()
	rows := d.rows
	d.rows = nil
	d.mu.Unlock()
	if len(rows) == 0 || uri == "" {
		return nil
	}
	w, err := warehouse.Open(ctx, uri)
	if err != nil {
		return fmt.Errorf("store %d dead letters: %w", len(rows), err)
	}
	defer w.Close()
	if _, err := w.Write(ctx, warehouse.Rows(rows)); err != nil {
		return fmt.Errorf("store %d dead letters in %s: %w", len(rows), uri, err)
	}
	return nil
}

// publishWarehouse resolves publish's --warehouse: an explicit value must
// exist (a local directory); the default is used only when it exists.
func publishWarehouse(uri string, explicit bool) (string, error) {
	if uri == "" || strings.HasPrefix(uri, "bq://") {
		return uri, nil
	}
	if _, err := os.Stat(uri); err != nil {
		if explicit {
			return "", fmt.Errorf("publish: --warehouse %q: no such directory (run `inventory setup --warehouse %s` first)", uri, uri)
		}
		return "", nil
	}
	return uri, nil
}
