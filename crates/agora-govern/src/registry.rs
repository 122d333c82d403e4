//! The public project registry: every project that received a data permit, readable by
//! anyone without login.
//!
//! The registry is a *view*, generated on each read from applications and permits (title,
//! organisation, purpose, public interest, legal basis, datasets and releases used, dates,
//! status). Nothing in it can be edited by hand: the only input of its own is the list of
//! results and publications attached to a project ([`MetaStore::attach_result`]). Team
//! members' names are not published; the responsible organisation is.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::accounts::check_text;
use crate::clock::{format_ts, parse_ts, parse_ts_opt};
use crate::error::{denied, invalid};
use crate::permits::{PermitStatus, ReleaseSelector};
use crate::projects::ApplicationState;
use crate::{Error, MetaStore, Principal, Result, Role, random_id};

/// A project's public status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegistryStatus {
    /// Permit issued, not yet in effect.
    Approved,
    /// The permit is in effect.
    Active,
    /// The permit's expiry has passed (shown at once, before the move is recorded).
    Expired,
    /// Closed early, or after approval without activation; the permit is revoked.
    Closed,
}

/// A dataset a registered project uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryDataset {
    /// The dataset's name.
    pub dataset: String,
    /// `None` until activation pins "latest at activation".
    pub release: Option<i64>,
    /// Names of the tables the permit covers (columns and filters are not published).
    pub tables: Vec<String>,
}

/// A result or publication attached to a project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectResult {
    /// The result's random id (`res_...`).
    pub id: String,
    /// Title of the result or publication.
    pub title: String,
    /// Where to read it: an http(s) address.
    pub url: Option<String>,
    /// Its publication date, if known.
    pub published_on: Option<NaiveDate>,
    /// When it was attached to the project.
    pub added_at: DateTime<Utc>,
}

/// What an applicant or operator attaches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewProjectResult {
    /// Title: required, at most 500 characters.
    pub title: String,
    /// An `http://` or `https://` address without spaces, at most 2,048 characters.
    #[serde(default)]
    pub url: Option<String>,
    /// The publication date, if known.
    #[serde(default)]
    pub published_on: Option<NaiveDate>,
}

/// One project of the public registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryEntry {
    /// The application's id.
    pub project_id: String,
    /// The project's title, from the application.
    pub title: String,
    /// The responsible organisation (team members are not published).
    pub organisation: String,
    /// The project's purpose, from the application.
    pub purpose: String,
    /// Its public-interest justification, from the application.
    pub public_interest: String,
    /// Its legal basis, from the application.
    pub legal_basis: String,
    /// The data the permit covers, as granted (not as requested).
    pub datasets: Vec<RegistryDataset>,
    /// Where the project stands now.
    pub status: RegistryStatus,
    /// First submission of the application.
    pub submitted_at: Option<DateTime<Utc>>,
    /// When the permit was issued.
    pub approved_at: DateTime<Utc>,
    /// When an operator activated the project; `None` before.
    pub activated_at: Option<DateTime<Utc>>,
    /// When the permit's access ends (its current version's expiry).
    pub expires_at: DateTime<Utc>,
    /// When the project expired or was closed.
    pub ended_at: Option<DateTime<Utc>>,
    /// The project's data permit.
    pub permit_id: String,
    /// The permit's current version.
    pub permit_version: i64,
    /// Results and publications attached, oldest first.
    pub results: Vec<ProjectResult>,
}

fn check_url(url: &str) -> Result<()> {
    check_text("url", url, 2048)?;
    if !(url.starts_with("https://") || url.starts_with("http://"))
        || url.chars().any(char::is_whitespace)
    {
        return Err(invalid("url: give an http(s) address"));
    }
    Ok(())
}

impl MetaStore {
    /// The public registry, oldest approval first. No login needed.
    pub async fn public_registry(&self) -> Result<Vec<RegistryEntry>> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT p.id FROM permits p JOIN applications a ON a.id = p.application_id \
             WHERE a.state IN ('approved', 'active', 'expired', 'closed') \
             ORDER BY p.issued_at, p.id",
        )
        .fetch_all(self.pool())
        .await?;
        let mut results = self.all_results().await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(mut entry) = self.registry_entry_for_permit(&id).await? {
                entry.results = results.remove(&entry.project_id).unwrap_or_default();
                out.push(entry);
            }
        }
        Ok(out)
    }

    /// One project of the public registry; `NotFound` for anything not registered.
    pub async fn registry_entry(&self, project_id: &str) -> Result<RegistryEntry> {
        let permit: Option<String> =
            sqlx::query_scalar("SELECT id FROM permits WHERE application_id = $1")
                .bind(project_id)
                .fetch_optional(self.pool())
                .await?;
        let Some(permit) = permit else {
            return Err(Error::NotFound("project"));
        };
        let mut entry = self
            .registry_entry_for_permit(&permit)
            .await?
            .ok_or(Error::NotFound("project"))?;
        entry.results = self.results_of(project_id).await?;
        Ok(entry)
    }

    /// Attaches a result or publication to a registered project (an applicant of the project
    /// or an operator). The only way to add to the registry.
    pub async fn attach_result(
        &self,
        actor: &Principal,
        project_id: &str,
        new: NewProjectResult,
    ) -> Result<ProjectResult> {
        let row = self.visible_app(actor, project_id).await?;
        if !(row.is_applicant(&actor.name) || actor.has(Role::Operator)) {
            return Err(denied(
                "only the project's applicants or an operator may attach results",
            ));
        }
        if !row.state.has_permit() {
            return Err(Error::Conflict(
                "results can only be attached to a project in the public registry".into(),
            ));
        }
        if new.title.trim().is_empty() {
            return Err(invalid("title is empty"));
        }
        check_text("title", &new.title, 500)?;
        if let Some(url) = &new.url {
            check_url(url)?;
        }
        let result = ProjectResult {
            id: random_id("res_"),
            title: new.title.trim().to_owned(),
            url: new.url,
            published_on: new.published_on,
            added_at: self.now(),
        };
        sqlx::query(
            "INSERT INTO project_results (id, application_id, title, url, published_on, \
             added_at, added_by) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&result.id)
        .bind(project_id)
        .bind(&result.title)
        .bind(result.url.as_deref())
        .bind(result.published_on.map(|d| d.to_string()))
        .bind(format_ts(result.added_at))
        .bind(&actor.name)
        .execute(self.pool())
        .await?;
        Ok(result)
    }

    async fn registry_entry_for_permit(&self, permit_id: &str) -> Result<Option<RegistryEntry>> {
        let now = self.now();
        let Some((permit, app)) = self.load_permit(permit_id, now).await? else {
            return Ok(None);
        };
        let status = match app.state {
            ApplicationState::Approved if permit.status_at(now) == PermitStatus::Expired => {
                RegistryStatus::Expired
            }
            ApplicationState::Approved => RegistryStatus::Approved,
            ApplicationState::Active if permit.status_at(now) == PermitStatus::Expired => {
                RegistryStatus::Expired
            }
            ApplicationState::Active => RegistryStatus::Active,
            ApplicationState::Expired => RegistryStatus::Expired,
            ApplicationState::Closed => RegistryStatus::Closed,
            _ => return Ok(None),
        };
        let ended: Option<String> = sqlx::query_scalar(
            "SELECT MAX(at) FROM application_events WHERE application_id = $1 \
             AND kind = 'transition' AND to_state IN ('expired', 'closed')",
        )
        .bind(&app.id)
        .fetch_one(self.pool())
        .await?;
        let ended_at = match (status, parse_ts_opt(ended)?) {
            (RegistryStatus::Expired, None) => Some(permit.terms.expires_at),
            (_, e) => e,
        };
        Ok(Some(RegistryEntry {
            project_id: app.id.clone(),
            title: app.form.title.clone(),
            organisation: app.form.organisation.clone(),
            purpose: app.form.purpose.clone(),
            public_interest: app.form.public_interest.clone(),
            legal_basis: app.form.legal_basis.clone(),
            datasets: permit
                .terms
                .datasets
                .iter()
                .map(|d| RegistryDataset {
                    dataset: d.dataset.clone(),
                    release: match d.release {
                        ReleaseSelector::Number(n) => Some(n),
                        ReleaseSelector::LatestAtActivation => None,
                    },
                    tables: d.tables.iter().map(|t| t.table.clone()).collect(),
                })
                .collect(),
            status,
            submitted_at: app.submitted_at,
            approved_at: permit.issued_at,
            activated_at: permit.activated_at,
            expires_at: permit.terms.expires_at,
            ended_at,
            permit_id: permit.id.clone(),
            permit_version: permit.version,
            results: Vec::new(),
        }))
    }

    async fn results_of(&self, project_id: &str) -> Result<Vec<ProjectResult>> {
        Ok(self
            .all_results_where(Some(project_id))
            .await?
            .remove(project_id)
            .unwrap_or_default())
    }

    async fn all_results(&self) -> Result<HashMap<String, Vec<ProjectResult>>> {
        self.all_results_where(None).await
    }

    async fn all_results_where(
        &self,
        project_id: Option<&str>,
    ) -> Result<HashMap<String, Vec<ProjectResult>>> {
        type Row = (
            String,
            String,
            String,
            Option<String>,
            Option<String>,
            String,
        );
        let base = "SELECT application_id, id, title, url, published_on, added_at \
                    FROM project_results";
        let rows: Vec<Row> = match project_id {
            Some(p) => {
                sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "{base} WHERE application_id = $1 ORDER BY added_at, id"
                )))
                .bind(p)
                .fetch_all(self.pool())
                .await?
            }
            None => {
                sqlx::query_as(sqlx::AssertSqlSafe(format!("{base} ORDER BY added_at, id")))
                    .fetch_all(self.pool())
                    .await?
            }
        };
        let mut out: HashMap<String, Vec<ProjectResult>> = HashMap::new();
        for (app, id, title, url, published_on, added_at) in rows {
            out.entry(app).or_default().push(ProjectResult {
                id,
                title,
                url,
                published_on: published_on
                    .map(|d| d.parse())
                    .transpose()
                    .map_err(|_| Error::Corrupt("stored result date".into()))?,
                added_at: parse_ts(&added_at)?,
            });
        }
        Ok(out)
    }
}
