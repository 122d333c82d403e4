//! Data permits: the single source of truth for who may access what.
//!
//! A permit is issued by a reviewer's approval of an application
//! ([`MetaStore::approve_application`]), in the same transaction as the approval. It names the
//! project, its members, and for each dataset the release (a number, or "latest at
//! activation", pinned when the project is activated), the tables, the allowed columns of
//! each table and structured row filters (never SQL text), the expiry, and the output policy
//! (disclosure profile, k threshold, optional differential-privacy budget). It serializes to
//! JSON as the machine-readable permit (`"schema": "agora/data-permit/v1"`).
//!
//! **Versioned**: activation (pinning releases) and every amendment by a reviewer write
//! version n+1; versions are immutable and all are kept ([`MetaStore::permit_versions`]).
//!
//! **Effective at once**: [`MetaStore::active_permits_for`] and
//! [`MetaStore::permit_for_query`] — what the query layer asks before building a session —
//! return a permit only while its project is active, the permit is activated, not revoked,
//! not past its expiry, and the user is a member and active. Expiry needs no sweep to take
//! effect; [`MetaStore::expire_permits`] only records the `active → expired` move.
//!
//! Who sees a permit: its members, the application's applicants, reviewers and operators.
//! Anyone else gets [`Error::NotFound`], as for a missing id. Amendments: a reviewer who is
//! not an applicant. Revocation: a reviewer who is not an applicant, or an operator; it
//! closes the project.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Datelike, Months, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use agora_core::DatasetName;

use crate::audit::NewAuditEntry;
use crate::clock::{format_ts, parse_ts, parse_ts_opt};
use crate::error::{denied, invalid};
use crate::projects::{AppRow, ApplicationState, check_identifier};
use crate::{Error, MetaStore, Principal, Result, Role, random_id};

/// The `schema` value of every permit document.
pub const PERMIT_SCHEMA: &str = "agora/data-permit/v1";

/// The disclosure-control profile a permit's aggregate outputs pass (applied by the query
/// service's output step; see `agora-service`'s `output` module for what each rule does).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DisclosureProfile {
    /// SNDS: every released cell backed by at least `k` distinct persons (k ≥ 10, default
    /// 10). Stored permits written before the profiles were named say `k_anonymity`.
    #[serde(alias = "k_anonymity")]
    Snds,
    /// OpenSAFELY: counts ≤ 7 redacted (cells of fewer than 8 persons withheld), other
    /// counts rounded to the nearest 5.
    Opensafely,
    /// OHDSI: cells of fewer than 5 persons suppressed.
    Ohdsi,
    /// The permit's own `k`, `rounding` and `dominance_percent`.
    Custom,
}

impl DisclosureProfile {
    /// The name used in permits and explanations (`snds`, `opensafely`...).
    pub fn as_str(self) -> &'static str {
        match self {
            DisclosureProfile::Snds => "snds",
            DisclosureProfile::Opensafely => "opensafely",
            DisclosureProfile::Ohdsi => "ohdsi",
            DisclosureProfile::Custom => "custom",
        }
    }

    /// The smallest `k` the profile allows, and its default.
    fn min_k(self) -> u32 {
        match self {
            DisclosureProfile::Snds => 10,
            DisclosureProfile::Opensafely => 8,
            DisclosureProfile::Ohdsi => 5,
            DisclosureProfile::Custom => 2,
        }
    }
}

/// Differential privacy for a permit's aggregates: noise on every released count and sum,
/// drawn against the project's budget.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DpPolicy {
    /// The project's total epsilon; queries are refused once it is spent.
    pub epsilon_budget: f64,
    /// Epsilon one query spends (split across its noisy columns); default a tenth of the
    /// budget.
    #[serde(default)]
    pub epsilon_per_query: Option<f64>,
    /// 0 (the default): Laplace noise, pure ε-DP. Above 0: Gaussian noise, (ε, δ)-DP, with
    /// this δ per query (and the same δ spent from `delta_budget`).
    #[serde(default)]
    pub delta: f64,
    /// Each person counts at most this many rows in a group (default 1), which bounds the
    /// sensitivity of counts and sums.
    #[serde(default)]
    pub max_rows_per_person: Option<u32>,
    /// Values summed are clamped to `[-sum_bound, sum_bound]` (default 1000).
    #[serde(default)]
    pub sum_bound: Option<f64>,
}

impl DpPolicy {
    /// Epsilon one query spends.
    pub fn query_epsilon(&self) -> f64 {
        self.epsilon_per_query.unwrap_or(self.epsilon_budget / 10.0)
    }

    /// Rows of one person a group may count.
    pub fn rows_per_person(&self) -> u32 {
        self.max_rows_per_person.unwrap_or(1)
    }

    /// The clamp applied to every summed value.
    pub fn clamp(&self) -> f64 {
        self.sum_bound.unwrap_or(1000.0)
    }
}

/// What kind of answer may leave the workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReleasePolicy {
    /// Aggregates over persons only, each released cell checked against the disclosure
    /// profile (the default).
    #[default]
    Aggregates,
    /// Individual-level rows, for projects approved for them (an SNDS-style extraction):
    /// person keys shown as the project's pseudonyms only, the permit's columns only, and
    /// potential identifiers (birth dates, care dates, places, record numbers) coarsened,
    /// re-keyed or absent unless the permit grants them ([`TableScope::precision`]).
    PseudonymizedRows,
}

impl ReleasePolicy {
    /// The name permits use (`aggregates`, `pseudonymized-rows`).
    pub fn as_str(self) -> &'static str {
        match self {
            ReleasePolicy::Aggregates => "aggregates",
            ReleasePolicy::PseudonymizedRows => "pseudonymized-rows",
        }
    }
}

/// What may leave the workspace, and under which rule: by default aggregates over persons
/// only, each released cell checked against the disclosure profile; or pseudonymized rows.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(from = "OutputPolicyDocument")]
pub struct OutputPolicy {
    /// Aggregates (the default) or pseudonymized rows.
    #[serde(default)]
    pub policy: ReleasePolicy,
    /// The disclosure-control rule outputs must pass.
    pub profile: DisclosureProfile,
    /// Minimum number of distinct persons behind a released cell; `None`: the profile's
    /// (snds 10, opensafely 8, ohdsi 5). Never below the profile's. Required for `custom`.
    #[serde(default)]
    pub k: Option<u32>,
    /// `custom`: counts are rounded to the nearest multiple (opensafely: 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rounding: Option<u32>,
    /// `custom`: a cell whose largest single contribution to a sum exceeds this share (in
    /// percent) of the cell's total is suppressed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dominance_percent: Option<f64>,
    /// Whether exported files wait for a reviewer; `None`: the profile's (snds and
    /// opensafely: yes, ohdsi: no, custom: yes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export_review: Option<bool>,
    /// Differential privacy on released counts and sums, if the permit uses it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dp: Option<DpPolicy>,
}

/// The rules an output policy comes to, with the profile's defaults filled in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DisclosureRules {
    /// The profile, for explanations.
    pub profile: DisclosureProfile,
    /// Cells backed by fewer distinct persons are withheld.
    pub k: u32,
    /// Counts are rounded to the nearest multiple of this (1: not rounded).
    pub rounding: u32,
    /// Dominance rule for sums, in percent.
    pub dominance_percent: Option<f64>,
    /// Exports wait for a reviewer.
    pub export_review: bool,
    /// Differential privacy.
    pub dp: Option<DpPolicy>,
}

impl OutputPolicy {
    /// The rules this policy applies.
    pub fn rules(&self) -> DisclosureRules {
        let profile = self.profile;
        let custom = profile == DisclosureProfile::Custom;
        DisclosureRules {
            profile,
            k: self.k.unwrap_or(profile.min_k()).max(profile.min_k()),
            rounding: match profile {
                DisclosureProfile::Opensafely => 5,
                DisclosureProfile::Custom => self.rounding.unwrap_or(1).max(1),
                _ => 1,
            },
            dominance_percent: if custom { self.dominance_percent } else { None },
            export_review: self
                .export_review
                .unwrap_or(profile != DisclosureProfile::Ohdsi),
            dp: self.dp,
        }
    }

    fn validate(&self) -> Result<()> {
        let profile = self.profile;
        if self.policy == ReleasePolicy::PseudonymizedRows
            && (self.k.is_some()
                || self.rounding.is_some()
                || self.dominance_percent.is_some()
                || self.dp.is_some())
        {
            return Err(invalid(
                "output policy: k, rounding, dominance_percent and dp control aggregates; \
                 a pseudonymized-rows policy releases rows and takes none of them",
            ));
        }
        if let Some(k) = self.k {
            if k < profile.min_k() || k > 1_000_000 {
                return Err(invalid(format!(
                    "output policy: k must be between {} and 1000000 under profile {}",
                    profile.min_k(),
                    profile.as_str()
                )));
            }
        } else if profile == DisclosureProfile::Custom {
            return Err(invalid("output policy: the custom profile needs k"));
        }
        if profile != DisclosureProfile::Custom
            && (self.rounding.is_some() || self.dominance_percent.is_some())
        {
            return Err(invalid(
                "output policy: rounding and dominance_percent are set by the profile; use \
                 the custom profile to choose them",
            ));
        }
        if let Some(base) = self.rounding
            && !(1..=1000).contains(&base)
        {
            return Err(invalid(
                "output policy: rounding must be between 1 and 1000",
            ));
        }
        if let Some(p) = self.dominance_percent
            && !(p.is_finite() && p > 0.0 && p <= 100.0)
        {
            return Err(invalid(
                "output policy: dominance_percent must be above 0 and at most 100",
            ));
        }
        if let Some(dp) = &self.dp {
            let positive = |x: f64| x.is_finite() && x > 0.0;
            if !positive(dp.epsilon_budget) {
                return Err(invalid(
                    "output policy: the epsilon budget must be a positive number",
                ));
            }
            if let Some(eps) = dp.epsilon_per_query
                && !(positive(eps) && eps <= dp.epsilon_budget)
            {
                return Err(invalid(
                    "output policy: epsilon_per_query must be positive and at most the budget",
                ));
            }
            if !(dp.delta.is_finite() && (0.0..1e-3).contains(&dp.delta)) {
                return Err(invalid(
                    "output policy: delta must be at least 0 and below 0.001",
                ));
            }
            if dp.max_rows_per_person == Some(0) || dp.max_rows_per_person > Some(1000) {
                return Err(invalid(
                    "output policy: max_rows_per_person must be between 1 and 1000",
                ));
            }
            if let Some(b) = dp.sum_bound
                && !positive(b)
            {
                return Err(invalid(
                    "output policy: sum_bound must be a positive number",
                ));
            }
        }
        Ok(())
    }
}

/// The stored form, which also reads permits written before differential privacy had its
/// own section (`dp_epsilon_budget`).
#[derive(Deserialize)]
struct OutputPolicyDocument {
    #[serde(default)]
    policy: ReleasePolicy,
    /// Required by aggregates permits written before `policy` existed; the snds default
    /// otherwise.
    #[serde(default = "default_profile")]
    profile: DisclosureProfile,
    #[serde(default)]
    k: Option<u32>,
    #[serde(default)]
    rounding: Option<u32>,
    #[serde(default)]
    dominance_percent: Option<f64>,
    #[serde(default)]
    export_review: Option<bool>,
    #[serde(default)]
    dp: Option<DpPolicy>,
    #[serde(default)]
    dp_epsilon_budget: Option<f64>,
}

fn default_profile() -> DisclosureProfile {
    DisclosureProfile::Snds
}

impl From<OutputPolicyDocument> for OutputPolicy {
    fn from(d: OutputPolicyDocument) -> Self {
        let legacy = d.dp_epsilon_budget.map(|epsilon_budget| DpPolicy {
            epsilon_budget,
            epsilon_per_query: None,
            delta: 0.0,
            max_rows_per_person: None,
            sum_bound: None,
        });
        OutputPolicy {
            policy: d.policy,
            profile: d.profile,
            k: d.k,
            rounding: d.rounding,
            dominance_percent: d.dominance_percent,
            export_review: d.export_review,
            dp: d.dp.or(legacy),
        }
    }
}

impl Default for OutputPolicy {
    fn default() -> Self {
        Self {
            policy: ReleasePolicy::Aggregates,
            profile: DisclosureProfile::Snds,
            k: None,
            rounding: None,
            dominance_percent: None,
            export_review: None,
            dp: None,
        }
    }
}

/// Which release of a dataset a permit covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseSelector {
    /// Exactly this release number (a study re-runs on the same data).
    Number(i64),
    /// The dataset's latest release when the project is activated (then pinned to a number).
    LatestAtActivation,
}

/// A structured row restriction (the query layer turns it into a plan filter).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RowFilter {
    /// Rows whose date (or timestamp) `column` falls on a day in `[from, to]` (both
    /// inclusive, either open).
    Period {
        /// The date or timestamp column tested.
        column: String,
        /// First day allowed; `None`: no lower bound.
        #[serde(default)]
        from: Option<NaiveDate>,
        /// Last day allowed; `None`: no upper bound.
        #[serde(default)]
        to: Option<NaiveDate>,
    },
    /// Persons aged `min_age..=max_age` (either open) in `at_year`, from a year-of-birth
    /// column: `at_year - max_age <= year_of_birth <= at_year - min_age`.
    AgeRange {
        /// The integer column holding the year of birth (OMOP `person.year_of_birth`).
        year_of_birth_column: String,
        /// Youngest age allowed, in years; `None`: no lower bound.
        #[serde(default)]
        min_age: Option<u32>,
        /// Oldest age allowed, in years; `None`: no upper bound.
        #[serde(default)]
        max_age: Option<u32>,
        /// The calendar year ages are computed in.
        at_year: i32,
    },
    /// Rows whose integer `column` is one of `values` (e.g. a concept set).
    ValueIn {
        /// The integer column tested.
        column: String,
        /// The allowed values (e.g. the concept ids of a concept set).
        values: Vec<i64>,
    },
}

impl RowFilter {
    /// The column the filter reads (for `AgeRange`, the year-of-birth column).
    pub fn column(&self) -> &str {
        match self {
            RowFilter::Period { column, .. } | RowFilter::ValueIn { column, .. } => column,
            RowFilter::AgeRange {
                year_of_birth_column,
                ..
            } => year_of_birth_column,
        }
    }
}

/// One table of a permit: the columns that may be read and the rows that may be seen.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TableScope {
    /// The table's name in the release.
    pub table: String,
    /// The only columns a session may project.
    pub columns: Vec<String>,
    /// All filters apply (AND).
    #[serde(default)]
    pub row_filters: Vec<RowFilter>,
    /// How precisely some of `columns` are shown, under any output policy. Under
    /// `pseudonymized-rows`, potential identifiers not listed here get their default:
    /// birth dates to the year, other dates to the month, places and birth day or month
    /// absent; `exact` grants one as stored.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub precision: BTreeMap<String, Precision>,
}

/// How precisely a permitted column is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    /// As stored (a potential identifier the permit grants in full).
    Exact,
    /// Dates and times: the day, without the time.
    Day,
    /// Dates and times: the first day of the month.
    Month,
    /// Dates and times: the first day of the year.
    Year,
}

/// One dataset of a permit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetScope {
    /// The dataset's name.
    pub dataset: String,
    /// Which of its releases may be read.
    pub release: ReleaseSelector,
    /// The only tables a session may read, each with its columns and row filters.
    pub tables: Vec<TableScope>,
}

/// The terms of one permit version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PermitTerms {
    /// User ids allowed to use the permit.
    pub members: Vec<String>,
    /// The data covered: anything not listed is out of reach.
    pub datasets: Vec<DatasetScope>,
    /// The moment access ends, without any sweep.
    pub expires_at: DateTime<Utc>,
    /// What may leave the workspace.
    pub output: OutputPolicy,
    /// Why the expiry is later than the application's requested duration allows, as the
    /// deciding reviewer wrote it; `None` when it is not. Kept with each version (history).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiry_beyond_request_reason: Option<String>,
}

/// What a reviewer grants when approving.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PermitGrant {
    /// Default: the application's owner and team. A reviewer may grant access to fewer
    /// people (data minimisation); every member must be an active user.
    #[serde(default)]
    pub members: Option<Vec<String>>,
    /// The data granted; may be less than the application asked for.
    pub datasets: Vec<DatasetScope>,
    /// Default: the approval time plus the application's requested duration. Never later
    /// than the hub maximum ([`crate::PermitPolicy`]), nor than the requested duration
    /// unless `expiry_beyond_request_reason` says why.
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
    /// What may leave the workspace; k-anonymity with k = 10 by default.
    #[serde(default)]
    pub output: OutputPolicy,
    /// Required for an `expires_at` beyond the application's requested duration: why the
    /// permit may outlive what was asked for. Stored with the permit's version.
    #[serde(default)]
    pub expiry_beyond_request_reason: Option<String>,
}

/// A change of terms; `None` keeps the current value.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PermitAmendment {
    /// New member list (every member an active user).
    pub members: Option<Vec<String>>,
    /// New data scope, replacing the whole list.
    pub datasets: Option<Vec<DatasetScope>>,
    /// New expiry: never later than the hub maximum from the permit's issue, nor than the
    /// application's requested duration unless `expiry_beyond_request_reason` says why.
    pub expires_at: Option<DateTime<Utc>>,
    /// New output policy.
    pub output: Option<OutputPolicy>,
    /// With `expires_at`: why the permit may outlive the requested duration.
    pub expiry_beyond_request_reason: Option<String>,
}

/// Where a permit stands at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PermitStatus {
    /// Issued, awaiting activation by an operator: grants no access yet.
    Approved,
    /// Activated and not past its expiry: grants access to its members.
    Active,
    /// Past its expiry (computed from the time, whether or not recorded yet): no access.
    Expired,
    /// Revoked by a reviewer or an operator: no access, and the project is closed.
    Revoked,
}

/// A data permit (its current version), as the machine-readable document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Permit {
    /// Always [`PERMIT_SCHEMA`].
    pub schema: String,
    /// The permit's random id, stable across versions.
    pub id: String,
    /// The current version: 1 at approval, +1 when activation pins a "latest" release and
    /// at each amendment.
    pub version: i64,
    /// The application whose approval issued the permit.
    pub application_id: String,
    /// The project's title, from the application.
    pub project_title: String,
    /// The applicant organisation, from the application.
    pub organisation: String,
    /// At the time the permit was read.
    pub status: PermitStatus,
    /// The current version's terms, flattened into the document.
    #[serde(flatten)]
    pub terms: PermitTerms,
    /// When the approving reviewer issued it.
    pub issued_at: DateTime<Utc>,
    /// User id of the approving reviewer.
    pub issued_by: String,
    /// When an operator activated the project; `None` before.
    pub activated_at: Option<DateTime<Utc>>,
    /// User id of the activating operator.
    pub activated_by: Option<String>,
    /// When it was revoked; `None` unless revoked.
    pub revoked_at: Option<DateTime<Utc>>,
    /// User id of whoever revoked it.
    pub revoked_by: Option<String>,
    /// Why it was revoked, as written by the revoker.
    pub revoke_reason: Option<String>,
    /// When the current version was written.
    pub version_created_at: DateTime<Utc>,
    /// User id of whoever wrote the current version.
    pub version_created_by: String,
    /// Why the current version was written (`approval`, the activation note, or the
    /// amendment's reason).
    pub version_reason: String,
}

impl Permit {
    /// Whether `user` (a user id) is named among the members.
    pub fn is_member(&self, user: &str) -> bool {
        self.terms.members.iter().any(|m| m == user)
    }

    /// The scope of `table` in `dataset`, if the permit covers it.
    pub fn table(&self, dataset: &str, table: &str) -> Option<&TableScope> {
        self.terms
            .datasets
            .iter()
            .filter(|d| d.dataset == dataset)
            .flat_map(|d| &d.tables)
            .find(|t| t.table == table)
    }

    /// The status at `now`.
    pub fn status_at(&self, now: DateTime<Utc>) -> PermitStatus {
        status_at(
            self.revoked_at.is_some(),
            self.activated_at.is_some(),
            self.terms.expires_at,
            now,
        )
    }
}

fn status_at(
    revoked: bool,
    activated: bool,
    expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> PermitStatus {
    if revoked {
        PermitStatus::Revoked
    } else if now >= expires_at {
        PermitStatus::Expired
    } else if activated {
        PermitStatus::Active
    } else {
        PermitStatus::Approved
    }
}

/// One version of a permit's terms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PermitVersion {
    /// The version number, from 1.
    pub version: i64,
    /// The terms as they were in this version.
    pub terms: PermitTerms,
    /// When this version was written.
    pub created_at: DateTime<Utc>,
    /// User id of whoever wrote it.
    pub created_by: String,
    /// Why it was written (`approval`, the activation note, or the amendment's reason).
    pub reason: String,
}

type PermitTuple = (
    String,
    String,
    i64,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

const PERMIT_COLUMNS: &str = "SELECT id, application_id, current_version, issued_at, issued_by, \
     activated_at, activated_by, revoked_at, revoked_by, revoke_reason FROM permits";

/// Filters that make a permit usable for a query (see the module documentation).
const USABLE: &str = "SELECT p.id FROM permits p \
     JOIN permit_members m ON m.permit_id = p.id \
     JOIN users u ON u.id = m.user_id \
     JOIN applications a ON a.id = p.application_id \
     WHERE m.user_id = $1 AND u.active = 1 AND a.state = 'active' \
     AND p.activated_at IS NOT NULL AND p.revoked_at IS NULL AND p.expires_at > $2";

fn to_json<T: Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::Corrupt(e.to_string()))
}

/// The reason for an expiry beyond the request, checked: only with an explicit expiry, and
/// not blank.
fn extension_reason(explicit_expiry: bool, reason: Option<String>) -> Result<Option<String>> {
    let Some(reason) = reason else {
        return Ok(None);
    };
    if !explicit_expiry {
        return Err(invalid(
            "expiry_beyond_request_reason goes with an explicit expires_at",
        ));
    }
    if reason.trim().is_empty() {
        return Err(invalid(
            "expiry_beyond_request_reason is empty: say why the permit may outlive the request",
        ));
    }
    crate::accounts::check_text("expiry_beyond_request_reason", &reason, 5000)?;
    Ok(Some(reason))
}

fn check_reason(reason: &str) -> Result<()> {
    if reason.trim().is_empty() {
        return Err(invalid("a reason is required"));
    }
    crate::accounts::check_text("reason", reason, 5000)
}

impl MetaStore {
    /// Approves an application under review and issues its data permit (version 1), in one
    /// transaction: of concurrent approvals exactly one wins; the others get
    /// [`Error::InvalidTransition`]. Only a reviewer who is not an applicant may approve.
    pub async fn approve_application(
        &self,
        actor: &Principal,
        application_id: &str,
        grant: PermitGrant,
        comment: Option<&str>,
    ) -> Result<Permit> {
        if let Some(c) = comment {
            crate::accounts::check_text("comment", c, 5000)?;
        }
        let row = self.visible_app(actor, application_id).await?;
        row.check_party(actor, ApplicationState::Approved)?;
        let now = self.now();
        let reason = extension_reason(
            grant.expires_at.is_some(),
            grant.expiry_beyond_request_reason,
        )?;
        let expires_at = match grant.expires_at {
            Some(t) => t,
            None => now
                .checked_add_months(Months::new(row.form.duration_months))
                .ok_or_else(|| invalid("duration_months is out of range"))?,
        };
        let terms = PermitTerms {
            members: grant.members.unwrap_or_else(|| row.applicants()),
            datasets: grant.datasets,
            expires_at: crate::clock::truncate(expires_at),
            output: grant.output,
            expiry_beyond_request_reason: reason,
        };
        self.validate_terms(&terms, now).await?;
        self.check_expiry_bounds(&terms, now, row.form.duration_months)?;
        let permit_id = random_id("pmt_");
        let now_s = format_ts(now);
        let mut tx = self.pool().begin().await?;
        // First write of the transaction: decides the race.
        self.apply_transition(
            &mut tx,
            &row,
            ApplicationState::Approved,
            &actor.name,
            comment,
            now,
        )
        .await?;
        sqlx::query(
            "INSERT INTO permits (id, application_id, current_version, expires_at, issued_at, \
             issued_by) VALUES ($1, $2, 1, $3, $4, $5)",
        )
        .bind(&permit_id)
        .bind(&row.id)
        .bind(format_ts(terms.expires_at))
        .bind(&now_s)
        .bind(&actor.name)
        .execute(&mut *tx)
        .await?;
        insert_version(
            &mut tx,
            &permit_id,
            1,
            &terms,
            &now_s,
            &actor.name,
            "approval",
        )
        .await?;
        replace_permit_members(&mut tx, &permit_id, &terms.members).await?;
        tx.commit().await?;
        tracing::info!(application = %row.id, permit = %permit_id, by = %actor.name, "permit issued");
        self.permit(actor, &permit_id).await
    }

    /// A permit's current version, if `actor` may see it (else `NotFound`).
    pub async fn permit(&self, actor: &Principal, permit_id: &str) -> Result<Permit> {
        Ok(self.visible_permit(actor, permit_id).await?.0)
    }

    /// The permits `actor` may see, oldest first: every permit for reviewers and operators;
    /// for anyone else, the permits of projects where they are an applicant or a member.
    pub async fn list_permits(&self, actor: &Principal) -> Result<Vec<Permit>> {
        let staff = i64::from(actor.has(Role::Reviewer) || actor.has(Role::Operator));
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT p.id FROM permits p JOIN applications a ON a.id = p.application_id \
             WHERE $1 = 1 OR a.owner_id = $2 \
             OR EXISTS (SELECT 1 FROM application_members m \
                        WHERE m.application_id = a.id AND m.user_id = $3) \
             OR EXISTS (SELECT 1 FROM permit_members pm \
                        WHERE pm.permit_id = p.id AND pm.user_id = $4) \
             ORDER BY p.issued_at, p.id",
        )
        .bind(staff)
        .bind(&actor.name)
        .bind(&actor.name)
        .bind(&actor.name)
        .fetch_all(self.pool())
        .await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            match self.visible_permit(actor, &id).await {
                Ok((permit, _)) => out.push(permit),
                Err(Error::NotFound(_)) => {} // changed meanwhile
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Every version of a permit, oldest first, if `actor` may see it.
    pub async fn permit_versions(
        &self,
        actor: &Principal,
        permit_id: &str,
    ) -> Result<Vec<PermitVersion>> {
        self.visible_permit(actor, permit_id).await?;
        let rows: Vec<(i64, String, String, String, String)> = sqlx::query_as(
            "SELECT version, terms, created_at, created_by, reason FROM permit_versions \
             WHERE permit_id = $1 ORDER BY version",
        )
        .bind(permit_id)
        .fetch_all(self.pool())
        .await?;
        rows.into_iter()
            .map(|(version, terms, created_at, created_by, reason)| {
                Ok(PermitVersion {
                    version,
                    terms: parse_terms(&terms)?,
                    created_at: parse_ts(&created_at)?,
                    created_by,
                    reason,
                })
            })
            .collect()
    }

    /// Amends a permit (a reviewer who is not an applicant): writes version n+1. Refused
    /// once the project is expired or closed, or if the permit changed concurrently.
    pub async fn amend_permit(
        &self,
        actor: &Principal,
        permit_id: &str,
        amendment: PermitAmendment,
        reason: &str,
    ) -> Result<Permit> {
        check_reason(reason)?;
        let (current, app) = self.visible_permit(actor, permit_id).await?;
        if !actor.has(Role::Reviewer) || app.is_applicant(&actor.name) {
            return Err(denied(
                "amending a permit needs a reviewer who is not an applicant",
            ));
        }
        if !matches!(
            app.state,
            ApplicationState::Approved | ApplicationState::Active
        ) || current.revoked_at.is_some()
        {
            return Err(Error::Conflict(
                "only the permit of an approved or active project can be amended".into(),
            ));
        }
        let now = self.now();
        let extension = extension_reason(
            amendment.expires_at.is_some(),
            amendment.expiry_beyond_request_reason,
        )?;
        let mut terms = current.terms.clone();
        if let Some(m) = amendment.members {
            terms.members = m;
        }
        if let Some(d) = amendment.datasets {
            terms.datasets = d;
        }
        if let Some(e) = amendment.expires_at {
            // A new expiry is checked anew: an earlier extension's reason does not carry
            // over to a later date.
            terms.expires_at = crate::clock::truncate(e);
            terms.expiry_beyond_request_reason = extension;
            self.check_expiry_bounds(&terms, current.issued_at, app.form.duration_months)?;
        }
        if let Some(o) = amendment.output {
            terms.output = o;
        }
        if app.state == ApplicationState::Active {
            self.pin_latest(&mut terms).await?;
        }
        self.validate_terms(&terms, now).await?;
        let version = current.version + 1;
        let now_s = format_ts(now);
        let mut tx = self.pool().begin().await?;
        let done = sqlx::query(
            "UPDATE permits SET current_version = $1, expires_at = $2 \
             WHERE id = $3 AND current_version = $4 AND revoked_at IS NULL \
             AND EXISTS (SELECT 1 FROM applications a WHERE a.id = permits.application_id \
                         AND a.state IN ('approved', 'active'))",
        )
        .bind(version)
        .bind(format_ts(terms.expires_at))
        .bind(permit_id)
        .bind(current.version)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Err(Error::Conflict(
                "the permit changed meanwhile (amended, revoked or expired): reload it".into(),
            ));
        }
        insert_version(
            &mut tx,
            permit_id,
            version,
            &terms,
            &now_s,
            &actor.name,
            reason,
        )
        .await?;
        replace_permit_members(&mut tx, permit_id, &terms.members).await?;
        tx.commit().await?;
        tracing::info!(permit = %permit_id, version, by = %actor.name, "permit amended");
        self.permit(actor, permit_id).await
    }

    /// Revokes a permit at once and closes its project (a reviewer who is not an applicant,
    /// or an operator).
    pub async fn revoke_permit(
        &self,
        actor: &Principal,
        permit_id: &str,
        reason: &str,
    ) -> Result<Permit> {
        check_reason(reason)?;
        let (_, app) = self.visible_permit(actor, permit_id).await?;
        let reviewer = actor.has(Role::Reviewer) && !app.is_applicant(&actor.name);
        if !reviewer && !actor.has(Role::Operator) {
            return Err(denied(
                "revoking a permit needs an operator or a reviewer who is not an applicant",
            ));
        }
        self.transition_application(actor, &app.id, ApplicationState::Closed, Some(reason))
            .await?;
        self.permit(actor, permit_id).await
    }

    /// The permits `user_id` may use at `now`: project active, permit activated, not
    /// revoked, not expired, user a member and active. Empty once any of that stops holding.
    pub async fn active_permits_for(
        &self,
        user_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<Permit>> {
        let ids: Vec<String> =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("{USABLE} ORDER BY p.id")))
                .bind(user_id)
                .bind(format_ts(now))
                .fetch_all(self.pool())
                .await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some((permit, _)) = self.load_permit(&id, now).await? {
                out.push(permit);
            }
        }
        Ok(out)
    }

    /// The permit `permit_id` if `user_id` may use it for a query at `now` (same rules as
    /// [`MetaStore::active_permits_for`]), else `None` — whether it expired, was revoked,
    /// never existed or belongs to someone else.
    pub async fn permit_for_query(
        &self,
        user_id: &str,
        permit_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Permit>> {
        let id: Option<String> =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("{USABLE} AND p.id = $3")))
                .bind(user_id)
                .bind(format_ts(now))
                .bind(permit_id)
                .fetch_optional(self.pool())
                .await?;
        match id {
            Some(id) => Ok(self.load_permit(&id, now).await?.map(|(p, _)| p)),
            None => Ok(None),
        }
    }

    /// Records `active → expired` for every project whose permit's expiry has passed (actor
    /// `system`); returns their application ids. Access already ended at the expiry: this
    /// only keeps states and the registry truthful. Safe to run concurrently.
    pub async fn expire_permits(&self) -> Result<Vec<String>> {
        let now = self.now();
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT a.id FROM applications a JOIN permits p ON p.application_id = a.id \
             WHERE a.state = 'active' AND p.expires_at <= $1 ORDER BY a.id",
        )
        .bind(format_ts(now))
        .fetch_all(self.pool())
        .await?;
        let mut expired = Vec::new();
        for id in ids {
            let Some(row) = self.load_app(&id).await? else {
                continue;
            };
            let mut tx = self.pool().begin().await?;
            match self
                .apply_transition(
                    &mut tx,
                    &row,
                    ApplicationState::Expired,
                    "system",
                    Some("permit expiry reached"),
                    now,
                )
                .await
            {
                Ok(()) => {
                    tx.commit().await?;
                    expired.push(id);
                }
                Err(Error::InvalidTransition { .. }) => {} // moved meanwhile
                Err(e) => return Err(e),
            }
        }
        Ok(expired)
    }

    /// Loads a permit (current version) with its application; status at `now`.
    pub(crate) async fn load_permit(
        &self,
        permit_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<(Permit, AppRow)>> {
        let row: Option<PermitTuple> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{PERMIT_COLUMNS} WHERE id = $1"
        )))
        .bind(permit_id)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let (
            id,
            application_id,
            version,
            issued_at,
            issued_by,
            activated_at,
            activated_by,
            revoked_at,
            revoked_by,
            revoke_reason,
        ) = row;
        let (terms, created_at, created_by, reason): (String, String, String, String) =
            sqlx::query_as(
                "SELECT terms, created_at, created_by, reason FROM permit_versions \
                 WHERE permit_id = $1 AND version = $2",
            )
            .bind(&id)
            .bind(version)
            .fetch_one(self.pool())
            .await?;
        let terms = parse_terms(&terms)?;
        let app = self
            .load_app(&application_id)
            .await?
            .ok_or_else(|| Error::Corrupt("permit without application".into()))?;
        let activated_at = parse_ts_opt(activated_at)?;
        let revoked_at = parse_ts_opt(revoked_at)?;
        let permit = Permit {
            schema: PERMIT_SCHEMA.to_owned(),
            status: status_at(
                revoked_at.is_some(),
                activated_at.is_some(),
                terms.expires_at,
                now,
            ),
            id,
            version,
            application_id,
            project_title: app.form.title.clone(),
            organisation: app.form.organisation.clone(),
            terms,
            issued_at: parse_ts(&issued_at)?,
            issued_by,
            activated_at,
            activated_by,
            revoked_at,
            revoked_by,
            revoke_reason,
            version_created_at: parse_ts(&created_at)?,
            version_created_by: created_by,
            version_reason: reason,
        };
        Ok(Some((permit, app)))
    }

    /// The permit if `actor` may see it: a member, an applicant, a reviewer or an operator.
    ///
    /// Visibility is decided first, by one query that finds the permit only together with
    /// the caller's right to see it, so a permit the caller may not see and a missing id take
    /// the same path (that one query, no row) and answer `NotFound` in the same time; loading
    /// the permit (three more queries) only follows a visible one.
    async fn visible_permit(&self, actor: &Principal, permit_id: &str) -> Result<(Permit, AppRow)> {
        let staff = i64::from(actor.has(Role::Reviewer) || actor.has(Role::Operator));
        let visible: Option<String> = sqlx::query_scalar(
            "SELECT p.id FROM permits p JOIN applications a ON a.id = p.application_id \
             WHERE p.id = $1 AND ($2 = 1 OR a.owner_id = $3 \
             OR EXISTS (SELECT 1 FROM application_members m \
                        WHERE m.application_id = a.id AND m.user_id = $4) \
             OR EXISTS (SELECT 1 FROM permit_members pm \
                        WHERE pm.permit_id = p.id AND pm.user_id = $5))",
        )
        .bind(permit_id)
        .bind(staff)
        .bind(&actor.name)
        .bind(&actor.name)
        .bind(&actor.name)
        .fetch_optional(self.pool())
        .await?;
        if visible.is_none() {
            return Err(Error::NotFound("permit"));
        }
        // The stored terms and application still decide (a row changed meanwhile).
        match self.load_permit(permit_id, self.now()).await? {
            Some((permit, app))
                if permit.is_member(&actor.name)
                    || app.is_applicant(&actor.name)
                    || actor.has(Role::Reviewer)
                    || actor.has(Role::Operator) =>
            {
                Ok((permit, app))
            }
            _ => Err(Error::NotFound("permit")),
        }
    }

    /// The current permit id and version of an application, if it has a permit.
    async fn permit_of_application(&self, application_id: &str) -> Result<Option<(String, i64)>> {
        Ok(
            sqlx::query_as("SELECT id, current_version FROM permits WHERE application_id = $1")
                .bind(application_id)
                .fetch_optional(self.pool())
                .await?,
        )
    }

    /// Replaces "latest at activation" selectors by the dataset's latest release number.
    async fn pin_latest(&self, terms: &mut PermitTerms) -> Result<bool> {
        let mut changed = false;
        for ds in &mut terms.datasets {
            if ds.release == ReleaseSelector::LatestAtActivation {
                let name: DatasetName = ds
                    .dataset
                    .parse()
                    .map_err(|_| invalid("invalid dataset name in permit"))?;
                let latest = self.release(&name, None).await?.ok_or_else(|| {
                    Error::Conflict(format!(
                        "dataset {name} has no release yet: the permit cannot take effect"
                    ))
                })?;
                ds.release = ReleaseSelector::Number(latest.number);
                changed = true;
            }
        }
        Ok(changed)
    }

    /// Before activation: the permit must not have expired; returns the version the pinned
    /// terms replace and the pinned terms, if any selector was "latest at activation".
    pub(crate) async fn pin_releases_for_activation(
        &self,
        application_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<(i64, PermitTerms)>> {
        let (permit_id, _) = self
            .permit_of_application(application_id)
            .await?
            .ok_or_else(|| Error::Corrupt("approved application without permit".into()))?;
        let (permit, _) = self
            .load_permit(&permit_id, now)
            .await?
            .ok_or_else(|| Error::Corrupt("permit vanished".into()))?;
        if permit.terms.expires_at <= now {
            return Err(Error::Conflict(
                "the permit has already expired: amend its expiry before activating".into(),
            ));
        }
        let mut terms = permit.terms.clone();
        Ok(if self.pin_latest(&mut terms).await? {
            Some((permit.version, terms))
        } else {
            None
        })
    }

    /// Inside the activation transaction: marks the permit active and, if releases were
    /// pinned, writes the pinned terms as version n+1.
    pub(crate) async fn activate_permit_in(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        application_id: &str,
        pinned: Option<(i64, PermitTerms)>,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let now_s = format_ts(now);
        let done = sqlx::query(
            "UPDATE permits SET activated_at = $1, activated_by = $2 \
             WHERE application_id = $3 AND activated_at IS NULL AND revoked_at IS NULL",
        )
        .bind(&now_s)
        .bind(actor)
        .bind(application_id)
        .execute(&mut **tx)
        .await?;
        if done.rows_affected() != 1 {
            return Err(Error::Conflict("the permit cannot be activated".into()));
        }
        self.permit_entry_in(tx, application_id, "permit.activated", actor, None, now)
            .await?;
        if let Some((expected, terms)) = pinned {
            let done = sqlx::query(
                "UPDATE permits SET current_version = $1 \
                 WHERE application_id = $2 AND current_version = $3",
            )
            .bind(expected + 1)
            .bind(application_id)
            .bind(expected)
            .execute(&mut **tx)
            .await?;
            if done.rows_affected() != 1 {
                return Err(Error::Conflict(
                    "the permit was amended meanwhile: retry the activation".into(),
                ));
            }
            let permit_id: String =
                sqlx::query_scalar("SELECT id FROM permits WHERE application_id = $1")
                    .bind(application_id)
                    .fetch_one(&mut **tx)
                    .await?;
            insert_version(
                tx,
                &permit_id,
                expected + 1,
                &terms,
                &now_s,
                actor,
                "activation: latest releases pinned",
            )
            .await?;
        }
        Ok(())
    }

    /// Before `active → expired`: the permit's expiry must have passed.
    pub(crate) async fn check_permit_expired(
        &self,
        application_id: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let expires: Option<String> =
            sqlx::query_scalar("SELECT expires_at FROM permits WHERE application_id = $1")
                .bind(application_id)
                .fetch_optional(self.pool())
                .await?;
        match expires {
            Some(e) if parse_ts(&e)? <= now => Ok(()),
            _ => Err(Error::Conflict(
                "the permit has not expired yet: close the project to end it early".into(),
            )),
        }
    }

    /// Inside a closing transaction: revokes the application's permit, if any.
    pub(crate) async fn revoke_permit_in(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        application_id: &str,
        actor: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let done = sqlx::query(
            "UPDATE permits SET revoked_at = $1, revoked_by = $2, revoke_reason = $3 \
             WHERE application_id = $4 AND revoked_at IS NULL",
        )
        .bind(format_ts(now))
        .bind(actor)
        .bind(reason)
        .bind(application_id)
        .execute(&mut **tx)
        .await?;
        if done.rows_affected() == 1 {
            self.permit_entry_in(
                tx,
                application_id,
                "permit.revoked",
                actor,
                Some(reason),
                now,
            )
            .await?;
        }
        Ok(())
    }

    /// The audit entry of a change to the application's permit, in the change's transaction.
    async fn permit_entry_in(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        application_id: &str,
        event: &str,
        actor: &str,
        reason: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let (permit_id, version): (String, i64) =
            sqlx::query_as("SELECT id, current_version FROM permits WHERE application_id = $1")
                .bind(application_id)
                .fetch_one(&mut **tx)
                .await?;
        let mut entry = NewAuditEntry::governance(event, actor)
            .project(application_id)
            .permit(&permit_id, Some(version));
        if let Some(reason) = reason {
            entry = entry.with("reason", reason);
        }
        crate::audit::append(tx, now, vec![entry]).await?;
        Ok(())
    }

    /// A permit lives at most the hub maximum from `issued_at` (only the hub's configuration
    /// raises it), and at most the application's requested duration unless the decision
    /// records why it may outlive it.
    fn check_expiry_bounds(
        &self,
        terms: &PermitTerms,
        issued_at: DateTime<Utc>,
        requested_months: u32,
    ) -> Result<()> {
        let max_months = self.config().permits.max_months;
        let limit = |months: u32| {
            issued_at
                .checked_add_months(Months::new(months))
                .ok_or_else(|| invalid("the permit's duration is out of range"))
        };
        let hub_limit = limit(max_months)?;
        if terms.expires_at > hub_limit {
            return Err(invalid(format!(
                "the permit's expiry is past the hub maximum of {max_months} months from its \
                 issue ({}): choose an expiry on or before that date (only the hub's \
                 configuration, permits.max_months, allows longer permits)",
                hub_limit.format("%Y-%m-%d %H:%M UTC")
            )));
        }
        let requested = limit(requested_months)?;
        if terms.expires_at > requested && terms.expiry_beyond_request_reason.is_none() {
            return Err(invalid(format!(
                "the permit's expiry is past the {requested_months} months the application \
                 asked for from its issue ({}): choose an expiry on or before that date, or \
                 give expiry_beyond_request_reason to record why the permit may outlive the \
                 request",
                requested.format("%Y-%m-%d %H:%M UTC")
            )));
        }
        Ok(())
    }

    /// Checks terms before they are written. Messages name fields and schema names, never
    /// data values.
    async fn validate_terms(&self, terms: &PermitTerms, now: DateTime<Utc>) -> Result<()> {
        if terms.members.is_empty() {
            return Err(invalid("a permit needs at least one member"));
        }
        let mut seen = HashSet::new();
        for (i, member) in terms.members.iter().enumerate() {
            if !seen.insert(member) {
                return Err(invalid(format!("permit member #{} is listed twice", i + 1)));
            }
            if crate::accounts::validate_user_id(member).is_err()
                || !self.user_is_active(member).await?
            {
                return Err(invalid(format!(
                    "permit member #{} is not an active user",
                    i + 1
                )));
            }
        }
        if terms.datasets.is_empty() {
            return Err(invalid("a permit needs at least one dataset"));
        }
        for ds in &terms.datasets {
            let name: DatasetName = ds
                .dataset
                .parse()
                .map_err(|_| invalid("permit: invalid dataset name"))?;
            if let ReleaseSelector::Number(n) = ds.release
                && self.release(&name, Some(n)).await?.is_none()
            {
                return Err(invalid(format!("dataset {name} has no release {n}")));
            }
            if ds.tables.is_empty() {
                return Err(invalid(format!("permit: dataset {name} lists no table")));
            }
            let mut tables = HashSet::new();
            for t in &ds.tables {
                check_identifier("permit table", &t.table)?;
                if !tables.insert(&t.table) {
                    return Err(invalid(format!(
                        "permit: table {} is listed twice in dataset {name}",
                        t.table
                    )));
                }
                if t.columns.is_empty() {
                    return Err(invalid(format!(
                        "permit: table {} allows no column",
                        t.table
                    )));
                }
                let mut columns = HashSet::new();
                for c in &t.columns {
                    check_identifier("permit column", c)?;
                    if !columns.insert(c) {
                        return Err(invalid(format!(
                            "permit: column {c} is listed twice in table {}",
                            t.table
                        )));
                    }
                }
                for f in &t.row_filters {
                    validate_filter(f)?;
                }
                if let Some(c) = t.precision.keys().find(|c| !columns.contains(c)) {
                    return Err(invalid(format!(
                        "permit: table {} sets the precision of column {c}, which it does not allow",
                        t.table
                    )));
                }
            }
        }
        if terms.expires_at <= now {
            return Err(invalid("the permit's expiry must be in the future"));
        }
        if terms.expires_at.year() > 9999 {
            return Err(invalid("the permit's expiry is too far in the future"));
        }
        terms.output.validate()?;
        Ok(())
    }
}

fn validate_filter(f: &RowFilter) -> Result<()> {
    check_identifier("row filter column", f.column())?;
    match f {
        RowFilter::Period { from, to, .. } => {
            if from.is_none() && to.is_none() {
                return Err(invalid("period filter: give 'from', 'to' or both"));
            }
            if let (Some(a), Some(b)) = (from, to)
                && a > b
            {
                return Err(invalid("period filter: 'from' is after 'to'"));
            }
        }
        RowFilter::AgeRange {
            min_age,
            max_age,
            at_year,
            ..
        } => {
            if min_age.is_none() && max_age.is_none() {
                return Err(invalid("age filter: give 'min_age', 'max_age' or both"));
            }
            if let (Some(a), Some(b)) = (min_age, max_age)
                && a > b
            {
                return Err(invalid("age filter: 'min_age' is above 'max_age'"));
            }
            if min_age.unwrap_or(0) > 150 || max_age.unwrap_or(0) > 150 {
                return Err(invalid("age filter: ages above 150"));
            }
            if !(1800..=9999).contains(at_year) {
                return Err(invalid("age filter: 'at_year' out of range"));
            }
        }
        RowFilter::ValueIn { values, .. } => {
            if values.is_empty() || values.len() > 100_000 {
                return Err(invalid("value filter: give 1 to 100000 values"));
            }
        }
    }
    Ok(())
}

fn parse_terms(json: &str) -> Result<PermitTerms> {
    serde_json::from_str(json).map_err(|_| Error::Corrupt("stored permit terms".into()))
}

async fn insert_version(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    permit_id: &str,
    version: i64,
    terms: &PermitTerms,
    now: &str,
    actor: &str,
    reason: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO permit_versions (permit_id, version, terms, created_at, created_by, reason) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(permit_id)
    .bind(version)
    .bind(to_json(terms)?)
    .bind(now)
    .bind(actor)
    .bind(reason)
    .execute(&mut **tx)
    .await?;
    let project: String = sqlx::query_scalar("SELECT application_id FROM permits WHERE id = $1")
        .bind(permit_id)
        .fetch_one(&mut **tx)
        .await?;
    let event = if version == 1 {
        "permit.issued"
    } else {
        "permit.amended"
    };
    // The terms themselves stay in permit_versions; the entry pins them by digest.
    let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(to_json(terms)?));
    let entry = NewAuditEntry::governance(event, actor)
        .project(&project)
        .permit(permit_id, Some(version))
        .with("reason", reason)
        .with("terms_sha256", digest);
    crate::audit::append(tx, parse_ts(now)?, vec![entry]).await?;
    Ok(())
}

async fn replace_permit_members(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    permit_id: &str,
    members: &[String],
) -> Result<()> {
    sqlx::query("DELETE FROM permit_members WHERE permit_id = $1")
        .bind(permit_id)
        .execute(&mut **tx)
        .await?;
    for m in members {
        sqlx::query("INSERT INTO permit_members (permit_id, user_id) VALUES ($1, $2)")
            .bind(permit_id)
            .bind(m)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn permit_terms_have_a_stable_json_form() {
        let terms = PermitTerms {
            members: vec!["alice".into()],
            datasets: vec![DatasetScope {
                dataset: "omop".into(),
                release: ReleaseSelector::LatestAtActivation,
                tables: vec![TableScope {
                    table: "person".into(),
                    columns: vec!["person_id".into(), "year_of_birth".into()],
                    row_filters: vec![
                        RowFilter::AgeRange {
                            year_of_birth_column: "year_of_birth".into(),
                            min_age: Some(18),
                            max_age: None,
                            at_year: 2026,
                        },
                        RowFilter::Period {
                            column: "visit_start_date".into(),
                            from: NaiveDate::from_ymd_opt(2020, 1, 1),
                            to: None,
                        },
                    ],
                    precision: Default::default(),
                }],
            }],
            expires_at: Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap(),
            output: OutputPolicy::default(),
            expiry_beyond_request_reason: None,
        };
        let json = serde_json::to_value(&terms).unwrap();
        assert_eq!(json["datasets"][0]["release"], "latest_at_activation");
        assert_eq!(
            json["datasets"][0]["tables"][0]["row_filters"][0]["kind"],
            "age_range"
        );
        assert_eq!(json["output"]["profile"], "snds");
        assert_eq!(json["output"].get("k"), Some(&serde_json::Value::Null));
        assert_eq!(OutputPolicy::default().rules().k, 10);
        assert_eq!(json["expires_at"], "2027-01-01T00:00:00Z");
        let back: PermitTerms = serde_json::from_value(json).unwrap();
        assert_eq!(back, terms);
        let pinned: ReleaseSelector = serde_json::from_str(r#"{"number":3}"#).unwrap();
        assert_eq!(pinned, ReleaseSelector::Number(3));
    }

    #[test]
    fn a_pseudonymized_rows_policy_reads_alone_and_takes_no_aggregate_rule() {
        let rows: OutputPolicy =
            serde_json::from_str(r#"{"policy": "pseudonymized-rows"}"#).unwrap();
        assert_eq!(rows.policy, ReleasePolicy::PseudonymizedRows);
        assert_eq!(rows.profile, DisclosureProfile::Snds);
        rows.validate().unwrap();
        let json = serde_json::to_value(rows).unwrap();
        assert_eq!(json["policy"], "pseudonymized-rows");
        // Stored permits without the field are aggregates permits.
        let old: OutputPolicy = serde_json::from_str(r#"{"profile": "ohdsi"}"#).unwrap();
        assert_eq!(old.policy, ReleasePolicy::Aggregates);
        let with_k = OutputPolicy {
            k: Some(20),
            ..rows
        };
        assert!(
            with_k
                .validate()
                .unwrap_err()
                .to_string()
                .contains("takes none")
        );
        // A precision is read by column; an unknown one is refused.
        let scope: TableScope = serde_json::from_str(
            r#"{"table": "person", "columns": ["birth_datetime"],
                "precision": {"birth_datetime": "month"}}"#,
        )
        .unwrap();
        assert_eq!(scope.precision["birth_datetime"], Precision::Month);
        assert!(
            serde_json::from_str::<TableScope>(
                r#"{"table": "t", "columns": ["d"], "precision": {"d": "week"}}"#
            )
            .is_err()
        );
    }

    #[test]
    fn status_follows_revocation_expiry_and_activation() {
        let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let exp = Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap();
        assert_eq!(status_at(false, false, exp, t0), PermitStatus::Approved);
        assert_eq!(status_at(false, true, exp, t0), PermitStatus::Active);
        assert_eq!(status_at(false, true, exp, exp), PermitStatus::Expired);
        assert_eq!(status_at(true, true, exp, t0), PermitStatus::Revoked);
    }

    #[test]
    fn filters_are_checked() {
        assert!(
            validate_filter(&RowFilter::Period {
                column: "d".into(),
                from: None,
                to: None
            })
            .is_err()
        );
        assert!(
            validate_filter(&RowFilter::ValueIn {
                column: "x; drop table".into(),
                values: vec![1]
            })
            .is_err()
        );
        validate_filter(&RowFilter::ValueIn {
            column: "condition_concept_id".into(),
            values: vec![1, 2],
        })
        .unwrap();
    }
}
