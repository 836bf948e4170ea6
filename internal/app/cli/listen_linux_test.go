//go:build linux

package cli

import (
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/inventory-events/inventory/internal/testkit/slowtest"
	"github.com/inventory-events/inventory/pipelines/launch"
)

// TestUpListensOnLoopbackOnly starts `inventory up` as a child process, as
// a user runs it, and reads every socket of it and of its children in the
// kernel's tables (/proc/net/tcp, tcp6, udp, udp6 of each network namespace
// they use): none may listen (TCP) or wait unconnected (UDP) on an address
// another host can reach. A socket in a network namespace whose only
// interface is lo is reachable from this machine alone, whatever its
// address: that is where Prism's job server listens, on every interface of
// that namespace (launch.StartPrism). Run as root, it checks up as a user
// other than root too, whose up starts itself again in a user namespace.
func TestUpListensOnLoopbackOnly(t *testing.T) {
	slowtest.Skip(t, "runs inventory up (a Prism job)")
	t.Run("this user", func(t *testing.T) { checkUpListens(t, nil) })
	if os.Geteuid() == 0 {
		t.Run("nobody", func(t *testing.T) {
			checkUpListens(t, &syscall.Credential{Uid: 65534, Gid: 65534})
		})
	}
	// The check sees a listener on every interface, and up warns of it.
	t.Run("debug server on every interface", func(t *testing.T) {
		stderr, socks := upSockets(t, nil, "--debug-addr", ":0")
		exposed := 0
		for _, s := range socks {
			if !s.onlyLoopback && !s.ip.IsLoopback() {
				exposed++
			}
		}
		if exposed != 1 {
			t.Errorf("%d sockets reachable from other hosts, want 1 (the debug server): %v", exposed, socks)
		}
		if !strings.Contains(stderr, "WARNING: the debug server (net/http/pprof) listens on [::]:") {
			t.Errorf("up did not warn of the debug server:\n%s", stderr)
		}
	})
}

// checkUpListens checks that up, run as cred (nil: this user), has no
// socket reachable from other hosts, and that Prism's job server is in a
// loopback-only namespace.
func checkUpListens(t *testing.T, cred *syscall.Credential) {
	stderr, socks := upSockets(t, cred, "--debug-addr", "localhost:0")
	if strings.Contains(stderr, "WARNING") {
		t.Errorf("up warned:\n%s", stderr)
	}
	confined := 0
	for _, s := range socks {
		t.Logf("%s", s)
		switch {
		case s.onlyLoopback:
			confined++
		case !s.ip.IsLoopback():
			t.Errorf("reachable from other hosts: %s", s)
		}
	}
	// Prism's job server, in its namespace: seen, so the namespaces were read.
	if confined == 0 {
		t.Errorf("no socket in a loopback-only network namespace: where is Prism's job server?")
	}
}

// upSockets starts up as cred (nil: this user) with args, reads the
// listening sockets of its process tree, stops it, and returns what it
// wrote before it was ready and the sockets.
func upSockets(t *testing.T, cred *syscall.Credential, args ...string) (string, []listenSocket) {
	dir := t.TempDir()
	bin := os.Args[0]
	if cred != nil {
		// Another user needs to reach the binary and write the data.
		bin = filepath.Join(dir, "cli.test")
		copyFile(t, os.Args[0], bin)
		for _, d := range []string{filepath.Dir(dir), dir} {
			if err := os.Chmod(d, 0o777); err != nil {
				t.Fatal(err)
			}
		}
	}
	cmd := upCommand(bin, append([]string{"--port", "0", "--trigger-port", "0", "--ops-port", "0", "--no-cron",
		"--data-dir", filepath.Join(dir, "pubsub"), "--warehouse", filepath.Join(dir, "warehouse"),
		"--reports", filepath.Join(dir, "reports"), "--snapshot", sampleSnap, "--thresholds", sampleTh, "--project", "listen-test"}, args...)...)
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	up := startUpCmd(t, cmd)
	defer up.interrupt(t)
	stderr := up.stderr.String()
	socks, err := listeningSockets(up.cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	return stderr, socks
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// listenSocket is a socket that waits for peers: a TCP socket in LISTEN, or
// a UDP socket with no peer.
type listenSocket struct {
	pid          int
	netns, table string
	ip           net.IP
	port         int
	onlyLoopback bool // its network namespace has no interface but lo
}

func (s listenSocket) String() string {
	where := "this machine's network"
	if s.onlyLoopback {
		where = "a loopback-only namespace"
	}
	return fmt.Sprintf("pid %d %s %s in %s (%s)", s.pid, s.table, net.JoinHostPort(s.ip.String(), strconv.Itoa(s.port)), where, s.netns)
}

// listeningSockets returns the listening sockets of root and its
// descendants. It fails if one of their sockets is in none of the tables
// of the network namespaces their threads are in (a namespace it cannot
// see), so nothing escapes the check.
func listeningSockets(root int) ([]listenSocket, error) {
	pids, err := processTree(root)
	if err != nil {
		return nil, err
	}
	before, err := socketInodes(pids)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{} // inodes in some table
	var out []listenSocket
	visited := map[string]bool{} // network namespaces read
	for _, pid := range pids {
		tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*", pid))
		if err != nil {
			return nil, err
		}
		for _, task := range tasks {
			ns, err := os.Readlink(filepath.Join(task, "ns", "net"))
			if err != nil || visited[ns] {
				continue // the thread ended
			}
			visited[ns] = true
			dev, err := os.ReadFile(filepath.Join(task, "net", "dev"))
			if err != nil {
				continue
			}
			onlyLo := onlyLoopback(string(dev))
			for _, table := range []string{"tcp", "tcp6", "udp", "udp6", "raw", "raw6", "unix", "netlink", "packet"} {
				data, err := os.ReadFile(filepath.Join(task, "net", table))
				if err != nil {
					return nil, err
				}
				for _, row := range strings.Split(string(data), "\n")[1:] {
					f := strings.Fields(row)
					inode := inodeOf(table, f)
					owner, ok := before[inode]
					if inode == "" || !ok {
						continue
					}
					seen[inode] = true
					if !listens(table, f) {
						continue
					}
					ip, port, err := launch.ParseProcNetAddr(f[1])
					if err != nil {
						return nil, err
					}
					out = append(out, listenSocket{pid: owner, netns: ns, table: table, ip: ip, port: port, onlyLoopback: onlyLo})
				}
			}
		}
	}
	// A socket closed meanwhile is in no table: only those still open count.
	after, err := socketInodes(pids)
	if err != nil {
		return nil, err
	}
	for inode := range before {
		if _, open := after[inode]; open && !seen[inode] {
			return nil, fmt.Errorf("socket %s of process tree %v is in no table of the namespaces %v", inode, pids, slices.Collect(maps.Keys(visited)))
		}
	}
	return out, nil
}

// inodeOf returns the inode column of a row of a /proc/net table.
func inodeOf(table string, f []string) string {
	switch table {
	case "unix":
		if len(f) >= 7 {
			return f[6]
		}
	case "netlink", "packet":
		if len(f) >= 9 {
			return f[len(f)-1]
		}
	default:
		if len(f) >= 10 {
			return f[9]
		}
	}
	return ""
}

// listens reports whether a row of tcp, udp or raw waits for any peer:
// TCP in LISTEN (0A), UDP or raw with no remote address (state 07, CLOSE).
func listens(table string, f []string) bool {
	switch strings.TrimSuffix(table, "6") {
	case "tcp":
		return f[3] == "0A"
	case "udp", "raw":
		_, port, err := launch.ParseProcNetAddr(f[2])
		return err == nil && port == 0 && f[3] == "07"
	}
	return false
}

// onlyLoopback reports whether a /proc/net/dev lists no interface but lo.
func onlyLoopback(dev string) bool {
	for _, row := range strings.Split(dev, "\n")[2:] {
		name, _, ok := strings.Cut(row, ":")
		if ok && strings.TrimSpace(name) != "lo" {
			return false
		}
	}
	return true
}

// processTree returns root and its descendants, from every process's
// parent in /proc/PID/stat.
func processTree(root int) ([]int, error) {
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		return nil, err
	}
	children := map[int][]int{}
	for _, p := range stats {
		data, err := os.ReadFile(p)
		if err != nil {
			continue // ended
		}
		// pid (comm) state ppid ...: comm may hold spaces and parentheses.
		s := string(data)
		i := strings.LastIndexByte(s, ')')
		f := strings.Fields(s[i+1:])
		pid, err1 := strconv.Atoi(strings.Fields(s)[0])
		ppid, err2 := strconv.Atoi(f[1])
		if err1 == nil && err2 == nil {
			children[ppid] = append(children[ppid], pid)
		}
	}
	tree := []int{root}
	for i := 0; i < len(tree); i++ {
		tree = append(tree, children[tree[i]]...)
	}
	return tree, nil
}

// socketInodes returns the inodes of the sockets the processes hold open,
// with the process holding each.
func socketInodes(pids []int) (map[string]int, error) {
	out := map[string]int{}
	for _, pid := range pids {
		fds, err := filepath.Glob(fmt.Sprintf("/proc/%d/fd/*", pid))
		if err != nil {
			return nil, err
		}
		for _, fd := range fds {
			link, err := os.Readlink(fd)
			if err != nil {
				continue
			}
			if inode, ok := strings.CutPrefix(link, "socket:["); ok {
				out[strings.TrimSuffix(inode, "]")] = pid
			}
		}
	}
	return out, nil
}
