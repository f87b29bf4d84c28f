package chain

import "fmt"

// MinPrefixDigits is the fewest hex digits ParseHashPrefix takes: shorter
// prefixes match too many hashes to name one.
const MinPrefixDigits = 4

// HashPrefix is the start of a hash's hex form, as people copy it from a
// short hash (Hash.Short): MinPrefixDigits to 64 hex digits, an odd number
// included. The zero HashPrefix matches every hash.
type HashPrefix struct {
	low    Hash // the prefix's digits followed by zeros
	digits int
}

// ParseHashPrefix parses MinPrefixDigits to 64 hex digits, in either case.
func ParseHashPrefix(s string) (HashPrefix, error) {
	var p HashPrefix
	if len(s) < MinPrefixDigits || len(s) > 2*HashSize {
		return p, fmt.Errorf("hash prefix %q: want %d to %d hex digits, got %d", s, MinPrefixDigits, 2*HashSize, len(s))
	}
	for i := 0; i < len(s); i++ {
		v, ok := hexDigit(s[i])
		if !ok {
			return p, fmt.Errorf("hash prefix %q: %q is not a hex digit", s, s[i])
		}
		if i%2 == 0 {
			p.low[i/2] = v << 4
		} else {
			p.low[i/2] |= v
		}
	}
	p.digits = len(s)
	return p, nil
}

func hexDigit(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// String returns the prefix's digits in lower case.
func (p HashPrefix) String() string { return p.low.String()[:p.digits] }

// Len returns the number of hex digits.
func (p HashPrefix) Len() int { return p.digits }

// Low returns the lowest hash that starts with p: in an ordered index of
// hashes, the hashes that start with p are those from Low on while Matches
// holds.
func (p HashPrefix) Low() Hash { return p.low }

// Matches reports whether h starts with p.
func (p HashPrefix) Matches(h Hash) bool {
	full := p.digits / 2
	if string(h[:full]) != string(p.low[:full]) {
		return false
	}
	return p.digits%2 == 0 || h[full]>>4 == p.low[full]>>4
}

// BlocksWithPrefix returns up to limit hashes of known blocks, on the main
// chain or not, that start with p, in no particular order. It examines every
// block the chain holds an entry for, O(blocks), which is every known block
// only while the chain has no Archive (Compact drops the entries of final
// blocks): an owner with an ordered index of block hashes (package store
// keeps one) should search that instead.
func (c *Chain) BlocksWithPrefix(p HashPrefix, limit int) []Hash {
	return withPrefix(c.index, p, limit)
}

// ReadingsWithPrefix returns up to limit ids of main-chain readings that
// start with p, in no particular order. It examines the reading index,
// O(readings), which holds every main-chain reading only while the chain
// has no Archive (Compact drops those of final blocks); see BlocksWithPrefix.
func (c *Chain) ReadingsWithPrefix(p HashPrefix, limit int) []Hash {
	return withPrefix(c.readings, p, limit)
}

// WithPrefix returns up to limit ids of pending readings that start with
// prefix, in no particular order: O(pending readings).
func (p *Pool) WithPrefix(prefix HashPrefix, limit int) []Hash {
	return withPrefix(p.items, prefix, limit)
}

// withPrefix returns up to limit keys of m that start with p.
func withPrefix[V any](m map[Hash]V, p HashPrefix, limit int) []Hash {
	var out []Hash
	for h := range m {
		if len(out) == limit {
			break
		}
		if p.Matches(h) {
			out = append(out, h)
		}
	}
	return out
}
