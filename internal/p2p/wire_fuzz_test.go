package p2p

import (
	"bytes"
	"math/big"
	"testing"

	"github.com/p2pchain/p2pchain/internal/chain"
)

func sampleStatus() chain.Status {
	return chain.Status{Genesis: chain.Hash{1}, Tip: chain.Hash{2}, Height: 42, Work: big.NewInt(1 << 20)}
}

func TestStatusRoundTrip(t *testing.T) {
	st := sampleStatus()
	b, err := EncodeStatus(st)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != statusSize {
		t.Fatalf("status is %d bytes, want %d", len(b), statusSize)
	}
	got, err := DecodeStatus(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.Genesis != st.Genesis || got.Tip != st.Tip || got.Height != st.Height || got.Work.Cmp(st.Work) != 0 {
		t.Fatalf("round trip: got %+v, want %+v", got, st)
	}
	for _, bad := range [][]byte{nil, b[:statusSize-1], append(b, 0)} {
		if _, err := DecodeStatus(bad); err == nil {
			t.Errorf("DecodeStatus accepted %d bytes", len(bad))
		}
	}
	st.Work = new(big.Int).Lsh(big.NewInt(1), 256)
	if _, err := EncodeStatus(st); err == nil {
		t.Error("EncodeStatus accepted work over 256 bits")
	}
}

func TestBlocksRequestRoundTrip(t *testing.T) {
	req := BlocksRequest{Max: 512, Locator: []chain.Hash{{1}, {2}, {3}}}
	b, err := req.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeBlocksRequest(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.Max != req.Max || len(got.Locator) != 3 || got.Locator[2] != req.Locator[2] {
		t.Fatalf("round trip: got %+v", got)
	}
	tooLong := BlocksRequest{Max: 1, Locator: make([]chain.Hash, chain.MaxLocator+1)}
	if _, err := tooLong.Encode(); err == nil {
		t.Error("encoded a locator over the limit")
	}
	if _, err := (BlocksRequest{Max: 1}).Encode(); err == nil {
		t.Error("encoded an empty locator")
	}
	bad := [][]byte{nil, {0, 1}, {0, 1, 0}, {0, 1, 1}, {0, 1, 2, 0}, append(b, 0), {0, 1, chain.MaxLocator + 1}}
	for _, x := range bad {
		if _, err := DecodeBlocksRequest(x); err == nil {
			t.Errorf("DecodeBlocksRequest accepted %x", x)
		}
	}
}

// FuzzDecodeStatus: any bytes either fail to decode or decode to a status
// that encodes back to the same bytes.
func FuzzDecodeStatus(f *testing.F) {
	good, _ := EncodeStatus(sampleStatus())
	f.Add(good)
	f.Add([]byte{})
	f.Add(make([]byte, statusSize))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := DecodeStatus(data)
		if err != nil {
			return
		}
		again, err := EncodeStatus(st)
		if err != nil {
			t.Fatalf("decoded status does not encode: %v", err)
		}
		if !bytes.Equal(again, data) {
			t.Fatalf("not canonical: %x became %x", data, again)
		}
	})
}

// FuzzDecodeBlocksRequest: any bytes either fail to decode or decode to a
// request that encodes back to the same bytes.
func FuzzDecodeBlocksRequest(f *testing.F) {
	good, _ := BlocksRequest{Max: 512, Locator: []chain.Hash{{1}, {2}}}.Encode()
	f.Add(good)
	f.Add([]byte{0, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := DecodeBlocksRequest(data)
		if err != nil {
			return
		}
		again, err := req.Encode()
		if err != nil {
			t.Fatalf("decoded request does not encode: %v", err)
		}
		if !bytes.Equal(again, data) {
			t.Fatalf("not canonical: %x became %x", data, again)
		}
	})
}
