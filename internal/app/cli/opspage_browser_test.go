//go:build browser

package cli

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/inventory-events/inventory/loaders/broker"
	"github.com/inventory-events/inventory/loaders/warehouse"
)

// The browser tier (make test-browser): the operations page of a real
// `inventory up`, driven in headless Chromium from the OS packages.

// chromiumPath finds Chromium: $CHROMIUM when set, else chromium on the
// PATH. Where there is none the test is skipped, except in CI (CI=true),
// where it fails.
func chromiumPath(t *testing.T) string {
	t.Helper()
	names := []string{"chromium", "chromium-browser"}
	if c := os.Getenv("CHROMIUM"); c != "" {
		names = []string{c}
	}
	for _, n := range names {
		if path, err := exec.LookPath(n); err == nil {
			return path
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("no Chromium (%s): install it (apt-get install -y chromium); CI=true, so this is a failure", strings.Join(names, ", "))
	}
	t.Skipf("no Chromium (%s): apt-get install -y chromium", strings.Join(names, ", "))
	return ""
}

// browser starts headless Chromium with a new empty profile and nothing
// that reaches the network by itself.
func browser(t *testing.T, path string) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 900))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(cancel2)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v", path, err)
	}
	return ctx
}

// screenshot saves a full-page PNG at width px wide into
// $OPSPAGE_SCREENSHOTS, a path from the repository root (unset: not saved).
func screenshot(t *testing.T, ctx context.Context, url, name string, width int64, mobile bool) {
	t.Helper()
	dir := os.Getenv("OPSPAGE_SCREENSHOTS")
	if dir == "" {
		return
	}
	err := chromedp.Do(ctx,
		chromedp.EmulateViewport(width, 900, func(p *emulation.SetDeviceMetricsOverrideParams, _ *emulation.SetTouchEmulationEnabledParams) {
			p.Mobile = mobile
		}),
		chromedp.Navigate(url), chromedp.WaitVisible(`#alert-feed`), chromedp.Sleep(2*time.Second))
	var png []byte
	if err == nil {
		png, err = chromedp.Run(ctx, chromedp.FullScreenshot(100))
	}
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if !filepath.IsAbs(dir) {
		dir = filepath.Join("..", "..", "..", dir) // this package's folder is internal/app/cli
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestOpsPageInBrowser starts `inventory up`, publishes the sample, counts
// SKU-WEB at STORE-WEB at 30 (default threshold 10), opens the operations
// page, raises the key's threshold to 40 through the page's form, and
// waits for the LOW alert to arrive in the page's live feed. The key is
// then listed at or below its threshold, the rule shows who changed it,
// and the nightly report the trigger wrote opens from the page.
func TestOpsPageInBrowser(t *testing.T) {
	chromium := chromiumPath(t)
	dir := t.TempDir()
	const project = "ops-page"
	wh := filepath.Join(dir, "warehouse")
	up := startUp(t, "--port", "0", "--trigger-port", "0", "--ops-port", "0", "--no-cron", "--data-dir", filepath.Join(dir, "pubsub"),
		"--warehouse", wh, "--reports", filepath.Join(dir, "reports"), "--snapshot", sampleSnap, "--thresholds", sampleTh,
		"--project", project)
	defer up.interrupt(t)
	var opsURL, triggerURL string
	for _, l := range strings.Split(up.stderr.String(), "\n") {
		f := strings.Fields(l)
		if len(f) > 1 && f[0] == "ops" {
			if u, err := url.Parse(f[1]); err == nil {
				opsURL = u.Scheme + "://" + u.Host + "/"
			}
		}
		if len(f) > 1 && f[0] == "trigger" {
			triggerURL = strings.TrimSuffix(f[1], "/v1/nightly")
		}
	}
	if !strings.HasPrefix(opsURL, "http://127.0.0.1:") || triggerURL == "" {
		t.Fatalf("up did not state the operations page on loopback and the trigger:\n%s", up.stderr)
	}

	// The sample and the key of the test, stored by the stream.
	ctx := context.Background()
	t.Setenv("PUBSUB_EMULATOR_HOST", up.pubsub)
	admin, err := broker.NewAdmin(ctx, project)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	sample, err := os.Open(sampleCSV)
	if err != nil {
		t.Fatal(err)
	}
	defer sample.Close()
	st, err := broker.NewPublisher(admin, broker.PublishConfig{Topic: "inventory-topic", Format: "json"}).Publish(ctx, sample)
	if err != nil {
		t.Fatal(err)
	}
	key := fmt.Sprintf("event_id,event_time,sku,location_id,reason,quantity,source\nweb-1,%s,SKU-WEB,STORE-WEB,COUNTED,30,test\n",
		time.Now().UTC().Format(time.RFC3339Nano))
	if _, err := broker.NewPublisher(admin, broker.PublishConfig{Topic: "inventory-topic", Format: "json"}).Publish(ctx, strings.NewReader(key)); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 3*time.Minute, "the sample and the count stored", func() bool {
		n, err := warehouse.QueryInt(ctx, wh, "SELECT count(DISTINCT event_id) FROM adjustments")
		return err == nil && n >= int64(st.Published)+1
	})
	if _, err := triggerNightly(ctx, triggerURL, "2026-11-24"); err != nil {
		t.Fatalf("nightly: %v", err)
	}

	b := browser(t, chromium)
	text := func(sel string) string {
		v, err := chromedp.Run(b, chromedp.Text(sel))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return v
	}
	failed := func(what string, err error) {
		html, _ := chromedp.Run(b, chromedp.OuterHTML("body"))
		t.Fatalf("in the browser, %s: %v\n%s", what, err, html)
	}
	// One tab watches the page, loaded before the change; another submits
	// the form.
	start := time.Now()
	if err := chromedp.Do(b,
		chromedp.Navigate(opsURL),
		chromedp.WaitVisible(`#alert-feed`),
		chromedp.Poll[chromedp.Void](`document.getElementById("feed-state").textContent === "live"`, chromedp.WithPollingTimeout(30*time.Second)),
	); err != nil {
		failed("the page and its live feed", err)
	}
	form, cancelForm := chromedp.NewContext(b)
	defer cancelForm()
	if err := chromedp.Do(form,
		chromedp.Navigate(opsURL+"#rules"),
		chromedp.SetValue(`#set input[name=sku]`, "SKU-WEB"),
		chromedp.SetValue(`#set input[name=location]`, "STORE-WEB"),
		chromedp.SetValue(`#set input[name=threshold]`, "40"),
		chromedp.SetValue(`#set input[name=by]`, "browser-test"),
		chromedp.Click(`#set button[type=submit]`),
		chromedp.WaitVisible(`#change-done`),
	); err != nil {
		html, _ := chromedp.Run(form, chromedp.OuterHTML("body"))
		t.Fatalf("the threshold form: %v\n%s", err, html)
	}
	done, err := chromedp.Run(form, chromedp.Text(`#change-done`))
	if err != nil {
		t.Fatal(err)
	}
	// The alert arrives in the watching tab through the live feed (no
	// reload there: the rows the script adds are marked data-live).
	if err := chromedp.Do(b, chromedp.Poll[chromedp.Void](
		`[...document.querySelectorAll("#alert-feed tr[data-live]")].some(r => r.textContent.includes("SKU-WEB") && r.textContent.includes("LOW") && r.textContent.includes("40"))`,
		chromedp.WithPollingTimeout(60*time.Second))); err != nil {
		failed("the LOW alert of SKU-WEB in the live feed", err)
	}
	t.Logf("threshold change published through the form; its LOW alert in the live feed of the other tab %s after that tab loaded", time.Since(start).Round(10*time.Millisecond))
	if !strings.Contains(done, "SKU-WEB STORE-WEB → 40 by browser-test") {
		t.Errorf("the page after the change says %q", done)
	}
	rows, err := warehouse.QueryRows(ctx, wh, "SELECT changed_by FROM threshold_changes WHERE sku = 'SKU-WEB' AND threshold = 40")
	if err != nil || len(rows) != 1 || rows[0]["changed_by"] != "browser-test" {
		t.Errorf("threshold_changes of SKU-WEB: %v %v", rows, err)
	}

	// Reloaded: the key is at or below its new threshold, the rule says
	// who changed it; a search finds the key alone.
	if err := chromedp.Do(b, chromedp.Navigate(opsURL+"?q=web"), chromedp.WaitVisible(`#low-keys`)); err != nil {
		failed("the search", err)
	}
	lowKeys, rules := text(`#low-keys`), text(`#rule-table`)
	if !strings.Contains(lowKeys, "SKU-WEB") || !strings.Contains(lowKeys, "LOW") || strings.Contains(lowKeys, "SKU-0000") {
		t.Errorf("keys at or below threshold, searched for web:\n%s", lowKeys)
	}
	if !strings.Contains(rules, "browser-test") || !strings.Contains(rules, "live") {
		t.Errorf("rules, searched for web:\n%s", rules)
	}

	// The nightly report, linked from the page.
	waitUntil(t, 4*time.Minute, "the nightly report", func() bool {
		resp, err := http.Get(opsURL + "reports/2026-11-24/index.html")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	err = chromedp.Do(b, chromedp.Navigate(opsURL), chromedp.WaitVisible(`#reports a`),
		chromedp.Click(`#reports a`), chromedp.WaitReady(`body`), chromedp.Sleep(time.Second))
	title := ""
	if err == nil {
		title, err = chromedp.Run(b, chromedp.Title())
	}
	if err != nil || !strings.Contains(title, "2026-11-24") {
		t.Errorf("the report linked from the page: title %q, %v", title, err)
	}

	screenshot(t, b, opsURL, "opspage-1280.png", 1280, false)
	screenshot(t, b, opsURL, "opspage-390.png", 390, true)
}

// waitUntil polls cond every 500 ms until it holds, or fails after d.
func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, d)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
