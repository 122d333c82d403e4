//! Disclosure control: what of a permit query's answer may leave the hub.
//!
//! Under the `aggregates` output policy a result must be an aggregate over persons. The
//! statement's plan is cut at its **release points** — the topmost aggregates (and
//! `SELECT DISTINCT` over rows) on every path from the answer down to person-level data —
//! and runs in two phases:
//!
//! ```text
//!  phase 1  each release point, rewritten so every group (and every aggregate cell) also
//!           carries its hidden count of distinct persons ─► suppression, rounding
//!           (release.rs) ─► the released aggregate, an in-memory table
//!  phase 2  the statement's plan above its release points (ORDER BY, HAVING, LIMIT, joins
//!           of aggregates, windows over groups, ratios...) over the released tables only
//! ```
//!
//! So everything the statement computes after its aggregates sees released values only: a
//! window summing groups, a `HAVING` or a total computed from the groups cannot bring back a
//! withheld one. Below a release point (the "row world", `rewrite.rs`) every person-level
//! row carries its person as a hidden **tag** column through projections, filters, joins
//! (both sides' tags), unions, per-person windows and inner aggregates (a per-person
//! aggregate keeps the person; any other inner aggregate turns its tags into hidden counts,
//! released only if every inner group it rests on has enough persons).
//!
//! What is refused, with a message saying what to do instead: rows that are not aggregated
//! (per-person rows), person keys in a group or an answer column, `MIN`/`MAX` and other
//! functions that return one row's value (allowed inside a per-person aggregate), window
//! functions over rows of several persons, scalar subqueries over person-level data,
//! recursive queries, `UNNEST`.

mod ledger;
mod release;
mod rewrite;

pub(crate) use release::{one_batch, release};
pub(crate) use rewrite::{PersonTables, Protection};

use agora_govern::MetaStore;

use crate::Result;
use ledger::{PersonSketch, sketches};

/// What differential privacy needs to answer one question: the noise (keyed by the hub
/// secret, derived from the permit version, the statement and each cell) and the budget.
#[derive(Debug, Clone)]
pub(crate) struct DpRun {
    pub(crate) noise: agora_privacy::NoiseSource,
    pub(crate) meta: MetaStore,
    pub(crate) permit_id: String,
    pub(crate) permit_version: i64,
    pub(crate) actor: String,
    pub(crate) statement: String,
}

impl DpRun {
    /// Charges the question to the project's budget (nothing if it was asked before under
    /// this permit version: it gets the same noise); refused when the budget is spent.
    pub(crate) async fn spend(&self, policy: &agora_govern::DpPolicy) -> Result<String> {
        let hash = agora_privacy::question_hash(&self.statement);
        let spend = self
            .meta
            .spend_privacy_budget(&self.permit_id, &self.actor, policy, &hash)
            .await?;
        if spend.permit_version != self.permit_version {
            return Err(crate::Error::Disclosure(
                "the permit was amended while the query was planned; run it again".into(),
            ));
        }
        let status = spend.status;
        Ok(if spend.charged {
            format!(
                "differential privacy: this answer spent epsilon {} of the project's budget \
                 ({} of {} left); every count and sum is noisy, and asking again returns the \
                 same answer at no cost",
                spend.epsilon, status.remaining, status.budget
            )
        } else {
            format!(
                "differential privacy: this question was answered before and costs nothing \
                 now ({} of {} left)",
                status.remaining, status.budget
            )
        })
    }

    /// The noise stream of one quantity of the answer.
    pub(crate) fn stream(
        &self,
        point: usize,
        key: &[u8],
        what: &str,
        cell: usize,
    ) -> agora_privacy::NoiseStream {
        let point = (point as u64).to_be_bytes();
        let cell = (cell as u64).to_be_bytes();
        self.noise.cell_stream(
            &self.permit_id,
            self.permit_version,
            &self.statement,
            &[&point, key, what.as_bytes(), &cell],
        )
    }
}

/// A project's disclosure ledger (see `ledger.rs`): where released groups are remembered.
#[derive(Debug, Clone)]
pub(crate) struct Ledger {
    pub(crate) meta: MetaStore,
    pub(crate) permit_id: String,
}

/// Released groups of one answer, checked against the ledger and each other.
#[derive(Debug, Default)]
pub(crate) struct LedgerCheck {
    released: Vec<PersonSketch>,
}

impl LedgerCheck {
    /// Which rows of a release point's batch differ from a group released before (in the
    /// project, or earlier in this answer) by at least one and fewer than `k` persons.
    pub(crate) async fn differencing(
        &self,
        ledger: &Ledger,
        column: &datafusion::arrow::array::ArrayRef,
        k: u32,
    ) -> Result<Vec<bool>> {
        let k = i64::from(k);
        let rows = sketches(column);
        let sizes = rows.iter().flatten().map(|s| s.persons).filter(|&n| n >= k);
        let (Some(lo), Some(hi)) = (sizes.clone().min(), sizes.max()) else {
            return Ok(vec![false; rows.len()]);
        };
        let stored: Vec<PersonSketch> = ledger
            .meta
            .ledger_sketches(&ledger.permit_id, lo - k + 1, hi + k - 1)
            .await?
            .iter()
            .filter_map(|b| PersonSketch::from_bytes(b))
            .collect();
        let near = |a: &PersonSketch, b: &PersonSketch| {
            (a.persons - b.persons).abs() < k
                && matches!(a.difference(b), Some(d) if d > 0 && (d as i64) < k)
        };
        let mut withheld: Vec<bool> = rows
            .iter()
            .map(|row| {
                let Some(s) = row else { return false };
                s.persons >= k
                    && stored
                        .iter()
                        .chain(&self.released)
                        .any(|other| near(s, other))
            })
            .collect();
        // Groups of the same answer, two by two (sorted by size, so only neighbours within
        // k persons are compared): of two that differ by a few persons, the smaller goes.
        let mut order: Vec<usize> = (0..rows.len())
            .filter(|&r| !withheld[r] && rows[r].as_ref().is_some_and(|s| s.persons >= k))
            .collect();
        order.sort_by_key(|&r| rows[r].as_ref().map_or(0, |s| s.persons));
        for (i, &a) in order.iter().enumerate() {
            for &b in &order[i + 1..] {
                let (Some(sa), Some(sb)) = (&rows[a], &rows[b]) else {
                    continue;
                };
                if sb.persons - sa.persons >= k {
                    break;
                }
                if !withheld[b] && near(sa, sb) {
                    withheld[a] = true;
                    break;
                }
            }
        }
        Ok(withheld)
    }

    /// Which cells (per cell of `point`, per row) differ, by their chosen contributors, from
    /// their own group, from another chosen cell of the row, or from a group or cell released
    /// before, by at least one and fewer than `k` persons: `COUNT(*)` next to
    /// `COUNT(*) FILTER (WHERE year_of_birth <> 1940)` would give the few born in 1940.
    pub(crate) async fn cell_differencing(
        &self,
        ledger: &Ledger,
        batch: &datafusion::arrow::array::RecordBatch,
        point: &rewrite::ReleasePoint,
        k: u32,
    ) -> Result<Vec<Vec<bool>>> {
        let rows = batch.num_rows();
        let mut blank = vec![vec![false; rows]; point.cells.len()];
        let cells: Vec<Option<Vec<Option<PersonSketch>>>> = point
            .cells
            .iter()
            .map(|c| c.sketch.map(|i| sketches(batch.column(i))))
            .collect();
        let k = i64::from(k);
        let sizes = cells
            .iter()
            .flatten()
            .flatten()
            .flatten()
            .map(|s| s.persons)
            .filter(|&n| n >= k);
        let (Some(lo), Some(hi)) = (sizes.clone().min(), sizes.max()) else {
            return Ok(blank);
        };
        let stored: Vec<PersonSketch> = ledger
            .meta
            .ledger_sketches(&ledger.permit_id, lo - k + 1, hi + k - 1)
            .await?
            .iter()
            .filter_map(|b| PersonSketch::from_bytes(b))
            .collect();
        let groups = point.sketch.map(|c| sketches(batch.column(c)));
        let near = |a: &PersonSketch, b: &PersonSketch| {
            (a.persons - b.persons).abs() < k
                && matches!(a.difference(b), Some(d) if d > 0 && (d as i64) < k)
        };
        for r in 0..rows {
            for c in 0..cells.len() {
                let Some(Some(s)) = cells[c].as_ref().map(|col| &col[r]) else {
                    continue;
                };
                if s.persons < k {
                    continue;
                }
                let group = groups.as_ref().and_then(|g| g[r].as_ref());
                let earlier = (0..c)
                    .filter(|&e| !blank[e][r])
                    .filter_map(|e| cells[e].as_ref().and_then(|col| col[r].as_ref()));
                blank[c][r] = stored
                    .iter()
                    .chain(&self.released)
                    .chain(group)
                    .chain(earlier)
                    .any(|o| near(s, o));
            }
        }
        Ok(blank)
    }

    /// Remembers the released chosen cells of a batch (rows `kept`, cells not `blank`).
    pub(crate) fn released_cells(
        &mut self,
        batch: &datafusion::arrow::array::RecordBatch,
        point: &rewrite::ReleasePoint,
        kept: &[bool],
        blank: &[Vec<bool>],
    ) {
        for (c, cell) in point.cells.iter().enumerate() {
            let Some(i) = cell.sketch else { continue };
            for (r, s) in sketches(batch.column(i)).into_iter().enumerate() {
                if let (Some(s), true, false) = (s, kept[r], blank[c][r]) {
                    self.released.push(s);
                }
            }
        }
    }

    /// Remembers the released rows of a batch (`kept`) for the rest of the answer.
    pub(crate) fn released(&mut self, column: &datafusion::arrow::array::ArrayRef, kept: &[bool]) {
        for (sketch, kept) in sketches(column).into_iter().zip(kept) {
            if let (Some(s), true) = (sketch, *kept) {
                self.released.push(s);
            }
        }
    }

    /// Writes this answer's released groups to the ledger (before the answer leaves).
    pub(crate) async fn record(self, ledger: &Ledger) -> Result<()> {
        let entries: Vec<(i64, Vec<u8>)> = self
            .released
            .iter()
            .map(|s| (s.persons, s.to_bytes()))
            .collect();
        ledger
            .meta
            .record_ledger(&ledger.permit_id, &entries)
            .await?;
        Ok(())
    }
}

/// What disclosure control did to one answer, for the access record and the caller.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Disclosure {
    /// The disclosure profile applied (`snds`, `opensafely`...).
    pub profile: &'static str,
    /// Groups withheld (never shown to the caller: it would say a hidden group exists).
    pub groups_withheld: u64,
    /// Cells suppressed: withheld groups' cells plus cells blanked in released groups.
    pub cells_suppressed: u64,
    /// Rows of the answer.
    pub rows: u64,
    /// What applies to this answer and how to get more out of it. The same whether or not
    /// anything was withheld, so a note reveals nothing about hidden groups; except where a
    /// blanked cell is visible in the answer anyway (a `NULL` in a released row).
    pub notes: Vec<String>,
}

/// The notes of an answer: the rules that apply to it and how to get more out of it. They
/// depend on the statement and the rules only, never on what was withheld.
pub(crate) fn notes(protection: &Protection) -> Vec<String> {
    let rules = &protection.rules;
    let (k, profile) = (rules.k, rules.profile.as_str());
    let points = &protection.points;
    let mut notes = Vec::new();
    if points.iter().any(|p| p.groups > 0) {
        notes.push(format!(
            "groups backed by fewer than {k} distinct persons are withheld (profile {profile}): \
             a group missing from the answer has fewer than {k} persons, or none. To see more, \
             widen the groups: coarser categories, wider age bands, years instead of days"
        ));
    }
    if points.iter().any(|p| p.groups == 0) {
        notes.push(format!(
            "a value resting on fewer than {k} distinct persons is shown as NULL (profile \
             {profile}); widen the selection: fewer conditions, a longer period"
        ));
    }
    if !points.is_empty() {
        notes.push(format!(
            "a cell whose values come from fewer than {k} distinct persons (a sum or mean of a \
             value few persons have, a FILTER or CASE that selects few persons) is shown as \
             NULL even in a released group"
        ));
    }
    if rules.rounding > 1 && points.iter().any(|p| p.cells.iter().any(|c| c.is_count)) {
        notes.push(format!(
            "counts are rounded to the nearest {} (profile {profile})",
            rules.rounding
        ));
    }
    if let Some(p) = rules.dominance_percent {
        notes.push(format!(
            "a sum or mean to which one row contributes more than {p} % is shown as NULL \
             (dominance rule)"
        ));
    }
    if points.iter().any(|p| p.grouping_id.is_some()) {
        notes.push(
            "in ROLLUP, CUBE and GROUPING SETS answers further cells may be withheld, so that \
             no withheld cell can be recovered by subtracting the others from a total"
                .into(),
        );
    }
    notes
}
