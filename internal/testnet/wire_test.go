package testnet

import (
	"context"
	"errors"
	"io"
	"maps"
	"net"
	"os"
	"testing"
)

// TestTCPReceived sends bytes over a real loopback connection and reads
// them back from the kernel through ss: only the connections touching the
// ports asked for count, each byte once, at its receiver.
func TestTCPReceived(t *testing.T) {
	ctx := context.Background()
	pair := func() (net.Conn, net.Conn, int) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		s, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close(); s.Close() })
		return c, s, ln.Addr().(*net.TCPAddr).Port
	}
	send := func(from, to net.Conn, n int) {
		go func() { _, _ = from.Write(make([]byte, n)) }()
		if _, err := io.ReadFull(to, make([]byte, n)); err != nil {
			t.Fatal(err)
		}
	}
	c1, s1, p1 := pair()
	c2, s2, p2 := pair() // not asked for
	send(c1, s1, 100)
	base, err := TCPReceived(ctx, []int{p1})
	if errors.Is(err, ErrNoSS) && os.Getenv("CI") == "" {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(base) != 2 {
		t.Fatalf("%d connection ends touch port %d, want 2: %v", len(base), p1, base)
	}
	send(c1, s1, 3000) // dialer to listener
	send(s1, c1, 500)  // and back
	send(c2, s2, 7000)
	c3, s3, _ := pair() // opened meanwhile on a port asked for below
	send(c3, s3, 40)
	ports := []int{p1, portOf(s3.LocalAddr().String())}
	got, err := TCPReceived(ctx, ports)
	if err != nil {
		t.Fatal(err)
	}
	if n, gone := got.Since(base); n != 3540 || gone != 0 {
		t.Errorf("%d bytes received, %d ends gone; want 3540 (3,500 on port %d, 40 on a new connection), 0", n, gone, p1)
	}
	if _, ok := got[c2.LocalAddr().String()+" "+c2.RemoteAddr().String()]; ok {
		t.Errorf("the connection to port %d, not asked for, was counted", p2)
	}
	// A connection closed meanwhile drops out, and says so.
	c1.Close()
	s1.Close()
	after, err := TCPReceived(ctx, ports)
	if err != nil {
		t.Fatal(err)
	}
	if n, gone := after.Since(got); n != 0 || gone != 2 {
		t.Errorf("after the close: %d bytes, %d ends gone; want 0, 2", n, gone)
	}
}

func TestParseReceived(t *testing.T) {
	out := "0      0      127.0.0.1:4001 127.0.0.1:52558\n" +
		"\t cubic wscale:7,7 rto:204 bytes_sent:10 bytes_acked:11 bytes_received:1200 segs_out:3 segs_in:4\n" +
		"0      0      127.0.0.1:52558 127.0.0.1:4001\n" +
		"\t cubic rto:204 bytes_sent:1200 bytes_acked:1201 bytes_received:10\n" +
		"0      0      [::1]:9000 [::1]:4002\n" +
		"\t cubic bytes_received:7\n" +
		"0      0      127.0.0.1:8080 127.0.0.1:40000\n" +
		"\t cubic bytes_received:99999\n" +
		"0      0      127.0.0.1:4001 127.0.0.1:52999\n" +
		"\t cubic bytes_sent:5\n" // nothing received yet: no bytes_received at all
	got, err := parseReceived([]byte(out), map[int]bool{4001: true, 4002: true})
	want := TCPCounts{"127.0.0.1:4001 127.0.0.1:52558": 1200, "127.0.0.1:52558 127.0.0.1:4001": 10,
		"[::1]:9000 [::1]:4002": 7, "127.0.0.1:4001 127.0.0.1:52999": 0}
	if err != nil || !maps.Equal(got, want) {
		t.Errorf("parseReceived = %v, %v; want %v", got, err, want)
	}
	// An ss without TCP_INFO (no sock_diag) cannot tell: not measured.
	if _, err := parseReceived([]byte("0 0 127.0.0.1:4001 127.0.0.1:5000\n"), map[int]bool{4001: true}); !errors.Is(err, ErrNoSS) {
		t.Errorf("sockets without TCP_INFO: %v, want ErrNoSS", err)
	}
	if _, err := parseReceived([]byte("garbage\n"), nil); err == nil {
		t.Error("a line of one field was taken for a socket")
	}
	if p, err := TCPPort("/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWEyoppNCUx8Yx66oV9fJnriXwCcXwDDUA2kj6vnc6iDEp"); err != nil || p != 4001 {
		t.Errorf("TCPPort = %d, %v", p, err)
	}
	if _, err := TCPPort("/ip4/127.0.0.1/udp/4001/quic-v1"); err == nil {
		t.Error("TCPPort of a QUIC address")
	}
}
