//! The simple and extended query protocols over the query service.
//!
//! Every statement the front does not answer itself ([`crate::local`]) is run on a fresh
//! session: the connection's token is authenticated again, the permit opened again (so a
//! revocation, an opt-out or an amendment recorded since the last statement applies), then
//! `plan_bound` with the statement's parameters, `execute`, and the answer's batches are
//! encoded as rows while they stream.

use std::fmt::Debug;
use std::sync::Arc;

use agora_service::{Credential, Front, Parameter, PlannedQuery, QuerySession, Target};
use async_trait::async_trait;
use futures::sink::{Sink, SinkExt};
use futures::stream::{self, StreamExt};
use pgwire::api::ConnectionHandle;
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{
    DataRowEncoder, DescribePortalResponse, DescribeResponse, DescribeStatementResponse,
    FieldFormat, FieldInfo, QueryResponse, Response, Tag,
};
use pgwire::api::stmt::{QueryParser, StoredStatement};
use pgwire::api::store::PortalStore;
use pgwire::api::{ClientInfo, ClientPortalStore, DEFAULT_NAME, METADATA_USER, Type};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::extendedquery::Sync as PgSync;
use pgwire::messages::response::{ReadyForQuery, TransactionStatus};

use crate::Shared;
use crate::auth::Connection;
use crate::cursor;
use crate::error::{service, user_error};
use crate::local::{self, Local, Rows};

/// The query handlers (one for every connection; a connection's state is in its
/// extensions).
pub(crate) struct Queries {
    shared: Arc<Shared>,
    parser: Arc<Parser>,
}

impl Queries {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self {
            shared,
            parser: Arc::new(Parser),
        }
    }

    /// A fresh session of the connection's principal on its permit.
    async fn session(&self, conn: &Connection) -> PgWireResult<QuerySession> {
        let query = self.shared.hub.query();
        let who = match query.authenticate(Credential::Token(&conn.token)).await {
            Ok(who) if who.principal().name == conn.who.principal().name => who,
            Ok(_) | Err(agora_service::Error::Unauthenticated) => {
                return Err(user_error(
                    "28P01",
                    "authentication required: the credential is unknown, revoked or expired",
                ));
            }
            Err(e) => return Err(service(e)),
        };
        query
            .open(
                &who,
                Target::Permit {
                    id: conn.permit.clone(),
                },
                Front::Postgres,
                self.shared.limits.clone(),
            )
            .await
            .map_err(service)
    }

    /// The front's own answer to `sql`, if it has one.
    async fn local(
        &self,
        client: &(impl ClientInfo + ?Sized),
        sql: &str,
    ) -> PgWireResult<Option<Local>> {
        let conn = connection(client)?;
        // Cheap test first: most statements are for the service.
        let tables = if needs_tables(sql) {
            self.session(&conn).await?.table_schemas()
        } else {
            Vec::new()
        };
        let application_name = client
            .metadata()
            .get("application_name")
            .cloned()
            .unwrap_or_default();
        let ctx = local::Context {
            database: &conn.permit,
            user: client
                .metadata()
                .get(METADATA_USER)
                .map(String::as_str)
                .unwrap_or(&conn.user),
            application_name: &application_name,
            tables: &tables,
        };
        Ok(local::answer(sql, &ctx))
    }

    /// Plans `sql` with `params` on a fresh session.
    async fn plan(
        &self,
        conn: &Connection,
        sql: &str,
        params: &[Parameter],
    ) -> PgWireResult<PlannedQuery> {
        let session = self.session(conn).await?;
        session.plan_bound(sql, params).await.map_err(service)
    }
}

/// Whether the front's answer to `sql` may need the permitted tables (catalogue queries).
fn needs_tables(sql: &str) -> bool {
    let lower = sql.to_ascii_lowercase();
    lower.contains("pg_")
        || lower.contains("information_schema")
        || lower.contains("current_schema")
}

fn connection(client: &(impl ClientInfo + ?Sized)) -> PgWireResult<Arc<Connection>> {
    client
        .session_extensions()
        .get::<Connection>()
        .ok_or_else(|| user_error("08P01", "the connection is not authenticated"))
}

/// The response to a local answer, columns in `format`.
fn local_response(answer: Local, format: &Format) -> Response {
    match answer {
        Local::Command(tag) => Response::Execution(Tag::new(tag)),
        Local::Begin => Response::TransactionStart(Tag::new("BEGIN")),
        Local::End(tag) => Response::TransactionEnd(Tag::new(tag)),
        Local::Error(code, message) => match user_error(code, message) {
            PgWireError::UserError(info) => Response::Error(info),
            _ => unreachable!("user_error builds a user error"),
        },
        Local::Rows(rows) => Response::Query(rows_response(rows, format)),
    }
}

fn local_fields(rows: &Rows, format: &Format) -> Vec<FieldInfo> {
    rows.columns
        .iter()
        .enumerate()
        .map(|(i, (name, ty))| {
            FieldInfo::new(name.clone(), None, None, ty.clone(), format.format_for(i))
        })
        .collect()
}

fn rows_response(rows: Rows, format: &Format) -> QueryResponse {
    let fields = Arc::new(local_fields(&rows, format));
    let mut encoder = DataRowEncoder::new(fields.clone());
    let encoded: Vec<PgWireResult<_>> = rows
        .rows
        .iter()
        .map(|row| {
            for (value, field) in row.iter().zip(fields.iter()) {
                encode_text_value(&mut encoder, value.as_deref(), field)?;
            }
            Ok(encoder.take_row())
        })
        .collect();
    let mut response = QueryResponse::new(fields, stream::iter(encoded));
    response.set_command_tag(rows.tag);
    response
}

/// A value the front computed as text, in the field's type and format.
fn encode_text_value(
    encoder: &mut DataRowEncoder,
    value: Option<&str>,
    field: &FieldInfo,
) -> PgWireResult<()> {
    let ty = field.datatype();
    if field.format() == FieldFormat::Text || value.is_none() {
        return encoder.encode_field_with_type_and_format(
            &value,
            ty,
            FieldFormat::Text,
            &Default::default(),
        );
    }
    let v = value.unwrap_or_default();
    let bad = || user_error("XX000", "a catalogue value could not be encoded");
    match *ty {
        Type::BOOL => encoder.encode_field(&(v == "t")),
        Type::INT2 => encoder.encode_field(&v.parse::<i16>().map_err(|_| bad())?),
        Type::INT4 => encoder.encode_field(&v.parse::<i32>().map_err(|_| bad())?),
        Type::INT8 => encoder.encode_field(&v.parse::<i64>().map_err(|_| bad())?),
        Type::OID => encoder.encode_field(&v.parse::<u32>().map_err(|_| bad())?),
        Type::CHAR => encoder.encode_field(&(v.bytes().next().unwrap_or(0) as i8)),
        _ => encoder.encode_field(&v),
    }
}

fn canceled() -> PgWireError {
    user_error("57014", "canceling statement due to user request")
}

/// The connection's cancel handle (pgwire stops a statement cancelled while it plans and
/// starts; the rows that stream after are this front's to stop).
fn cancel_handle(client: &(impl ClientInfo + ?Sized)) -> Option<Arc<ConnectionHandle>> {
    client
        .session_extensions()
        .get::<Arc<ConnectionHandle>>()
        .map(|h| (*h).clone())
}

/// An answer's rows, encoded batch by batch as they stream, until the statement is
/// cancelled (then the answer is dropped, which stops the query, and 57014 ends the rows).
fn answer_response(
    answer: agora_service::Answer,
    format: &Format,
    cancel: Option<Arc<ConnectionHandle>>,
) -> QueryResponse {
    let fields = Arc::new(crate::encode::fields(answer.schema(), format));
    let row_fields = fields.clone();
    let rows = answer.flat_map(move |batch| {
        let rows: Vec<PgWireResult<_>> = match batch {
            Ok(batch) => match crate::encode::rows(&batch, &row_fields) {
                Ok(rows) => rows.into_iter().map(Ok).collect(),
                Err(e) => vec![Err(e)],
            },
            Err(e) => vec![Err(service(e))],
        };
        stream::iter(rows)
    });
    let fired = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop = {
        let fired = fired.clone();
        // Armed when the rows start to flow, after pgwire's own signal for the statement
        // is gone (arming earlier would fire that one).
        async move {
            match cancel {
                Some(handle) if handle.start_query().await.await.is_ok() => {
                    fired.store(true, std::sync::atomic::Ordering::SeqCst);
                }
                _ => std::future::pending::<()>().await,
            }
        }
    };
    let tail = stream::once(async move {
        fired
            .load(std::sync::atomic::Ordering::SeqCst)
            .then(|| Err(canceled()))
    })
    .filter_map(std::future::ready);
    QueryResponse::new(fields, rows.take_until(stop).chain(tail))
}

/// Splits a simple query into its statements, at semicolons outside quotes, comments and
/// dollar quotes.
pub(crate) fn split_statements(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let chars: Vec<char> = sql.chars().collect();
    let (mut i, mut start) = (0, 0);
    while i < chars.len() {
        match chars[i] {
            '\'' | '"' => {
                let q = chars[i];
                i += 1;
                while i < chars.len() && chars[i] != q {
                    i += 1;
                }
            }
            '-' if chars.get(i + 1) == Some(&'-') => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '/' if chars.get(i + 1) == Some(&'*') => {
                i += 2;
                while i + 1 < chars.len() && !(chars[i] == '*' && chars[i + 1] == '/') {
                    i += 1;
                }
                i += 1;
            }
            '$' => {
                // A dollar quote: $tag$ ... $tag$.
                let tag_end = chars[i + 1..]
                    .iter()
                    .position(|c| !(c.is_alphanumeric() || *c == '_'))
                    .map(|p| i + 1 + p);
                if let Some(end) = tag_end.filter(|e| chars.get(*e) == Some(&'$')) {
                    let tag: String = chars[i..=end].iter().collect();
                    let rest: String = chars[end + 1..].iter().collect();
                    if let Some(close) = rest.find(&tag) {
                        i = end + 1 + rest[..close].chars().count() + tag.chars().count() - 1;
                    } else {
                        i = chars.len();
                    }
                }
            }
            ';' => {
                let statement: String = chars[start..i].iter().collect();
                if !is_blank(&statement) {
                    out.push(statement.trim().to_owned());
                }
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    if start < chars.len() {
        let statement: String = chars[start..].iter().collect();
        if !is_blank(&statement) {
            out.push(statement.trim().to_owned());
        }
    }
    out
}

/// Whether `s` holds only whitespace and comments.
fn is_blank(s: &str) -> bool {
    let mut rest = s.trim();
    loop {
        if let Some(r) = rest.strip_prefix("--") {
            rest = r.split_once('\n').map_or("", |(_, r)| r).trim();
        } else if let Some(r) = rest.strip_prefix("/*") {
            rest = r.split_once("*/").map_or("", |(_, r)| r).trim();
        } else {
            return rest.is_empty();
        }
    }
}

#[async_trait]
impl SimpleQueryHandler for Queries {
    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let conn = connection(client)?;
        let mut responses = Vec::new();
        // Whether a transaction block is open, as the statements of this query move it.
        let mut in_block = !matches!(client.transaction_status(), TransactionStatus::Idle);
        for statement in split_statements(query) {
            if let Some(command) = cursor::parse(&statement) {
                let response = self
                    .cursor(&conn, command, &[], &Format::UnifiedText, in_block)
                    .await
                    .unwrap_or_else(error_response);
                let failed = matches!(response, Response::Error(_));
                responses.push(response);
                if failed {
                    break;
                }
                continue;
            }
            let response = match self.local(client, &statement).await {
                Ok(Some(answer)) => {
                    match answer {
                        Local::Begin => in_block = true,
                        Local::End(_) => {
                            in_block = false;
                            conn.cursors.end_transaction().await;
                        }
                        _ => {}
                    }
                    local_response(answer, &Format::UnifiedText)
                }
                Ok(None) => match self.plan(&conn, &statement, &[]).await {
                    Ok(planned) => match planned.execute().await {
                        Ok(answer) => Response::Query(answer_response(
                            answer,
                            &Format::UnifiedText,
                            cancel_handle(client),
                        )),
                        Err(e) => error_response(service(e)),
                    },
                    Err(e) => error_response(e),
                },
                Err(e) => error_response(e),
            };
            let failed = matches!(response, Response::Error(_));
            responses.push(response);
            // Like PostgreSQL, the rest of a failed multi-statement query is not run.
            if failed {
                break;
            }
        }
        if responses.is_empty() {
            responses.push(Response::EmptyQuery);
        }
        Ok(responses)
    }
}

impl Queries {
    /// The columns a cursor statement answers with: a `FETCH`'s are its cursor's.
    async fn cursor_fields(
        &self,
        client: &(impl ClientInfo + ?Sized),
        command: &cursor::Command,
        format: &Format,
    ) -> PgWireResult<Option<Vec<FieldInfo>>> {
        let cursor::Command::Fetch { name, .. } = command else {
            return Ok(None);
        };
        let conn = connection(client)?;
        let cursors = conn.cursors.lock().await;
        let cursor = cursors.get(name).ok_or_else(|| no_cursor(name))?;
        Ok(Some(crate::encode::fields(&cursor.schema(), format)))
    }

    /// Runs a cursor statement (see [`crate::cursor`]).
    async fn cursor(
        &self,
        conn: &Connection,
        command: cursor::Command,
        params: &[Parameter],
        format: &Format,
        in_block: bool,
    ) -> PgWireResult<Response> {
        match command {
            cursor::Command::Declare { name, query, hold } => {
                if !hold && !in_block {
                    return Err(user_error(
                        "25P01",
                        "DECLARE CURSOR can only be used in transaction blocks",
                    ));
                }
                if conn.cursors.lock().await.contains_key(&name) {
                    return Err(user_error(
                        "42P03",
                        format!("cursor \"{name}\" already exists"),
                    ));
                }
                let planned = self.plan(conn, &query, params).await?;
                let answer = planned.execute().await.map_err(service)?;
                conn.cursors
                    .lock()
                    .await
                    .insert(name, cursor::Cursor::new(answer, hold));
                Ok(Response::Execution(Tag::new("DECLARE CURSOR")))
            }
            cursor::Command::Fetch { name, count } => {
                let mut cursors = conn.cursors.lock().await;
                let cursor = cursors.get_mut(&name).ok_or_else(|| no_cursor(&name))?;
                let batches = cursor.fetch(count).await.map_err(service)?;
                let fields = Arc::new(crate::encode::fields(&cursor.schema(), format));
                let mut rows = Vec::new();
                for batch in &batches {
                    rows.extend(crate::encode::rows(batch, &fields)?.into_iter().map(Ok));
                }
                let mut response = QueryResponse::new(fields, stream::iter(rows));
                response.set_command_tag("FETCH");
                Ok(Response::Query(response))
            }
            cursor::Command::Close(Some(name)) => {
                conn.cursors
                    .lock()
                    .await
                    .remove(&name)
                    .ok_or_else(|| no_cursor(&name))?;
                Ok(Response::Execution(Tag::new("CLOSE CURSOR")))
            }
            cursor::Command::Close(None) => {
                conn.cursors.lock().await.clear();
                Ok(Response::Execution(Tag::new("CLOSE CURSOR ALL")))
            }
            cursor::Command::Unsupported(why) => Err(user_error("0A000", why)),
        }
    }
}

fn error_response(e: PgWireError) -> Response {
    match e {
        PgWireError::UserError(info) => Response::Error(info),
        other => Response::Error(Box::new(pgwire::error::ErrorInfo::new(
            "ERROR".into(),
            other.code().to_owned(),
            other.to_string(),
        ))),
    }
}

/// Statements are kept as their text; the service parses them.
#[derive(Debug)]
pub(crate) struct Parser;

#[async_trait]
impl QueryParser for Parser {
    type Statement = String;

    async fn parse_sql<C>(
        &self,
        _client: &C,
        sql: &str,
        _types: &[Option<Type>],
    ) -> PgWireResult<Option<String>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let statements = split_statements(sql);
        match statements.len() {
            0 => Ok(None),
            1 => Ok(statements.into_iter().next()),
            _ => Err(user_error(
                "42601",
                "cannot insert multiple commands into a prepared statement",
            )),
        }
    }

    fn get_parameter_types(&self, _stmt: &String) -> PgWireResult<Vec<Type>> {
        Ok(Vec::new())
    }

    fn get_result_schema(
        &self,
        _stmt: &String,
        _column_format: Option<&Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        Ok(Vec::new())
    }
}

/// The types of `sql`'s parameters for `Describe`: as many as the statement uses or the
/// client declared, each as declared, else `text` (the service casts it).
fn parameter_types(sql: &str, target: &StoredStatement<String>) -> PgWireResult<Vec<Type>> {
    let count =
        agora_service::count_parameters(sql).map_err(|e| service(agora_service::Error::from(e)))?;
    Ok((0..count.max(target.parameter_types.len()))
        .map(|i| {
            target
                .parameter_types
                .get(i)
                .cloned()
                .flatten()
                .unwrap_or(Type::TEXT)
        })
        .collect())
}

/// `34000`, as PostgreSQL answers for a cursor that is not open.
fn no_cursor(name: &str) -> PgWireError {
    user_error("34000", format!("cursor \"{name}\" does not exist"))
}

/// The columns a local answer has, for `Describe`.
fn local_describe(answer: &Local, format: &Format) -> Option<Vec<FieldInfo>> {
    match answer {
        Local::Rows(rows) => Some(local_fields(rows, format)),
        _ => None,
    }
}

#[async_trait]
impl ExtendedQueryHandler for Queries {
    type Statement = String;
    type QueryParser = Parser;

    fn query_parser(&self) -> Arc<Self::QueryParser> {
        self.parser.clone()
    }

    async fn do_describe_statement<C>(
        &self,
        client: &mut C,
        target: &StoredStatement<String>,
    ) -> PgWireResult<DescribeStatementResponse>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let sql = &target.statement;
        if let Some(command) = cursor::parse(sql) {
            let fields = self
                .cursor_fields(client, &command, &Format::UnifiedText)
                .await?
                .unwrap_or_default();
            // A DECLARE's query may take parameters (psycopg binds them server side).
            let types = match &command {
                cursor::Command::Declare { query, .. } => parameter_types(query, target)?,
                _ => Vec::new(),
            };
            return Ok(DescribeStatementResponse::new(types, fields));
        }
        if let Some(answer) = self.local(client, sql).await? {
            let fields = local_describe(&answer, &Format::UnifiedText).unwrap_or_default();
            return Ok(DescribeStatementResponse::new(Vec::new(), fields));
        }
        let types = parameter_types(sql, target)?;
        // The result's columns: the statement planned with null parameters.
        let conn = connection(client)?;
        let planned = self
            .plan(&conn, sql, &vec![Parameter::Null; types.len()])
            .await?;
        let fields = crate::encode::fields(planned.schema(), &Format::UnifiedText);
        Ok(DescribeStatementResponse::new(types, fields))
    }

    async fn do_describe_portal<C>(
        &self,
        client: &mut C,
        portal: &Portal<String>,
    ) -> PgWireResult<DescribePortalResponse>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let sql = &portal.statement.statement;
        let format = &portal.result_column_format;
        if let Some(command) = cursor::parse(sql) {
            return Ok(match self.cursor_fields(client, &command, format).await? {
                Some(fields) => DescribePortalResponse::new(fields),
                None => DescribePortalResponse::no_data(),
            });
        }
        if let Some(answer) = self.local(client, sql).await? {
            return Ok(match local_describe(&answer, format) {
                Some(fields) => DescribePortalResponse::new(fields),
                None => DescribePortalResponse::no_data(),
            });
        }
        let conn = connection(client)?;
        let params = crate::params::decode_all(
            &portal.parameters,
            &portal.statement.parameter_types,
            &portal.parameter_format,
        )?;
        let planned = self.plan(&conn, sql, &params).await?;
        let fields = crate::encode::fields(planned.schema(), format);
        // Planned once: the portal's Execute runs this plan.
        *conn.described.lock().expect("described poisoned") = Some((portal.name.clone(), planned));
        Ok(DescribePortalResponse::new(fields))
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<String>,
        _max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let sql = &portal.statement.statement;
        let format = &portal.result_column_format;
        if let Some(command) = cursor::parse(sql) {
            let conn = connection(client)?;
            let params = crate::params::decode_all(
                &portal.parameters,
                &portal.statement.parameter_types,
                &portal.parameter_format,
            )?;
            let in_block = !matches!(client.transaction_status(), TransactionStatus::Idle);
            let declared = match &command {
                cursor::Command::Declare { name, .. } => Some(name.clone()),
                cursor::Command::Close(Some(name)) => {
                    client.portal_store().rm_portal(name);
                    None
                }
                _ => None,
            };
            let response = self
                .cursor(&conn, command, &params, format, in_block)
                .await?;
            // As in PostgreSQL, a cursor is also a portal of its name: psycopg's named
            // cursors describe it (its columns are those of a FETCH from it).
            if let Some(name) = declared {
                let fetch = format!("FETCH ALL FROM \"{}\"", name.replace('"', "\"\""));
                let statement = Arc::new(StoredStatement::new(name.clone(), fetch, Vec::new()));
                client
                    .portal_store()
                    .put_portal(Arc::new(Portal::new_cursor(name, statement)));
            }
            return Ok(response);
        }
        if let Some(answer) = self.local(client, sql).await? {
            if matches!(answer, Local::End(_)) {
                connection(client)?.cursors.end_transaction().await;
            }
            return Ok(local_response(answer, format));
        }
        let conn = connection(client)?;
        let described = conn
            .described
            .lock()
            .expect("described poisoned")
            .take()
            .filter(|(name, _)| *name == portal.name)
            .map(|(_, planned)| planned);
        let planned = match described {
            Some(planned) => planned,
            None => {
                let params = crate::params::decode_all(
                    &portal.parameters,
                    &portal.statement.parameter_types,
                    &portal.parameter_format,
                )?;
                self.plan(&conn, sql, &params).await?
            }
        };
        let answer = planned.execute().await.map_err(service)?;
        Ok(Response::Query(answer_response(
            answer,
            format,
            cancel_handle(client),
        )))
    }

    async fn on_sync<C>(&self, client: &mut C, _message: PgSync) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        // A statement described but never executed gives its place back.
        if let Ok(conn) = connection(client) {
            conn.described.lock().expect("described poisoned").take();
        }
        client.portal_store().rm_portal(DEFAULT_NAME);
        client
            .send(PgWireBackendMessage::ReadyForQuery(ReadyForQuery::new(
                client.transaction_status(),
            )))
            .await?;
        client.flush().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_split_outside_quotes_and_comments() {
        assert_eq!(
            split_statements("BEGIN; SELECT ';' AS x -- a; comment\n; COMMIT;"),
            vec!["BEGIN", "SELECT ';' AS x -- a; comment", "COMMIT"]
        );
        assert_eq!(split_statements(" ; ;"), Vec::<String>::new());
        assert_eq!(split_statements("SELECT $$a;b$$"), vec!["SELECT $$a;b$$"]);
        assert_eq!(
            split_statements("/* x; */ SELECT 1"),
            vec!["/* x; */ SELECT 1"]
        );
    }
}
