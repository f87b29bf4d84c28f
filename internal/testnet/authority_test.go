package testnet_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"testing"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/netfile"
	"github.com/p2pchain/p2pchain/internal/node"
	"github.com/p2pchain/p2pchain/internal/p2p"
	"github.com/p2pchain/p2pchain/internal/store"
	"github.com/p2pchain/p2pchain/internal/testnet"
)

// authorityNet returns the network of authorities holding keys, with a
// short block interval.
func authorityNet(t testing.TB, name string, keys []ed25519.PrivateKey) *netfile.Network {
	t.Helper()
	var ids []string
	for _, k := range keys {
		id, err := p2p.PeerID(k)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id.String())
	}
	f, err := netfile.New(name, ids)
	if err != nil {
		t.Fatal(err)
	}
	f.GenesisTime = time.Now().Add(-time.Hour).UTC().Truncate(time.Second).Format(time.RFC3339)
	f.BlockInterval = "1s"
	net, err := netfile.Parse(f.Encode())
	if err != nil {
		t.Fatal(err)
	}
	return net
}

func keysN(t testing.TB, n int) []ed25519.PrivateKey {
	var out []ed25519.PrivateKey
	for range n {
		k, err := p2p.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, k)
	}
	return out
}

// startAuthority starts one node of net with key (an authority if net
// lists it, else a follower) and a durable store in a temp dir.
func startAuthority(ctx context.Context, t testing.TB, net *netfile.Network, key ed25519.PrivateKey, dir string) *testnet.Peer {
	t.Helper()
	st, state := openStore(t, dir, net.Params)
	p, err := testnet.Start(ctx, testnet.Config{Params: net.Params, Key: key, SyncInterval: time.Second,
		NodeOptions: []node.Option{node.WithAuthority(net.Authority()), node.WithStore(st, state)}})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// waitFinal waits until reading id is final on every peer.
func waitFinal(t testing.TB, peers []*testnet.Peer, id chain.Hash, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for _, p := range peers {
		for {
			rs, ok := p.Node.FindReading(id)
			if ok && rs.Final {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("reading %s not final on %s after %v (found %v, %+v); consensus %+v",
					id.Short(), p.Host.ID(), within, ok, rs, p.Node.Consensus())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

func TestAuthorityFinality(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	keys := keysN(t, 5)
	net := authorityNet(t, "clinics", keys[:4]) // keys[4] follows
	var peers []*testnet.Peer
	for i, k := range keys {
		p := startAuthority(ctx, t, net, k, fmt.Sprintf("%s/%d", t.TempDir(), i))
		defer p.Close()
		peers = append(peers, p)
	}
	for i := range peers {
		for j := range i {
			if err := peers[i].Connect(ctx, peers[j]); err != nil {
				t.Fatal(err)
			}
		}
	}
	follower := peers[4]
	for i := range 5 {
		r, err := follower.Node.Submit("alice", 60+i)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		waitFinal(t, peers, r.ID(), 20*time.Second)
		t.Logf("reading %d final on all 5 nodes after %v", i, time.Since(start))
	}
	// One chain, final everywhere, every block sealed.
	tip := peers[0].Node.Status()
	for _, p := range peers {
		h, hash := p.Node.Final()
		if st := p.Node.Status(); h != st.Height || hash != st.Tip {
			t.Errorf("%s: final %d %s, tip %d %s", p.Host.ID(), h, hash.Short(), st.Height, st.Tip.Short())
		}
	}
	for h := uint64(1); h <= tip.Height; h++ {
		want, _ := peers[0].Node.BlockAt(h)
		for _, p := range peers[1:] {
			if got, ok := p.Node.BlockAt(h); !ok || got.Hash() != want.Hash() {
				if p.Node.Status().Height >= h {
					t.Fatalf("height %d differs between nodes", h)
				}
			}
		}
		if len(want.Seal) == 0 {
			t.Errorf("block %d has no seal", h)
		}
	}
	if info := follower.Node.Consensus(); info.Self != -1 || info.Kind != "authority" {
		t.Errorf("follower's consensus info %+v", info)
	}
}

// openStore opens (creating) a durable store in dir and loads it.
func openStore(t testing.TB, dir string, params chain.Params) (*store.Store, node.State) {
	t.Helper()
	st, err := store.Open(dir, params)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	s, err := st.Load()
	if err != nil {
		t.Fatal(err)
	}
	return st, node.State{Main: s.Main, Side: s.Side, Pending: s.Pending}
}
