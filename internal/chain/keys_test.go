package chain_test

import (
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"math/big"
	"testing"

	"github.com/p2pchain/p2pchain/internal/chain"
)

// smallOrderKeys are the encodings of the eight points of small order on
// Ed25519 (orders 1, 2, 4 and 8), and the two that differ from one only in
// the sign bit of x = 0, which RFC 8032 forbids. TestSmallOrderKeys checks
// the list with curve arithmetic of its own.
var smallOrderKeys = [10][32]byte{
	mustKey("0100000000000000000000000000000000000000000000000000000000000000"), // identity
	mustKey("0100000000000000000000000000000000000000000000000000000000000080"), // identity, sign of x = 0 set
	mustKey("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"), // order 2
	mustKey("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"), // order 2, sign of x = 0 set
	mustKey("0000000000000000000000000000000000000000000000000000000000000000"), // order 4
	mustKey("0000000000000000000000000000000000000000000000000000000000000080"), // order 4
	mustKey("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"), // order 8
	mustKey("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa"), // order 8
	mustKey("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"), // order 8
	mustKey("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85"), // order 8
}

func mustKey(s string) (k [32]byte) {
	if n, err := hex.Decode(k[:], []byte(s)); err != nil || n != 32 {
		panic("bad key " + s)
	}
	return k
}

// nonCanonicalKey returns the encoding of y = 2^255 - 19 + k (0 <= k <= 18),
// an unreduced y, with the sign bit set if sign.
func nonCanonicalKey(k int, sign bool) (key [32]byte) {
	key[0] = byte(0xed + k)
	for i := 1; i < 31; i++ {
		key[i] = 0xff
	}
	key[31] = 0x7f
	if sign {
		key[31] |= 0x80
	}
	return key
}

// Curve arithmetic on Ed25519 (-x^2 + y^2 = 1 + d x^2 y^2 over GF(2^255-19)),
// in affine coordinates with math/big: slow and simple, for the tests only.
var (
	fieldP = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(19))
	curveD = mod(new(big.Int).Mul(big.NewInt(-121665), new(big.Int).ModInverse(big.NewInt(121666), fieldP)))
	sqrtM1 = new(big.Int).Exp(big.NewInt(2), new(big.Int).Rsh(new(big.Int).Sub(fieldP, big.NewInt(1)), 2), fieldP)
)

func mod(x *big.Int) *big.Int { return x.Mod(x, fieldP) }

type point struct{ x, y *big.Int }

// decodePoint decodes an RFC 8032 point encoding; it reports !ok for a y
// that is not reduced or a point not on the curve. A sign bit set on x = 0
// is tolerated (the point is (0, y)): such encodings are on the list above.
func decodePoint(k [32]byte) (pt point, ok bool) {
	le := k
	sign := le[31] >> 7
	le[31] &= 0x7f
	be := make([]byte, 32)
	for i := range le {
		be[31-i] = le[i]
	}
	y := new(big.Int).SetBytes(be)
	if y.Cmp(fieldP) >= 0 {
		return pt, false
	}
	y2 := mod(new(big.Int).Mul(y, y))
	u := mod(new(big.Int).Sub(y2, big.NewInt(1)))
	v := mod(new(big.Int).Add(new(big.Int).Mul(curveD, y2), big.NewInt(1)))
	x2 := mod(new(big.Int).Mul(u, new(big.Int).ModInverse(v, fieldP)))
	e := new(big.Int).Rsh(new(big.Int).Add(fieldP, big.NewInt(3)), 3)
	x := new(big.Int).Exp(x2, e, fieldP)
	if mod(new(big.Int).Mul(x, x)).Cmp(x2) != 0 {
		x = mod(x.Mul(x, sqrtM1))
	}
	if mod(new(big.Int).Mul(x, x)).Cmp(x2) != 0 {
		return pt, false
	}
	if x.Sign() != 0 && x.Bit(0) != uint(sign) {
		x.Sub(fieldP, x)
	}
	return point{x, y}, true
}

func addPoints(a, b point) point {
	x1x2 := mod(new(big.Int).Mul(a.x, b.x))
	y1y2 := mod(new(big.Int).Mul(a.y, b.y))
	dxy := mod(new(big.Int).Mul(curveD, mod(new(big.Int).Mul(x1x2, y1y2))))
	xn := mod(new(big.Int).Add(new(big.Int).Mul(a.x, b.y), new(big.Int).Mul(a.y, b.x)))
	xd := mod(new(big.Int).Add(big.NewInt(1), dxy))
	yn := mod(new(big.Int).Add(y1y2, x1x2))
	yd := mod(new(big.Int).Sub(big.NewInt(1), dxy))
	return point{
		mod(xn.Mul(xn, new(big.Int).ModInverse(xd, fieldP))),
		mod(yn.Mul(yn, new(big.Int).ModInverse(yd, fieldP))),
	}
}

func (p point) isIdentity() bool { return p.x.Sign() == 0 && p.y.Cmp(big.NewInt(1)) == 0 }

// order returns the order of p if it divides 8, else 0.
func (p point) order() int {
	q := p
	for n := 1; n <= 8; n *= 2 {
		if q.isIdentity() {
			return n
		}
		q = addPoints(q, q)
	}
	return 0
}

// TestSmallOrderKeys checks the list: every encoding decodes to a point of
// order 1, 2, 4 or 8, and together they are all eight such points, so no
// other encoding of a reduced y is of small order.
func TestSmallOrderKeys(t *testing.T) {
	points := map[string]int{}
	for i, k := range smallOrderKeys {
		pt, ok := decodePoint(k)
		if !ok {
			t.Fatalf("key %d (%x) does not decode", i, k)
		}
		n := pt.order()
		if n == 0 {
			t.Fatalf("key %d (%x) is not of small order", i, k)
		}
		points[pt.x.String()+","+pt.y.String()] = n
	}
	count := map[int]int{}
	for _, n := range points {
		count[n]++
	}
	if len(points) != 8 || count[1] != 1 || count[2] != 1 || count[4] != 2 || count[8] != 4 {
		t.Fatalf("the list holds %d distinct points of orders %v; want the 8 points of orders 1, 2, 4, 4, 8, 8, 8, 8", len(points), count)
	}
	// A real public key is a point of large order.
	for i := range 4 {
		var k [32]byte
		copy(k[:], testKey(i).Public().(ed25519.PublicKey))
		if pt, ok := decodePoint(k); !ok || pt.order() != 0 {
			t.Fatalf("test key %d: decodes %v, small order", i, ok)
		}
	}
}

// TestAuthorKeys: author keys of small order and keys with an unreduced y
// are refused (ErrBadKey) wherever a reading is checked; real keys pass.
func TestAuthorKeys(t *testing.T) {
	p := testParams(0)
	now := at(p, 60_000)
	valid := sign(testKey(1), "patient-1", 72, p.GenesisTime+1000)

	type row struct {
		name string
		key  [32]byte
		want chain.ErrorCode
	}
	var rows []row
	for i, k := range smallOrderKeys {
		rows = append(rows, row{fmt.Sprintf("small order %d %x", i, k[:4]), k, chain.ErrBadKey})
	}
	for k := 0; k <= 18; k++ {
		for _, sign := range []bool{false, true} {
			rows = append(rows, row{fmt.Sprintf("y = p + %d, sign %v", k, sign), nonCanonicalKey(k, sign), chain.ErrBadKey})
		}
	}
	for i := range 3 {
		var k [32]byte
		copy(k[:], testKey(i).Public().(ed25519.PublicKey))
		rows = append(rows, row{fmt.Sprintf("test key %d", i), k, 0})
	}
	// The largest reduced y (p - 1 is of order 2, on the list) passes the key
	// rule; a signature under it then fails to verify.
	rows = append(rows, row{"y = p - 2", func() [32]byte { k := nonCanonicalKey(0, false); k[0] = 0xeb; return k }(), 0})

	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			checkCode(t, chain.CheckAuthorKey(r.key), r.want)
			rd := valid
			rd.Author = r.key
			if r.want == 0 {
				checkCode(t, rd.CheckFields(), 0)
				return
			}
			if !chain.IsPeerFault(chain.CheckAuthorKey(r.key)) {
				t.Fatal("a bad key is not a peer fault")
			}
			checkCode(t, rd.CheckFields(), r.want)
			checkCode(t, rd.Check(), r.want)
			checkCode(t, chain.CheckReading(&rd, p, now.UnixMilli(), nil), r.want)
			c := mustChain(t, p)
			_, err := c.AddBlock(mine(t, c, []chain.Reading{rd}, now), now)
			checkCode(t, err, r.want)
		})
	}

	// Why: under the identity key, R = identity and S = 0 is a signature of
	// every message. It verifies, and only the key rule refuses it.
	forged := chain.Reading{Subject: "victim", BPM: 180, Time: p.GenesisTime + 5000, Author: smallOrderKeys[0]}
	copy(forged.Sig[:], smallOrderKeys[0][:])
	if err := forged.CheckSignature(); err != nil {
		t.Fatalf("the forged signature does not verify (%v): the demonstration is void", err)
	}
	checkCode(t, forged.Check(), chain.ErrBadKey)
	c := mustChain(t, p)
	_, err := c.AddBlock(mine(t, c, []chain.Reading{forged}, now), now)
	checkCode(t, err, chain.ErrBadKey)

	// A real key is accepted end to end.
	if _, err := c.AddBlock(mine(t, c, []chain.Reading{valid}, now), now); err != nil {
		t.Fatalf("a reading under a real key refused: %v", err)
	}
}
