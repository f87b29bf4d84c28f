package chain_test

import (
	"strings"
	"testing"

	"github.com/p2pchain/p2pchain/internal/chain"
)

func TestHashPrefix(t *testing.T) {
	h, err := chain.ParseHash("00003c9155aa0000000000000000000000000000000000000000000000000001")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		prefix  string
		matches bool
	}{
		{"0000", true},
		{"00003", true},
		{"00003C9155", true}, // either case
		{"00003c9155a", true},
		{"00003c9155b", false}, // an odd digit is compared too
		{"00003d", false},
		{"1000", false},
		{h.String(), true},
	} {
		p, err := chain.ParseHashPrefix(tc.prefix)
		if err != nil {
			t.Fatalf("%s: %v", tc.prefix, err)
		}
		if got := p.Matches(h); got != tc.matches {
			t.Errorf("%s matches %v, want %v", tc.prefix, got, tc.matches)
		}
		if p.String() != strings.ToLower(tc.prefix) || p.Len() != len(tc.prefix) {
			t.Errorf("%s: String %q, Len %d", tc.prefix, p, p.Len())
		}
		if low := p.Low(); !p.Matches(low) || low.String()[len(tc.prefix):] != strings.Repeat("0", 64-len(tc.prefix)) {
			t.Errorf("%s: Low %s", tc.prefix, low)
		}
	}
	for _, bad := range []string{"", "abc", "00x0", "-123", strings.Repeat("a", 65), "0000 "} {
		if _, err := chain.ParseHashPrefix(bad); err == nil {
			t.Errorf("prefix %q accepted", bad)
		}
	}
}
