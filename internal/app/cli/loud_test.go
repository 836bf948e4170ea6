package cli

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/inventory-events/inventory/internal/clock"
	"github.com/inventory-events/inventory/internal/emulator/pubsubemu"
	"github.com/inventory-events/inventory/internal/event"
	"github.com/inventory-events/inventory/internal/testkit/slowtest"
	"github.com/inventory-events/inventory/loaders/warehouse"
)

// runCLI runs the inventory command in process and returns what it wrote.
func runCLI(t *testing.T, ctx context.Context, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	root := NewRoot()
	var o, e bytes.Buffer
	root.SetArgs(args)
	root.SetOut(&o)
	root.SetErr(&e)
	root.SetIn(strings.NewReader(""))
	err = root.ExecuteContext(ctx)
	return o.String(), e.String(), err
}

// closedAddr returns an address nothing listens on.
func closedAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// silentAddr returns an address that accepts connections and never answers.
func silentAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	return ln.Addr().String()
}

// TestUnreachablePubSub: publish and setup against a PUBSUB_EMULATOR_HOST
// where nothing listens, or where something listens and never answers,
// fail with "cannot reach Pub/Sub at HOST" instead of a minute of retries
// and a hint to run setup.
func TestUnreachablePubSub(t *testing.T) {
	slowtest.Skip(t, "waits out a Pub/Sub that never answers")
	for name, addr := range map[string]string{"closed": closedAddr(t), "silent": silentAddr(t)} {
		t.Run(name, func(t *testing.T) {
			t.Setenv("PUBSUB_EMULATOR_HOST", addr)
			for _, args := range [][]string{{"publish", sampleCSV}, {"setup", "--warehouse", t.TempDir()}} {
				// An upper bound only, far above ProbeTimeout; the client's
				// own retries take a minute or two.
				ctx, cancel := context.WithTimeout(context.Background(), 3*probeTimeout)
				_, _, err := runCLI(t, ctx, args...)
				cancel()
				if err == nil || !strings.Contains(err.Error(), "cannot reach Pub/Sub at "+addr) {
					t.Errorf("%s: %v, want cannot reach Pub/Sub at %s", args[0], err, addr)
				}
				if err != nil && strings.Contains(err.Error(), "setup first") {
					t.Errorf("%s: a wrong hint: %v", args[0], err)
				}
			}
		})
	}
}

// TestPublishBadHeader: a CSV with a bad header fails on the header before
// the broker is touched (here there is no broker at all).
func TestPublishBadHeader(t *testing.T) {
	t.Setenv("PUBSUB_EMULATOR_HOST", closedAddr(t))
	bad := filepath.Join(t.TempDir(), "bad.csv")
	os.WriteFile(bad, []byte("id,when,what\n1,2,3\n"), 0o644)
	_, _, err := runCLI(t, context.Background(), "publish", bad)
	if err == nil || !strings.Contains(err.Error(), "header lacks event_id") || strings.Contains(err.Error(), "Pub/Sub") {
		t.Fatalf("got %v, want the header refused first", err)
	}
}

// badLines returns the origins FILE:LINE of the sample's invalid rows.
func badLines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := event.NewCSVReader(f, path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for {
		var a event.Adjustment
		err := r.Next(&a)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil || event.Validate(&a, clock.Now()) != nil {
			out = append(out, path+":"+strconv.Itoa(r.Line()))
		}
	}
	sort.Strings(out)
	return out
}

// publishOrigins returns the sorted origins of the publish-stage rows of
// dead_letters.
func publishOrigins(t *testing.T, wh string) []string {
	t.Helper()
	rows, err := warehouse.QueryRows(context.Background(), wh,
		"SELECT origin, reason FROM dead_letters WHERE stage = 'publish' ORDER BY origin")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range rows {
		if r["reason"] == "" {
			t.Errorf("dead letter %v has no reason", r)
		}
		out = append(out, r["origin"].(string))
	}
	sort.Strings(out)
	return out
}

// TestPublishDeadLettersInWarehouse: rows refused at publish reach the
// dead_letters table, with their reason, stage and line; a clean publish
// prints one summary line.
func TestPublishDeadLettersInWarehouse(t *testing.T) {
	emu, err := pubsubemu.Start("127.0.0.1:0", pubsubemu.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer emu.Close()
	t.Setenv("PUBSUB_EMULATOR_HOST", emu.Addr())
	ctx := context.Background()
	wh := filepath.Join(t.TempDir(), "warehouse")
	if _, _, err := runCLI(t, ctx, "setup", "--project", "p", "--warehouse", wh); err != nil {
		t.Fatal(err)
	}
	_, stderr, err := runCLI(t, ctx, "publish", "--project", "p", "--warehouse", wh, sampleCSV)
	if err == nil || !strings.Contains(err.Error(), "6 of 600 rows rejected") {
		t.Fatalf("publish: %v\n%s", err, stderr)
	}
	want := badLines(t, sampleCSV)
	if got := publishOrigins(t, wh); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("dead_letters publish origins %v, want %v", got, want)
	}

	// A clean file: exactly one line, the summary.
	clean := filepath.Join(t.TempDir(), "clean.csv")
	if _, _, err := runCLI(t, ctx, "gen", "--events", "50", "-o", clean); err != nil {
		t.Fatal(err)
	}
	_, stderr, err = runCLI(t, ctx, "publish", "--project", "p", "--warehouse", wh, clean)
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(stderr), "\n"); len(lines) != 1 || !strings.HasPrefix(lines[0], "published 50 rows of "+clean) {
		t.Fatalf("publish printed %q, want one summary line", stderr)
	}
	// An explicit warehouse that is not there is refused before publishing.
	_, _, err = runCLI(t, ctx, "publish", "--project", "p", "--warehouse", "/no/such/warehouse", clean)
	if err == nil || !strings.Contains(err.Error(), `"/no/such/warehouse"`) {
		t.Fatalf("publish --warehouse /no/such/warehouse: %v", err)
	}
}

// TestSplitCSVKeepsLineNumbers: the demo's second half reports the line
// numbers of the whole file (it said :89 where publish says :389).
func TestSplitCSVKeepsLineNumbers(t *testing.T) {
	first, second, err := splitCSV(sampleCSV)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var got []string
	for i, part := range [][]byte{first, second} {
		p := filepath.Join(dir, "half"+strconv.Itoa(i)+".csv")
		os.WriteFile(p, part, 0o644)
		for _, o := range badLines(t, p) {
			got = append(got, sampleCSV+o[strings.LastIndex(o, ":"):])
		}
	}
	sort.Strings(got)
	want := badLines(t, sampleCSV)
	if strings.Join(got, " ") != strings.Join(want, " ") || len(want) != 6 {
		t.Fatalf("halves report %v, the file %v", got, want)
	}
}

// TestSQL: a missing warehouse is an error, and only queries run: DuckDB
// parses the statement, so what a comment, quote or escape hides from a
// reader of the text cannot get past it (the first five each wrote a file
// through the keyword scanner `sql` once had).
func TestSQL(t *testing.T) {
	ctx := context.Background()
	if _, _, err := runCLI(t, ctx, "sql", "--warehouse", "/no/such/dir", "SELECT 1"); err == nil || !strings.Contains(err.Error(), `"/no/such/dir"`) {
		t.Fatalf("missing warehouse: %v", err)
	}
	if _, _, err := runCLI(t, ctx, "sql", "--warehouse", t.TempDir(), "SELECT 1"); err == nil || !strings.Contains(err.Error(), "not a warehouse") {
		t.Fatalf("empty directory: %v", err)
	}
	wh := filepath.Join(t.TempDir(), "wh")
	if _, err := warehouse.Setup(ctx, wh, "", false); err != nil {
		t.Fatal(err)
	}
	out, _, err := runCLI(t, ctx, "sql", "--warehouse", wh, "--format", "csv",
		"WITH x AS (SELECT 41 AS n) SELECT n + 1 AS answer, 'drop; copy' AS s FROM x -- delete")
	if err != nil || !strings.Contains(out, "42") {
		t.Fatalf("a query: %q %v", out, err)
	}
	dir := t.TempDir()
	target := filepath.Join(dir, "out.csv")
	copyTo := "COPY (SELECT 1) TO '" + target + "'"
	for _, q := range []string{
		"SELECT 1; --\r" + copyTo,
		"SELECT $$'$$; " + copyTo + " --'",
		"SELECT 1 /* /* */ ' */; " + copyTo + " --'",
		"/* /* */ SELECT ' */ " + copyTo + " --'",
		"SELECT E'\\''; " + copyTo + " --'",
		"SELECT * FROM read_csv('/etc/passwd')",
		copyTo,
		"CREATE TABLE t AS SELECT 1",
		"ATTACH '" + target + ".db' AS x",
		"INSTALL httpfs",
		"LOAD httpfs",
		"SET enable_external_access = true",
		"PRAGMA enable_profiling",
		"SELECT 1; " + copyTo,
		"WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x",
		"EXPLAIN ANALYZE " + copyTo,
		"",
	} {
		if out, _, err := runCLI(t, ctx, "sql", "--warehouse", wh, q); err == nil {
			t.Errorf("%q ran: %q", q, out)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("a refused statement wrote %s", ents[0].Name())
	}
}

// TestGenFlags: bad flags are refused naming the value; success is one line.
func TestGenFlags(t *testing.T) {
	ctx := context.Background()
	for args, want := range map[string]string{
		"--events -5":        "--events -5",
		"--span 0s":          "--span 0s",
		"--span -1h":         "--span -1h0m0s",
		"--skus 0":           "--skus 0",
		"--locations -1":     "--locations -1",
		"--invalid-every -2": "--invalid-every -2",
		"--start yesterday":  `--start "yesterday"`,
	} {
		_, _, err := runCLI(t, ctx, append([]string{"gen"}, strings.Fields(args)...)...)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("gen %s: %v, want an error naming %s", args, err, want)
		}
	}
	out := filepath.Join(t.TempDir(), "e.csv")
	stdout, stderr, err := runCLI(t, ctx, "gen", "--events", "1234", "-o", out)
	if err != nil || stdout != "" {
		t.Fatal(err, stdout)
	}
	if lines := strings.Split(strings.TrimSpace(stderr), "\n"); len(lines) != 1 || !strings.HasPrefix(lines[0], "gen: wrote 1,234 rows") {
		t.Fatalf("gen printed %q", stderr)
	}
}
