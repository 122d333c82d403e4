//! End-to-end tests of the `agora` binary: real processes, a real SQLite store, a real
//! local lake, a real HTTP client.

mod support;

mod cli;
mod crash;
mod fhir;
mod fhir_omop;
mod http;
mod query_suite;
