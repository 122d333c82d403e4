//! The startup phase: password authentication against the query service.
//!
//! The password is an API token (`agora_...`) or session token (`agoras_...`), or the
//! password of a local account (then the front opens a hub session for the connection and
//! ends it when the connection closes). Cleartext passwords are accepted only over TLS or
//! from a loopback client, where they do not cross a network in clear. With SCRAM on
//! (`PgOptions::scram`), a local account whose password has a SCRAM verifier logs in by
//! SCRAM-SHA-256 instead, from anywhere: the password never crosses the network. The
//! mechanism follows the user name, as PostgreSQL's `pg_hba.conf` makes it: tokens go with
//! any user name that is not such an account.
//!
//! The database name is the permit id; the permit is opened once here, so that an unknown
//! or unusable permit ends the connection at once with the service's one answer for all
//! such cases (no existence leak).

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use agora_service::governance::scram;
use agora_service::{Authenticated, Credential, Front, Hub, PlannedQuery, Target};
use async_trait::async_trait;
use futures::sink::{Sink, SinkExt};
use pgwire::api::auth::{ServerParameterProvider, StartupHandler};
use pgwire::api::{ClientInfo, METADATA_DATABASE, METADATA_USER, PgWireConnectionState};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::startup::Authentication;
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};

use crate::error::{bad_credentials, fatal};
use crate::{Shared, UserSlot};

/// An authenticated connection, kept in the connection's extensions.
pub(crate) struct Connection {
    /// The credential, authenticated again before every statement.
    pub(crate) token: String,
    /// Who the credential named at startup.
    pub(crate) who: Authenticated,
    /// The permit id (the database name).
    pub(crate) permit: String,
    /// The user name the client gave.
    pub(crate) user: String,
    /// The permit's schemas (datasets), for `search_path`.
    pub(crate) search_path: String,
    /// A statement planned at `Describe`, run at the next `Execute` of the same portal.
    pub(crate) described: Mutex<Option<(String, PlannedQuery)>>,
    /// Open server-side cursors (`DECLARE`).
    pub(crate) cursors: crate::cursor::Cursors,
    /// A hub session the front opened for a local account's password: ended with the
    /// connection.
    own_session: Option<Hub>,
    _slot: UserSlot,
}

impl Drop for Connection {
    fn drop(&mut self) {
        if let Some(hub) = self.own_session.take() {
            let token = std::mem::take(&mut self.token);
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move {
                    if let Err(e) = hub.governance().revoke_session(&token).await {
                        tracing::warn!(error = %e, "a PostgreSQL connection's session not ended");
                    }
                });
            }
        }
    }
}

/// A SCRAM exchange in progress, in the connection's extensions.
struct Scram(Mutex<Option<ScramStep>>);

enum ScramStep {
    /// The mechanism was offered; the client's first message is awaited.
    Started(scram::Verifier),
    /// The server's challenge was sent; the client's proof is awaited.
    Challenged(scram::Exchange),
}

/// The startup handler.
pub(crate) struct Startup {
    shared: Arc<Shared>,
}

impl Startup {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    /// Checks the password and the permit; the connection's state on success.
    async fn login(&self, user: &str, database: &str, password: &str) -> PgWireResult<Connection> {
        let hub = &self.shared.hub;
        if password.starts_with("agora_") || password.starts_with("agoras_") {
            return self.open(user, database, password.to_owned(), None).await;
        }
        match hub.governance().authenticate_password(user, password).await {
            Ok(Some(_)) => {}
            Ok(None) => return Err(bad_credentials()),
            Err(e) => {
                // Throttled: the message says how long to wait, nothing about the account.
                return Err(fatal("28P01", e.to_string()));
            }
        }
        self.open_session(user, database).await
    }

    /// A hub session for a local account that proved its password, ended with the
    /// connection, and the connection on it.
    async fn open_session(&self, user: &str, database: &str) -> PgWireResult<Connection> {
        let hub = &self.shared.hub;
        let session = hub
            .governance()
            .create_session(user)
            .await
            .map_err(|e| fatal("28P01", e.to_string()))?;
        self.open(user, database, session.token, Some(hub.clone()))
            .await
    }

    /// Authenticates `token` and opens the permit `database`: the connection's state.
    async fn open(
        &self,
        user: &str,
        database: &str,
        token: String,
        own_session: Option<Hub>,
    ) -> PgWireResult<Connection> {
        let hub = &self.shared.hub;
        let who = match hub.query().authenticate(Credential::Token(&token)).await {
            Ok(who) => who,
            Err(agora_service::Error::Unauthenticated) => return Err(bad_credentials()),
            Err(e) => return Err(fatal(e.sqlstate(), crate::error::message(&e))),
        };
        if database.is_empty() {
            return Err(fatal(
                "3D000",
                "name the data permit to query as the database (dbname=pmt_...)",
            ));
        }
        let session = hub
            .query()
            .open(
                &who,
                Target::Permit {
                    id: database.to_owned(),
                },
                Front::Postgres,
                self.shared.limits.clone(),
            )
            .await
            .map_err(|e| fatal(e.sqlstate(), crate::error::message(&e)))?;
        let mut schemas: Vec<String> = Vec::new();
        for (name, _) in session.table_schemas() {
            let schema = name.split_once('.').map_or("public", |(s, _)| s).to_owned();
            if !schemas.contains(&schema) {
                schemas.push(schema);
            }
        }
        let slot = self.shared.connect(&who.principal().name).ok_or_else(|| {
            fatal(
                "53300",
                "too many connections for this user: close one and connect again",
            )
        })?;
        Ok(Connection {
            token,
            who,
            permit: database.to_owned(),
            user: user.to_owned(),
            search_path: schemas.join(", "),
            described: Mutex::new(None),
            cursors: Default::default(),
            own_session,
            _slot: slot,
        })
    }
}

/// The parameters reported at startup.
struct Parameters;

impl ServerParameterProvider for Parameters {
    fn server_parameters<C>(&self, client: &C) -> Option<HashMap<String, String>>
    where
        C: ClientInfo,
    {
        let mut p = HashMap::new();
        let search_path = client
            .session_extensions()
            .get::<Connection>()
            .map(|c| c.search_path.clone())
            .unwrap_or_default();
        for (k, v) in [
            ("server_version", crate::local::SERVER_VERSION),
            ("server_encoding", "UTF8"),
            ("client_encoding", "UTF8"),
            ("DateStyle", "ISO, YMD"),
            ("IntervalStyle", "postgres"),
            ("TimeZone", "Etc/UTC"),
            ("integer_datetimes", "on"),
            ("standard_conforming_strings", "on"),
            ("is_superuser", "off"),
            ("default_transaction_read_only", "on"),
            ("in_hot_standby", "off"),
            ("search_path", &search_path),
        ] {
            p.insert(k.to_owned(), v.to_owned());
        }
        if let Some(name) = client.metadata().get("application_name") {
            p.insert("application_name".into(), name.clone());
        }
        if let Some(user) = client.metadata().get(METADATA_USER) {
            p.insert("session_authorization".into(), user.clone());
        }
        Some(p)
    }
}

#[async_trait]
impl StartupHandler for Startup {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        match message {
            PgWireFrontendMessage::Startup(ref startup) => {
                pgwire::api::auth::protocol_negotiation(client, startup).await?;
                pgwire::api::auth::save_startup_parameters_to_metadata(client, startup);
                if self.shared.scram {
                    let user = client
                        .metadata()
                        .get(METADATA_USER)
                        .cloned()
                        .unwrap_or_default();
                    let verifier = match self.shared.hub.governance().scram_verifier(&user).await {
                        Ok(v) => v,
                        Err(e) => return Err(fatal("28P01", e.to_string())),
                    };
                    if let Some(verifier) = verifier {
                        client
                            .session_extensions()
                            .insert(Scram(Mutex::new(Some(ScramStep::Started(verifier)))));
                        client
                            .send(PgWireBackendMessage::Authentication(Authentication::SASL(
                                vec![scram::MECHANISM.to_owned()],
                            )))
                            .await?;
                        client.set_state(PgWireConnectionState::AuthenticationInProgress);
                        return Ok(());
                    }
                }
                if !client.is_secure() && !client.socket_addr().ip().is_loopback() {
                    return Err(fatal(
                        "28000",
                        "this server takes passwords over TLS only: connect with \
                         sslmode=require (or from the hub's own machine)",
                    ));
                }
                client
                    .send(PgWireBackendMessage::Authentication(
                        Authentication::CleartextPassword,
                    ))
                    .await?;
                client.set_state(PgWireConnectionState::AuthenticationInProgress);
                Ok(())
            }
            PgWireFrontendMessage::PasswordMessageFamily(message) => {
                let user = client
                    .metadata()
                    .get(METADATA_USER)
                    .cloned()
                    .unwrap_or_default();
                let database = client
                    .metadata()
                    .get(METADATA_DATABASE)
                    .cloned()
                    .unwrap_or_default();
                let connection = match client.session_extensions().get::<Scram>() {
                    Some(scram) => {
                        let step = scram.0.lock().expect("scram poisoned").take();
                        match step {
                            Some(ScramStep::Started(verifier)) => {
                                let first = message.into_sasl_initial_response()?;
                                if first.auth_method != scram::MECHANISM {
                                    return Err(fatal(
                                        "28000",
                                        "only SCRAM-SHA-256 is offered (no channel binding)",
                                    ));
                                }
                                let data = first.data.unwrap_or_default();
                                let text = std::str::from_utf8(&data).unwrap_or_default();
                                let (exchange, server_first) = scram::start(verifier, text)
                                    .map_err(|e| fatal("28000", e.to_string()))?;
                                *scram.0.lock().expect("scram poisoned") =
                                    Some(ScramStep::Challenged(exchange));
                                client
                                    .send(PgWireBackendMessage::Authentication(
                                        Authentication::SASLContinue(server_first.into()),
                                    ))
                                    .await?;
                                return Ok(());
                            }
                            Some(ScramStep::Challenged(exchange)) => {
                                let last = message.into_sasl_response()?;
                                let text = std::str::from_utf8(&last.data).unwrap_or_default();
                                let proved = exchange.finish(text);
                                let governance = self.shared.hub.governance();
                                let principal = governance
                                    .scram_result(&user, proved.is_ok())
                                    .await
                                    .map_err(|e| fatal("28P01", e.to_string()))?;
                                let (Ok(server_final), Some(_)) = (proved, principal) else {
                                    return Err(bad_credentials());
                                };
                                client
                                    .feed(PgWireBackendMessage::Authentication(
                                        Authentication::SASLFinal(server_final.into()),
                                    ))
                                    .await?;
                                self.open_session(&user, &database).await?
                            }
                            None => return Err(bad_credentials()),
                        }
                    }
                    None => {
                        let password = message.into_password()?.password;
                        self.login(&user, &database, &password).await?
                    }
                };
                client.session_extensions().insert(connection);
                // The key a CancelRequest must name (sent with the startup answer).
                let (pid, key) =
                    pgwire::api::PidSecretKeyGenerator::generate(&self.shared.cancel_keys, client);
                client.set_pid_and_secret_key(pid, key.clone());
                let (handle, guard) = self.shared.cancels.register(pid, key);
                client.session_extensions().insert(handle);
                client.session_extensions().insert(guard);
                pgwire::api::auth::finish_authentication(client, &Parameters).await
            }
            _ => Ok(()),
        }
    }
}
