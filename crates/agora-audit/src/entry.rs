//! One audit entry: what a leaf holds.

use chrono::{DateTime, Utc};

/// What kind of event an entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// Data access: queries answered or refused, tokens issued.
    Access,
    /// Governance: permits, opt-outs.
    Governance,
    /// Operations: ingests, key rotation, configuration.
    Operations,
}

/// One audit entry: the leaf's content. Serialized by [`AuditEntry::to_leaf`] as compact JSON
/// in field-declaration order; those leaf bytes are what is hashed and stored, so they are
/// never re-serialized for hashing. Holds what happened, never data values.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AuditEntry {
    /// The entry's leaf index, from 0.
    pub seq: u64,
    pub at: DateTime<Utc>,
    pub category: Category,
    /// E.g. "query.answered", "query.refused", "permit.approved", "optout.registered",
    /// "token.issued".
    pub event: String,
    pub actor: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permit_version: Option<i64>,
    /// "answered" | "refused" | "failed" | "ok" | "denied".
    pub outcome: String,
    /// Front, statement (SQL text), tables, rows, error kind... never data values.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub detail: serde_json::Map<String, serde_json::Value>,
}

impl AuditEntry {
    /// The leaf bytes: compact JSON of the entry.
    pub fn to_leaf(&self) -> Vec<u8> {
        // Strings, integers, a timestamp and JSON values: serializing cannot fail.
        serde_json::to_vec(self).expect("an audit entry always serializes")
    }

    pub fn from_leaf(leaf: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(leaf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaf_is_compact_json_in_field_order() {
        let mut detail = serde_json::Map::new();
        detail.insert("front".into(), "pg".into());
        detail.insert("rows".into(), 12.into());
        let entry = AuditEntry {
            seq: 3,
            at: DateTime::from_timestamp_millis(1_800_000_000_000).unwrap(),
            category: Category::Access,
            event: "query.answered".into(),
            actor: "alice".into(),
            project: Some("p1".into()),
            permit: None,
            permit_version: Some(2),
            outcome: "answered".into(),
            detail,
        };
        let leaf = entry.to_leaf();
        assert_eq!(
            std::str::from_utf8(&leaf).unwrap(),
            r#"{"seq":3,"at":"2027-01-15T08:00:00Z","category":"access","event":"query.answered","actor":"alice","project":"p1","permit_version":2,"outcome":"answered","detail":{"front":"pg","rows":12}}"#
        );
        assert_eq!(AuditEntry::from_leaf(&leaf).unwrap(), entry);

        let bare = AuditEntry {
            project: None,
            permit_version: None,
            detail: Default::default(),
            ..entry
        };
        let leaf = bare.to_leaf();
        assert!(!String::from_utf8_lossy(&leaf).contains("detail"));
        assert_eq!(AuditEntry::from_leaf(&leaf).unwrap(), bare);
    }
}
