package p2p

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/datadir"
)

// WithPeerstoreFile makes the host remember its peers across restarts in a
// JSON file (mode 0600, replaced atomically). Every minute and on Close the
// host writes the addresses of the peers of its network it is connected to
// that proved worth remembering: those it dialled itself, and those whose
// connection has lasted stableConn (a minute) or more. A peer that only
// connected to us briefly is not remembered, so a crowd of fresh identities
// cannot fill the file. When the file is full, the peers with the longest
// connection seen stay. At start the host dials the remembered peers, best
// first and at most maxFoundDials at a time, until each is reached once: a
// peer that fails MaxPeerFileFails dials in a row (over restarts too) is
// dropped from the file. A file that cannot be read or parsed is logged and
// ignored, and replaced at the next write.
func WithPeerstoreFile(path string) Option { return func(c *config) { c.peerFile = path } }

const (
	// MaxPeerFileFails is how many failed dials in a row drop a remembered
	// peer.
	MaxPeerFileFails = 5
	// maxPeerFileEntries caps the file; the peers with the longest
	// connection stay.
	maxPeerFileEntries = 128
	// maxPeerFileAddrs caps the addresses kept per peer.
	maxPeerFileAddrs = 8
	// peerFileInterval is how often the file is written while the host runs.
	peerFileInterval = time.Minute
	// peerFileVersion is the version of the file format.
	peerFileVersion = 1
)

// peerFileJSON is the file's format:
//
//	{"version": 1, "genesis": "<hex>", "peers": [
//	  {"id": "12D3KooW...", "addrs": ["/ip4/.../tcp/..."], "fails": 0, "last_seen": "2026-...",
//	   "longest_conn_ms": 3600000}]}
//
// A file of another genesis (another network) is ignored. longest_conn_ms
// (absent: 0) is the longest connection to the peer seen, in milliseconds.
type peerFileJSON struct {
	Version int             `json:"version"`
	Genesis string          `json:"genesis"`
	Peers   []peerFileEntry `json:"peers"`
}

type peerFileEntry struct {
	ID        string    `json:"id"`
	Addrs     []string  `json:"addrs"`
	Fails     int       `json:"fails,omitempty"`
	LastSeen  time.Time `json:"last_seen"`
	LongestMS int64     `json:"longest_conn_ms,omitempty"`
}

// remembered is a peer of the file, parsed.
type remembered struct {
	info     peer.AddrInfo
	fails    int
	lastSeen time.Time
	// longest is the longest connection to the peer seen: a Sybil must
	// stay connected as long as an honest peer did to outrank it.
	longest time.Duration
}

// better orders remembered peers best first: the longest connection, then
// the most recently seen.
func better(a, b *remembered) bool {
	if a.longest != b.longest {
		return a.longest > b.longest
	}
	if !a.lastSeen.Equal(b.lastSeen) {
		return a.lastSeen.After(b.lastSeen)
	}
	return a.info.ID < b.info.ID
}

// peerFile is the in-memory state of the peerstore file.
type peerFile struct {
	path    string
	genesis chain.Hash

	mu    sync.Mutex // guards peers and serialises writes
	peers map[peer.ID]*remembered
}

// openPeerFile loads the file at path. A missing file is an empty one; a bad
// one is logged and treated as empty.
func openPeerFile(path string, genesis chain.Hash, log *slog.Logger) *peerFile {
	f := &peerFile{path: path, genesis: genesis, peers: map[peer.ID]*remembered{}}
	peers, err := readPeerFile(path, genesis)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		log.Warn("ignoring the peerstore file", "file", path, "err", err)
	default:
		for _, r := range peers {
			f.peers[r.info.ID] = r
		}
		log.Debug("loaded the peerstore file", "file", path, "peers", len(peers))
	}
	return f
}

func readPeerFile(path string, genesis chain.Hash) ([]*remembered, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var pf peerFileJSON
	if err := json.Unmarshal(data, &pf); err != nil {
		return nil, fmt.Errorf("corrupt: %w", err)
	}
	if pf.Version != peerFileVersion {
		return nil, fmt.Errorf("version %d, want %d", pf.Version, peerFileVersion)
	}
	if pf.Genesis != genesis.String() {
		return nil, fmt.Errorf("file of another network (genesis %.10s..., ours %s)", pf.Genesis, genesis.Short())
	}
	var out []*remembered
	for _, e := range pf.Peers {
		id, err := peer.Decode(e.ID)
		if err != nil || e.Fails >= MaxPeerFileFails {
			continue // a bad entry costs only itself
		}
		r := &remembered{info: peer.AddrInfo{ID: id}, fails: max(e.Fails, 0), lastSeen: e.LastSeen,
			longest: time.Duration(max(e.LongestMS, 0)) * time.Millisecond}
		for _, s := range e.Addrs {
			if a, err := ma.NewMultiaddr(s); err == nil {
				r.info.Addrs = append(r.info.Addrs, a)
			}
		}
		if len(r.info.Addrs) > 0 {
			out = append(out, r)
		}
	}
	return out, nil
}

// infos returns the remembered peers, best first.
func (f *peerFile) infos() []peer.AddrInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	rs := f.sortedLocked()
	out := make([]peer.AddrInfo, 0, len(rs))
	for _, r := range rs {
		out = append(out, r.info)
	}
	return out
}

func (f *peerFile) sortedLocked() []*remembered {
	rs := make([]*remembered, 0, len(f.peers))
	for _, r := range f.peers {
		rs = append(rs, r)
	}
	sort.Slice(rs, func(i, j int) bool { return better(rs[i], rs[j]) })
	return rs
}

// failed counts a failed dial of p and reports whether p is still
// remembered.
func (f *peerFile) failed(p peer.ID) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.peers[p]
	if !ok {
		return false
	}
	r.fails++
	if r.fails >= MaxPeerFileFails {
		delete(f.peers, p)
		return false
	}
	return true
}

// seen records that p is connected with these addresses.
func (f *peerFile) seen(p peer.ID, addrs []ma.Multiaddr, now time.Time) {
	f.seenFor(p, addrs, now, 0)
}

// seenFor is seen, by a connection that has lasted up so far.
func (f *peerFile) seenFor(p peer.ID, addrs []ma.Multiaddr, now time.Time, up time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.peers[p]
	if !ok {
		r = &remembered{info: peer.AddrInfo{ID: p}}
		f.peers[p] = r
	}
	r.fails, r.lastSeen, r.longest = 0, now, max(r.longest, up)
	if len(addrs) > 0 {
		r.info.Addrs = addrs
	}
}

// save drops the peers keep refuses and writes the file atomically: a temporary file in the same directory,
// synced, then renamed over the old one.
func (f *peerFile) save(keep func(peer.ID) bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for id := range f.peers {
		if !keep(id) {
			delete(f.peers, id)
		}
	}
	rs := f.sortedLocked()
	if len(rs) > maxPeerFileEntries {
		for _, r := range rs[maxPeerFileEntries:] {
			delete(f.peers, r.info.ID)
		}
		rs = rs[:maxPeerFileEntries]
	}
	pf := peerFileJSON{Version: peerFileVersion, Genesis: f.genesis.String(), Peers: []peerFileEntry{}}
	for _, r := range rs {
		e := peerFileEntry{ID: r.info.ID.String(), Fails: r.fails, LastSeen: r.lastSeen.UTC(), LongestMS: r.longest.Milliseconds()}
		for _, a := range r.info.Addrs {
			e.Addrs = append(e.Addrs, a.String())
		}
		pf.Peers = append(pf.Peers, e)
	}
	data, err := json.MarshalIndent(pf, "", "  ")
	if err != nil {
		return err
	}
	return datadir.WriteFileAtomic(f.path, append(data, '\n'), 0o600)
}

// startPeerFile dials the remembered peers and starts writing the file every
// peerFileInterval.
func (d *discovery) startPeerFile(ctx context.Context) {
	d.h.wg.Add(1)
	go d.dialRemembered(ctx, d.book.infos())
	d.h.wg.Add(1)
	go func() {
		defer d.h.wg.Done()
		t := time.NewTicker(peerFileInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				d.savePeerFile()
			}
		}
	}()
}

// dialRemembered dials the remembered peers, best first, at most
// maxFoundDials at a time, in rounds with backoff between them, until each
// is reached once or dropped from the file for its failures. The file holds
// what earlier runs saw, which a peer may have shaped: dialling it all at
// once would spend a dial and a goroutine on every entry at the same time.
// Refused peers are not dialled, nor those a bootstrap keeper dials
// already; a blocked one is dialled once it is unblocked.
func (d *discovery) dialRemembered(ctx context.Context, infos []peer.AddrInfo) {
	defer d.h.wg.Done()
	var delay time.Duration
	for len(infos) > 0 {
		if delay > 0 {
			t := time.NewTimer(jitter(delay))
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			case <-d.unblocked: // a blocked one was unblocked: at once
				t.Stop()
			}
		}
		d.mu.Lock()
		clear(d.blockedRemembered)
		d.mu.Unlock()
		var (
			mu    sync.Mutex
			again []peer.AddrInfo
			wg    sync.WaitGroup
		)
		sem := make(chan struct{}, maxFoundDials)
		for _, info := range infos {
			d.mu.Lock()
			_, kept := d.kept[info.ID]
			d.mu.Unlock()
			if _, refused := d.h.gater.isRefused(info.ID); refused || info.ID == d.h.host.ID() || kept || d.connected(info.ID) {
				continue
			}
			if d.h.gater.isBlocked(info.ID) { // not dialled, no failure counted; Unblock wakes us
				d.mu.Lock()
				d.blockedRemembered[info.ID] = true
				d.mu.Unlock()
				mu.Lock()
				again = append(again, info)
				mu.Unlock()
				continue
			}
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				wg.Wait()
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				if err := d.dial(ctx, info); err != nil {
					if ctx.Err() != nil {
						return
					}
					d.log.Debug("cannot reach remembered peer", "peer", info.ID, "err", err)
					if d.book.failed(info.ID) {
						mu.Lock()
						again = append(again, info)
						mu.Unlock()
					} else {
						d.log.Info("giving up on remembered peer", "peer", info.ID)
					}
					d.dialErrors.Add(1)
					return
				}
				d.log.Info("connected to remembered peer", "peer", info.ID)
				d.book.seen(info.ID, nil, time.Now())
			}()
		}
		wg.Wait()
		infos, delay = again, nextDelay(delay)
	}
}

// savePeerFile records the connected peers of our network (those whose
// handshake told us their status) that proved worth remembering, and writes
// the file.
func (d *discovery) savePeerFile() {
	now := time.Now()
	for _, p := range d.h.host.Network().Peers() {
		if _, ok := d.h.peers.status(p); !ok {
			continue // no handshake yet: maybe of another network
		}
		// A peer we dialled is one we chose (bootstrap, remembered,
		// found); one that dialled us is remembered only once its
		// connection has lasted: identities that connect for a moment
		// cost their owner little, and must not fill the file.
		var up time.Duration
		dialled := false
		for _, c := range d.h.host.Network().ConnsToPeer(p) {
			st := c.Stat()
			dialled = dialled || st.Direction == network.DirOutbound
			up = max(up, now.Sub(st.Opened))
		}
		if !dialled && up < stableConn {
			continue
		}
		addrs := d.h.host.Peerstore().Addrs(p)
		if len(addrs) > maxPeerFileAddrs {
			addrs = addrs[:maxPeerFileAddrs]
		}
		d.book.seenFor(p, addrs, now, up)
	}
	// A blocked peer stays remembered: the operator may unblock it.
	notRefused := func(p peer.ID) bool { _, bad := d.h.gater.isRefused(p); return !bad }
	if err := d.book.save(notRefused); err != nil {
		d.log.Warn("cannot write the peerstore file", "file", d.book.path, "err", err)
	}
}
