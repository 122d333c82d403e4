//! The query service end to end on the Synthea27Nj OMOP fixture (read from `../shared`):
//! sessions only through `open`, plan before execute, streamed answers under limits, and an
//! access event for every answer, refusal and failure.

mod attacks;
mod audit;
mod disclosure;
mod exports;
mod hardening;
mod service;
mod support;
