package api

import (
	"fmt"
	"net/http"
	"strconv"
)

// Error codes: the stable, machine-readable "code" of an error response.
// Scripts match on these; the "error" text is for people and may change.
const (
	CodeBadJSON        = "bad_json"               // 400: the body is not one JSON object of the expected shape
	CodeUnknownField   = "unknown_field"          // 400: the body has a field the endpoint does not know
	CodeBadBPM         = "bad_bpm"                // 400: bpm missing, not a whole number or outside 20-300
	CodeBadSubject     = "bad_subject"            // 400: subject missing, empty, too long or not printable ASCII
	CodeBadTime        = "bad_time"               // 400: time neither Unix milliseconds nor RFC 3339, or before genesis or in the future
	CodeBadParameter   = "bad_parameter"          // 400: a query parameter is malformed
	CodeBadBlockRef    = "bad_block_ref"          // 400: neither a height nor a hash or hash prefix (4 to 64 hex digits)
	CodeBadReadingID   = "bad_reading_id"         // 400: not a reading id or id prefix (4 to 64 hex digits)
	CodeBadSignature   = "bad_signature"          // 400: a reading signed elsewhere: author or sig malformed, or the signature does not verify
	CodeAmbiguous      = "ambiguous"              // 400: more than one block or reading starts with the prefix given
	CodeBadMultiaddr   = "bad_multiaddr"          // 400: addr is not a full multiaddr with /p2p/<peer ID>, or is this node
	CodeBadOp          = "bad_op"                 // 400: op missing or neither "add" nor "remove"
	CodeBadPeerID      = "bad_peer_id"            // 400: peer_id missing, not a peer ID, or not of an Ed25519 key; peer_ids empty, or one not a peer ID or this node's
	CodeUnauthorized   = "unauthorized"           // 401: write without the right bearer token
	CodeForbiddenHost  = "forbidden_host"         // 403: Host header not allowed (DNS rebinding guard)
	CodeNotFound       = "not_found"              // 404: no such block, reading or path
	CodeNotSupported   = "not_supported"          // 404: the node does not offer this (POST /api/v1/shutdown without WithShutdown)
	CodeMethod         = "method_not_allowed"     // 405: the path exists with other methods (see Allow)
	CodeKnownReading   = "reading_known"          // 409: the same reading is already pending or in the chain
	CodeReadingPending = "reading_pending"        // 409: the reading waits for a block, so it has no receipt yet
	CodeNotAuthority   = "not_authority"          // 409: the network has no authorities (proof of work)
	CodeChangeRefused  = "change_refused"         // 409: the node refuses the membership change (see the error text)
	CodeBlockedFull    = "blocked_full"           // 409: blocking these peers would put the node's blocked list over its cap
	CodeBatchRefused   = "batch_refused"          // 409: an atomic batch of readings had a refused reading, so none was added
	CodeTooLarge       = "body_too_large"         // 413: the body is over MaxBodyBytes
	CodeMediaType      = "unsupported_media_type" // 415: the body is not Content-Type: application/json
	CodeInternal       = "internal"               // 500: a fault of the node; see its log
	CodePeerFailed     = "peer_unreachable"       // 502: the peer could not be reached or refused us
	CodeSyncing        = "syncing"                // 503: the node is catching up; what you asked for may come
	CodePendingFull    = "pending_full"           // 503: too many readings wait to be mined
	CodeNodeFailed     = "node_failed"            // 503: the node's storage failed and it is stopping
	CodeDiskFull       = "disk_full"              // 503: the node's disk is full; it takes readings again by itself once there is room
	CodeTooManyConns   = "too_many_connections"   // 503: the API has as many connections open as it takes, from other machines, from the client's address or from this machine; the connection is closed
	CodeDiskSlow       = "disk_slow"              // 503: the node's disk is slow: the reading was not stored, or may still be (the text says which and how a retry behaves)
	CodeTooManyStreams = "too_many_streams"       // 503: the node serves as many event streams as it allows
	CodeBusy           = "busy"                   // 503: as many costly reads run as the node allows, and none ended in time
	CodePeerTimeout    = "peer_timeout"           // 504: the peer did not answer in time
	retryAfterSyncing  = 5                        // seconds, in Retry-After of 503 syncing
	retryAfterPoolFull = 10                       // seconds, in Retry-After of 503 pending_full
	retryAfterStreams  = 10                       // seconds, in Retry-After of 503 too_many_streams
	retryAfterBusy     = 1                        // seconds, in Retry-After of 503 busy
	retryAfterDiskFull = 30                       // seconds, in Retry-After of 503 disk_full
	retryAfterDiskSlow = 10                       // seconds, in Retry-After of 503 disk_slow
)

// errorBody is the one shape of every error response. Candidates is only in
// an "ambiguous" error: the first few full hashes that start with the
// prefix given.
type errorBody struct {
	Error      string   `json:"error"`
	Code       string   `json:"code"`
	Candidates []string `json:"candidates,omitempty"`
	// ID is the id of the reading a refused submission made (409
	// reading_known, 503): what a client looks up or retries as.
	ID string `json:"id,omitempty"`
}

// apiError is an error response about to be written.
type apiError struct {
	status     int
	code       string
	msg        string
	retryAfter int      // seconds; 0: no Retry-After header
	candidates []string // for CodeAmbiguous
	id         string   // the reading a refused submission made, "" if none
}

func (e *apiError) Error() string { return e.msg }

func newError(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, code: code, msg: fmt.Sprintf(format, args...)}
}

// writeError writes e as the JSON error body.
func writeError(w http.ResponseWriter, e *apiError) {
	if e.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(e.retryAfter))
	}
	writeJSON(w, e.status, errorBody{Error: e.msg, Code: e.code, Candidates: e.candidates, ID: e.id})
}

// notFound is a 404, or a 503 while the node is syncing: the thing asked
// for may be in blocks not downloaded yet.
func notFound(syncing bool, format string, args ...any) *apiError {
	if syncing {
		e := newError(http.StatusServiceUnavailable, CodeSyncing, format+"; the node is syncing, try again", args...)
		e.retryAfter = retryAfterSyncing
		return e
	}
	return newError(http.StatusNotFound, CodeNotFound, format, args...)
}
