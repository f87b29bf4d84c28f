// Package fhir maps the ledger's heart-rate readings to HL7 FHIR R4
// (4.0.1) resources in JSON, and back for import. It depends on the
// standard library and package chain only, does no I/O but writing to the
// io.Writer or http.ResponseWriter it is given, and reads no clock: the
// caller passes the time.
//
// What it makes:
//
//   - ObservationOf: the Observation of one reading, given where the
//     reading is (a main-chain block, final or not, or pending);
//   - SearchBundle: a searchset Bundle of one page of a search, and
//     BundleWriter: a Bundle (collection or searchset) written entry by
//     entry, for exports of any size;
//   - Capability: the CapabilityStatement of a node (GET /fhir/metadata);
//   - OperationOutcome, WriteError: the answer for an *Error;
//   - ParseSearch: the parameters of GET /fhir/Observation;
//   - ParseBundle: the readings of a Bundle of heart-rate Observations.
//
// The mapping of a reading (docs/FHIR.md has it field by field):
//
//	id, identifier       the reading id (64 hex digits, a valid FHIR id);
//	                     identifier system urn:p2pchain:reading
//	status               final in a final block; preliminary otherwise,
//	                     with meta.tag (ledger-state) in-block or pending
//	category, code       vital-signs; LOINC 8867-4 Heart rate
//	valueQuantity        the BPM, "beats/minute", UCUM /min
//	effectiveDateTime    the reading's time, RFC 3339 UTC with milliseconds
//	subject              Reference{type Patient, identifier
//	                     urn:p2pchain:subject|S, display S}
//	device               Reference{type Device, identifier
//	                     urn:p2pchain:author|KEY}: the Ed25519 key that
//	                     signed it
//	issued, meta         the block's time; meta.source urn:p2pchain:block:HASH;
//	                     meta.profile the heart-rate profile
//	extension            block-hash, block-height and signature, under Base
//
// Together these carry every field of the reading (subject, BPM, time to
// the millisecond, author, signature), so a reader can rebuild it and check
// its signature and id without trusting the server.
//
// Why so: the subject is a pseudonym, not a Patient resource this node
// could serve, so it is a logical reference (by identifier), which R4
// allows; the author key is whoever's software signed the reading, which is
// closer to FHIR's device than to a performer (a person or organisation).
// Where the heart-rate profile cannot be met: its subject is a
// Reference(Patient) that a client cannot resolve here (there is no
// Patient/S to read), and the extensions are this project's own.
//
// Errors: the functions that read requests return an *Error, with the
// HTTP status and FHIR issue type to answer with; OperationOutcome turns
// any error into an OperationOutcome (unknown errors: 500, exception).
// ParseBundle returns one RowError per bad entry, and a RowError with
// Entry 0 for data that is not a Bundle it can read.
package fhir
