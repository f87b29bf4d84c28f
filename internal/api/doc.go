// Package api is a node's HTTP API: JSON endpoints under /api/v1/, a stream
// of server-sent events, and Prometheus metrics at /metrics. docs/API.md
// describes every endpoint, its responses and its errors.
//
// It serves a running node.Node and its p2p.Host, whose methods its
// handlers call directly; the JSON bodies (views.go) are built straight from
// their types, and neither package imports this one.
//
//	h := api.New(n, host, api.WithToken(token))
//	defer h.Close()
//	err := h.Serve(ctx, ln) // until ctx ends, then a graceful shutdown
//
// Adding an endpoint: a route in api.go's routes (wrapped in h.write if it
// changes anything), a handler method that reads the node or host and
// answers with writeJSON or writeError, a view type in views.go if the
// body is new, and a test against a real node (testnet, as api_test.go
// does). docs/API.md describes it for users.
//
// What it guarantees:
//
//   - Every error is JSON of one shape, {"error": "...", "code": "..."},
//     with a stable code (the Code* constants) and the right status.
//   - Request bodies are JSON (415 otherwise) of at most MaxBodyBytes (413),
//     with no unknown fields (400).
//   - With a token (WithToken), write endpoints need "Authorization: Bearer
//     <token>", and so does the event stream for a client off loopback (or
//     ?access_token=<token>, for browsers' EventSource); other reads stay
//     open. Serve refuses a non-loopback listener without a token.
//   - Host headers other than IP addresses, localhost and WithAllowedHosts
//     are refused, so a web page cannot reach a loopback API through DNS
//     rebinding; requiring application/json bodies keeps other sites' forms
//     from posting to it.
//   - The server has read, write and idle timeouts; event streams are exempt
//     from the write timeout and end when the server shuts down or the
//     handler is closed.
//   - At most WithMaxStreams event streams are open at once (503
//     too_many_streams beyond), and they share one peer poller, so their
//     cost is bounded whoever opens them.
//   - Reads that can cost tens of milliseconds each (receipts, subject
//     endpoints, FHIR searches) run at most WithMaxCostly at once; one more
//     waits briefly, then gets 503 busy, so that an open read endpoint cannot
//     take every core from the node's blocks.
//   - Blocks and readings are found by their whole hash or its first
//     chain.MinPrefixDigits or more hex digits; a prefix that several
//     start with is 400 "ambiguous", listing candidates.
//   - POST /api/v1/peers/block and /unblock keep the node apart from
//     peers the operator names, and GET /api/v1/peers lists them.
//   - POST /api/v1/shutdown stops the node through WithShutdown's
//     function (404 not_supported without one), guarded like every write.
//   - Finality is visible on both kinds of network: blocks and readings
//     say whether they are final, the status gives the final block, the
//     stream has "final" events, and p2pchain_finality_seconds times
//     readings from submission to final. On an authority network
//     GET /api/v1/consensus shows the BFT state and POST
//     /api/v1/authorities approves membership changes (409 not_authority
//     on proof of work).
//   - Lookups of a block or reading that is not (yet) known answer 503
//     (code "syncing", with Retry-After) instead of 404 while the node is
//     catching up with a peer: it may be in blocks not downloaded yet.
//     Writes are accepted while syncing: a submitted reading waits in the
//     pending set.
package api
