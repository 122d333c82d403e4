//! The catalogue queries of JDBC's `DatabaseMetaData` as pgjdbc (`org.postgresql`) sends
//! them, which DBeaver's schema browser and other JDBC tools call: `getSchemas`,
//! `getTables`, `getColumns` (recognised by their shape), answered from the session's
//! permitted tables and columns only. Their name filters are SQL `LIKE` patterns.
//!
//! Every other catalogue query (`getPrimaryKeys`, `getImportedKeys`, `getIndexInfo`,
//! `getTypeInfo`, pgjdbc's type lookups) gets no rows, under the column names its select
//! list gives: the permit's tables have no keys, indexes or user-defined types, and
//! nothing outside the permit is ever listed.

use std::sync::LazyLock;

use arrow::datatypes::SchemaRef;
use pgwire::api::Type;
use regex::Regex;

use crate::encode::pg_type;
use crate::local::{Context, Rows, s, split, top_level_items};

/// `column LIKE 'pattern'` (or `E'pattern'`) for the columns pgjdbc filters on.
static LIKE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(?:^|[\s(])((?:\w+\.)?\w+)\s+like\s+E?'((?:[^']|'')*)'").unwrap()
});

/// The SQL `LIKE` patterns `sql` applies to `column` (`nspname` also matches
/// `n.nspname`), as matchers.
fn like_filters(sql: &str, column: &str) -> Vec<Regex> {
    LIKE.captures_iter(sql)
        .filter(|c| {
            let name = c[1].to_ascii_lowercase();
            name.rsplit('.').next() == Some(column)
        })
        .map(|c| like_regex(&c[2].replace("''", "'")))
        .collect()
}

/// A `LIKE` pattern (`%`, `_`, `\` escapes) as an anchored regex.
fn like_regex(pattern: &str) -> Regex {
    let mut re = String::from("^");
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '%' => re.push_str(".*"),
            '_' => re.push('.'),
            '\\' => {
                if let Some(next) = chars.next() {
                    re.push_str(&regex::escape(&next.to_string()));
                }
            }
            c => re.push_str(&regex::escape(&c.to_string())),
        }
    }
    re.push('$');
    Regex::new(&re).unwrap_or_else(|_| Regex::new("$^").unwrap())
}

fn all_match(filters: &[Regex], value: &str) -> bool {
    filters.iter().all(|re| re.is_match(value))
}

/// The permitted tables, `(schema, table, columns)`, sorted as pgjdbc orders them.
fn tables<'c>(ctx: &'c Context<'_>) -> Vec<(&'c str, &'c str, &'c SchemaRef)> {
    let mut out: Vec<_> = ctx
        .tables
        .iter()
        .map(|(name, schema)| {
            let (ns, table) = split(name);
            (ns, table, schema)
        })
        .collect();
    out.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    out
}

/// pgjdbc's answer to `compact` (lower case, whitespace collapsed), if it is one of the
/// `DatabaseMetaData` queries this module knows.
/// `sql` is the query as sent (its patterns keep their case).
pub(crate) fn answer(sql: &str, compact: &str, ctx: &Context<'_>) -> Option<Rows> {
    if compact.starts_with("select nspname as table_schem")
        && compact.contains("from pg_catalog.pg_namespace")
    {
        return Some(schemas(sql, ctx));
    }
    if compact.contains(" as table_type")
        && compact.contains("from pg_catalog.pg_namespace n, pg_catalog.pg_class c")
    {
        return Some(tables_listing(sql, compact, ctx));
    }
    if compact.contains("select n.nspname,c.relname,a.attname,a.atttypid") {
        return Some(columns(sql, ctx));
    }
    None
}

/// `getSchemas`: the permit's datasets.
fn schemas(sql: &str, ctx: &Context<'_>) -> Rows {
    let filters = like_filters(sql, "nspname");
    let mut names: Vec<&str> = tables(ctx).into_iter().map(|(ns, _, _)| ns).collect();
    names.dedup();
    let rows = names
        .into_iter()
        .filter(|ns| all_match(&filters, ns))
        .map(|ns| vec![s(ns), None])
        .collect();
    Rows::select(
        vec![
            ("table_schem".into(), Type::NAME),
            ("table_catalog".into(), Type::TEXT),
        ],
        rows,
    )
}

/// `getTables`: the permitted tables, when the asked types include plain tables.
fn tables_listing(sql: &str, compact: &str, ctx: &Context<'_>) -> Rows {
    let columns = [
        ("table_cat", Type::TEXT),
        ("table_schem", Type::NAME),
        ("table_name", Type::NAME),
        ("table_type", Type::TEXT),
        ("remarks", Type::TEXT),
        ("type_cat", Type::TEXT),
        ("type_schem", Type::TEXT),
        ("type_name", Type::TEXT),
        ("self_referencing_col_name", Type::TEXT),
        ("ref_generation", Type::TEXT),
    ]
    .map(|(n, t)| (n.to_owned(), t))
    .to_vec();
    // With a type list, pgjdbc adds `AND (false OR (clause) ...)`; its clause for TABLE is
    // the only one that selects ordinary tables outside the system schemas.
    let typed = compact.contains(" and (false ");
    let tables_asked = !typed || compact.contains("c.relkind = 'r' and n.nspname !~ '^pg_'");
    let (schema_filters, table_filters) =
        (like_filters(sql, "nspname"), like_filters(sql, "relname"));
    let rows = if tables_asked {
        tables(ctx)
            .into_iter()
            .filter(|(ns, table, _)| {
                all_match(&schema_filters, ns) && all_match(&table_filters, table)
            })
            .map(|(ns, table, _)| {
                let mut row = vec![None, s(ns), s(table), s("TABLE"), None];
                row.extend(std::iter::repeat_n(s(""), 5));
                row
            })
            .collect()
    } else {
        Vec::new()
    };
    Rows::select(columns, rows)
}

/// `getColumns`: the permitted columns, numbered as the permit shows them; pgjdbc turns
/// the type oids into JDBC types and sizes itself.
fn columns(sql: &str, ctx: &Context<'_>) -> Rows {
    let columns = [
        ("nspname", Type::NAME),
        ("relname", Type::NAME),
        ("attname", Type::NAME),
        ("atttypid", Type::OID),
        ("attnotnull", Type::BOOL),
        ("atttypmod", Type::INT4),
        ("attlen", Type::INT2),
        ("typtypmod", Type::INT4),
        ("attnum", Type::INT8),
        ("attidentity", Type::CHAR),
        ("attgenerated", Type::CHAR),
        ("adsrc", Type::TEXT),
        ("description", Type::TEXT),
        ("typbasetype", Type::OID),
        ("typtype", Type::CHAR),
    ]
    .map(|(n, t)| (n.to_owned(), t))
    .to_vec();
    let (schema_filters, table_filters, column_filters) = (
        like_filters(sql, "nspname"),
        like_filters(sql, "relname"),
        like_filters(sql, "attname"),
    );
    let mut rows = Vec::new();
    for (ns, table, schema) in tables(ctx) {
        if !(all_match(&schema_filters, ns) && all_match(&table_filters, table)) {
            continue;
        }
        for (i, f) in schema.fields().iter().enumerate() {
            if !all_match(&column_filters, f.name()) {
                continue;
            }
            let ty = pg_type(f.data_type());
            rows.push(vec![
                s(ns),
                s(table),
                s(f.name().clone()),
                s(ty.oid().to_string()),
                s(if f.is_nullable() { "f" } else { "t" }),
                s("-1"),
                s("-1"),
                s("-1"),
                s((i + 1).to_string()),
                None,
                None,
                None,
                None,
                s("0"),
                s("b"),
            ]);
        }
    }
    Rows::select(columns, rows)
}

/// The column names of a query's outermost select list (its aliases, else the last part of
/// a column reference, else `?column?`), for an empty answer a driver can still read by
/// name.
pub(crate) fn select_list_names(compact: &str) -> Vec<String> {
    let Some(rest) = compact.strip_prefix("select ") else {
        return Vec::new();
    };
    // The select list ends at the first `from` outside parentheses and quotes.
    let (mut depth, mut quote, mut end) = (0i32, None::<char>, rest.len());
    for (i, c) in rest.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '(') => depth += 1,
            (None, ')') => depth -= 1,
            (None, ' ') if depth == 0 && rest[i..].starts_with(" from ") => {
                end = i;
                break;
            }
            _ => {}
        }
    }
    top_level_items(&rest[..end])
        .iter()
        .map(|item| item.trim())
        .filter(|item| *item != "*" && !item.ends_with(".*"))
        .map(|item| {
            if let Some((_, alias)) = item.rsplit_once(" as ") {
                return alias.trim().trim_matches('"').to_owned();
            }
            let last = item.rsplit('.').next().unwrap_or(item).trim_matches('"');
            if !last.is_empty() && last.chars().all(|c| c.is_alphanumeric() || c == '_') {
                last.to_owned()
            } else {
                "?column?".to_owned()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns() {
        assert!(like_regex("per%").is_match("person"));
        assert!(like_regex("p_rson").is_match("person"));
        assert!(!like_regex("person").is_match("person_x"));
        assert!(like_regex(r"condition\_occurrence").is_match("condition_occurrence"));
        assert!(!like_regex(r"condition\_occurrence").is_match("conditionXoccurrence"));
        assert!(like_regex("a.b").is_match("a.b") && !like_regex("a.b").is_match("axb"));
        let sql = "select * from x where n.nspname like 'demo' and c.relname like 'pe''r%'";
        assert_eq!(like_filters(sql, "nspname").len(), 1);
        assert!(like_filters(sql, "relname")[0].is_match("pe'rson"));
        assert!(like_filters(sql, "attname").is_empty());
    }

    fn tables_of(rows: &Rows, column: usize) -> Vec<String> {
        rows.rows
            .iter()
            .map(|r| r[column].clone().unwrap_or_default())
            .collect()
    }

    /// The queries as pgjdbc 42.x sends them (abridged where the front does not look).
    #[test]
    fn pgjdbc_queries_list_the_permitted_tables_only() {
        use std::sync::Arc;

        use arrow::datatypes::{DataType, Field, Schema};

        let person = Arc::new(Schema::new(vec![
            Field::new("person_id", DataType::Int64, false),
            Field::new("year_of_birth", DataType::Int32, true),
        ]));
        let visit = Arc::new(Schema::new(vec![Field::new(
            "visit_start_date",
            DataType::Date32,
            false,
        )]));
        let tables = vec![
            ("demo.visit_occurrence".to_owned(), visit),
            ("demo.person".to_owned(), person),
        ];
        let ctx = Context {
            database: "pmt_1",
            user: "ray",
            application_name: "PostgreSQL JDBC Driver",
            tables: &tables,
        };
        let ask = |sql: &str| {
            let collapsed = sql.split_whitespace().collect::<Vec<_>>().join(" ");
            answer(&collapsed, &collapsed.to_ascii_lowercase(), &ctx).expect(sql)
        };

        let schemas = ask(
            "SELECT nspname AS TABLE_SCHEM, NULL AS TABLE_CATALOG FROM pg_catalog.pg_namespace  \
             WHERE nspname <> 'pg_toast' AND (nspname !~ '^pg_temp_'  OR nspname = \
             (pg_catalog.current_schemas(true))[1]) ORDER BY TABLE_SCHEM",
        );
        assert_eq!(tables_of(&schemas, 0), vec!["demo"]);

        let get_tables = |filters: &str| {
            ask(&format!(
                "SELECT NULL AS TABLE_CAT, n.nspname AS TABLE_SCHEM, c.relname AS TABLE_NAME, \
                 CASE n.nspname ~ '^pg_' OR n.nspname = 'information_schema' WHEN true THEN \
                 NULL END AS TABLE_TYPE, d.description AS REMARKS, '' as TYPE_CAT \
                 FROM pg_catalog.pg_namespace n, pg_catalog.pg_class c \
                 LEFT JOIN pg_catalog.pg_description d ON (c.oid = d.objoid) \
                 WHERE c.relnamespace = n.oid {filters} ORDER BY TABLE_TYPE,TABLE_SCHEM,TABLE_NAME"
            ))
        };
        let all = get_tables("");
        assert_eq!(tables_of(&all, 2), vec!["person", "visit_occurrence"]);
        assert_eq!(all.rows[0][3].as_deref(), Some("TABLE"));
        let table_type = " AND (false  OR ( c.relkind = 'r' AND n.nspname !~ '^pg_' AND \
                          n.nspname <> 'information_schema' ) ) ";
        let named = get_tables(&format!(
            " AND n.nspname LIKE 'demo' AND c.relname LIKE 'pers%' {table_type}"
        ));
        assert_eq!(tables_of(&named, 2), vec!["person"]);
        let views = get_tables(
            " AND (false  OR ( c.relkind = 'v' AND n.nspname <> 'pg_catalog' AND \
             n.nspname <> 'information_schema' ) ) ",
        );
        assert!(views.rows.is_empty());
        assert!(get_tables(" AND n.nspname LIKE 'other' ").rows.is_empty());

        let get_columns = |filters: &str, column: &str| {
            ask(&format!(
                "SELECT * FROM (SELECT n.nspname,c.relname,a.attname,a.atttypid,a.attnotnull \
                 OR (t.typtype = 'd' AND t.typnotnull) AS attnotnull,a.atttypmod,a.attlen,\
                 t.typtypmod,row_number() OVER (PARTITION BY a.attrelid ORDER BY a.attnum) AS \
                 attnum, nullif(a.attidentity, '') as attidentity, \
                 pg_catalog.pg_get_expr(def.adbin, def.adrelid) AS adsrc,dsc.description,\
                 t.typbasetype,t.typtype  FROM pg_catalog.pg_namespace n  JOIN \
                 pg_catalog.pg_class c ON (c.relnamespace = n.oid) WHERE c.relkind in \
                 ('r','p','v','f','m') and a.attnum > 0 AND NOT a.attisdropped {filters}) c \
                 WHERE true {column} ORDER BY nspname,c.relname,attnum "
            ))
        };
        let columns = get_columns("", "");
        assert_eq!(
            tables_of(&columns, 2),
            vec!["person_id", "year_of_birth", "visit_start_date"]
        );
        // Type oid (int8 = 20, int4 = 23), not null, position.
        assert_eq!(columns.rows[1][3].as_deref(), Some("23"));
        assert_eq!(columns.rows[0][4].as_deref(), Some("t"));
        assert_eq!(columns.rows[1][8].as_deref(), Some("2"));
        let one = get_columns(" AND c.relname LIKE 'person'", " AND attname LIKE '%birth'");
        assert_eq!(tables_of(&one, 2), vec!["year_of_birth"]);
    }

    #[test]
    fn select_list_names_of_an_unknown_query() {
        assert_eq!(
            select_list_names(
                "select result.table_cat, result.key_seq, count(*), x as \"Y\" from (select 1 from a) result"
            ),
            vec!["table_cat", "key_seq", "?column?", "Y"]
        );
    }
}
