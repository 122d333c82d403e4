//! The Arrow Flight SQL front: researchers' own tools (Python and R through ADBC, the
//! Flight SQL JDBC/ODBC drivers, BI tools) query their data permit with no Agora-specific
//! code, and results stream as Arrow record batches, never converted to rows or JSON.
//!
//! Like every front it reaches data only through the query service:
//!
//! ```text
//!  GetFlightInfo(statement | prepared statement)       DoGet(ticket)
//!   bearer token ─► authenticate                         same principal? ─► execute()
//!   x-agora-permit ─► open(Target::Permit) ─► plan        (access event durable first)
//!   ─► schema + one-use ticket (the planned statement)   ─► Arrow batches, as they come
//! ```
//!
//! * **Who.** Every call carries `authorization: Bearer <token>` (an API token, or the
//!   session token a `Handshake` with `Basic login:password` returns), checked on every
//!   call: a revoked token or ended session loses access at once, even on an open channel.
//! * **Which permit.** The `x-agora-permit` header names it (ADBC:
//!   `adbc.flight.sql.rpc.call_header.x-agora-permit`). Each statement opens a new session
//!   on the permit, so an opt-out, a revocation or an amendment recorded meanwhile applies
//!   to the next statement, never half of one.
//! * **Metadata.** `GetCatalogs`, `GetDbSchemas`, `GetTables` (with each table's Arrow
//!   schema) and `GetTableTypes` describe exactly the permit's tables and columns: catalog
//!   `agora`, one schema per permitted dataset. `GetSqlInfo` describes the server.
//! * **Prepared statements** with parameters (`$1`… or `?`): the values a client binds
//!   with `DoPut` are bound into the statement by the query service
//!   ([`agora_service::QuerySession::plan_bound`]), so the access record holds what ran.
//! * **Tickets** are random, single-use, bound to the principal that planned them, and
//!   expire; a planned statement holds its principal's running-statement slot until then.

#![warn(missing_docs)]

mod convert;
mod metadata;
mod state;

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use agora_core::{ErrorKind, HasKind};
use agora_service::{
    Authenticated, Credential, Error as ServiceError, Front, Hub, QueryLimits, QuerySession, Target,
};
use arrow::datatypes::Schema;
use arrow::ipc::writer::IpcWriteOptions;
use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_server::FlightServiceServer;
use arrow_flight::sql::server::{FlightSqlService, PeekableFlightDataStream};
use arrow_flight::sql::{
    ActionClosePreparedStatementRequest, ActionCreatePreparedStatementRequest,
    ActionCreatePreparedStatementResult, Any, CommandGetCatalogs, CommandGetDbSchemas,
    CommandGetSqlInfo, CommandGetTableTypes, CommandGetTables, CommandPreparedStatementQuery,
    CommandStatementQuery, DoPutPreparedStatementResult, ProstMessageExt, SqlInfo,
    TicketStatementQuery,
};
use arrow_flight::{
    Action, FlightDescriptor, FlightEndpoint, FlightInfo, HandshakeRequest, HandshakeResponse,
    IpcMessage, SchemaAsIpc, Ticket,
};
use base64::Engine;
use futures::{Stream, StreamExt, TryStreamExt};
use prost::Message;
use tonic::metadata::MetadataValue;
use tonic::{Request, Response, Status, Streaming};

use crate::state::{Handle, Pending, Prepared, State};

/// The header naming the data permit a call works under.
pub const PERMIT_HEADER: &str = "x-agora-permit";

/// The header of a `DoGet` answer naming the disclosure profile its cells passed.
pub const DISCLOSURE_PROFILE_HEADER: &str = "x-agora-disclosure-profile";

/// The headers of a `DoGet` answer saying what rules applied and how to get more out of
/// the data (one per note).
pub const DISCLOSURE_NOTE_HEADER: &str = "x-agora-disclosure-note";

const NO_PERMIT_HEADER: &str = "name the data permit in the x-agora-permit header \
     (ADBC: db_kwargs={\"adbc.flight.sql.rpc.call_header.x-agora-permit\": \"<permit id>\"})";

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {error}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The operating system's error.
        error: std::io::Error,
    },
    /// The gRPC server failed.
    #[error("the Flight SQL server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// Binds `addr`, calls `on_ready` with the bound address, and serves Flight SQL until
/// `shutdown` completes. Every statement runs under `limits`.
pub async fn serve(
    hub: Hub,
    addr: SocketAddr,
    limits: QueryLimits,
    on_ready: impl FnOnce(SocketAddr),
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), ServeError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|error| ServeError::Listen { addr, error })?;
    let bound = listener
        .local_addr()
        .map_err(|error| ServeError::Listen { addr, error })?;
    on_ready(bound);
    let service = FlightServiceServer::new(FlightSqlFront::new(hub, limits))
        // Parameters and answers are Arrow batches: allow more than tonic's 4 MiB default.
        .max_decoding_message_size(64 << 20)
        .max_encoding_message_size(64 << 20);
    // Small replies (a FlightInfo, a one-row answer) must not wait for the client's delayed
    // ACK: without TCP_NODELAY every call paid ~40 ms (Nagle; tonic sets it only on the
    // listeners it binds itself).
    let incoming = tokio_stream::StreamExt::map(
        tokio_stream::wrappers::TcpListenerStream::new(listener),
        |accepted| {
            accepted.inspect(|socket| {
                let _ = socket.set_nodelay(true);
            })
        },
    );
    tonic::transport::Server::builder()
        .add_service(service)
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await?;
    Ok(())
}

/// The Flight SQL service over one hub.
#[derive(Clone)]
pub struct FlightSqlFront {
    hub: Hub,
    limits: QueryLimits,
    state: Arc<State>,
}

impl std::fmt::Debug for FlightSqlFront {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlightSqlFront").finish_non_exhaustive()
    }
}

type ServiceResult<T> = Result<T, Status>;

/// A service error as a gRPC status. Messages never carry data values; an unknown
/// credential and a refused one are told apart only as far as the service does.
fn status(e: ServiceError) -> Status {
    let message = e.to_string();
    if matches!(e, ServiceError::Unauthenticated) {
        return Status::unauthenticated(message);
    }
    match e.kind() {
        ErrorKind::InvalidInput => Status::invalid_argument(message),
        ErrorKind::NotFound => Status::not_found(message),
        ErrorKind::PermissionDenied => Status::permission_denied(message),
        ErrorKind::Conflict => Status::failed_precondition(message),
        ErrorKind::ResourceExhausted => Status::resource_exhausted(message),
        ErrorKind::Unavailable => Status::unavailable(message),
        ErrorKind::Internal => {
            tracing::error!(error = %message, "Flight SQL call failed");
            Status::internal("internal error (details are in the hub's log)")
        }
    }
}

fn header<'r, T>(request: &'r Request<T>, name: &str) -> Option<&'r str> {
    request.metadata().get(name).and_then(|v| v.to_str().ok())
}

/// The permit a call names (its `x-agora-permit` header).
fn permit_of<T>(request: &Request<T>) -> ServiceResult<String> {
    header(request, PERMIT_HEADER)
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| Status::invalid_argument(NO_PERMIT_HEADER))
}

impl FlightSqlFront {
    /// A service answering from `hub` under `limits`.
    pub fn new(hub: Hub, limits: QueryLimits) -> Self {
        Self {
            hub,
            limits,
            state: Arc::new(State::default()),
        }
    }

    /// The caller, from the bearer token every call carries.
    async fn caller<T>(&self, request: &Request<T>) -> ServiceResult<Authenticated> {
        let token = header(request, "authorization")
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .ok_or_else(|| {
                Status::unauthenticated(
                    "authentication required: send `authorization: Bearer <API token>`, \
                     or log in with a Handshake (Basic login:password)",
                )
            })?;
        self.hub
            .query()
            .authenticate(Credential::Token(token.trim()))
            .await
            .map_err(status)
    }

    /// A new session on the caller's permit (named by the permit header).
    async fn session<T>(
        &self,
        request: &Request<T>,
    ) -> ServiceResult<(Authenticated, QuerySession)> {
        let who = self.caller(request).await?;
        // Expired tickets give their running-statement slots back before this one plans.
        self.state.sweep();
        let session = self.open(&who, permit_of(request)?).await?;
        Ok((who, session))
    }

    /// A session of `who` on `permit`, which must be usable by them now.
    async fn open(&self, who: &Authenticated, permit: String) -> ServiceResult<QuerySession> {
        self.hub
            .query()
            .open(
                who,
                Target::Permit { id: permit },
                Front::FlightSql,
                self.limits.clone(),
            )
            .await
            .map_err(status)
    }

    /// Plans `sql` with `params` and answers the flight that will run it: its schema and a
    /// single-use ticket.
    async fn plan_flight(
        &self,
        who: &Authenticated,
        permit: String,
        session: &QuerySession,
        sql: &str,
        params: &[agora_service::Parameter],
        descriptor: FlightDescriptor,
    ) -> ServiceResult<Response<FlightInfo>> {
        let planned = session.plan_bound(sql, params).await.map_err(status)?;
        let schema = planned.schema().clone();
        let pending = Pending::new(
            who.principal().name.clone(),
            permit,
            sql.to_owned(),
            params.to_vec(),
            planned,
        );
        let handle = self.state.add_pending(pending);
        let ticket = TicketStatementQuery {
            statement_handle: handle.to_bytes().into(),
        };
        let endpoint =
            FlightEndpoint::new().with_ticket(Ticket::new(ticket.as_any().encode_to_vec()));
        let info = FlightInfo::new()
            .try_with_schema(&schema)
            .map_err(|e| Status::internal(format!("cannot encode the answer's schema: {e}")))?
            .with_descriptor(descriptor)
            .with_endpoint(endpoint)
            .with_ordered(true);
        Ok(Response::new(info))
    }
}

/// A metadata answer (one batch) as a `DoGet` stream.
fn one_batch(
    schema: Arc<Schema>,
    batch: Result<arrow::array::RecordBatch, FlightError>,
) -> Pin<Box<dyn Stream<Item = Result<arrow_flight::FlightData, Status>> + Send>> {
    let stream = FlightDataEncoderBuilder::new()
        .with_schema(schema)
        .build(futures::stream::once(async move { batch }))
        .map_err(Status::from);
    Box::pin(stream)
}

/// The flight of a metadata command: its schema, and a ticket that is the command itself.
fn metadata_flight(
    command: impl ProstMessageExt,
    schema: &Schema,
    descriptor: FlightDescriptor,
) -> ServiceResult<Response<FlightInfo>> {
    let ticket = Ticket::new(command.as_any().encode_to_vec());
    let info = FlightInfo::new()
        .try_with_schema(schema)
        .map_err(|e| Status::internal(format!("cannot encode a schema: {e}")))?
        .with_endpoint(FlightEndpoint::new().with_ticket(ticket))
        .with_descriptor(descriptor);
    Ok(Response::new(info))
}

fn schema_bytes(schema: &Schema) -> ServiceResult<prost::bytes::Bytes> {
    let IpcMessage(bytes) = SchemaAsIpc::new(schema, &IpcWriteOptions::default())
        .try_into()
        .map_err(|e: arrow::error::ArrowError| {
            Status::internal(format!("cannot encode a schema: {e}"))
        })?;
    Ok(bytes)
}

/// The one answer for a ticket or prepared statement that is unknown, expired, or not the
/// caller's (which of these is not said).
fn unknown_handle() -> Status {
    Status::invalid_argument("unknown or expired handle: plan the statement again")
}

fn handle_of(bytes: &[u8]) -> ServiceResult<Handle> {
    Handle::from_bytes(bytes).ok_or_else(unknown_handle)
}

#[tonic::async_trait]
impl FlightSqlService for FlightSqlFront {
    type FlightService = FlightSqlFront;

    /// `Basic login:password` for a local account opens a session whose token is returned
    /// (as the payload and as `authorization: Bearer …`); an API token as the password
    /// (any login) is checked and returned as is.
    async fn do_handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> ServiceResult<
        Response<Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send>>>,
    > {
        const BASIC: &str = "log in with `authorization: Basic base64(login:password)`, \
             or send `authorization: Bearer <API token>` on every call";
        let basic = header(&request, "authorization")
            .and_then(|v| {
                v.strip_prefix("Basic ")
                    .or_else(|| v.strip_prefix("basic "))
            })
            .ok_or_else(|| Status::unauthenticated(BASIC))?;
        // Clients differ on padding (Go's flight client sends none).
        let lenient = base64::engine::GeneralPurpose::new(
            &base64::alphabet::STANDARD,
            base64::engine::GeneralPurposeConfig::new()
                .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
        );
        let decoded = lenient
            .decode(basic.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| Status::invalid_argument(BASIC))?;
        let (login, password) = decoded
            .split_once(':')
            .ok_or_else(|| Status::invalid_argument(BASIC))?;
        let token = if password.starts_with("agora_") {
            self.hub
                .query()
                .authenticate(Credential::Token(password))
                .await
                .map_err(status)?;
            password.to_owned()
        } else {
            let governance = self.hub.governance();
            let principal = governance
                .authenticate_password(login, password)
                .await
                .map_err(|e| status(ServiceError::Store(e)))?
                .ok_or_else(|| status(ServiceError::Unauthenticated))?;
            governance
                .create_session(&principal.name)
                .await
                .map_err(|e| status(ServiceError::Store(e)))?
                .token
        };
        let bearer = MetadataValue::try_from(format!("Bearer {token}"))
            .map_err(|_| Status::internal("a token is not a valid header value"))?;
        let answer = HandshakeResponse {
            protocol_version: 0,
            payload: token.into_bytes().into(),
        };
        let mut response: Response<Pin<Box<dyn Stream<Item = _> + Send>>> =
            Response::new(Box::pin(futures::stream::iter([Ok(answer)])));
        response.metadata_mut().insert("authorization", bearer);
        Ok(response)
    }

    async fn get_flight_info_statement(
        &self,
        query: CommandStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> ServiceResult<Response<FlightInfo>> {
        let (who, session) = self.session(&request).await?;
        let permit = permit_of(&request)?;
        self.plan_flight(
            &who,
            permit,
            &session,
            &query.query,
            &[],
            request.into_inner(),
        )
        .await
    }

    async fn get_flight_info_prepared_statement(
        &self,
        command: CommandPreparedStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> ServiceResult<Response<FlightInfo>> {
        let (who, session) = self.session(&request).await?;
        let handle = handle_of(&command.prepared_statement_handle)?;
        let (sql, params) = self
            .state
            .prepared(&handle, &who.principal().name)
            .ok_or_else(unknown_handle)?;
        let permit = permit_of(&request)?;
        self.plan_flight(&who, permit, &session, &sql, &params, request.into_inner())
            .await
    }

    async fn do_get_statement(
        &self,
        ticket: TicketStatementQuery,
        request: Request<Ticket>,
    ) -> ServiceResult<
        Response<<Self as arrow_flight::flight_service_server::FlightService>::DoGetStream>,
    > {
        let who = self.caller(&request).await?;
        let handle = handle_of(&ticket.statement_handle)?;
        let pending = self
            .state
            .take_pending(&handle, &who.principal().name)
            .ok_or_else(unknown_handle)?;
        // Planned again on a fresh session: a revocation, expiry, amendment or opt-out
        // recorded since `GetFlightInfo` applies to the answer. The first plan's running
        // slot is given back first.
        let schema = pending.planned.schema().clone();
        drop(pending.planned);
        let session = self.open(&who, pending.permit).await?;
        let planned = session
            .plan_bound(&pending.sql, &pending.params)
            .await
            .map_err(status)?;
        if planned.schema() != &schema {
            return Err(Status::failed_precondition(
                "the permit changed since the statement was planned: plan it again",
            ));
        }
        let answer = planned.execute().await.map_err(status)?;
        let disclosure = answer.disclosure().cloned();
        let schema = answer.schema().clone();
        let batches = answer.map_err(|e| FlightError::Tonic(Box::new(status(e))));
        let stream = FlightDataEncoderBuilder::new()
            .with_schema(schema)
            .build(batches)
            .map_err(Status::from);
        let mut response: Response<
            <Self as arrow_flight::flight_service_server::FlightService>::DoGetStream,
        > = Response::new(Box::pin(stream));
        // What the output policy applied, as the HTTP API's headers (never whether a
        // group was withheld).
        if let Some(d) = disclosure {
            let headers = response.metadata_mut();
            if let Ok(v) = MetadataValue::try_from(d.profile) {
                headers.insert(DISCLOSURE_PROFILE_HEADER, v);
            }
            for note in &d.notes {
                if let Ok(v) = MetadataValue::try_from(note.as_str()) {
                    headers.append(DISCLOSURE_NOTE_HEADER, v);
                }
            }
        }
        Ok(response)
    }

    async fn do_action_create_prepared_statement(
        &self,
        query: ActionCreatePreparedStatementRequest,
        request: Request<Action>,
    ) -> ServiceResult<ActionCreatePreparedStatementResult> {
        let (who, session) = self.session(&request).await?;
        let count = agora_service::count_parameters(&query.query)
            .map_err(|e| status(ServiceError::Query(e)))?;
        // The answer's schema, from the statement planned with every parameter NULL (the
        // planner needs values); the statement is planned again with the real ones.
        let nulls = vec![agora_service::Parameter::Null; count];
        let planned = session
            .plan_bound(&query.query, &nulls)
            .await
            .map_err(status)?;
        let dataset_schema = schema_bytes(planned.schema())?;
        drop(planned);
        let parameter_schema = schema_bytes(&convert::parameter_schema(count))?;
        let handle = self
            .state
            .add_prepared(Prepared::new(who.principal().name.clone(), query.query))
            .map_err(status)?;
        Ok(ActionCreatePreparedStatementResult {
            prepared_statement_handle: handle.to_bytes().into(),
            dataset_schema,
            parameter_schema,
        })
    }

    async fn do_put_prepared_statement_query(
        &self,
        command: CommandPreparedStatementQuery,
        request: Request<PeekableFlightDataStream>,
    ) -> ServiceResult<DoPutPreparedStatementResult> {
        let who = self.caller(&request).await?;
        let handle = handle_of(&command.prepared_statement_handle)?;
        let stream = request.into_inner().map_err(FlightError::from);
        let mut batches = FlightRecordBatchStream::new_from_flight_data(stream);
        let mut rows = Vec::new();
        while let Some(batch) = batches.next().await {
            let batch = batch.map_err(Status::from)?;
            rows.extend(convert::parameter_rows(&batch).map_err(status)?);
            if rows.len() > 1 {
                return Err(Status::invalid_argument(
                    "bind one row of parameters at a time (executemany is not supported)",
                ));
            }
        }
        let values = rows.pop().unwrap_or_default();
        if !self.state.bind(&handle, &who.principal().name, values) {
            return Err(unknown_handle());
        }
        Ok(DoPutPreparedStatementResult {
            prepared_statement_handle: Some(handle.to_bytes().into()),
        })
    }

    async fn do_action_close_prepared_statement(
        &self,
        query: ActionClosePreparedStatementRequest,
        request: Request<Action>,
    ) -> ServiceResult<()> {
        let who = self.caller(&request).await?;
        if let Some(handle) = Handle::from_bytes(&query.prepared_statement_handle) {
            self.state.close(&handle, &who.principal().name);
        }
        Ok(())
    }

    async fn get_flight_info_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<FlightDescriptor>,
    ) -> ServiceResult<Response<FlightInfo>> {
        self.caller(&request).await?;
        let schema = query.into_builder().schema();
        metadata_flight(query, &schema, request.into_inner())
    }

    async fn do_get_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<Ticket>,
    ) -> ServiceResult<
        Response<<Self as arrow_flight::flight_service_server::FlightService>::DoGetStream>,
    > {
        self.caller(&request).await?;
        let mut builder = query.into_builder();
        builder.append(metadata::CATALOG);
        Ok(Response::new(one_batch(builder.schema(), builder.build())))
    }

    async fn get_flight_info_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<FlightDescriptor>,
    ) -> ServiceResult<Response<FlightInfo>> {
        self.session(&request).await?;
        let schema = query.clone().into_builder().schema();
        metadata_flight(query, &schema, request.into_inner())
    }

    async fn do_get_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<Ticket>,
    ) -> ServiceResult<
        Response<<Self as arrow_flight::flight_service_server::FlightService>::DoGetStream>,
    > {
        let (_, session) = self.session(&request).await?;
        let mut builder = query.into_builder();
        for dataset in metadata::datasets(&session) {
            builder.append(metadata::CATALOG, dataset);
        }
        Ok(Response::new(one_batch(builder.schema(), builder.build())))
    }

    async fn get_flight_info_tables(
        &self,
        query: CommandGetTables,
        request: Request<FlightDescriptor>,
    ) -> ServiceResult<Response<FlightInfo>> {
        self.session(&request).await?;
        let schema = query.clone().into_builder().schema();
        metadata_flight(query, &schema, request.into_inner())
    }

    async fn do_get_tables(
        &self,
        query: CommandGetTables,
        request: Request<Ticket>,
    ) -> ServiceResult<
        Response<<Self as arrow_flight::flight_service_server::FlightService>::DoGetStream>,
    > {
        let (_, session) = self.session(&request).await?;
        let mut builder = query.into_builder();
        for (dataset, table, schema) in metadata::tables(&session) {
            builder
                .append(metadata::CATALOG, dataset, table, "TABLE", &schema)
                .map_err(Status::from)?;
        }
        Ok(Response::new(one_batch(builder.schema(), builder.build())))
    }

    async fn get_flight_info_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<FlightDescriptor>,
    ) -> ServiceResult<Response<FlightInfo>> {
        self.caller(&request).await?;
        let schema = query.into_builder().schema();
        metadata_flight(query, &schema, request.into_inner())
    }

    async fn do_get_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<Ticket>,
    ) -> ServiceResult<
        Response<<Self as arrow_flight::flight_service_server::FlightService>::DoGetStream>,
    > {
        self.caller(&request).await?;
        let mut builder = query.into_builder();
        builder.append("TABLE");
        Ok(Response::new(one_batch(builder.schema(), builder.build())))
    }

    async fn get_flight_info_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<FlightDescriptor>,
    ) -> ServiceResult<Response<FlightInfo>> {
        self.caller(&request).await?;
        let schema = query.clone().into_builder(metadata::sql_info()).schema();
        metadata_flight(query, &schema, request.into_inner())
    }

    async fn do_get_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<Ticket>,
    ) -> ServiceResult<
        Response<<Self as arrow_flight::flight_service_server::FlightService>::DoGetStream>,
    > {
        self.caller(&request).await?;
        let builder = query.into_builder(metadata::sql_info());
        Ok(Response::new(one_batch(builder.schema(), builder.build())))
    }

    async fn do_get_fallback(
        &self,
        _request: Request<Ticket>,
        message: Any,
    ) -> ServiceResult<
        Response<<Self as arrow_flight::flight_service_server::FlightService>::DoGetStream>,
    > {
        Err(Status::unimplemented(format!(
            "this Flight SQL server does not serve {}",
            message.type_url
        )))
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}
