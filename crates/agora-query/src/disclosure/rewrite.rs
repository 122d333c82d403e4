//! Finding a statement's release points and rewriting each so that its groups carry their
//! hidden counts of distinct persons (see the module documentation of `disclosure`).

use std::collections::HashMap;
use std::sync::Arc;

use agora_govern::{DisclosureRules, DpPolicy};
use agora_privacy::{CountMechanism, SumMechanism};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::DataType;
use datafusion::catalog::TableProvider;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, DFSchemaRef, JoinType, ScalarValue};
use datafusion::datasource::{MemTable, provider_as_source, source_as_provider};
use datafusion::functions_aggregate::expr_fn::{count_distinct, max, min, sum};
use datafusion::logical_expr::ExprFunctionExt;
use datafusion::logical_expr::expr::WindowFunction;
use datafusion::logical_expr::utils::grouping_set_to_exprlist;
use datafusion::logical_expr::{
    Aggregate, Distinct, DistinctOn, Expr, LogicalPlan, Projection, TableScanBuilder, Window, cast,
    lit, when,
};

use crate::{Error, Result};

/// The permitted person-level tables of a session: for each, the provider the statement
/// sees and its twin that also yields the person key as a last, hidden column.
#[derive(Debug, Default, Clone)]
pub(crate) struct PersonTables {
    tables: Vec<PersonTable>,
}

#[derive(Debug, Clone)]
struct PersonTable {
    visible: Arc<dyn TableProvider>,
    tagged: Arc<dyn TableProvider>,
    /// The visible column holding the person key, if the permit grants it.
    key: String,
}

impl PersonTables {
    pub(crate) fn add(
        &mut self,
        visible: Arc<dyn TableProvider>,
        tagged: Arc<dyn TableProvider>,
        key: &str,
    ) {
        self.tables.push(PersonTable {
            visible,
            tagged,
            key: key.to_owned(),
        });
    }

    fn find(
        &self,
        source: &Arc<dyn datafusion::logical_expr::TableSource>,
    ) -> Option<&PersonTable> {
        let provider = source_as_provider(source).ok()?;
        let at = Arc::as_ptr(&provider) as *const ();
        self.tables
            .iter()
            .find(|t| Arc::as_ptr(&t.visible) as *const () == at)
    }

    /// Whether `name` is the person key column of a person-level table.
    fn is_key_name(&self, name: &str) -> bool {
        self.tables.iter().any(|t| t.key == name)
    }

    /// Whether `plan` (subqueries included) reads a person-level table.
    pub(crate) fn reads_persons(&self, plan: &LogicalPlan) -> bool {
        let mut found = false;
        let _ = plan.apply_with_subqueries(|p| {
            if let LogicalPlan::TableScan(scan) = p
                && self.find(&scan.source).is_some()
            {
                found = true;
                return Ok(TreeNodeRecursion::Stop);
            }
            Ok(TreeNodeRecursion::Continue)
        });
        found
    }
}

/// What a column of a rewritten plan carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Carry {
    /// Data.
    Data,
    /// A person key, as stored (a permitted `person_id`): the same value as person tag `.0`.
    Person(u32),
    /// A value computed from a person key.
    Derived,
    /// Hidden: the person each row belongs to (tags with the same number hold the same
    /// person on every row).
    PersonTag(u32),
    /// Hidden: the fewest distinct persons behind any group this row was aggregated from.
    CountTag,
}

impl Carry {
    fn is_tag(self) -> bool {
        matches!(self, Carry::PersonTag(_) | Carry::CountTag)
    }

    fn is_person(self) -> bool {
        matches!(self, Carry::Person(_) | Carry::Derived)
    }
}

/// A rewritten plan and what each of its columns carries.
struct Rel {
    plan: LogicalPlan,
    carry: Vec<Carry>,
}

impl Rel {
    fn data(plan: &LogicalPlan) -> Rel {
        Rel {
            carry: vec![Carry::Data; plan.schema().fields().len()],
            plan: plan.clone(),
        }
    }

    fn tags(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.carry.len()).filter(|&i| self.carry[i].is_tag())
    }

    fn column(&self, i: usize) -> Expr {
        Expr::Column(Column::from(self.plan.schema().qualified_field(i)))
    }

    /// Whether grouping (or partitioning) by `exprs` puts each person's rows apart: the
    /// rows carry one person tag and no count tag, and `exprs` include that person's key.
    fn per_person<'e>(&self, mut exprs: impl Iterator<Item = &'e Expr>) -> bool {
        let mut tags = self.tags().map(|t| self.carry[t]);
        let (Some(Carry::PersonTag(id)), None) = (tags.next(), tags.next()) else {
            return false;
        };
        exprs.any(|e| self.carry_of(e) == Carry::Person(id))
    }

    /// What `expr`, evaluated over this relation, carries.
    fn carry_of(&self, expr: &Expr) -> Carry {
        let schema = self.plan.schema();
        let carries = |c: &Column| {
            schema
                .maybe_index_of_column(c)
                .map_or(Carry::Data, |i| self.carry[i])
        };
        if let Expr::Column(c) = strip(expr) {
            return match carries(c) {
                tag if tag.is_tag() => Carry::Data,
                other => other,
            };
        }
        if expr
            .column_refs()
            .into_iter()
            .any(|c| carries(c).is_person())
        {
            Carry::Derived
        } else {
            Carry::Data
        }
    }
}

/// `expr` without aliases and casts.
fn strip(expr: &Expr) -> &Expr {
    match expr {
        Expr::Alias(a) => strip(&a.expr),
        Expr::Cast(c) => strip(&c.expr),
        Expr::TryCast(c) => strip(&c.expr),
        other => other,
    }
}

fn refuse(msg: impl Into<String>) -> Error {
    Error::Disclosure(msg.into())
}

const PER_PERSON: &str = "the answer would show rows of individual persons; under this \
     permit only aggregates over persons can leave. Aggregate instead: for example \
     SELECT gender_concept_id, COUNT(*) FROM person GROUP BY gender_concept_id";

const PERSON_KEY_OUT: &str = "the answer would group by or show a person key (or a value \
     computed from one), which releases one row per person; group by attributes (a year of \
     birth, a concept) and count persons with COUNT(DISTINCT person_id) instead";

const LIMIT_BELOW: &str = "LIMIT or OFFSET before the aggregate picks rows by their values \
     (one person's extreme, for instance); LIMIT the answer instead";

const CONDITIONAL_ARITHMETIC: &str = "inside SUM, AVG and the other statistics of values, \
     choose rows with FILTER (WHERE ...) or CASE WHEN ... THEN value END (other rows NULL or \
     0): conditions combined with arithmetic (an ELSE 1, a CASE plus 1, a comparison cast to a \
     number) can encode a count of a few persons";

const PERSON_ONLY_FUNCTION: &str = "returns the value of a single row, which discloses one \
     person's data; it is only allowed inside a per-person aggregate (GROUP BY person_id in a \
     subquery). For a distribution use median(x) or approx_percentile_cont(x, 0.05)";

/// Aggregate functions that may be released over groups of persons: their value summarises
/// many rows. Everything else (`min`, `max`, `first_value`, `array_agg`, `string_agg`...
/// and any function not listed) returns or lists row values.
const RELEASABLE_AGGREGATES: &[&str] = &[
    "count",
    "sum",
    "avg",
    "median",
    "approx_median",
    "approx_percentile_cont",
    "approx_percentile_cont_with_weight",
    "percentile_cont",
    "approx_distinct",
    "stddev",
    "stddev_pop",
    "var",
    "var_pop",
    "var_samp",
    "stddev_samp",
    "corr",
    "covar",
    "covar_samp",
    "covar_pop",
    "regr_slope",
    "regr_intercept",
    "regr_count",
    "regr_r2",
    "regr_avgx",
    "regr_avgy",
    "regr_sxx",
    "regr_syy",
    "regr_sxy",
    "bool_and",
    "bool_or",
    "grouping",
];

/// Aggregates whose value is a number of rows or values: rounded by the profile.
const COUNTS: &[&str] = &["count", "approx_distinct", "regr_count"];

/// Aggregates for which a row whose argument is 0 does not contribute (a sum of
/// `CASE WHEN rare THEN 1 ELSE 0 END` rests on the rare persons only).
const ZERO_IS_ABSENT: &[&str] = &[
    "sum",
    "avg",
    "stddev",
    "stddev_pop",
    "stddev_samp",
    "var",
    "var_pop",
    "var_samp",
];

/// How one aggregate column of a release point is released.
#[derive(Debug, Clone)]
pub(crate) struct Cell {
    /// Its index in the aggregate's output.
    pub(crate) index: usize,
    /// A count (rounded by the profile).
    pub(crate) is_count: bool,
    /// Hidden columns holding, per tag, the persons contributing to this cell.
    pub(crate) hidden: Vec<usize>,
    /// Hidden `(largest |value|, sum of |value|)` for the dominance rule.
    pub(crate) dominance: Option<(usize, usize)>,
    /// The hidden sketch of its contributors, when a FILTER or an expression chooses
    /// them (for the ledger: two such cells, or such a cell and its group, must not differ
    /// by a few persons).
    pub(crate) sketch: Option<usize>,
}

/// One release point: an aggregate rewritten to carry hidden counts.
#[derive(Debug, Clone)]
pub(crate) struct ReleasePoint {
    /// The rewritten aggregate: its original columns, then the hidden ones.
    pub(crate) plan: LogicalPlan,
    /// The node of the statement's plan it stands for.
    pub(crate) original: LogicalPlan,
    /// The original aggregate's schema (what phase 2 reads).
    pub(crate) schema: DFSchemaRef,
    /// Group columns (before the grouping id).
    pub(crate) groups: usize,
    /// The grouping id column of a ROLLUP / CUBE / GROUPING SETS aggregate.
    pub(crate) grouping_id: Option<usize>,
    /// Hidden columns holding, per tag, the distinct persons of the group.
    pub(crate) group_hidden: Vec<usize>,
    /// The aggregate columns.
    pub(crate) cells: Vec<Cell>,
    /// The hidden sketch of the group's persons (first person tag), for the ledger.
    pub(crate) sketch: Option<usize>,
    /// Differential privacy: how each cell is noised.
    pub(crate) dp: Option<DpPoint>,
}

/// A release point under differential privacy: each person's rows are bounded (at most
/// `rows_per_person` rows reach the aggregate), groups are selected on a noisy person count,
/// and every cell is noisy.
#[derive(Debug, Clone)]
pub(crate) struct DpPoint {
    /// The noisy person count deciding whether a group is released (grouped points).
    pub(crate) selection: Option<CountMechanism>,
    /// Per aggregate cell, in order.
    pub(crate) cells: Vec<DpCell>,
}

/// How one cell is noised.
#[derive(Debug, Clone)]
pub(crate) enum DpCell {
    /// A count, noised as it is.
    Count(CountMechanism),
    /// A sum, from the hidden sum of grid values in `grid`.
    Sum {
        grid: usize,
        mechanism: SumMechanism,
    },
    /// A mean: a noisy sum (hidden `grid`) over a noisy count (hidden `count`).
    Avg {
        grid: usize,
        sum: SumMechanism,
        count: usize,
        counting: CountMechanism,
    },
}

impl DpCell {
    fn shares(&self) -> usize {
        match self {
            DpCell::Avg { .. } => 2,
            _ => 1,
        }
    }
}

/// The differential-privacy settings a statement is planned with: its share of ε and δ
/// per noisy quantity.
#[derive(Debug, Clone, Copy)]
struct DpShare {
    policy: DpPolicy,
    epsilon: f64,
    delta: f64,
}

/// A statement cut at its release points.
#[derive(Debug, Clone)]
pub(crate) struct Protection {
    /// The statement's plan, release points included (phase 2 replaces them).
    pub(crate) plan: LogicalPlan,
    /// In the order [`Protection::substitute`] meets them.
    pub(crate) points: Vec<ReleasePoint>,
    pub(crate) rules: DisclosureRules,
    /// The project's disclosure ledger (differencing defence; not under differential
    /// privacy, whose noise is the defence).
    pub(crate) ledger: Option<super::Ledger>,
    /// Differential privacy: the question's noise and budget.
    pub(crate) dp: Option<super::DpRun>,
}

impl Protection {
    /// Cuts `plan` at its release points, or refuses it.
    pub(crate) fn new(
        plan: LogicalPlan,
        persons: &PersonTables,
        rules: DisclosureRules,
        ledger: Option<super::Ledger>,
        dp: Option<super::DpRun>,
    ) -> Result<Self> {
        let ledger = if rules.dp.is_some() { None } else { ledger };
        let plan = without_data_errors(plan)?;
        let mut rewriter = Rewriter {
            persons,
            next: 0,
            dominance: rules.dominance_percent.is_some(),
            sketch_k: ledger.as_ref().map(|_| rules.k),
            k: rules.k,
            dp: None,
        };
        let mut points = Vec::new();
        if let Some(policy) = rules.dp {
            if dp.is_none() {
                return Err(refuse(
                    "this permit's answers need differential privacy, which this session \
                     cannot apply",
                ));
            }
            // First count the noisy quantities, then plan with ε and δ split among them.
            rewriter.dp = Some(DpShare {
                policy,
                epsilon: policy.query_epsilon(),
                delta: policy.delta,
            });
            rewriter.cut(&plan, &mut points)?;
            let shares: usize = points
                .iter()
                .filter_map(|p| p.dp.as_ref())
                .map(|d| {
                    usize::from(d.selection.is_some())
                        + d.cells.iter().map(DpCell::shares).sum::<usize>()
                })
                .sum::<usize>()
                .max(1);
            rewriter.dp = Some(DpShare {
                policy,
                epsilon: policy.query_epsilon() / shares as f64,
                delta: policy.delta / shares as f64,
            });
            points.clear();
        }
        rewriter.cut(&plan, &mut points)?;
        Ok(Self {
            plan,
            points,
            rules,
            ledger,
            dp,
        })
    }

    /// The statement's plan with each release point replaced by its released rows
    /// (`released[i]` for `points[i]`, each with that point's original schema).
    pub(crate) fn substitute(&self, released: Vec<RecordBatch>) -> Result<LogicalPlan> {
        let mut released = released.into_iter();
        let mut index = 0;
        let plan = self
            .plan
            .clone()
            .transform_down_with_subqueries(|p| {
                if index < self.points.len() && self.is_point(&p, index) {
                    let batch = released.next().ok_or_else(|| {
                        datafusion::error::DataFusionError::Internal(
                            "a release point without released rows".into(),
                        )
                    })?;
                    let replaced = released_scan(&self.points[index], batch)?;
                    index += 1;
                    return Ok(Transformed::new(replaced, true, TreeNodeRecursion::Jump));
                }
                Ok(Transformed::no(p))
            })
            .map_err(|e| Error::Engine(format!("disclosure control: {e}")))?
            .data;
        if index != self.points.len() {
            return Err(Error::Engine(
                "disclosure control: release points out of step".into(),
            ));
        }
        Ok(plan)
    }

    /// Whether `p` is release point `index` (the traversal meets them in `cut`'s order).
    fn is_point(&self, p: &LogicalPlan, index: usize) -> bool {
        matches!(
            p,
            LogicalPlan::Aggregate(_) | LogicalPlan::Distinct(Distinct::All(_))
        ) && *p == self.points[index].original
    }
}

/// A scan of a point's released rows under the point's own column names and qualifiers.
fn released_scan(
    point: &ReleasePoint,
    batch: RecordBatch,
) -> datafusion::error::Result<LogicalPlan> {
    // Positional names: two group columns may share a name (`a.x`, `b.x`).
    let fields: Vec<datafusion::arrow::datatypes::Field> = batch
        .schema()
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| f.as_ref().clone().with_name(format!("c{i}")))
        .collect();
    let batch = RecordBatch::try_new(
        Arc::new(datafusion::arrow::datatypes::Schema::new(fields)),
        batch.columns().to_vec(),
    )?;
    let schema = batch.schema();
    let table = MemTable::try_new(schema.clone(), vec![vec![batch]])?;
    let name = "agora_released";
    let scan = datafusion::logical_expr::LogicalPlanBuilder::scan(
        name,
        provider_as_source(Arc::new(table)),
        None,
    )?
    .build()?;
    let exprs = point
        .schema
        .iter()
        .enumerate()
        .map(|(i, (qualifier, field))| {
            Expr::Column(Column::new(Some(name), schema.field(i).name()))
                .alias_qualified(qualifier.cloned(), field.name())
        })
        .collect::<Vec<_>>();
    Ok(LogicalPlan::Projection(Projection::try_new(
        exprs,
        Arc::new(scan),
    )?))
}

struct Rewriter<'a> {
    persons: &'a PersonTables,
    next: usize,
    dominance: bool,
    /// Sketch each group's persons for the ledger, with this `k`.
    sketch_k: Option<u32>,
    /// The profile's threshold.
    k: u32,
    /// Differential privacy, with each noisy quantity's share of the budget.
    dp: Option<DpShare>,
}

impl Rewriter<'_> {
    fn tag_id(&mut self) -> u32 {
        self.next += 1;
        self.next as u32
    }

    fn fresh(&mut self, prefix: &str) -> String {
        self.next += 1;
        format!("__agora_{prefix}{}", self.next)
    }

    /// Walks the part of the plan above the release points: everything there runs on
    /// released rows only, so anything is allowed but reading person-level rows.
    fn cut(&mut self, plan: &LogicalPlan, points: &mut Vec<ReleasePoint>) -> Result<()> {
        if !self.persons.reads_persons(plan) {
            return Ok(());
        }
        match plan {
            LogicalPlan::Aggregate(agg) => {
                let mut point = self.release_point(agg)?;
                point.original = plan.clone();
                points.push(point);
                return Ok(());
            }
            LogicalPlan::Distinct(Distinct::All(input)) => {
                let agg = distinct_as_aggregate(input)?;
                let mut point = self.release_point(&agg)?;
                point.schema = plan.schema().clone();
                point.original = plan.clone();
                points.push(point);
                return Ok(());
            }
            LogicalPlan::TableScan(_) | LogicalPlan::Distinct(Distinct::On(_)) => {
                return Err(refuse(PER_PERSON));
            }
            LogicalPlan::Window(_) => {
                // Over released rows (an aggregate below) it is fine; over persons' rows,
                // refused where the rows are reached.
            }
            LogicalPlan::RecursiveQuery(_) => {
                return Err(refuse(
                    "recursive queries over person-level data cannot be checked for \
                     disclosure; write the steps as ordinary subqueries",
                ));
            }
            LogicalPlan::Unnest(_) | LogicalPlan::Extension(_) => {
                return Err(refuse(
                    "UNNEST over person-level data cannot be checked for disclosure",
                ));
            }
            _ => {}
        }
        let mut failed = None;
        let _ = plan.apply_subqueries(|sub| {
            if let Err(e) = self.cut(sub, points) {
                failed = Some(e);
                return Ok(TreeNodeRecursion::Stop);
            }
            Ok(TreeNodeRecursion::Continue)
        });
        if let Some(e) = failed {
            return Err(e);
        }
        for input in plan.inputs() {
            self.cut(input, points)?;
        }
        Ok(())
    }

    /// Rewrites a release point: its input tagged, hidden counts added.
    fn release_point(&mut self, agg: &Aggregate) -> Result<ReleasePoint> {
        check_row_subqueries(&LogicalPlan::Aggregate(agg.clone()), self.persons)?;
        let input = self.tag(&agg.input)?;
        let tags: Vec<usize> = input.tags().collect();
        if tags.is_empty() {
            return Err(refuse(
                "this aggregate counts rows of reference tables selected through \
                 person-level data, which cannot be checked for disclosure; aggregate the \
                 person-level table itself (join it to the reference table)",
            ));
        }
        let group_exprs = grouping_set_to_exprlist(&agg.group_expr).map_err(df)?;
        if group_exprs.iter().any(|e| input.carry_of(e).is_person()) {
            return Err(refuse(PERSON_KEY_OUT));
        }
        let groups = group_exprs.len();
        let grouping_id =
            matches!(agg.group_expr.as_slice(), [Expr::GroupingSet(_)]).then_some(groups);
        let first_cell = groups + usize::from(grouping_id.is_some());

        let mut hidden: Vec<Expr> = Vec::new();
        let mut hidden_index: HashMap<String, usize> = HashMap::new();
        let base = first_cell + agg.aggr_expr.len();
        let mut add_hidden = |expr: Expr, hidden: &mut Vec<Expr>, this: &mut Self| -> usize {
            let key = format!("{expr}");
            if let Some(&i) = hidden_index.get(&key) {
                return i;
            }
            let i = base + hidden.len();
            hidden.push(expr.alias(this.fresh("h")));
            hidden_index.insert(key, i);
            i
        };
        // The statement's own COUNT(DISTINCT person_id) already is a tag's count: reuse it.
        let counted_by_statement = |t: usize| {
            let Carry::PersonTag(id) = input.carry[t] else {
                return None;
            };
            agg.aggr_expr.iter().position(|e| match strip(e) {
                Expr::AggregateFunction(f) => {
                    f.func.name() == "count"
                        && f.params.distinct
                        && f.params.filter.is_none()
                        && f.params.args.len() == 1
                        && input.carry_of(&f.params.args[0]) == Carry::Person(id)
                }
                _ => false,
            })
        };
        // The ledger's sketch of the group's persons (first person tag) also counts them.
        let first_person = tags
            .iter()
            .copied()
            .find(|&t| matches!(input.carry[t], Carry::PersonTag(_)));
        let sketch = match (self.sketch_k, first_person) {
            (Some(k), Some(t)) => Some(add_hidden(
                super::ledger::sketch_of(input.column(t), k),
                &mut hidden,
                self,
            )),
            _ => None,
        };
        let group_hidden: Vec<usize> = tags
            .iter()
            .map(|&t| match (counted_by_statement(t), sketch) {
                (Some(j), _) => first_cell + j,
                (None, Some(s)) if Some(t) == first_person => s,
                (None, _) => {
                    let e = persons_behind(&input, t, None);
                    add_hidden(e, &mut hidden, self)
                }
            })
            .collect();

        let mut cells = Vec::with_capacity(agg.aggr_expr.len());
        for (j, expr) in agg.aggr_expr.iter().enumerate() {
            let Expr::AggregateFunction(f) = strip(expr) else {
                return Err(refuse(
                    "an aggregate output this hub cannot check for disclosure",
                ));
            };
            let name = f.func.name().to_ascii_lowercase();
            if !RELEASABLE_AGGREGATES.contains(&name.as_str()) {
                return Err(refuse(format!(
                    "{} {PERSON_ONLY_FUNCTION}",
                    name.to_uppercase()
                )));
            }
            let is_count = COUNTS.contains(&name.as_str());
            if !is_count && f.params.args.iter().any(|a| input.carry_of(a).is_person()) {
                return Err(refuse(PERSON_KEY_OUT));
            }
            if name.contains("percentile") {
                // The 1.0 quantile is the largest value: keep within one person of the ends.
                let bound = 1.0 / f64::from(self.k.max(2));
                for a in &f.params.args {
                    let Expr::Literal(v, _) = strip(a) else {
                        continue;
                    };
                    if !matches!(
                        v,
                        ScalarValue::Float64(Some(_))
                            | ScalarValue::Float32(Some(_))
                            | ScalarValue::Decimal128(Some(_), _, _)
                    ) {
                        continue;
                    }
                    let q: f64 = v.to_string().parse().unwrap_or(f64::NAN);
                    if !(bound..=1.0 - bound).contains(&q) {
                        return Err(refuse(format!(
                            "a percentile below {bound} or above {} is one of the few most \
                             extreme persons' values; choose one between them",
                            1.0 - bound
                        )));
                    }
                }
            }
            if !is_count && name != "grouping" && name != "bool_and" && name != "bool_or" {
                for a in &f.params.args {
                    if !plain_or_selected(a) {
                        return Err(refuse(CONDITIONAL_ARITHMETIC));
                    }
                }
            }
            // The persons contributing to the cell: rows passing its FILTER whose arguments
            // are not null (and not 0 for sums and means; true for bool_or, false for
            // bool_and).
            let mut condition = f.params.filter.as_deref().cloned();
            for arg in &f.params.args {
                if matches!(strip(arg), Expr::Literal(..)) || name == "grouping" {
                    continue;
                }
                let present = match name.as_str() {
                    "bool_or" => arg.clone().is_true(),
                    "bool_and" => arg.clone().is_false(),
                    n if ZERO_IS_ABSENT.contains(&n) => arg
                        .clone()
                        .is_not_null()
                        .and(cast(arg.clone(), DataType::Float64).not_eq(lit(0.0))),
                    _ => arg.clone().is_not_null(),
                };
                condition = Some(match condition {
                    Some(c) => c.and(present),
                    None => present,
                });
            }
            // A cell over a tag's own person key, unfiltered, rests on the group's persons.
            let over_key = |t: usize| {
                f.params.filter.is_none()
                    && matches!(
                        (input.carry[t], f.params.args.first().map(|a| input.carry_of(a))),
                        (Carry::PersonTag(id), Some(Carry::Person(key))) if id == key
                    )
            };
            let chosen = f.params.filter.is_some()
                || f.params
                    .args
                    .iter()
                    .any(|a| !matches!(strip(a), Expr::Column(_) | Expr::Literal(..)));
            let cell_sketch = match (self.sketch_k, chosen, &condition, first_person) {
                (Some(k), true, Some(c), Some(t)) => {
                    let contributors = when(c.clone(), input.column(t)).end().map_err(df)?;
                    Some(add_hidden(
                        super::ledger::sketch_of(contributors, k),
                        &mut hidden,
                        self,
                    ))
                }
                _ => None,
            };
            let hidden_cols = match condition {
                None => group_hidden.clone(),
                Some(c) => tags
                    .iter()
                    .zip(&group_hidden)
                    .map(|(&t, &group)| {
                        if over_key(t) {
                            return group;
                        }
                        // The cell's sketch counts its persons of the first tag.
                        if let (Some(s), true) = (cell_sketch, Some(t) == first_person) {
                            return s;
                        }
                        let e = persons_behind(&input, t, Some(c.clone()));
                        add_hidden(e, &mut hidden, self)
                    })
                    .collect(),
            };
            let dominance = match (self.dominance, name.as_str(), f.params.args.first()) {
                (true, "sum" | "avg", Some(arg)) => {
                    let value = datafusion::functions::math::expr_fn::abs(cast(
                        arg.clone(),
                        DataType::Float64,
                    ));
                    let value = match f.params.filter.as_deref() {
                        Some(filter) => when(filter.clone(), value).end().map_err(df)?,
                        None => value,
                    };
                    let largest = add_hidden(max(value.clone()), &mut hidden, self);
                    let total = add_hidden(sum(value), &mut hidden, self);
                    Some((largest, total))
                }
                _ => None,
            };
            cells.push(Cell {
                index: first_cell + j,
                is_count,
                hidden: hidden_cols,
                dominance,
                sketch: cell_sketch,
            });
        }
        let (input_plan, dp) = match self.dp {
            Some(share) => {
                let (plan, dp) =
                    self.dp_point(agg, &input, share, &group_hidden, base, &mut hidden)?;
                (plan, Some(dp))
            }
            None => (input.plan, None),
        };
        let mut aggr = agg.aggr_expr.clone();
        aggr.extend(hidden);
        let rewritten =
            Aggregate::try_new(Arc::new(input_plan), agg.group_expr.clone(), aggr).map_err(df)?;
        Ok(ReleasePoint {
            plan: LogicalPlan::Aggregate(rewritten),
            original: LogicalPlan::Aggregate(agg.clone()),
            schema: agg.schema.clone(),
            groups,
            grouping_id,
            group_hidden,
            cells,
            sketch,
            dp,
        })
    }

    /// Plans differential privacy for a release point: the input with each person's rows
    /// bounded, and how each cell is noised (hidden grid sums and counts added to `hidden`).
    fn dp_point(
        &mut self,
        agg: &Aggregate,
        input: &Rel,
        share: DpShare,
        group_hidden: &[usize],
        base: usize,
        hidden: &mut Vec<Expr>,
    ) -> Result<(LogicalPlan, DpPoint)> {
        const ONLY: &str = "under differential privacy an answer is made of COUNT, SUM and AVG \
             over rows that each belong to one person, without ROLLUP, CUBE or GROUPING SETS \
             and without nested aggregates; rewrite the query in that form";
        let tags: Vec<usize> = input.tags().collect();
        let [tag] = tags.as_slice() else {
            return Err(refuse(ONLY));
        };
        let Carry::PersonTag(id) = input.carry[*tag] else {
            return Err(refuse(ONLY));
        };
        if matches!(agg.group_expr.as_slice(), [Expr::GroupingSet(_)]) {
            return Err(refuse(ONLY));
        }
        let policy = share.policy;
        let rows = policy.rows_per_person();
        let dp_err = |e: agora_privacy::DpError| refuse(format!("differential privacy: {e}"));
        let counting = || CountMechanism::new(rows, share.epsilon, share.delta).map_err(dp_err);
        let summing =
            || SumMechanism::new(policy.clamp(), rows, share.epsilon, share.delta).map_err(dp_err);
        let mut push = |expr: Expr, this: &mut Self| {
            hidden.push(expr.alias(this.fresh("d")));
            base + hidden.len() - 1
        };
        let grid = |arg: &Expr, mechanism: &SumMechanism| -> Expr {
            let value = clamp(cast(arg.clone(), DataType::Float64), mechanism.bound());
            let on_grid = datafusion::functions::math::expr_fn::round(vec![
                value / lit(mechanism.resolution()),
            ]);
            cast(on_grid, DataType::Int64)
        };
        let mut cells = Vec::with_capacity(agg.aggr_expr.len());
        for expr in &agg.aggr_expr {
            let Expr::AggregateFunction(f) = strip(expr) else {
                return Err(refuse(ONLY));
            };
            if f.params.filter.is_some() {
                return Err(refuse(ONLY));
            }
            let arg = f.params.args.first();
            let cell = match f.func.name() {
                "count" => {
                    let one_per_person = f.params.distinct
                        && arg.map(|a| input.carry_of(a)) == Some(Carry::Person(id));
                    let sensitivity = if one_per_person { 1 } else { rows };
                    DpCell::Count(
                        CountMechanism::new(sensitivity, share.epsilon, share.delta)
                            .map_err(dp_err)?,
                    )
                }
                "sum" if !f.params.distinct => {
                    let arg = arg.ok_or_else(|| refuse(ONLY))?;
                    let mechanism = summing()?;
                    let grid = push(sum(grid(arg, &mechanism)), self);
                    DpCell::Sum { grid, mechanism }
                }
                "avg" if !f.params.distinct => {
                    let arg = arg.ok_or_else(|| refuse(ONLY))?;
                    let sum_mechanism = summing()?;
                    let grid = push(sum(grid(arg, &sum_mechanism)), self);
                    let count = push(
                        datafusion::functions_aggregate::expr_fn::count(arg.clone()),
                        self,
                    );
                    DpCell::Avg {
                        grid,
                        sum: sum_mechanism,
                        count,
                        counting: counting()?,
                    }
                }
                _ => return Err(refuse(ONLY)),
            };
            cells.push(cell);
        }
        let _ = group_hidden;
        let selection = if agg.group_expr.is_empty() {
            None
        } else {
            Some(counting()?)
        };
        // Each person's rows beyond the bound never reach the aggregate.
        let rn = self.fresh("rn");
        let numbered = datafusion::functions_window::expr_fn::row_number()
            .partition_by(vec![input.column(*tag)])
            .build()
            .map_err(df)?
            .alias(rn.clone());
        let window = Window::try_new(vec![numbered], Arc::new(input.plan.clone())).map_err(df)?;
        let bounded =
            datafusion::logical_expr::LogicalPlanBuilder::from(LogicalPlan::Window(window))
                .filter(
                    cast(datafusion::prelude::col(rn), DataType::Int64).lt_eq(lit(i64::from(rows))),
                )
                .and_then(|b| b.build())
                .map_err(df)?;
        Ok((bounded, DpPoint { selection, cells }))
    }

    /// Rewrites the row world below a release point so every row carries its persons.
    fn tag(&mut self, plan: &LogicalPlan) -> Result<Rel> {
        if !self.persons.reads_persons(plan) {
            return Ok(Rel::data(plan));
        }
        check_row_subqueries(plan, self.persons)?;
        match plan {
            LogicalPlan::TableScan(scan) => {
                let table = self
                    .persons
                    .find(&scan.source)
                    .ok_or_else(|| Error::Engine("disclosure control: an unknown table".into()))?;
                let last = table.tagged.schema().fields().len() - 1;
                let projection = scan.projection.clone().map(|mut p| {
                    p.push(last);
                    p
                });
                let tagged = TableScanBuilder::new(
                    scan.table_name.clone(),
                    provider_as_source(table.tagged.clone()),
                )
                .with_projection(projection)
                .with_filters(scan.filters.clone())
                .with_fetch(scan.fetch)
                .build()
                .map_err(df)?;
                let tagged = LogicalPlan::TableScan(tagged);
                let schema = tagged.schema().clone();
                let n = schema.fields().len();
                let mut exprs = Vec::with_capacity(n);
                let mut carry = Vec::with_capacity(n);
                let id = self.tag_id();
                for i in 0..n - 1 {
                    let (q, f) = schema.qualified_field(i);
                    exprs.push(Expr::Column(Column::from((q, f))));
                    carry.push(if *f.name() == table.key {
                        Carry::Person(id)
                    } else {
                        Carry::Data
                    });
                }
                exprs.push(
                    Expr::Column(Column::from(schema.qualified_field(n - 1)))
                        .alias(self.fresh("p")),
                );
                carry.push(Carry::PersonTag(id));
                let plan = Projection::try_new(exprs, Arc::new(tagged)).map_err(df)?;
                Ok(Rel {
                    plan: LogicalPlan::Projection(plan),
                    carry,
                })
            }
            LogicalPlan::Projection(p) => {
                let input = self.tag(&p.input)?;
                let mut exprs = p.expr.clone();
                let mut carry: Vec<Carry> = exprs.iter().map(|e| input.carry_of(e)).collect();
                for t in input.tags().collect::<Vec<_>>() {
                    exprs.push(input.column(t));
                    carry.push(input.carry[t]);
                }
                let plan = Projection::try_new(exprs, Arc::new(input.plan)).map_err(df)?;
                Ok(Rel {
                    plan: LogicalPlan::Projection(plan),
                    carry,
                })
            }
            LogicalPlan::Limit(_) => Err(refuse(LIMIT_BELOW)),
            LogicalPlan::Sort(sort) if sort.fetch.is_some() => Err(refuse(LIMIT_BELOW)),
            LogicalPlan::Filter(_)
            | LogicalPlan::Sort(_)
            | LogicalPlan::SubqueryAlias(_)
            | LogicalPlan::Repartition(_) => {
                let input = self.tag(plan.inputs()[0])?;
                let rebuilt = plan
                    .with_new_exprs(plan.expressions(), vec![input.plan])
                    .map_err(df)?;
                Ok(Rel {
                    plan: rebuilt,
                    carry: input.carry,
                })
            }
            LogicalPlan::Join(join) => {
                let left = self.tag(&join.left)?;
                let right = self.tag(&join.right)?;
                // Rows joined on equal person keys belong to one person: one tag is enough
                // (the side whose rows are always there keeps its tag).
                let (mut left_carry, mut right_carry) = (left.carry.clone(), right.carry.clone());
                for (l, r) in &join.on {
                    let (Carry::Person(a), Carry::Person(b)) =
                        (left.carry_of(l), right.carry_of(r))
                    else {
                        continue;
                    };
                    match join.join_type {
                        JoinType::Inner | JoinType::Left => merge_tag(&mut right_carry, b, a),
                        JoinType::Right => merge_tag(&mut left_carry, a, b),
                        _ => {}
                    }
                }
                let carry = match join.join_type {
                    JoinType::Inner | JoinType::Left | JoinType::Right | JoinType::Full => {
                        [left_carry.as_slice(), right_carry.as_slice()].concat()
                    }
                    JoinType::LeftSemi | JoinType::LeftAnti => left.carry.clone(),
                    JoinType::RightSemi | JoinType::RightAnti => right.carry.clone(),
                    JoinType::LeftMark => [left.carry.as_slice(), &[Carry::Data]].concat(),
                    JoinType::RightMark => [right.carry.as_slice(), &[Carry::Data]].concat(),
                };
                let rebuilt = plan
                    .with_new_exprs(plan.expressions(), vec![left.plan, right.plan])
                    .map_err(df)?;
                if rebuilt.schema().fields().len() != carry.len() {
                    return Err(Error::Engine("disclosure control: a join's columns".into()));
                }
                Ok(Rel {
                    plan: rebuilt,
                    carry,
                })
            }
            LogicalPlan::Union(union) => self.union(&union.inputs),
            LogicalPlan::Distinct(Distinct::All(input)) => {
                let agg = distinct_as_aggregate(input)?;
                self.inner_aggregate(&agg)
            }
            LogicalPlan::Distinct(Distinct::On(on)) => {
                let input = self.tag(&on.input)?;
                if !input.per_person(on.on_expr.iter()) {
                    return Err(refuse(format!(
                        "DISTINCT ON {}",
                        "keeps one row of several persons, which discloses that row; use \
                         DISTINCT ON (person_id, ...) or GROUP BY"
                    )));
                }
                let mut select = on.select_expr.clone();
                let mut carry: Vec<Carry> = select.iter().map(|e| input.carry_of(e)).collect();
                for t in input.tags().collect::<Vec<_>>() {
                    select.push(input.column(t));
                    carry.push(input.carry[t]);
                }
                let rebuilt = DistinctOn::try_new(
                    on.on_expr.clone(),
                    select,
                    on.sort_expr.clone(),
                    Arc::new(input.plan),
                )
                .map_err(df)?;
                Ok(Rel {
                    plan: LogicalPlan::Distinct(Distinct::On(rebuilt)),
                    carry,
                })
            }
            LogicalPlan::Aggregate(agg) => self.inner_aggregate(agg),
            LogicalPlan::Window(w) => {
                let input = self.tag(&w.input)?;
                for e in &w.window_expr {
                    let per_person = match strip(e) {
                        Expr::WindowFunction(f) => {
                            let WindowFunction { params, .. } = f.as_ref();
                            input.per_person(params.partition_by.iter())
                        }
                        _ => false,
                    };
                    if !per_person {
                        return Err(refuse(
                            "a window function over rows of several persons carries one \
                             person's values into another's row; partition it by person_id, \
                             or apply it to the aggregated answer (an outer query over the \
                             GROUP BY)",
                        ));
                    }
                }
                let mut carry = input.carry.clone();
                carry.extend(w.window_expr.iter().map(|e| input.carry_of(e)));
                let rebuilt =
                    Window::try_new(w.window_expr.clone(), Arc::new(input.plan)).map_err(df)?;
                Ok(Rel {
                    plan: LogicalPlan::Window(rebuilt),
                    carry,
                })
            }
            LogicalPlan::RecursiveQuery(_) => Err(refuse(
                "recursive queries over person-level data cannot be checked for disclosure; \
                 write the steps as ordinary subqueries",
            )),
            _ => Err(refuse(
                "this construct over person-level data cannot be checked for disclosure",
            )),
        }
    }

    /// An aggregate below a release point: per person (grouped by a person key) it keeps
    /// each row's person; otherwise each group becomes one row resting on its persons.
    fn inner_aggregate(&mut self, agg: &Aggregate) -> Result<Rel> {
        let input = self.tag(&agg.input)?;
        let group_exprs = grouping_set_to_exprlist(&agg.group_expr).map_err(df)?;
        let grouping_sets = matches!(agg.group_expr.as_slice(), [Expr::GroupingSet(_)]);
        let per_person = !grouping_sets && input.per_person(group_exprs.iter().copied());
        let mut carry: Vec<Carry> = group_exprs.iter().map(|e| input.carry_of(e)).collect();
        if grouping_sets {
            carry.push(Carry::Data);
        }
        for e in &agg.aggr_expr {
            if let Expr::AggregateFunction(f) = strip(e) {
                let name = f.func.name().to_ascii_lowercase();
                if !per_person && !RELEASABLE_AGGREGATES.contains(&name.as_str()) {
                    return Err(refuse(format!(
                        "{} {PERSON_ONLY_FUNCTION}",
                        name.to_uppercase()
                    )));
                }
                carry.push(if COUNTS.contains(&name.as_str()) {
                    Carry::Data
                } else {
                    input.carry_of(e)
                });
            } else {
                carry.push(input.carry_of(e));
            }
        }
        let mut aggr = agg.aggr_expr.clone();
        for t in input.tags().collect::<Vec<_>>() {
            let tag = input.column(t);
            let (expr, kind) = match input.carry[t] {
                Carry::PersonTag(id) if per_person => (min(tag), Carry::PersonTag(id)),
                Carry::PersonTag(_) => (count_distinct(tag), Carry::CountTag),
                _ => (min(tag), Carry::CountTag),
            };
            let prefix = if kind == Carry::CountTag { "c" } else { "p" };
            aggr.push(expr.alias(self.fresh(prefix)));
            carry.push(kind);
        }
        let rebuilt =
            Aggregate::try_new(Arc::new(input.plan), agg.group_expr.clone(), aggr).map_err(df)?;
        Ok(Rel {
            plan: LogicalPlan::Aggregate(rebuilt),
            carry,
        })
    }

    /// A union: each side's visible columns, then its person tags and count tags padded
    /// with nulls to the same number on every side. A person key stays one where every
    /// side's key is its tag in the same slot.
    fn union(&mut self, inputs: &[Arc<LogicalPlan>]) -> Result<Rel> {
        let sides = inputs
            .iter()
            .map(|i| self.tag(i))
            .collect::<Result<Vec<_>>>()?;
        let person_tags = |rel: &Rel| -> Vec<usize> {
            (0..rel.carry.len())
                .filter(|&i| matches!(rel.carry[i], Carry::PersonTag(_)))
                .collect()
        };
        let count_tags = |rel: &Rel| -> Vec<usize> {
            (0..rel.carry.len())
                .filter(|&i| rel.carry[i] == Carry::CountTag)
                .collect()
        };
        let persons = sides
            .iter()
            .map(|s| person_tags(s).len())
            .max()
            .unwrap_or(0);
        let counts = sides.iter().map(|s| count_tags(s).len()).max().unwrap_or(0);
        let ids: Vec<u32> = (0..persons).map(|_| self.tag_id()).collect();
        let names: Vec<String> = (0..persons + counts)
            .map(|i| self.fresh(if i < persons { "p" } else { "c" }))
            .collect();
        /// Where a visible column of a side stands: data, a person key in tag slot `n`,
        /// or anything else computed from persons.
        #[derive(Clone, Copy, PartialEq)]
        enum Slot {
            Data,
            Key(usize),
            Derived,
        }
        let mut slots: Option<Vec<Slot>> = None;
        let mut projected = Vec::with_capacity(sides.len());
        for side in sides {
            let side_persons = person_tags(&side);
            let slot_of = |c: Carry| match c {
                Carry::Person(id) => side_persons
                    .iter()
                    .position(|&t| side.carry[t] == Carry::PersonTag(id))
                    .map_or(Slot::Derived, Slot::Key),
                Carry::Derived => Slot::Derived,
                _ => Slot::Data,
            };
            let mut exprs = Vec::new();
            let mut vis = Vec::new();
            for i in 0..side.carry.len() {
                if !side.carry[i].is_tag() {
                    exprs.push(side.column(i));
                    vis.push(slot_of(side.carry[i]));
                }
            }
            let padded = |tags: Vec<usize>, slots: usize, offset: usize, exprs: &mut Vec<Expr>| {
                let mut have: Vec<Expr> = tags.into_iter().map(|i| side.column(i)).collect();
                while have.len() < slots {
                    have.push(lit(ScalarValue::Int64(None)));
                }
                for (k, e) in have.into_iter().enumerate() {
                    exprs.push(cast(e, DataType::Int64).alias(names[offset + k].clone()));
                }
            };
            padded(side_persons.clone(), persons, 0, &mut exprs);
            padded(count_tags(&side), counts, persons, &mut exprs);
            slots = Some(match slots {
                None => vis,
                Some(prev) => prev
                    .into_iter()
                    .zip(vis)
                    .map(|(a, b)| match (a, b) {
                        (a, b) if a == b => a,
                        (Slot::Data, Slot::Data) => Slot::Data,
                        _ => Slot::Derived,
                    })
                    .collect(),
            });
            projected.push(Arc::new(LogicalPlan::Projection(
                Projection::try_new(exprs, Arc::new(side.plan)).map_err(df)?,
            )));
        }
        let mut carry: Vec<Carry> = slots
            .unwrap_or_default()
            .into_iter()
            .map(|s| match s {
                Slot::Data => Carry::Data,
                Slot::Key(n) => Carry::Person(ids[n]),
                Slot::Derived => Carry::Derived,
            })
            .collect();
        carry.extend(ids.iter().map(|&id| Carry::PersonTag(id)));
        carry.extend(std::iter::repeat_n(Carry::CountTag, counts));
        let union =
            datafusion::logical_expr::Union::try_new_with_loose_types(projected).map_err(df)?;
        Ok(Rel {
            plan: LogicalPlan::Union(union),
            carry,
        })
    }
}

/// The hidden count of distinct persons of tag `t` (counting only rows meeting `only`), or
/// for a count tag the fewest persons behind any group aggregated into the cell.
fn persons_behind(input: &Rel, t: usize, only: Option<Expr>) -> Expr {
    let tag = input.column(t);
    let value = match only {
        Some(c) => when(c, tag)
            .end()
            .unwrap_or_else(|_| lit(ScalarValue::Int64(None))),
        None => tag,
    };
    match input.carry[t] {
        Carry::PersonTag(_) => count_distinct(value),
        _ => min(value),
    }
}

/// Makes person tag `from` the same person as tag `to`: its column stops being a tag and
/// its keys become keys of `to`.
fn merge_tag(carry: &mut [Carry], from: u32, to: u32) {
    for c in carry {
        match *c {
            Carry::PersonTag(id) if id == from => *c = Carry::Data,
            Carry::Person(id) if id == from => *c = Carry::Person(to),
            _ => {}
        }
    }
}

/// Whether an aggregate's argument is free of conditions (columns, literals, arithmetic and
/// functions of them), or a single `CASE WHEN condition THEN <that> [ELSE 0 | NULL] END`:
/// the forms whose contributors are the rows where it is non-null and non-zero.
fn plain_or_selected(arg: &Expr) -> bool {
    match strip(arg) {
        Expr::Case(case) if case.expr.is_none() && case.when_then_expr.len() == 1 => {
            let else_ok = match case.else_expr.as_deref().map(strip) {
                None => true,
                Some(Expr::Literal(v, _)) => v.is_null() || is_zero(v),
                Some(_) => false,
            };
            else_ok && condition_free(&case.when_then_expr[0].1)
        }
        other => condition_free(other),
    }
}

fn is_zero(v: &ScalarValue) -> bool {
    ScalarValue::new_zero(&v.data_type()).is_ok_and(|zero| &zero == v)
        || v.to_string().parse::<f64>() == Ok(0.0)
}

/// No condition inside: no CASE, comparison, boolean operator or null-dependent choice.
fn condition_free(e: &Expr) -> bool {
    use datafusion::logical_expr::Operator as Op;
    !e.exists(|x| {
        Ok(match x {
            Expr::Case(_)
            | Expr::Not(_)
            | Expr::IsNull(_)
            | Expr::IsNotNull(_)
            | Expr::IsTrue(_)
            | Expr::IsFalse(_)
            | Expr::IsNotTrue(_)
            | Expr::IsNotFalse(_)
            | Expr::IsUnknown(_)
            | Expr::IsNotUnknown(_)
            | Expr::Like(_)
            | Expr::SimilarTo(_)
            | Expr::Between(_)
            | Expr::InList(_)
            | Expr::InSubquery(_)
            | Expr::Exists(_)
            | Expr::ScalarSubquery(_) => true,
            Expr::BinaryExpr(b) => !matches!(
                b.op,
                Op::Plus | Op::Minus | Op::Multiply | Op::Divide | Op::Modulo
            ),
            Expr::ScalarFunction(f) => matches!(
                f.func.name(),
                "coalesce"
                    | "nullif"
                    | "nvl"
                    | "nvl2"
                    | "ifnull"
                    | "greatest"
                    | "least"
                    | "sign"
                    | "signum"
                    | "iszero"
                    | "isnan"
            ),
            _ => false,
        })
    })
    .unwrap_or(false)
}

/// The statement with its data-dependent errors turned into NULLs: a division or modulo by
/// zero, and a cast that fails. Otherwise `CASE WHEN <one person> THEN 1 / (x - 42) END`
/// fails exactly when that person's x is 42: an error is one bit about one person.
fn without_data_errors(plan: LogicalPlan) -> Result<LogicalPlan> {
    use datafusion::logical_expr::{BinaryExpr, Operator, TryCast};
    plan.transform_up_with_subqueries(|node| {
        node.map_expressions(|e| {
            e.transform(|x| {
                Ok(match x {
                    Expr::BinaryExpr(BinaryExpr { left, op, right })
                        if matches!(op, Operator::Divide | Operator::Modulo) =>
                    {
                        let right = datafusion::functions::core::expr_fn::nullif(*right, lit(0));
                        Transformed::yes(Expr::BinaryExpr(BinaryExpr::new(
                            left,
                            op,
                            Box::new(right),
                        )))
                    }
                    Expr::Cast(c) => {
                        Transformed::yes(Expr::TryCast(TryCast::new_from_field(c.expr, c.field)))
                    }
                    other => Transformed::no(other),
                })
            })
        })
    })
    .map(|t| t.data)
    .map_err(df)
}

/// `value` clamped to `[-bound, bound]` (NULL stays NULL).
fn clamp(value: Expr, bound: f64) -> Expr {
    when(value.clone().gt(lit(bound)), lit(bound))
        .when(value.clone().lt(lit(-bound)), lit(-bound))
        .otherwise(value)
        .unwrap_or_else(|_| lit(ScalarValue::Float64(None)))
}

/// `SELECT DISTINCT ...` as the aggregate it means: one group per distinct row.
fn distinct_as_aggregate(input: &Arc<LogicalPlan>) -> Result<Aggregate> {
    let groups = input
        .schema()
        .iter()
        .map(|(q, f)| Expr::Column(Column::from((q, f))))
        .collect();
    Aggregate::try_new(input.clone(), groups, vec![]).map_err(df)
}

/// Refuses subqueries in the row world that would carry other persons' values into a row:
/// scalar subqueries, and `EXISTS` not correlated with the row, over person-level data.
fn check_row_subqueries(plan: &LogicalPlan, persons: &PersonTables) -> Result<()> {
    let mut failed = None;
    let is_key = |e: &Expr| matches!(strip(e), Expr::Column(c) if persons.is_key_name(&c.name));
    let _ = plan.apply_expressions(|e| {
        e.apply(|x| {
            let bad = match x {
                Expr::ScalarSubquery(sq) => persons.reads_persons(&sq.subquery),
                Expr::SetComparison(sc) => persons.reads_persons(&sc.subquery.subquery),
                // Cohort membership of the row's own person, nothing else.
                Expr::InSubquery(i) => {
                    persons.reads_persons(&i.subquery.subquery) && !is_key(&i.expr)
                }
                Expr::Exists(ex) => {
                    persons.reads_persons(&ex.subquery.subquery)
                        && !correlated_on_person(&ex.subquery.subquery, persons)
                }
                _ => false,
            };
            if bad {
                failed = Some(refuse(
                    "a subquery over person-level data must be about the row's own person: \
                     person_id IN (SELECT person_id ...), or EXISTS (... WHERE x.person_id = \
                     outer.person_id AND ...). A scalar subquery, or one that does not follow \
                     the row's person, would apply other persons' data to every row; join the \
                     table instead",
                ));
                return Ok(TreeNodeRecursion::Stop);
            }
            Ok(TreeNodeRecursion::Continue)
        })
    });
    match failed {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Whether `plan` (an `EXISTS` subquery) keeps only rows of the outer row's person: one of
/// its filters has, as a conjunct, `<person key> = outer.<person key>`.
fn correlated_on_person(plan: &LogicalPlan, persons: &PersonTables) -> bool {
    let mut found = false;
    let _ = plan.apply(|p| {
        if let LogicalPlan::Filter(f) = p {
            for conjunct in datafusion::logical_expr::utils::split_conjunction(&f.predicate) {
                if let Expr::BinaryExpr(b) = conjunct
                    && b.op == datafusion::logical_expr::Operator::Eq
                {
                    let key = |e: &Expr| match strip(e) {
                        Expr::Column(c) => Some((false, persons.is_key_name(&c.name))),
                        Expr::OuterReferenceColumn(_, c) => {
                            Some((true, persons.is_key_name(&c.name)))
                        }
                        _ => None,
                    };
                    if let (Some((outer_l, true)), Some((outer_r, true))) =
                        (key(&b.left), key(&b.right))
                        && outer_l != outer_r
                    {
                        found = true;
                        return Ok(TreeNodeRecursion::Stop);
                    }
                }
            }
        }
        Ok(TreeNodeRecursion::Continue)
    });
    found
}

fn df(e: datafusion::error::DataFusionError) -> Error {
    Error::Engine(format!("disclosure control: {e}"))
}
