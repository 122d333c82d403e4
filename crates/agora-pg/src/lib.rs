//! Agora's PostgreSQL wire protocol front: `psql`, `psycopg`, JDBC and BI tools query a
//! data permit with no Agora-specific code, through the query service only.
//!
//! ```text
//!  startup: user, database = permit id, password = API token (agora_...) or a local
//!           account's password (cleartext: over TLS, or from a loopback peer only; or
//!           SCRAM-SHA-256 with --pg-scram, from anywhere)
//!     │  authenticate(Token) once (bad → 28P01), open(permit) once (unusable → the
//!     │  service's one NoPermit answer, whatever the reason), max connections per user
//!     ▼
//!  every statement: session commands and catalogue queries answered by the front (local.rs,
//!     │             from the session's permitted tables only); anything else:
//!     ▼
//!  authenticate(Token) again ─► open(Permit, Front::Postgres) ─► plan_bound(sql, params)
//!     ─► schema (Describe) ─► execute() ─► Answer ─► rows (text or binary) ─► CommandComplete
//! ```
//!
//! A `CancelRequest` (psql's Ctrl-C, `conn.cancel()`) with the key a connection was given at
//! startup stops that connection's running statement with 57014, as PostgreSQL does.
//!
//! A fresh session per statement means a revoked token or permit, a new opt-out or an
//! amendment takes effect on the connection's next statement. Errors carry the service's
//! SQLSTATE ([`agora_service::Error::sqlstate`]) and message.

mod auth;
mod cursor;
mod encode;
mod error;
mod handler;
mod local;
mod metadata;
mod params;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use agora_service::{Hub, QueryLimits};

/// How the PostgreSQL listener runs.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// TLS certificate chain and private key (PEM files). Without them the listener speaks
    /// plain TCP, and passwords are accepted from loopback clients only.
    pub tls: Option<TlsFiles>,
    /// Connections one user may have open at once (0: no limit). Default 8.
    pub max_connections_per_user: usize,
    /// Local accounts with a SCRAM verifier log in by SCRAM-SHA-256 instead of a cleartext
    /// password (tokens then go with any other user name). Default off.
    pub scram: bool,
}

impl Default for PgOptions {
    fn default() -> Self {
        Self {
            tls: None,
            max_connections_per_user: 8,
            scram: false,
        }
    }
}

/// PEM files of the listener's certificate and key.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The certificate chain, leaf first.
    pub cert: PathBuf,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// Why the listener could not run.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    /// The address could not be bound.
    #[error("cannot listen on {addr} for the PostgreSQL protocol: {error}")]
    Listen {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        error: std::io::Error,
    },
    /// The TLS certificate or key could not be used.
    #[error("the PostgreSQL listener's TLS configuration: {0}")]
    Tls(String),
    /// Accepting connections failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// What every connection shares.
pub(crate) struct Shared {
    pub(crate) hub: Hub,
    pub(crate) limits: QueryLimits,
    pub(crate) max_connections_per_user: usize,
    /// Whether local accounts log in by SCRAM.
    pub(crate) scram: bool,
    /// Open connections per principal.
    pub(crate) connections: Mutex<HashMap<String, usize>>,
    /// Each connection's cancel key (sent at startup) and the handle that interrupts its
    /// running statement when a `CancelRequest` names that key.
    pub(crate) cancels: Arc<pgwire::api::ConnectionManager>,
    pub(crate) cancel_keys: pgwire::api::RandomPidSecretKeyGenerator,
}

/// One connection's place among its user's; given back when dropped.
pub(crate) struct UserSlot {
    shared: Arc<Shared>,
    principal: String,
}

impl Shared {
    /// Counts a connection of `principal`, or `None` past the limit.
    pub(crate) fn connect(self: &Arc<Self>, principal: &str) -> Option<UserSlot> {
        let mut open = self.connections.lock().expect("connections poisoned");
        let count = open.entry(principal.to_owned()).or_default();
        if self.max_connections_per_user > 0 && *count >= self.max_connections_per_user {
            return None;
        }
        *count += 1;
        Some(UserSlot {
            shared: self.clone(),
            principal: principal.to_owned(),
        })
    }
}

impl Drop for UserSlot {
    fn drop(&mut self) {
        let mut open = self
            .shared
            .connections
            .lock()
            .expect("connections poisoned");
        if let Some(count) = open.get_mut(&self.principal) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.principal);
            }
        }
    }
}

/// The handlers of every connection.
struct Handlers {
    startup: Arc<auth::Startup>,
    queries: Arc<handler::Queries>,
    cancels: Arc<pgwire::api::ConnectionManager>,
}

impl pgwire::api::PgWireServerHandlers for Handlers {
    fn simple_query_handler(&self) -> Arc<impl pgwire::api::query::SimpleQueryHandler> {
        self.queries.clone()
    }

    fn extended_query_handler(&self) -> Arc<impl pgwire::api::query::ExtendedQueryHandler> {
        self.queries.clone()
    }

    fn startup_handler(&self) -> Arc<impl pgwire::api::auth::StartupHandler> {
        self.startup.clone()
    }

    fn cancel_handler(&self) -> Arc<impl pgwire::api::cancel::CancelHandler> {
        Arc::new(pgwire::api::cancel::DefaultCancelHandler::new(
            self.cancels.clone(),
        ))
    }
}

fn tls_acceptor(files: &TlsFiles) -> Result<tokio_rustls::TlsAcceptor, PgError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    use tokio_rustls::rustls;
    let certs = CertificateDer::pem_file_iter(&files.cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| PgError::Tls(format!("{}: {e}", files.cert.display())))?;
    if certs.is_empty() {
        return Err(PgError::Tls(format!(
            "{}: no certificate",
            files.cert.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| PgError::Tls(format!("{}: {e}", files.key.display())))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| PgError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| PgError::Tls(e.to_string()))?;
    config.alpn_protocols = vec![b"postgresql".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// Binds `addr`, calls `on_ready` with the bound address and whether TLS is on, and serves
/// the PostgreSQL protocol until `shutdown` completes; open connections are then closed.
pub async fn serve_until(
    hub: Hub,
    addr: SocketAddr,
    limits: QueryLimits,
    options: PgOptions,
    on_ready: impl FnOnce(SocketAddr, bool),
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), PgError> {
    let tls = options.tls.as_ref().map(tls_acceptor).transpose()?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|error| PgError::Listen { addr, error })?;
    let bound = listener.local_addr()?;
    if tls.is_none() && !bound.ip().is_loopback() {
        tracing::warn!(
            "the PostgreSQL listener has no TLS certificate: only clients on this machine \
             can log in (give --pg-tls-cert and --pg-tls-key)"
        );
    }
    on_ready(bound, tls.is_some());
    let shared = Arc::new(Shared {
        hub,
        limits,
        max_connections_per_user: options.max_connections_per_user,
        scram: options.scram,
        connections: Mutex::new(HashMap::new()),
        cancels: Arc::new(pgwire::api::ConnectionManager::new()),
        cancel_keys: pgwire::api::RandomPidSecretKeyGenerator::default(),
    });
    let handlers = Arc::new(Handlers {
        startup: Arc::new(auth::Startup::new(shared.clone())),
        queries: Arc::new(handler::Queries::new(shared.clone())),
        cancels: shared.cancels.clone(),
    });
    let mut connections = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => {
                let (socket, _) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors and the like: wait a little, go on.
                        tracing::warn!(error = %e, "PostgreSQL connection not accepted");
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let _ = socket.set_nodelay(true);
                let handlers = handlers.clone();
                let tls = tls.clone();
                connections.spawn(async move {
                    if let Err(e) = pgwire::tokio::process_socket(socket, tls, handlers).await {
                        tracing::debug!(error = %e, "PostgreSQL connection ended");
                    }
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    connections.shutdown().await;
    Ok(())
}

/// [`serve_until`], stopping at Ctrl-C or SIGTERM.
pub async fn serve(
    hub: Hub,
    addr: SocketAddr,
    limits: QueryLimits,
    options: PgOptions,
    on_ready: impl FnOnce(SocketAddr, bool),
) -> Result<(), PgError> {
    serve_until(hub, addr, limits, options, on_ready, shutdown_signal()).await
}

/// Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
