package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
)

// Serve serves the API on ln until ctx ends, then shuts the server down
// gracefully: it stops accepting, ends event streams, lets requests in
// progress finish for up to Timeouts.Shutdown, and returns nil. It admits
// connections within WithMaxConnections's limits (conns.go). It returns
// an error if the server fails, and refuses (without serving) a listener
// on a non-loopback address when the handler has no token: the write
// endpoints would be open to the network. It closes ln.
func (h *Handler) Serve(ctx context.Context, ln net.Listener) error {
	if !IsLoopback(ln.Addr()) && h.cfg.token == "" {
		_ = ln.Close()
		return fmt.Errorf("the API on %s would be reachable from other machines: give it a token (WithToken) or listen on 127.0.0.1", ln.Addr())
	}
	t := h.cfg.timeouts
	// Request contexts end when shutdown starts, which ends event streams
	// (they would otherwise hold the shutdown until its deadline).
	base, cancelBase := context.WithCancel(context.Background())
	defer cancelBase()
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: t.ReadHeader,
		ReadTimeout:       t.Read,
		WriteTimeout:      t.Write,
		IdleTimeout:       t.Idle,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(h.cfg.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return base },
	}
	srv.RegisterOnShutdown(cancelBase)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(limitedListener{Listener: ln, l: h.conns}) }()
	select {
	case err := <-errc:
		return fmt.Errorf("api server on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), t.Shutdown)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	if err != nil {
		_ = srv.Close()
		return fmt.Errorf("api server on %s: shutdown: %w", ln.Addr(), err)
	}
	return nil
}

// IsLoopback reports whether addr is a loopback address (127.0.0.0/8 or
// ::1).
func IsLoopback(addr net.Addr) bool { return isLoopbackHost(addr.String()) }

// isLoopbackHost reports whether hostport ("host:port" or a bare host) is
// a loopback IP address; names, localhost included, are not.
func isLoopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
