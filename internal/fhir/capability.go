package fhir

import (
	"fmt"
	"time"
)

// CapabilityStatement says what a FHIR server does: GET /fhir/metadata.
type CapabilityStatement struct {
	ResourceType   string          `json:"resourceType"`
	Status         string          `json:"status"`
	Date           string          `json:"date"`
	Publisher      string          `json:"publisher,omitempty"`
	Kind           string          `json:"kind"`
	Software       *Software       `json:"software,omitempty"`
	Implementation *Implementation `json:"implementation,omitempty"`
	FHIRVersion    string          `json:"fhirVersion"`
	Format         []string        `json:"format"`
	Rest           []Rest          `json:"rest"`
}

// Software names the server's software.
type Software struct {
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
}

// Implementation is the instance the statement describes.
type Implementation struct {
	Description string `json:"description"`
	URL         string `json:"url,omitempty"`
}

// Rest is the server's RESTful interface.
type Rest struct {
	Mode     string         `json:"mode"`
	Resource []RestResource `json:"resource"`
}

// RestResource is a resource type the server serves.
type RestResource struct {
	Type        string        `json:"type"`
	Profile     string        `json:"profile,omitempty"`
	Interaction []Interaction `json:"interaction"`
	SearchParam []SearchParam `json:"searchParam"`
}

// Interaction is an operation on a resource type: read, search-type.
type Interaction struct {
	Code string `json:"code"`
}

// SearchParam is a search parameter the server supports.
type SearchParam struct {
	Name          string `json:"name"`
	Definition    string `json:"definition,omitempty"`
	Type          string `json:"type"`
	Documentation string `json:"documentation,omitempty"`
}

// Capability returns the CapabilityStatement of a node's FHIR interface:
// base is its FHIR base URL (BaseURL), version the software's version and
// date when the statement was made (the node's start).
func Capability(base, version string, date time.Time) CapabilityStatement {
	return CapabilityStatement{
		ResourceType:   "CapabilityStatement",
		Status:         "active",
		Date:           Instant(date.UnixMilli()),
		Publisher:      "p2pchain",
		Kind:           "instance",
		Software:       &Software{Name: "p2pchain", Version: version},
		Implementation: &Implementation{Description: "p2pchain node: heart-rate readings of its ledger as Observations (read-only)", URL: base},
		FHIRVersion:    Version,
		Format:         []string{"json", ContentType},
		Rest: []Rest{{
			Mode: "server",
			Resource: []RestResource{{
				Type:        "Observation",
				Profile:     ProfileHeartRate,
				Interaction: []Interaction{{Code: "read"}, {Code: "search-type"}},
				SearchParam: []SearchParam{
					{Name: "subject", Definition: "http://hl7.org/fhir/SearchParameter/Observation-subject", Type: "reference",
						Documentation: "Required (or patient). The pseudonymous subject: subject=S, subject=Patient/S or subject:identifier=" + SystemSubject + "|S"},
					{Name: "patient", Definition: "http://hl7.org/fhir/SearchParameter/clinical-patient", Type: "reference",
						Documentation: "The same as subject, in its place: patient=S, patient=Patient/S or patient:identifier=" + SystemSubject + "|S"},
					{Name: "date", Definition: "http://hl7.org/fhir/SearchParameter/clinical-date", Type: "date",
						Documentation: "The reading's time; prefixes eq, ge, gt, le, lt; repeat for a range; UTC unless a zone is given. Sortable: _sort=date or _sort=-date"},
					{Name: "code", Definition: "http://hl7.org/fhir/SearchParameter/clinical-code", Type: "token",
						Documentation: "Every reading is LOINC 8867-4 (heart rate); another code matches nothing"},
					{Name: "category", Definition: "http://hl7.org/fhir/SearchParameter/Observation-category", Type: "token",
						Documentation: "Every reading is vital-signs; another category matches nothing"},
					{Name: "_count", Type: "number", Documentation: fmt.Sprintf("Page size, default %d, at most %d", DefaultCount, MaxCount)},
					// R4 has no element for the sorts a server supports:
					// _sort is listed as a parameter, as _count is, and
					// says its keys.
					{Name: "_sort", Type: "string",
						Documentation: "Sort by the reading's time: _sort=date (oldest first) or _sort=-date (newest first), equal times by id; one key, date only; with subject (required), any date, code and category, and paging by the next link"},
				},
			}},
		}},
	}
}
