//go:build linux

package launch

import (
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
)

// peerUID returns the user owning the other end of c, a TCP connection
// over this machine's loopback, from the kernel's socket table
// (/proc/net/tcp or tcp6: the peer's row has c's addresses swapped).
func peerUID(c *net.TCPConn) (uint32, error) {
	local, remote := c.LocalAddr().(*net.TCPAddr), c.RemoteAddr().(*net.TCPAddr)
	table := "tcp6"
	if remote.IP.To4() != nil {
		table = "tcp"
	}
	// This thread's namespace: the process's main thread may be elsewhere.
	runtime.LockOSThread()
	data, err := os.ReadFile("/proc/thread-self/net/" + table)
	runtime.UnlockOSThread()
	if err != nil {
		return 0, fmt.Errorf("peer of %s: %w", remote, err)
	}
	lines := strings.Split(string(data), "\n")
	for _, line := range lines[1:] { // a header first
		f := strings.Fields(line)
		if len(f) < 8 {
			continue
		}
		lip, lport, err := ParseProcNetAddr(f[1])
		if err != nil || lport != remote.Port || !lip.Equal(remote.IP) {
			continue
		}
		rip, rport, err := ParseProcNetAddr(f[2])
		if err != nil || rport != local.Port || !rip.Equal(local.IP) {
			continue
		}
		uid, err := strconv.ParseUint(f[7], 10, 32)
		if err != nil {
			return 0, fmt.Errorf("peer of %s: uid %q: %w", remote, f[7], err)
		}
		return uint32(uid), nil
	}
	return 0, fmt.Errorf("peer of %s: not in /proc/net/%s", remote, table)
}

// ParseProcNetAddr parses an address column of /proc/net/tcp, udp and
// their IPv6 tables ("0100007F:1F90": 127.0.0.1 port 8080): the address in
// hex, 32-bit words in the machine's byte order, then the port in hex.
func ParseProcNetAddr(s string) (net.IP, int, error) {
	hexIP, hexPort, ok := strings.Cut(s, ":")
	if !ok || (len(hexIP) != 8 && len(hexIP) != 32) {
		return nil, 0, fmt.Errorf("socket address %q: want HEXIP:HEXPORT", s)
	}
	port, err := strconv.ParseUint(hexPort, 16, 16)
	if err != nil {
		return nil, 0, fmt.Errorf("socket address %q: port: %w", s, err)
	}
	ip := make(net.IP, len(hexIP)/2)
	for i := 0; i < len(hexIP); i += 8 {
		w, err := strconv.ParseUint(hexIP[i:i+8], 16, 32)
		if err != nil {
			return nil, 0, fmt.Errorf("socket address %q: %w", s, err)
		}
		binary.NativeEndian.PutUint32(ip[i/2:], uint32(w))
	}
	return ip, int(port), nil
}
