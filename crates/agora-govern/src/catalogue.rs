//! Catalogue metadata kept in the store: what operators write about each dataset (title,
//! description, publisher, contact, legal basis, purpose, coding systems, access rights,
//! keywords). Counts, tables, columns and time coverage come from release manifests; the
//! server combines both into the JSON catalogue and HealthDCAT-AP JSON-LD.
//!
//! Readable by anyone (the catalogue is public); written by operators only. A dataset may be
//! described before its first release.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use agora_core::DatasetName;

use crate::accounts::check_text;
use crate::clock::{format_ts, parse_ts};
use crate::error::{denied, invalid};
use crate::{Error, MetaStore, Principal, Result, Role};

/// DCAT access rights (EU "access-right" vocabulary: PUBLIC, RESTRICTED, NON_PUBLIC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccessRights {
    /// Open to anyone without conditions.
    Public,
    /// Available under conditions short of a data permit (e.g. registration, a licence).
    Restricted,
    /// Health data: available only under a data permit (the default).
    #[default]
    NonPublic,
}

impl AccessRights {
    /// The stored and serialized form: `public`, `restricted` or `non_public`.
    pub fn as_str(self) -> &'static str {
        match self {
            AccessRights::Public => "public",
            AccessRights::Restricted => "restricted",
            AccessRights::NonPublic => "non_public",
        }
    }

    fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "public" => AccessRights::Public,
            "restricted" => AccessRights::Restricted,
            "non_public" => AccessRights::NonPublic,
            _ => return Err(Error::Corrupt("unknown access rights".into())),
        })
    }
}

/// What an operator writes about a dataset.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct DatasetMetadata {
    /// Human-readable title: required, at most 300 characters.
    pub title: String,
    /// Free-text description, at most 20,000 characters.
    pub description: String,
    /// The organisation responsible for the dataset, at most 300 characters.
    pub publisher: String,
    /// An email address or URL.
    pub contact_point: Option<String>,
    /// The legal basis for holding and processing the data, at most 5,000 characters.
    pub legal_basis: String,
    /// Why the data is collected and made available, at most 5,000 characters.
    pub purpose: String,
    /// e.g. "SNOMED CT", "ICD-10", "LOINC", "ATC", "CCAM".
    pub coding_systems: Vec<String>,
    /// Under what conditions the data may be accessed; non-public by default.
    pub access_rights: AccessRights,
    /// Search keywords: at most 100, each non-empty and at most 200 characters.
    pub keywords: Vec<String>,
}

impl DatasetMetadata {
    fn validate(&self) -> Result<()> {
        if self.title.trim().is_empty() {
            return Err(invalid("title is empty"));
        }
        check_text("title", &self.title, 300)?;
        check_text("description", &self.description, 20_000)?;
        check_text("publisher", &self.publisher, 300)?;
        if let Some(c) = &self.contact_point {
            check_text("contact_point", c, 500)?;
        }
        check_text("legal_basis", &self.legal_basis, 5000)?;
        check_text("purpose", &self.purpose, 5000)?;
        for (field, list) in [
            ("coding_systems", &self.coding_systems),
            ("keywords", &self.keywords),
        ] {
            if list.len() > 100 {
                return Err(invalid(format!("{field}: at most 100 entries")));
            }
            for item in list {
                if item.trim().is_empty() {
                    return Err(invalid(format!("{field}: empty entry")));
                }
                check_text(field, item, 200)?;
            }
        }
        Ok(())
    }
}

/// A dataset's metadata as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetDescription {
    /// The dataset described (it may have no release yet).
    pub dataset: String,
    /// The operator-written fields, flattened into the same JSON object.
    #[serde(flatten)]
    pub metadata: DatasetMetadata,
    /// When the description was last written.
    pub updated_at: DateTime<Utc>,
    /// The user id of the operator who last wrote it.
    pub updated_by: String,
}

type Row = (
    String,
    String,
    String,
    String,
    Option<String>,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
);

const COLUMNS: &str = "SELECT dataset, title, description, publisher, contact_point, \
     legal_basis, purpose, coding_systems, access_rights, keywords, updated_at, updated_by \
     FROM dataset_metadata";

fn from_row(row: Row) -> Result<DatasetDescription> {
    let (
        dataset,
        title,
        description,
        publisher,
        contact_point,
        legal_basis,
        purpose,
        coding_systems,
        access_rights,
        keywords,
        updated_at,
        updated_by,
    ) = row;
    let list = |s: &str| -> Result<Vec<String>> {
        serde_json::from_str(s).map_err(|_| Error::Corrupt("stored catalogue list".into()))
    };
    Ok(DatasetDescription {
        dataset,
        metadata: DatasetMetadata {
            title,
            description,
            publisher,
            contact_point,
            legal_basis,
            purpose,
            coding_systems: list(&coding_systems)?,
            access_rights: AccessRights::parse(&access_rights)?,
            keywords: list(&keywords)?,
        },
        updated_at: parse_ts(&updated_at)?,
        updated_by,
    })
}

impl MetaStore {
    /// Creates or replaces a dataset's catalogue metadata (operators only).
    pub async fn set_dataset_metadata(
        &self,
        actor: &Principal,
        dataset: &DatasetName,
        metadata: DatasetMetadata,
    ) -> Result<DatasetDescription> {
        if !actor.has(Role::Operator) {
            return Err(denied("editing the catalogue needs the operator role"));
        }
        metadata.validate()?;
        let to_json =
            |v: &Vec<String>| serde_json::to_string(v).map_err(|e| Error::Corrupt(e.to_string()));
        sqlx::query(
            "INSERT INTO dataset_metadata (dataset, title, description, publisher, \
             contact_point, legal_basis, purpose, coding_systems, access_rights, keywords, \
             updated_at, updated_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
             ON CONFLICT (dataset) DO UPDATE SET title = excluded.title, \
             description = excluded.description, publisher = excluded.publisher, \
             contact_point = excluded.contact_point, legal_basis = excluded.legal_basis, \
             purpose = excluded.purpose, coding_systems = excluded.coding_systems, \
             access_rights = excluded.access_rights, keywords = excluded.keywords, \
             updated_at = excluded.updated_at, updated_by = excluded.updated_by",
        )
        .bind(dataset.as_str())
        .bind(metadata.title.trim())
        .bind(&metadata.description)
        .bind(&metadata.publisher)
        .bind(metadata.contact_point.as_deref())
        .bind(&metadata.legal_basis)
        .bind(&metadata.purpose)
        .bind(to_json(&metadata.coding_systems)?)
        .bind(metadata.access_rights.as_str())
        .bind(to_json(&metadata.keywords)?)
        .bind(format_ts(self.now()))
        .bind(&actor.name)
        .execute(self.pool())
        .await?;
        self.dataset_metadata(dataset)
            .await?
            .ok_or(Error::NotFound("dataset metadata"))
    }

    /// A dataset's catalogue metadata, if described. Public.
    pub async fn dataset_metadata(
        &self,
        dataset: &DatasetName,
    ) -> Result<Option<DatasetDescription>> {
        let row: Option<Row> =
            sqlx::query_as(sqlx::AssertSqlSafe(format!("{COLUMNS} WHERE dataset = $1")))
                .bind(dataset.as_str())
                .fetch_optional(self.pool())
                .await?;
        row.map(from_row).transpose()
    }

    /// Every described dataset, by name. Public.
    pub async fn list_dataset_metadata(&self) -> Result<Vec<DatasetDescription>> {
        let rows: Vec<Row> =
            sqlx::query_as(sqlx::AssertSqlSafe(format!("{COLUMNS} ORDER BY dataset")))
                .fetch_all(self.pool())
                .await?;
        rows.into_iter().map(from_row).collect()
    }
}
