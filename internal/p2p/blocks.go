package p2p

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-msgio"

	"github.com/p2pchain/p2pchain/internal/chain"
)

// BlocksProtocol serves main-chain blocks: the request carries a block
// locator and a count, the response is the blocks after the highest locator
// hash the server has on its main chain, one message per block, ended by the
// server closing the stream.
const BlocksProtocol = "/p2pchain/blocks/1.0.0"

const (
	// MaxBatch is the most blocks one request returns.
	MaxBatch = 512
	// maxBatchBytes caps one response's encoded blocks, the first block
	// excepted (it is always sent): a client holds at most maxBatchBytes
	// plus one block of the largest size.
	maxBatchBytes = 8 << 20
	// maxRequestSize is the largest blocks request: count (2), locator
	// length (1), locator hashes.
	maxRequestSize = 3 + chain.MaxLocator*chain.HashSize
	blocksTimeout  = 60 * time.Second
)

// BlocksRequest asks for up to Max main-chain blocks after the fork point
// given by Locator.
type BlocksRequest struct {
	Max     uint16
	Locator []chain.Hash
}

// Encode returns the wire form of r.
func (r BlocksRequest) Encode() ([]byte, error) {
	if len(r.Locator) == 0 || len(r.Locator) > chain.MaxLocator {
		return nil, fmt.Errorf("blocks request: locator of %d hashes, want 1-%d", len(r.Locator), chain.MaxLocator)
	}
	b := binary.BigEndian.AppendUint16(make([]byte, 0, 3+len(r.Locator)*chain.HashSize), r.Max)
	b = append(b, byte(len(r.Locator)))
	for _, h := range r.Locator {
		b = append(b, h[:]...)
	}
	return b, nil
}

// DecodeBlocksRequest parses a blocks request.
func DecodeBlocksRequest(b []byte) (BlocksRequest, error) {
	var r BlocksRequest
	if len(b) < 3 {
		return r, fmt.Errorf("blocks request: %d bytes is too short", len(b))
	}
	r.Max = binary.BigEndian.Uint16(b)
	n := int(b[2])
	if n == 0 || n > chain.MaxLocator {
		return r, fmt.Errorf("blocks request: locator of %d hashes, want 1-%d", n, chain.MaxLocator)
	}
	if len(b) != 3+n*chain.HashSize {
		return r, fmt.Errorf("blocks request: %d bytes for %d hashes", len(b), n)
	}
	r.Locator = make([]chain.Hash, n)
	for i := range r.Locator {
		copy(r.Locator[i][:], b[3+i*chain.HashSize:])
	}
	return r, nil
}

// handleBlocks serves a blocks request, within the peer's limits (peers.go),
// cheap checks first: a stream over its stream or request limit is reset
// before the request is read; a request for no blocks is answered empty
// without a look at its locator; and the response's bytes are taken from
// the peer's bucket before any block is looked up or read, so a peer whose
// bucket holds less than one block of the largest size (the honest client
// waits for that much: PROTOCOL.md section 13) is reset without costing a
// read, and two streams of one peer cannot both spend the same bytes. What
// the response does not use goes back to the bucket. The blocks read are
// held within ServeBytesHeld, all responses together, and each must be
// taken by the peer within stallTimeout: a peer that stops reading cannot
// keep them for the whole blocksTimeout.
func (h *Host) handleBlocks(s network.Stream) {
	end := time.Now().Add(blocksTimeout)
	_ = s.SetDeadline(end)
	p := s.Conn().RemotePeer()
	done, why := h.peers.openStream(p, protoBlocks, time.Now())
	if why != "" {
		h.overLimit(s, p, BlocksProtocol, why)
		return
	}
	defer done()
	r := msgio.NewVarintReaderSize(s, maxRequestSize)
	msg, err := r.ReadMsg()
	if err != nil {
		h.log.Debug("blocks: bad request", "peer", p, "err", err)
		_ = s.Reset()
		return
	}
	req, err := DecodeBlocksRequest(msg)
	r.ReleaseMsg(msg)
	if err != nil {
		h.log.Debug("blocks: bad request", "peer", p, "err", err)
		_ = s.Reset()
		return
	}
	if req.Max == 0 {
		// Nothing asked for, nothing to find: each locator hash would cost
		// a lookup under the ledger's lock, and the response is empty
		// whatever they are.
		_ = s.Close()
		return
	}
	least := min(h.ledger.Params().MaxBlockSize(), h.peers.lim.sendBurst, h.peers.lim.totalBurst)
	reserved, ok := h.reserveSend(s, p, least)
	if !ok {
		return
	}
	// Room for what the response will hold, all peers' responses together
	// (ServeBytesHeld), before anything is read: the buckets bound how fast
	// responses start, this how much a crowd of slow readers keeps.
	if !h.peers.hold(reserved) {
		h.peers.settleSend(p, reserved, 0, false)
		h.peers.countBusy()
		h.overLimit(s, p, BlocksProtocol, "bytes held by the responses under way")
		return
	}
	held := reserved
	defer func() { h.peers.unhold(held) }()
	blocks, err := h.ledger.BlocksAfter(req.Locator, min(int(req.Max), MaxBatch), reserved)
	if err != nil {
		h.peers.settleSend(p, reserved, 0, false)
		h.log.Debug("blocks: cannot serve", "peer", p, "err", err)
		_ = s.Reset()
		return
	}
	total := 0
	for _, b := range blocks {
		total += b.EncodedSize()
	}
	if total > reserved {
		// The first block goes whatever the bytes, so this is a first block
		// larger than a bucket whose burst is below MaxBlockSize (tests
		// shrink it): it was read for nothing, and the peer pays for that.
		h.peers.settleSend(p, reserved, 0, true)
		h.overLimit(s, p, BlocksProtocol, "bytes served")
		return
	}
	h.peers.settleSend(p, reserved, total, false)
	h.peers.unhold(held - total)
	held = total
	w := msgio.NewVarintWriter(s)
	var buf []byte
	for i, b := range blocks {
		if buf, err = b.AppendBinary(buf[:0]); err != nil {
			_ = s.Reset()
			return
		}
		// Each block must be taken within stallTimeout, as the client
		// must send each within it: a peer that stops reading keeps
		// what the response holds that long, not the whole blocksTimeout.
		_ = s.SetWriteDeadline(earliest(time.Now().Add(h.peers.lim.stallTimeout), end))
		if err := w.WriteMsg(buf); err != nil {
			_ = s.Reset()
			return
		}
		h.metrics.syncBytesOut.Add(uint64(len(buf)))
		// Sent: no longer held for this response.
		size := b.EncodedSize()
		blocks[i] = nil
		h.peers.unhold(size)
		held -= size
	}
	_ = s.Close()
}

// reserveSend reserves the bytes of a response to p (peerBook.reserveSend),
// waiting up to the busy wait (ServeBusyWait) while the node serves all
// peers at its limit. Otherwise, or when p is over its own budget, it
// resets s and reports false.
func (h *Host) reserveSend(s network.Stream, p peer.ID, least int) (int, bool) {
	giveUp := time.Now().Add(h.peers.lim.busyWait)
	busy := false
	var t sendTurn // its place among the requests waiting
	for {
		now := time.Now()
		n, wait, turn, ok := h.peers.reserveSend(p, now, least, maxBatchBytes, &t)
		if ok {
			return n, true
		}
		if (wait > 0 || turn) && !busy {
			busy = true
			h.peers.countBusy()
		}
		gaveUp := false
		if turn {
			// Others came first: wait for them (nothing is read or held
			// meanwhile), up to the busy wait.
			timer := time.NewTimer(time.Until(giveUp))
			select {
			case <-t.ready:
				timer.Stop()
				continue
			case <-timer.C:
				gaveUp = true
			}
		}
		if gaveUp || wait == 0 || !now.Before(giveUp) {
			h.peers.leaveSendQueue(&t)
			what := "bytes served"
			if gaveUp || wait > 0 {
				what = "bytes served to all peers"
			}
			h.overLimit(s, p, BlocksProtocol, what)
			return 0, false
		}
		// First in the queue: the bucket refills, and the responses being
		// sent give back what they took and did not use (wait counts on
		// the refill alone), so look again every busyPoll.
		time.Sleep(max(0, min(wait, time.Until(giveUp), busyPoll)))
	}
}

// overLimit resets a stream that p opened over one of its limits.
func (h *Host) overLimit(s network.Stream, p peer.ID, proto, limit string) {
	h.metrics.streamsReset.Add(1)
	h.log.Debug("stream over the peer's limit: reset", "peer", p, "protocol", proto, "limit", limit)
	_ = s.Reset()
}

// errBrokeProtocol marks an error after which the peer has been refused.
var errBrokeProtocol = errors.New("peer broke the protocol and is refused")

// errStalled marks a blocks request the peer left unanswered: nothing within
// stallTimeout, or not the whole response within blocksTimeout.
var errStalled = errors.New("peer stalled")

// requestBlocks asks p for up to max blocks after locator. It holds at most
// max blocks and maxBatchBytes plus one block of the largest size: a peer
// that sends more, or a block over the size limit or malformed, is refused
// (the error then wraps errBrokeProtocol). A peer that leaves the stream
// unopened or a block unsent for stallTimeout, or the response unfinished
// for blocksTimeout, has stalled (the error wraps errStalled). The blocks
// read before any error are returned with it. Cancelling ctx resets the
// stream.
func (h *Host) requestBlocks(ctx context.Context, p peer.ID, locator []chain.Hash, max int) ([]*chain.Block, error) {
	lim := h.peers.lim
	deadline := time.Now().Add(lim.blocksTimeout)
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	max = min(max, MaxBatch)
	req, err := BlocksRequest{Max: uint16(max), Locator: locator}.Encode()
	if err != nil {
		return nil, err
	}
	octx, ocancel := context.WithTimeout(ctx, lim.stallTimeout)
	s, err := h.host.NewStream(octx, p, BlocksProtocol)
	stalled := errors.Is(octx.Err(), context.DeadlineExceeded)
	ocancel()
	if err != nil {
		if stalled {
			return nil, fmt.Errorf("blocks: open stream: %w: %w", errStalled, err)
		}
		return nil, fmt.Errorf("blocks: open stream: %w", err)
	}
	defer s.Close()
	_ = s.SetDeadline(deadline)
	// Reads do not watch ctx: a sync that drops the request resets it.
	defer context.AfterFunc(ctx, func() { _ = s.Reset() })()
	if err := msgio.NewVarintWriter(s).WriteMsg(req); err != nil {
		_ = s.Reset()
		return nil, fmt.Errorf("blocks: send request: %w", err)
	}
	_ = s.CloseWrite()
	params := h.ledger.Params()
	maxBytes := maxBatchBytes + params.MaxBlockSize()
	total := 0
	defer func() { h.peers.fetched(p, total) }()
	broke := func(reason string) error {
		_ = s.Reset()
		h.refuse(p, reason)
		return fmt.Errorf("blocks: %s: %w", reason, errBrokeProtocol)
	}
	r := msgio.NewVarintReaderSize(s, params.MaxBlockSize())
	var out []*chain.Block
	for {
		// Each block, and the end of the response, must come within
		// stallTimeout; all of them within blocksTimeout.
		_ = s.SetReadDeadline(earliest(time.Now().Add(lim.stallTimeout), deadline))
		msg, err := r.ReadMsg()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if errors.Is(err, msgio.ErrMsgTooLarge) {
			h.metrics.oversized.Add(1)
			return out, broke("sent a block over the size limit")
		}
		if err != nil {
			_ = s.Reset()
			// Stalled only if nothing came: a slow peer that delivers
			// blocks has its progress counted, and is asked again soon.
			var ne net.Error
			if len(out) == 0 && ((errors.As(err, &ne) && ne.Timeout()) || errors.Is(ctx.Err(), context.DeadlineExceeded)) {
				return out, fmt.Errorf("blocks: nothing read: %w: %w", errStalled, err)
			}
			return out, fmt.Errorf("blocks: read: %w", err)
		}
		h.metrics.syncBytesIn.Add(uint64(len(msg)))
		total += len(msg)
		if len(out) == max {
			r.ReleaseMsg(msg)
			return out, broke(fmt.Sprintf("sent more than the %d blocks asked for", max))
		}
		if total > maxBytes {
			r.ReleaseMsg(msg)
			return out, broke(fmt.Sprintf("sent more than %d bytes of blocks", maxBytes))
		}
		b, err := chain.DecodeBlock(msg, params.MaxReadings)
		r.ReleaseMsg(msg)
		if err != nil {
			h.metrics.malformed.Add(1)
			return out, broke("sent a malformed block: " + err.Error())
		}
		out = append(out, b)
	}
}

func earliest(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
