//! Server-side cursors, as psql's `FETCH_COUNT` and scripts use them: `DECLARE name CURSOR
//! FOR query` runs the query through the query service (recorded when it starts, like any
//! answer), `FETCH [FORWARD] [n | ALL] [FROM | IN] name` takes the next rows of its stream,
//! `CLOSE name | ALL` drops it. A cursor without `WITH HOLD` lives in its transaction block,
//! as in PostgreSQL (declared outside one: 25P01), and ends at `COMMIT` or `ROLLBACK`.
//! Forward only: `SCROLL`, `MOVE` and backward fetches are refused.

use std::collections::HashMap;
use std::sync::LazyLock;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use futures::StreamExt;
use regex::Regex;

/// A cursor statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Command {
    /// `DECLARE name ... CURSOR [WITH[OUT] HOLD] FOR query`.
    Declare {
        name: String,
        query: String,
        hold: bool,
    },
    /// `FETCH`: at most `count` rows (`None`: all that are left).
    Fetch { name: String, count: Option<usize> },
    /// `CLOSE name`, or `CLOSE ALL` (`None`).
    Close(Option<String>),
    /// A cursor statement this front does not support (`SCROLL`, `MOVE`, backward).
    Unsupported(&'static str),
}

static DECLARE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?is)^declare\s+("(?:[^"]|"")+"|[a-z_][a-z0-9_$]*)\s+((?:binary\s+|asensitive\s+|insensitive\s+|no\s+scroll\s+|scroll\s+)*)cursor\s+(?:(with|without)\s+hold\s+)?for\s+(.+)$"#,
    )
    .expect("valid regex")
});

static FETCH: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?is)^(fetch|move)\s+(?:(next|forward\s+all|forward\s+\d+|forward|all|\d+|[a-z]+(?:\s+[-+]?\d+)?)\s+)?(?:(?:from|in)\s+)?("(?:[^"]|"")+"|[a-z_][a-z0-9_$]*)\s*$"#,
    )
    .expect("valid regex")
});

static CLOSE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?is)^close\s+("(?:[^"]|"")+"|[a-z_][a-z0-9_$]*)\s*$"#).expect("valid regex")
});

/// A cursor name as PostgreSQL folds it: quoted as written, unquoted lower-cased.
fn name(raw: &str) -> String {
    match raw.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
        Some(quoted) => quoted.replace("\"\"", "\""),
        None => raw.to_ascii_lowercase(),
    }
}

/// The cursor statement `sql` is, if it is one.
pub(crate) fn parse(sql: &str) -> Option<Command> {
    let sql = sql.trim().trim_end_matches(';').trim();
    if let Some(c) = DECLARE.captures(sql) {
        let options = c[2].to_ascii_lowercase();
        let words: Vec<&str> = options.split_whitespace().collect();
        let scroll = words
            .iter()
            .enumerate()
            .any(|(i, w)| *w == "scroll" && (i == 0 || words[i - 1] != "no"));
        if scroll {
            return Some(Command::Unsupported(
                "SCROLL cursors are not supported: cursors here move forward only",
            ));
        }
        return Some(Command::Declare {
            name: name(&c[1]),
            query: c[4].trim().to_owned(),
            hold: c
                .get(3)
                .is_some_and(|h| h.as_str().eq_ignore_ascii_case("with")),
        });
    }
    if let Some(c) = FETCH.captures(sql) {
        if c[1].eq_ignore_ascii_case("move") {
            return Some(Command::Unsupported("MOVE is not supported: use FETCH"));
        }
        let direction = c
            .get(2)
            .map(|d| d.as_str().to_ascii_lowercase())
            .unwrap_or_default();
        let words: Vec<&str> = direction.split_whitespace().collect();
        let count = match words.as_slice() {
            [] | ["next"] | ["forward"] => Some(Some(1)),
            ["all"] | ["forward", "all"] => Some(None),
            [n] | ["forward", n] => n.parse().ok().map(Some),
            _ => None,
        };
        return Some(match count {
            Some(count) => Command::Fetch {
                name: name(&c[3]),
                count,
            },
            None => Command::Unsupported(
                "only forward fetches are supported (FETCH [FORWARD] [n | ALL])",
            ),
        });
    }
    if let Some(c) = CLOSE.captures(sql) {
        return Some(if c[1].eq_ignore_ascii_case("all") {
            Command::Close(None)
        } else {
            Command::Close(Some(name(&c[1])))
        });
    }
    None
}

/// An open cursor: the rest of an answer.
pub(crate) struct Cursor {
    schema: SchemaRef,
    answer: agora_service::Answer,
    /// Rows of a batch not fetched yet (the batch and where its rest starts).
    pending: Option<(RecordBatch, usize)>,
    hold: bool,
}

impl Cursor {
    pub(crate) fn new(answer: agora_service::Answer, hold: bool) -> Self {
        Self {
            schema: answer.schema().clone(),
            answer,
            pending: None,
            hold,
        }
    }

    pub(crate) fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// The next `count` rows (all that are left for `None`), as batches.
    pub(crate) async fn fetch(
        &mut self,
        count: Option<usize>,
    ) -> agora_service::Result<Vec<RecordBatch>> {
        let mut wanted = count.unwrap_or(usize::MAX);
        let mut out = Vec::new();
        while wanted > 0 {
            let (batch, start) = match self.pending.take() {
                Some(p) => p,
                None => match self.answer.next().await {
                    Some(batch) => (batch?, 0),
                    None => break,
                },
            };
            let left = batch.num_rows() - start;
            let take = left.min(wanted);
            out.push(batch.slice(start, take));
            wanted -= take;
            if take < left {
                self.pending = Some((batch, start + take));
            }
        }
        Ok(out)
    }
}

/// A connection's open cursors.
#[derive(Default)]
pub(crate) struct Cursors(tokio::sync::Mutex<HashMap<String, Cursor>>);

impl Cursors {
    pub(crate) async fn lock(&self) -> tokio::sync::MutexGuard<'_, HashMap<String, Cursor>> {
        self.0.lock().await
    }

    /// The end of a transaction block: cursors without `WITH HOLD` close.
    pub(crate) async fn end_transaction(&self) {
        self.0.lock().await.retain(|_, c| c.hold);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_statements_parse_as_postgresql_reads_them() {
        assert_eq!(
            parse("DECLARE _psql_cursor NO SCROLL CURSOR FOR\nSELECT 1"),
            Some(Command::Declare {
                name: "_psql_cursor".into(),
                query: "SELECT 1".into(),
                hold: false,
            })
        );
        assert_eq!(
            parse(r#"declare "My ""c""" binary cursor with hold for select 2;"#),
            Some(Command::Declare {
                name: r#"My "c""#.into(),
                query: "select 2".into(),
                hold: true,
            })
        );
        assert!(matches!(
            parse("DECLARE c SCROLL CURSOR FOR SELECT 1"),
            Some(Command::Unsupported(_))
        ));
        let fetch = |count| {
            Some(Command::Fetch {
                name: "c".into(),
                count,
            })
        };
        assert_eq!(
            parse("FETCH FORWARD 100 FROM _psql_cursor").map(|_| ()),
            Some(())
        );
        assert_eq!(parse("fetch forward 100 from c"), fetch(Some(100)));
        assert_eq!(parse("FETCH 5 IN c"), fetch(Some(5)));
        assert_eq!(parse("FETCH c"), fetch(Some(1)));
        assert_eq!(parse("FETCH NEXT FROM c"), fetch(Some(1)));
        assert_eq!(parse("FETCH ALL FROM C"), fetch(None));
        assert_eq!(parse("FETCH FORWARD ALL IN c"), fetch(None));
        assert!(matches!(
            parse("FETCH BACKWARD 2 FROM c"),
            Some(Command::Unsupported(_))
        ));
        assert!(matches!(
            parse("FETCH PRIOR FROM c"),
            Some(Command::Unsupported(_))
        ));
        assert!(matches!(
            parse("MOVE 3 IN c"),
            Some(Command::Unsupported(_))
        ));
        assert_eq!(parse("CLOSE c"), Some(Command::Close(Some("c".into()))));
        assert_eq!(parse("CLOSE ALL"), Some(Command::Close(None)));
        assert_eq!(parse("SELECT 1"), None);
        assert_eq!(parse("SELECT * FROM fetch_log"), None);
    }
}
