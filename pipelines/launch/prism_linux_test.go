//go:build linux

package launch

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	jobpb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/jobmanagement_v1"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/options/jobopts"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/runners/prism"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/passert"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/inventory-events/inventory/internal/testkit/slowtest"
)

// getJobsEnv makes the test binary a client of the Prism at its value: it
// asks for the job list and exits 0 if it got it, 3 if not.
const getJobsEnv = "LAUNCH_TEST_GETJOBS"

func TestMain(m *testing.M) {
	if ep := os.Getenv(getJobsEnv); ep != "" {
		if err := getJobs(context.Background(), ep); err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(3)
		}
		os.Exit(0)
	}
	ptest.Main(m)
}

func getJobs(ctx context.Context, endpoint string) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	conn, err := grpc.NewClient(endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	_, err = jobpb.NewJobServiceClient(conn).GetJobs(ctx, &jobpb.GetJobsRequest{})
	return err
}

func TestParseProcNetAddr(t *testing.T) {
	for _, c := range []struct {
		in   string
		ip   string
		port int
	}{
		{"0100007F:1F90", "127.0.0.1", 8080},
		{"00000000:0000", "0.0.0.0", 0},
		{"00000000000000000000000001000000:A471", "::1", 42097},
		{"00000000000000000000000000000000:A471", "::", 42097},
		{"0000000000000000FFFF00000100007F:C52C", "127.0.0.1", 50476}, // v4-mapped
	} {
		ip, port, err := ParseProcNetAddr(c.in)
		if err != nil || !ip.Equal(net.ParseIP(c.ip)) || port != c.port {
			t.Errorf("ParseProcNetAddr(%q) = %v, %d, %v; want %s, %d", c.in, ip, port, err, c.ip, c.port)
		}
	}
	for _, bad := range []string{"", "0100007F", "0100007F:", "0100007G:1F90", "01007F:1F90", "0100007F:10000"} {
		if _, _, err := ParseProcNetAddr(bad); err == nil {
			t.Errorf("ParseProcNetAddr(%q): no error", bad)
		}
	}
}

// TestPeerUID finds the user of a loopback connection's other end, over
// IPv4 and IPv6.
func TestPeerUID(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:0", "[::1]:0"} {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Logf("%s: %v (no such loopback here)", addr, err)
			continue
		}
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		s, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		uid, err := peerUID(s.(*net.TCPConn))
		if err != nil || uid != uint32(os.Geteuid()) {
			t.Errorf("%s: peerUID = %d, %v; want %d", addr, uid, err, os.Geteuid())
		}
		c.Close()
		s.Close()
		ln.Close()
	}
}

// TestStartPrismConfined starts the job server, runs a job on it, and checks
// where it listens: on this machine's network, on loopback only, at the
// port of --endpoint; inside its namespace, which has no interface but lo.
// As root, a client of another user is refused.
func TestStartPrismConfined(t *testing.T) {
	slowtest.Skip(t, "a Prism job")
	ctx := context.Background()
	p, err := StartPrism(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !canUnshareNet() {
		// This user may not create a network namespace here: the operator
		// is told, and Beam's own job server is used.
		if p.Confined || !strings.Contains(p.Note, "every network interface") {
			t.Fatalf("StartPrism without the right to a network namespace = %+v; want not confined, with a note", p)
		}
		return
	}
	if !p.Confined || p.Note != "" || *jobopts.Endpoint != p.Endpoint || *jobopts.EnvironmentType != "loopback" {
		t.Fatalf("StartPrism = %+v, --endpoint %q, --environment_type %q; want confined at --endpoint, loopback workers",
			p, *jobopts.Endpoint, *jobopts.EnvironmentType)
	}
	if again, err := StartPrism(ctx); err != nil || again != p {
		t.Errorf("StartPrism again = %+v, %v; want the same job server", again, err)
	}

	// A job runs end to end, its workers in this process.
	pl, s := beam.NewPipelineWithRoot()
	passert.Sum(s, beam.Create(s, 1, 2, 3, 4), "sum", 4, 10)
	if _, err := prism.Execute(ctx, pl); err != nil {
		t.Fatalf("a job on the confined Prism: %v", err)
	}

	_, portText, _ := net.SplitHostPort(p.Endpoint)
	port, _ := strconv.Atoi(portText)
	hostSide := listeners(t, "/proc/thread-self/net", port)
	for _, ip := range hostSide {
		if !ip.IsLoopback() {
			t.Errorf("port %d listens on %s on this machine's network", port, ip)
		}
	}
	if len(hostSide) == 0 {
		t.Errorf("port %d: no listener on this machine's loopback", port)
	}
	dev, err := os.ReadFile("/proc/" + strconv.Itoa(os.Getpid()) + "/task/" + nsThread(t) + "/net/dev")
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(dev), ":"); n != 1 || !strings.Contains(string(dev), "lo:") {
		t.Errorf("the namespace has interfaces other than lo:\n%s", dev)
	}
	if got := listeners(t, "/proc/"+strconv.Itoa(os.Getpid())+"/task/"+nsThread(t)+"/net", port); len(got) == 0 {
		t.Errorf("port %d: Prism does not listen in its namespace", port)
	}

	if os.Geteuid() != 0 {
		return // no other user to be
	}
	// The same request, from this user and then from another.
	if err := getJobs(ctx, p.Endpoint); err != nil {
		t.Fatalf("GetJobs from this user: %v", err)
	}
	cmd := exec.Command(copyExecutable(t), "-test.run=^$")
	cmd.Env = append(os.Environ(), getJobsEnv+"="+p.Endpoint)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 3 {
		t.Errorf("GetJobs from another user: %v, %s; want refused", err, out)
	}
}

// listeners returns the addresses that listen on port in the tcp and tcp6
// tables under dir.
func listeners(t *testing.T, dir string, port int) []net.IP {
	t.Helper()
	var ips []net.IP
	for _, table := range []string{"tcp", "tcp6"} {
		data, err := os.ReadFile(dir + "/" + table)
		if err != nil {
			t.Fatal(err)
		}
		for _, row := range strings.Split(string(data), "\n")[1:] {
			f := strings.Fields(row)
			if len(f) < 4 || f[3] != "0A" {
				continue
			}
			ip, p, err := ParseProcNetAddr(f[1])
			if err != nil {
				t.Fatal(err)
			}
			if p == port {
				ips = append(ips, ip)
			}
		}
	}
	return ips
}

// nsThread returns the id of this process's thread in a network namespace
// other than its main thread's.
func nsThread(t *testing.T) string {
	t.Helper()
	self := "/proc/" + strconv.Itoa(os.Getpid())
	main, err := os.Readlink(self + "/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	tasks, err := os.ReadDir(self + "/task")
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		if ns, err := os.Readlink(self + "/task/" + task.Name() + "/ns/net"); err == nil && ns != main {
			return task.Name()
		}
	}
	t.Fatal("no thread in another network namespace")
	return ""
}

// copyExecutable copies the test binary where every user may run it.
func copyExecutable(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	data, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "launch.test")
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return bin
}
