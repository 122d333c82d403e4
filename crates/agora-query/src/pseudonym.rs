//! Per-project pseudonyms as a plan expression.
//!
//! A permit's policy plan shows each person key column as `agora_pseudonym(column)`: the
//! project's keyed permutation of hub person keys ([`agora_privacy::ProjectPseudonyms`]).
//! The function is never registered in the session: the expression holds the one instance,
//! with the project's key, and SQL cannot name it (a researcher cannot pseudonymize chosen
//! values, nor reach the inverse). It cannot fail on any value — a value that is not a hub
//! key (`≤ 0`) becomes NULL — so it is as safe as a column below the policy barrier.
//!
//! A researcher's `person_id = <pseudonym>` pushed through the barrier is evaluated as
//! `agora_pseudonym(key) = <pseudonym>` on the scanned rows: correct, but without Parquet
//! statistics pruning. Do not implement `ScalarUDFImpl::preimage` to translate the literal:
//! DataFusion applies a preimage to `<`, `<=`, `>`, `>=` as well, which is only right for a
//! monotonic function, and a permutation is not. Nor translate it in the policy table's
//! scan: the hub key literal would then show in the researcher's `EXPLAIN` (an oracle from
//! pseudonyms to hub keys, which would let two projects link their persons).

use std::sync::Arc;

use agora_privacy::ProjectPseudonyms;
use datafusion::arrow::array::{Array, AsArray, Int64Array, StringArray};
use datafusion::arrow::buffer::{BooleanBuffer, NullBuffer, ScalarBuffer};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Int64Type};
use datafusion::common::{Result, ScalarValue, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};

/// Shown in plans (`EXPLAIN`); not a name SQL can call.
const NAME: &str = "agora_pseudonym";

/// The pseudonym function of one project.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Pseudonym {
    keys: Arc<ProjectPseudonyms>,
    signature: Signature,
}

/// `agora_pseudonym(expr)` under `keys`, for an `Int64` hub person key expression.
pub(crate) fn pseudonym_expr(keys: &Arc<ProjectPseudonyms>, expr: Expr) -> Expr {
    let udf = ScalarUDF::new_from_impl(Pseudonym {
        keys: keys.clone(),
        signature: Signature::exact(vec![DataType::Int64], Volatility::Immutable),
    });
    udf.call(vec![expr])
}

impl ScalarUDFImpl for Pseudonym {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int64)
    }

    // A non-key value has no pseudonym: the result may be NULL whatever the input.
    fn return_field_from_args(&self, _args: ReturnFieldArgs) -> Result<FieldRef> {
        Ok(Arc::new(Field::new(NAME, DataType::Int64, true)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [arg] = args.args.as_slice() else {
            return exec_err!("{NAME} takes one argument");
        };
        match arg {
            ColumnarValue::Scalar(ScalarValue::Int64(v)) => Ok(ColumnarValue::Scalar(
                ScalarValue::Int64(v.and_then(|v| self.keys.pseudonym(v))),
            )),
            ColumnarValue::Scalar(_) => exec_err!("{NAME} takes a 64-bit integer"),
            ColumnarValue::Array(array) => {
                let Some(keys) = array.as_primitive_opt::<Int64Type>() else {
                    return exec_err!("{NAME} takes a 64-bit integer");
                };
                Ok(ColumnarValue::Array(Arc::new(pseudonymize(
                    &self.keys, keys,
                ))))
            }
        }
    }
}

/// `agora_rekey(expr)` under `keys`: a text key column (FHIR ids and references) re-keyed
/// for the project ([`ProjectPseudonyms::rekey_text`]).
pub(crate) fn rekey_text_expr(keys: &Arc<ProjectPseudonyms>, expr: Expr) -> Expr {
    let udf = ScalarUDF::new_from_impl(RekeyText {
        keys: keys.clone(),
        signature: Signature::string(1, Volatility::Immutable),
    });
    udf.call(vec![expr])
}

/// Shown in plans; not a name SQL can call.
const REKEY_NAME: &str = "agora_rekey";

#[derive(Debug, PartialEq, Eq, Hash)]
struct RekeyText {
    keys: Arc<ProjectPseudonyms>,
    signature: Signature,
}

impl ScalarUDFImpl for RekeyText {
    fn name(&self) -> &str {
        REKEY_NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [arg] = args.args.as_slice() else {
            return exec_err!("{REKEY_NAME} takes one argument");
        };
        // Whatever string layout the scan produced (Utf8, Utf8View...).
        let array = arg.to_array(args.number_rows)?;
        let text = datafusion::arrow::compute::cast(&array, &DataType::Utf8)?;
        let text = text.as_string::<i32>();
        let out: StringArray = text
            .iter()
            .map(|v| v.map(|v| self.keys.rekey_text(v)))
            .collect();
        Ok(match arg {
            ColumnarValue::Scalar(_) => {
                ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?)
            }
            ColumnarValue::Array(_) => ColumnarValue::Array(Arc::new(out)),
        })
    }
}

/// The column's pseudonyms: one output buffer, AES over blocks of lanes, the input's nulls
/// (plus NULL for non-keys, which hub key columns never hold).
fn pseudonymize(keys: &ProjectPseudonyms, input: &Int64Array) -> Int64Array {
    let values = input.values();
    let mut out = vec![0i64; values.len()];
    keys.pseudonymize(values, &mut out);
    let nulls = input.nulls().cloned();
    let bad = values
        .iter()
        .enumerate()
        .any(|(i, &v)| v < 1 && nulls.as_ref().is_none_or(|n| n.is_valid(i)));
    let nulls = if bad {
        let valid = BooleanBuffer::collect_bool(values.len(), |i| {
            values[i] >= 1 && nulls.as_ref().is_none_or(|n| n.is_valid(i))
        });
        Some(NullBuffer::new(valid))
    } else {
        nulls
    };
    Int64Array::new(ScalarBuffer::from(out), nulls)
}

#[cfg(test)]
mod tests {
    use agora_privacy::HubSecret;

    use super::*;

    #[test]
    fn a_column_keeps_its_nulls_and_loses_non_keys() {
        let keys = Arc::new(ProjectPseudonyms::new(&HubSecret::from_bytes([1; 32]), "p"));
        let input = Int64Array::from(vec![Some(5), None, Some(0), Some(i64::MAX), Some(-2)]);
        let out = pseudonymize(&keys, &input);
        assert_eq!(out.len(), 5);
        assert_eq!(out.value(0), keys.pseudonym(5).unwrap());
        assert_eq!(out.value(3), keys.pseudonym(i64::MAX).unwrap());
        let valid: Vec<bool> = (0..5).map(|i| out.is_valid(i)).collect();
        assert_eq!(valid, [true, false, false, true, false]);
        // Sliced input (offsets) gives the same values.
        let sliced = input.slice(3, 2);
        let out = pseudonymize(&keys, &sliced);
        assert_eq!(out.value(0), keys.pseudonym(i64::MAX).unwrap());
        assert!(out.is_null(1));
    }
}
