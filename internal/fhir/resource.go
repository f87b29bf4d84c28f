package fhir

import (
	"encoding/hex"
	"strconv"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
)

// Version is the FHIR version of every resource this package makes.
const Version = "4.0.1"

// ContentType is the media type of FHIR's JSON format.
const ContentType = "application/fhir+json"

// The code systems, naming systems and profiles of the mapping (see doc.go
// and docs/FHIR.md).
const (
	SystemObservationCategory = "http://terminology.hl7.org/CodeSystem/observation-category"
	SystemLOINC               = "http://loinc.org"
	SystemUCUM                = "http://unitsofmeasure.org"
	ProfileHeartRate          = "http://hl7.org/fhir/StructureDefinition/heartrate"

	LOINCHeartRate = "8867-4" // LOINC: Heart rate
	UnitPerMinute  = "/min"   // UCUM code of beats per minute

	// SystemSubject names the pseudonymous subjects of a p2pchain ledger.
	SystemSubject = "urn:p2pchain:subject"
	// SystemReading names readings by their id (64 hex digits).
	SystemReading = "urn:p2pchain:reading"
	// SystemAuthor names the Ed25519 keys (64 hex digits) that sign readings.
	SystemAuthor = "urn:p2pchain:author"

	// Base is where this package's own extensions and code systems are
	// named (their definitions are in docs/FHIR.md).
	Base = "https://github.com/p2pchain/p2pchain/fhir"
	// ExtBlockHash: the hash of the block holding the reading (valueString,
	// 64 hex digits).
	ExtBlockHash = Base + "/StructureDefinition/block-hash"
	// ExtBlockHeight: that block's height (valueUnsignedInt).
	ExtBlockHeight = Base + "/StructureDefinition/block-height"
	// ExtSignature: the reading's Ed25519 signature (valueString, 128 hex
	// digits), so that the Observation can be checked against its author.
	ExtSignature = Base + "/StructureDefinition/signature"
	// SystemLedgerState is the code system of the meta.tag that says where
	// a reading stands on the ledger: StatePending, StateInBlock, StateFinal.
	SystemLedgerState = Base + "/CodeSystem/ledger-state"
)

// The codes of SystemLedgerState.
const (
	StatePending = "pending"  // waiting to be put in a block (status preliminary)
	StateInBlock = "in-block" // in a main-chain block that is not final yet (status preliminary)
	StateFinal   = "final"    // in a final block: it never leaves the chain (status final)
)

// Observation is the FHIR R4 Observation of one reading. The fields are
// those the mapping uses, in the order of the FHIR specification.
type Observation struct {
	ResourceType      string            `json:"resourceType"`
	ID                string            `json:"id,omitempty"`
	Meta              *Meta             `json:"meta,omitempty"`
	Extension         []Extension       `json:"extension,omitempty"`
	Identifier        []Identifier      `json:"identifier,omitempty"`
	Status            string            `json:"status"`
	Category          []CodeableConcept `json:"category,omitempty"`
	Code              CodeableConcept   `json:"code"`
	Subject           *Reference        `json:"subject,omitempty"`
	EffectiveDateTime string            `json:"effectiveDateTime,omitempty"`
	Issued            string            `json:"issued,omitempty"`
	Device            *Reference        `json:"device,omitempty"`
	ValueQuantity     *Quantity         `json:"valueQuantity,omitempty"`
}

// Meta is a resource's metadata.
type Meta struct {
	LastUpdated string   `json:"lastUpdated,omitempty"`
	Source      string   `json:"source,omitempty"`
	Profile     []string `json:"profile,omitempty"`
	Tag         []Coding `json:"tag,omitempty"`
}

// Extension is an extension with one of the value types the mapping uses.
type Extension struct {
	URL              string  `json:"url"`
	ValueString      string  `json:"valueString,omitempty"`
	ValueUnsignedInt *uint64 `json:"valueUnsignedInt,omitempty"`
}

// Identifier is a business identifier: a value in a naming system.
type Identifier struct {
	System string `json:"system,omitempty"`
	Value  string `json:"value,omitempty"`
}

// Coding is a code of a code system.
type Coding struct {
	System  string `json:"system,omitempty"`
	Code    string `json:"code,omitempty"`
	Display string `json:"display,omitempty"`
}

// CodeableConcept is a concept given by codings and text.
type CodeableConcept struct {
	Coding []Coding `json:"coding,omitempty"`
	Text   string   `json:"text,omitempty"`
}

// Reference refers to another resource, here by its business identifier
// (a logical reference: p2pchain serves no Patient or Device resources).
type Reference struct {
	Reference  string      `json:"reference,omitempty"`
	Type       string      `json:"type,omitempty"`
	Identifier *Identifier `json:"identifier,omitempty"`
	Display    string      `json:"display,omitempty"`
}

// Quantity is a measured amount.
type Quantity struct {
	Value  float64 `json:"value"`
	Unit   string  `json:"unit,omitempty"`
	System string  `json:"system,omitempty"`
	Code   string  `json:"code,omitempty"`
}

// Place says where a reading is on the main chain: nil for a pending
// reading.
type Place struct {
	Hash   chain.Hash // the block's hash
	Height uint64     // its height
	Time   int64      // its time, Unix milliseconds
	Final  bool       // the block is at or below the chain's final height
}

// ObservationOf returns the Observation of reading r, which is in the main
// chain at in, or pending when in is nil. It does no I/O and reads no clock.
func ObservationOf(r *chain.Reading, in *Place) Observation {
	id := r.ID().String()
	o := Observation{
		ResourceType: "Observation",
		ID:           id,
		Meta:         &Meta{Profile: []string{ProfileHeartRate}},
		Identifier:   []Identifier{{System: SystemReading, Value: id}},
		Category: []CodeableConcept{{
			Coding: []Coding{{System: SystemObservationCategory, Code: "vital-signs", Display: "Vital Signs"}},
			Text:   "Vital Signs",
		}},
		Code: CodeableConcept{
			Coding: []Coding{{System: SystemLOINC, Code: LOINCHeartRate, Display: "Heart rate"}},
			Text:   "Heart rate",
		},
		Subject: &Reference{
			Type:       "Patient",
			Identifier: &Identifier{System: SystemSubject, Value: r.Subject},
			Display:    r.Subject,
		},
		EffectiveDateTime: Instant(r.Time),
		Device: &Reference{
			Type:       "Device",
			Identifier: &Identifier{System: SystemAuthor, Value: hex.EncodeToString(r.Author[:])},
			Display:    "p2pchain author key " + hex.EncodeToString(r.Author[:4]),
		},
		ValueQuantity: &Quantity{Value: float64(r.BPM), Unit: "beats/minute", System: SystemUCUM, Code: UnitPerMinute},
		Extension:     []Extension{{URL: ExtSignature, ValueString: hex.EncodeToString(r.Sig[:])}},
	}
	state := StatePending
	o.Status = "preliminary"
	o.Meta.LastUpdated = Instant(r.Time)
	if in != nil {
		state = StateInBlock
		if in.Final {
			state, o.Status = StateFinal, "final"
		}
		height := Extension{URL: ExtBlockHeight, ValueUnsignedInt: &in.Height}
		if in.Height > maxUnsignedInt { // past FHIR's unsignedInt: in decimal
			height = Extension{URL: ExtBlockHeight, ValueString: strconv.FormatUint(in.Height, 10)}
		}
		o.Extension = append(o.Extension, Extension{URL: ExtBlockHash, ValueString: in.Hash.String()}, height)
		o.Meta.LastUpdated = Instant(in.Time)
		o.Meta.Source = "urn:p2pchain:block:" + in.Hash.String()
		o.Issued = Instant(in.Time)
	}
	o.Meta.Tag = []Coding{{System: SystemLedgerState, Code: state, Display: stateDisplay[state]}}
	return o
}

var stateDisplay = map[string]string{
	StatePending: "pending: not in a block yet",
	StateInBlock: "in a main-chain block that is not final yet",
	StateFinal:   "in a final block",
}

// Instant formats a time in Unix milliseconds as FHIR's instant and
// dateTime take it: RFC 3339 in UTC with milliseconds.
func Instant(ms int64) string {
	return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z07:00")
}

// maxUnsignedInt is the largest value of FHIR's unsignedInt.
const maxUnsignedInt = 1<<31 - 1
