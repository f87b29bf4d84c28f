package p2p

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	dhtpb "github.com/libp2p/go-libp2p-kad-dht/pb"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-msgio"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
	"google.golang.org/protobuf/proto"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/node"
)

// Tests of what peers, many identities among them, can make discovery
// keep or do: the DHT's provider records, the addresses in them, the low
// water mark for dialling found peers, and the peerstore file.

// kadExchange sends msgs to v's DHT from raw on one stream, then asks for
// the providers of key and returns the answer. The DHT handles a stream's
// messages in order, so when the answer comes every message before it has
// been handled.
func kadExchange(t *testing.T, ctx context.Context, raw host.Host, v *Host, key []byte, msgs ...*dhtpb.Message) *dhtpb.Message {
	t.Helper()
	s, err := raw.NewStream(ctx, v.ID(), DHTProtocolPrefix+"/kad/1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	w := msgio.NewVarintWriter(s)
	for _, m := range append(msgs, &dhtpb.Message{Type: dhtpb.Message_GET_PROVIDERS, Key: key}) {
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.WriteMsg(b); err != nil {
			t.Fatal(err)
		}
	}
	b, err := msgio.NewVarintReaderSize(s, network.MessageSizeMax).ReadMsg()
	if err != nil {
		t.Fatal(err)
	}
	var resp dhtpb.Message
	if err := proto.Unmarshal(b, &resp); err != nil {
		t.Fatal(err)
	}
	return &resp
}

// addProvider is raw's ADD_PROVIDER for key, with addrs (raw's own if none).
func addProvider(raw host.Host, key []byte, addrs ...ma.Multiaddr) *dhtpb.Message {
	if len(addrs) == 0 {
		addrs = raw.Addrs()
	}
	p := &dhtpb.Message_Peer{Id: []byte(raw.ID())}
	for _, a := range addrs {
		p.Addrs = append(p.Addrs, a.Bytes())
	}
	return &dhtpb.Message{Type: dhtpb.Message_ADD_PROVIDER, Key: key, ProviderPeers: []*dhtpb.Message_Peer{p}}
}

// advertisers connects n bare hosts to v, each of which advertises itself
// at key (ADD_PROVIDER).
func advertisers(t *testing.T, ctx context.Context, v victim, key []byte, n int) []host.Host {
	t.Helper()
	var hosts []host.Host
	for range n {
		a := rawHost(t)
		connectRaw(t, ctx, a, v)
		kadExchange(t, ctx, a, v.Host, key, addProvider(a, key))
		hosts = append(hosts, a)
	}
	return hosts
}

// randomKeyRecords returns n ADD_PROVIDER messages of a for random keys:
// more than kad-dht buffers (256) has it write its buffer to the store.
func randomKeyRecords(a host.Host, n int) []*dhtpb.Message {
	msgs := make([]*dhtpb.Message, 0, n)
	for range n {
		k := make([]byte, 80)
		_, _ = rand.Read(k)
		msgs = append(msgs, addProvider(a, k))
	}
	return msgs
}

func providerIDs(t *testing.T, m *dhtpb.Message) []peer.ID {
	t.Helper()
	var ids []peer.ID
	for _, p := range m.ProviderPeers {
		id, err := peer.IDFromBytes(p.Id)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

// TestDHTKeepsOnlyRendezvousProviders: five identities advertise at the
// rendezvous and one of them then advertises a thousand random keys. The
// host keeps no record of a random key, and of the rendezvous only the
// newest maxRendezvousProviders (three here), with their addresses
// (loopback: the host itself has only loopback addresses).
func TestDHTKeepsOnlyRendezvousProviders(t *testing.T) {
	old := maxRendezvousProviders
	maxRendezvousProviders = 3
	t.Cleanup(func() { maxRendezvousProviders = old })
	ctx := testContext(t, 60*time.Second)
	params := chain.TestParams("dht-providers")
	v := startVictim(t, ctx, params, WithDHT(true))
	key, err := rendezvousKey(RendezvousNamespace(params.Genesis().Hash()))
	if err != nil {
		t.Fatal(err)
	}
	provs := advertisers(t, ctx, v, key, 5)
	// More random keys than the provider manager buffers (256), so that
	// the records above and the first random ones reach the store.
	msgs := randomKeyRecords(provs[0], 1000)
	first := msgs[0].Key
	if got := kadExchange(t, ctx, provs[0], v.Host, first, msgs...).ProviderPeers; len(got) != 0 {
		t.Errorf("a random key has %d provider records, want none kept", len(got))
	}
	resp := kadExchange(t, ctx, provs[0], v.Host, key)
	got := providerIDs(t, resp)
	if len(got) != 3 {
		t.Fatalf("the rendezvous has %d provider records %v, want the cap 3", len(got), got)
	}
	for _, p := range provs[:2] {
		for _, id := range got {
			if id == p.ID() {
				t.Errorf("an oldest provider %s was kept over a newer one", id)
			}
		}
	}
	for _, p := range resp.ProviderPeers {
		if len(p.Addrs) == 0 {
			t.Errorf("a provider record without addresses: loopback ones were dropped on a loopback host")
		}
	}
	if n := v.disc.provStore.len(); n > 3 {
		t.Errorf("the provider store holds %d records, want at most 3", n)
	}
}

// TestDHTAnswersFewProviders: a GET_PROVIDERS for the rendezvous is
// answered with maxServedProviders records of the store, not
// every record kept (before: all of them, up to 1,024, some 200 KB for a
// 60-byte request); the store keeps them all. (Records kad-dht still
// buffers, up to 320, are answered besides.)
func TestDHTAnswersFewProviders(t *testing.T) {
	old := maxServedProviders
	maxServedProviders = 2
	t.Cleanup(func() { maxServedProviders = old })
	ctx := testContext(t, 60*time.Second)
	params := chain.TestParams("dht-served")
	v := startVictim(t, ctx, params, WithDHT(true))
	key, err := rendezvousKey(RendezvousNamespace(params.Genesis().Hash()))
	if err != nil {
		t.Fatal(err)
	}
	provs := advertisers(t, ctx, v, key, 5)
	// Its buffer written to the store, with the five above.
	kadExchange(t, ctx, provs[0], v.Host, key, randomKeyRecords(provs[0], 300)...)
	if n := v.disc.provStore.len(); n != 5 {
		t.Fatalf("the store holds %d records, want the 5 of the rendezvous", n)
	}
	got := providerIDs(t, kadExchange(t, ctx, provs[0], v.Host, key))
	if len(got) != 2 {
		t.Fatalf("a GET_PROVIDERS was answered with %d records %v, want 2", len(got), got)
	}
	for _, id := range got {
		if !slices.ContainsFunc(provs, func(h host.Host) bool { return h.ID() == id }) {
			t.Errorf("answered with %s, not one of the providers", id)
		}
	}
}

// TestDHTDropsPrivateAddrs: on a host with a public address, the private
// and loopback addresses a peer puts in its provider record, or that the
// host learnt of it otherwise, are not handed out; its public one is.
func TestDHTDropsPrivateAddrs(t *testing.T) {
	ctx := testContext(t, 30*time.Second)
	params := chain.TestParams("dht-addrs")
	public := ma.StringCast("/ip4/198.51.100.1/tcp/4001") // TEST-NET-2: stands for a public address
	lh, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
		libp2p.AddrsFactory(func(as []ma.Multiaddr) []ma.Multiaddr { return append(as, public) }))
	if err != nil {
		t.Fatal(err)
	}
	key, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	n, err := node.New(params, key)
	if err != nil {
		t.Fatal(err)
	}
	v, err := New(ctx, n, WithHost(lh), WithDHT(true))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.Close() })

	rk, err := rendezvousKey(RendezvousNamespace(params.Genesis().Hash()))
	if err != nil {
		t.Fatal(err)
	}
	a := rawHost(t)
	if err := a.Connect(ctx, peer.AddrInfo{ID: v.ID(), Addrs: lh.Network().ListenAddresses()}); err != nil {
		t.Fatal(err)
	}
	theirs := ma.StringCast("/ip4/203.0.113.9/tcp/4001") // TEST-NET-3
	claimed := append(a.Addrs(), ma.StringCast("/ip4/10.1.2.3/tcp/4001"), ma.StringCast("/ip4/192.168.7.7/tcp/4001"), theirs)
	resp := kadExchange(t, ctx, a, v, rk, addProvider(a, rk, claimed...))
	if len(resp.ProviderPeers) != 1 {
		t.Fatalf("%d provider records, want 1", len(resp.ProviderPeers))
	}
	var got []string
	for _, b := range resp.ProviderPeers[0].Addrs {
		addr, err := ma.NewMultiaddrBytes(b)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, addr.String())
		if manet.IsPrivateAddr(addr) || manet.IsIPLoopback(addr) {
			t.Errorf("handed out a private or loopback address %s", addr)
		}
	}
	if !strings.Contains(strings.Join(got, " "), theirs.String()) {
		t.Errorf("addresses %v, want the public one %s", got, theirs)
	}
}

// TestInboundStrangersDoNotStopDialling: as many bare hosts as the low
// water mark connect to the node and never do the status handshake; a
// peer of the network found afterwards (by mDNS here) is still dialled.
func TestInboundStrangersDoNotStopDialling(t *testing.T) {
	ctx := testContext(t, 20*time.Second)
	params := chain.TestParams("inbound-low")
	const low = 4
	v := startVictim(t, ctx, params, WithConnLimits(low, 64))
	honest := startVictim(t, ctx, params)
	for range low {
		connectRaw(t, ctx, rawHost(t), v)
	}
	if n := len(v.host.Network().Peers()); n < low {
		t.Fatalf("%d strangers connected, want %d", n, low)
	}
	info := peer.AddrInfo{ID: honest.ID(), Addrs: honest.host.Addrs()}
	for v.host.Network().Connectedness(honest.ID()) != network.Connected {
		mdnsNotifee{v.disc}.HandlePeerFound(info) // again: one found while the dialler is busy is dropped
		select {
		case <-ctx.Done():
			t.Fatalf("with %d inbound strangers the found peer was never dialled (%d dials)", low, v.disc.dials.Load())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// peerFileIDs reads the peer IDs of a peerstore file.
func peerFileIDs(t *testing.T, path string) map[string]bool {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var pf peerFileJSON
	if err := json.Unmarshal(data, &pf); err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, e := range pf.Peers {
		ids[e.ID] = true
	}
	return ids
}

// TestPeerFileIgnoresBriefInbound: the node dials an honest peer; then
// identities that connect to it and pass the status handshake come and go.
// The saved file keeps the honest peer and none of them.
func TestPeerFileIgnoresBriefInbound(t *testing.T) {
	ctx := testContext(t, 60*time.Second)
	params := chain.TestParams("peerfile-sybils")
	path := filepath.Join(t.TempDir(), "peers.json")
	v := startVictim(t, ctx, params, WithPeerstoreFile(path))
	honest := startVictim(t, ctx, params)
	if err := v.Connect(ctx, honest.TCPAddr().String()); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, ctx, "honest handshake", func() bool { _, ok := v.peers.status(honest.ID()); return ok })

	echo := claimStatus(func(theirs chain.Status) chain.Status { return theirs })
	var sybils []host.Host
	for range 20 {
		s := rawHost(t)
		s.SetStreamHandler(StatusProtocol, echo)
		connectRaw(t, ctx, s, v)
		sybils = append(sybils, s)
	}
	waitUntil(t, ctx, "sybil handshakes", func() bool {
		for _, s := range sybils {
			if _, ok := v.peers.status(s.ID()); !ok {
				return false
			}
		}
		return true
	})
	v.disc.savePeerFile() // what the minute ticker does
	ids := peerFileIDs(t, path)
	if !ids[honest.ID().String()] {
		t.Errorf("the dialled honest peer is not in the file")
	}
	for _, s := range sybils {
		if ids[s.ID().String()] {
			t.Fatalf("a brief inbound identity is in the file (%d entries)", len(ids))
		}
	}
}

// TestPeerFileKeepsLongestConnected: a full file keeps the peer connected
// for an hour over newer peers seen only briefly.
func TestPeerFileKeepsLongestConnected(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	path := filepath.Join(t.TempDir(), "peers.json")
	f := openPeerFile(path, chain.TestParams("longest").Genesis().Hash(), log)
	addr := []ma.Multiaddr{ma.StringCast("/ip4/198.51.100.1/tcp/4001")}
	now := time.Now()
	old, _ := PeerID(KeyFromSeed(1))
	f.seenFor(old, addr, now.Add(-time.Hour), time.Hour)
	for i := range maxPeerFileEntries {
		p, _ := PeerID(KeyFromSeed(int64(100 + i)))
		f.seenFor(p, addr, now, time.Second)
	}
	if err := f.save(func(peer.ID) bool { return true }); err != nil {
		t.Fatal(err)
	}
	ids := peerFileIDs(t, path)
	if len(ids) != maxPeerFileEntries || !ids[old.String()] {
		t.Fatalf("%d entries, long-connected peer kept: %v", len(ids), ids[old.String()])
	}
}

// TestRememberedPeersDialledBounded: of forty remembered peers whose
// address accepts and then says nothing, at most maxFoundDials are dialled
// at a time.
func TestRememberedPeersDialledBounded(t *testing.T) {
	ctx := testContext(t, 30*time.Second)
	params := chain.TestParams("remembered-bounded")
	tarpit := tarpitAddr(t).String()
	pf := peerFileJSON{Version: peerFileVersion, Genesis: params.Genesis().Hash().String()}
	for i := range 40 {
		id, _ := PeerID(KeyFromSeed(int64(1000 + i)))
		pf.Peers = append(pf.Peers, peerFileEntry{ID: id.String(), Addrs: []string{tarpit}, LastSeen: time.Now()})
	}
	data, _ := json.Marshal(pf)
	path := filepath.Join(t.TempDir(), "peers.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	v := startVictim(t, ctx, params, WithPeerstoreFile(path))
	waitUntil(t, ctx, "the first dials", func() bool { return v.disc.dials.Load() >= maxFoundDials })
	time.Sleep(200 * time.Millisecond) // room for more to start, were they not bounded
	// The tarpit holds each dial until dialTimeout (15 s), far longer than
	// the test takes to get here.
	if n := v.disc.dials.Load(); n > maxFoundDials {
		t.Fatalf("%d remembered peers dialled at once, want at most %d", n, maxFoundDials)
	}
}

// TestDHTAnswersNotOnlyNewest: identities that advertise themselves again
// and again (an ADD_PROVIDER, from any peer, at any rate, makes its record
// the newest) are not all that GET_PROVIDERS answers hold: the answers
// are a sample of the records kept, so that the honest providers, which
// advertise at their own pace, are found too. Before, each answer held the
// newest maxServedProviders records, and that many identities advertising
// every second hid every other provider from every finder.
func TestDHTAnswersNotOnlyNewest(t *testing.T) {
	old := maxServedProviders
	maxServedProviders = 2
	t.Cleanup(func() { maxServedProviders = old })
	ctx := testContext(t, 60*time.Second)
	params := chain.TestParams("dht-sample")
	v := startVictim(t, ctx, params, WithDHT(true))
	key, err := rendezvousKey(RendezvousNamespace(params.Genesis().Hash()))
	if err != nil {
		t.Fatal(err)
	}
	// flush has kad-dht write its buffered records to the store.
	flush := func(a host.Host) { kadExchange(t, ctx, a, v.Host, key, randomKeyRecords(a, 300)...) }
	hosts := advertisers(t, ctx, v, key, 5)
	honest := map[peer.ID]bool{}
	for _, a := range hosts {
		honest[a.ID()] = true
	}
	flush(hosts[0])
	var sybils []host.Host
	for range 2 {
		a := rawHost(t)
		connectRaw(t, ctx, a, v)
		sybils = append(sybils, a)
	}
	seen := 0
	for range 20 {
		time.Sleep(2 * time.Millisecond)
		for _, a := range sybils { // advertised again: the newest records
			kadExchange(t, ctx, a, v.Host, key, addProvider(a, key))
		}
		flush(sybils[0])
		for _, id := range providerIDs(t, kadExchange(t, ctx, hosts[0], v.Host, key)) {
			if honest[id] {
				seen++
			}
		}
	}
	if seen == 0 {
		t.Fatal("20 answers held only the identities that advertised last, none of the 5 other providers")
	}
}
