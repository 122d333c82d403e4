//! Phase 1's second half: a release point's rows, with their hidden counts, become the
//! released aggregate (withheld groups, blanked cells, rounded counts).

use std::sync::Arc;

use agora_govern::DisclosureRules;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, RecordBatch};
use datafusion::arrow::compute::{cast, concat_batches, filter_record_batch, nullif};
use datafusion::arrow::datatypes::{DataType, Field, Float64Type, Int64Type, Schema, SchemaRef};
use datafusion::common::ScalarValue;

use super::DpRun;
use super::rewrite::{DpCell, DpPoint, ReleasePoint};
use crate::{Error, Result};

/// What one release point withheld.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Tally {
    pub(crate) groups_withheld: u64,
    pub(crate) cells_suppressed: u64,
}

/// A release point's rows (its aggregate's columns, then the hidden ones) in one batch.
pub(crate) fn one_batch(schema: SchemaRef, batches: &[RecordBatch]) -> Result<RecordBatch> {
    concat_batches(&schema, batches).map_err(|e| Error::Engine(format!("release: {e}")))
}

/// Applies `rules` to the rows of `point` (its aggregate's columns, then the hidden ones),
/// also withholding the rows `withheld` names (the ledger's); returns the released rows
/// under the aggregate's own columns, every one nullable, and which rows were released.
pub(crate) fn release(
    point: &ReleasePoint,
    rules: &DisclosureRules,
    batch: &RecordBatch,
    withheld: &[bool],
    blank: &[Vec<bool>],
    dp: Option<(&DpRun, usize)>,
) -> Result<(RecordBatch, Tally, Vec<bool>)> {
    if let (Some(noised), Some((run, index))) = (&point.dp, dp) {
        return release_noisy(point, noised, rules, batch, run, index);
    }
    let err = |e: datafusion::arrow::error::ArrowError| Error::Engine(format!("release: {e}"));
    let rows = batch.num_rows();
    let k = i64::from(rules.k);
    let counts = |cols: &[usize]| -> Result<Vec<i64>> {
        let arrays = cols
            .iter()
            .map(|&c| match batch.column(c).data_type() {
                // A person sketch: its persons.
                DataType::Binary => Ok(super::ledger::persons_of(batch.column(c))),
                _ => cast(batch.column(c), &DataType::Int64).map_err(err),
            })
            .collect::<Result<Vec<ArrayRef>>>()?;
        Ok((0..rows)
            .map(|r| {
                arrays
                    .iter()
                    .map(|a| a.as_primitive::<Int64Type>())
                    .filter(|a| a.is_valid(r) && a.value(r) > 0)
                    .map(|a| a.value(r))
                    .min()
                    .unwrap_or(0)
            })
            .collect())
    };

    let group_persons = counts(&point.group_hidden)?;
    let mut keep: Vec<bool> = group_persons
        .iter()
        .zip(withheld)
        .map(|(&n, &w)| n >= k && !w)
        .collect();
    let mut cell_persons = Vec::with_capacity(point.cells.len());
    let mut cell_ok = Vec::with_capacity(point.cells.len());
    for cell in &point.cells {
        let persons = counts(&cell.hidden)?;
        let mut ok: Vec<bool> = persons.iter().map(|&n| n >= k).collect();
        if let (Some((largest, total)), Some(p)) = (cell.dominance, rules.dominance_percent) {
            let largest = cast(batch.column(largest), &DataType::Float64).map_err(err)?;
            let total = cast(batch.column(total), &DataType::Float64).map_err(err)?;
            let (largest, total) = (
                largest.as_primitive::<Float64Type>(),
                total.as_primitive::<Float64Type>(),
            );
            for (r, ok) in ok.iter_mut().enumerate() {
                if total.is_valid(r) && total.value(r) > 0.0 && largest.is_valid(r) {
                    *ok &= largest.value(r) * 100.0 <= p * total.value(r);
                }
            }
        }
        if let Some(blank) = blank.get(cell_persons.len()) {
            for (ok, blank) in ok.iter_mut().zip(blank) {
                *ok &= !blank;
            }
        }
        cell_persons.push(persons);
        cell_ok.push(ok);
    }

    // Margins (ROLLUP, CUBE, GROUPING SETS): withhold more until no margin minus its
    // visible parts gives back a withheld part.
    if let Some(gid) = point.grouping_id {
        let coords = coordinates(batch, point.groups, gid)?;
        let mut withheld: Vec<bool> = keep.iter().map(|k| !k).collect();
        secondary(&coords, &mut withheld, &group_persons, k);
        for (keep, withheld) in keep.iter_mut().zip(&withheld) {
            *keep = !withheld;
        }
        for (persons, ok) in cell_persons.iter().zip(cell_ok.iter_mut()) {
            let mut blank: Vec<bool> = (0..rows).map(|r| !keep[r] || !ok[r]).collect();
            secondary(&coords, &mut blank, persons, k);
            for (ok, blank) in ok.iter_mut().zip(blank) {
                *ok = !blank;
            }
        }
    }

    // Every grouping partitions the persons it covers, whose total another query can give:
    // the total minus the visible groups must not give back a lone withheld group.
    if point.groups > 0 {
        let levels = levels(batch, point)?;
        let mut withheld: Vec<bool> = keep.iter().map(|k| !k).collect();
        against_total(&levels, &mut withheld, &group_persons, k);
        for (keep, withheld) in keep.iter_mut().zip(&withheld) {
            *keep = !withheld;
        }
        for (persons, ok) in cell_persons.iter().zip(cell_ok.iter_mut()) {
            let mut blank: Vec<bool> = (0..rows).map(|r| !ok[r]).collect();
            // Only released rows show a blank; withheld rows are gone already.
            let visible: Vec<Vec<usize>> = levels
                .iter()
                .map(|l| l.iter().copied().filter(|&r| keep[r]).collect())
                .collect();
            against_total(&visible, &mut blank, persons, k);
            for (ok, blank) in ok.iter_mut().zip(blank) {
                *ok = !blank;
            }
        }
    }

    let mut tally = Tally::default();
    let grouped = point.groups > 0;
    let mut columns: Vec<ArrayRef> = batch.columns()[..point.schema.fields().len()].to_vec();
    for (c, cell) in point.cells.iter().enumerate() {
        // A withheld group of a global aggregate stays as a row of blanks.
        let blank: BooleanArray = (0..rows)
            .map(|r| Some(!cell_ok[c][r] || (!grouped && !keep[r])))
            .collect();
        tally.cells_suppressed += (0..rows).filter(|&r| !cell_ok[c][r] || !keep[r]).count() as u64;
        let mut array = nullif(&columns[cell.index], &blank).map_err(err)?;
        if cell.is_count && rules.rounding > 1 {
            array = round(&array, i64::from(rules.rounding)).map_err(err)?;
        }
        columns[cell.index] = array;
    }
    let fields: Vec<Field> = point
        .schema
        .fields()
        .iter()
        .map(|f| f.as_ref().clone().with_nullable(true))
        .collect();
    let released = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(err)?;
    let released = if grouped {
        tally.groups_withheld = keep.iter().filter(|k| !**k).count() as u64;
        filter_record_batch(&released, &BooleanArray::from(keep.clone())).map_err(err)?
    } else {
        released
    };
    Ok((released, tally, keep))
}

/// Differential privacy: groups released on a noisy person count, every cell noisy.
fn release_noisy(
    point: &ReleasePoint,
    noised: &DpPoint,
    rules: &DisclosureRules,
    batch: &RecordBatch,
    run: &DpRun,
    index: usize,
) -> Result<(RecordBatch, Tally, Vec<bool>)> {
    let err = |e: datafusion::arrow::error::ArrowError| Error::Engine(format!("release: {e}"));
    let rows = batch.num_rows();
    let int = |c: usize| -> Result<Vec<i64>> {
        let a = cast(batch.column(c), &DataType::Int64).map_err(err)?;
        let a = a.as_primitive::<Int64Type>();
        Ok((0..rows)
            .map(|r| if a.is_valid(r) { a.value(r) } else { 0 })
            .collect())
    };
    // Each group's coordinates, for its noise: the group values as text.
    let keys: Vec<Vec<u8>> = (0..rows)
        .map(|r| {
            let mut key = Vec::new();
            for c in 0..point.groups {
                let v = ScalarValue::try_from_array(batch.column(c), r)
                    .map(|v| v.to_string())
                    .unwrap_or_default();
                key.extend_from_slice(&(v.len() as u64).to_be_bytes());
                key.extend_from_slice(v.as_bytes());
            }
            key
        })
        .collect();
    let persons = int(point.group_hidden[0])?;
    let keep: Vec<bool> = match &noised.selection {
        Some(mechanism) => (0..rows)
            .map(|r| {
                let mut rng = run.stream(index, &keys[r], "persons", 0);
                mechanism.release(persons[r], &mut rng) >= i64::from(rules.k)
            })
            .collect(),
        None => vec![true; rows],
    };
    let mut columns: Vec<ArrayRef> = batch.columns()[..point.schema.fields().len()].to_vec();
    for (c, (cell, how)) in point.cells.iter().zip(&noised.cells).enumerate() {
        let values: Vec<Option<f64>> = match how {
            DpCell::Count(mechanism) => {
                let truth = int(cell.index)?;
                (0..rows)
                    .map(|r| {
                        let mut rng = run.stream(index, &keys[r], "count", c);
                        Some(mechanism.release(truth[r], &mut rng).max(0) as f64)
                    })
                    .collect()
            }
            DpCell::Sum { grid, mechanism } => {
                let truth = int(*grid)?;
                (0..rows)
                    .map(|r| {
                        let mut rng = run.stream(index, &keys[r], "sum", c);
                        Some(mechanism.release(i128::from(truth[r]), &mut rng))
                    })
                    .collect()
            }
            DpCell::Avg {
                grid,
                sum,
                count,
                counting,
            } => {
                let (sums, counts) = (int(*grid)?, int(*count)?);
                (0..rows)
                    .map(|r| {
                        let total = sum.release(
                            i128::from(sums[r]),
                            &mut run.stream(index, &keys[r], "sum", c),
                        );
                        let n = counting
                            .release(counts[r], &mut run.stream(index, &keys[r], "count", c));
                        (n > 0).then(|| total / n as f64)
                    })
                    .collect()
            }
        };
        let noisy: ArrayRef = Arc::new(datafusion::arrow::array::Float64Array::from(values));
        columns[cell.index] =
            cast(&noisy, point.schema.field(cell.index).data_type()).map_err(err)?;
    }
    let fields: Vec<Field> = point
        .schema
        .fields()
        .iter()
        .map(|f| f.as_ref().clone().with_nullable(true))
        .collect();
    let released = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(err)?;
    let released =
        filter_record_batch(&released, &BooleanArray::from(keep.clone())).map_err(err)?;
    let withheld = keep.iter().filter(|k| !**k).count() as u64;
    let tally = Tally {
        groups_withheld: withheld,
        cells_suppressed: withheld * point.cells.len() as u64,
    };
    Ok((released, tally, keep))
}

/// The rows of each grouping of a point (one grouping unless ROLLUP, CUBE or GROUPING SETS).
fn levels(batch: &RecordBatch, point: &ReleasePoint) -> Result<Vec<Vec<usize>>> {
    let rows = batch.num_rows();
    let Some(gid) = point.grouping_id else {
        return Ok(vec![(0..rows).collect()]);
    };
    let ids = cast(batch.column(gid), &DataType::UInt64)
        .map_err(|e| Error::Engine(format!("release: {e}")))?;
    let ids = ids.as_primitive::<datafusion::arrow::datatypes::UInt64Type>();
    let mut by: std::collections::BTreeMap<u64, Vec<usize>> = Default::default();
    for r in 0..rows {
        by.entry(ids.value(r)).or_default().push(r);
    }
    Ok(by.into_values().collect())
}

/// Within each level, while the withheld rows are a single one or rest on fewer than `k`
/// persons together, the smallest visible row is withheld too.
fn against_total(levels: &[Vec<usize>], withheld: &mut [bool], persons: &[i64], k: i64) {
    for level in levels {
        loop {
            let hidden: Vec<usize> = level.iter().copied().filter(|&r| withheld[r]).collect();
            let behind: i64 = hidden.iter().map(|&r| persons[r]).sum();
            if hidden.is_empty() || (hidden.len() >= 2 && behind >= k) {
                break;
            }
            let Some(&next) = level
                .iter()
                .filter(|&&r| !withheld[r])
                .min_by_key(|&&r| persons[r])
            else {
                break;
            };
            withheld[next] = true;
        }
    }
}

/// Rounds counts to the nearest multiple of `base` (halves up).
fn round(
    array: &ArrayRef,
    base: i64,
) -> std::result::Result<ArrayRef, datafusion::arrow::error::ArrowError> {
    let ints = cast(array, &DataType::Int64)?;
    let rounded: datafusion::arrow::array::Int64Array = ints
        .as_primitive::<Int64Type>()
        .unary(|v| (v + base / 2).div_euclid(base) * base);
    cast(&(Arc::new(rounded) as ArrayRef), array.data_type())
}

/// One row of a grouping-sets aggregate: which group columns it is grouped by (a bit per
/// column) and their values.
struct Coordinate {
    grouped: u64,
    keys: Vec<ScalarValue>,
}

fn coordinates(batch: &RecordBatch, groups: usize, gid: usize) -> Result<Vec<Coordinate>> {
    let err = |e: datafusion::error::DataFusionError| Error::Engine(format!("release: {e}"));
    let ids = cast(batch.column(gid), &DataType::UInt64)
        .map_err(|e| Error::Engine(format!("release: {e}")))?;
    let ids = ids.as_primitive::<datafusion::arrow::datatypes::UInt64Type>();
    let all = if groups >= 64 {
        u64::MAX
    } else {
        (1u64 << groups) - 1
    };
    (0..batch.num_rows())
        .map(|r| {
            // DataFusion sets bit (groups - 1 - i) when group column i is *not* grouped.
            let absent = ids.value(r) & all;
            let mut grouped = 0u64;
            for i in 0..groups.min(64) {
                if absent & (1 << (groups - 1 - i)) == 0 {
                    grouped |= 1 << i;
                }
            }
            let keys = (0..groups)
                .map(|i| ScalarValue::try_from_array(batch.column(i), r).map_err(err))
                .collect::<Result<Vec<_>>>()?;
            Ok(Coordinate { grouped, keys })
        })
        .collect()
}

/// Secondary suppression. For every margin row `m` and every finer grouping that contains
/// its columns, the rows of that grouping inside `m` are its parts: `m` minus the visible
/// parts is the sum of the withheld ones. While that sum rests on fewer than `k` persons
/// (or on one part alone), the smallest visible part is withheld too.
fn secondary(coords: &[Coordinate], withheld: &mut [bool], persons: &[i64], k: i64) {
    loop {
        let mut changed = false;
        for m in 0..coords.len() {
            if withheld[m] {
                continue;
            }
            let outer = coords[m].grouped;
            let mut finer: Vec<u64> = coords
                .iter()
                .map(|c| c.grouped)
                .filter(|g| *g != outer && g & outer == outer)
                .collect();
            finer.sort_unstable();
            finer.dedup();
            for level in finer {
                let parts: Vec<usize> = (0..coords.len())
                    .filter(|&r| {
                        coords[r].grouped == level
                            && (0..coords[m].keys.len())
                                .filter(|i| outer & (1 << i) != 0)
                                .all(|i| coords[r].keys[i] == coords[m].keys[i])
                    })
                    .collect();
                loop {
                    let hidden: Vec<usize> =
                        parts.iter().copied().filter(|&r| withheld[r]).collect();
                    if hidden.is_empty() {
                        break;
                    }
                    let behind: i64 = hidden.iter().map(|&r| persons[r]).sum();
                    if hidden.len() >= 2 && behind >= k {
                        break;
                    }
                    let Some(&next) = parts
                        .iter()
                        .filter(|&&r| !withheld[r])
                        .min_by_key(|&&r| persons[r])
                    else {
                        break;
                    };
                    withheld[next] = true;
                    changed = true;
                }
            }
        }
        if !changed {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(grouped: u64, keys: &[i64]) -> Coordinate {
        Coordinate {
            grouped,
            keys: keys.iter().map(|k| ScalarValue::Int64(Some(*k))).collect(),
        }
    }

    #[test]
    fn a_total_cannot_give_back_one_withheld_group() {
        // Total (grouped by nothing) and three groups, one withheld.
        let coords = [at(0, &[0]), at(1, &[1]), at(1, &[2]), at(1, &[3])];
        let persons = [60, 3, 27, 30];
        let mut withheld = [false, true, false, false];
        secondary(&coords, &mut withheld, &persons, 10);
        assert_eq!(
            withheld,
            [false, true, true, false],
            "the smallest other group goes too"
        );
    }

    #[test]
    fn the_total_of_a_grouping_cannot_give_back_a_lone_withheld_group() {
        let mut withheld = [true, false, false, false];
        against_total(&[vec![0, 1, 2, 3]], &mut withheld, &[4, 30, 12, 50], 10);
        assert_eq!(withheld, [true, false, true, false]);
        let mut none = [false, false];
        against_total(&[vec![0, 1]], &mut none, &[40, 20], 10);
        assert_eq!(none, [false, false]);
    }

    #[test]
    fn nothing_more_is_withheld_when_nothing_is() {
        let coords = [at(0, &[0]), at(1, &[1]), at(1, &[2])];
        let mut withheld = [false, false, false];
        secondary(&coords, &mut withheld, &[40, 20, 20], 10);
        assert_eq!(withheld, [false, false, false]);
    }

    #[test]
    fn two_small_withheld_parts_are_not_enough_together() {
        let coords = [
            at(0, &[0]),
            at(1, &[1]),
            at(1, &[2]),
            at(1, &[3]),
            at(1, &[4]),
        ];
        let persons = [80, 2, 3, 35, 40];
        let mut withheld = [false, true, true, false, false];
        secondary(&coords, &mut withheld, &persons, 10);
        assert_eq!(withheld, [false, true, true, true, false]);
    }
}
