//! Researcher workspaces: a DataFusion session built **only** from a data permit.
//!
//! [`PermitScope::resolve`] is the one way to obtain a scope: it asks the metadata store for
//! a permit that is usable by this user *now* (project active, permit activated, not revoked,
//! not expired, user an active member) and reads the permitted releases and the opt-out set.
//! [`PermitWorkspace`] then registers, per permitted table, a policy table over the release's
//! Parquet files — never the files themselves — whose plan is
//!
//! ```text
//!   scan(table) ─► row filters ─► anti-join opted-out persons on person_id ─► permitted columns,
//!                                                              person_id as agora_pseudonym(person_id)
//! ```
//!
//! behind a barrier ([`crate::barrier`]): the researcher's expressions only ever see rows
//! that passed the policy, so not even an error can tell anything about the others; filters
//! that cannot fail still reach the Parquet scan. `EXPLAIN ANALYZE` and `EXPLAIN VERBOSE` are
//! refused (their row counts would). Tables and columns the permit does not name do not
//! exist in the session; `information_schema` lists only the permitted ones. Each dataset of
//! the permit is a schema (`"dataset".table`); the first is the default schema.
//!
//! **Per-project pseudonyms.** The table's person key column (`person_id`, or the CDM's own:
//! `cohort.subject_id`) is projected as the project's pseudonym of the hub key
//! ([`agora_privacy::ProjectPseudonyms`], keyed by the hub secret and the permit's project,
//! derived from the [`agora_privacy::PseudonymKeys`] given to [`PermitScope::resolve`]): the
//! same person has the same id in every table and query of the project, ids never collide,
//! another project's ids are unrelated. The row filters and the opt-out anti-join run below
//! it on hub keys; the researcher's own filters run above it on pseudonyms. The function is
//! an instance in the plan, never registered: SQL cannot call it (`crate::pseudonym`). The
//! tagged twin disclosure control reads carries the hub key as its hidden person tag (it only
//! counts and groups persons, which the bijection preserves).
//!
//! Disclosure control wraps the query's output (`crate::disclosure`).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use agora_core::{ColumnType, DatasetName};
use agora_govern::{
    DisclosureRules, MetaStore, OutputPolicy, Precision, ReleasePolicy, ReleaseSelector, RowFilter,
    TableScope,
};
use agora_lake::{Lake, ReleaseManifest, TableEntry};
use agora_privacy::{ProjectPseudonyms, PseudonymKeys};
use chrono::{NaiveDate, NaiveTime};
use datafusion::arrow::array::{Int64Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::MemorySchemaProvider;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{Column, JoinType, ScalarValue, TableReference};
use datafusion::datasource::{MemTable, provider_as_source};
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder, lit};

use crate::barrier::PolicyTable;
use crate::disclosure::{DpRun, Ledger, PersonTables, Protection};
use crate::identifiers::{Shown, TableRules};
use crate::pseudonym::{pseudonym_expr, rekey_text_expr};
use crate::workspace::{Planned, QueryLimits, QueryOutput, Session};
use crate::{Error, QueryEngine, Result};

/// The column every person-level table keys its rows by: the hub person key in the lake,
/// the project's pseudonym of it in a permit workspace.
pub const PERSON_KEY: &str = "person_id";

/// Name of the (unregistered) opted-out key relation inside view plans.
const OPTED_OUT: &str = "agora_opted_out";

/// What one user may query under one permit, resolved at one moment. Built only by
/// [`PermitScope::resolve`].
#[derive(Debug, Clone)]
pub struct PermitScope {
    principal: String,
    permit_id: String,
    permit_version: i64,
    releases: Vec<PermittedRelease>,
    /// Hub person keys with an opt-out in force, ascending.
    opted_out: Arc<[i64]>,
    /// What may leave: the permit's output policy.
    output: OutputPolicy,
    /// The store the scope was resolved from (the disclosure ledger lives there).
    meta: MetaStore,
    /// The project (the permit's application): names its pseudonym key.
    project_id: String,
    /// The project's person-key pseudonyms.
    pseudonyms: Arc<ProjectPseudonyms>,
    /// Derives the project's record-number permutations (`pseudonymized-rows`).
    keys: PseudonymKeys,
}

#[derive(Debug, Clone)]
struct PermittedRelease {
    dataset: DatasetName,
    release: i64,
    manifest: Arc<ReleaseManifest>,
    tables: Vec<TableScope>,
}

impl PermitScope {
    /// The scope of `permit_id` for `user_id` at the store's current time, its person keys
    /// shown as the project's pseudonyms under `pseudonyms` (derived from the hub secret by
    /// the caller, who keeps the secret).
    ///
    /// Fails with [`Error::NoPermit`] — one message whatever the reason (no such permit, not
    /// a member, not yet active, expired, revoked) — so the answer reveals nothing about
    /// permits the user does not hold.
    pub async fn resolve(
        meta: &MetaStore,
        lake: &Lake,
        user_id: &str,
        permit_id: &str,
        pseudonyms: &PseudonymKeys,
    ) -> Result<Self> {
        let permit = meta
            .permit_for_query(user_id, permit_id, meta.now())
            .await?
            .ok_or(Error::NoPermit)?;
        let mut releases = Vec::with_capacity(permit.terms.datasets.len());
        for scope in &permit.terms.datasets {
            let dataset: DatasetName = scope.dataset.parse().map_err(|_| {
                Error::Permit("the permit names a dataset that is not a valid dataset name".into())
            })?;
            let ReleaseSelector::Number(number) = scope.release else {
                // Activation pins every release; an active permit never gets here.
                return Err(Error::Permit(format!(
                    "the permit's release of dataset {dataset} is not pinned"
                )));
            };
            let info = meta.release(&dataset, Some(number)).await?.ok_or_else(|| {
                Error::Permit(format!(
                    "the permit names release {number} of dataset {dataset}, which the hub does not hold"
                ))
            })?;
            let manifest = lake.read_manifest(&info.manifest_path).await?;
            releases.push(PermittedRelease {
                dataset,
                release: number,
                manifest,
                tables: scope.tables.clone(),
            });
        }
        if releases.is_empty() {
            return Err(Error::Permit("the permit grants no dataset".into()));
        }
        let opted_out: Arc<[i64]> = meta.opted_out_keys().await?.into();
        Ok(Self {
            principal: user_id.to_owned(),
            permit_id: permit.id,
            permit_version: permit.version,
            releases,
            opted_out,
            output: permit.terms.output,
            meta: meta.clone(),
            pseudonyms: Arc::new(pseudonyms.project(&permit.application_id)),
            keys: pseudonyms.clone(),
            project_id: permit.application_id,
        })
    }

    /// The user the scope was resolved for.
    pub fn principal(&self) -> &str {
        &self.principal
    }

    /// The permit's id.
    pub fn permit_id(&self) -> &str {
        &self.permit_id
    }

    /// The project the permit belongs to (its application's id): its pseudonyms are keyed
    /// by it.
    pub fn project_id(&self) -> &str {
        &self.project_id
    }

    /// The permit version the scope was built from (audit entries name it).
    pub fn permit_version(&self) -> i64 {
        self.permit_version
    }

    /// `(dataset, release)` pairs the scope covers, in permit order.
    pub fn releases(&self) -> impl Iterator<Item = (&DatasetName, i64)> {
        self.releases.iter().map(|r| (&r.dataset, r.release))
    }

    /// The permit's output policy.
    pub fn output_policy(&self) -> &OutputPolicy {
        &self.output
    }

    /// How many persons are excluded by opt-out (a count, never the keys).
    pub fn opted_out_count(&self) -> usize {
        self.opted_out.len()
    }
}

/// A researcher's policy-bounded query session: only the permit's tables, columns and rows,
/// opted-out persons removed.
pub struct PermitWorkspace {
    session: Session,
    scope: PermitScope,
    tables: Vec<String>,
    /// Each visible table's schema: exactly its permitted columns.
    schemas: Vec<(String, SchemaRef)>,
    /// The person-level tables, for disclosure control.
    persons: PersonTables,
    /// Differential privacy's noise.
    noise: Option<agora_privacy::NoiseSource>,
}

impl QueryEngine {
    /// A workspace bounded by `scope` (see the module documentation).
    pub async fn permit_workspace(
        &self,
        scope: PermitScope,
        limits: QueryLimits,
    ) -> Result<PermitWorkspace> {
        let default_schema = scope.releases[0].dataset.as_str();
        // Plan metrics (EXPLAIN ANALYZE) would count the rows the policy removes.
        let session = Session::new(self, default_schema, limits)?.without_plan_metrics();
        let catalog = session
            .ctx()
            .catalog("agora")
            .ok_or_else(|| Error::Engine("the session has no default catalog".into()))?;
        let opted_out = opted_out_plan(&scope.opted_out)?;
        let mut tables = Vec::new();
        let mut schemas = Vec::new();
        let mut persons = PersonTables::default();
        let mut keys = Rekeying {
            scope: &scope,
            records: HashMap::new(),
        };
        for release in &scope.releases {
            let schema = release.dataset.as_str();
            if catalog.schema(schema).is_none() {
                catalog
                    .register_schema(schema, Arc::new(MemorySchemaProvider::new()))
                    .map_err(|e| session.error(e))?;
            }
            for table in &release.tables {
                let entry = release.manifest.table(&table.table).ok_or_else(|| {
                    Error::Permit(format!(
                        "the permit names table {} of dataset {schema}, which release {} does not have",
                        table.table, release.release
                    ))
                })?;
                let (plan, tagged) = scoped_plan(
                    &session,
                    &release.manifest.source.model,
                    entry,
                    table,
                    opted_out.as_ref(),
                    &mut keys,
                )?;
                let provider: Arc<dyn datafusion::catalog::TableProvider> =
                    Arc::new(PolicyTable::new(plan));
                if let Some((plan, key)) = tagged {
                    persons.add(provider.clone(), Arc::new(PolicyTable::new(plan)), &key);
                }
                schemas.push((format!("{schema}.{}", table.table), provider.schema()));
                let replaced = session
                    .ctx()
                    .register_table(
                        TableReference::partial(schema, table.table.as_str()),
                        provider,
                    )
                    .map_err(|e| session.error(e))?;
                if replaced.is_some() {
                    // Two scopes for one table: which one applies would be an accident.
                    return Err(Error::Permit(format!(
                        "the permit names table {} of dataset {schema} twice",
                        table.table
                    )));
                }
                tables.push(format!("{schema}.{}", table.table));
            }
        }
        tables.sort();
        schemas.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(PermitWorkspace {
            session,
            scope,
            tables,
            schemas,
            persons,
            noise: None,
        })
    }
}

impl PermitWorkspace {
    /// The scope the workspace was built from.
    pub fn scope(&self) -> &PermitScope {
        &self.scope
    }

    /// Plans one read-only SQL statement inside the permit's scope, without disclosure
    /// control: its answer is the raw result (for the query service's own checks and
    /// tests; a researcher's answer goes through [`PermitWorkspace::plan_aggregates`]).
    pub async fn plan(&self, sql: &str) -> Result<Planned> {
        self.session.plan(sql).await
    }

    /// Plans one statement under the `aggregates` output policy (see the `disclosure`
    /// module): refused unless its answer is made of aggregates over persons; executing it
    /// withholds and rounds cells as `rules` say and reports what it did
    /// ([`crate::QueryStream::disclosure`]).
    pub async fn plan_aggregates(&self, sql: &str, rules: DisclosureRules) -> Result<Planned> {
        let planned = self.plan_researchers(sql).await?;
        let persons = self.persons.clone();
        let ledger = Ledger {
            meta: self.scope.meta.clone(),
            permit_id: self.scope.permit_id.clone(),
        };
        let dp = self.noise.clone().map(|noise| DpRun {
            noise,
            meta: self.scope.meta.clone(),
            permit_id: self.scope.permit_id.clone(),
            permit_version: self.scope.permit_version,
            actor: self.scope.principal.clone(),
            statement: sql.to_owned(),
        });
        planned
            .protect(move |plan| Protection::new(plan, &persons, rules, Some(ledger), dp))
            .await
    }

    /// Plans one statement under the `pseudonymized-rows` output policy: its answer's rows
    /// leave as computed over the policy tables, whose person keys are the project's
    /// pseudonyms and whose potential identifiers are already minimised
    /// ([`crate::identifiers`]). Refused unless the permit's policy is that one.
    pub async fn plan_rows(&self, sql: &str) -> Result<Planned> {
        if self.scope.output.policy != ReleasePolicy::PseudonymizedRows {
            return Err(Error::Permit(
                "the permit's output policy releases aggregates only".into(),
            ));
        }
        self.plan_researchers(sql).await
    }

    /// Plans a researcher's statement, refusing what shows more than the permit's rows:
    /// `EXPLAIN` (a plan holds counts, minima and maxima the engine folds from the files'
    /// statistics when nothing of the policy sits between a table and its files, and the
    /// release's file paths) and the engine's settings (`information_schema.df_settings`,
    /// `SHOW`: they name the hub's directories).
    async fn plan_researchers(&self, sql: &str) -> Result<Planned> {
        let planned = self.session.plan(sql).await?;
        let plan = planned.logical_plan();
        if matches!(plan, LogicalPlan::Explain(_) | LogicalPlan::Analyze(_)) {
            return Err(Error::Sql(
                "EXPLAIN is not available through a permit: a plan shows counts and values \
                 the engine reads from the data files' statistics, past the output policy"
                    .into(),
            ));
        }
        let mut settings = false;
        plan.apply_with_subqueries(|node| {
            if let LogicalPlan::TableScan(scan) = node
                && scan.table_name.table() == "df_settings"
                && scan.table_name.schema() == Some("information_schema")
            {
                settings = true;
            }
            Ok(TreeNodeRecursion::Continue)
        })
        .map_err(|e| Error::Engine(format!("statement check: {e}")))?;
        if settings {
            return Err(Error::Sql(
                "the engine's settings (information_schema.df_settings, SHOW) are not \
                 available through a permit"
                    .into(),
            ));
        }
        Ok(planned)
    }

    /// The noise differential privacy draws from (keyed by the hub secret); without it, a
    /// permit with a differential-privacy policy answers nothing.
    pub fn with_noise(mut self, noise: agora_privacy::NoiseSource) -> Self {
        self.noise = Some(noise);
        self
    }

    /// Plans, runs and collects one read-only SQL statement under the workspace's limits.
    pub async fn sql(&self, sql: &str) -> Result<QueryOutput> {
        self.session
            .plan(sql)
            .await?
            .execute()
            .await?
            .collect()
            .await
    }

    /// `dataset.table` names this workspace can see, sorted.
    pub fn tables(&self) -> &[String] {
        &self.tables
    }

    /// Each visible table (`dataset.table`, sorted) with its schema: exactly the permitted
    /// columns, typed as queries see them.
    pub fn table_schemas(&self) -> &[(String, SchemaRef)] {
        &self.schemas
    }
}

/// Name of the hidden last column of a person-level table's tagged twin.
const PERSON_TAG: &str = "__agora_person";

/// The project's re-keying functions, shared by every table of a workspace.
struct Rekeying<'a> {
    scope: &'a PermitScope,
    /// One permutation per record domain (`visit_occurrence_id`...).
    records: HashMap<String, Arc<ProjectPseudonyms>>,
}

impl Rekeying<'_> {
    fn record(&mut self, domain: &str) -> Arc<ProjectPseudonyms> {
        let scope = self.scope;
        self.records
            .entry(domain.to_owned())
            .or_insert_with(|| Arc::new(scope.keys.records(&scope.project_id, domain)))
            .clone()
    }
}

/// The view plan of one permitted table, and for a person-level table its tagged twin
/// (the same plan yielding the person key as a last column) with the key column's name.
fn scoped_plan(
    session: &Session,
    model: &str,
    entry: &TableEntry,
    scope: &TableScope,
    opted_out: Option<&LogicalPlan>,
    keys: &mut Rekeying<'_>,
) -> Result<(LogicalPlan, Option<(LogicalPlan, String)>)> {
    let err = |e| session.error(e);
    let provider = session.listing_table(entry)?;
    let mut plan =
        LogicalPlanBuilder::scan(entry.name.as_str(), provider_as_source(provider), None)
            .map_err(err)?;
    for filter in &scope.row_filters {
        plan = plan.filter(filter_expr(entry, filter)?).map_err(err)?;
    }
    let person_keys = person_columns(entry)?;
    // The first person column is the one opt-outs and disclosure control go by.
    let person_key = person_keys
        .first()
        .and_then(|name| entry.schema.columns.iter().find(|c| c.name == *name));
    if let (Some(key), Some(opted_out)) = (person_key, opted_out) {
        plan = plan
            .join(
                opted_out.clone(),
                JoinType::LeftAnti,
                (
                    vec![Column::new(Some(entry.name.as_str()), key.name.as_str())],
                    vec![Column::new(Some(OPTED_OUT), PERSON_KEY)],
                ),
                None,
            )
            .map_err(err)?;
    }
    let rules = TableRules {
        model,
        entry,
        person_keys: &person_keys,
        policy: keys.scope.output.policy,
        precision: &scope.precision,
    };
    let mut seen = HashSet::new();
    let mut projection = Vec::with_capacity(scope.columns.len());
    for name in &scope.columns {
        let Some(def) = entry.schema.columns.iter().find(|c| c.name == *name) else {
            return Err(Error::Permit(format!(
                "the permit allows column {name} of table {}, which the release does not have",
                entry.name
            )));
        };
        if !seen.insert(name.as_str()) {
            continue;
        }
        let column = Expr::Column(Column::new(Some(entry.name.as_str()), name));
        // Keys are shown re-keyed and identifiers minimised above the opt-out anti-join
        // and the row filters, which compare what is stored.
        let shown = match rules.shown(def)? {
            Shown::AsIs => column,
            Shown::Person => pseudonym_expr(&keys.scope.pseudonyms, column),
            Shown::Record(domain) => pseudonym_expr(&keys.record(&domain), column),
            Shown::TextKey => rekey_text_expr(&keys.scope.pseudonyms, column),
            Shown::Truncated(precision) => truncated(column, precision, def.ty),
            Shown::Absent => continue,
        };
        projection.push(shown.alias(name.as_str()));
    }
    if projection.is_empty() {
        return Err(Error::Permit(format!(
            "the permit allows no column of table {} that may be shown",
            entry.name
        )));
    }
    // The hidden tag is the hub key: disclosure control only counts, sketches and
    // partitions persons, which a bijection does not change, and a statement that does not
    // read the person key then pays nothing for pseudonyms.
    let tagged = match person_key {
        Some(key) => {
            let mut tagged = projection.clone();
            tagged.push(
                Expr::Column(Column::new(Some(entry.name.as_str()), key.name.as_str()))
                    .alias(PERSON_TAG),
            );
            let plan = plan
                .clone()
                .project(tagged)
                .map_err(err)?
                .build()
                .map_err(err)?;
            Some((plan, key.name.clone()))
        }
        None => None,
    };
    let plan = plan
        .project(projection)
        .map_err(err)?
        .build()
        .map_err(err)?;
    Ok((plan, tagged))
}

/// The columns of `entry` holding hub person keys: those the release records (Table
/// Schema person identifiers), else `person_id`, else the CDM's own for the table
/// (`cohort.subject_id`, re-keyed at ingest like `person_id`). OMOP tables whose rows
/// concern a person without such a column (they link through another table's key) cannot
/// be reached by the opt-out anti-join, so they cannot be granted yet.
fn person_columns(entry: &TableEntry) -> Result<Vec<String>> {
    let names: Vec<String> = if !entry.person_columns.is_empty() {
        entry.person_columns.clone()
    } else {
        let cdm = agora_cdm::spec(agora_cdm::CdmVersion::V5_4).table(&entry.name);
        match cdm.map(|t| t.person_rows()) {
            _ if entry.schema.index_of(PERSON_KEY).is_some() => vec![PERSON_KEY.to_owned()],
            Some(agora_cdm::PersonRows::Keyed(column))
                if entry.schema.index_of(column).is_some() =>
            {
                vec![column.to_owned()]
            }
            Some(agora_cdm::PersonRows::Keyed(_) | agora_cdm::PersonRows::WithoutKey) => {
                return Err(Error::Permit(format!(
                    "table {} holds person-level rows without a person column, so opt-outs \
                     cannot be applied to it; it cannot be granted yet",
                    entry.name
                )));
            }
            _ => vec![],
        }
    };
    for name in &names {
        let ty = entry
            .schema
            .columns
            .iter()
            .find(|c| c.name == *name)
            .map(|c| c.ty);
        if ty != Some(ColumnType::Int64) {
            return Err(Error::Permit(format!(
                "table {} has a {name} column that is not a hub person key",
                entry.name
            )));
        }
    }
    Ok(names)
}

/// `column` truncated to `precision`, keeping its type (a date stays a date).
fn truncated(column: Expr, precision: Precision, ty: ColumnType) -> Expr {
    let unit = match precision {
        Precision::Exact | Precision::Day => "day",
        Precision::Month => "month",
        Precision::Year => "year",
    };
    datafusion::logical_expr::cast(
        datafusion::functions::expr_fn::date_trunc(lit(unit), column),
        ty.arrow_type(),
    )
}

/// The opted-out keys as a one-column relation, or `None` when nobody opted out.
fn opted_out_plan(keys: &[i64]) -> Result<Option<LogicalPlan>> {
    if keys.is_empty() {
        return Ok(None);
    }
    let err = |e| Error::Engine(format!("opt-out relation: {e}"));
    let schema = Arc::new(Schema::new(vec![Field::new(
        PERSON_KEY,
        DataType::Int64,
        false,
    )]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![Arc::new(Int64Array::from(keys.to_vec()))],
    )
    .map_err(|e| err(e.into()))?;
    let table = MemTable::try_new(schema, vec![vec![batch]]).map_err(err)?;
    LogicalPlanBuilder::scan(OPTED_OUT, provider_as_source(Arc::new(table)), None)
        .and_then(LogicalPlanBuilder::build)
        .map(Some)
        .map_err(err)
}

/// A row filter as a plan expression over `entry`'s columns, type-checked against the
/// release so a permit can never silently filter nothing.
fn filter_expr(entry: &TableEntry, filter: &RowFilter) -> Result<Expr> {
    let name = filter.column();
    let ty = entry
        .schema
        .columns
        .iter()
        .find(|c| c.name == name)
        .map(|c| c.ty)
        .ok_or_else(|| {
            Error::Permit(format!(
                "a row filter of the permit uses column {name} of table {}, which the release does not have",
                entry.name
            ))
        })?;
    let column = || Expr::Column(Column::new(Some(entry.name.as_str()), name));
    let wrong_type = |wanted: &str| {
        Error::Permit(format!(
            "a row filter of the permit needs {wanted} column {name} of table {}",
            entry.name
        ))
    };
    let conjunction = |parts: Vec<Expr>| parts.into_iter().reduce(Expr::and);
    let expr = match filter {
        RowFilter::Period { from, to, .. } => {
            let bound = |day: NaiveDate, op: fn(Expr, Expr) -> Expr| -> Result<Expr> {
                Ok(op(
                    column(),
                    day_literal(ty, day).ok_or_else(|| wrong_type("a date"))?,
                ))
            };
            let mut parts = Vec::new();
            if let Some(day) = from {
                parts.push(bound(*day, Expr::gt_eq)?);
            }
            if let Some(day) = to {
                // Inclusive of the whole last day, whether the column is a date or a time.
                let next = day.succ_opt().ok_or_else(|| wrong_type("a date"))?;
                parts.push(bound(next, Expr::lt)?);
            }
            conjunction(parts)
        }
        RowFilter::AgeRange {
            min_age,
            max_age,
            at_year,
            ..
        } => {
            if ty != ColumnType::Int64 {
                return Err(wrong_type("an integer year-of-birth"));
            }
            let mut parts = Vec::new();
            if let Some(max) = max_age {
                parts.push(column().gt_eq(lit(i64::from(*at_year) - i64::from(*max))));
            }
            if let Some(min) = min_age {
                parts.push(column().lt_eq(lit(i64::from(*at_year) - i64::from(*min))));
            }
            conjunction(parts)
        }
        RowFilter::ValueIn { values, .. } => {
            if ty != ColumnType::Int64 {
                return Err(wrong_type("an integer"));
            }
            Some(column().in_list(values.iter().map(|v| lit(*v)).collect(), false))
        }
    };
    // A filter with both bounds open restricts nothing: keep every row, but say so in the
    // plan rather than silently skipping it.
    Ok(expr.unwrap_or_else(|| lit(true)))
}

/// Midnight of `day` as a literal comparable with a column of type `ty`.
fn day_literal(ty: ColumnType, day: NaiveDate) -> Option<Expr> {
    let micros = || day.and_time(NaiveTime::MIN).and_utc().timestamp_micros();
    let value = match ty {
        ColumnType::Date => {
            let epoch = NaiveDate::from_ymd_opt(1970, 1, 1)?;
            ScalarValue::Date32(Some(i32::try_from((day - epoch).num_days()).ok()?))
        }
        ColumnType::Timestamp => ScalarValue::TimestampMicrosecond(Some(micros()), None),
        ColumnType::TimestampUtc => {
            ScalarValue::TimestampMicrosecond(Some(micros()), Some("UTC".into()))
        }
        _ => return None,
    };
    Some(lit(value))
}
