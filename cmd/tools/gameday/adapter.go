package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"cloud.google.com/go/dataflow/apiv1beta3/dataflowpb"

	"github.com/inventory-events/inventory/internal/testkit/rehearse"
)

// adapter stands in for Dataflow's Flex Template launcher: each launch the
// trigger sends to the fake Dataflow API is turned into the command line the
// template launcher gives the binary (rehearse.FlexLaunchArgs, the same as
// make deploy-check checks), and cmd/nightly runs with exactly it, on
// Prism instead of Dataflow: the one flag changed is the runner. The job
// moves RUNNING, then DONE or FAILED as the process ends.
type adapter struct {
	stand   *stand
	root    string // the repository: deploy/templates
	nightly string // the cmd/nightly binary
	dir     string

	mu   sync.Mutex
	runs []nightlyRun
}

// nightlyRun is one launch the adapter ran.
type nightlyRun struct {
	Job  string
	Date string
	Args []string
	OK   bool
	Out  string
}

// prismArgs is args with the Dataflow runner replaced by Prism.
func prismArgs(args []string) []string {
	out := slices.Clone(args)
	for i, a := range out {
		if a == "--runner=dataflow" {
			out[i] = "--runner=prism"
		}
	}
	return out
}

func (a *adapter) launch(job *dataflowpb.Job, req *dataflowpb.LaunchFlexTemplateRequest) {
	df := a.stand.df
	run := nightlyRun{Job: job.GetName(), Date: req.GetLaunchParameter().GetParameters()["date"]}
	// Dataflow refuses a launch whose parameters the template's metadata
	// does not declare or match.
	err := rehearse.CheckTemplateParameters(a.root, "nightly", req.GetLaunchParameter().GetParameters())
	var args []string
	if err == nil {
		args, err = rehearse.FlexLaunchArgs(req)
	}
	if err != nil {
		run.Out = err.Error()
		df.SetState(job.GetId(), dataflowpb.JobState_JOB_STATE_FAILED)
		a.record(run)
		return
	}
	run.Args = prismArgs(args)
	df.SetState(job.GetId(), dataflowpb.JobState_JOB_STATE_RUNNING)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, a.nightly, run.Args...)
	cmd.Dir = a.dir
	cmd.Env = append(os.Environ(), a.stand.envVars()...)
	out, err := cmd.CombinedOutput()
	run.Out, run.OK = string(out), err == nil
	appendLog("nightly", fmt.Sprintf("$ nightly %s\n%s(exit: %v)\n", strings.Join(run.Args, " "), out, err))
	state := dataflowpb.JobState_JOB_STATE_DONE
	if err != nil {
		state = dataflowpb.JobState_JOB_STATE_FAILED
	}
	a.record(run)
	df.SetState(job.GetId(), state)
}

func (a *adapter) record(r nightlyRun) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.runs = append(a.runs, r)
}

// takeRuns returns the runs since the last call.
func (a *adapter) takeRuns() []nightlyRun {
	a.mu.Lock()
	defer a.mu.Unlock()
	r := a.runs
	a.runs = nil
	return r
}

// streamJob is the stream's job as the runbook launches it: cmd/stream
// with the command line the template launcher derives from
// deploy/stream-flags.yaml, on Prism. A release (the runbook's --update)
// is a stop and a start with the update's command line: Prism has no
// in-place update, so the new job rebuilds its state from the warehouse
// (restore) where Dataflow would hand it over.
type streamJob struct {
	bin, dir string
	env      []string

	cmd    *exec.Cmd
	done   chan struct{}
	err    error
	mu     sync.Mutex
	errors []string // ERROR lines it logged
	// tableError is the first warehouse.TableError it reported: the
	// table, the problem and the fix.
	tableError string
	Args       []string
	Starts     int
}

func (s *streamJob) start(args []string) error {
	s.Args = prismArgs(args)
	s.Starts++
	cmd := exec.Command(s.bin, s.Args...)
	cmd.Dir, cmd.Env = s.dir, s.env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	cmd.Stdout = logFile("stream")
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start the stream: %w", err)
	}
	s.cmd, s.done = cmd, make(chan struct{})
	appendLog("stream", fmt.Sprintf("$ stream %s\n", strings.Join(s.Args, " ")))
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			appendLog("stream", line+"\n")
			s.mu.Lock()
			if strings.Contains(line, "level=ERROR") {
				s.errors = append(s.errors, line)
			}
			if m := tableErrorLine.FindStringSubmatch(line); m != nil && s.tableError == "" {
				s.tableError = "table " + strings.TrimSpace(m[1]) + "; " + strings.TrimSpace(m[2])
			}
			s.mu.Unlock()
		}
		s.err = cmd.Wait()
		close(s.done)
	}()
	return nil
}

// running reports whether the job's process is still there.
func (s *streamJob) running() bool {
	if s.done == nil {
		return false
	}
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

// stop stops the job (SIGTERM to its process group, as a cancel does) and
// waits for it.
func (s *streamJob) stop() {
	if !s.running() {
		return
	}
	syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(20 * time.Second):
		syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.done
	}
}

// tableErrorLine finds a warehouse.TableError's text in a line of the
// job's output (alone, or inside a bundle error).
var tableErrorLine = regexp.MustCompile(`warehouse: table (\S+: [^(]+)\(.*?\); (fix: [^"\\]+)`)

// takeErrors returns the ERROR lines logged since the last call, and the
// table error reported, if any.
func (s *streamJob) takeErrors() ([]string, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, te := s.errors, s.tableError
	s.errors, s.tableError = nil, ""
	return e, te
}

// Logs: every process's output goes to a file in the scratch directory,
// shown when the game fails.
var (
	logDir  string
	logMu   sync.Mutex
	logOpen = map[string]*os.File{}
)

func logFile(name string) *os.File {
	logMu.Lock()
	defer logMu.Unlock()
	if f := logOpen[name]; f != nil {
		return f
	}
	f, err := os.OpenFile(filepath.Join(logDir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		f = os.Stderr
	}
	logOpen[name] = f
	return f
}

func appendLog(name, text string) {
	f := logFile(name)
	logMu.Lock()
	defer logMu.Unlock()
	f.WriteString(text)
}

// tailLog is the last n bytes of a log.
func tailLog(name string, n int) string {
	b, err := os.ReadFile(filepath.Join(logDir, name+".log"))
	if err != nil {
		return ""
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(bytes.TrimSpace(b))
}

// lastArgs is the command line the job was last started with.
func (s *streamJob) lastArgs() []string { return slices.Clone(s.Args) }

// exitedLoudly reports whether the job logged an ERROR line not yet taken.
func (s *streamJob) exitedLoudly() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.errors) > 0
}
