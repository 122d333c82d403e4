//! Integration tests of OMOP ingest against a real SQLite metadata store and a local lake.

mod support;

mod cdm53;
mod fhir;
mod fhir_omop;
mod idempotency;
mod pseudonymization;
mod quarantine;
mod releases;
mod robustness;
mod tableschema;
