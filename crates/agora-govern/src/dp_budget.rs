//! The privacy budget ledger: how much of its differential-privacy budget (ε, δ) a project
//! has spent, one row per charged query.
//!
//! A project's permit may say that its aggregates are released with noise
//! ([`DpPolicy`]): each query then spends `epsilon_per_query` (and δ) from the project's
//! `epsilon_budget`, and is refused once the budget cannot pay for it. All versions of the
//! permit share one budget (it belongs to the project); an amendment that raises
//! `epsilon_budget` makes the difference available.
//!
//! [`MetaStore::spend_privacy_budget`] is what the query service's output step calls before
//! releasing noisy values, in one transaction:
//!
//! * a question already charged under the same permit version (same `query_hash`) costs
//!   nothing: its noise is derived from the question, so it gets the same noise again and
//!   learns nothing new ([`BudgetSpend::charged`] is `false`);
//! * otherwise the spend is recorded only if the running total stays within the budget,
//!   by a conditional `UPDATE` of the project's total row; of concurrent spends on SQLite
//!   (one writer at a time) or PostgreSQL (the row lock, the condition re-checked on the
//!   committed row) never more than the budget is charged;
//! * otherwise [`Error::PrivacyBudgetSpent`], which says how much remains (numbers of ε or
//!   δ only).
//!
//! **Accounting** is in integers: ε in units of 10⁻¹², δ in units of 10⁻¹⁸, each amount
//! rounded to the nearest unit, so ten queries of 0.1 spend a budget of 1 exactly and
//! totals never drift. Composition is basic (sequential): ε and δ add up.
//!
//! **δ budget.** The permit states δ per query but no δ total; the ledger allows the δ the
//! current policy would spend if the whole ε budget went to its queries: `δ × ⌊budget /
//! epsilon_per_query⌋` (at most 1). Under an unchanged policy the ε check therefore decides;
//! the δ check matters when an amendment raises δ.
//!
//! `query_hash` is the caller's name for the question, e.g. `agora_privacy::question_hash`
//! of the statement; the ledger keys it by permit and permit version. The noise of a query
//! must be derived from the permit version recorded here
//! ([`BudgetSpend::permit_version`]): the caller compares it with its session's version
//! (they differ only if the permit was amended meanwhile, and then the answer must not be
//! released), or folds the version into `query_hash`.

use serde::Serialize;

use crate::error::invalid;
use crate::{DpPolicy, Error, MetaStore, Result, random_id};

/// ε is counted in units of 10⁻¹².
const EPSILON_UNIT: f64 = 1e12;
/// δ is counted in units of 10⁻¹⁸.
const DELTA_UNIT: f64 = 1e18;
/// The largest ε budget or spend the ledger counts (≈ 4.6·10⁶).
const MAX_UNITS: i64 = i64::MAX / 2;

/// Where a project's privacy budget stands.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BudgetStatus {
    /// The project's total ε (the permit's current `epsilon_budget`; 0 without a
    /// differential-privacy policy).
    pub budget: f64,
    /// ε spent so far, all versions of the permit together.
    pub spent: f64,
    /// ε left (never negative).
    pub remaining: f64,
    /// Queries charged so far (repeats are not counted).
    pub queries: i64,
    /// The δ the ledger allows in total (see the module documentation).
    pub delta_budget: f64,
    /// δ spent so far.
    pub delta_spent: f64,
}

/// The outcome of [`MetaStore::spend_privacy_budget`] when the query may be answered.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BudgetSpend {
    /// `false` when this question was already charged under this permit version: it cost
    /// nothing now (and gets the same noise as before).
    pub charged: bool,
    /// The permit version the spend (or the earlier one) is recorded under.
    pub permit_version: i64,
    /// ε charged by this call (0 when not charged).
    pub epsilon: f64,
    /// δ charged by this call (0 when not charged).
    pub delta: f64,
    /// The budget after this call.
    pub status: BudgetStatus,
}

/// A policy's amounts in ledger units.
#[derive(Debug, Clone, Copy)]
struct Units {
    budget: i64,
    query: i64,
    delta_query: i64,
    delta_budget: i64,
}

fn to_units(x: f64, unit: f64, what: &str) -> Result<i64> {
    let u = (x * unit).round();
    if !(x.is_finite() && x >= 0.0 && u <= MAX_UNITS as f64) {
        return Err(invalid(format!(
            "differential privacy: {what} is out of range"
        )));
    }
    Ok(u as i64)
}

impl Units {
    fn of(policy: &DpPolicy) -> Result<Self> {
        let budget = to_units(policy.epsilon_budget, EPSILON_UNIT, "the epsilon budget")?;
        let query = to_units(policy.query_epsilon(), EPSILON_UNIT, "epsilon per query")?;
        if budget == 0 || query == 0 {
            return Err(invalid(
                "differential privacy: the epsilon budget and epsilon per query must be positive",
            ));
        }
        let delta_query = to_units(policy.delta, DELTA_UNIT, "delta")?;
        let delta_budget = delta_query
            .saturating_mul(budget / query)
            .min(DELTA_UNIT as i64);
        Ok(Self {
            budget,
            query,
            delta_query,
            delta_budget,
        })
    }
}

fn status(units: Option<Units>, spent: i64, delta_spent: i64, queries: i64) -> BudgetStatus {
    let (budget, delta_budget) = units.map_or((0, 0), |u| (u.budget, u.delta_budget));
    BudgetStatus {
        budget: budget as f64 / EPSILON_UNIT,
        spent: spent as f64 / EPSILON_UNIT,
        remaining: budget.saturating_sub(spent).max(0) as f64 / EPSILON_UNIT,
        queries,
        delta_budget: delta_budget as f64 / DELTA_UNIT,
        delta_spent: delta_spent as f64 / DELTA_UNIT,
    }
}

impl MetaStore {
    /// Charges one query of the permit `permit_id` to its project's privacy budget, under
    /// `policy` (the permit's differential-privacy settings, as the caller read them), on
    /// behalf of `actor` (a principal's name). `query_hash` identifies the question (the
    /// same text the noise is derived from, hashed by the caller).
    ///
    /// One transaction: a question already charged under the current permit version costs
    /// nothing; otherwise the spend is recorded if the budget can pay for it, else
    /// [`Error::PrivacyBudgetSpent`]. Safe under concurrent callers on SQLite and
    /// PostgreSQL: the budget is never exceeded. A missing permit is
    /// [`Error::NotFound`].
    pub async fn spend_privacy_budget(
        &self,
        permit_id: &str,
        actor: &str,
        policy: &DpPolicy,
        query_hash: &str,
    ) -> Result<BudgetSpend> {
        if query_hash.is_empty() || query_hash.len() > 256 {
            return Err(invalid(
                "differential privacy: the query hash must be 1 to 256 characters",
            ));
        }
        let units = Units::of(policy)?;
        // The project never changes; read it before the transaction so that the
        // transaction's first statement is a write (SQLite then waits for the writer
        // lock instead of failing to upgrade a read).
        let project: Option<String> =
            sqlx::query_scalar("SELECT application_id FROM permits WHERE id = $1")
                .bind(permit_id)
                .fetch_optional(self.pool())
                .await?;
        let project = project.ok_or(Error::NotFound("permit"))?;
        let at = crate::clock::format_ts(self.now());

        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "INSERT INTO dp_budgets (project_id, spent_epsilon, spent_delta, queries) \
             VALUES ($1, 0, 0, 0) ON CONFLICT (project_id) DO NOTHING",
        )
        .bind(&project)
        .execute(&mut *tx)
        .await?;
        let version: i64 = sqlx::query_scalar("SELECT current_version FROM permits WHERE id = $1")
            .bind(permit_id)
            .fetch_one(&mut *tx)
            .await?;
        let inserted = sqlx::query(
            "INSERT INTO dp_spends (id, project_id, permit_id, permit_version, actor, at, \
             epsilon, delta, epsilon_units, delta_units, query_hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
             ON CONFLICT (permit_id, permit_version, query_hash) DO NOTHING",
        )
        .bind(random_id("dps_"))
        .bind(&project)
        .bind(permit_id)
        .bind(version)
        .bind(actor)
        .bind(&at)
        .bind(units.query as f64 / EPSILON_UNIT)
        .bind(units.delta_query as f64 / DELTA_UNIT)
        .bind(units.query)
        .bind(units.delta_query)
        .bind(query_hash)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let charged = inserted == 1;
        if charged {
            let paid = sqlx::query(
                "UPDATE dp_budgets SET spent_epsilon = spent_epsilon + $1, \
                 spent_delta = spent_delta + $2, queries = queries + 1 \
                 WHERE project_id = $3 AND spent_epsilon + $1 <= $4 \
                 AND spent_delta + $2 <= $5",
            )
            .bind(units.query)
            .bind(units.delta_query)
            .bind(&project)
            .bind(units.budget)
            .bind(units.delta_budget)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if paid != 1 {
                let (spent, delta_spent, _) = read_totals(&mut tx, &project).await?;
                tx.rollback().await?;
                return Err(refusal(units, spent, delta_spent));
            }
        }
        let (spent, delta_spent, queries) = read_totals(&mut tx, &project).await?;
        tx.commit().await?;
        let (epsilon, delta) = if charged {
            (
                units.query as f64 / EPSILON_UNIT,
                units.delta_query as f64 / DELTA_UNIT,
            )
        } else {
            (0.0, 0.0)
        };
        Ok(BudgetSpend {
            charged,
            permit_version: version,
            epsilon,
            delta,
            status: status(Some(units), spent, delta_spent, queries),
        })
    }

    /// Where the privacy budget of the project of permit `permit_id` stands, against the
    /// permit's current policy (budget 0 if it has none). A missing permit is
    /// [`Error::NotFound`]. No visibility check: for the query service and for callers
    /// that already checked the permit.
    pub async fn privacy_budget(&self, permit_id: &str) -> Result<BudgetStatus> {
        let (permit, _) = self
            .load_permit(permit_id, self.now())
            .await?
            .ok_or(Error::NotFound("permit"))?;
        let units = permit.terms.output.dp.as_ref().map(Units::of).transpose()?;
        let row: Option<(i64, i64, i64)> = sqlx::query_as(
            "SELECT spent_epsilon, spent_delta, queries FROM dp_budgets WHERE project_id = $1",
        )
        .bind(&permit.application_id)
        .fetch_optional(self.pool())
        .await?;
        let (spent, delta_spent, queries) = row.unwrap_or((0, 0, 0));
        Ok(status(units, spent, delta_spent, queries))
    }
}

async fn read_totals(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    project: &str,
) -> Result<(i64, i64, i64)> {
    Ok(sqlx::query_as(
        "SELECT spent_epsilon, spent_delta, queries FROM dp_budgets WHERE project_id = $1",
    )
    .bind(project)
    .fetch_one(&mut **tx)
    .await?)
}

fn refusal(units: Units, spent: i64, delta_spent: i64) -> Error {
    let remaining = units.budget.saturating_sub(spent).max(0);
    if spent.saturating_add(units.query) > units.budget {
        Error::PrivacyBudgetSpent {
            which: "epsilon",
            needed: units.query as f64 / EPSILON_UNIT,
            remaining: remaining as f64 / EPSILON_UNIT,
            budget: units.budget as f64 / EPSILON_UNIT,
        }
    } else {
        Error::PrivacyBudgetSpent {
            which: "delta",
            needed: units.delta_query as f64 / DELTA_UNIT,
            remaining: units.delta_budget.saturating_sub(delta_spent).max(0) as f64 / DELTA_UNIT,
            budget: units.delta_budget as f64 / DELTA_UNIT,
        }
    }
}
