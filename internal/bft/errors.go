package bft

import (
	"errors"
	"fmt"
)

// ErrorCode identifies why a message, a commit, a piece of evidence or a
// membership change was refused. ErrorCode values are errors themselves, so
// errors.Is(err, bft.ErrBadSignature) works on any error that wraps a
// *RuleError.
type ErrorCode int

// The error codes. Keep codeNames and IsPeerFault in step when adding one.
const (
	ErrMalformed        ErrorCode = iota + 1 // bytes do not decode canonically
	ErrBadKey                                // a key is not canonical or is of small order
	ErrBadSet                                // authority set empty, too large or with a key twice
	ErrUnknownAuthority                      // validator index outside the authority set
	ErrBadSignature                          // a signature does not verify
	ErrWrongBlock                            // a commit certifies another block
	ErrWrongHeight                           // a commit or evidence is for another height
	ErrTooFewSignatures                      // a commit has no more than two thirds of the set
	ErrDuplicateSigner                       // an authority appears twice in a commit
	ErrBadEvidence                           // two messages that are not an equivocation
	ErrBadChange                             // a membership change the schedule refuses
	ErrOldHeight                             // a message for a height already decided (not a fault)
	ErrFutureHeight                          // a message for a height not started yet (not a fault)
	ErrFutureRound                           // a message for a far round that changes nothing (not a fault)
	ErrDuplicate                             // a message already known (not a fault)
	ErrRepeat                                // a message held, byte for byte: a resend (not a fault; worth relaying)
)

var codeNames = map[ErrorCode]string{
	ErrMalformed:        "malformed",
	ErrBadKey:           "bad key",
	ErrBadSet:           "bad authority set",
	ErrUnknownAuthority: "unknown authority",
	ErrBadSignature:     "bad signature",
	ErrWrongBlock:       "wrong block",
	ErrWrongHeight:      "wrong height",
	ErrTooFewSignatures: "too few signatures",
	ErrDuplicateSigner:  "duplicate signer",
	ErrBadEvidence:      "bad evidence",
	ErrBadChange:        "bad membership change",
	ErrOldHeight:        "old height",
	ErrFutureHeight:     "future height",
	ErrFutureRound:      "future round",
	ErrDuplicate:        "duplicate message",
	ErrRepeat:           "repeated message",
}

// String returns a short lower-case name of the code, stable for metrics labels.
func (c ErrorCode) String() string {
	if s, ok := codeNames[c]; ok {
		return s
	}
	return fmt.Sprintf("ErrorCode(%d)", int(c))
}

// Error makes an ErrorCode usable as a sentinel error.
func (c ErrorCode) Error() string { return c.String() }

// RuleError is a refusal with detail for humans.
type RuleError struct {
	Code   ErrorCode
	Detail string
}

func (e *RuleError) Error() string {
	if e.Detail == "" {
		return e.Code.String()
	}
	return e.Code.String() + ": " + e.Detail
}

// Unwrap returns the code, so errors.Is matches ErrorCode sentinels.
func (e *RuleError) Unwrap() error { return e.Code }

func ruleErr(c ErrorCode, format string, args ...any) error {
	return &RuleError{Code: c, Detail: fmt.Sprintf(format, args...)}
}

// CodeOf returns the ErrorCode inside err, or 0 if err is not a rule error.
func CodeOf(err error) ErrorCode {
	var c ErrorCode
	if errors.As(err, &c) {
		return c
	}
	return 0
}

// IsPeerFault reports whether err proves that whoever sent the bytes broke
// the protocol (a gossip validator rejects and penalises). Old, future,
// far-round, duplicate and repeated messages are what an honest peer sends
// while the network moves on (ignore them, or relay a repeat: see
// ErrRepeat); ErrBadSet is a local configuration fault.
func IsPeerFault(err error) bool {
	switch CodeOf(err) {
	case 0, ErrOldHeight, ErrFutureHeight, ErrFutureRound, ErrDuplicate, ErrRepeat, ErrBadSet:
		return false
	}
	return true
}
