//! What the Flight SQL metadata calls describe: exactly the permit's tables and columns.

use std::sync::OnceLock;

use agora_service::QuerySession;
use arrow::datatypes::Schema;
use arrow_flight::sql::SqlInfo;
use arrow_flight::sql::metadata::{SqlInfoData, SqlInfoDataBuilder};

/// The one catalog: the permit's session. Each permitted dataset is a schema in it.
pub(crate) const CATALOG: &str = "agora";

/// `(dataset, table, schema)` of every permitted table, sorted.
pub(crate) fn tables(session: &QuerySession) -> Vec<(String, String, Schema)> {
    session
        .table_schemas()
        .into_iter()
        .filter_map(|(name, schema)| {
            let (dataset, table) = name.split_once('.')?;
            Some((
                dataset.to_owned(),
                table.to_owned(),
                schema.as_ref().clone(),
            ))
        })
        .collect()
}

/// The permitted datasets, sorted and distinct.
pub(crate) fn datasets(session: &QuerySession) -> Vec<String> {
    let mut datasets: Vec<String> = tables(session).into_iter().map(|(d, _, _)| d).collect();
    datasets.dedup();
    datasets
}

/// What `GetSqlInfo` says about the server.
pub(crate) fn sql_info() -> &'static SqlInfoData {
    static INFO: OnceLock<SqlInfoData> = OnceLock::new();
    INFO.get_or_init(|| {
        let mut info = SqlInfoDataBuilder::new();
        info.append(SqlInfo::FlightSqlServerName, "Agora");
        info.append(SqlInfo::FlightSqlServerVersion, env!("CARGO_PKG_VERSION"));
        info.append(SqlInfo::FlightSqlServerArrowVersion, "1.3");
        // Researchers read; nothing they send writes.
        info.append(SqlInfo::FlightSqlServerReadOnly, true);
        info.append(SqlInfo::FlightSqlServerSql, true);
        info.append(SqlInfo::FlightSqlServerSubstrait, false);
        info.append(SqlInfo::FlightSqlServerTransaction, 0_i32);
        info.append(SqlInfo::FlightSqlServerCancel, false);
        info.append(SqlInfo::SqlDdlCatalog, false);
        info.append(SqlInfo::SqlDdlSchema, false);
        info.append(SqlInfo::SqlDdlTable, false);
        info.append(SqlInfo::SqlIdentifierQuoteChar, "\"");
        info.build().expect("the server's SQL info is well-formed")
    })
}
