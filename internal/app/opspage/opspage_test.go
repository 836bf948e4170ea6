package opspage

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/inventory-events/inventory/internal/app/health"
	"github.com/inventory-events/inventory/internal/clock"
	"github.com/inventory-events/inventory/internal/emulator/pubsubemu"
	"github.com/inventory-events/inventory/internal/names"
	"github.com/inventory-events/inventory/loaders/broker"
	"github.com/inventory-events/inventory/loaders/warehouse"
	_ "github.com/inventory-events/inventory/loaders/warehouse/local"
	inventoryv1 "github.com/inventory-events/inventory/proto/inventory/v1"
	"github.com/inventory-events/inventory/transforms/pubsubio"
)

const project = "opspage-test"

// fixedSource is a health.Source of recorded snapshots.
type fixedSource []health.Snapshot

func (f fixedSource) Snapshot(context.Context) (health.Snapshot, error) { return f[len(f)-1], nil }
func (f fixedSource) History() []health.Snapshot                        { return f }

var _ health.Source = fixedSource(nil)

// stalled is a minute of snapshots ending stalled: 1,200 received, 800
// applied, nothing stored for the last 45 s with 400 waiting.
func stalled(now time.Time) fixedSource {
	var out fixedSource
	for i := range 13 {
		at := now.Add(time.Duration(i-12) * 5 * time.Second)
		s := health.Snapshot{At: at, Received: int64(100 * i), Applied: min(int64(100*i), 800), Backlog: max(0, int64(100*i-800)),
			LastCommit: now.Add(-45 * time.Second)}
		out = append(out, s)
	}
	last := &out[len(out)-1]
	last.Stalled, last.StalledFor, last.Reason, last.OldestUnacked = true, 45*time.Second, "the sink fails: <disk full>", 50*time.Second
	last.LastNightly = health.NightlyRun{Date: "2026-11-24", State: "failed", Finished: now.Add(-time.Hour), Detail: "preflight: no rows"}
	return out
}

// testPage serves a page on the local Pub/Sub and a local warehouse
// holding a few keys.
type testPage struct {
	srv   *httptest.Server
	admin *broker.Admin
	wh    string
	now   time.Time // the rows' times are relative to it
}

func startPage(t *testing.T, src health.Source) *testPage {
	t.Helper()
	ctx := context.Background()
	emu, err := pubsubemu.Start("127.0.0.1:0", pubsubemu.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emu.Close() })
	t.Setenv("PUBSUB_EMULATOR_HOST", emu.Addr())
	admin, err := broker.NewAdmin(ctx, project)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	if _, err := admin.Setup(ctx, broker.SetupConfig{Project: project}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	wh := filepath.Join(dir, "warehouse")
	if _, err := warehouse.Setup(ctx, wh, "", false); err != nil {
		t.Fatal(err)
	}
	w, err := warehouse.Open(ctx, wh)
	if err != nil {
		t.Fatal(err)
	}
	now := clock.Now().UTC().Truncate(time.Second)
	level := func(sku, loc string, onHand int64, ago time.Duration) warehouse.StockLevelRow {
		return warehouse.StockLevelRow{SKU: sku, LocationID: loc, OnHand: onHand, EventID: sku + loc, Reason: "SOLD",
			EventTime: now.Add(-ago), ProcessedAt: now.Add(-ago), Threshold: 10, Severity: "OK"}
	}
	prev := int64(12)
	rows := []warehouse.TableRows{
		warehouse.Rows([]warehouse.StockLevelRow{
			level("SKU-A", "STORE-1", 50, time.Hour), level("SKU-A", "STORE-1", 3, time.Minute), // low now
			level("SKU-B", "STORE-1", 10, time.Minute),       // at the default threshold
			level("SKU-C", "STORE-2", 11, time.Minute),       // above it
			level("SKU-<b>x</b>", "STORE-1", 0, time.Minute), // out; a name to escape
			level("SKU-D", "WH-1", 20, time.Minute),          // low under a live rule
		}),
		warehouse.Rows([]warehouse.ThresholdChangeRow{{ChangeID: "c1", SKU: "SKU-D", LocationID: "*", Threshold: 25, PreviousThreshold: &prev,
			ChangedBy: "ana@ops", ChangedAt: now.Add(-30 * time.Minute), Applied: true, RecordedAt: now.Add(-30 * time.Minute)}}),
		warehouse.Rows([]warehouse.AlertRow{{AlertID: "al-1", SKU: "SKU-A", LocationID: "STORE-1", Severity: "LOW", PreviousSeverity: "OK",
			OnHand: 3, Threshold: 10, EventID: "e1", EventTime: now.Add(-time.Minute), AlertTime: now.Add(-time.Minute)}}),
	}
	for _, r := range rows {
		if _, err := w.Write(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	reports := filepath.Join(dir, "reports")
	for _, d := range []string{"2026-11-23", "2026-11-24"} {
		os.MkdirAll(filepath.Join(reports, d), 0o755)
		os.WriteFile(filepath.Join(reports, d, "index.html"), []byte("<h1>report "+d+"</h1>"), 0o644)
	}
	os.WriteFile(filepath.Join(reports, ".secret"), []byte("no"), 0o644)
	th := filepath.Join(dir, "thresholds.csv")
	os.WriteFile(th, []byte("sku,location_id,threshold\nSKU-C,*,5\nSKU-D,*,12\n"), 0o644)

	mux := http.NewServeMux()
	page, err := Register(ctx, mux, Config{Health: src, Project: project, Warehouse: wh, Reports: reports, Thresholds: th})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		srv.Close()
		if err := page.Close(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return &testPage{srv: srv, admin: admin, wh: wh, now: now}
}

// keyCell is the page's cell of a key.
func keyCell(sku, loc string) string {
	return `<td class="key"><span class="sku">` + sku + `</span> <span class="loc">` + loc + `</span></td>`
}

func get(t *testing.T, u string, hdr ...string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "Host" {
			req.Host = hdr[i+1]
		} else {
			req.Header.Set(hdr[i], hdr[i+1])
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		b.WriteString(sc.Text() + "\n")
	}
	return resp.StatusCode, b.String()
}

func TestPageShowsEveryPanel(t *testing.T) {
	p := startPage(t, stalled(clock.Now()))
	now := p.now
	code, body := get(t, p.srv.URL+"/")
	if code != http.StatusOK {
		t.Fatalf("GET /: %d\n%s", code, body)
	}
	for _, want := range []string{
		`STALLED for 45s: nothing stored although 400 messages wait. the sink fails: &lt;disk full&gt;`,
		`<td>received</td><td class="num">1200</td><td class="num">20.0/s</td>`,
		`<td>applied</td><td class="num">800</td><td class="num">13.3/s</td>`,
		`400 undelivered, oldest 50s`,
		`<span class="state state-failed">failed</span>`,
		// Keys: SKU-A low, SKU-B on the default 10, SKU-D below its live
		// rule 25, the escaped one out; SKU-C (11 > 5) is not listed.
		keyCell("SKU-A", "STORE-1") + `<td class="num">3</td><td class="num">10</td><td><span class="sev sev-low">LOW</span>`,
		keyCell("SKU-B", "STORE-1") + `<td class="num">10</td><td class="num">10</td><td><span class="sev sev-at">AT</span>`,
		keyCell("SKU-D", "WH-1") + `<td class="num">20</td><td class="num">25</td>`,
		`<span class="sku">SKU-&lt;b&gt;x&lt;/b&gt;</span>`,
		`<tr data-alert-id="al-1" data-order="` + order(now.Add(-time.Minute), now.Add(-time.Minute)) + `"`,
		keyCell("SKU-D", "*") + `<td class="num">25</td><td>live</td><td class="who"><span class="by">ana@ops</span>`,
		keyCell("SKU-C", "*") + `<td class="num">5</td><td>file</td><td class="who">-</td>`,
		`<a href="/reports/2026-11-24/index.html">2026-11-24</a>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the page lacks %s", want)
		}
	}
	if strings.Contains(body, "<b>x</b>") || strings.Contains(body, keyCell("SKU-C", "STORE-2")) {
		t.Errorf("the page shows raw HTML or a key above its threshold:\n%s", body)
	}
	if !strings.Contains(body, "2026-11-24") || strings.Index(body, "2026-11-24") > strings.Index(body, "2026-11-23") {
		t.Errorf("reports not newest first")
	}

	_, body = get(t, p.srv.URL+"/?q=wh-1")
	_, keys, _ := strings.Cut(body, `id="low-keys"`)
	keys, _, _ = strings.Cut(keys, "</table>")
	if !strings.Contains(keys, keyCell("SKU-D", "WH-1")) || strings.Contains(keys, `"sku">SKU-A<`) {
		t.Errorf("search wh-1 shows another key or misses SKU-D")
	}
	if code, body := get(t, p.srv.URL+"/reports/2026-11-23/index.html"); code != 200 || !strings.Contains(body, "report 2026-11-23") {
		t.Errorf("report: %d %q", code, body)
	}
	if code, _ := get(t, p.srv.URL+"/reports/.secret"); code != http.StatusNotFound {
		t.Errorf("a dot file of the report root: %d, want 404", code)
	}
	if code, body := get(t, p.srv.URL+"/ops/chart.svg"); code != 200 || !strings.HasPrefix(body, "<svg") ||
		!strings.Contains(body, "stroke:rgba(21,101,192,1.0)") || !strings.Contains(body, "stroke:rgba(239,108,0,1.0)") { // received/s, backlog
		t.Errorf("chart: %d %.200q", code, body)
	}
	if code, _ := get(t, p.srv.URL+"/", "Host", "rebind.example.com"); code != http.StatusMisdirectedRequest {
		t.Errorf("a foreign Host: %d, want 421", code)
	}
}

func TestPageWithoutHealth(t *testing.T) {
	p := startPage(t, nil)
	_, body := get(t, p.srv.URL+"/ops/health")
	if !strings.Contains(body, "No health signals are wired") {
		t.Errorf("health without a source: %s", body)
	}
	if code, body := get(t, p.srv.URL+"/ops/chart.svg"); code != 200 || !strings.Contains(body, "collecting the last minutes") {
		t.Errorf("chart without history: %d %q", code, body)
	}
}

// pullChanges returns the threshold updates waiting on the stream's
// subscription.
func pullChanges(t *testing.T, a *broker.Admin) []*pubsubpb.ReceivedMessage {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	resp, err := a.Client.SubscriptionAdminClient.Pull(ctx, &pubsubpb.PullRequest{
		Subscription: pubsubio.SubscriptionPath(project, names.ThresholdSubscription), MaxMessages: 10})
	if err != nil && ctx.Err() == nil {
		t.Fatal(err)
	}
	return resp.GetReceivedMessages()
}

func TestThresholdForm(t *testing.T) {
	p := startPage(t, nil)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	post := func(form url.Values, hdr ...string) (int, string, string) {
		t.Helper()
		req, _ := http.NewRequest("POST", p.srv.URL+"/ops/thresholds", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			b.WriteString(sc.Text() + "\n")
		}
		return resp.StatusCode, resp.Header.Get("Location"), b.String()
	}
	good := url.Values{"sku": {"SKU-A"}, "location": {"STORE-1"}, "threshold": {"40"}, "by": {"ana@ops"}}
	for _, tc := range []struct {
		name string
		form url.Values
		hdr  []string
		code int
		want string
	}{
		{"cross-site", good, []string{"Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example"}, http.StatusForbidden, ""},
		{"foreign origin", good, []string{"Origin", "https://evil.example"}, http.StatusForbidden, ""},
		{"negative", url.Values{"sku": {"SKU-A"}, "location": {"STORE-1"}, "threshold": {"-5"}, "by": {"x"}}, nil, 400, `threshold &#34;-5&#34; is not a whole number`},
		{"not a number", url.Values{"sku": {"SKU-A"}, "location": {"STORE-1"}, "threshold": {"ten"}, "by": {"x"}}, nil, 400, `threshold &#34;ten&#34;`},
		{"bad sku", url.Values{"sku": {"SKU <A>"}, "location": {"STORE-1"}, "threshold": {"5"}, "by": {"x"}}, nil, 400, `SKU &lt;A&gt;`},
		{"nobody", url.Values{"sku": {"SKU-A"}, "location": {"STORE-1"}, "threshold": {"5"}}, nil, 400, "say who makes the change"},
	} {
		code, _, body := post(tc.form, tc.hdr...)
		if code != tc.code || !strings.Contains(body, tc.want) {
			t.Errorf("%s: %d, want %d with %q:\n%.2000s", tc.name, code, tc.code, tc.want, body)
		}
		if tc.code == 400 && !strings.Contains(body, `id="form-error"`) {
			t.Errorf("%s: the page does not show the form's error", tc.name)
		}
	}
	if got := pullChanges(t, p.admin); len(got) != 0 {
		t.Fatalf("refused changes were published: %v", got)
	}

	code, loc, body := post(good, "Sec-Fetch-Site", "same-origin", "Origin", p.srv.URL)
	if code != http.StatusSeeOther || !strings.HasPrefix(loc, "/?changed=") {
		t.Fatalf("a good change: %d %q\n%s", code, loc, body)
	}
	msgs := pullChanges(t, p.admin)
	if len(msgs) != 1 {
		t.Fatalf("%d messages published, want 1", len(msgs))
	}
	var u inventoryv1.ThresholdUpdate
	if err := protojson.Unmarshal(msgs[0].GetMessage().GetData(), &u); err != nil {
		t.Fatal(err)
	}
	id := msgs[0].GetMessage().GetAttributes()["change_id"]
	if u.GetSku() != "SKU-A" || u.GetLocationId() != "STORE-1" || u.GetThreshold() != 40 || u.GetChangedBy() != "ana@ops" || id == "" || !strings.Contains(loc, url.QueryEscape(id)) {
		t.Errorf("published %v (change_id %q), redirect %q", &u, id, loc)
	}
	_, body = get(t, p.srv.URL+loc)
	if !strings.Contains(body, "Published change "+id+": SKU-A STORE-1 → 40 by ana@ops") {
		t.Errorf("the page after the change does not say what was published")
	}
}

func TestAlertFeed(t *testing.T) {
	p := startPage(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", p.srv.URL+"/ops/alerts", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	// The feed subscribes in the background: publish until an alert
	// comes through.
	a := &inventoryv1.LowStockAlert{AlertId: "al-live", Sku: "SKU-A", LocationId: "STORE-1", Severity: inventoryv1.LowStockAlert_LOW,
		OnHand: 3, Threshold: 40, AlertTime: clock.Now().UTC().Format(time.RFC3339Nano)}
	data, _ := protojson.MarshalOptions{UseProtoNames: true}.Marshal(a)
	pub := p.admin.Client.Publisher(pubsubio.TopicPath(project, names.AlertTopic))
	defer pub.Stop()
	go func() {
		for ctx.Err() == nil && !p.srvFeedLive() {
			time.Sleep(50 * time.Millisecond)
		}
		pub.Publish(ctx, &pubsub.Message{Data: data}).Get(ctx)
	}()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if l := sc.Text(); strings.HasPrefix(l, "data: ") {
			if !strings.Contains(l, `"id":"al-live"`) || !strings.Contains(l, `"severity":"LOW"`) || !strings.Contains(l, `"threshold":40`) {
				t.Fatalf("alert event %s", l)
			}
			return
		}
	}
	t.Fatalf("no alert event: %v", sc.Err())
}

// srvFeedLive reports whether the page's subscription exists.
func (p *testPage) srvFeedLive() bool {
	it := p.admin.Client.TopicAdminClient.ListTopicSubscriptions(context.Background(), &pubsubpb.ListTopicSubscriptionsRequest{
		Topic: pubsubio.TopicPath(project, names.AlertTopic)})
	for {
		s, err := it.Next()
		if err != nil {
			return false
		}
		if strings.Contains(s, subscriptionPrefix) {
			return true
		}
	}
}
