package api

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// A handler that panics answers 500 in the shape its client reads: the
// API's error object, or a FHIR OperationOutcome under /fhir/; never cached,
// and the server goes on serving.
func TestRecovererAnswers(t *testing.T) {
	h := &Handler{cfg: config{log: slog.New(slog.NewTextHandler(io.Discard, nil))}}
	srv := httptest.NewServer(h.recoverer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		panic("a bug")
	})))
	defer srv.Close()
	for _, c := range []struct{ path, contentType, field, want string }{
		{"/api/v1/status", "application/json", "code", CodeInternal},
		{"/fhir/Observation", "application/fhir+json", "resourceType", "OperationOutcome"},
	} {
		resp, err := http.Get(srv.URL + c.path)
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]any
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("%s: %v", c.path, err)
		}
		if resp.StatusCode != http.StatusInternalServerError || body[c.field] != c.want {
			t.Errorf("%s: %d %v, want 500 with %s %q", c.path, resp.StatusCode, body, c.field, c.want)
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, c.contentType) {
			t.Errorf("%s: content type %q, want %s", c.path, ct, c.contentType)
		}
		if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("%s: Cache-Control %q, want no-store", c.path, cc)
		}
	}
}
