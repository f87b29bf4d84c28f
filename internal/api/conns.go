package api

import (
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"
)

// Connection limits. Reads need no token, so an API listening beyond
// loopback (with a token for its writes) is open to anyone who reaches it:
// without a bound, one client could hold any number of connections, each
// a goroutine and buffers, and while the disk stalls each read in flight
// holds one more. Serve admits at most DefaultMaxConnections from other
// machines at once, and at most DefaultMaxConnectionsPerIP from one remote
// address (an IPv6 client by its /64, which one host commonly holds
// whole). Clients on the node's own machine (loopback) have places of
// their own, DefaultMaxConnections more, and no per-address limit: a
// local benchmark may open hundreds, and remote clients filling their
// places must not lock out the node's own command-line client. A
// connection over a limit is answered 503 too_many_connections and closed
// within a second, with no handler run (refuse); past maxRefusing such
// answers under way, it is closed without one.
const (
	DefaultMaxConnections      = 1024
	DefaultMaxConnectionsPerIP = 64
)

// WithMaxConnections sets the connection limits of Serve (defaults
// DefaultMaxConnections and DefaultMaxConnectionsPerIP).
func WithMaxConnections(total, perIP int) Option {
	return func(c *config) { c.maxConns, c.maxConnsPerIP = total, perIP }
}

// connLimiter counts the API's open connections, in all and by remote IP.
type connLimiter struct {
	max, perIP int
	log        *slog.Logger

	refusing chan struct{} // a slot per refused connection being answered

	mu      sync.Mutex
	open    int // from other machines
	local   int // from this machine (loopback)
	byIP    map[string]int
	refused uint64
	warned  time.Time // last warning about a refusal
}

func newConnLimiter(max, perIP int, log *slog.Logger) *connLimiter {
	return &connLimiter{max: max, perIP: perIP, log: log, byIP: map[string]int{}, refusing: make(chan struct{}, maxRefusing)}
}

// admit takes a place for a connection from the address ip (a key of
// remoteIP), or reports why there is none ("" if it took one).
func (l *connLimiter) admit(ip string, loopback bool) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case loopback && l.local >= l.max:
		return strconv.Itoa(l.max) + " connections from this machine are open, the most the node takes at once"
	case loopback:
		l.local++
		return ""
	case l.open >= l.max:
		return strconv.Itoa(l.max) + " connections from other machines are open, the most the node takes at once"
	case l.byIP[ip] >= l.perIP:
		return strconv.Itoa(l.perIP) + " connections from " + ip + " are open, the most the node takes from one address"
	}
	l.open++
	l.byIP[ip]++
	return ""
}

// release gives back the place of a connection from ip.
func (l *connLimiter) release(ip string, loopback bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if loopback {
		l.local--
		return
	}
	l.open--
	if l.byIP[ip]--; l.byIP[ip] <= 0 {
		delete(l.byIP, ip)
	}
}

// refusal counts a refused connection, and says whether to log it: at most
// once a minute.
func (l *connLimiter) refusal(now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.refused++
	if now.Sub(l.warned) < time.Minute {
		return false
	}
	l.warned = now
	return true
}

// counts returns the connections open now and those refused so far.
func (l *connLimiter) counts() (open int, refused uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open + l.local, l.refused
}

// limitedListener admits the connections of its listener within l's
// limits.
type limitedListener struct {
	net.Listener
	l *connLimiter
}

// tooManyConns is the answer to a connection over a limit: a whole HTTP
// response, so that a client sees why (the body's shape is every error's).
func tooManyConns(why string) []byte {
	body := `{"error": "too many connections: ` + why + `; try again later", "code": "` + CodeTooManyConns + `"}`
	return []byte("HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\nConnection: close\r\n" +
		"Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
}

func (ll limitedListener) Accept() (net.Conn, error) {
	for {
		c, err := ll.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip, loopback := remoteIP(c)
		why := ll.l.admit(ip, loopback)
		if why == "" {
			return &limitedConn{Conn: c, l: ll.l, ip: ip, loopback: loopback}, nil
		}
		if ll.l.refusal(time.Now()) {
			ll.l.log.Warn("API connection refused (logged at most once a minute; p2pchain_api_connections_refused_total counts them)",
				"remote", c.RemoteAddr().String(), "why", why)
		}
		select {
		case ll.l.refusing <- struct{}{}:
			go func() {
				defer func() { <-ll.l.refusing }()
				refuse(c, why)
			}()
		default:
			_ = c.Close() // as many refusals under way as it answers: none
		}
	}
}

// maxRefusing is how many refused connections get their answer at once;
// beyond, one is closed without it.
const maxRefusing = 64

// refuse answers c, a connection over a limit, with 503
// too_many_connections and closes it, within a second. It reads the
// request's first bytes before it answers: an answer that comes before the
// request is, for an HTTP client, no answer to it (Go's client calls it
// unsolicited and fails the request); and it reads on a little after, so
// that closing with a request body unread does not reset the answer away.
func refuse(c net.Conn, why string) {
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	buf := make([]byte, 4096)
	_, _ = c.Read(buf)
	_ = c.SetWriteDeadline(time.Now().Add(250 * time.Millisecond))
	if _, err := c.Write(tooManyConns(why)); err != nil {
		return
	}
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	_ = c.SetReadDeadline(time.Now().Add(250 * time.Millisecond))
	_, _ = io.Copy(io.Discard, io.LimitReader(c, 1<<20)) // until the client closes, or the time ends
}

// remoteIP returns the IP of c's remote end, and whether it is on this
// machine: a loopback address, or none (a Unix socket). The IP is keyed
// without its zone (a link-local peer's fe80::1%eth0), and an IPv4 address
// mapped into IPv6 as IPv4, so that one address has one count.
func remoteIP(c net.Conn) (string, bool) {
	host := c.RemoteAddr().String()
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		_, tcp := c.RemoteAddr().(*net.TCPAddr)
		return host, !tcp // no IP: a Unix socket is on this machine
	}
	ip = ip.WithZone("").Unmap()
	if ip.Is6() && !ip.IsLoopback() {
		// One host commonly holds a whole /64: count it as one address.
		p, _ := ip.Prefix(64)
		return p.String(), false
	}
	return ip.String(), ip.IsLoopback()
}

// limitedConn gives its place back when it is closed (once, however often
// the server closes it).
type limitedConn struct {
	net.Conn
	l        *connLimiter
	ip       string
	loopback bool
	once     sync.Once
}

func (c *limitedConn) Close() error {
	c.once.Do(func() { c.l.release(c.ip, c.loopback) })
	return c.Conn.Close()
}

// CloseWrite half-closes a TCP connection, as http.Server does before it
// closes one whose request body it did not read (a body over the limit,
// headers too large), so that the client reads the answer before the
// reset: the wrapper must not hide it.
func (c *limitedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
