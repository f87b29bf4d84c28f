package p2p

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	ds "github.com/ipfs/go-datastore"
	dsq "github.com/ipfs/go-datastore/query"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p-kad-dht/records"
	coredisc "github.com/libp2p/go-libp2p/core/discovery"
	"github.com/libp2p/go-libp2p/core/peer"
	drouting "github.com/libp2p/go-libp2p/p2p/discovery/routing"
	"github.com/multiformats/go-base32"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
	mh "github.com/multiformats/go-multihash"

	"github.com/p2pchain/p2pchain/internal/chain"
)

// DHTProtocolPrefix prefixes the Kademlia DHT's protocol IDs
// (/p2pchain/kad/1.0.0), so our DHT is never mixed with the public IPFS one.
const DHTProtocolPrefix = "/p2pchain"

const (
	// DefaultRendezvousInterval is how often the host looks up its network's
	// rendezvous on the DHT.
	DefaultRendezvousInterval = time.Minute
	// readvertiseRounds: the host advertises itself at the rendezvous every
	// this many lookups, and at every lookup until its first advertisement
	// succeeds.
	readvertiseRounds = 10
	// rendezvousTimeout bounds one advertisement or lookup.
	rendezvousTimeout = 30 * time.Second
	// maxDHTAddrs caps the addresses taken from one DHT record: a peer
	// needs a few, and each one is an entry in the peerstore and a dial.
	maxDHTAddrs = 8
	// localAddrsRecheck is how long the host's own addresses are taken to
	// be as last seen, by dhtAddrs.
	localAddrsRecheck = 10 * time.Second
)

// maxRendezvousProviders caps the provider records the host keeps for its
// rendezvous, the only key it keeps records for: the most recently
// advertised stay. A variable so that tests can reach the cap with a few
// hosts.
var maxRendezvousProviders = 1024

// maxServedProviders caps the provider records of the rendezvous that one
// GET_PROVIDERS answer holds, a random sample of those kept: a finder
// dials a few at a time, and without the cap a request of some 60 bytes,
// from any peer and with no rate of its own in kad-dht, had back every
// record kept (up to 1,024, some 200 KB). Not the newest: an ADD_PROVIDER,
// from any peer at any rate, makes its record the newest, so that that
// many identities advertising again and again would be all that every
// finder is told of. A variable so that tests can reach it with a few
// hosts.
var maxServedProviders = 20

// WithDHT turns the Kademlia DHT on or off (default off). The host runs a
// DHT server under DHTProtocolPrefix, seeded only with its bootstrap and
// remembered peers (never the public IPFS bootstrap nodes), and meets the
// other nodes of its network at a rendezvous (RendezvousNamespace): it
// advertises itself there, looks up the others every rendezvous interval,
// and dials those it finds.
func WithDHT(on bool) Option { return func(c *config) { c.dht = on } }

// WithRendezvousInterval sets how often the DHT rendezvous is looked up
// (default DefaultRendezvousInterval); the host re-advertises itself every
// ten lookups. Tests use a short interval to converge quickly.
func WithRendezvousInterval(d time.Duration) Option {
	return func(c *config) { c.rendezvousInterval = d }
}

// RendezvousNamespace is where the nodes of the network with this genesis
// meet on the DHT.
func RendezvousNamespace(genesis chain.Hash) string {
	return "/p2pchain/rendezvous/1/" + genesis.String()
}

// startDHT starts the DHT and the rendezvous loop.
func (d *discovery) startDHT(ctx context.Context, interval time.Duration) error {
	allowed := func(_ any, p peer.ID) bool { return d.h.gater.allowed(p) }
	key, err := rendezvousKey(RendezvousNamespace(d.h.ledger.Status().Genesis))
	if err != nil {
		return err
	}
	// kad-dht v0.42 takes no custom provider store, only the datastore
	// under its provider manager: ours keeps the records of our
	// rendezvous, capped, and drops every other key. Without it any peer
	// could store records for as many keys as it sends, for 48 hours. The
	// manager's read cache is turned off: a cached key's provider set
	// grows with every record written for it, past the store's cap.
	d.provStore = newRendezvousStore(key, maxRendezvousProviders)
	kad, err := dht.New(d.h.host,
		dht.Mode(dht.ModeServer),
		dht.ProtocolPrefix(DHTProtocolPrefix),
		dht.DisableValues(), // we need provider records only
		dht.ProviderDatastore(d.provStore),
		dht.ProviderManagerOpts(records.Cache(noProviderCache{})),
		dht.AddressFilter(d.dhtAddrs),
		dht.BootstrapPeersFunc(d.dhtSeeds),
		dht.RoutingTableFilter(allowed),
		dht.QueryFilter(func(dht any, ai peer.AddrInfo) bool { return allowed(dht, ai.ID) }),
	)
	if err != nil {
		return fmt.Errorf("start the DHT: %w", err)
	}
	d.kad = kad
	d.h.wg.Add(1)
	go d.rendezvous(ctx, interval)
	return nil
}

// dhtSeeds are the peers the DHT starts from when its routing table is
// empty: the bootstrap peers and the peers remembered from the last run.
func (d *discovery) dhtSeeds() []peer.AddrInfo {
	seeds := append([]peer.AddrInfo(nil), d.boots...)
	if d.book != nil {
		seeds = append(seeds, d.book.infos()...)
	}
	return seeds
}

// rendezvous advertises this host at the network's rendezvous and dials the
// peers found there, every interval (with jitter).
func (d *discovery) rendezvous(ctx context.Context, interval time.Duration) {
	defer d.h.wg.Done()
	rd := drouting.NewRoutingDiscovery(d.kad)
	ns := RendezvousNamespace(d.h.ledger.Status().Genesis)
	advertised, round := false, 0
	delay := min(interval, time.Second) // the first round soon: bootstrap dials are quick
	for sleep(ctx, jitter(delay)) {
		delay = interval
		if d.kad.RoutingTable().Size() == 0 {
			_ = d.kad.Bootstrap(ctx) // seeds the table from dhtSeeds
			continue
		}
		if !advertised || round%readvertiseRounds == 0 {
			actx, cancel := context.WithTimeout(ctx, rendezvousTimeout)
			_, err := rd.Advertise(actx, ns)
			cancel()
			if err != nil {
				d.log.Debug("DHT: cannot advertise at the rendezvous", "err", err)
			} else {
				advertised = true
			}
		}
		round++
		fctx, cancel := context.WithTimeout(ctx, rendezvousTimeout)
		found, err := rd.FindPeers(fctx, ns, coredisc.Limit(2*d.low))
		if err != nil {
			cancel()
			d.log.Debug("DHT: cannot look up the rendezvous", "err", err)
			continue
		}
		for info := range found {
			if info.ID == d.h.host.ID() {
				continue
			}
			d.dhtFound.Add(1)
			// The addresses of a record found on the DHT come from
			// whoever answered the lookup: filter them as ours are.
			info.Addrs = d.dhtAddrs(info.Addrs)
			d.offer(info)
		}
		cancel()
	}
}

// rendezvousKey is the DHT key the nodes meeting at namespace ns advertise
// themselves under: the multihash that the routing discovery of go-libp2p
// makes of ns (SHA2-256).
func rendezvousKey(ns string) ([]byte, error) {
	h, err := mh.Sum([]byte(ns), mh.SHA2_256, -1)
	if err != nil {
		return nil, fmt.Errorf("rendezvous key: %w", err)
	}
	return h, nil
}

// dhtAddrs filters the addresses the DHT takes from records and hands out:
// at most maxDHTAddrs, and no private or loopback ones unless the host
// itself has only such addresses (a LAN or a test on 127.0.0.1). On the
// internet a private or loopback address in a record points the dialler at
// a host of its own network, not at the peer: a record could make every
// node that reads it dial, say, 127.0.0.1:22 or a LAN printer.
func (d *discovery) dhtAddrs(addrs []ma.Multiaddr) []ma.Multiaddr {
	local := d.onlyLocalAddrs()
	out := make([]ma.Multiaddr, 0, min(len(addrs), maxDHTAddrs))
	for _, a := range addrs {
		if len(out) == maxDHTAddrs {
			break
		}
		if local || !isLocalAddr(a) {
			out = append(out, a)
		}
	}
	return out
}

// onlyLocalAddrs reports whether the host has only private or loopback
// addresses. The DHT filters the addresses of every record it answers
// with, up to maxRendezvousProviders of them per request: the host's
// addresses are looked at again only after localAddrsRecheck.
func (d *discovery) onlyLocalAddrs() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if now := time.Now(); d.localOnlyAt.IsZero() || now.Sub(d.localOnlyAt) >= localAddrsRecheck {
		d.localOnly, d.localOnlyAt = true, now
		for _, a := range d.h.host.Addrs() {
			if !isLocalAddr(a) {
				d.localOnly = false
				break
			}
		}
	}
	return d.localOnly
}

func isLocalAddr(a ma.Multiaddr) bool { return manet.IsIPLoopback(a) || manet.IsPrivateAddr(a) }

// rendezvousStore is the datastore under the DHT's provider manager. It
// keeps the provider records of one key, the rendezvous, at most limit of
// them, the most recent; it drops a record of any other key as it is
// written, so a peer that advertises many keys costs us nothing to keep.
// The provider manager writes a record as /providers/<base32 key>/<base32
// peer ID> with the record's time (a varint of Unix nanoseconds) as the
// value, in batches whose order is not the records' order: the time says
// which record is the most recent.
type rendezvousStore struct {
	prefix string // records.ProvidersKeyPrefix + base32 of the key + "/"
	limit  int

	mu   sync.Mutex
	recs map[ds.Key][]byte
}

// recordTime is the time of a provider record's value; 0 (the oldest) if
// it does not parse.
func recordTime(value []byte) int64 {
	t, n := binary.Varint(value)
	if n <= 0 {
		return 0
	}
	return t
}

var _ ds.Batching = (*rendezvousStore)(nil)

func newRendezvousStore(key []byte, limit int) *rendezvousStore {
	return &rendezvousStore{
		prefix: records.ProvidersKeyPrefix + base32.RawStdEncoding.EncodeToString(key) + "/",
		limit:  limit,
		recs:   map[ds.Key][]byte{},
	}
}

// len is how many records the store holds.
func (s *rendezvousStore) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.recs)
}

func (s *rendezvousStore) Put(_ context.Context, k ds.Key, value []byte) error {
	if !strings.HasPrefix(k.String(), s.prefix) {
		return nil // not our rendezvous: dropped, as if it had expired
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.recs[k]; !ok && len(s.recs) >= s.limit {
		// Full: the oldest record goes, the new one if it is the oldest.
		// A linear scan of at most limit records, only when a new
		// provider comes.
		oldest, at := k, recordTime(value)
		for k, v := range s.recs {
			if t := recordTime(v); t < at {
				oldest, at = k, t
			}
		}
		if oldest == k {
			return nil
		}
		delete(s.recs, oldest)
	}
	s.recs[k] = append([]byte(nil), value...)
	return nil
}

func (s *rendezvousStore) Delete(_ context.Context, k ds.Key) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.recs, k)
	return nil
}

func (s *rendezvousStore) Get(_ context.Context, k ds.Key) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.recs[k]
	if !ok {
		return nil, ds.ErrNotFound
	}
	return append([]byte(nil), v...), nil
}

func (s *rendezvousStore) Has(_ context.Context, k ds.Key) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.recs[k]
	return ok, nil
}

func (s *rendezvousStore) GetSize(ctx context.Context, k ds.Key) (int, error) {
	v, err := s.Get(ctx, k)
	return len(v), err
}

// Query answers the provider manager. A query for the rendezvous' records
// (loadProviderSet, which a GET_PROVIDERS answer and the host's own
// lookups read) gets maxServedProviders of them, at random; the garbage
// collector's query, for every provider record, gets them all.
func (s *rendezvousStore) Query(_ context.Context, q dsq.Query) (dsq.Results, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	// The sample is drawn from the keys before any record is copied: a
	// GET_PROVIDERS costs the records it answers, not all those kept.
	keys := make([]ds.Key, 0, len(s.recs))
	for k := range s.recs {
		keys = append(keys, k)
	}
	if strings.HasPrefix(q.Prefix, strings.TrimSuffix(s.prefix, "/")) && len(keys) > maxServedProviders {
		for i := range maxServedProviders { // a partial shuffle
			j := i + rand.IntN(len(keys)-i)
			keys[i], keys[j] = keys[j], keys[i]
		}
		keys = keys[:maxServedProviders]
	}
	entries := make([]dsq.Entry, 0, len(keys))
	for _, k := range keys {
		v := s.recs[k]
		entries = append(entries, dsq.Entry{Key: k.String(), Value: append([]byte(nil), v...), Size: len(v)})
	}
	return dsq.NaiveQueryApply(q, dsq.ResultsWithEntries(q, entries)), nil
}

func (s *rendezvousStore) Batch(context.Context) (ds.Batch, error) { return ds.NewBasicBatch(s), nil }
func (s *rendezvousStore) Sync(context.Context, ds.Key) error      { return nil }
func (s *rendezvousStore) Close() error                            { return nil }

// noProviderCache is a read cache for the DHT's provider manager that
// holds nothing (records.Cache): every read goes to the rendezvousStore,
// which holds at most its cap.
type noProviderCache struct{}

func (noProviderCache) Add(_, _ any) bool              { return false }
func (noProviderCache) Get(any) (any, bool)            { return nil, false }
func (noProviderCache) Contains(any) bool              { return false }
func (noProviderCache) Peek(any) (any, bool)           { return nil, false }
func (noProviderCache) Remove(any) bool                { return false }
func (noProviderCache) RemoveOldest() (any, any, bool) { return nil, nil, false }
func (noProviderCache) GetOldest() (any, any, bool)    { return nil, nil, false }
func (noProviderCache) Keys() []any                    { return nil }
func (noProviderCache) Len() int                       { return 0 }
func (noProviderCache) Purge()                         {}
func (noProviderCache) Resize(int) int                 { return 0 }
