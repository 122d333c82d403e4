//! The policy barrier: a permitted table as a provider DataFusion cannot see through.
//!
//! A plain view would be inlined before optimization, and the researcher's own predicates
//! pushed below the policy's filters and opt-out anti-join: `WHERE 1 / (person_id - K) > 0`
//! would then run on every row of the file and fail exactly when person K is there, opted out
//! or filtered out — one bit about hidden rows per query. Behind [`PolicyTable`], the
//! researcher's expressions run only on rows that passed the policy. The one exception are
//! filters that cannot fail on any value (a column compared with a literal of its own type,
//! `IS NULL`, `IN` a list of such literals, and their `AND`/`OR`/`NOT`): those are pushed to
//! the Parquet scan, so selective queries still prune files and row groups. This is
//! PostgreSQL's `security_barrier` with "leakproof" operators, for the same reason.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::Session;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, DFSchema};
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::Result;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{
    Between, BinaryExpr, Expr, LogicalPlan, LogicalPlanBuilder, Operator,
    TableProviderFilterPushDown,
};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::{
    ChildStats, DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties,
    SendableRecordBatchStream, Statistics, StatisticsArgs,
};

/// One permitted table: its policy plan, planned on its own at scan time.
#[derive(Debug)]
pub(crate) struct PolicyTable {
    plan: LogicalPlan,
    schema: SchemaRef,
}

impl PolicyTable {
    pub(crate) fn new(plan: LogicalPlan) -> Self {
        let schema = Arc::new(plan.schema().as_arrow().clone());
        Self { plan, schema }
    }
}

#[async_trait]
impl TableProvider for PolicyTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        let schema = self.plan.schema();
        Ok(filters
            .iter()
            .map(|f| {
                if cannot_fail(f, schema) {
                    TableProviderFilterPushDown::Exact
                } else {
                    TableProviderFilterPushDown::Unsupported
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let mut plan = LogicalPlanBuilder::from(self.plan.clone());
        // Only filters accepted above reach here; their columns carry the caller's table
        // reference, which the policy plan does not know: names are unique per table.
        for filter in filters {
            let filter = filter
                .clone()
                .transform(|e| {
                    Ok(match e {
                        Expr::Column(c) => {
                            Transformed::yes(Expr::Column(Column::from_name(c.name)))
                        }
                        other => Transformed::no(other),
                    })
                })?
                .data;
            plan = plan.filter(filter)?;
        }
        if let Some(projection) = projection {
            let schema = self.plan.schema();
            let columns = projection
                .iter()
                .map(|&i| Expr::Column(Column::from(schema.qualified_field(i))))
                .collect::<Vec<_>>();
            plan = plan.project(columns)?;
        }
        if let Some(limit) = limit {
            plan = plan.limit(0, Some(limit))?;
        }
        let inner = state.create_physical_plan(&plan.build()?).await?;
        Ok(Arc::new(BarrierExec { input: inner }))
    }
}

/// Marks the top of a policy plan in the physical plan. It computes nothing, but it lets no
/// filter of the query above it be pushed into the policy plan (DataFusion's physical filter
/// pushdown would otherwise move the researcher's predicates below the opt-out anti-join),
/// and no projection or limit be swapped through it.
#[derive(Debug)]
struct BarrierExec {
    input: Arc<dyn ExecutionPlan>,
}

impl DisplayAs for BarrierExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "PolicyBarrierExec")
    }
}

impl ExecutionPlan for BarrierExec {
    fn name(&self) -> &'static str {
        "PolicyBarrierExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.input.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(Arc::new(BarrierExec {
            input: children.swap_remove(0),
        }))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        self.input.execute(partition, context)
    }

    // The policy plan's statistics are the barrier's: joins above still plan by size.
    fn child_stats_requests(&self, partition: Option<usize>) -> Vec<ChildStats> {
        vec![ChildStats::At(partition)]
    }

    fn statistics_from_inputs(
        &self,
        input_stats: &[Arc<Statistics>],
        _args: &StatisticsArgs,
    ) -> Result<Arc<Statistics>> {
        Ok(input_stats[0].clone())
    }
}

/// Whether `expr` evaluates without error on every row, whatever the values (see the
/// module documentation).
fn cannot_fail(expr: &Expr, schema: &DFSchema) -> bool {
    let column_type = |e: &Expr| match e {
        Expr::Column(c) => schema
            .field_with_unqualified_name(&c.name)
            .ok()
            .map(|f| f.data_type().clone()),
        _ => None,
    };
    let literal_type = |e: &Expr| match e {
        Expr::Literal(v, _) => Some(v.data_type()),
        _ => None,
    };
    let same_type = |a: &Expr, b: &Expr| {
        matches!((column_type(a), literal_type(b)), (Some(x), Some(y)) if x == y)
            || matches!((column_type(b), literal_type(a)), (Some(x), Some(y)) if x == y)
    };
    match expr {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => match op {
            Operator::And | Operator::Or => cannot_fail(left, schema) && cannot_fail(right, schema),
            Operator::Eq
            | Operator::NotEq
            | Operator::Lt
            | Operator::LtEq
            | Operator::Gt
            | Operator::GtEq
            | Operator::IsDistinctFrom
            | Operator::IsNotDistinctFrom => same_type(left, right),
            _ => false,
        },
        Expr::Not(inner) => cannot_fail(inner, schema),
        Expr::IsNull(inner) | Expr::IsNotNull(inner) => column_type(inner).is_some(),
        Expr::InList(list) => {
            let Some(ty) = column_type(&list.expr) else {
                return false;
            };
            list.list
                .iter()
                .all(|v| literal_type(v).is_some_and(|t| t == ty))
        }
        Expr::Between(Between {
            expr, low, high, ..
        }) => same_type(expr, low) && same_type(expr, high),
        _ => false,
    }
}
