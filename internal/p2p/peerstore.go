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

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/datadir"
)

// WithPeerstoreFile makes the host remember its peers across restarts in a
// JSON file (mode 0600, replaced atomically). Every minute and on Close the
// host writes the addresses of the peers of its network it is connected to,
// keeping those remembered from before. At start it dials the remembered
// peers like bootstrap peers, but only until each is reached once: a peer
// that fails MaxPeerFileFails dials in a row (over restarts too) is dropped
// from the file. A file that cannot be read or parsed is logged and ignored,
// and replaced at the next write.
func WithPeerstoreFile(path string) Option { return func(c *config) { c.peerFile = path } }

const (
	// MaxPeerFileFails is how many failed dials in a row drop a remembered
	// peer.
	MaxPeerFileFails = 5
	// maxPeerFileEntries caps the file; the most recently seen peers stay.
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
//	  {"id": "12D3KooW...", "addrs": ["/ip4/.../tcp/..."], "fails": 0, "last_seen": "2026-..."}]}
//
// A file of another genesis (another network) is ignored.
type peerFileJSON struct {
	Version int             `json:"version"`
	Genesis string          `json:"genesis"`
	Peers   []peerFileEntry `json:"peers"`
}

type peerFileEntry struct {
	ID       string    `json:"id"`
	Addrs    []string  `json:"addrs"`
	Fails    int       `json:"fails,omitempty"`
	LastSeen time.Time `json:"last_seen"`
}

// remembered is a peer of the file, parsed.
type remembered struct {
	info     peer.AddrInfo
	fails    int
	lastSeen time.Time
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
		log.Info("loaded the peerstore file", "file", path, "peers", len(peers))
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
		r := &remembered{info: peer.AddrInfo{ID: id}, fails: max(e.Fails, 0), lastSeen: e.LastSeen}
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

// infos returns the remembered peers.
func (f *peerFile) infos() []peer.AddrInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]peer.AddrInfo, 0, len(f.peers))
	for _, r := range f.peers {
		out = append(out, r.info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
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
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.peers[p]
	if !ok {
		r = &remembered{info: peer.AddrInfo{ID: p}}
		f.peers[p] = r
	}
	r.fails, r.lastSeen = 0, now
	if len(addrs) > 0 {
		r.info.Addrs = addrs
	}
}

// save drops the peers keep refuses and writes the file atomically: a temporary file in the same directory,
// synced, then renamed over the old one.
func (f *peerFile) save(keep func(peer.ID) bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	rs := make([]*remembered, 0, len(f.peers))
	for id, r := range f.peers {
		if !keep(id) {
			delete(f.peers, id)
			continue
		}
		rs = append(rs, r)
	}
	sort.Slice(rs, func(i, j int) bool {
		if !rs[i].lastSeen.Equal(rs[j].lastSeen) {
			return rs[i].lastSeen.After(rs[j].lastSeen)
		}
		return rs[i].info.ID < rs[j].info.ID
	})
	if len(rs) > maxPeerFileEntries {
		for _, r := range rs[maxPeerFileEntries:] {
			delete(f.peers, r.info.ID)
		}
		rs = rs[:maxPeerFileEntries]
	}
	pf := peerFileJSON{Version: peerFileVersion, Genesis: f.genesis.String(), Peers: []peerFileEntry{}}
	for _, r := range rs {
		e := peerFileEntry{ID: r.info.ID.String(), Fails: r.fails, LastSeen: r.lastSeen.UTC()}
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
	for _, info := range d.book.infos() {
		if _, refused := d.h.gater.isRefused(info.ID); refused || info.ID == d.h.host.ID() {
			continue
		}
		id := info.ID
		d.keep(ctx, info, keepOpts{
			what:      "remembered peer",
			once:      true,
			failed:    func() bool { return d.book.failed(id) },
			succeeded: func() { d.book.seen(id, nil, time.Now()) },
		})
	}
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

// savePeerFile records the connected peers of our network (those whose
// handshake told us their status) and writes the file.
func (d *discovery) savePeerFile() {
	now := time.Now()
	for _, p := range d.h.host.Network().Peers() {
		if _, ok := d.h.peers.status(p); !ok {
			continue // no handshake yet: maybe of another network
		}
		addrs := d.h.host.Peerstore().Addrs(p)
		if len(addrs) > maxPeerFileAddrs {
			addrs = addrs[:maxPeerFileAddrs]
		}
		d.book.seen(p, addrs, now)
	}
	// A blocked peer stays remembered: the operator may unblock it.
	notRefused := func(p peer.ID) bool { _, bad := d.h.gater.isRefused(p); return !bad }
	if err := d.book.save(notRefused); err != nil {
		d.log.Warn("cannot write the peerstore file", "file", d.book.path, "err", err)
	}
}
