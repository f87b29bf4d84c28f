package api

import (
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
// holds one more. Serve admits at most DefaultMaxConnections at once, and
// at most DefaultMaxConnectionsPerIP from one remote address (loopback
// clients, the node's own machine, count only toward the first: a local
// benchmark may open hundreds). A connection over a limit is answered at
// once with 503 too_many_connections and closed, before its request is
// read.
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

	mu      sync.Mutex
	open    int
	byIP    map[string]int
	refused uint64
	warned  time.Time // last warning about a refusal
}

func newConnLimiter(max, perIP int, log *slog.Logger) *connLimiter {
	return &connLimiter{max: max, perIP: perIP, log: log, byIP: map[string]int{}}
}

// admit takes a place for a connection from ip, or reports why there is
// none ("" if it took one).
func (l *connLimiter) admit(ip string, loopback bool) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.open >= l.max:
		return strconv.Itoa(l.max) + " connections are open, the most the node takes at once"
	case !loopback && l.byIP[ip] >= l.perIP:
		return strconv.Itoa(l.perIP) + " connections from " + ip + " are open, the most the node takes from one address"
	}
	l.open++
	l.byIP[ip]++
	return ""
}

// release gives back the place of a connection from ip.
func (l *connLimiter) release(ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
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
	return l.open, l.refused
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
			return &limitedConn{Conn: c, l: ll.l, ip: ip}, nil
		}
		if ll.l.refusal(time.Now()) {
			ll.l.log.Warn("API connection refused (logged at most once a minute; p2pchain_api_connections_refused_total counts them)",
				"remote", c.RemoteAddr().String(), "why", why)
		}
		// The answer fits a socket's buffer; the deadline bounds a peer
		// that has none.
		_ = c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		_, _ = c.Write(tooManyConns(why))
		_ = c.Close()
	}
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
	return ip.String(), ip.IsLoopback()
}

// limitedConn gives its place back when it is closed (once, however often
// the server closes it).
type limitedConn struct {
	net.Conn
	l    *connLimiter
	ip   string
	once sync.Once
}

func (c *limitedConn) Close() error {
	c.once.Do(func() { c.l.release(c.ip) })
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
