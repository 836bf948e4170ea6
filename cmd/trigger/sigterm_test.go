package main

import (
	"bufio"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMain lets TestSIGTERM run this binary's main.
func TestMain(m *testing.M) {
	if os.Getenv("TRIGGER_RUN_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// TestSIGTERM runs the service as a process, starts a long local run, sends
// SIGTERM and expects a clean exit within Cloud Run's 10 s, JSON logs with
// severity, and the run's process ended.
func TestSIGTERM(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(lis.Addr().(*net.TCPAddr).Port)
	lis.Close()

	marker := t.TempDir() + "/child.pid"
	cmd := exec.Command(os.Args[0])
	// A stand-in nightly job that records its pid and runs for a minute.
	script := t.TempDir() + "/nightly.sh"
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho $$ > "+marker+"\nexec sleep 60\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd.Env = append(os.Environ(), "TRIGGER_RUN_MAIN=1", "MODE=local", "PORT="+port, "LOCAL_CRON=off",
		"NIGHTLY_COMMAND="+script)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()

	base := "http://127.0.0.1:" + port
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get(base + "/healthz"); err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("service did not come up")
		}
	}
	resp, err := http.Post(base+"/v1/nightly?date=2026-11-24", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST = %d", resp.StatusCode)
	}
	var childPID int
	for deadline := time.Now().Add(10 * time.Second); childPID == 0; time.Sleep(20 * time.Millisecond) {
		if b, err := os.ReadFile(marker); err == nil && strings.TrimSpace(string(b)) != "" {
			childPID, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		}
		if time.Now().After(deadline) {
			t.Fatal("the nightly command did not start")
		}
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no exit within 10 s of SIGTERM")
	}
	if err := syscall.Kill(childPID, 0); err == nil {
		t.Errorf("the nightly command (pid %d) outlived the service", childPID)
	}

	var n int
	for line := range lines {
		var entry map[string]any
		if err := json.Unmarshal([]byte(line), &entry); err != nil {
			t.Errorf("log line is not JSON: %q", line)
			continue
		}
		if entry["severity"] == nil || entry["message"] == nil {
			t.Errorf("log line without severity/message: %q", line)
		}
		n++
	}
	if n == 0 {
		t.Error("no log lines")
	}
}
