//go:build linux

package launch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/runners/prism"
	"golang.org/x/sys/unix"
)

// startConfinedPrism starts Prism's job server inside a network namespace
// of its own (netns), where its listener on every interface can only be
// reached over that namespace's loopback, and forwards 127.0.0.1:PORT (and
// [::1]:PORT) of this machine to it, PORT being the same on both sides:
// Prism gives its workers the address localhost:PORT, which the forwarder
// answers. The forwarder lets in only connections of this process's user.
//
// A network namespace applies per thread: the namespace gets a thread of
// its own, which opens every socket the forwarder needs there; Go creates
// no other thread from it (a thread locked with LockOSThread never spawns
// threads) and ends it with its goroutine.
func startConfinedPrism(ctx context.Context) (*Prism, error) {
	ns, err := newNetns()
	if err != nil {
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EINVAL) {
			return &Prism{Note: unconfinedNote("this process may not create a network namespace: " + err.Error())}, nil
		}
		return nil, err
	}
	fw, err := listenLoopback()
	if err != nil {
		ns.close()
		return nil, err
	}
	fw.ns, fw.uid = ns, uint32(os.Geteuid())
	fw.serve()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	err = ns.do(func() error {
		// Prism's listener is opened on this thread, in the namespace.
		_, err := prism.CreateJobServer(ctx, prism.Options{Port: fw.port})
		return err
	})
	if err != nil {
		fw.close()
		ns.close()
		return nil, fmt.Errorf("job server in its network namespace: %w", err)
	}
	return &Prism{Endpoint: "localhost:" + strconv.Itoa(fw.port), Confined: true}, nil
}

// netns is a network namespace of this process's own, with its loopback up,
// and a thread kept in it that opens the forwarder's connections there.
type netns struct {
	fd    int // the namespace, to join it from another thread
	dials chan dialRequest
	done  chan struct{} // closed by close
}

type dialRequest struct {
	addr  string
	reply chan dialResult
}

type dialResult struct {
	conn net.Conn
	err  error
}

// newNetns creates the namespace on a new thread and keeps the thread there,
// serving dial requests.
func newNetns() (*netns, error) {
	n := &netns{fd: -1, dials: make(chan dialRequest), done: make(chan struct{})}
	ready := make(chan error, 1)
	lockedThread(func() {
		// This thread never leaves the namespace: it is not unlocked, so it
		// ends with this goroutine.
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			ready <- fmt.Errorf("unshare(CLONE_NEWNET): %w", err)
			return
		}
		if err := loopbackUp(); err != nil {
			ready <- err
			return
		}
		fd, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			ready <- fmt.Errorf("open the network namespace: %w", err)
			return
		}
		n.fd = fd
		ready <- nil
		for {
			select {
			case req := <-n.dials:
				c, err := net.DialTimeout("tcp", req.addr, 10*time.Second)
				req.reply <- dialResult{c, err}
			case <-n.done:
				return
			}
		}
	})
	if err := <-ready; err != nil {
		return nil, err
	}
	return n, nil
}

// dial connects to addr inside the namespace.
func (n *netns) dial(addr string) (net.Conn, error) {
	reply := make(chan dialResult, 1)
	select {
	case n.dials <- dialRequest{addr, reply}:
	case <-n.done:
		return nil, errors.New("the network namespace is closed")
	}
	r := <-reply
	return r.conn, r.err
}

// do runs f on a new thread that joins the namespace; the thread ends with f.
func (n *netns) do(f func() error) error {
	done := make(chan error, 1)
	lockedThread(func() {
		if err := unix.Setns(n.fd, unix.CLONE_NEWNET); err != nil {
			done <- fmt.Errorf("join the network namespace: %w", err)
			return
		}
		done <- f()
	})
	return <-done
}

// close ends the namespace's thread; the namespace lives on while a socket
// in it is open.
func (n *netns) close() {
	close(n.done)
	if n.fd >= 0 {
		unix.Close(n.fd)
	}
}

// lockedThread runs f in a new goroutine locked to a thread that is not the
// process's main thread, and never unlocks it: Go ends the thread with the
// goroutine, so whatever f changes in the thread's state dies with it. The
// main thread is avoided because Go never ends it, and /proc/PID/net shows
// its namespace.
func lockedThread(f func()) {
	go func() {
		runtime.LockOSThread()
		if unix.Gettid() != unix.Getpid() {
			f()
			return
		}
		// On the main thread: hold it, so that the next locked goroutine
		// gets another one.
		started := make(chan struct{})
		go func() {
			runtime.LockOSThread()
			close(started)
			f()
		}()
		<-started
		runtime.UnlockOSThread()
	}()
}

// loopbackUp brings up "lo" in the calling thread's network namespace: a new
// namespace has it down.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("loopback up: socket: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return fmt.Errorf("loopback up: %w", err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("loopback up: SIOCGIFFLAGS: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("loopback up: SIOCSIFFLAGS: %w", err)
	}
	return nil
}

// forwarder passes connections to this machine's loopback PORT on to
// 127.0.0.1:PORT inside ns.
type forwarder struct {
	port int
	lns  []net.Listener
	ns   *netns
	uid  uint32 // the only user let in
	wg   sync.WaitGroup
}

// listenLoopback opens 127.0.0.1:PORT for a free PORT and, where this machine
// has IPv6 loopback, [::1]:PORT too: "localhost" may resolve to either, and
// another program's [::1]:PORT would catch Prism's workers.
func listenLoopback() (*forwarder, error) {
	for range 20 {
		ln4, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("forwarder: %w", err)
		}
		port := ln4.Addr().(*net.TCPAddr).Port
		ln6, err := net.Listen("tcp6", net.JoinHostPort("::1", strconv.Itoa(port)))
		switch {
		case err == nil:
			return &forwarder{port: port, lns: []net.Listener{ln4, ln6}}, nil
		case errors.Is(err, syscall.EADDRINUSE):
			ln4.Close() // taken on ::1: try another port
		default: // no IPv6 loopback here
			return &forwarder{port: port, lns: []net.Listener{ln4}}, nil
		}
	}
	return nil, errors.New("forwarder: no port free on both 127.0.0.1 and ::1 in 20 tries")
}

func (f *forwarder) serve() {
	target := net.JoinHostPort("127.0.0.1", strconv.Itoa(f.port))
	for _, ln := range f.lns {
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go f.forward(c.(*net.TCPConn), target)
			}
		}()
	}
}

func (f *forwarder) close() {
	for _, ln := range f.lns {
		ln.Close()
	}
	f.wg.Wait()
}

// forward checks who is calling, connects to target in the namespace and
// copies both ways until both sides are done.
func (f *forwarder) forward(c *net.TCPConn, target string) {
	if uid, err := peerUID(c); err != nil || uid != f.uid {
		slog.Warn("launch: Prism's job server refused a connection not from this user", "peer", c.RemoteAddr().String(), "uid", uid, "err", err)
		c.Close()
		return
	}
	d, err := f.ns.dial(target)
	if err != nil {
		slog.Error("launch: Prism's job server: forward a connection", "err", err)
		c.Close()
		return
	}
	pipe(c, d.(*net.TCPConn))
}

// pipe copies a to b and b to a; each direction's end is passed on as a
// half-close, an error closes both.
func pipe(a, b *net.TCPConn) {
	var wg sync.WaitGroup
	cp := func(dst, src *net.TCPConn) {
		defer wg.Done()
		if _, err := io.Copy(dst, src); err != nil {
			dst.Close()
			src.Close()
			return
		}
		dst.CloseWrite()
	}
	wg.Add(2)
	go cp(a, b)
	go cp(b, a)
	wg.Wait()
	a.Close()
	b.Close()
}
