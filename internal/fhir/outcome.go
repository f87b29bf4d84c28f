package fhir

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// Error is a failure to answer a FHIR request: the HTTP status and the
// issue type of the OperationOutcome that says why.
type Error struct {
	Status      int    // HTTP status, e.g. 400
	Code        string // FHIR issue type: invalid, required, not-supported, not-found, too-costly, exception
	Diagnostics string // what went wrong, for people
}

func (e *Error) Error() string { return e.Diagnostics }

// Errorf returns an *Error.
func Errorf(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Diagnostics: fmt.Sprintf(format, args...)}
}

// NotFound is the error of a read of a reading that is not there.
func NotFound(id string) *Error {
	return Errorf(http.StatusNotFound, "not-found", "Observation/%s: no reading with that id", id)
}

// Outcome is an OperationOutcome: what went wrong.
type Outcome struct {
	ResourceType string  `json:"resourceType"`
	Issue        []Issue `json:"issue"`
}

// Issue is one issue of an OperationOutcome.
type Issue struct {
	Severity    string `json:"severity"`
	Code        string `json:"code"`
	Diagnostics string `json:"diagnostics,omitempty"`
}

// OperationOutcome returns the OperationOutcome of err and the HTTP status
// to send it with: an *Error's (found with errors.As), else 500 with issue
// type exception.
func OperationOutcome(err error) (Outcome, int) {
	e := &Error{Status: http.StatusInternalServerError, Code: "exception", Diagnostics: "internal error"}
	if err != nil && !errors.As(err, &e) {
		e = &Error{Status: http.StatusInternalServerError, Code: "exception", Diagnostics: err.Error()}
	}
	return Outcome{ResourceType: "OperationOutcome", Issue: []Issue{{Severity: "error", Code: e.Code, Diagnostics: e.Diagnostics}}}, e.Status
}

// WriteJSON writes v as the answer with status and FHIR's JSON media type.
// Every answer, OperationOutcomes included, is Cache-Control: no-store:
// readings are health data, not to be kept by caches on the way.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		o, st := OperationOutcome(err)
		buf.Reset()
		_ = enc.Encode(o)
		status = st
	}
	w.Header().Set("Content-Type", ContentType+"; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// WriteError writes the OperationOutcome of err (see OperationOutcome).
func WriteError(w http.ResponseWriter, err error) {
	o, status := OperationOutcome(err)
	WriteJSON(w, status, o)
}
