package p2p

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-msgio"

	"github.com/p2pchain/p2pchain/internal/chain"
)

// StatusProtocol is the handshake: each side sends its chain status and reads
// the other's. Peers on another genesis are refused after it.
const StatusProtocol = "/p2pchain/status/1.0.0"

// statusSize is the encoded size of a status: genesis (32), tip (32),
// height (8), total work as a 32-byte big-endian number.
const statusSize = 32 + 32 + 8 + 32

const statusTimeout = 10 * time.Second

// EncodeStatus returns the wire form of s.
func EncodeStatus(s chain.Status) ([]byte, error) {
	b := make([]byte, 0, statusSize)
	b = append(b, s.Genesis[:]...)
	b = append(b, s.Tip[:]...)
	b = binary.BigEndian.AppendUint64(b, s.Height)
	if s.Work == nil || s.Work.Sign() < 0 || s.Work.BitLen() > 256 {
		return nil, fmt.Errorf("status: work %v does not fit in 256 bits", s.Work)
	}
	var w [32]byte
	s.Work.FillBytes(w[:])
	return append(b, w[:]...), nil
}

// DecodeStatus parses a status message.
func DecodeStatus(b []byte) (chain.Status, error) {
	var s chain.Status
	if len(b) != statusSize {
		return s, fmt.Errorf("status: %d bytes, want %d", len(b), statusSize)
	}
	copy(s.Genesis[:], b[0:32])
	copy(s.Tip[:], b[32:64])
	s.Height = binary.BigEndian.Uint64(b[64:72])
	s.Work = new(big.Int).SetBytes(b[72:104])
	return s, nil
}

// handleStatus answers a peer's handshake with our status. A stream over
// the peer's stream or request limit (peers.go) is reset unread.
func (h *Host) handleStatus(s network.Stream) {
	_ = s.SetDeadline(time.Now().Add(statusTimeout))
	p := s.Conn().RemotePeer()
	done, why := h.peers.openStream(p, protoStatus, time.Now())
	if why != "" {
		h.overLimit(s, p, StatusProtocol, why)
		return
	}
	defer done()
	theirs, err := readStatus(s)
	if err != nil {
		h.log.Debug("status: bad request", "peer", p, "err", err)
		_ = s.Reset()
		return
	}
	ours := h.ledger.Status()
	if err := writeStatus(s, ours); err != nil {
		_ = s.Reset()
		return
	}
	_ = s.Close()
	if theirs.Genesis != ours.Genesis {
		// Refuse new connections at once, but let the peer read our answer
		// (and refuse us in turn) before the connection goes.
		why := otherNetwork(theirs, ours, h.ledger.Params(), h.nearby())
		h.gater.refuse(p, why)
		time.AfterFunc(500*time.Millisecond, func() { h.refuse(p, why) })
		return
	}
	h.checkPeerStatus(p, theirs, ours)
}

// otherNetwork is why a peer of another genesis is refused. The status
// message carries only the genesis: where it is the genesis of this
// network's name (or the default's) at another difficulty, the commonest
// mistake, it names them (near, from nearbyNetworks); else it lists the
// settings that make the genesis. Then the remedy.
func otherNetwork(theirs, ours chain.Status, params chain.Params, near map[chain.Hash]networkName) string {
	if n, ok := near[theirs.Genesis]; ok {
		return fmt.Sprintf("the peer runs another network: network '%s' at difficulty %d (genesis %s), "+
			"this node '%s' at difficulty %d (genesis %s); to join it, start a node with -network '%s' -difficulty %d",
			n.name, n.difficulty, theirs.Genesis.Short(), params.Name, params.Difficulty, ours.Genesis.Short(), n.name, n.difficulty)
	}
	return fmt.Sprintf("the peer runs another network: its genesis is %s, ours %s "+
		"(a different --network, --difficulty or --network-file gives another genesis); "+
		"to join it, start this node with the same network settings as the peer",
		theirs.Genesis.Short(), ours.Genesis.Short())
}

// networkName is a proof-of-work network's name and difficulty.
type networkName struct {
	name       string
	difficulty uint32
}

// nearbyNetworks maps the genesis of every proof-of-work network that
// differs from params only in its name (params' or the default's) and
// difficulty to them: at most 2 × 65 genesis hashes (about 0.1 ms), made
// once per host (Host.nearby), not per refused peer. An authority
// network's is empty.
func nearbyNetworks(params chain.Params) map[chain.Hash]networkName {
	near := map[chain.Hash]networkName{}
	if params.Consensus != chain.ProofOfWork {
		return near
	}
	for _, name := range []string{params.Name, chain.DefaultParams().Name} {
		p := params
		p.Name = name
		for d := uint32(0); d <= chain.MaxDifficulty; d++ {
			p.Difficulty = d
			g := p.Genesis().Hash()
			if _, ok := near[g]; !ok { // the first name found for a genesis
				near[g] = networkName{name, d}
			}
		}
	}
	return near
}

// exchangeStatus runs the handshake with p and returns p's status.
func (h *Host) exchangeStatus(ctx context.Context, p peer.ID) (chain.Status, error) {
	ctx, cancel := context.WithTimeout(ctx, statusTimeout)
	defer cancel()
	s, err := h.host.NewStream(ctx, p, StatusProtocol)
	if err != nil {
		return chain.Status{}, fmt.Errorf("status: open stream: %w", err)
	}
	defer s.Close()
	_ = s.SetDeadline(time.Now().Add(statusTimeout))
	ours := h.ledger.Status()
	if err := writeStatus(s, ours); err != nil {
		_ = s.Reset()
		return chain.Status{}, err
	}
	_ = s.CloseWrite()
	theirs, err := readStatus(s)
	if err != nil {
		_ = s.Reset()
		return chain.Status{}, err
	}
	if !h.checkPeerStatus(p, theirs, ours) {
		return theirs, errOtherNetwork
	}
	return theirs, nil
}

// errOtherNetwork is returned by the handshake with a peer on another genesis.
var errOtherNetwork = errors.New("peer is on another network (different genesis)")

// checkPeerStatus records a peer's status for the sync manager, which it
// wakes, or cuts the peer off and returns false if it is on another network.
func (h *Host) checkPeerStatus(p peer.ID, theirs, ours chain.Status) bool {
	if theirs.Genesis != ours.Genesis {
		h.refuse(p, otherNetwork(theirs, ours, h.ledger.Params(), h.nearby()))
		return false
	}
	h.peers.setStatus(p, theirs, time.Now())
	h.sync.wake()
	return true
}

func writeStatus(s network.Stream, st chain.Status) error {
	b, err := EncodeStatus(st)
	if err != nil {
		return err
	}
	return msgio.NewVarintWriter(s).WriteMsg(b)
}

func readStatus(s network.Stream) (chain.Status, error) {
	r := msgio.NewVarintReaderSize(s, statusSize)
	b, err := r.ReadMsg()
	if err != nil {
		return chain.Status{}, fmt.Errorf("status: read: %w", err)
	}
	defer r.ReleaseMsg(b)
	return DecodeStatus(b)
}
