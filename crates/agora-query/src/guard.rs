//! Bounds on what one function call may allocate.
//!
//! The memory pool sees what operators reserve (sorts, joins, aggregates), not what a
//! scalar function allocates: `repeat('x', 2000000000)` builds 2 GB in one call, and a
//! chain of `||` doubles a value per step. Two guards close that, both per batch and
//! against one bound (`value_bytes`):
//!
//! * **before the call**, the functions whose output size is a product of an argument
//!   (`repeat`, `lpad`, `rpad`, `replace`, `regexp_replace`, `array_repeat`,
//!   `array_resize`, `range`, `generate_series`) are wrapped ([`Amplifier`]) and refuse
//!   a batch whose output would exceed the bound, before allocating it;
//! * **after the call**, every `||`, every call of a function above or of one whose
//!   output grows with its inputs (`concat`, `make_array`...) and every long literal is wrapped in
//!   [`Bounded`], which refuses an output over the bound, a constant counted once per row
//!   it is copied to. Each step's output is at most the sum of two bounded inputs,
//!   so a whole expression never holds more than a few times the bound at once.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::compute::{cast, kernels::length::length};
use datafusion::arrow::datatypes::{DataType, FieldRef, Int64Type, TimeUnit};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{ExprSchema, Result, ScalarValue};
use datafusion::error::DataFusionError;
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::interval_arithmetic::Interval;
use datafusion::logical_expr::simplify::{ExprSimplifyResult, SimplifyContext};
use datafusion::logical_expr::sort_properties::{ExprProperties, SortProperties};
use datafusion::logical_expr::{
    BinaryExpr, ColumnarValue, Documentation, Expr, LogicalPlan, Operator, ReturnFieldArgs,
    ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::optimizer::AnalyzerRule;
use datafusion::prelude::SessionContext;

/// Raised by a guard; the query layer turns it into [`crate::Error::TooLargeValue`].
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct ValueTooLarge(pub(crate) String);

fn refuse(what: &str, bound: usize) -> DataFusionError {
    DataFusionError::External(Box::new(ValueTooLarge(format!(
        "{what} would build more than {} MiB in one step (a query's values are bounded); \
         use smaller arguments, or filter first",
        bound >> 20
    ))))
}

/// Functions whose output size is a product of an argument's value.
const AMPLIFIERS: &[&str] = &[
    "repeat",
    "lpad",
    "rpad",
    "replace",
    "regexp_replace",
    "array_repeat",
    "array_resize",
    "range",
    "generate_series",
];

/// Functions whose output grows with (the sum of) their inputs.
const GROWERS: &[&str] = &[
    "concat",
    "concat_ws",
    "overlay",
    "to_hex",
    "encode",
    "make_array",
    "array_concat",
    "array_append",
    "array_prepend",
    "array_union",
    "string_to_array",
    "named_struct",
    "struct",
    "map",
];

/// Literals longer than this are bounded like function outputs.
const LONG_LITERAL: usize = 4 << 10;

/// Installs both guards in `ctx`, bounding each function call's output to `value_bytes`.
pub(crate) fn install(ctx: &SessionContext, value_bytes: usize) {
    let state = ctx.state();
    for name in AMPLIFIERS {
        if let Some(inner) = state.scalar_functions().get(*name) {
            ctx.register_udf(ScalarUDF::new_from_impl(Amplifier {
                inner: inner.as_ref().clone(),
                bound: value_bytes,
            }));
        }
    }
    ctx.add_analyzer_rule(Arc::new(BoundOutputs { bound: value_bytes }));
}

/// Analyzer rule (after type coercion) wrapping `||` and growing functions in [`Bounded`].
#[derive(Debug)]
struct BoundOutputs {
    bound: usize,
}

impl AnalyzerRule for BoundOutputs {
    fn analyze(&self, plan: LogicalPlan, _: &ConfigOptions) -> Result<LogicalPlan> {
        let bounded = Arc::new(ScalarUDF::new_from_impl(Bounded::new(self.bound)));
        plan.transform_up_with_subqueries(|node| {
            let names = NamePreserver::new(&node);
            node.map_expressions(|expr| {
                let saved = names.save(&expr);
                let rewritten = expr.transform_up(|e| {
                    let grows = match &e {
                        Expr::BinaryExpr(BinaryExpr {
                            op: Operator::StringConcat,
                            ..
                        }) => true,
                        Expr::ScalarFunction(f) => {
                            let name = f.func.name();
                            GROWERS.contains(&name) || AMPLIFIERS.contains(&name)
                        }
                        // A long literal is copied to every row of a batch.
                        Expr::Literal(value, _) => value.size() > LONG_LITERAL,
                        _ => false,
                    };
                    Ok(if grows {
                        Transformed::yes(Expr::ScalarFunction(ScalarFunction::new_udf(
                            bounded.clone(),
                            vec![e],
                        )))
                    } else {
                        Transformed::no(e)
                    })
                })?;
                Ok(rewritten.update_data(|e| saved.restore(e)))
            })
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "agora_bound_outputs"
    }
}

/// `agora_bounded(x)`: `x`, unless it holds more than the bound.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Bounded {
    signature: Signature,
    bound: usize,
}

impl Bounded {
    fn new(bound: usize) -> Self {
        Self {
            // Volatile, so it is never folded away at planning: a constant is checked at
            // run time against the rows it is copied to.
            signature: Signature::any(1, Volatility::Volatile),
            bound,
        }
    }
}

impl ScalarUDFImpl for Bounded {
    fn name(&self) -> &str {
        "agora_bounded"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        Ok(arg_types[0].clone())
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        Ok(args.arg_fields[0].clone())
    }

    fn invoke_with_args(&self, mut args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let value = args.args.swap_remove(0);
        let size = match &value {
            ColumnarValue::Array(a) => array_bytes(a.as_ref()),
            // A constant is copied to every row of the batch where it is used.
            ColumnarValue::Scalar(s) => s.size().saturating_mul(args.number_rows.max(1)),
        };
        if size > self.bound {
            return Err(refuse("a concatenation or function", self.bound));
        }
        Ok(value)
    }
}

/// The bytes an array's rows occupy: of a slice, its part of the buffers. Arrow's own
/// slice measure leaves out the data buffers of string and binary views, where the bulk
/// of a view array lives, so an array holding views is measured by its whole buffers.
pub(crate) fn array_bytes(array: &dyn Array) -> usize {
    if holds_views(array.data_type()) {
        array.get_array_memory_size()
    } else {
        array
            .to_data()
            .get_slice_memory_size()
            .unwrap_or_else(|_| array.get_array_memory_size())
    }
}

fn holds_views(data_type: &DataType) -> bool {
    match data_type {
        DataType::Utf8View | DataType::BinaryView => true,
        DataType::List(f)
        | DataType::LargeList(f)
        | DataType::ListView(f)
        | DataType::LargeListView(f)
        | DataType::FixedSizeList(f, _)
        | DataType::Map(f, _) => holds_views(f.data_type()),
        DataType::Struct(fields) => fields.iter().any(|f| holds_views(f.data_type())),
        DataType::Dictionary(_, values) => holds_views(values),
        DataType::RunEndEncoded(_, values) => holds_views(values.data_type()),
        DataType::Union(fields, _) => fields.iter().any(|(_, f)| holds_views(f.data_type())),
        _ => false,
    }
}

/// A function whose output size is a product of an argument, refusing a batch whose
/// output would exceed the bound before computing it. Delegates everything else.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Amplifier {
    inner: ScalarUDF,
    bound: usize,
}

/// One argument, per row: a scalar stands for every row.
enum PerRow {
    Scalar(Option<i64>),
    Array(datafusion::arrow::array::Int64Array),
}

impl PerRow {
    fn get(&self, row: usize) -> Option<i64> {
        match self {
            PerRow::Scalar(v) => *v,
            PerRow::Array(a) => a.is_valid(row).then(|| a.value(row)),
        }
    }

    fn is_scalar(&self) -> bool {
        matches!(self, PerRow::Scalar(_))
    }
}

fn to_per_row(value: &ColumnarValue, f: impl Fn(&ArrayRef) -> Result<ArrayRef>) -> Result<PerRow> {
    let array = match value {
        ColumnarValue::Array(a) => a.clone(),
        ColumnarValue::Scalar(s) => s.to_array_of_size(1)?,
    };
    let array = cast(&f(&array)?, &DataType::Int64)?;
    let ints = array.as_primitive::<Int64Type>().clone();
    Ok(match value {
        ColumnarValue::Scalar(_) => PerRow::Scalar(ints.is_valid(0).then(|| ints.value(0))),
        ColumnarValue::Array(_) => PerRow::Array(ints),
    })
}

/// Byte length (strings, binaries) or element count (lists) per row.
fn lengths(value: &ColumnarValue) -> Result<PerRow> {
    to_per_row(value, |a| match a.data_type() {
        DataType::List(_) | DataType::LargeList(_) | DataType::FixedSizeList(..) => {
            Ok(length(a.as_ref())?)
        }
        DataType::Utf8View => Ok(length(&cast(a, &DataType::Utf8)?)?),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Binary | DataType::LargeBinary => {
            Ok(length(a.as_ref())?)
        }
        // Anything else is small per value: count it as 16 bytes.
        _ => Ok(Arc::new(datafusion::arrow::array::Int64Array::from(vec![
            16;
            a.len()
        ]))),
    })
}

/// Integer values per row (timestamps and dates as nanoseconds); values that are not
/// numbers count as null.
fn ints(value: &ColumnarValue) -> Result<PerRow> {
    let nanos = DataType::Timestamp(TimeUnit::Nanosecond, None);
    to_per_row(value, |a| {
        let a = match a.data_type() {
            DataType::Timestamp(..) | DataType::Date32 | DataType::Date64 => cast(a, &nanos)?,
            _ => a.clone(),
        };
        Ok(cast(&a, &DataType::Int64).unwrap_or_else(|_| {
            datafusion::arrow::array::new_null_array(&DataType::Int64, a.len())
        }))
    })
}

/// The smallest step an interval argument can take, in nanoseconds (a month counted as
/// 28 days), so a range over it is never underestimated.
fn step_nanos(value: &ColumnarValue) -> Option<i64> {
    let scalar = match value {
        ColumnarValue::Scalar(s) => s.clone(),
        ColumnarValue::Array(a) if !a.is_empty() => ScalarValue::try_from_array(a, 0).ok()?,
        ColumnarValue::Array(_) => return None,
    };
    match scalar {
        ScalarValue::IntervalMonthDayNano(Some(v)) => Some(
            (i64::from(v.months) * 28 * 86_400_000_000_000)
                .saturating_add(i64::from(v.days) * 86_400_000_000_000)
                .saturating_add(v.nanoseconds)
                .abs(),
        ),
        ScalarValue::IntervalDayTime(Some(v)) => Some(
            (i64::from(v.days) * 86_400_000_000_000)
                .saturating_add(i64::from(v.milliseconds) * 1_000_000)
                .abs(),
        ),
        ScalarValue::IntervalYearMonth(Some(m)) => {
            Some((i64::from(m) * 28 * 86_400_000_000_000).abs())
        }
        _ => None,
    }
}

/// Bytes of one output row, from the row's argument values.
type Estimate = Box<dyn Fn(&[Option<i64>]) -> u128>;

impl Amplifier {
    /// An upper bound of the bytes one batch's output would take.
    fn output_bytes(&self, args: &ScalarFunctionArgs) -> Result<u128> {
        let a = &args.args;
        let rows = args.number_rows;
        let per_row: Vec<PerRow>;
        // Bytes of the output row from the per-row argument values.
        let estimate: Estimate = match self.inner.name() {
            "repeat" => {
                per_row = vec![lengths(&a[0])?, ints(&a[1])?];
                Box::new(|v| width(v[0]) * width(v[1]))
            }
            "lpad" | "rpad" => {
                per_row = vec![ints(&a[1])?];
                // Up to 4 bytes per character.
                Box::new(|v| 4 * width(v[0]))
            }
            "replace" | "regexp_replace" => {
                // An empty match can occur at every position.
                // replace(s, from, to), regexp_replace(s, pattern, replacement[, flags]).
                per_row = vec![lengths(&a[0])?, lengths(&a[2])?];
                Box::new(|v| width(v[0]) + (width(v[0]) + 1) * width(v[1]))
            }
            "array_repeat" => {
                per_row = vec![lengths(&a[0])?, ints(&a[1])?];
                Box::new(|v| (width(v[0]) + 8) * width(v[1]))
            }
            "array_resize" => {
                per_row = vec![ints(&a[1])?];
                Box::new(|v| 16 * width(v[0]))
            }
            "range" | "generate_series" => {
                let step = match a.get(2) {
                    None => PerRow::Scalar(Some(1)),
                    Some(s) => match step_nanos(s) {
                        Some(n) => PerRow::Scalar(Some(n.max(1))),
                        None => ints(s)?,
                    },
                };
                if a.len() < 2 {
                    // range(n): from 0 to n.
                    per_row = vec![PerRow::Scalar(Some(0)), ints(&a[0])?, step];
                } else {
                    per_row = vec![ints(&a[0])?, ints(&a[1])?, step];
                }
                Box::new(|v| {
                    let span = (i128::from(v[1].unwrap_or(0)) - i128::from(v[0].unwrap_or(0)))
                        .unsigned_abs();
                    let step = v[2].unwrap_or(1).unsigned_abs().max(1);
                    8 * (span / u128::from(step) + 1)
                })
            }
            _ => return Ok(0),
        };
        let mut values = vec![None; per_row.len()];
        if per_row.iter().all(PerRow::is_scalar) {
            for (v, p) in values.iter_mut().zip(&per_row) {
                *v = p.get(0);
            }
            return Ok(estimate(&values).saturating_mul(rows.max(1) as u128));
        }
        let mut total: u128 = 0;
        for row in 0..rows {
            for (v, p) in values.iter_mut().zip(&per_row) {
                *v = p.get(row);
            }
            total = total.saturating_add(estimate(&values));
        }
        Ok(total)
    }
}

fn width(v: Option<i64>) -> u128 {
    u128::from(v.unwrap_or(0).max(0).unsigned_abs())
}

#[warn(clippy::missing_trait_methods)]
impl ScalarUDFImpl for Amplifier {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn display_name(&self, args: &[Expr]) -> Result<String> {
        #[expect(deprecated)]
        self.inner.inner().display_name(args)
    }

    fn schema_name(&self, args: &[Expr]) -> Result<String> {
        self.inner.inner().schema_name(args)
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.inner().return_type(arg_types)
    }

    fn with_updated_config(&self, config: &ConfigOptions) -> Option<ScalarUDF> {
        let inner = self.inner.inner().with_updated_config(config)?;
        Some(ScalarUDF::new_from_impl(Amplifier {
            inner,
            bound: self.bound,
        }))
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        self.inner.return_field_from_args(args)
    }

    fn is_nullable(&self, args: &[Expr], schema: &dyn ExprSchema) -> bool {
        #[expect(deprecated)]
        self.inner.inner().is_nullable(args, schema)
    }

    fn is_strict(&self) -> bool {
        self.inner.inner().is_strict()
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        if self.output_bytes(&args)? > self.bound as u128 {
            return Err(refuse(&format!("{}(...)", self.inner.name()), self.bound));
        }
        self.inner.invoke_with_args(args)
    }

    fn simplify(&self, args: Vec<Expr>, info: &SimplifyContext) -> Result<ExprSimplifyResult> {
        self.inner.simplify(args, info)
    }

    fn preimage(
        &self,
        args: &[Expr],
        lit_expr: &Expr,
        info: &SimplifyContext,
    ) -> Result<datafusion::logical_expr::preimage::PreimageResult> {
        self.inner.inner().preimage(args, lit_expr, info)
    }

    fn conditional_arguments<'a>(
        &self,
        args: &'a [Expr],
    ) -> Option<(Vec<&'a Expr>, Vec<&'a Expr>)> {
        self.inner.conditional_arguments(args)
    }

    fn short_circuits(&self) -> bool {
        self.inner.short_circuits()
    }

    fn evaluate_bounds(&self, input: &[&Interval]) -> Result<Interval> {
        self.inner.evaluate_bounds(input)
    }

    fn propagate_constraints(
        &self,
        interval: &Interval,
        inputs: &[&Interval],
    ) -> Result<Option<Vec<Interval>>> {
        self.inner.propagate_constraints(interval, inputs)
    }

    fn struct_field_mapping(
        &self,
        literal_args: &[Option<ScalarValue>],
    ) -> Option<datafusion::logical_expr::StructFieldMapping> {
        self.inner.inner().struct_field_mapping(literal_args)
    }

    fn output_ordering(&self, inputs: &[ExprProperties]) -> Result<SortProperties> {
        self.inner.output_ordering(inputs)
    }

    fn preserves_lex_ordering(&self, inputs: &[ExprProperties]) -> Result<bool> {
        self.inner.preserves_lex_ordering(inputs)
    }

    fn strictly_order_preserving(&self, inputs: &[ExprProperties]) -> Result<bool> {
        self.inner.inner().strictly_order_preserving(inputs)
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.inner.coerce_types(arg_types)
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.inner.documentation()
    }

    fn placement(
        &self,
        args: &[datafusion::logical_expr::ExpressionPlacement],
    ) -> datafusion::logical_expr::ExpressionPlacement {
        self.inner.inner().placement(args)
    }
}
