package chain_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/p2pchain/p2pchain/internal/chain"
)

// jsonFixture returns a solved block at height 2 holding three readings (one
// with every JSON-special printable character in its subject), and an empty
// block at height 1, on a chain of difficulty 4.
func jsonFixture(t testing.TB) (empty, full *chain.Block) {
	t.Helper()
	p := testParams(4)
	c := mustChain(t, p)
	empty = mine(t, c, nil, at(p, 1000))
	mustAdd(t, c, empty, at(p, 1000))
	rs := []chain.Reading{
		sign(testKey(1), "alice", 72, p.GenesisTime+500),
		sign(testKey(2), `x"y\z<&>/`, 300, p.GenesisTime+600),
		sign(testKey(3), strings.Repeat("~", chain.MaxSubjectLen), 20, p.GenesisTime+700),
	}
	full = mine(t, c, rs, at(p, 2000))
	mustAdd(t, c, full, at(p, 2000))
	return empty, full
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return data
}

// TestBlockJSONForm pins the documented form: field names and order, hex,
// numbers, readings always an array.
func TestBlockJSONForm(t *testing.T) {
	empty, full := jsonFixture(t)
	h := empty.Header
	want := fmt.Sprintf(`{"height":1,"hash":"%s","parent":"%s","time":%d,"root":"%s","difficulty":4,"nonce":%d,"version":2,"readings":[]}`,
		hex.EncodeToString(headerHash(&h)), hex.EncodeToString(h.Parent[:]), h.Time, hex.EncodeToString(h.Root[:]), h.Nonce)
	if got := string(mustJSON(t, empty)); got != want {
		t.Fatalf("empty block:\n got %s\nwant %s", got, want)
	}

	r := full.Readings[1]
	id := readingID(&r)
	want = fmt.Sprintf(`{"id":"%s","subject":"x\"y\\z<&>/","bpm":300,"time":%d,"author":"%s","sig":"%s"}`,
		hex.EncodeToString(id[:]), r.Time, hex.EncodeToString(r.Author[:]), hex.EncodeToString(r.Sig[:]))
	got, err := r.MarshalJSON()
	if err != nil || string(got) != want {
		t.Fatalf("reading (%v):\n got %s\nwant %s", err, got, want)
	}
	// encoding/json escapes <, > and & in what MarshalJSON returns unless the
	// encoder is told not to (export does); both forms decode alike.
	if !bytes.Contains(mustJSON(t, r), []byte(`\u003c\u0026\u003e`)) {
		t.Fatalf("json.Marshal: %s", mustJSON(t, r))
	}
	// The block holds the readings' own form, and the value and the pointer
	// marshal alike.
	if !bytes.Contains(mustJSON(t, full), []byte(`"readings":[{"id":`)) ||
		!bytes.Equal(mustJSON(t, full), mustJSON(t, *full)) {
		t.Fatalf("block with readings: %s", mustJSON(t, full))
	}
	blockForm, err := full.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var forms [][]byte
	for _, r := range full.Readings {
		f, err := r.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		forms = append(forms, f)
	}
	if want := []byte(`"readings":[` + string(bytes.Join(forms, []byte(","))) + `]}`); !bytes.HasSuffix(blockForm, want) {
		t.Fatalf("the block's readings are not the readings' own forms:\n got %s\nwant suffix %s", blockForm, want)
	}
}

// BenchmarkBlockJSON encodes a block of 1,000 readings as the API and
// export do (MarshalJSON, then an encoder that compacts its output).
//
//	go test -run '^$' -bench BlockJSON ./internal/chain
func BenchmarkBlockJSON(b *testing.B) {
	p := testParams(0)
	c := mustChain(b, p)
	rs := make([]chain.Reading, 1000)
	for i := range rs {
		rs[i] = sign(testKey(i%7), fmt.Sprintf("patient-%d", i), uint16(60+i%100), p.GenesisTime+int64(i))
	}
	blk := mine(b, c, rs, at(p, 2000))
	var buf bytes.Buffer
	b.ReportAllocs()
	for b.Loop() {
		buf.Reset()
		if err := json.NewEncoder(&buf).Encode(blk); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(buf.Len()))
}

// regexpHex matches the hashes, keys and signatures of the JSON form.
var regexpHex = regexp.MustCompile(`[0-9a-f]{64,128}`)

func headerHash(h *chain.Header) []byte {
	sum := h.Hash()
	return sum[:]
}

func TestBlockJSONRoundTrip(t *testing.T) {
	empty, full := jsonFixture(t)
	for _, b := range []*chain.Block{empty, full} {
		data := mustJSON(t, b)
		var got chain.Block
		if err := json.Unmarshal(data, &got); err != nil {
			t.Fatalf("height %d: %v\n%s", b.Header.Height, err, data)
		}
		if !reflect.DeepEqual(&got, b) {
			t.Fatalf("height %d: decoded block differs:\n got %+v\nwant %+v", b.Header.Height, got, *b)
		}
		wantBin, _ := b.MarshalBinary()
		gotBin, err := got.MarshalBinary()
		if err != nil || !bytes.Equal(gotBin, wantBin) {
			t.Fatalf("height %d: binary form differs after JSON (%v)", b.Header.Height, err)
		}
		if again := mustJSON(t, &got); !bytes.Equal(again, data) {
			t.Fatalf("height %d: JSON differs after a round trip:\n got %s\nwant %s", b.Header.Height, again, data)
		}
	}
	// Upper-case hex is read too; output is always lower-case.
	data := mustJSON(t, full)
	upper := regexpHex.ReplaceAllFunc(data, bytes.ToUpper)
	var got chain.Block
	if err := json.Unmarshal(upper, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&got, full) || !bytes.Equal(mustJSON(t, &got), data) {
		t.Fatal("upper-case hex decodes to another block")
	}
}

// mutate decodes the JSON object data, lets f change it and encodes it again.
func mutate(t *testing.T, data []byte, f func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		t.Fatal(err)
	}
	f(m)
	return mustJSON(t, m)
}

func reading0(m map[string]any) map[string]any { return m["readings"].([]any)[0].(map[string]any) }

func TestBlockJSONRejects(t *testing.T) {
	_, full := jsonFixture(t)
	valid := mustJSON(t, full)
	r0 := func(f func(r map[string]any)) func(m map[string]any) {
		return func(m map[string]any) { f(reading0(m)) }
	}
	tests := []struct {
		name string
		data []byte
		want string // in the error message
		code chain.ErrorCode
	}{
		{"empty input", nil, "EOF", chain.ErrMalformed},
		{"not an object", []byte(`[1,2]`), "want a JSON object, got array", chain.ErrMalformed},
		{"null", []byte(`null`), `"height" is missing`, chain.ErrMalformed},
		{"truncated", valid[:len(valid)-1], "unexpected EOF", chain.ErrMalformed},
		{"trailing data", append(bytes.Clone(valid), []byte(` {}`)...), "data after", chain.ErrMalformed},
		{"unknown field", mutate(t, valid, func(m map[string]any) { m["extra"] = 1 }), `unknown field "extra"`, chain.ErrMalformed},
		{"unknown reading field", mutate(t, valid, r0(func(r map[string]any) { r["note"] = "x" })), `unknown field "note"`, chain.ErrMalformed},
		{"hash does not match", mutate(t, valid, func(m map[string]any) { m["nonce"] = json.Number("12345678") }), "does not match its header", chain.ErrMalformed},
		{"reading dropped", mutate(t, valid, func(m map[string]any) { m["readings"] = m["readings"].([]any)[:2] }), "does not match its header", chain.ErrMalformed},
		{"hash of another block", mutate(t, valid, func(m map[string]any) { m["hash"] = strings.Repeat("00", 32) }), "does not match its header", chain.ErrMalformed},
		{"hash too short", mutate(t, valid, func(m map[string]any) { m["hash"] = m["hash"].(string)[1:] }), `"hash": want 64 hex digits, got 63`, chain.ErrMalformed},
		{"parent not hex", mutate(t, valid, func(m map[string]any) { m["parent"] = strings.Repeat("zz", 32) }), `"parent": encoding/hex`, chain.ErrMalformed},
		{"root too long", mutate(t, valid, func(m map[string]any) { m["root"] = m["root"].(string) + "00" }), `"root": want 64`, chain.ErrMalformed},
		{"negative height", mutate(t, valid, func(m map[string]any) { m["height"] = -1 }), "want an", chain.ErrMalformed},
		{"height as string", mutate(t, valid, func(m map[string]any) { m["height"] = "2" }), "want an", chain.ErrMalformed},
		{"fractional time", mutate(t, valid, func(m map[string]any) { m["time"] = 1.5 }), "want an", chain.ErrMalformed},
		{"nonce over 64 bits", mutate(t, valid, func(m map[string]any) { m["nonce"] = json.Number("18446744073709551616") }), "want an", chain.ErrMalformed},
		{"readings null", mutate(t, valid, func(m map[string]any) { m["readings"] = nil }), `"readings" is missing`, chain.ErrMalformed},
		{"readings not a list", mutate(t, valid, func(m map[string]any) { m["readings"] = map[string]any{} }), "want an", chain.ErrMalformed},
		{"reading null", mutate(t, valid, func(m map[string]any) { m["readings"].([]any)[1] = nil }), `block at height 2, reading 1: field "subject" is missing`, chain.ErrMalformed},
		{"too many readings", mutate(t, valid, func(m map[string]any) {
			m["readings"] = make([]any, chain.MaxReadingsLimit+1)
		}), "4097 readings", chain.ErrMalformed},
		{"id does not match", mutate(t, valid, r0(func(r map[string]any) { r["bpm"] = 73 })), "block at height 2, reading 0: id", chain.ErrMalformed},
		{"bpm over 16 bits", mutate(t, valid, r0(func(r map[string]any) { r["bpm"] = 70000 })), "want an", chain.ErrMalformed},
		{"sig too short", mutate(t, valid, r0(func(r map[string]any) { r["sig"] = r["sig"].(string)[2:] })), `"sig": want 128 hex digits, got 126`, chain.ErrMalformed},
		{"author odd hex", mutate(t, valid, r0(func(r map[string]any) { r["author"] = "g" + r["author"].(string)[1:] })), `"author": encoding/hex`, chain.ErrMalformed},
		{"subject too long", mutate(t, valid, r0(func(r map[string]any) { r["subject"] = strings.Repeat("a", 65) })), "subject of 65 bytes", chain.ErrBadSubject},
	}
	for _, field := range []string{"height", "hash", "parent", "time", "root", "difficulty", "nonce", "version", "readings"} {
		tests = append(tests, struct {
			name string
			data []byte
			want string
			code chain.ErrorCode
		}{"no " + field, mutate(t, valid, func(m map[string]any) { delete(m, field) }), fmt.Sprintf("%q is missing", field), chain.ErrMalformed})
	}
	for _, field := range []string{"id", "subject", "bpm", "time", "author", "sig"} {
		tests = append(tests, struct {
			name string
			data []byte
			want string
			code chain.ErrorCode
		}{"no reading " + field, mutate(t, valid, r0(func(r map[string]any) { delete(r, field) })), fmt.Sprintf("%q is missing", field), chain.ErrMalformed})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := *full
			err := b.UnmarshalJSON(tt.data)
			if err == nil {
				t.Fatalf("accepted: %s", tt.data)
			}
			checkCode(t, err, tt.code)
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not mention %q", err, tt.want)
			}
			if !reflect.DeepEqual(&b, full) {
				t.Fatal("a failed decode changed the block")
			}
		})
	}
}

func TestReadingJSONUnencodable(t *testing.T) {
	for _, subject := range []string{strings.Repeat("a", chain.MaxSubjectLen+1), "bad\xffutf8"} {
		r := chain.Reading{Subject: subject, BPM: 70}
		if _, err := json.Marshal(r); !errors.Is(err, chain.ErrBadSubject) {
			t.Errorf("subject %q: err = %v, want bad subject", subject, err)
		}
		if _, err := json.Marshal(chain.Block{Readings: []chain.Reading{r}}); !errors.Is(err, chain.ErrBadSubject) {
			t.Errorf("block with subject %q: err = %v, want bad subject", subject, err)
		}
	}
}

// FuzzBlockJSON decodes arbitrary bytes: it must never panic, must refuse
// with a rule error, and whatever it accepts must encode to JSON that decodes
// to the identical block, and to a binary form that decodes to it too.
func FuzzBlockJSON(f *testing.F) {
	empty, full := jsonFixture(f)
	for _, b := range []*chain.Block{empty, full} {
		data := mustJSON(f, b)
		f.Add(data)
		f.Add(data[:len(data)/2])
		f.Add(bytes.Replace(data, []byte(`"readings":[`), []byte(`"readings":[null,`), 1))
	}
	f.Add([]byte(`{}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"height":1,"HEIGHT":2}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var b chain.Block
		if err := b.UnmarshalJSON(data); err != nil {
			requireRuleError(t, err)
			return
		}
		enc, err := json.Marshal(&b)
		if err != nil {
			t.Fatalf("decoded block does not encode: %v", err)
		}
		var again chain.Block
		if err := json.Unmarshal(enc, &again); err != nil {
			t.Fatalf("re-encoded block does not decode: %v\n%s", err, enc)
		}
		if !reflect.DeepEqual(&again, &b) {
			t.Fatalf("round trip changed the block:\n got %+v\nwant %+v", again, b)
		}
		if enc2 := mustJSON(t, &again); !bytes.Equal(enc2, enc) {
			t.Fatalf("JSON not stable:\n%s\n%s", enc, enc2)
		}
		bin, err := b.MarshalBinary()
		if err != nil {
			t.Fatalf("decoded block has no binary form: %v", err)
		}
		fromBin, err := chain.DecodeBlock(bin, chain.MaxReadingsLimit)
		if err != nil || !reflect.DeepEqual(fromBin, &b) {
			t.Fatalf("binary form decodes to another block (%v)", err)
		}
	})
}
