//! Agora's HTTP API: a front of the query service. It parses requests, authenticates the
//! caller (`api::auth::Caller`: bearer API or session token, or the session cookie), calls
//! `agora_service` (queries, catalogue, governance) and shapes JSON, CSV or HTML answers.
//!
//! ```text
//! request ─► router (every route with its OpenAPI description, api::Api::route)
//!              ├─ /health, /api/v1/datasets…, /api/v1/sql, /api/v1/catalogue…   (http)
//!              ├─ /api/v1/auth…, users, projects, permits, registry, opt-out     (api/)
//!              └─ /auth/oidc/login, /auth/oidc/callback (agora_auth::SignIns)   (oidc)
//!          ─► agora_service::{Hub, QueryService} ─► Answer / governance result
//!          ─► status_for(ErrorKind): the one mapping to HTTP statuses
//! ```
//!
//! Not here: data access (only through `agora-service`), governance decisions (the store's),
//! the OpenID Connect protocol (`agora-auth`), command-line arguments (the `agora` binary,
//! which builds [`ApiOptions`] and calls [`serve`]).
//!
//! ```no_run
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! let hub = agora_service::Hub::open(&agora_core::DataDir::new("./agora-data")).await?;
//! let options = agora_http::ApiOptions {
//!     public_rate_limit: 60,
//!     ..Default::default()
//! };
//! let addr = "127.0.0.1:8080".parse()?;
//! agora_http::serve(hub, addr, Default::default(), options, |a| println!("on {a}")).await?;
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

mod api;
pub mod format;
mod http;
mod listen;
mod maintenance;
mod oidc;
#[cfg(test)]
mod testing;

pub use http::{ApiOptions, ServeError, router, serve};
