//! Project applications and their review workflow.
//!
//! An application is a researcher's request for data: title, purpose, public-interest
//! justification, legal basis, responsible organisation, requested datasets / tables /
//! columns, requested period, potential identifiers, duration and team. It moves through
//! review states; **every move is checked** (allowed transition, allowed party) and
//! **recorded** (who, when, optional comment) in its history, and the review steps carry due
//! dates ([`crate::Deadlines`]).
//!
//! ```text
//!  draft ──submit──► submitted ──start review──► under_review ──approve──► approved ──activate──► active ──► expired
//!    ▲                 │  │                         │   │                     │                     │
//!    └──withdraw───────┘  └──request changes──┐     │   └──reject──► rejected └──close──► closed ◄─┘ close
//!    ▲                                        ▼     ▼
//!    └────────reopen────────────────── changes_requested ──resubmit──► submitted
//! ```
//!
//! ## Who may do what
//!
//! *Applicant* = the owner or a team member, holding the researcher role. *Reviewer* = a user
//! with the reviewer role who is **not** an applicant of this application (no one reviews
//! their own project). *Operator* = a user with the operator role.
//!
//! | from | to | who | notes |
//! |---|---|---|---|
//! | (new) | draft | researcher | becomes the owner |
//! | draft, changes_requested | (edit) | applicant | |
//! | draft | submitted | applicant | the form must be complete |
//! | changes_requested | submitted | applicant | resubmission; the form must be complete |
//! | changes_requested | draft | applicant | reopen for larger edits |
//! | submitted | draft | applicant | withdraw before review starts |
//! | submitted | under_review | reviewer | completeness check passed |
//! | submitted | changes_requested | reviewer | incomplete |
//! | under_review | changes_requested | reviewer | |
//! | under_review | rejected | reviewer | final |
//! | under_review | approved | reviewer | [`MetaStore::approve_application`]: issues the data permit in the same transaction |
//! | approved | active | operator | the permit takes effect; "latest release" scopes are pinned |
//! | approved, active | closed | owner, reviewer, operator | revokes the permit at once |
//! | active | expired | operator, or the hub itself ([`MetaStore::expire_permits`]) | only once the permit's expiry has passed; access already ended then |
//! | draft, submitted, changes_requested | closed | owner | abandoned |
//!
//! Reviewers (including for `under_review` opinions, see
//! [`MetaStore::record_scientific_opinion`]) and operators see every application that has
//! been submitted at least once; applicants see their own; nobody else sees an application:
//! for them it does not exist ([`Error::NotFound`]). A caller who may see an application but
//! not make a move gets [`Error::PermissionDenied`]; a move the state does not allow (or that
//! a concurrent decision already made) gets [`Error::InvalidTransition`].
//!
//! Concurrency: every move is a conditional `UPDATE ... WHERE id = $1 AND state = $from`
//! whose row count decides the winner, in the transaction that writes the history (and, for
//! an approval, the permit). Of two reviewers approving at once, exactly one succeeds.

use std::collections::HashSet;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::accounts::{check_text, validate_user_id};
use crate::audit::NewAuditEntry;
use crate::clock::{format_ts, parse_ts, parse_ts_opt};
use crate::deadlines::{Step, StepDeadline};
use crate::error::{denied, invalid};
use crate::{Error, MetaStore, Principal, Result, Role, random_id};

/// The states of an application.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApplicationState {
    /// Being written by its applicants, who alone may edit it.
    Draft,
    /// Sent for review; the completeness check is running.
    Submitted,
    /// Complete; awaiting the scientific opinion and the decision.
    UnderReview,
    /// Sent back to the applicants to edit and resubmit.
    ChangesRequested,
    /// Approved with a data permit issued, not yet in effect.
    Approved,
    /// Refused; final.
    Rejected,
    /// Activated by an operator: the permit grants access.
    Active,
    /// The permit's expiry passed; final.
    Expired,
    /// Abandoned or ended early (revoking any permit); final.
    Closed,
}

impl ApplicationState {
    /// Every state, in workflow order.
    pub const ALL: [ApplicationState; 9] = [
        ApplicationState::Draft,
        ApplicationState::Submitted,
        ApplicationState::UnderReview,
        ApplicationState::ChangesRequested,
        ApplicationState::Approved,
        ApplicationState::Rejected,
        ApplicationState::Active,
        ApplicationState::Expired,
        ApplicationState::Closed,
    ];

    /// The stored and serialized form, e.g. `under_review`; [`FromStr`](std::str::FromStr)
    /// parses it back.
    pub fn as_str(self) -> &'static str {
        match self {
            ApplicationState::Draft => "draft",
            ApplicationState::Submitted => "submitted",
            ApplicationState::UnderReview => "under_review",
            ApplicationState::ChangesRequested => "changes_requested",
            ApplicationState::Approved => "approved",
            ApplicationState::Rejected => "rejected",
            ApplicationState::Active => "active",
            ApplicationState::Expired => "expired",
            ApplicationState::Closed => "closed",
        }
    }

    /// Whether the state has a data permit (issued at approval).
    pub fn has_permit(self) -> bool {
        matches!(
            self,
            ApplicationState::Approved
                | ApplicationState::Active
                | ApplicationState::Expired
                | ApplicationState::Closed
        )
    }
}

impl std::str::FromStr for ApplicationState {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        ApplicationState::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| invalid("unknown application state"))
    }
}

impl std::fmt::Display for ApplicationState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who may make a transition (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Party {
    /// The owner or a team member, with the researcher role.
    Applicant,
    /// The owner, with the researcher role.
    Owner,
    /// A reviewer who is not an applicant of this application.
    Reviewer,
    /// A user with the operator role.
    Operator,
    /// The hub itself (scheduled expiry).
    System,
}

/// One allowed move of the state machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TransitionRule {
    /// The state the application must be in.
    pub from: ApplicationState,
    /// The state it moves to.
    pub to: ApplicationState,
    /// Who may make the move: any one of these.
    pub parties: &'static [Party],
}

use ApplicationState as S;

/// The complete transition matrix: any move not listed is refused.
pub const TRANSITIONS: &[TransitionRule] = &[
    rule(S::Draft, S::Submitted, &[Party::Applicant]),
    rule(S::ChangesRequested, S::Submitted, &[Party::Applicant]),
    rule(S::ChangesRequested, S::Draft, &[Party::Applicant]),
    rule(S::Submitted, S::Draft, &[Party::Applicant]),
    rule(S::Submitted, S::UnderReview, &[Party::Reviewer]),
    rule(S::Submitted, S::ChangesRequested, &[Party::Reviewer]),
    rule(S::UnderReview, S::ChangesRequested, &[Party::Reviewer]),
    rule(S::UnderReview, S::Rejected, &[Party::Reviewer]),
    rule(S::UnderReview, S::Approved, &[Party::Reviewer]),
    rule(S::Approved, S::Active, &[Party::Operator]),
    rule(
        S::Approved,
        S::Closed,
        &[Party::Owner, Party::Reviewer, Party::Operator],
    ),
    rule(
        S::Active,
        S::Closed,
        &[Party::Owner, Party::Reviewer, Party::Operator],
    ),
    rule(S::Active, S::Expired, &[Party::Operator, Party::System]),
    rule(S::Draft, S::Closed, &[Party::Owner]),
    rule(S::Submitted, S::Closed, &[Party::Owner]),
    rule(S::ChangesRequested, S::Closed, &[Party::Owner]),
];

const fn rule(
    from: ApplicationState,
    to: ApplicationState,
    parties: &'static [Party],
) -> TransitionRule {
    TransitionRule { from, to, parties }
}

/// The rule allowing `from -> to`, or `None` if the matrix refuses that move to everyone.
pub fn transition_rule(
    from: ApplicationState,
    to: ApplicationState,
) -> Option<&'static TransitionRule> {
    TRANSITIONS.iter().find(|r| r.from == from && r.to == to)
}

/// Potential identifiers an application may ask for (to be minimised, as for the SNDS).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PotentialIdentifier {
    /// Month and year of birth (rather than the year alone).
    BirthYearMonth,
    /// The municipality of residence.
    Commune,
    /// Exact dates of care (rather than months).
    ExactCareDates,
    /// The exact date of death (rather than its month).
    ExactDeathDate,
}

/// A table an application asks for, and which of its columns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestedTable {
    /// The table's name (letters, digits, `_`).
    pub table: String,
    /// Requested columns; empty means "to be decided with the reviewers".
    #[serde(default)]
    pub columns: Vec<String>,
}

/// A dataset an application asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestedDataset {
    /// The dataset's name.
    pub dataset: String,
    /// The tables asked for; submission needs at least one.
    #[serde(default)]
    pub tables: Vec<RequestedTable>,
}

/// An inclusive range of days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DateRange {
    /// First day, included.
    pub from: NaiveDate,
    /// Last day, included; not before `from`.
    pub to: NaiveDate,
}

/// What the applicant fills in. Every field may be empty in a draft; submission requires a
/// complete form ([`ApplicationForm::missing_fields`]).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ApplicationForm {
    /// The project's title, at most 300 characters.
    pub title: String,
    /// What the project will study and how, at most 20,000 characters.
    pub purpose: String,
    /// Why the project serves the public interest, at most 20,000 characters.
    pub public_interest: String,
    /// The legal basis claimed for the processing, at most 20,000 characters.
    pub legal_basis: String,
    /// The organisation responsible for the project, at most 300 characters.
    pub organisation: String,
    /// The data asked for: datasets, tables and columns.
    pub requested: Vec<RequestedDataset>,
    /// The period of care the study covers.
    pub period: Option<DateRange>,
    /// Potential identifiers asked for, each to be justified and minimised.
    pub identifiers: Vec<PotentialIdentifier>,
    /// How long access is wanted, in months (1 to [`MAX_DURATION_MONTHS`] once submitted).
    pub duration_months: u32,
    /// Team members' user ids (besides the owner).
    pub team: Vec<String>,
}

/// Longest application duration accepted, in months.
pub const MAX_DURATION_MONTHS: u32 = 120;

impl ApplicationForm {
    /// Names of the fields a submission still lacks (empty when complete).
    pub fn missing_fields(&self) -> Vec<&'static str> {
        let mut missing = Vec::new();
        for (name, value) in [
            ("title", &self.title),
            ("purpose", &self.purpose),
            ("public_interest", &self.public_interest),
            ("legal_basis", &self.legal_basis),
            ("organisation", &self.organisation),
        ] {
            if value.trim().is_empty() {
                missing.push(name);
            }
        }
        if self.requested.is_empty() || self.requested.iter().any(|d| d.tables.is_empty()) {
            missing.push("requested");
        }
        if self.period.is_none() {
            missing.push("period");
        }
        if self.duration_months == 0 {
            missing.push("duration_months");
        }
        missing
    }

    /// Checks what must hold even in a draft: lengths, names, ranges. Messages name fields,
    /// never values.
    pub fn validate(&self) -> Result<()> {
        check_text("title", &self.title, 300)?;
        for (field, value) in [
            ("purpose", &self.purpose),
            ("public_interest", &self.public_interest),
            ("legal_basis", &self.legal_basis),
        ] {
            check_text(field, value, 20_000)?;
        }
        check_text("organisation", &self.organisation, 300)?;
        if self.requested.len() > 100 {
            return Err(invalid("requested: at most 100 datasets"));
        }
        for ds in &self.requested {
            ds.dataset
                .parse::<agora_core::DatasetName>()
                .map_err(|_| invalid("requested: invalid dataset name"))?;
            if ds.tables.len() > 500 {
                return Err(invalid("requested: at most 500 tables per dataset"));
            }
            for t in &ds.tables {
                check_identifier("requested table", &t.table)?;
                if t.columns.len() > 1000 {
                    return Err(invalid("requested: at most 1000 columns per table"));
                }
                for c in &t.columns {
                    check_identifier("requested column", c)?;
                }
            }
        }
        if let Some(p) = self.period
            && p.from > p.to
        {
            return Err(invalid("period: 'from' is after 'to'"));
        }
        if self.duration_months > MAX_DURATION_MONTHS {
            return Err(invalid(format!(
                "duration_months: at most {MAX_DURATION_MONTHS}"
            )));
        }
        if self.team.len() > 100 {
            return Err(invalid("team: at most 100 members"));
        }
        for member in &self.team {
            validate_user_id(member).map_err(|_| invalid("team: invalid user id"))?;
        }
        Ok(())
    }
}

/// Table and column names: what SQL engines accept unquoted (and what the lake writes).
pub(crate) fn check_identifier(what: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !name.as_bytes()[0].is_ascii_digit();
    if ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "{what}: names use letters, digits and '_' and do not start with a digit"
        )))
    }
}

/// An application as its readers see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Application {
    /// The application's random id.
    pub id: String,
    /// User id of the researcher who created it.
    pub owner: String,
    /// Where it stands in the workflow.
    pub state: ApplicationState,
    /// The current form.
    pub form: ApplicationForm,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When its form, state or review last changed.
    pub updated_at: DateTime<Utc>,
    /// First submission; `None` for a draft never submitted.
    pub submitted_at: Option<DateTime<Utc>>,
    /// The data permit, once approved.
    pub permit_id: Option<String>,
    /// Review steps with their due dates, oldest first.
    pub deadlines: Vec<StepDeadline>,
}

impl Application {
    /// The moves `actor` may make now (what a user interface offers).
    pub fn transitions_for(&self, actor: &Principal) -> Vec<ApplicationState> {
        TRANSITIONS
            .iter()
            .filter(|r| r.from == self.state)
            .filter(|r| {
                r.parties
                    .iter()
                    .any(|p| party_allows(*p, actor, &self.owner, &self.form.team))
            })
            .map(|r| r.to)
            .collect()
    }

    /// The open step with the earliest due date, if any.
    pub fn next_deadline(&self) -> Option<&StepDeadline> {
        self.deadlines
            .iter()
            .filter(|d| d.completed_at.is_none())
            .min_by_key(|d| d.due_at)
    }
}

/// What happened to an application, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// The application was created as a draft.
    Created,
    /// Its form was edited (the state does not change).
    Edited,
    /// It moved from one state to another.
    Transition,
    /// A reviewer recorded a favourable scientific opinion.
    FavourableOpinion,
    /// A reviewer recorded an unfavourable scientific opinion.
    UnfavourableOpinion,
}

impl EventKind {
    fn as_str(self) -> &'static str {
        match self {
            EventKind::Created => "created",
            EventKind::Edited => "edited",
            EventKind::Transition => "transition",
            EventKind::FavourableOpinion => "favourable_opinion",
            EventKind::UnfavourableOpinion => "unfavourable_opinion",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "created" => EventKind::Created,
            "edited" => EventKind::Edited,
            "transition" => EventKind::Transition,
            "favourable_opinion" => EventKind::FavourableOpinion,
            "unfavourable_opinion" => EventKind::UnfavourableOpinion,
            _ => return None,
        })
    }
}

/// One entry of an application's history: who did what, when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplicationEvent {
    /// Position in the application's history, from 1.
    pub seq: i64,
    /// What happened.
    pub kind: EventKind,
    /// The state before; `None` for [`EventKind::Created`].
    pub from: Option<ApplicationState>,
    /// The state after (the same as `from` unless a transition).
    pub to: ApplicationState,
    /// User id of whoever did it; `system` for the hub's own moves (scheduled expiry).
    pub actor: String,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// The actor's comment, if any (e.g. the changes requested).
    pub comment: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Relation {
    Owner,
    Member,
    None,
}

fn relation(user: &str, owner: &str, team: &[String]) -> Relation {
    if user == owner {
        Relation::Owner
    } else if team.iter().any(|m| m == user) {
        Relation::Member
    } else {
        Relation::None
    }
}

fn party_allows(party: Party, actor: &Principal, owner: &str, team: &[String]) -> bool {
    let rel = relation(&actor.name, owner, team);
    match party {
        Party::Applicant => rel != Relation::None && actor.has(Role::Researcher),
        Party::Owner => rel == Relation::Owner && actor.has(Role::Researcher),
        Party::Reviewer => rel == Relation::None && actor.has(Role::Reviewer),
        Party::Operator => actor.has(Role::Operator),
        Party::System => false,
    }
}

/// An application as stored (before deadlines and permit are attached).
#[derive(Debug, Clone)]
pub(crate) struct AppRow {
    pub id: String,
    pub owner: String,
    pub state: ApplicationState,
    pub form: ApplicationForm,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub submitted_at: Option<DateTime<Utc>>,
}

impl AppRow {
    fn relation(&self, user: &str) -> Relation {
        relation(user, &self.owner, &self.form.team)
    }

    /// Whether `actor` may see this application at all.
    pub(crate) fn visible_to(&self, actor: &Principal) -> bool {
        self.relation(&actor.name) != Relation::None
            || ((actor.has(Role::Reviewer) || actor.has(Role::Operator))
                && self.submitted_at.is_some())
    }

    pub(crate) fn is_applicant(&self, user: &str) -> bool {
        self.relation(user) != Relation::None
    }

    /// Owner first, then the team.
    pub(crate) fn applicants(&self) -> Vec<String> {
        std::iter::once(self.owner.clone())
            .chain(self.form.team.iter().cloned())
            .collect()
    }

    pub(crate) fn check_party(&self, actor: &Principal, to: ApplicationState) -> Result<()> {
        let rule = transition_rule(self.state, to).ok_or(Error::InvalidTransition {
            from: self.state,
            to,
        })?;
        if rule
            .parties
            .iter()
            .any(|p| party_allows(*p, actor, &self.owner, &self.form.team))
        {
            Ok(())
        } else {
            let who = rule
                .parties
                .iter()
                .filter(|p| **p != Party::System)
                .map(|p| match p {
                    Party::Applicant => {
                        "an applicant (owner or team member) with the researcher role"
                    }
                    Party::Owner => "the owner, with the researcher role",
                    Party::Reviewer => "a reviewer who is not an applicant",
                    Party::Operator => "an operator",
                    Party::System => "",
                })
                .collect::<Vec<_>>()
                .join(" or ");
            Err(denied(format!("moving to {to} needs {who}")))
        }
    }
}

type AppTuple = (
    String,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
);
type EventTuple = (
    i64,
    String,
    Option<String>,
    String,
    String,
    String,
    Option<String>,
);

fn normalise_team(form: &mut ApplicationForm, owner: &str) {
    let mut seen = HashSet::new();
    form.team.retain(|m| m != owner && seen.insert(m.clone()));
}

fn check_comment(comment: Option<&str>) -> Result<()> {
    if let Some(c) = comment {
        check_text("comment", c, 5000)?;
    }
    Ok(())
}

impl MetaStore {
    pub(crate) async fn load_app(&self, id: &str) -> Result<Option<AppRow>> {
        let row: Option<AppTuple> = sqlx::query_as(
            "SELECT id, owner_id, state, form, created_at, updated_at, submitted_at \
             FROM applications WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.map(app_from_tuple).transpose()
    }

    /// The application if `actor` may see it; `NotFound` otherwise (whether or not it exists).
    ///
    /// The query fetches the row only together with the caller's right to see it, so an
    /// application the caller may not see and a missing id take the same path (one query, no
    /// row, nothing parsed) and answer in the same time. [`AppRow::visible_to`] is checked
    /// again on the parsed row: the form's team is what the rules are written against.
    pub(crate) async fn visible_app(&self, actor: &Principal, id: &str) -> Result<AppRow> {
        let staff = i64::from(actor.has(Role::Reviewer) || actor.has(Role::Operator));
        let row: Option<AppTuple> = sqlx::query_as(
            "SELECT id, owner_id, state, form, created_at, updated_at, submitted_at \
             FROM applications a WHERE a.id = $1 AND (a.owner_id = $2 \
             OR EXISTS (SELECT 1 FROM application_members m \
                        WHERE m.application_id = a.id AND m.user_id = $3) \
             OR ($4 = 1 AND a.submitted_at IS NOT NULL))",
        )
        .bind(id)
        .bind(&actor.name)
        .bind(&actor.name)
        .bind(staff)
        .fetch_optional(self.pool())
        .await?;
        match row.map(app_from_tuple).transpose()? {
            Some(row) if row.visible_to(actor) => Ok(row),
            _ => Err(Error::NotFound("application")),
        }
    }

    async fn to_application(&self, row: AppRow) -> Result<Application> {
        let permit_id: Option<String> =
            sqlx::query_scalar("SELECT id FROM permits WHERE application_id = $1")
                .bind(&row.id)
                .fetch_optional(self.pool())
                .await?;
        let deadlines = self.app_deadlines(&row.id).await?;
        Ok(Application {
            id: row.id,
            owner: row.owner,
            state: row.state,
            form: row.form,
            created_at: row.created_at,
            updated_at: row.updated_at,
            submitted_at: row.submitted_at,
            permit_id,
            deadlines,
        })
    }

    async fn app_deadlines(&self, id: &str) -> Result<Vec<StepDeadline>> {
        let rows: Vec<(String, String, String, Option<String>)> = sqlx::query_as(
            "SELECT step, started_at, due_at, completed_at FROM application_steps \
             WHERE application_id = $1 ORDER BY seq",
        )
        .bind(id)
        .fetch_all(self.pool())
        .await?;
        let now = self.now();
        rows.into_iter()
            .map(|(step, started, due, completed)| {
                let due_at = parse_ts(&due)?;
                let completed_at = parse_ts_opt(completed)?;
                Ok(StepDeadline {
                    step: Step::parse(&step)
                        .ok_or_else(|| Error::Corrupt("unknown review step".into()))?,
                    started_at: parse_ts(&started)?,
                    due_at,
                    completed_at,
                    overdue: completed_at.unwrap_or(now) > due_at,
                })
            })
            .collect()
    }

    /// Validates the team: every member must be an active user.
    async fn check_team(&self, form: &ApplicationForm) -> Result<()> {
        for (i, member) in form.team.iter().enumerate() {
            if !self.user_is_active(member).await? {
                return Err(invalid(format!(
                    "team member #{} is not an active user",
                    i + 1
                )));
            }
        }
        Ok(())
    }

    /// Starts an application (researchers only); the caller becomes its owner.
    pub async fn create_application(
        &self,
        actor: &Principal,
        mut form: ApplicationForm,
    ) -> Result<Application> {
        if !actor.has(Role::Researcher) {
            return Err(denied("creating an application needs the researcher role"));
        }
        normalise_team(&mut form, &actor.name);
        form.validate()?;
        self.check_team(&form).await?;
        let id = random_id("app_");
        let now = self.now();
        let now_s = format_ts(now);
        let form_json = serde_json::to_string(&form).map_err(|e| Error::Corrupt(e.to_string()))?;
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "INSERT INTO applications (id, owner_id, state, form, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&id)
        .bind(&actor.name)
        .bind(S::Draft.as_str())
        .bind(&form_json)
        .bind(&now_s)
        .bind(&now_s)
        .execute(&mut *tx)
        .await?;
        replace_members(&mut tx, &id, &form.team).await?;
        insert_event(
            &mut tx,
            &id,
            EventKind::Created,
            None,
            S::Draft,
            &actor.name,
            &now_s,
            None,
        )
        .await?;
        tx.commit().await?;
        tracing::info!(application = %id, by = %actor.name, "application created");
        self.application(actor, &id).await
    }

    /// Replaces an application's form (applicants, in `draft` or `changes_requested`).
    pub async fn update_application(
        &self,
        actor: &Principal,
        id: &str,
        mut form: ApplicationForm,
    ) -> Result<Application> {
        let row = self.visible_app(actor, id).await?;
        if !row.is_applicant(&actor.name) || !actor.has(Role::Researcher) {
            return Err(denied(
                "only an applicant with the researcher role may edit an application",
            ));
        }
        normalise_team(&mut form, &row.owner);
        form.validate()?;
        self.check_team(&form).await?;
        let now_s = format_ts(self.now());
        let form_json = serde_json::to_string(&form).map_err(|e| Error::Corrupt(e.to_string()))?;
        let mut tx = self.pool().begin().await?;
        let done = sqlx::query(
            "UPDATE applications SET form = $1, updated_at = $2 \
             WHERE id = $3 AND state IN ('draft', 'changes_requested')",
        )
        .bind(&form_json)
        .bind(&now_s)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(Error::Conflict(
                "an application can only be edited in draft or changes_requested".into(),
            ));
        }
        let state: String = sqlx::query_scalar("SELECT state FROM applications WHERE id = $1")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        let state: ApplicationState = state.parse()?;
        replace_members(&mut tx, id, &form.team).await?;
        insert_event(
            &mut tx,
            id,
            EventKind::Edited,
            Some(state),
            state,
            &actor.name,
            &now_s,
            None,
        )
        .await?;
        tx.commit().await?;
        self.application(actor, id).await
    }

    /// One application, if `actor` may see it (else `NotFound`, as for a missing id).
    pub async fn application(&self, actor: &Principal, id: &str) -> Result<Application> {
        let row = self.visible_app(actor, id).await?;
        self.to_application(row).await
    }

    /// The applications `actor` may see, oldest first, optionally in one state.
    pub async fn list_applications(
        &self,
        actor: &Principal,
        state: Option<ApplicationState>,
    ) -> Result<Vec<Application>> {
        let staff = i64::from(actor.has(Role::Reviewer) || actor.has(Role::Operator));
        let mut sql = "SELECT id FROM applications a WHERE (a.owner_id = $1 \
             OR EXISTS (SELECT 1 FROM application_members m WHERE m.application_id = a.id AND m.user_id = $2) \
             OR ($3 = 1 AND a.submitted_at IS NOT NULL))"
            .to_owned();
        if state.is_some() {
            sql.push_str(" AND a.state = $4");
        }
        sql.push_str(" ORDER BY a.created_at, a.id");
        let mut query = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(&actor.name)
            .bind(&actor.name)
            .bind(staff);
        if let Some(s) = state {
            query = query.bind(s.as_str());
        }
        let ids: Vec<String> = query.fetch_all(self.pool()).await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(row) = self.load_app(&id).await?
                && row.visible_to(actor)
            {
                out.push(self.to_application(row).await?);
            }
        }
        Ok(out)
    }

    /// The review queue (reviewers and operators): applications submitted or under review,
    /// except the caller's own, the most urgent open deadline first.
    pub async fn review_queue(&self, actor: &Principal) -> Result<Vec<Application>> {
        if !actor.has(Role::Reviewer) && !actor.has(Role::Operator) {
            return Err(denied("the review queue is for reviewers and operators"));
        }
        let mut queue = self.list_applications(actor, Some(S::Submitted)).await?;
        queue.extend(self.list_applications(actor, Some(S::UnderReview)).await?);
        queue.retain(|a| relation(&actor.name, &a.owner, &a.form.team) == Relation::None);
        queue.sort_by_key(|a| (a.next_deadline().map(|d| d.due_at), a.created_at));
        Ok(queue)
    }

    /// The history of an application (who did what when), if `actor` may see it.
    pub async fn application_history(
        &self,
        actor: &Principal,
        id: &str,
    ) -> Result<Vec<ApplicationEvent>> {
        self.visible_app(actor, id).await?;
        let rows: Vec<EventTuple> = sqlx::query_as(
            "SELECT seq, kind, from_state, to_state, actor, at, comment \
                 FROM application_events WHERE application_id = $1 ORDER BY seq",
        )
        .bind(id)
        .fetch_all(self.pool())
        .await?;
        rows.into_iter()
            .map(|(seq, kind, from, to, actor, at, comment)| {
                Ok(ApplicationEvent {
                    seq,
                    kind: EventKind::parse(&kind)
                        .ok_or_else(|| Error::Corrupt("unknown event kind".into()))?,
                    from: from.map(|f| f.parse()).transpose()?,
                    to: to.parse()?,
                    actor,
                    at: parse_ts(&at)?,
                    comment,
                })
            })
            .collect()
    }

    /// Moves an application to `to`, checking the transition and the caller (see the module
    /// documentation). Approval needs the permit's terms: use
    /// [`MetaStore::approve_application`]. Activation pins the permit's releases; closing
    /// revokes the permit; both in the same transaction as the move.
    pub async fn transition_application(
        &self,
        actor: &Principal,
        id: &str,
        to: ApplicationState,
        comment: Option<&str>,
    ) -> Result<Application> {
        check_comment(comment)?;
        let row = self.visible_app(actor, id).await?;
        if to == S::Approved {
            return Err(invalid(
                "approval issues a data permit: use approve_application with the permit's terms",
            ));
        }
        row.check_party(actor, to)?;
        let now = self.now();
        match to {
            S::Submitted => {
                let missing = row.form.missing_fields();
                if !missing.is_empty() {
                    return Err(invalid(format!(
                        "the application is incomplete: fill in {}",
                        missing.join(", ")
                    )));
                }
                self.check_team(&row.form).await?;
            }
            S::Active => {
                let pinned = self.pin_releases_for_activation(&row.id, now).await?;
                let mut tx = self.pool().begin().await?;
                self.apply_transition(&mut tx, &row, to, &actor.name, comment, now)
                    .await?;
                self.activate_permit_in(&mut tx, &row.id, pinned, &actor.name, now)
                    .await?;
                tx.commit().await?;
                tracing::info!(application = %id, by = %actor.name, "project activated");
                return self.application(actor, id).await;
            }
            S::Expired => self.check_permit_expired(&row.id, now).await?,
            _ => {}
        }
        let mut tx = self.pool().begin().await?;
        self.apply_transition(&mut tx, &row, to, &actor.name, comment, now)
            .await?;
        if to == S::Closed {
            self.revoke_permit_in(
                &mut tx,
                &row.id,
                &actor.name,
                comment.unwrap_or("project closed"),
                now,
            )
            .await?;
        }
        tx.commit().await?;
        tracing::info!(application = %id, by = %actor.name, to = %to, "application moved");
        self.application(actor, id).await
    }

    /// Records the scientific opinion on an application under review (a reviewer who is not
    /// an applicant). Ends the scientific-opinion step and starts the authorization step.
    pub async fn record_scientific_opinion(
        &self,
        actor: &Principal,
        id: &str,
        favourable: bool,
        summary: &str,
    ) -> Result<Application> {
        check_comment(Some(summary))?;
        let row = self.visible_app(actor, id).await?;
        if !actor.has(Role::Reviewer) || row.is_applicant(&actor.name) {
            return Err(denied(
                "recording an opinion needs a reviewer who is not an applicant",
            ));
        }
        let now = self.now();
        let now_s = format_ts(now);
        let mut tx = self.pool().begin().await?;
        let done = sqlx::query(
            "UPDATE applications SET updated_at = $1 WHERE id = $2 AND state = 'under_review'",
        )
        .bind(&now_s)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(Error::Conflict(
                "an opinion can only be recorded while the application is under review".into(),
            ));
        }
        let closed = sqlx::query(
            "UPDATE application_steps SET completed_at = $1 WHERE application_id = $2 \
             AND step = 'scientific_opinion' AND completed_at IS NULL",
        )
        .bind(&now_s)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if closed.rows_affected() == 0 {
            return Err(Error::Conflict(
                "the scientific opinion has already been recorded for this review".into(),
            ));
        }
        start_step(
            &mut tx,
            id,
            Step::Authorization,
            now,
            &self.config().deadlines,
        )
        .await?;
        let kind = if favourable {
            EventKind::FavourableOpinion
        } else {
            EventKind::UnfavourableOpinion
        };
        insert_event(
            &mut tx,
            id,
            kind,
            Some(S::UnderReview),
            S::UnderReview,
            &actor.name,
            &now_s,
            Some(summary),
        )
        .await?;
        tx.commit().await?;
        self.application(actor, id).await
    }

    /// The move itself, inside `tx`: the conditional update that decides concurrent races,
    /// the history entry and the review steps. Must be the transaction's first write.
    pub(crate) async fn apply_transition(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        row: &AppRow,
        to: ApplicationState,
        actor: &str,
        comment: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let now_s = format_ts(now);
        // `submitted_at` records the first submission: drafts never submitted stay private.
        let done = sqlx::query(
            "UPDATE applications SET state = $1, updated_at = $2, \
             submitted_at = CASE WHEN $3 = 1 THEN COALESCE(submitted_at, $4) ELSE submitted_at END \
             WHERE id = $5 AND state = $6",
        )
        .bind(to.as_str())
        .bind(&now_s)
        .bind(i64::from(to == S::Submitted))
        .bind(&now_s)
        .bind(&row.id)
        .bind(row.state.as_str())
        .execute(&mut **tx)
        .await?;
        if done.rows_affected() != 1 {
            let current: Option<String> =
                sqlx::query_scalar("SELECT state FROM applications WHERE id = $1")
                    .bind(&row.id)
                    .fetch_optional(&mut **tx)
                    .await?;
            let from = match current {
                Some(s) => s.parse()?,
                None => return Err(Error::NotFound("application")),
            };
            return Err(Error::InvalidTransition { from, to });
        }
        sqlx::query(
            "UPDATE application_steps SET completed_at = $1 \
             WHERE application_id = $2 AND completed_at IS NULL",
        )
        .bind(&now_s)
        .bind(&row.id)
        .execute(&mut **tx)
        .await?;
        let deadlines = &self.config().deadlines;
        match to {
            S::Submitted => {
                start_step(tx, &row.id, Step::CompletenessCheck, now, deadlines).await?
            }
            S::UnderReview => {
                start_step(tx, &row.id, Step::ScientificOpinion, now, deadlines).await?
            }
            _ => {}
        }
        insert_event(
            tx,
            &row.id,
            EventKind::Transition,
            Some(row.state),
            to,
            actor,
            &now_s,
            comment,
        )
        .await
    }
}

fn app_from_tuple(t: AppTuple) -> Result<AppRow> {
    let (id, owner, state, form, created_at, updated_at, submitted_at) = t;
    Ok(AppRow {
        id,
        owner,
        state: state.parse()?,
        form: serde_json::from_str(&form)
            .map_err(|_| Error::Corrupt("stored application form".into()))?,
        created_at: parse_ts(&created_at)?,
        updated_at: parse_ts(&updated_at)?,
        submitted_at: parse_ts_opt(submitted_at)?,
    })
}

async fn replace_members(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    id: &str,
    team: &[String],
) -> Result<()> {
    sqlx::query("DELETE FROM application_members WHERE application_id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    for member in team {
        sqlx::query("INSERT INTO application_members (application_id, user_id) VALUES ($1, $2)")
            .bind(id)
            .bind(member)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

async fn start_step(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    id: &str,
    step: Step,
    now: DateTime<Utc>,
    deadlines: &crate::Deadlines,
) -> Result<()> {
    let seq: i64 = sqlx::query_scalar(
        "SELECT COALESCE(MAX(seq), 0) + 1 FROM application_steps WHERE application_id = $1",
    )
    .bind(id)
    .fetch_one(&mut **tx)
    .await?;
    sqlx::query(
        "INSERT INTO application_steps (application_id, seq, step, started_at, due_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(id)
    .bind(seq)
    .bind(step.as_str())
    .bind(format_ts(now))
    .bind(format_ts(deadlines.due(step, now)))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
pub(crate) async fn insert_event(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    id: &str,
    kind: EventKind,
    from: Option<ApplicationState>,
    to: ApplicationState,
    actor: &str,
    at: &str,
    comment: Option<&str>,
) -> Result<()> {
    let seq: i64 = sqlx::query_scalar(
        "SELECT COALESCE(MAX(seq), 0) + 1 FROM application_events WHERE application_id = $1",
    )
    .bind(id)
    .fetch_one(&mut **tx)
    .await?;
    sqlx::query(
        "INSERT INTO application_events \
         (application_id, seq, kind, from_state, to_state, actor, at, comment) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(id)
    .bind(seq)
    .bind(kind.as_str())
    .bind(from.map(|f| f.as_str()))
    .bind(to.as_str())
    .bind(actor)
    .bind(at)
    .bind(comment)
    .execute(&mut **tx)
    .await?;
    // The audit log's entry commits with the event (the comment stays in the history).
    let event = match kind {
        EventKind::Transition => format!("application.{}", to.as_str()),
        other => format!("application.{}", other.as_str()),
    };
    let mut entry = NewAuditEntry::governance(&event, actor)
        .project(id)
        .with("to", to.as_str());
    if let Some(from) = from {
        entry = entry.with("from", from.as_str());
    }
    crate::audit::append(tx, parse_ts(at)?, vec![entry]).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(name: &str, roles: &[Role]) -> Principal {
        Principal {
            name: name.into(),
            roles: roles.to_vec(),
        }
    }

    #[test]
    fn every_rule_is_unique_and_terminal_states_are_terminal() {
        let mut seen = HashSet::new();
        for r in TRANSITIONS {
            assert!(seen.insert((r.from, r.to)), "{:?} twice", (r.from, r.to));
            assert_ne!(r.from, r.to);
            assert!(!r.parties.is_empty());
        }
        for terminal in [S::Rejected, S::Expired, S::Closed] {
            assert!(TRANSITIONS.iter().all(|r| r.from != terminal), "{terminal}");
        }
    }

    #[test]
    fn states_round_trip() {
        for s in ApplicationState::ALL {
            assert_eq!(s.as_str().parse::<ApplicationState>().unwrap(), s);
            assert_eq!(
                serde_json::to_string(&s).unwrap(),
                format!("\"{}\"", s.as_str())
            );
        }
    }

    #[test]
    fn reviewers_never_review_their_own_application() {
        let both = principal("rita", &[Role::Researcher, Role::Reviewer]);
        let team = vec!["rita".to_owned()];
        assert!(!party_allows(Party::Reviewer, &both, "owen", &team));
        assert!(party_allows(Party::Applicant, &both, "owen", &team));
        assert!(party_allows(Party::Reviewer, &both, "owen", &[]));
        assert!(!party_allows(Party::Owner, &both, "owen", &team));
    }

    #[test]
    fn completeness_names_fields_not_values() {
        let mut form = ApplicationForm {
            title: "t".into(),
            ..Default::default()
        };
        assert_eq!(
            form.missing_fields(),
            vec![
                "purpose",
                "public_interest",
                "legal_basis",
                "organisation",
                "requested",
                "period",
                "duration_months"
            ]
        );
        form.requested = vec![RequestedDataset {
            dataset: "Bad Name".into(),
            tables: vec![],
        }];
        let err = form.validate().unwrap_err().to_string();
        assert!(!err.contains("Bad Name"), "{err}");
    }

    #[test]
    fn identifiers_are_sql_safe() {
        check_identifier("t", "person").unwrap();
        check_identifier("t", "_x1").unwrap();
        for bad in ["", "1a", "a b", "a;drop", "a\"b", "été"] {
            assert!(check_identifier("t", bad).is_err(), "{bad}");
        }
    }
}
