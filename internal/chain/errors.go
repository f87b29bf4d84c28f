package chain

import (
	"errors"
	"fmt"
)

// ErrorCode identifies a consensus rule or a reason a block or reading was not
// accepted. ErrorCode values are errors, so errors.Is(err, ErrBadPoW) works on
// any error that wraps a *RuleError.
type ErrorCode int

// The error codes. Keep String in step when adding one.
const (
	ErrMalformed        ErrorCode = iota + 1 // bytes do not decode canonically
	ErrBadVersion                            // unknown header version
	ErrBadDifficulty                         // difficulty is not the network's
	ErrBadPoW                                // header hash above the target
	ErrTooManyReadings                       // more readings than Params.MaxReadings
	ErrBadRoot                               // readings root does not match
	ErrDuplicateReading                      // a reading appears twice in the block or its ancestry
	ErrBadSubject                            // subject empty, too long or not printable ASCII
	ErrBadBPM                                // BPM outside [MinBPM, MaxBPM]
	ErrBadSignature                          // reading signature does not verify
	ErrBadReadingTime                        // reading time before genesis or after its block
	ErrBadHeight                             // height is not parent height + 1
	ErrTimeBeforeParent                      // block time before its parent's
	ErrTimeTooNew                            // block time too far ahead of now
	ErrUnknownParent                         // parent not known: sync first
	ErrDuplicateBlock                        // block already known
	ErrBadGenesis                            // a second genesis or a different one
	ErrPoolFull                              // pending set at capacity
	ErrKnownReading                          // reading already pending or in the chain
	ErrBadKey                                // author key not canonical or of small order
	ErrBadCount                              // header's reading count differs from the block's
	ErrForkTooDeep                           // block would replace a final block (see Params.MaxReorgDepth)
	ErrTooManyForks                          // side branches at their cap and this one has the least work
	ErrCheckpoint                            // block conflicts with the node's checkpoint
	ErrBadSeal                               // authority network: missing, malformed or unverified seal or membership changes; proof of work: a seal at all
)

var codeNames = map[ErrorCode]string{
	ErrMalformed:        "malformed",
	ErrBadVersion:       "bad version",
	ErrBadDifficulty:    "bad difficulty",
	ErrBadPoW:           "insufficient proof of work",
	ErrTooManyReadings:  "too many readings",
	ErrBadRoot:          "readings root mismatch",
	ErrDuplicateReading: "duplicate reading",
	ErrBadSubject:       "bad subject",
	ErrBadBPM:           "bpm out of range",
	ErrBadSignature:     "bad signature",
	ErrBadReadingTime:   "bad reading time",
	ErrBadHeight:        "bad height",
	ErrTimeBeforeParent: "time before parent",
	ErrTimeTooNew:       "time too far in the future",
	ErrUnknownParent:    "unknown parent",
	ErrDuplicateBlock:   "duplicate block",
	ErrBadGenesis:       "bad genesis",
	ErrPoolFull:         "pending set full",
	ErrKnownReading:     "reading already known",
	ErrBadKey:           "bad author key",
	ErrBadCount:         "bad reading count",
	ErrForkTooDeep:      "fork below the final depth",
	ErrTooManyForks:     "too many side branches",
	ErrCheckpoint:       "checkpoint mismatch",
	ErrBadSeal:          "bad seal",
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

// RuleError is a violation of a consensus rule, with detail for humans.
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

// RuleDetail returns the detail of the rule error in err, for a message
// that names the field itself ("bpm: 250 is over 220"), or err's whole text
// when it is not a rule error or has no detail.
func RuleDetail(err error) string {
	if re, ok := errors.AsType[*RuleError](err); ok && re.Detail != "" {
		return re.Detail
	}
	return err.Error()
}

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

// IsPeerFault reports whether err proves that whoever sent the data broke the
// rules (and may be penalised). Duplicates, unknown parents, blocks from the
// near future, local conditions such as a full pool, and blocks that are
// valid but conflict with what this node holds final (an honest peer cut off
// for longer than the final depth sends those too) are not peer faults.
func IsPeerFault(err error) bool {
	switch CodeOf(err) {
	case 0, ErrUnknownParent, ErrDuplicateBlock, ErrTimeTooNew, ErrPoolFull, ErrKnownReading,
		ErrForkTooDeep, ErrTooManyForks, ErrCheckpoint:
		return false
	}
	return true
}
