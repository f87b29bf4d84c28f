package p2p

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/libp2p/go-libp2p/core/host"
	ma "github.com/multiformats/go-multiaddr"
)

// ErrPortInUse is wrapped by the error of New when a port it was asked to
// listen on is taken, most likely by another node on this machine. Test
// with errors.Is.
var ErrPortInUse = errors.New("port in use")

// portInUseError names the ports in use and what to do.
type portInUseError struct{ msg string }

func (e *portInUseError) Error() string        { return e.msg }
func (e *portInUseError) Is(target error) bool { return target == ErrPortInUse }

func parseListen(addrs []string) ([]ma.Multiaddr, error) {
	out := make([]ma.Multiaddr, 0, len(addrs))
	for _, s := range addrs {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return nil, fmt.Errorf("listen address %q: %w (want e.g. /ip4/127.0.0.1/tcp/10000)", s, err)
		}
		out = append(out, a)
	}
	return out, nil
}

// notListening returns the addresses of want, with a port given (not 0),
// that h does not listen on.
func notListening(h host.Host, want []ma.Multiaddr) []ma.Multiaddr {
	have := h.Network().ListenAddresses()
	var missing []ma.Multiaddr
	for _, a := range want {
		if _, port, _, ok := socketOf(a); !ok || port == 0 {
			continue
		}
		if !slices.ContainsFunc(have, a.Equal) {
			missing = append(missing, a)
		}
	}
	return missing
}

// listenFailure finds out why addrs could not be listened on, by trying
// each: an error wrapping ErrPortInUse naming the ports that are taken, or
// the first other error, or nil if every one can be listened on now.
func listenFailure(addrs []ma.Multiaddr) error {
	type use struct {
		port  int
		kinds []string
	}
	var inUse []use
	var other error
	for _, a := range addrs {
		network, port, hostport, ok := socketOf(a)
		if !ok || port == 0 {
			continue
		}
		var err error
		if network == "tcp" {
			var l net.Listener
			if l, err = net.Listen("tcp", hostport); err == nil {
				_ = l.Close()
			}
		} else {
			var c net.PacketConn
			if c, err = net.ListenPacket("udp", hostport); err == nil {
				_ = c.Close()
			}
		}
		switch {
		case errors.Is(err, syscall.EADDRINUSE):
			kind := "TCP"
			if network == "udp" {
				kind = "QUIC over UDP"
			}
			if i := slices.IndexFunc(inUse, func(u use) bool { return u.port == port }); i >= 0 {
				inUse[i].kinds = append(inUse[i].kinds, kind)
			} else {
				inUse = append(inUse, use{port, []string{kind}})
			}
		case err != nil && other == nil:
			other = fmt.Errorf("cannot listen on %s: %w", a, err)
		}
	}
	if len(inUse) == 0 {
		return other
	}
	var ports []string
	for _, u := range inUse {
		ports = append(ports, fmt.Sprintf("%d (%s)", u.port, strings.Join(u.kinds, " and ")))
	}
	msg := "port " + ports[0] + " is in use"
	if len(ports) > 1 {
		msg = "ports " + strings.Join(ports, ", ") + " are in use"
	}
	return &portInUseError{msg: msg + ": another node may be running there; pick another with -l"}
}

// socketOf returns the socket a TCP or QUIC listen address binds: "tcp" or
// "udp", the port and host:port. ok is false for other addresses.
func socketOf(a ma.Multiaddr) (network string, port int, hostport string, ok bool) {
	ip, err := a.ValueForProtocol(ma.P_IP4)
	if err != nil {
		if ip, err = a.ValueForProtocol(ma.P_IP6); err != nil {
			return "", 0, "", false
		}
	}
	network = "tcp"
	p, err := a.ValueForProtocol(ma.P_TCP)
	if err != nil {
		network = "udp"
		if p, err = a.ValueForProtocol(ma.P_UDP); err != nil {
			return "", 0, "", false
		}
	}
	port, err = strconv.Atoi(p)
	if err != nil {
		return "", 0, "", false
	}
	return network, port, net.JoinHostPort(ip, p), true
}
