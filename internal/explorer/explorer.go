// Package explorer is the node's web explorer: a single page, embedded in
// the binary, that reads the node's HTTP API (package api) from the same
// origin. docs/EXPLORER.md shows every page. Its pages:
//
//   - the latest blocks, updated live from the API's event stream, a form to
//     submit a reading and the peers;
//   - the subjects (GET /api/v1/subjects): each one's reading count, latest
//     reading, min, mean, max, last seen and pending count, sortable;
//   - a subject's heart rate as an SVG chart (chart.js: a bpm axis with its
//     unit, a local-time axis with ticks by range, the normal resting range
//     60-100 bpm shaded, markers whose shape and fill tell final, confirmed
//     and pending readings apart, hover and keyboard read-out, time ranges
//     1 h to all), from at most 2,000 readings, and its readings with a
//     receipt download for each one in a block;
//   - a block and a reading;
//   - checking a receipt in the browser (receipt-check.js), asking the node
//     nothing;
//   - search: a height, a block hash or reading id (whole, or its first 4 or
//     more digits: an ambiguous prefix lists what it could mean), or a
//     subject (compared as typed: "Alice" and "alice" are two subjects). A
//     string that names no block, reading or subject with readings is "not
//     found", never an empty subject page.
//
// The status strip shows the network's consensus (proof of work, or an
// authority network's height, round and step), the final block and the sync
// progress; blocks and readings are marked "final" (they never leave the
// chain), "confirmed" (in the main chain, not final yet) or "pending", and
// the marks follow the API's final events live. Every page fits a phone's
// screen (360 px and up) without scrolling sideways.
//
// It is plain HTML, CSS and JavaScript with no build step and no external
// resources, so it works offline and the node serves it as it is, with a
// Content-Security-Policy that allows nothing from elsewhere.
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
