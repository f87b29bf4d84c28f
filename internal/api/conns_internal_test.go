package api

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/node"
)

// TestConnectionLimits: Serve admits at most its limit of connections at
// once (3 here); one more is answered 503 too_many_connections at once,
// before any request, and closed; once a connection closes, its place is
// free again. Before, there was no limit: any client could hold any number
// of connections (reads need no token on an API open beyond loopback).
func TestConnectionLimits(t *testing.T) {
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	n, err := node.New(chain.TestParams("conns"), key)
	if err != nil {
		t.Fatal(err)
	}
	h := New(n, nil, WithMaxConnections(3, 2))
	defer h.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- h.Serve(ctx, ln) }()
	defer func() { cancel(); <-served }()
	addr := ln.Addr().String()

	waitOpen := func(want int) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			if open, _ := h.conns.counts(); open == want {
				return
			}
			if time.Now().After(deadline) {
				open, _ := h.conns.counts()
				t.Fatalf("%d connections open, want %d", open, want)
			}
		}
	}
	var held []net.Conn
	for range 3 { // loopback: the per-address limit (2) does not apply
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		held = append(held, c)
	}
	waitOpen(3)

	over, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer over.Close()
	_ = over.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(over), nil)
	if err != nil {
		t.Fatalf("a connection over the limit: %v, want a 503 at once", err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), CodeTooManyConns) || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("a connection over the limit: %d %s", resp.StatusCode, body)
	}
	if _, err := over.Read(make([]byte, 1)); err == nil {
		t.Error("the refused connection stays open")
	}
	if _, refused := h.conns.counts(); refused != 1 {
		t.Errorf("%d refusals counted, want 1", refused)
	}

	_ = held[0].Close()
	waitOpen(2)
	r, err := http.Get("http://" + addr + "/api/v1/blocks")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, r.Body)
	r.Body.Close()
	if r.StatusCode != http.StatusOK {
		t.Fatalf("a request once a place was free: %d", r.StatusCode)
	}
}

// TestConnectionLimitPerAddress: one remote address gets at most its
// limit, and other machines together at most the total; this machine
// (loopback) has places of its own, so that remote clients filling
// theirs do not lock out the node's own client; places are given back.
func TestConnectionLimitPerAddress(t *testing.T) {
	l := newConnLimiter(4, 2, nil)
	for range 2 {
		if why := l.admit("192.0.2.1", false); why != "" {
			t.Fatal(why)
		}
	}
	if why := l.admit("192.0.2.1", false); !strings.Contains(why, "from 192.0.2.1") {
		t.Fatalf("a third connection from one address: %q, want refused", why)
	}
	for _, ip := range []string{"192.0.2.2", "192.0.2.3"} {
		if why := l.admit(ip, false); why != "" {
			t.Fatalf("another address: %q", why)
		}
	}
	if why := l.admit("192.0.2.4", false); !strings.Contains(why, "4 connections from other machines") {
		t.Fatalf("past the total: %q, want refused", why)
	}
	for range 4 { // the remote places are full: this machine's are its own
		if why := l.admit("127.0.0.1", true); why != "" {
			t.Fatalf("loopback: %q", why)
		}
	}
	if why := l.admit("::1", true); !strings.Contains(why, "from this machine") {
		t.Fatalf("past this machine's places: %q, want refused", why)
	}
	l.release("192.0.2.1", false)
	l.release("127.0.0.1", true)
	if why := l.admit("192.0.2.1", false); why != "" {
		t.Fatalf("after one closed: %q", why)
	}
	if why := l.admit("127.0.0.1", true); why != "" {
		t.Fatalf("after a local one closed: %q", why)
	}
	if open, _ := l.counts(); open != 8 {
		t.Fatalf("%d open, want 8", open)
	}
}

// addrConn is a net.Conn with only a remote address.
type addrConn struct {
	net.Conn
	remote net.Addr
}

func (c addrConn) RemoteAddr() net.Addr { return c.remote }

// TestRemoteIPKeys: a link-local IPv6 peer's zone (fe80::1%eth0) does not
// make it loopback, nor its count another address's; an IPv4 address
// mapped into IPv6 counts as the IPv4 one. Before, an address with a zone
// did not parse and was taken for loopback: exempt from the per-address
// limit.
func TestRemoteIPKeys(t *testing.T) {
	for _, c := range []struct {
		addr     net.Addr
		key      string
		loopback bool
	}{
		{&net.TCPAddr{IP: net.ParseIP("fe80::1"), Port: 5, Zone: "eth0"}, "fe80::/64", false},
		{&net.TCPAddr{IP: net.ParseIP("fe80::1"), Port: 6}, "fe80::/64", false},
		{&net.TCPAddr{IP: net.ParseIP("2001:db8:1:2:aaaa::7"), Port: 6}, "2001:db8:1:2::/64", false},
		{&net.TCPAddr{IP: net.ParseIP("::ffff:192.0.2.1"), Port: 7}, "192.0.2.1", false},
		{&net.TCPAddr{IP: net.ParseIP("192.0.2.1").To4(), Port: 8}, "192.0.2.1", false},
		{&net.TCPAddr{IP: net.ParseIP("::1"), Port: 9}, "::1", true},
		{&net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 9}, "127.0.0.1", true},
		{&net.UnixAddr{Name: "/tmp/api.sock", Net: "unix"}, "/tmp/api.sock", true},
	} {
		key, loopback := remoteIP(addrConn{remote: c.addr})
		if key != c.key || loopback != c.loopback {
			t.Errorf("%s: key %q loopback %v, want %q %v", c.addr, key, loopback, c.key, c.loopback)
		}
	}
}

// TestLimitedConnCloseWrite: a connection the limited listener admits
// can still be half-closed, as http.Server does (CloseWrite, then a pause)
// before it closes a connection whose request body it left unread, so that
// the client reads the answer (413, 431) before the reset. Before, the
// wrapper hid the TCP connection's CloseWrite and the server skipped it.
func TestLimitedConnCloseWrite(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ll := limitedListener{Listener: ln, l: newConnLimiter(4, 4, nil)}
	defer ll.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	c, err := ll.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cw, ok := c.(interface{ CloseWrite() error })
	if !ok {
		t.Fatal("an admitted connection has no CloseWrite: http.Server cannot half-close it")
	}
	if _, err := c.Write([]byte("answer")); err != nil {
		t.Fatal(err)
	}
	if err := cw.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	_ = client.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(client)
	if err != nil || string(got) != "answer" {
		t.Fatalf("the client read %q, %v; want the answer, then the end", got, err)
	}
	if _, err := client.Write([]byte("x")); err != nil { // the other half is open
		t.Fatal(err)
	}
	if open, _ := ll.l.counts(); open != 1 {
		t.Errorf("%d open after a half-close, want 1", open)
	}
}
