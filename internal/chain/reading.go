package chain

import (
	"crypto/ed25519"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"time"
	"unicode/utf8"
)

// Sizes of a reading on the wire.
const (
	// readingFixedSize is everything but the subject bytes: subject length (1),
	// BPM (2), time (8), author key (32) and signature (64).
	readingFixedSize = 1 + 2 + 8 + ed25519.PublicKeySize + ed25519.SignatureSize
	// MaxReadingSize is the encoded size of a reading with the longest subject.
	MaxReadingSize = readingFixedSize + MaxSubjectLen
)

// readingDomain separates reading signatures from any other use of a key.
const readingDomain = "p2pchain/reading/v1"

// Reading is one signed heart-rate measurement.
type Reading struct {
	Subject string                      // pseudonymous patient id
	BPM     uint16                      // beats per minute
	Time    int64                       // when it was taken, Unix milliseconds
	Author  [ed25519.PublicKeySize]byte // Ed25519 public key of the signer
	Sig     [ed25519.SignatureSize]byte // signature over the content
}

// NewReading makes a reading signed by key. It checks the subject and BPM.
func NewReading(key ed25519.PrivateKey, subject string, bpm int, t time.Time) (Reading, error) {
	var r Reading
	if err := CheckSubject(subject); err != nil {
		return r, err
	}
	if bpm < MinBPM || bpm > MaxBPM {
		return r, ruleErr(ErrBadBPM, "%d is outside %d-%d", bpm, MinBPM, MaxBPM)
	}
	if len(key) != ed25519.PrivateKeySize {
		return r, fmt.Errorf("signing key: want %d bytes, got %d", ed25519.PrivateKeySize, len(key))
	}
	r.Subject, r.BPM, r.Time = subject, uint16(bpm), t.UnixMilli()
	copy(r.Author[:], key.Public().(ed25519.PublicKey))
	copy(r.Sig[:], ed25519.Sign(key, r.signingBytes()))
	return r, nil
}

// CheckSubject reports whether s is a valid subject: 1 to MaxSubjectLen bytes
// of printable ASCII without spaces.
func CheckSubject(s string) error {
	if len(s) == 0 || len(s) > MaxSubjectLen {
		return ruleErr(ErrBadSubject, "length %d is outside 1-%d", len(s), MaxSubjectLen)
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return ruleErr(ErrBadSubject, "%s at byte %d is not printable ASCII without spaces", subjectChar(s[i:]), i)
		}
	}
	return nil
}

// subjectChar names the character s starts with, for CheckSubject's
// errors: a quoted character if s starts with one in UTF-8 ('é', ' ',
// '\x00'), else the byte in hex (not UTF-8, shown as such).
func subjectChar(s string) string {
	r, size := utf8.DecodeRuneInString(s)
	if r == utf8.RuneError && size <= 1 {
		return fmt.Sprintf("byte 0x%02x (not UTF-8)", s[0])
	}
	return fmt.Sprintf("character %q", r)
}

// content appends the signed content of r: everything but the signature.
func (r *Reading) content(b []byte) []byte {
	b = append(b, byte(len(r.Subject)))
	b = append(b, r.Subject...)
	b = binary.BigEndian.AppendUint16(b, r.BPM)
	b = binary.BigEndian.AppendUint64(b, uint64(r.Time))
	return append(b, r.Author[:]...)
}

func (r *Reading) signingBytes() []byte {
	return r.content(append(make([]byte, 0, len(readingDomain)+MaxReadingSize), readingDomain...))
}

// ID returns the reading id: SHA-256 of the signed content (without the
// signature, so the id does not depend on the signature's encoding).
func (r *Reading) ID() Hash {
	var buf [MaxReadingSize]byte
	return taggedHash("", r.content(buf[:0]))
}

// Check verifies the reading on its own: its fields (CheckFields) and its
// signature.
func (r *Reading) Check() error {
	if err := r.CheckFields(); err != nil {
		return err
	}
	return r.CheckSignature()
}

// CheckFields checks everything of the reading but its signature, the cheap
// part: subject, BPM range and author key.
func (r *Reading) CheckFields() error {
	if err := CheckSubject(r.Subject); err != nil {
		return err
	}
	if r.BPM < MinBPM || r.BPM > MaxBPM {
		return ruleErr(ErrBadBPM, "%d is outside %d-%d", r.BPM, MinBPM, MaxBPM)
	}
	return CheckAuthorKey(r.Author)
}

// CheckSignature verifies the reading's Ed25519 signature (RFC 8032, with
// the canonical-S check of Go's crypto/ed25519).
func (r *Reading) CheckSignature() error {
	if !ed25519.Verify(r.Author[:], r.signingBytes(), r.Sig[:]) {
		return ruleErr(ErrBadSignature, "reading %s", r.ID().Short())
	}
	return nil
}

// smallOrder lists the encodings of the eight points of small order on
// Ed25519 (and the two that differ from one only in the sign of x = 0,
// which RFC 8032 forbids). A signature "verifies" under such a key for many
// messages without any private key behind it.
var smallOrder = [...][32]byte{
	hexKey("0100000000000000000000000000000000000000000000000000000000000000"), // identity
	hexKey("0100000000000000000000000000000000000000000000000000000000000080"),
	hexKey("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"), // order 2
	hexKey("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"),
	hexKey("0000000000000000000000000000000000000000000000000000000000000000"), // order 4
	hexKey("0000000000000000000000000000000000000000000000000000000000000080"),
	hexKey("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"), // order 8
	hexKey("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa"),
	hexKey("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"),
	hexKey("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85"),
}

func hexKey(s string) (k [32]byte) {
	if _, err := hex.Decode(k[:], []byte(s)); err != nil {
		panic(err)
	}
	return k
}

// CheckAuthorKey refuses author keys that are not the canonical encoding of
// a point (y at least 2^255-19) or that are points of small order.
func CheckAuthorKey(k [ed25519.PublicKeySize]byte) error {
	// y is little-endian in the low 255 bits; canonical means y < p.
	if k[31]&0x7f == 0x7f && k[0] >= 0xed && allFF(k[1:31]) {
		return ruleErr(ErrBadKey, "author key %x is not a canonical encoding", k[:4])
	}
	for i := range smallOrder {
		if k == smallOrder[i] {
			return ruleErr(ErrBadKey, "author key %x is a point of small order", k[:4])
		}
	}
	return nil
}

func allFF(b []byte) bool {
	for _, c := range b {
		if c != 0xff {
			return false
		}
	}
	return true
}

// EncodedSize is the size of r on the wire.
func (r *Reading) EncodedSize() int { return readingFixedSize + len(r.Subject) }

// AppendBinary appends the wire encoding of r: the content, then the signature.
func (r *Reading) AppendBinary(b []byte) ([]byte, error) {
	if len(r.Subject) > MaxSubjectLen {
		return b, ruleErr(ErrBadSubject, "length %d is over %d", len(r.Subject), MaxSubjectLen)
	}
	return append(r.content(b), r.Sig[:]...), nil
}

// MarshalBinary returns the wire encoding of r.
func (r *Reading) MarshalBinary() ([]byte, error) {
	return r.AppendBinary(make([]byte, 0, r.EncodedSize()))
}

// UnmarshalBinary decodes exactly one reading from b.
func (r *Reading) UnmarshalBinary(b []byte) error {
	n, err := r.decode(b)
	if err != nil {
		return err
	}
	if n != len(b) {
		return ruleErr(ErrMalformed, "reading: %d trailing bytes", len(b)-n)
	}
	return nil
}

// decode reads a reading from the front of b and returns the bytes used. It
// checks only the encoding, not the rules (see Check).
func (r *Reading) decode(b []byte) (int, error) {
	if len(b) < 1 {
		return 0, ruleErr(ErrMalformed, "reading: empty")
	}
	n := int(b[0])
	if n > MaxSubjectLen {
		return 0, ruleErr(ErrBadSubject, "length %d is over %d", n, MaxSubjectLen)
	}
	size := readingFixedSize + n
	if len(b) < size {
		return 0, ruleErr(ErrMalformed, "reading: %d bytes, want %d", len(b), size)
	}
	p := 1
	r.Subject = string(b[p : p+n])
	p += n
	r.BPM = binary.BigEndian.Uint16(b[p:])
	p += 2
	r.Time = int64(binary.BigEndian.Uint64(b[p:]))
	p += 8
	p += copy(r.Author[:], b[p:])
	p += copy(r.Sig[:], b[p:])
	return p, nil
}
