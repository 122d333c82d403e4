//! Integration tests of agora-fhir: the official SQL-on-FHIR v2 conformance suite, and the
//! crate's promise that errors never carry resource values.

mod conformance;
mod privacy;
