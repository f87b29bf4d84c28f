package fhir_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
	"github.com/p2pchain/p2pchain/internal/fhir"
)

// A reading in a final block as an Observation, and a search that the
// server refuses, as an OperationOutcome.
func ExampleObservationOf() {
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, ed25519.SeedSize))
	r, _ := chain.NewReading(key, "alice", 72, time.UnixMilli(1764547200000))
	block := &fhir.Place{Hash: chain.Hash{0xab, 0xcd}, Height: 42, Time: 1764547230000, Final: true}
	show(fhir.ObservationOf(&r, block))

	_, err := fhir.ParseSearch(url.Values{"subject": {"alice"}, "date": {"ap2025-12-01"}})
	outcome, status := fhir.OperationOutcome(err)
	fmt.Println(status)
	show(outcome)
	// Output:
	// {
	//   "resourceType": "Observation",
	//   "id": "b7e4a0fd7ab80aeb600814ffadf46f482f13548944228d1bea08745d57ccdbcb",
	//   "meta": {
	//     "lastUpdated": "2025-12-01T00:00:30.000Z",
	//     "source": "urn:p2pchain:block:abcd000000000000000000000000000000000000000000000000000000000000",
	//     "profile": [
	//       "http://hl7.org/fhir/StructureDefinition/heartrate"
	//     ],
	//     "tag": [
	//       {
	//         "system": "https://github.com/p2pchain/p2pchain/fhir/CodeSystem/ledger-state",
	//         "code": "final",
	//         "display": "in a final block"
	//       }
	//     ]
	//   },
	//   "extension": [
	//     {
	//       "url": "https://github.com/p2pchain/p2pchain/fhir/StructureDefinition/signature",
	//       "valueString": "f2268787642d32578dfb0462e710a2c28dbd7506dbd8bb2d596d23e6b22aa823337cf3d095dd47ed7dfd293590ab3e21849bc734cc0cf03f67bc2512b09ebd0b"
	//     },
	//     {
	//       "url": "https://github.com/p2pchain/p2pchain/fhir/StructureDefinition/block-hash",
	//       "valueString": "abcd000000000000000000000000000000000000000000000000000000000000"
	//     },
	//     {
	//       "url": "https://github.com/p2pchain/p2pchain/fhir/StructureDefinition/block-height",
	//       "valueUnsignedInt": 42
	//     }
	//   ],
	//   "identifier": [
	//     {
	//       "system": "urn:p2pchain:reading",
	//       "value": "b7e4a0fd7ab80aeb600814ffadf46f482f13548944228d1bea08745d57ccdbcb"
	//     }
	//   ],
	//   "status": "final",
	//   "category": [
	//     {
	//       "coding": [
	//         {
	//           "system": "http://terminology.hl7.org/CodeSystem/observation-category",
	//           "code": "vital-signs",
	//           "display": "Vital Signs"
	//         }
	//       ],
	//       "text": "Vital Signs"
	//     }
	//   ],
	//   "code": {
	//     "coding": [
	//       {
	//         "system": "http://loinc.org",
	//         "code": "8867-4",
	//         "display": "Heart rate"
	//       }
	//     ],
	//     "text": "Heart rate"
	//   },
	//   "subject": {
	//     "type": "Patient",
	//     "identifier": {
	//       "system": "urn:p2pchain:subject",
	//       "value": "alice"
	//     },
	//     "display": "alice"
	//   },
	//   "effectiveDateTime": "2025-12-01T00:00:00.000Z",
	//   "issued": "2025-12-01T00:00:30.000Z",
	//   "device": {
	//     "type": "Device",
	//     "identifier": {
	//       "system": "urn:p2pchain:author",
	//       "value": "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c"
	//     },
	//     "display": "p2pchain author key 8a88e3dd"
	//   },
	//   "valueQuantity": {
	//     "value": 72,
	//     "unit": "beats/minute",
	//     "system": "http://unitsofmeasure.org",
	//     "code": "/min"
	//   }
	// }
	// 400
	// {
	//   "resourceType": "OperationOutcome",
	//   "issue": [
	//     {
	//       "severity": "error",
	//       "code": "not-supported",
	//       "diagnostics": "date=ap2025-12-01: prefix ap is not supported (use eq, ge, gt, le or lt)"
	//     }
	//   ]
	// }
}

func show(v any) {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}
