//! PostgreSQL date arithmetic, which OHDSI-style research SQL relies on:
//! `date - date` is an integer number of days and `date ± integer` is a date.
//! DataFusion would otherwise produce intervals or refuse the expression.

use datafusion::arrow::datatypes::DataType;
use datafusion::common::{DFSchema, Result};
use datafusion::logical_expr::planner::{ExprPlanner, PlannerResult, RawBinaryExpr};
use datafusion::logical_expr::{Expr, ExprSchemable, cast};
use datafusion::sql::sqlparser::ast::BinaryOperator;

#[derive(Debug)]
pub(crate) struct PostgresDates;

fn is_int(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
    )
}

fn days(e: Expr) -> Expr {
    cast(e, DataType::Int64)
}

fn to_date(days: Expr) -> Expr {
    cast(cast(days, DataType::Int32), DataType::Date32)
}

impl ExprPlanner for PostgresDates {
    fn plan_binary_op(
        &self,
        expr: RawBinaryExpr,
        schema: &DFSchema,
    ) -> Result<PlannerResult<RawBinaryExpr>> {
        let (Ok(lt), Ok(rt)) = (expr.left.get_type(schema), expr.right.get_type(schema)) else {
            return Ok(PlannerResult::Original(expr));
        };
        let RawBinaryExpr { op, left, right } = expr;
        let planned = match (&op, &lt, &rt) {
            (BinaryOperator::Minus, DataType::Date32, DataType::Date32) => days(left) - days(right),
            (BinaryOperator::Plus, DataType::Date32, r) if is_int(r) => {
                to_date(days(left) + days(right))
            }
            (BinaryOperator::Minus, DataType::Date32, r) if is_int(r) => {
                to_date(days(left) - days(right))
            }
            (BinaryOperator::Plus, l, DataType::Date32) if is_int(l) => {
                to_date(days(left) + days(right))
            }
            _ => return Ok(PlannerResult::Original(RawBinaryExpr { op, left, right })),
        };
        Ok(PlannerResult::Planned(planned))
    }
}
