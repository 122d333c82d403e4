//! Statements the front answers itself, without reading any data:
//!
//! - what clients send on connect or around queries: `SET` of a harmless session setting,
//!   `SHOW`, `BEGIN`/`COMMIT`/`ROLLBACK`, `DISCARD`, `RESET`, `SELECT version()` and other
//!   session functions;
//! - the catalogue queries of `psql` (`\dt`, `\d table`, `\dn`, `\l`) and of drivers,
//!   recognised by pattern and answered from the session's permitted tables and columns
//!   only ([`agora_service::QuerySession::table_schemas`]); JDBC's `DatabaseMetaData`
//!   queries are in [`crate::metadata`]. A catalogue query the front does not recognise
//!   gets no rows: nothing outside the permit is ever listed, and nothing of the catalogue
//!   reaches the engine.
//!
//! Every other statement (including a `SET` of anything else, `COPY`, DDL and DML) goes
//! to the query service, which plans, refuses and records it.

use std::sync::LazyLock;

use arrow::datatypes::SchemaRef;
use pgwire::api::Type;
use regex::Regex;

use crate::encode::{pg_type, type_name};

/// A small result the front computes: columns and text values.
#[derive(Debug, Clone, Default)]
pub(crate) struct Rows {
    pub(crate) columns: Vec<(String, Type)>,
    pub(crate) rows: Vec<Vec<Option<String>>>,
    /// The command tag (`SELECT`, `SHOW`).
    pub(crate) tag: &'static str,
}

impl Rows {
    pub(crate) fn select(columns: Vec<(String, Type)>, rows: Vec<Vec<Option<String>>>) -> Self {
        Self {
            columns,
            rows,
            tag: "SELECT",
        }
    }

    fn text_columns<S: Into<String>>(names: impl IntoIterator<Item = S>) -> Vec<(String, Type)> {
        names.into_iter().map(|n| (n.into(), Type::TEXT)).collect()
    }
}

/// What the front answers on its own.
#[derive(Debug, Clone)]
pub(crate) enum Local {
    /// A command with its tag (`SET`, `DISCARD ALL`...).
    Command(&'static str),
    /// `BEGIN` / `START TRANSACTION`.
    Begin,
    /// `COMMIT` / `END` (`COMMIT`) or `ROLLBACK` / `ABORT` (`ROLLBACK`).
    End(&'static str),
    /// Rows.
    Rows(Rows),
    /// A refusal: SQLSTATE and message.
    Error(&'static str, &'static str),
}

/// What the front knows of the connection, to answer session and catalogue queries.
pub(crate) struct Context<'a> {
    /// The permit id (the database name).
    pub(crate) database: &'a str,
    /// The user name the client gave.
    pub(crate) user: &'a str,
    /// The client's `application_name`.
    pub(crate) application_name: &'a str,
    /// Every permitted table (`dataset.table`) with its permitted columns.
    pub(crate) tables: &'a [(String, SchemaRef)],
}

/// The version string `version()` answers and the one reported at startup.
pub(crate) const SERVER_VERSION: &str = "16.6";

static SET: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?is)^set\s+(?:session\s+|local\s+)?([a-z_][a-z0-9_.]*)\s*(?:=|\s+to\s+|\s+)\s*(.*?)$",
    )
    .unwrap()
});
static SHOW: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?is)^show\s+([a-z_][a-z0-9_.]*|all)$").unwrap());
static SELECT_FUNCTIONS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?is)^select\s+(.+?)$").unwrap());
static ITEM: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?is)^(?:pg_catalog\.)?([a-z_]+)\s*(?:\(\s*('[a-z_.]+'|true|false)?\s*\))?(?:\s+as\s+("[^"]+"|[a-z_][a-z0-9_]*))?$"#,
    )
    .unwrap()
});
static ALIAS: LazyLock<Regex> = LazyLock::new(|| Regex::new(r#"(?i)\bas\s+"([^"]+)""#).unwrap());
static RELNAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)c\.relname\s+OPERATOR\(pg_catalog\.~\)\s+'((?:[^']|'')*)'").unwrap()
});
static NSPNAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)n\.nspname\s+OPERATOR\(pg_catalog\.~\)\s+'((?:[^']|'')*)'").unwrap()
});
static RELOID: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)(?:c\.oid|a\.attrelid|attrelid)\s*=\s*'?(\d+)'?").unwrap());
static SETTING_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)\bname\s*=\s*'([a-z_]+)'").unwrap());
static CATALOG: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(pg_catalog\s*\.|information_schema\s*\.|pg_class\b|pg_namespace\b|pg_attribute\b|pg_type\b|pg_database\b|pg_settings\b|pg_proc\b|pg_roles\b|pg_user\b|pg_tables\b|pg_views\b|pg_index\b|pg_description\b|pg_am\b|pg_stat_|pg_get_|pg_is_|pg_backend_pid\b)").unwrap()
});

/// Settings a client may set; the value is accepted and changes nothing the hub
/// enforces (formats are fixed; limits are the hub's).
const HARMLESS_SETTINGS: &[&str] = &[
    "application_name",
    "extra_float_digits",
    "client_min_messages",
    "statement_timeout",
    "lock_timeout",
    "idle_in_transaction_session_timeout",
    "idle_session_timeout",
    "search_path",
    "bytea_output",
    "intervalstyle",
    "jit",
    "default_transaction_isolation",
    "transaction_isolation",
    "default_transaction_read_only",
    "transaction_read_only",
    "lc_messages",
    "lc_monetary",
    "lc_numeric",
    "lc_time",
    "geqo",
    "enable_seqscan",
    "row_security",
];

/// What `SHOW` and `current_setting` answer.
fn setting(name: &str, ctx: &Context<'_>) -> Option<String> {
    let value = match name.to_ascii_lowercase().as_str() {
        "server_version" => SERVER_VERSION,
        "server_version_num" => "160006",
        "server_encoding" | "client_encoding" => "UTF8",
        "datestyle" => "ISO, YMD",
        "timezone" => "Etc/UTC",
        "intervalstyle" => "postgres",
        "integer_datetimes" | "standard_conforming_strings" => "on",
        "transaction_isolation" | "default_transaction_isolation" => "read committed",
        "transaction_read_only" | "default_transaction_read_only" => "on",
        "is_superuser" => "off",
        "max_identifier_length" => "63",
        "max_index_keys" => "32",
        "extra_float_digits" => "3",
        "lc_collate" | "lc_ctype" => "C",
        "search_path" => return Some(search_path(ctx)),
        "application_name" => return Some(ctx.application_name.to_owned()),
        "statement_timeout" | "lock_timeout" | "idle_in_transaction_session_timeout" => "0",
        "bytea_output" => "hex",
        "client_min_messages" => "notice",
        _ => return None,
    };
    Some(value.to_owned())
}

/// The schemas of the permit (its datasets), first the default one.
fn schemas(ctx: &Context<'_>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (name, _) in ctx.tables {
        let schema = split(name).0.to_owned();
        if !out.contains(&schema) {
            out.push(schema);
        }
    }
    out
}

fn search_path(ctx: &Context<'_>) -> String {
    schemas(ctx).join(", ")
}

/// `dataset.table` → (`dataset`, `table`).
pub(crate) fn split(name: &str) -> (&str, &str) {
    name.split_once('.').unwrap_or(("public", name))
}

/// The object id the front gives the `i`th permitted table (stable within a connection's
/// permit version: tables are sorted by name).
fn table_oid(i: usize) -> u32 {
    16_384 + i as u32
}

fn unquoted(sql: &str) -> String {
    sql.trim().trim_end_matches(';').trim().to_owned()
}

/// The front's answer to `sql`, or `None` when it is for the query service.
pub(crate) fn answer(sql: &str, ctx: &Context<'_>) -> Option<Local> {
    let sql = unquoted(sql);
    let lower = sql.to_ascii_lowercase();
    let first = lower.split_whitespace().next().unwrap_or("");
    match first {
        "begin" | "start"
            if lower.starts_with("begin") || lower.starts_with("start transaction") =>
        {
            return Some(Local::Begin);
        }
        "commit" | "end" => return Some(Local::End("COMMIT")),
        "rollback" | "abort" => return Some(Local::End("ROLLBACK")),
        "discard" => return Some(Local::Command("DISCARD ALL")),
        "reset" => return Some(Local::Command("RESET")),
        "deallocate" => return Some(Local::Command("DEALLOCATE")),
        "set" => return set(&sql),
        "show" => return show(&sql, ctx),
        _ => {}
    }
    if first == "select"
        && let Some(rows) = functions(&sql, ctx)
    {
        return Some(Local::Rows(rows));
    }
    if CATALOG.is_match(&sql) {
        return Some(Local::Rows(catalog(&sql, ctx)));
    }
    None
}

fn set(sql: &str) -> Option<Local> {
    let lower = sql.to_ascii_lowercase();
    if lower.starts_with("set session characteristics as transaction")
        || lower.starts_with("set transaction")
    {
        if lower.contains("read write") {
            return Some(Local::Error(
                "25006",
                "Agora sessions are read-only; READ WRITE cannot be set",
            ));
        }
        return Some(Local::Command("SET"));
    }
    let caps = SET.captures(sql)?;
    let name = caps[1].to_ascii_lowercase();
    let mut raw = caps[2].trim().to_ascii_lowercase();
    if name == "time" {
        raw = raw.strip_prefix("zone").unwrap_or(&raw).trim().to_owned();
    }
    let value = raw.trim_matches(|c| c == '\'' || c == '"').to_owned();
    let ok = match name.as_str() {
        n if HARMLESS_SETTINGS.contains(&n) => {
            !(n.ends_with("read_only") && matches!(value.as_str(), "off" | "false" | "0"))
        }
        "client_encoding" | "names" => matches!(value.as_str(), "utf8" | "utf-8" | "unicode"),
        "timezone" | "time" => {
            matches!(
                value.as_str(),
                "utc" | "etc/utc" | "gmt" | "z" | "0" | "+00" | "+00:00"
            )
        }
        "datestyle" => value.contains("iso"),
        "standard_conforming_strings" => matches!(value.as_str(), "on" | "true"),
        // Anything else is for the service, which refuses it and records the refusal.
        _ => return None,
    };
    Some(if ok {
        Local::Command("SET")
    } else {
        Local::Error(
            "22023",
            "this value of the setting is not available: Agora's sessions use UTF-8, ISO \
             dates, UTC and read-only transactions",
        )
    })
}

fn show(sql: &str, ctx: &Context<'_>) -> Option<Local> {
    let Some(caps) = SHOW.captures(sql) else {
        return Some(Local::Error("42601", "SHOW takes one setting name"));
    };
    let name = caps[1].to_ascii_lowercase();
    if name == "all" {
        let names = [
            "application_name",
            "client_encoding",
            "datestyle",
            "default_transaction_read_only",
            "search_path",
            "server_encoding",
            "server_version",
            "standard_conforming_strings",
            "timezone",
            "transaction_isolation",
        ];
        let rows = names
            .iter()
            .map(|n| vec![Some((*n).to_owned()), setting(n, ctx), Some(String::new())])
            .collect();
        return Some(Local::Rows(Rows {
            columns: Rows::text_columns(["name", "setting", "description"]),
            rows,
            tag: "SHOW",
        }));
    }
    Some(match setting(&name, ctx) {
        Some(value) => Local::Rows(Rows {
            columns: Rows::text_columns([name]),
            rows: vec![vec![Some(value)]],
            tag: "SHOW",
        }),
        None => Local::Error("42704", "unrecognized configuration parameter"),
    })
}

/// Splits `s` at its top-level commas (outside parentheses and quotes).
pub(crate) fn top_level_items(s: &str) -> Vec<String> {
    let mut items = Vec::new();
    let (mut depth, mut quote, mut current) = (0i32, None::<char>, String::new());
    for c in s.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '(') => depth += 1,
            (None, ')') => depth -= 1,
            (None, ',') if depth == 0 => {
                items.push(std::mem::take(&mut current).trim().to_owned());
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    if !current.trim().is_empty() {
        items.push(current.trim().to_owned());
    }
    items
}

/// `SELECT f(), g() AS x` where every item is a session function the front knows.
fn functions(sql: &str, ctx: &Context<'_>) -> Option<Rows> {
    let caps = SELECT_FUNCTIONS.captures(sql)?;
    let list = &caps[1];
    let lower = list.to_ascii_lowercase();
    if lower.contains(" from ") || lower.contains(" where ") {
        return None;
    }
    let mut columns = Vec::new();
    let mut row = Vec::new();
    for item in top_level_items(list) {
        let caps = ITEM.captures(&item)?;
        let function = caps[1].to_ascii_lowercase();
        let arg = caps
            .get(2)
            .map(|m| m.as_str().trim_matches('\'').to_owned());
        let (value, ty) = match function.as_str() {
            "version" => (
                format!(
                    "PostgreSQL {SERVER_VERSION} (Agora {})",
                    env!("CARGO_PKG_VERSION")
                ),
                Type::TEXT,
            ),
            "current_schema" => (schemas(ctx).into_iter().next()?, Type::NAME),
            "current_database" | "current_catalog" => (ctx.database.to_owned(), Type::NAME),
            "current_user" | "session_user" | "user" | "current_role" => {
                (ctx.user.to_owned(), Type::NAME)
            }
            "current_schemas" => (format!("{{{}}}", schemas(ctx).join(",")), Type::TEXT),
            "current_setting" => (setting(arg.as_deref()?, ctx)?, Type::TEXT),
            "pg_backend_pid" => ("0".to_owned(), Type::INT4),
            "pg_is_in_recovery" => ("f".to_owned(), Type::BOOL),
            _ => return None,
        };
        let name = match caps.get(3) {
            Some(alias) => alias.as_str().trim_matches('"').to_owned(),
            None => function,
        };
        columns.push((name, ty));
        row.push(Some(value));
    }
    Some(Rows::select(columns, vec![row]))
}

/// A POSIX-style pattern psql sent (`'^(person)$'`), as a matcher.
fn pattern(re: &Regex, sql: &str) -> Option<Regex> {
    let caps = re.captures(sql)?;
    let text = caps[1].replace("''", "'");
    // An invalid pattern matches nothing.
    Some(Regex::new(&text).unwrap_or_else(|_| Regex::new("$^").unwrap()))
}

/// The permitted tables a catalogue query's name patterns select, with their oids.
fn selected<'c>(sql: &str, ctx: &'c Context<'_>) -> Vec<(u32, &'c str, &'c str, &'c SchemaRef)> {
    let relname = pattern(&RELNAME, sql);
    let nspname = pattern(&NSPNAME, sql);
    ctx.tables
        .iter()
        .enumerate()
        .map(|(i, (name, schema))| {
            let (ns, table) = split(name);
            (table_oid(i), ns, table, schema)
        })
        .filter(|(_, ns, table, _)| {
            relname.as_ref().is_none_or(|re| re.is_match(table))
                && nspname.as_ref().is_none_or(|re| re.is_match(ns))
        })
        .collect()
}

/// The table a query names by oid (`c.oid = '16384'`), if it is one of the permit's.
fn by_oid<'c>(sql: &str, ctx: &'c Context<'_>) -> Option<(u32, &'c str, &'c str, &'c SchemaRef)> {
    let oid: u32 = RELOID.captures(sql)?[1].parse().ok()?;
    let i = oid.checked_sub(16_384)? as usize;
    let (name, schema) = ctx.tables.get(i)?;
    let (ns, table) = split(name);
    Some((oid, ns, table, schema))
}

/// The `AS "Alias"` column names of a psql listing query, in order.
fn aliases(sql: &str) -> Vec<String> {
    ALIAS.captures_iter(sql).map(|c| c[1].to_owned()).collect()
}

pub(crate) fn s(v: impl Into<String>) -> Option<String> {
    Some(v.into())
}

/// A catalogue query: psql's (recognised by their shape) or an empty answer.
fn catalog(sql: &str, ctx: &Context<'_>) -> Rows {
    let lower = sql.to_ascii_lowercase();
    let compact: String = lower.split_whitespace().collect::<Vec<_>>().join(" ");
    let listing = aliases(sql);

    // \dt, \d, \dv... : a listing of relations by kind.
    if compact.contains("from pg_catalog.pg_class c")
        && listing.iter().any(|a| a == "Name")
        && compact.contains("c.relkind in (")
    {
        let kinds = compact.split("c.relkind in (").nth(1).unwrap_or("");
        let tables_asked = kinds.split(')').next().unwrap_or("").contains("'r'");
        let rows = if tables_asked {
            selected(sql, ctx)
                .into_iter()
                .map(|(_, ns, table, _)| {
                    listing
                        .iter()
                        .map(|a| match a.as_str() {
                            "Schema" => s(ns),
                            "Name" => s(table),
                            "Type" => s("table"),
                            "Owner" => s("agora"),
                            "Persistence" => s("permanent"),
                            "Access method" => s("parquet"),
                            "Size" | "Description" => s(""),
                            _ => None,
                        })
                        .collect()
                })
                .collect()
        } else {
            Vec::new()
        };
        return Rows::select(Rows::text_columns(listing), rows);
    }
    // \dn: schemas.
    if compact.contains("from pg_catalog.pg_namespace n") && listing.iter().any(|a| a == "Name") {
        let rows = schemas(ctx)
            .into_iter()
            .map(|ns| {
                listing
                    .iter()
                    .map(|a| match a.as_str() {
                        "Name" => s(ns.clone()),
                        "Owner" => s("agora"),
                        _ => s(""),
                    })
                    .collect()
            })
            .collect();
        return Rows::select(Rows::text_columns(listing), rows);
    }
    // \l: the one database of the connection (its permit).
    if compact.contains("from pg_catalog.pg_database d") && listing.iter().any(|a| a == "Name") {
        let row = listing
            .iter()
            .map(|a| match a.as_str() {
                "Name" => s(ctx.database),
                "Owner" => s("agora"),
                "Encoding" => s("UTF8"),
                "Collate" | "Ctype" => s("C"),
                "Locale Provider" => s("libc"),
                _ => s(""),
            })
            .collect();
        return Rows::select(Rows::text_columns(listing), vec![row]);
    }
    // \d NAME, step 1: which relations the pattern names.
    if compact.starts_with("select c.oid, n.nspname, c.relname from pg_catalog.pg_class c") {
        let rows = selected(sql, ctx)
            .into_iter()
            .map(|(oid, ns, table, _)| vec![s(oid.to_string()), s(ns), s(table)])
            .collect();
        return Rows::select(
            vec![
                ("oid".into(), Type::OID),
                ("nspname".into(), Type::NAME),
                ("relname".into(), Type::NAME),
            ],
            rows,
        );
    }
    // \d NAME, step 2: the relation's flags (a plain table without indexes, rules,
    // triggers or checks, so psql asks for none of those).
    if compact.starts_with("select c.relchecks, c.relkind") {
        let Some(_) = by_oid(sql, ctx) else {
            return Rows::default();
        };
        let values = [
            ("relchecks", Type::INT2, "0"),
            ("relkind", Type::CHAR, "r"),
            ("relhasindex", Type::BOOL, "f"),
            ("relhasrules", Type::BOOL, "f"),
            ("relhastriggers", Type::BOOL, "f"),
            ("relrowsecurity", Type::BOOL, "f"),
            ("relforcerowsecurity", Type::BOOL, "f"),
            ("relhasoids", Type::BOOL, "f"),
            ("relispartition", Type::BOOL, "f"),
            ("?column?", Type::TEXT, ""),
            ("reltablespace", Type::OID, "0"),
            ("reloftype", Type::TEXT, ""),
            ("relpersistence", Type::CHAR, "p"),
            ("relreplident", Type::CHAR, "d"),
            ("amname", Type::NAME, "heap"),
        ];
        let n = top_level_items(
            compact
                .strip_prefix("select ")
                .and_then(|r| r.split(" from pg_catalog.pg_class c").next())
                .unwrap_or(""),
        )
        .len();
        let columns = values
            .iter()
            .map(|(n, t, _)| ((*n).to_owned(), t.clone()))
            .chain(std::iter::repeat(("?column?".to_owned(), Type::TEXT)))
            .take(n)
            .collect();
        let row = values
            .iter()
            .map(|(_, _, v)| s(*v))
            .chain(std::iter::repeat(None))
            .take(n)
            .collect();
        return Rows::select(columns, vec![row]);
    }
    // \d NAME, step 3: the columns.
    if compact.starts_with("select a.attname") && compact.contains("from pg_catalog.pg_attribute a")
    {
        let Some((_, _, _, schema)) = by_oid(sql, ctx) else {
            return Rows::default();
        };
        let verbose = compact.contains("a.attstorage");
        let mut columns: Vec<(String, Type)> = vec![
            ("attname".into(), Type::NAME),
            ("format_type".into(), Type::TEXT),
            ("pg_get_expr".into(), Type::TEXT),
            ("attnotnull".into(), Type::BOOL),
            ("attcollation".into(), Type::NAME),
            ("attidentity".into(), Type::CHAR),
            ("attgenerated".into(), Type::CHAR),
        ];
        if verbose {
            columns.push(("attstorage".into(), Type::CHAR));
            columns.push(("attstattarget".into(), Type::INT4));
            columns.push(("col_description".into(), Type::TEXT));
        }
        let rows = schema
            .fields()
            .iter()
            .map(|f| {
                let mut row = vec![
                    s(f.name().clone()),
                    s(type_name(&pg_type(f.data_type()))),
                    None,
                    s(if f.is_nullable() { "f" } else { "t" }),
                    None,
                    s(""),
                    s(""),
                ];
                if verbose {
                    row.extend([s("p"), None, None]);
                }
                row
            })
            .collect();
        return Rows::select(columns, rows);
    }
    // information_schema.tables / columns, as drivers and BI tools ask them.
    if compact.contains("from information_schema.tables") {
        let rows = selected(sql, ctx)
            .into_iter()
            .map(|(_, ns, table, _)| vec![s(ctx.database), s(ns), s(table), s("BASE TABLE")])
            .collect();
        return project(
            &compact,
            Rows::select(
                Rows::text_columns(["table_catalog", "table_schema", "table_name", "table_type"]),
                rows,
            ),
        );
    }
    if compact.contains("from information_schema.columns") {
        let mut rows = Vec::new();
        for (_, ns, table, schema) in selected(sql, ctx) {
            for (i, f) in schema.fields().iter().enumerate() {
                rows.push(vec![
                    s(ctx.database),
                    s(ns),
                    s(table),
                    s(f.name().clone()),
                    s((i + 1).to_string()),
                    s(if f.is_nullable() { "YES" } else { "NO" }),
                    s(type_name(&pg_type(f.data_type()))),
                ]);
            }
        }
        return project(
            &compact,
            Rows::select(
                vec![
                    ("table_catalog".into(), Type::TEXT),
                    ("table_schema".into(), Type::TEXT),
                    ("table_name".into(), Type::TEXT),
                    ("column_name".into(), Type::TEXT),
                    ("ordinal_position".into(), Type::INT4),
                    ("is_nullable".into(), Type::TEXT),
                    ("data_type".into(), Type::TEXT),
                ],
                rows,
            ),
        );
    }
    // `pg_settings` by name (pgjdbc asks for `max_index_keys`): what `SHOW` answers.
    if compact.contains("from pg_catalog.pg_settings") || compact.contains("from pg_settings") {
        let names = crate::metadata::select_list_names(&compact);
        let rows = SETTING_NAME
            .captures(sql)
            .and_then(|c| Some((c[1].to_ascii_lowercase(), setting(&c[1], ctx)?)))
            .map(|(name, value)| {
                names
                    .iter()
                    .map(|column| match column.as_str() {
                        "name" => s(name.clone()),
                        "setting" | "current_setting" => s(value.clone()),
                        _ => None,
                    })
                    .collect()
            });
        return Rows::select(Rows::text_columns(names), rows.into_iter().collect());
    }
    // JDBC's DatabaseMetaData (pgjdbc).
    let collapsed: String = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    if let Some(rows) = crate::metadata::answer(&collapsed, &compact, ctx) {
        return rows;
    }
    // Anything else of the catalogue (psql's footers: policies, statistics, publications,
    // inheritance; pgjdbc's keys, indexes and type lookups): no rows, under the names of
    // the select list, which drivers read columns by.
    Rows::select(
        Rows::text_columns(crate::metadata::select_list_names(&compact)),
        Vec::new(),
    )
}

static EQUALS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?:\w+\.)?(\w+)\s*=\s*'((?:[^']|'')*)'").unwrap());

/// An `information_schema` answer cut to the query's select list (plain column names,
/// `*` for all) and its `column = 'value'` filters; columns it does not know are null.
fn project(compact: &str, all: Rows) -> Rows {
    let index = |name: &str| all.columns.iter().position(|(c, _)| c == name);
    let rest = compact
        .split(" from ")
        .skip(1)
        .collect::<Vec<_>>()
        .join(" from ");
    let filters: Vec<(usize, String)> = EQUALS
        .captures_iter(&rest)
        .filter_map(|c| Some((index(&c[1])?, c[2].replace("''", "'"))))
        .collect();
    let rows: Vec<Vec<Option<String>>> = all
        .rows
        .iter()
        .filter(|row| {
            filters.iter().all(|(i, v)| {
                row[*i]
                    .as_deref()
                    .is_some_and(|x| x.eq_ignore_ascii_case(v))
            })
        })
        .cloned()
        .collect();
    let list = compact
        .strip_prefix("select ")
        .and_then(|r| r.split(" from ").next())
        .unwrap_or("*");
    if list.trim() == "*" {
        return Rows { rows, ..all };
    }
    let items: Vec<(Option<usize>, String)> = top_level_items(list)
        .iter()
        .map(|item| {
            let (expr, alias) = match item.split_once(" as ") {
                Some((e, a)) => (e.trim(), a.trim().trim_matches('"')),
                None => (item.as_str(), item.rsplit('.').next().unwrap_or(item)),
            };
            let column = expr.rsplit('.').next().unwrap_or(expr);
            (index(column), alias.to_owned())
        })
        .collect();
    Rows::select(
        items
            .iter()
            .map(|(i, alias)| {
                let ty = i.map_or(Type::TEXT, |i| all.columns[i].1.clone());
                (alias.clone(), ty)
            })
            .collect(),
        rows.iter()
            .map(|row| {
                items
                    .iter()
                    .map(|(i, _)| i.and_then(|i| row[i].clone()))
                    .collect()
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    fn ctx_tables() -> Vec<(String, SchemaRef)> {
        let person = Arc::new(Schema::new(vec![
            Field::new("person_id", DataType::Int64, false),
            Field::new("year_of_birth", DataType::Int32, true),
        ]));
        vec![("demo.person".into(), person)]
    }

    fn ctx(tables: &[(String, SchemaRef)]) -> Context<'_> {
        Context {
            database: "pmt_1",
            user: "ray",
            application_name: "psql",
            tables,
        }
    }

    #[test]
    fn session_statements() {
        let t = ctx_tables();
        let c = ctx(&t);
        assert!(matches!(
            answer("SET extra_float_digits = 3", &c),
            Some(Local::Command("SET"))
        ));
        assert!(matches!(
            answer("set application_name to 'x';", &c),
            Some(Local::Command("SET"))
        ));
        assert!(
            answer("SET work_mem = '1GB'", &c).is_none(),
            "for the service"
        );
        assert!(matches!(
            answer("SET TIME ZONE 'Europe/Paris'", &c),
            Some(Local::Error(..))
        ));
        assert!(matches!(answer("BEGIN", &c), Some(Local::Begin)));
        assert!(matches!(
            answer("rollback", &c),
            Some(Local::End("ROLLBACK"))
        ));
        let Some(Local::Rows(r)) = answer("SHOW transaction_isolation", &c) else {
            panic!()
        };
        assert_eq!(r.rows, vec![vec![Some("read committed".into())]]);
        let Some(Local::Rows(r)) = answer("SELECT version(), current_schema() AS s", &c) else {
            panic!()
        };
        assert_eq!(r.columns[1].0, "s");
        assert_eq!(r.rows[0][1].as_deref(), Some("demo"));
        assert!(answer("SELECT COUNT(*) FROM person", &c).is_none());
    }

    #[test]
    fn psql_describe() {
        let t = ctx_tables();
        let c = ctx(&t);
        let q1 = "SELECT c.oid,\n  n.nspname,\n  c.relname\nFROM pg_catalog.pg_class c\n     LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace\nWHERE c.relname OPERATOR(pg_catalog.~) '^(person)$' COLLATE pg_catalog.default\n  AND pg_catalog.pg_table_is_visible(c.oid)\nORDER BY 2, 3;";
        let Some(Local::Rows(r)) = answer(q1, &c) else {
            panic!()
        };
        assert_eq!(r.rows, vec![vec![s("16384"), s("demo"), s("person")]]);
        let q1b = q1.replace("person", "visit_occurrence");
        let Some(Local::Rows(r)) = answer(&q1b, &c) else {
            panic!()
        };
        assert!(r.rows.is_empty());
        let q3 = "SELECT a.attname,\n  pg_catalog.format_type(a.atttypid, a.atttypmod),\n  (SELECT 1),\n  a.attnotnull\nFROM pg_catalog.pg_attribute a\nWHERE a.attrelid = '16384' AND a.attnum > 0 AND NOT a.attisdropped\nORDER BY a.attnum;";
        let Some(Local::Rows(r)) = answer(q3, &c) else {
            panic!()
        };
        assert_eq!(r.rows.len(), 2);
        assert_eq!(r.rows[0][1].as_deref(), Some("bigint"));
        let Some(Local::Rows(r)) = answer(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'person' ORDER BY ordinal_position",
            &c,
        ) else {
            panic!()
        };
        assert_eq!(r.rows[0], vec![s("person_id"), s("bigint")]);
        let Some(Local::Rows(r)) = answer(
            "SELECT setting FROM pg_catalog.pg_settings WHERE name='max_index_keys'",
            &c,
        ) else {
            panic!()
        };
        assert_eq!(r.rows, vec![vec![s("32")]]);
        let other = answer("SELECT * FROM pg_catalog.pg_class WHERE oid = '99'", &c);
        let Some(Local::Rows(r)) = other else {
            panic!()
        };
        assert!(r.rows.is_empty());
    }
}
