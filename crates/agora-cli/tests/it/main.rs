//! End-to-end tests of the `agora` binary: real processes, a real SQLite store, a real
//! local lake, a real HTTP client.

mod support;

mod attacks;
mod audit;
mod catalogue;
mod cli;
mod crash;
mod fhir;
mod fhir_omop;
mod flight;
mod governance;
mod governance_cli;
mod http;
mod limits;
mod oidc;
mod pg;
mod postgres;
mod query_suite;
