package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strings"
)

// decodeBody decodes a JSON request body of at most MaxBodyBytes into v,
// refusing other content types, unknown fields and trailing data. example
// shows a good body, for error messages.
func decodeBody(w http.ResponseWriter, r *http.Request, v any, example string) *apiError {
	return decodeBodyLimit(w, r, v, example, MaxBodyBytes)
}

// decodeBodyLimit is decodeBody with a size limit of its own.
func decodeBodyLimit(w http.ResponseWriter, r *http.Request, v any, example string, limit int64) *apiError {
	ct := r.Header.Get("Content-Type")
	if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
		return newError(http.StatusUnsupportedMediaType, CodeMediaType,
			"content type %q: send a JSON body with the header Content-Type: application/json", ct)
	}
	tooLarge := newError(http.StatusRequestEntityTooLarge, CodeTooLarge, "the body is over %d bytes", limit)
	if r.ContentLength > limit {
		return tooLarge
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return tooLarge
	case err != nil:
		return newError(http.StatusBadRequest, CodeBadJSON, "reading the body: %v", err)
	}
	return decodeJSON(data, v, "the body", example)
}

// decodeJSON decodes data, one JSON object, into v: its keys must be
// exactly v's field names, each at most once (encoding/json alone would take
// "BPM" for "bpm" and let a repeated key override the first, so what a
// proxy or a log reads could differ from what the node signs), with nothing
// after it. The error says what to send instead, naming data as what ("the
// body", "reading 3"); example is a good object.
func decodeJSON(data []byte, v any, what, example string) *apiError {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if _, terr := dec.Token(); terr != io.EOF {
			err = terr
			if err == nil {
				err = errors.New("data after the JSON object")
			}
		}
	}
	if err == nil {
		err = exactKeys(json.NewDecoder(bytes.NewReader(data)), reflect.TypeOf(v))
	}
	if err == nil {
		return nil
	}
	var (
		syn *json.SyntaxError
		typ *json.UnmarshalTypeError
		key *keyError
	)
	switch {
	case errors.Is(err, io.EOF):
		return newError(http.StatusBadRequest, CodeBadJSON, "%s is empty; want a JSON object such as %s", what, example)
	case errors.As(err, &syn), errors.Is(err, io.ErrUnexpectedEOF):
		return newError(http.StatusBadRequest, CodeBadJSON, "%s is not valid JSON (%v); want a JSON object such as %s", what, err, example)
	case errors.As(err, &typ) && typ.Field == "":
		return newError(http.StatusBadRequest, CodeBadJSON, "%s is a JSON %s; want a JSON object such as %s", what, typ.Value, example)
	case errors.As(err, &typ) && typ.Field == "subject":
		return newError(http.StatusBadRequest, CodeBadSubject, "subject: want a string, got a JSON %s", typ.Value)
	case errors.As(err, &typ):
		return newError(http.StatusBadRequest, CodeBadJSON, "field %q: want %s, got a JSON %s", typ.Field, jsonKind(typ.Type), typ.Value)
	case errors.As(err, &key) && key.twice:
		return newError(http.StatusBadRequest, CodeBadJSON, "%v; give each field once, as in %s", key, example)
	case errors.As(err, &key):
		return newError(http.StatusBadRequest, CodeUnknownField, "%v; want a JSON object such as %s", key, example)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return newError(http.StatusBadRequest, CodeUnknownField, "%s; want a JSON object such as %s", strings.TrimPrefix(err.Error(), "json: "), example)
	}
	return newError(http.StatusBadRequest, CodeBadJSON, "%s; want a JSON object such as %s", strings.TrimPrefix(err.Error(), "json: "), example)
}

// jsonKind names the JSON a Go type takes, for error messages.
func jsonKind(t reflect.Type) string {
	if t == nil {
		return "another JSON value"
	}
	switch t.Kind() {
	case reflect.String:
		return "a JSON string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "a whole number"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number from 0"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "a JSON array"
	case reflect.Struct, reflect.Map:
		return "a JSON object"
	case reflect.Pointer:
		return jsonKind(t.Elem())
	}
	return "another JSON value"
}

// keyError is a key that exactKeys refuses.
type keyError struct {
	key   string
	twice bool   // given more than once in one object
	near  string // the field it differs from only in case
}

func (e *keyError) Error() string {
	switch {
	case e.twice:
		return fmt.Sprintf("field %q is given twice", e.key)
	case e.near != "":
		return fmt.Sprintf("unknown field %q (field names are lower case: %q)", e.key, e.near)
	}
	return fmt.Sprintf("unknown field %q", e.key)
}

var rawMessageType = reflect.TypeFor[json.RawMessage]()

// exactKeys walks the JSON value dec holds and returns a *keyError for the
// first key, in an object that t (a struct) describes, that is not exactly
// one of t's JSON field names, and for a key given twice in any object. It
// returns nil for JSON it cannot parse: the decoder, run first, reports that.
// A json.RawMessage is skipped: its handler decodes and checks it.
func exactKeys(dec *json.Decoder, t reflect.Type) error {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == rawMessageType { // decoded, and checked, on its own later
		var skip json.RawMessage
		_ = dec.Decode(&skip)
		return nil
	}
	tok, err := dec.Token()
	if err != nil {
		return nil
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return nil
	}
	switch d {
	case '[':
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		for dec.More() {
			if err := exactKeys(dec, elem); err != nil {
				return err
			}
		}
	case '{':
		var fields map[string]reflect.Type
		var values reflect.Type // a map's values, each checked as its type
		switch {
		case t != nil && t.Kind() == reflect.Struct:
			fields = jsonFields(t)
		case t != nil && t.Kind() == reflect.Map:
			values = t.Elem()
		}
		seen := map[string]bool{}
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return nil
			}
			k, _ := tok.(string)
			if seen[k] {
				return &keyError{key: k, twice: true}
			}
			seen[k] = true
			ft := values
			if fields != nil {
				var ok bool
				if ft, ok = fields[k]; !ok {
					e := &keyError{key: k}
					for name := range fields {
						if strings.EqualFold(name, k) {
							e.near = name
						}
					}
					return e
				}
			}
			if err := exactKeys(dec, ft); err != nil {
				return err
			}
		}
	}
	_, _ = dec.Token() // the closing delimiter
	return nil
}

// jsonFields returns the JSON names of a struct's exported fields and
// their types, as encoding/json names them (the tag's name, else the Go
// name; embedded structs' fields promoted).
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for _, f := range reflect.VisibleFields(t) {
		tag := f.Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		inner := f.Type
		if inner.Kind() == reflect.Pointer {
			inner = inner.Elem()
		}
		if f.Anonymous && inner.Kind() == reflect.Struct && name == "" {
			continue // its fields are promoted: VisibleFields lists them
		}
		if !f.IsExported() || tag == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}
