package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestGoroutines(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/debug/pprof/goroutine" || r.URL.Query().Get("debug") != "1" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte("goroutine profile: total 245\n3 @ 0x1 0x2\n"))
	}))
	defer srv.Close()
	n, err := goroutines(srv.URL + "/debug/pprof/")
	if err != nil || n != 245 {
		t.Errorf("goroutines = %d, %v; want 245", n, err)
	}
	if _, err := goroutines(srv.URL + "/elsewhere/"); err == nil {
		t.Error("a page that is not the goroutine profile gave no error")
	}
}

// TestSummarize: the baseline is minute 5 (or the middle of a shorter run),
// the end is the last sample taken while publishing.
func TestSummarize(t *testing.T) {
	var samples []sampleRow
	for m := range 31 {
		samples = append(samples, sampleRow{elapsed: time.Duration(m) * time.Minute, rssMiB: 100 + float64(m), goroutines: 200 + m, publishing: true})
	}
	samples = append(samples, sampleRow{elapsed: 32 * time.Minute, rssMiB: 500, goroutines: 999}) // settling
	var b bytes.Buffer
	summarize(&b, samples)
	for _, want := range []string{"RSS 105.0 MiB at 05:00, 130.0 MiB at 30:00 (+23.8%), peak 500.0 MiB", "goroutines 200 at 00:00, 230 at 30:00"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("summary %q lacks %q", b.String(), want)
		}
	}
	b.Reset()
	summarize(&b, samples[:3])
	if !strings.Contains(b.String(), "RSS 101.0 MiB at 01:00, 102.0 MiB at 02:00") {
		t.Errorf("short run summary: %q", b.String())
	}
}
