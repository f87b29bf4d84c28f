package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/p2pchain/p2pchain/internal/api"
	"github.com/p2pchain/p2pchain/internal/datadir"
	"github.com/p2pchain/p2pchain/internal/explorer"
	"github.com/p2pchain/p2pchain/internal/node"
	"github.com/p2pchain/p2pchain/internal/p2p"
)

// startAPI serves the HTTP API and the explorer until ctx ends, and records
// the URL in the data directory's api file for the client commands. done is
// closed once the server has stopped and the file is gone. addr "off"
// disables the API (url is then empty). note, if not empty, says that the
// default port was taken and which one the API took instead. access, if not
// empty, says that the API listens beyond loopback and where the token its
// writes need is. POST /api/v1/shutdown calls shutdown.
func startAPI(ctx context.Context, dir *datadir.Dir, addr string, n *node.Node, h *p2p.Host, log *slog.Logger, shutdown func()) (url, note, access string, done <-chan struct{}, err error) {
	closed := make(chan struct{})
	if addr == "off" {
		close(closed)
		return "", "", "", closed, nil
	}
	ln, note, err := listenAPI(addr)
	if err != nil {
		return "", "", "", nil, err
	}
	opts := []api.Option{api.WithFallback(explorer.Handler()), api.WithLogger(log), api.WithShutdown(shutdown), api.WithVersion(version)}
	bound := ln.Addr().(*net.TCPAddr)
	if !api.IsLoopback(ln.Addr()) {
		token, err := apiToken(dir, datadir.TokenFile)
		if err == nil {
			var read string
			read, err = apiToken(dir, datadir.ReadTokenFile)
			opts = append(opts, api.WithToken(token), api.WithReadToken(read))
		}
		if err != nil {
			ln.Close()
			return "", "", "", nil, err
		}
		// Off loopback every write needs the token, even one from this
		// machine: say so where the URL is printed, or a POST's 401 is a
		// surprise.
		where := "listening on " + bound.IP.String()
		if bound.IP.IsUnspecified() {
			where = "listening on all interfaces"
		}
		access = fmt.Sprintf("%s: writes need the token in %s, sent as Authorization: Bearer TOKEN; the p2pchain commands send it; "+
			"the read token in %s opens the explorer's live view from other machines, and no writes",
			where, dir.File(datadir.TokenFile), dir.File(datadir.ReadTokenFile))
	}
	handler := api.New(n, h, opts...)
	url = "http://" + localAddr(bound)
	if err := dir.WriteFile(datadir.APIFile, []byte(url+"\n"), 0o600); err != nil {
		ln.Close()
		handler.Close()
		return "", "", "", nil, fmt.Errorf("write api file: %w", err)
	}
	go func() {
		defer close(closed)
		defer os.Remove(dir.File(datadir.APIFile))
		defer handler.Close()
		if err := handler.Serve(ctx, ln); err != nil {
			log.Error("API server stopped", "err", err)
		}
	}()
	return url, note, access, closed, nil
}

// listenAPI listens on addr. On the default port (DefaultAPIPort) it moves
// to the next free port up to lastAPIPort, then to any free port, and note
// says so; any other port must be free.
func listenAPI(addr string) (ln net.Listener, note string, err error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, "", fmt.Errorf("API address %q: %w (want HOST:PORT such as 127.0.0.1:%d, or off)", addr, err, DefaultAPIPort)
	}
	if port == strconv.Itoa(DefaultAPIPort) {
		return listenFrom(host, DefaultAPIPort, lastAPIPort)
	}
	ln, err = net.Listen("tcp", addr)
	if errors.Is(err, syscall.EADDRINUSE) {
		return nil, "", fmt.Errorf("API address %s is in use (another node?): pick another with -api HOST:PORT, "+
			"-api %s to take the first free port from %d, or -api off", addr, net.JoinHostPort(host, strconv.Itoa(DefaultAPIPort)), DefaultAPIPort)
	}
	if err != nil {
		return nil, "", fmt.Errorf("API address %q: %w (want HOST:PORT such as 127.0.0.1:%d, or off)", addr, err, DefaultAPIPort)
	}
	return ln, "", nil
}

// listenFrom listens on host at the first free port from first to last,
// else on any free port; note says when it is not first.
func listenFrom(host string, first, last int) (net.Listener, string, error) {
	for p := first; p <= last; p++ {
		ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(p)))
		if errors.Is(err, syscall.EADDRINUSE) || errors.Is(err, syscall.EACCES) {
			continue
		}
		if err != nil {
			return nil, "", fmt.Errorf("API address %s: %w", net.JoinHostPort(host, strconv.Itoa(p)), err)
		}
		switch p {
		case first:
			return ln, "", nil
		case first + 1:
			return ln, fmt.Sprintf("API port %d in use, using %d", first, p), nil
		}
		return ln, fmt.Sprintf("API ports %d to %d in use, using %d", first, p-1, p), nil
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return nil, "", fmt.Errorf("API address %s: %w", net.JoinHostPort(host, "0"), err)
	}
	return ln, fmt.Sprintf("API ports %d to %d in use, using %d", first, last, ln.Addr().(*net.TCPAddr).Port), nil
}

// localAddr is how a client on this machine reaches a listener: through
// loopback when it listens on every interface. That is 127.0.0.1 also for
// "[::]" (what "-api :5009" binds): the listener takes IPv4 too, and
// 127.0.0.1 works where the IPv6 loopback is off.
func localAddr(a *net.TCPAddr) string {
	if a.IP.IsUnspecified() {
		return fmt.Sprintf("127.0.0.1:%d", a.Port)
	}
	return a.String()
}

// apiToken returns the API token in the data directory's file name
// (datadir.TokenFile or ReadTokenFile), making it on first use.
func apiToken(dir *datadir.Dir, name string) (string, error) {
	b, err := os.ReadFile(dir.File(name))
	if err == nil && len(strings.TrimSpace(string(b))) >= 32 {
		return strings.TrimSpace(string(b)), nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read API token: %w", err)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	token := hex.EncodeToString(raw)
	if err := dir.WriteFile(name, []byte(token+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write API token: %w", err)
	}
	return token, nil
}
