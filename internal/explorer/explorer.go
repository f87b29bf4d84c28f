// Package explorer is the node's web explorer: a single page, embedded in
// the binary, that reads the node's HTTP API (package api) from the same
// origin. It shows the tip, the peers and the recent blocks, updated live
// from the API's event stream; a block and its readings; a subject's
// readings as a BPM-over-time chart; a form to submit a reading; and a
// search box for a height, a block hash or reading id (whole, or its first
// 4 or more digits: an ambiguous prefix lists what it could mean), or a
// subject (compared as typed: "Alice" and "alice" are two subjects). A hex
// string that names no block, reading or subject with readings is "not
// found", never an empty subject page.
//
// The status strip shows the network's consensus (proof of work, or an
// authority network's height, round and step) and the final block; blocks
// and readings are marked "final" (they never leave the chain),
// "confirmed" (in the main chain, not final yet) or "pending", and the
// marks follow the API's final events live.
//
// It is plain HTML, CSS and JavaScript with no build step and no external
// resources, so it works offline and the node serves it as it is.
package explorer

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed static
var static embed.FS

// Handler serves the explorer's files; mount it at "/".
func Handler() http.Handler {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	files := http.FileServerFS(sub)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self'; img-src 'self' data:")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		files.ServeHTTP(w, r)
	})
}
