package bft

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"

	"github.com/p2pchain/p2pchain/internal/chain"
)

// MaxAuthorities is the most keys an authority set may hold. Every decoder
// refuses a validator index at or above it before it allocates anything.
const MaxAuthorities = 256

// Key is an authority's Ed25519 public key (RFC 8032 encoding). A libp2p
// Ed25519 peer ID wraps exactly these 32 bytes.
type Key [ed25519.PublicKeySize]byte

// KeyOf returns the public key of a private key.
func KeyOf(priv ed25519.PrivateKey) Key {
	var k Key
	copy(k[:], priv.Public().(ed25519.PublicKey))
	return k
}

// String returns the key as 64 lower-case hex digits.
func (k Key) String() string { return hex.EncodeToString(k[:]) }

// Set is an ordered list of authority keys: the signers of one stretch of
// heights. Order matters: a validator index is a position in the list and
// the proposer rotates through it. A Set is immutable.
type Set struct {
	keys  []Key
	index map[Key]int
}

// NewSet returns the set of keys, in that order. It refuses an empty list,
// more than MaxAuthorities keys, a key twice (ErrBadSet) and a key that is
// not canonical or of small order (ErrBadKey, the rule of chain.CheckAuthorKey:
// under such a key a signature can verify with no private key behind it).
func NewSet(keys []Key) (*Set, error) {
	if len(keys) == 0 || len(keys) > MaxAuthorities {
		return nil, ruleErr(ErrBadSet, "%d keys, want 1 to %d", len(keys), MaxAuthorities)
	}
	s := &Set{keys: append([]Key(nil), keys...), index: make(map[Key]int, len(keys))}
	for i, k := range keys {
		if err := chain.CheckAuthorKey(k); err != nil {
			return nil, ruleErr(ErrBadKey, "authority %d: %v", i, err)
		}
		if j, dup := s.index[k]; dup {
			return nil, ruleErr(ErrBadSet, "key %s is authority %d and %d", k.String()[:10], j, i)
		}
		s.index[k] = i
	}
	return s, nil
}

// Len returns the number of authorities, n.
func (s *Set) Len() int { return len(s.keys) }

// Keys returns a copy of the keys in order.
func (s *Set) Keys() []Key { return append([]Key(nil), s.keys...) }

// Key returns the key of authority i (0 <= i < Len).
func (s *Set) Key(i int) Key { return s.keys[i] }

// Index returns the position of k in the set.
func (s *Set) Index(k Key) (int, bool) { i, ok := s.index[k]; return i, ok }

// Quorum returns floor(2n/3)+1: the fewest authorities that are more than
// two thirds of the set. Any two quorums share at least MaxFaulty()+1
// authorities, so at least one that is not faulty.
func (s *Set) Quorum() int { return 2*len(s.keys)/3 + 1 }

// MaxFaulty returns f = floor((n-1)/3): the most faulty authorities the set
// tolerates. f+1 authorities include at least one that is not faulty.
func (s *Set) MaxFaulty() int { return (len(s.keys) - 1) / 3 }

// Proposer returns the index of the proposer of (height, round):
// (height + round) mod n. Consecutive heights start with consecutive
// authorities, and each new round of a height passes the turn to the next.
func (s *Set) Proposer(height uint64, round int32) int {
	n := uint64(len(s.keys))
	return int((height%n + uint64(round)%n) % n)
}

// setTag is the domain tag of Set.Hash.
const setTag = "p2pchain/bft/set/v1"

// Hash returns SHA-256(setTag || uint16 BE n || key 0 || ... || key n-1):
// what a network's genesis commits to.
func (s *Set) Hash() chain.Hash {
	d := sha256.New()
	d.Write([]byte(setTag))
	d.Write(binary.BigEndian.AppendUint16(nil, uint16(len(s.keys))))
	for _, k := range s.keys {
		d.Write(k[:])
	}
	var h chain.Hash
	d.Sum(h[:0])
	return h
}

// Op is a membership operation.
type Op uint8

// The operations.
const (
	OpAdd    Op = 1 // append the key to the set
	OpRemove Op = 2 // remove the key; the others keep their order
)

// ChangeSize is the size of an encoded Change.
const ChangeSize = 1 + 8 + ed25519.PublicKeySize

// Change adds or removes one authority from height Height on. A change is
// carried in a block (see the package doc): the commit of that block is
// the vote of the set in force at its height.
type Change struct {
	Op     Op
	Height uint64 // the first height whose set reflects the change
	Key    Key
}

// AppendBinary appends the 41-byte encoding: op, height, key.
func (c Change) AppendBinary(b []byte) []byte {
	b = append(b, byte(c.Op))
	b = binary.BigEndian.AppendUint64(b, c.Height)
	return append(b, c.Key[:]...)
}

// MarshalBinary returns the encoding of c.
func (c Change) MarshalBinary() ([]byte, error) { return c.AppendBinary(nil), nil }

// UnmarshalBinary decodes exactly ChangeSize bytes with a known op.
func (c *Change) UnmarshalBinary(b []byte) error {
	if len(b) != ChangeSize {
		return ruleErr(ErrMalformed, "change of %d bytes, want %d", len(b), ChangeSize)
	}
	if op := Op(b[0]); op != OpAdd && op != OpRemove {
		return ruleErr(ErrMalformed, "unknown change op %d", b[0])
	}
	c.Op = Op(b[0])
	c.Height = binary.BigEndian.Uint64(b[1:9])
	copy(c.Key[:], b[9:])
	return nil
}

// Schedule is the history of a network's authority sets: the genesis set
// from height 1, then one set from each height at which changes take
// effect. An owner builds it from the network file and applies the changes
// of each committed block in chain order; a node syncing from genesis does
// the same and so checks every commit against the set of its height.
type Schedule struct {
	epochs []epoch // ascending from
}

type epoch struct {
	from uint64
	set  *Set
}

// NewSchedule returns a schedule holding genesis from height 1 on.
func NewSchedule(genesis *Set) *Schedule {
	return &Schedule{epochs: []epoch{{from: 1, set: genesis}}}
}

// SetAt returns the authority set of height (the genesis set for 0 and 1).
func (s *Schedule) SetAt(height uint64) *Set {
	for i := len(s.epochs) - 1; i > 0; i-- {
		if s.epochs[i].from <= height {
			return s.epochs[i].set
		}
	}
	return s.epochs[0].set
}

// Latest returns the set after every scheduled change, and the height it
// takes effect at.
func (s *Schedule) Latest() (*Set, uint64) {
	e := s.epochs[len(s.epochs)-1]
	return e.set, e.from
}

// Check reports whether Apply(at, changes...) would succeed, changing nothing.
func (s *Schedule) Check(at uint64, changes ...Change) error {
	c := &Schedule{epochs: append([]epoch(nil), s.epochs...)}
	return c.apply(at, changes)
}

// Apply records the changes carried by the committed block at height at,
// in order, all or none. Each change must:
//
//  1. take effect later than at (Height > at): the set of a height is
//     known once its parent block is committed;
//  2. take effect no earlier than every change scheduled before it, so
//     that pending changes apply in the order they were recorded;
//  3. add a key that is valid and not in the latest scheduled set without
//     passing MaxAuthorities, or remove a key that is in it without
//     emptying it.
func (s *Schedule) Apply(at uint64, changes ...Change) error {
	return s.apply(at, changes)
}

func (s *Schedule) apply(at uint64, changes []Change) error {
	epochs := append([]epoch(nil), s.epochs...)
	for i, c := range changes {
		last := epochs[len(epochs)-1]
		if c.Height <= at {
			return ruleErr(ErrBadChange, "change %d takes effect at %d, not after its block at %d", i, c.Height, at)
		}
		if c.Height < last.from {
			return ruleErr(ErrBadChange, "change %d takes effect at %d, before a change scheduled at %d", i, c.Height, last.from)
		}
		keys := last.set.Keys()
		switch c.Op {
		case OpAdd:
			if _, in := last.set.Index(c.Key); in {
				return ruleErr(ErrBadChange, "change %d adds %s, already an authority", i, c.Key.String()[:10])
			}
			keys = append(keys, c.Key)
		case OpRemove:
			j, in := last.set.Index(c.Key)
			if !in {
				return ruleErr(ErrBadChange, "change %d removes %s, not an authority", i, c.Key.String()[:10])
			}
			keys = append(keys[:j], keys[j+1:]...)
		default:
			return ruleErr(ErrBadChange, "change %d has unknown op %d", i, c.Op)
		}
		set, err := NewSet(keys)
		if err != nil {
			code := ErrBadChange
			if CodeOf(err) == ErrBadKey {
				code = ErrBadKey
			}
			return ruleErr(code, "change %d: %v", i, err)
		}
		if c.Height == last.from && len(epochs) > 1 {
			epochs[len(epochs)-1].set = set
		} else {
			epochs = append(epochs, epoch{from: c.Height, set: set})
		}
	}
	s.epochs = epochs
	return nil
}
