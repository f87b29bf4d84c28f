package testnet

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/multiformats/go-multiaddr"
)

// ErrNoSS is returned by TCPReceived where Linux's ss (iproute2) cannot be
// run: the bytes on the wire are then not measured.
var ErrNoSS = errors.New("bytes on the wire not measured: needs Linux's ss (iproute2)")

// TCPCounts is what the established TCP connections of this machine that
// touch given ports have received so far, per connection end ("local
// peer" address pair): TCPReceived reads it, Since subtracts an earlier one.
type TCPCounts map[string]uint64

// TCPReceived reads the bytes received so far on the established TCP
// connections of this machine that have a port in ports at either end,
// both ends of each: with ports the nodes' libp2p listen ports, every byte
// one node sent another, counted once at its receiver. That is what goes
// on the wire above TCP: Noise and yamux framing and every protocol's
// messages (GossipSub's control messages, identify, pings, status polls,
// sync), without TCP/IP headers. It reads the kernel's TCP_INFO
// (bytes_received) through ss; the harness keeps its own connections on
// the API ports, which are not counted.
//
// An ss that cannot run, fails, or gives no TCP_INFO (a kernel or sandbox
// without sock_diag) is ErrNoSS, with why: the bytes are then not
// measured, rather than taken for none.
func TCPReceived(ctx context.Context, ports []int) (TCPCounts, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ss", "-tinH", "state", "established").Output()
	if err != nil {
		return nil, fmt.Errorf("%w: ss -tinH state established: %v", ErrNoSS, err)
	}
	want := make(map[int]bool, len(ports))
	for _, p := range ports {
		want[p] = true
	}
	return parseReceived(out, want)
}

// Since returns the bytes received between before and c: per connection
// end, its count less what it had before (all of it for one opened
// since), and how many of before's ends are gone (closed meanwhile: what
// they received after before was read is not counted).
func (c TCPCounts) Since(before TCPCounts) (bytes uint64, gone int) {
	for end, n := range c {
		if b := before[end]; n >= b {
			bytes += n - b
		} else {
			bytes += n // fewer than before: a new connection on the same address pair
		}
	}
	for end := range before {
		if _, ok := c[end]; !ok {
			gone++
		}
	}
	return bytes, gone
}

// parseReceived reads ss -tinH output (a line "Recv-Q Send-Q local:port
// peer:port", then indented lines of TCP_INFO) into the bytes_received of
// each socket whose local or peer port is in ports.
func parseReceived(out []byte, ports map[int]bool) (TCPCounts, error) {
	counts := TCPCounts{}
	end := ""     // the socket of the lines being read, if one of ports'
	info := false // a socket of ports' had TCP_INFO
	s := bufio.NewScanner(bytes.NewReader(out))
	s.Buffer(make([]byte, 64*1024), 1024*1024)
	for s.Scan() {
		line := s.Text()
		if line == "" {
			continue
		}
		if line[0] != ' ' && line[0] != '\t' {
			f := strings.Fields(line)
			if len(f) < 4 {
				return nil, fmt.Errorf("ss: unexpected line %q", line)
			}
			end = ""
			if ports[portOf(f[2])] || ports[portOf(f[3])] {
				end = f[2] + " " + f[3]
				counts[end] = 0 // nothing received yet: ss prints no bytes_received
			}
			continue
		}
		if end == "" {
			continue
		}
		for _, tok := range strings.Fields(line) {
			if strings.HasPrefix(tok, "segs_in:") {
				info = true
			}
			if v, ok := strings.CutPrefix(tok, "bytes_received:"); ok {
				n, err := strconv.ParseUint(v, 10, 64)
				if err != nil {
					return nil, fmt.Errorf("ss: %q: %w", tok, err)
				}
				counts[end] = n
			}
		}
	}
	if len(counts) > 0 && !info {
		return nil, fmt.Errorf("%w: ss shows no TCP_INFO (segs_in, bytes_received) for the nodes' connections here", ErrNoSS)
	}
	return counts, s.Err()
}

// portOf returns the port of "addr:port" ("[v6]:port" too), 0 if none.
func portOf(hostPort string) int {
	i := strings.LastIndexByte(hostPort, ':')
	if i < 0 {
		return 0
	}
	p, _ := strconv.Atoi(hostPort[i+1:])
	return p
}

// TCPPort returns the TCP port of a multiaddr such as
// /ip4/127.0.0.1/tcp/4001/p2p/ID.
func TCPPort(addr string) (int, error) {
	ma, err := multiaddr.NewMultiaddr(addr)
	if err != nil {
		return 0, err
	}
	v, err := ma.ValueForProtocol(multiaddr.P_TCP)
	if err != nil {
		return 0, fmt.Errorf("%s: no TCP port: %w", addr, err)
	}
	return strconv.Atoi(v)
}
