//! Small helpers to run profile queries and read their single-row answers.

use crate::ReleaseSource;
use arrow::array::Array;
use arrow::util::display::array_value_to_string;

use agora_core::HasKind;

use crate::{Error, Result};

/// SQL identifier, always quoted: CDM has column names such as `offset`.
pub(crate) fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Runs `sql` and returns its rows as text (`None` for NULL).
pub(crate) async fn rows(
    ws: &impl ReleaseSource,
    table: &str,
    sql: &str,
) -> Result<Vec<Vec<Option<String>>>> {
    let started = std::time::Instant::now();
    let batches = ws.query(sql).await.map_err(|source| Error::Query {
        table: table.to_owned(),
        kind: source.kind(),
        source: Box::new(source),
    })?;
    tracing::debug!(
        table,
        ms = started.elapsed().as_millis() as u64,
        "quality query"
    );
    let mut result = Vec::new();
    for batch in &batches {
        for row in 0..batch.num_rows() {
            result.push(
                batch
                    .columns()
                    .iter()
                    .map(|c| {
                        (!c.is_null(row)).then(|| array_value_to_string(c, row).unwrap_or_default())
                    })
                    .collect(),
            );
        }
    }
    Ok(result)
}

/// The single row of an aggregate query.
pub(crate) async fn one_row(
    ws: &impl ReleaseSource,
    table: &str,
    sql: &str,
) -> Result<Vec<Option<String>>> {
    Ok(rows(ws, table, sql)
        .await?
        .into_iter()
        .next()
        .unwrap_or_default())
}

pub(crate) fn count(cell: &Option<String>) -> u64 {
    cell.as_deref().and_then(|s| s.parse().ok()).unwrap_or(0)
}
