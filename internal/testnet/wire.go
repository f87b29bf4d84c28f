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

	"github.com/multiformats/go-multiaddr"
)

// ErrNoSS is returned by TCPReceived where Linux's ss (iproute2) cannot be
// run: the bytes on the wire are then not measured.
var ErrNoSS = errors.New("bytes on the wire not measured: needs Linux's ss (iproute2)")

// TCPReceived returns the bytes received so far on the established TCP
// connections of this machine that have a port in ports at either end,
// summed over both ends: with ports the nodes' libp2p listen ports, every
// byte one node sent another, counted once at its receiver. It is what
// goes on the wire above TCP: Noise and yamux framing and every protocol's
// messages (GossipSub's control messages, identify, pings, status polls,
// sync), without TCP/IP headers. It reads the kernel's TCP_INFO
// (bytes_received) through ss, so connections closed meanwhile drop out
// of the sum; the harness keeps its own connections on the API ports,
// which are not counted.
func TCPReceived(ctx context.Context, ports []int) (uint64, error) {
	out, err := exec.CommandContext(ctx, "ss", "-tinH", "state", "established").Output()
	if err != nil {
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, exec.ErrDot) {
			return 0, ErrNoSS
		}
		return 0, fmt.Errorf("ss -tinH state established: %w", err)
	}
	want := make(map[int]bool, len(ports))
	for _, p := range ports {
		want[p] = true
	}
	return sumReceived(out, want)
}

// sumReceived adds up bytes_received over the sockets of ss -tinH output
// (a line "Recv-Q Send-Q local:port peer:port", then indented lines of
// TCP_INFO) whose local or peer port is in ports.
func sumReceived(out []byte, ports map[int]bool) (uint64, error) {
	var sum uint64
	counted := false // the socket of the lines being read is one of ports'
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
				return 0, fmt.Errorf("ss: unexpected line %q", line)
			}
			counted = ports[portOf(f[2])] || ports[portOf(f[3])]
			continue
		}
		if !counted {
			continue
		}
		for _, tok := range strings.Fields(line) {
			if v, ok := strings.CutPrefix(tok, "bytes_received:"); ok {
				n, err := strconv.ParseUint(v, 10, 64)
				if err != nil {
					return 0, fmt.Errorf("ss: %q: %w", tok, err)
				}
				sum += n
			}
		}
	}
	return sum, s.Err()
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
