package p2p

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
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
	// maxBatchBytes caps one response's encoded blocks (beyond the first).
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

// handleBlocks serves a blocks request.
func (h *Host) handleBlocks(s network.Stream) {
	_ = s.SetDeadline(time.Now().Add(blocksTimeout))
	p := s.Conn().RemotePeer()
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
	blocks, err := h.ledger.BlocksAfter(req.Locator, min(int(req.Max), MaxBatch), maxBatchBytes)
	if err != nil {
		h.log.Debug("blocks: cannot serve", "peer", p, "err", err)
		_ = s.Reset()
		return
	}
	w := msgio.NewVarintWriter(s)
	var buf []byte
	for _, b := range blocks {
		if buf, err = b.AppendBinary(buf[:0]); err != nil {
			_ = s.Reset()
			return
		}
		if err := w.WriteMsg(buf); err != nil {
			_ = s.Reset()
			return
		}
		h.metrics.syncBytesOut.Add(uint64(len(buf)))
	}
	_ = s.Close()
}

// requestBlocks asks p for up to max blocks after locator.
func (h *Host) requestBlocks(ctx context.Context, p peer.ID, locator []chain.Hash, max int) ([]*chain.Block, error) {
	ctx, cancel := context.WithTimeout(ctx, blocksTimeout)
	defer cancel()
	req, err := BlocksRequest{Max: uint16(min(max, MaxBatch)), Locator: locator}.Encode()
	if err != nil {
		return nil, err
	}
	s, err := h.host.NewStream(ctx, p, BlocksProtocol)
	if err != nil {
		return nil, fmt.Errorf("blocks: open stream: %w", err)
	}
	defer s.Close()
	_ = s.SetDeadline(time.Now().Add(blocksTimeout))
	if err := msgio.NewVarintWriter(s).WriteMsg(req); err != nil {
		_ = s.Reset()
		return nil, fmt.Errorf("blocks: send request: %w", err)
	}
	_ = s.CloseWrite()
	params := h.ledger.Params()
	r := msgio.NewVarintReaderSize(s, params.MaxBlockSize())
	var out []*chain.Block
	for {
		msg, err := r.ReadMsg()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if errors.Is(err, msgio.ErrMsgTooLarge) {
			_ = s.Reset()
			h.refuse(p, "sent a block over the size limit")
			return out, fmt.Errorf("blocks: %w", err)
		}
		if err != nil {
			_ = s.Reset()
			return out, fmt.Errorf("blocks: read: %w", err)
		}
		h.metrics.syncBytesIn.Add(uint64(len(msg)))
		b, err := chain.DecodeBlock(msg, params.MaxReadings)
		r.ReleaseMsg(msg)
		if err != nil {
			_ = s.Reset()
			h.refuse(p, "sent a malformed block: "+err.Error())
			return out, fmt.Errorf("blocks: %w", err)
		}
		if len(out) == max {
			_ = s.Reset()
			h.refuse(p, "sent more blocks than asked for")
			return out, fmt.Errorf("blocks: peer sent more than the %d blocks asked for", max)
		}
		out = append(out, b)
	}
}
