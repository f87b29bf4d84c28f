package p2p

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/libp2p/go-msgio"

	"github.com/p2pchain/p2pchain/internal/chain"
)

// Fuzz targets for the framing of the stream protocols (docs/PROTOCOL.md
// section 7) and for a blocks response as the client reads it (section
// 10.2): what a peer sends on a stream is decoded by the same reader, with
// the same caps, as requestBlocks and readStatus use.

// readFrames reads framed messages from data with a cap of max bytes a
// message, as the protocols do, until the reader stops. It returns the
// messages and the reader's last error (io.EOF: a clean end).
func readFrames(data []byte, max, limit int) ([][]byte, error) {
	r := msgio.NewVarintReaderSize(bytes.NewReader(data), max)
	var out [][]byte
	for len(out) < limit {
		msg, err := r.ReadMsg()
		if err != nil {
			return out, err
		}
		out = append(out, bytes.Clone(msg))
		r.ReleaseMsg(msg)
	}
	return out, nil
}

// frame writes msgs framed, as the protocols' writers do.
func frame(t *testing.T, msgs [][]byte) []byte {
	var buf bytes.Buffer
	w := msgio.NewVarintWriter(&buf)
	for _, m := range msgs {
		if err := w.WriteMsg(m); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// FuzzFrame: the framing is canonical. Whatever the reader takes from a
// stream re-frames to the very bytes it read (so a length prefix has one
// encoding: minimal, section 7), no message is over the cap, and a clean
// end leaves nothing unread but, at most, a complete prefix of a message
// whose payload never came (the go-msgio quirk section 7 documents).
func FuzzFrame(f *testing.F) {
	status, _ := EncodeStatus(sampleStatus())
	req, _ := BlocksRequest{Max: 512, Locator: []chain.Hash{{1}}}.Encode()
	for _, msgs := range [][][]byte{{status}, {req}, {status, req}, {{}}, {make([]byte, 127)}, {make([]byte, 128)}} {
		var buf bytes.Buffer
		w := msgio.NewVarintWriter(&buf)
		for _, m := range msgs {
			_ = w.WriteMsg(m)
		}
		f.Add(buf.Bytes())
	}
	f.Add([]byte{0x80, 0x00})               // not minimal: refused
	f.Add([]byte{0x81, 0x00})               // not minimal: refused
	f.Add(binary.AppendUvarint(nil, 1<<40)) // over any cap
	f.Add(bytes.Repeat([]byte{0xff}, 10))   // over nine bytes
	f.Add(binary.AppendUvarint(nil, 3))     // a prefix, then nothing
	const max = 200
	f.Fuzz(func(t *testing.T, data []byte) {
		msgs, err := readFrames(data, max, 1<<20)
		for _, m := range msgs {
			if len(m) > max {
				t.Fatalf("a %d-byte message read under a cap of %d", len(m), max)
			}
		}
		again := frame(t, msgs)
		if !bytes.HasPrefix(data, again) {
			t.Fatalf("not canonical: read %d messages from %x, which frame as %x", len(msgs), data, again)
		}
		if errors.Is(err, io.EOF) {
			rest := data[len(again):]
			if len(rest) > 0 {
				n, k := binary.Uvarint(rest)
				if k != len(rest) || n == 0 {
					t.Fatalf("a clean end with %x unread", rest)
				}
			}
		}
	})
}

// vectorBlocks returns a few real blocks of p, to seed the fuzzers with.
func vectorBlocks(tb testing.TB, p chain.Params) []*chain.Block {
	c, err := chain.New(p)
	if err != nil {
		tb.Fatal(err)
	}
	seed := sha256.Sum256([]byte("p2p fuzz key"))
	key := ed25519.NewKeyFromSeed(seed[:])
	now := time.UnixMilli(p.GenesisTime).Add(time.Hour)
	var out []*chain.Block
	for i := range 3 {
		var rs []chain.Reading
		for j := range i + 1 {
			r, err := chain.NewReading(key, "fuzz-"+string(rune('a'+j)), 60+i, now)
			if err != nil {
				tb.Fatal(err)
			}
			rs = append(rs, r)
		}
		b := c.NewBlock(rs, now)
		if _, err := c.AddBlock(b, now); err != nil {
			tb.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// FuzzBlocksResponse reads a blocks response as requestBlocks does: framed
// blocks under the block size cap, at most the count asked for and the
// byte cap, each decoded strictly. A response either fails, or every block
// in it re-encodes to the very frame it came in, within the caps.
func FuzzBlocksResponse(f *testing.F) {
	p := chain.TestParams("fuzz")
	p.MaxReadings = 4
	blocks := vectorBlocks(f, p)
	var msgs [][]byte
	for _, b := range blocks {
		enc, err := b.MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		msgs = append(msgs, enc)
	}
	var buf bytes.Buffer
	w := msgio.NewVarintWriter(&buf)
	for _, m := range msgs {
		_ = w.WriteMsg(m)
		f.Add(bytes.Clone(buf.Bytes()))
	}
	f.Add(append(bytes.Clone(buf.Bytes()), buf.Bytes()...)) // more than asked for
	f.Add(binary.AppendUvarint(nil, uint64(p.MaxBlockSize()+1)))
	f.Add([]byte{})
	const asked = 4
	f.Fuzz(func(t *testing.T, data []byte) {
		frames, err := readFrames(data, p.MaxBlockSize(), asked+1)
		if err != nil && !errors.Is(err, io.EOF) {
			return // the client resets the stream, or refuses the peer
		}
		if len(frames) > asked {
			return // more than asked for: the client refuses the peer
		}
		total := 0
		for _, m := range frames {
			total += len(m)
			if total > maxBatchBytes+p.MaxBlockSize() {
				t.Fatalf("%d bytes of blocks read", total)
			}
			b, err := chain.DecodeBlock(m, p.MaxReadings)
			if err != nil {
				var re *chain.RuleError
				if !errors.As(err, &re) {
					t.Fatalf("refused with %v, not a rule error", err)
				}
				return // malformed: the client refuses the peer
			}
			again, err := b.MarshalBinary()
			if err != nil || !bytes.Equal(again, m) {
				t.Fatalf("block re-encodes differently (%v)", err)
			}
			if len(b.Readings) > p.MaxReadings {
				t.Fatalf("%d readings decoded, limit %d", len(b.Readings), p.MaxReadings)
			}
		}
	})
}
