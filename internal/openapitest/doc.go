// Package openapitest reads the management API's OpenAPI document for the
// tests: its operations, and a small JSON Schema check (type, properties,
// required, additionalProperties, items, enum, pattern, lengths, bounds,
// date-time and uuid formats, $ref) of example and real bodies against it.
// Test helper only.
package openapitest
