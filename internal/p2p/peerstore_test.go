package p2p_test

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/p2p"
	"github.com/p2pchain/p2pchain/internal/testnet"
)

// discPeerFileIDs reads the peer IDs of a peerstore file.
func discPeerFileIDs(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Peers []struct {
			ID string `json:"id"`
		} `json:"peers"`
	}
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatalf("peerstore file: %v\n%s", err, data)
	}
	var ids []string
	for _, p := range f.Peers {
		ids = append(ids, p.ID)
	}
	return ids
}

// TestPeerstoreReconnect: a node remembers the peers it was connected to;
// restarted with no bootstrap and no address given, it dials them again.
func TestPeerstoreReconnect(t *testing.T) {
	ctx := discCtx(t, 30*time.Second)
	params := chain.TestParams("peerstore")
	file := filepath.Join(t.TempDir(), "peers.json")
	key := discKey(t)
	b := discStart(t, ctx, testnet.Config{Params: params})
	c := discStart(t, ctx, testnet.Config{Params: params})
	a := discStart(t, ctx, testnet.Config{Params: params, Key: key, PeerstoreFile: file})
	for _, p := range []*testnet.Peer{b, c} {
		if err := a.Connect(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	discWaitFor(t, ctx, "handshakes", func() bool { return discHandshaken(a, b) && discHandshaken(a, c) })
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(file)
	if err != nil {
		t.Fatalf("no peerstore file written on Close: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("peerstore file mode %v, want 0600", fi.Mode().Perm())
	}
	ids := strings.Join(discPeerFileIDs(t, file), " ")
	if !strings.Contains(ids, b.Host.ID().String()) || !strings.Contains(ids, c.Host.ID().String()) {
		t.Fatalf("peerstore file holds %s, want both peers", ids)
	}

	discWaitFor(t, ctx, "peers see the node go", func() bool { return len(b.Host.Peers()) == 0 && len(c.Host.Peers()) == 0 })
	a = discStart(t, ctx, testnet.Config{Params: params, Key: key, PeerstoreFile: file})
	discWaitFor(t, ctx, "restarted node reconnects to its last peers", func() bool {
		return discHandshaken(a, b) && discHandshaken(a, c)
	})
}

// TestPeerstoreCorruptIgnored: a node starts despite a corrupt peerstore
// file, and replaces it with a good one.
func TestPeerstoreCorruptIgnored(t *testing.T) {
	ctx := discCtx(t, 30*time.Second)
	params := chain.TestParams("peerstore-corrupt")
	file := filepath.Join(t.TempDir(), "peers.json")
	if err := os.WriteFile(file, []byte("{\"version\":1,\"peers\":[{\"id\":\x00\xff"), 0o600); err != nil {
		t.Fatal(err)
	}
	b := discStart(t, ctx, testnet.Config{Params: params})
	a := discStart(t, ctx, testnet.Config{Params: params, PeerstoreFile: file})
	if err := a.Connect(ctx, b); err != nil {
		t.Fatal(err)
	}
	discWaitFor(t, ctx, "handshake", func() bool { return discHandshaken(a, b) })
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if ids := discPeerFileIDs(t, file); len(ids) != 1 || ids[0] != b.Host.ID().String() {
		t.Fatalf("peerstore file holds %v, want only %s", ids, b.Host.ID())
	}
}

// TestPeerstoreDropsDeadPeer: a remembered peer that fails its last allowed
// dial is dropped from the file; a live one is dialled and kept.
func TestPeerstoreDropsDeadPeer(t *testing.T) {
	ctx := discCtx(t, 30*time.Second)
	params := chain.TestParams("peerstore-dead")
	file := filepath.Join(t.TempDir(), "peers.json")
	b := discStart(t, ctx, testnet.Config{Params: params})
	// A port with nothing behind it: dials fail at once.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := "/ip4/127.0.0.1/tcp/" + strings.TrimPrefix(l.Addr().String(), "127.0.0.1:")
	l.Close()
	dead, _ := p2p.PeerID(discKey(t))
	type entry struct {
		ID       string    `json:"id"`
		Addrs    []string  `json:"addrs"`
		Fails    int       `json:"fails"`
		LastSeen time.Time `json:"last_seen"`
	}
	f := struct {
		Version int     `json:"version"`
		Genesis string  `json:"genesis"`
		Peers   []entry `json:"peers"`
	}{1, params.Genesis().Hash().String(), []entry{
		{dead.String(), []string{deadAddr}, p2p.MaxPeerFileFails - 1, time.Now().Add(-time.Hour)},
		{b.Host.ID().String(), []string{b.Host.TCPAddr().String()}, 2, time.Now().Add(-time.Hour)},
	}}
	data, _ := json.Marshal(f)
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	a := discStart(t, ctx, testnet.Config{Params: params, PeerstoreFile: file})
	discWaitFor(t, ctx, "dial the live remembered peer", func() bool { return discHandshaken(a, b) })
	discWaitFor(t, ctx, "dial the dead remembered peer", func() bool { return a.Host.DiscoveryStats().DialErrors > 0 })
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if ids := discPeerFileIDs(t, file); len(ids) != 1 || ids[0] != b.Host.ID().String() {
		t.Fatalf("peerstore file holds %v, want only the live peer %s", ids, b.Host.ID())
	}
}
