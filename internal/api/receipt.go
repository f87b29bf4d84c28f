package api

import (
	"errors"
	"net/http"

	"github.com/p2pchain/p2pchain/internal/node"
)

// receipt serves a reading's receipt, a document anyone can check offline
// (p2pchain check-receipt, the explorer's check page; docs/RECEIPTS.md):
// GET /api/v1/readings/{id}/receipt, by id or id prefix.
func (h *Handler) receipt(w http.ResponseWriter, r *http.Request) {
	id, e := h.readingID(r)
	if e != nil {
		writeError(w, e)
		return
	}
	rc, err := h.node.Receipt(id)
	switch {
	case errors.Is(err, node.ErrReadingNotFound):
		writeError(w, notFound(h.syncing(), "no reading %s, pending or in the main chain", id))
		return
	case errors.Is(err, node.ErrReadingPending):
		writeError(w, newError(http.StatusConflict, CodeReadingPending,
			"reading %s waits for a block: its receipt exists once a block holds it (follow GET /api/v1/readings/%s)", id.Short(), id))
		return
	case err != nil:
		writeError(w, h.readError("the receipt could not be made", err))
		return
	}
	w.Header().Set("Content-Disposition", `attachment; filename="receipt-`+id.Short()+`.json"`)
	writeJSON(w, http.StatusOK, rc)
}
