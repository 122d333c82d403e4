//! The citizen opt-out registry.
//!
//! A citizen (or an operator on their behalf) gives an identifier; only the **hub person
//! key** is stored — the same key ingest gives that person — never the identifier. From then
//! on the query layer removes the person from every project's data and federated answer with
//! an anti-join on `person_id` against [`MetaStore::opted_out_keys`].
//!
//! * **Idempotent**: opting out again while an opt-out is in force returns the same receipt,
//!   with the first timestamp.
//! * **Withdrawable**: [`MetaStore::withdraw_opt_out`] with the receipt id ends it; the row
//!   is kept (history). A later opt-out gets a new receipt.
//! * The **receipt** (random, unguessable 128-bit id, timestamp, status) is the citizen's
//!   proof and their handle for withdrawal; it never carries the identifier or the key.
//!
//! Keying mirrors ingest exactly: identity bytes from [`agora_privacy::source_identity`], the
//! one function every ingest uses too (`"src\0"` ‖ the identifier's canonical form: trimmed,
//! UUIDs lower case, NIRs without separators...), so every typing of an identifier reaches
//! the same key and the same receipt; derivation attempts 0, 1, 2… until the person-key registry holds the
//! key with the same check value — or does not hold the key at all. In that last case the
//! person is in no release yet; the `(key, check)` pair is then **reserved** in the registry
//! (as an ingest would register it), so any later ingest of that identity gets exactly this
//! key: the opt-out covers future releases too.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use agora_privacy::{IdentityKind, PersonKeyer, source_identity};

use crate::audit::NewAuditEntry;
use crate::clock::{format_ts, parse_ts, parse_ts_opt};
use crate::error::invalid;
use crate::{Error, MetaStore, Result, random_id};

/// Value of `person_keys.first_release` for keys reserved by an opt-out before any release
/// contained the person.
pub const OPT_OUT_RESERVATION: &str = "opt-out";

/// How many derivation attempts to try before giving up (each collision is a 2^-63 event).
const MAX_ATTEMPTS: u32 = 64;

/// How the opt-out reached the hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptOutChannel {
    /// The public web portal.
    Portal,
    /// A letter or form processed by staff.
    Mail,
    /// An operator acting on the citizen's behalf.
    Operator,
    /// A partner system through the API.
    Api,
}

impl OptOutChannel {
    fn as_str(self) -> &'static str {
        match self {
            OptOutChannel::Portal => "portal",
            OptOutChannel::Mail => "mail",
            OptOutChannel::Operator => "operator",
            OptOutChannel::Api => "api",
        }
    }

    fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "portal" => OptOutChannel::Portal,
            "mail" => OptOutChannel::Mail,
            "operator" => OptOutChannel::Operator,
            "api" => OptOutChannel::Api,
            _ => return Err(Error::Corrupt("unknown opt-out channel".into())),
        })
    }
}

/// Whether an opt-out currently removes the person from the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptOutStatus {
    /// The person is excluded from every query answer.
    InForce,
    /// The citizen withdrew it; the person is included again.
    Withdrawn,
}

/// What the citizen keeps. Never contains the identifier or the person key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OptOutReceipt {
    /// Random, unguessable 128-bit id: the citizen's proof and the only handle for
    /// withdrawal, so whoever holds it can withdraw the opt-out.
    pub receipt_id: String,
    /// In force or withdrawn.
    pub status: OptOutStatus,
    /// How the opt-out reached the hub.
    pub channel: OptOutChannel,
    /// When it was first recorded (opting out again does not move it).
    pub opted_out_at: DateTime<Utc>,
    /// When it was withdrawn; `None` while in force.
    pub withdrawn_at: Option<DateTime<Utc>>,
}

/// The outcome of [`MetaStore::record_opt_out`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedOptOut {
    /// The opt-out in force for the person.
    pub receipt: OptOutReceipt,
    /// `true` if this call recorded it; `false` if it was already in force.
    pub created: bool,
}

fn check_receipt_id(id: &str) -> bool {
    id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

type ReceiptRow = (String, String, String, Option<String>);

fn receipt_from_row((receipt_id, channel, at, withdrawn): ReceiptRow) -> Result<OptOutReceipt> {
    let withdrawn_at = parse_ts_opt(withdrawn)?;
    Ok(OptOutReceipt {
        receipt_id,
        status: if withdrawn_at.is_some() {
            OptOutStatus::Withdrawn
        } else {
            OptOutStatus::InForce
        },
        channel: OptOutChannel::parse(&channel)?,
        opted_out_at: parse_ts(&at)?,
        withdrawn_at,
    })
}

impl MetaStore {
    /// Records that the person with hub key `person_key` opts out. Idempotent: while an
    /// opt-out is in force for the key, returns its receipt unchanged. `actor` is who
    /// recorded it (a user id, or e.g. `"citizen"` for the anonymous portal).
    pub async fn opt_out(
        &self,
        person_key: i64,
        channel: OptOutChannel,
        actor: &str,
    ) -> Result<OptOutReceipt> {
        Ok(self.opt_out_key(person_key, channel, actor).await?.receipt)
    }

    async fn opt_out_key(
        &self,
        person_key: i64,
        channel: OptOutChannel,
        actor: &str,
    ) -> Result<RecordedOptOut> {
        if person_key <= 0 {
            return Err(invalid("a hub person key is a positive integer"));
        }
        let mut tx = self.pool().begin().await?;
        let created = insert_opt_out(&mut tx, person_key, channel, actor, self.now()).await?;
        let receipt = in_force(&mut tx, person_key).await?;
        tx.commit().await?;
        if created {
            tracing::info!(channel = channel.as_str(), by = %actor, "opt-out recorded");
        }
        Ok(RecordedOptOut { receipt, created })
    }

    /// Opts out the person whose source identifier (e.g. national identifier) is
    /// `identifier`, of `kind` ([`IdentityKind::Any`] when unknown), keyed exactly as ingest
    /// keys it (see the module documentation). The identifier is used for keying only: it is
    /// neither stored nor logged, nor echoed by an error.
    pub async fn opt_out_identity(
        &self,
        keyer: &PersonKeyer,
        identifier: &str,
        kind: IdentityKind,
        channel: OptOutChannel,
        actor: &str,
    ) -> Result<OptOutReceipt> {
        Ok(self
            .record_opt_out(keyer, identifier, kind, channel, actor)
            .await?
            .receipt)
    }

    /// Like [`MetaStore::opt_out_identity`], also telling whether this call recorded the
    /// opt-out or found one in force. An anonymous portal uses that to hand out the receipt
    /// (the withdrawal capability) only to whoever recorded it.
    pub async fn record_opt_out(
        &self,
        keyer: &PersonKeyer,
        identifier: &str,
        kind: IdentityKind,
        channel: OptOutChannel,
        actor: &str,
    ) -> Result<RecordedOptOut> {
        let identity =
            source_identity(kind, identifier).map_err(|e| invalid(format!("identifier: {e}")))?;
        self.record_opt_out_bytes(keyer, &identity, channel, actor)
            .await
    }

    /// Like [`MetaStore::opt_out_identity`] for identity bytes already in ingest's form
    /// (e.g. [`agora_privacy::source_identity`]'s output, or another identity form an ingest
    /// used).
    pub async fn opt_out_identity_bytes(
        &self,
        keyer: &PersonKeyer,
        identity: &[u8],
        channel: OptOutChannel,
        actor: &str,
    ) -> Result<OptOutReceipt> {
        Ok(self
            .record_opt_out_bytes(keyer, identity, channel, actor)
            .await?
            .receipt)
    }

    async fn record_opt_out_bytes(
        &self,
        keyer: &PersonKeyer,
        identity: &[u8],
        channel: OptOutChannel,
        actor: &str,
    ) -> Result<RecordedOptOut> {
        for attempt in 0..MAX_ATTEMPTS {
            let digest = keyer.derive(identity, attempt);
            let registered = self.lookup_person_keys(&[digest.key]).await?;
            match registered.get(&digest.key) {
                Some(&check) if check == digest.check => {
                    return self.opt_out_key(digest.key, channel, actor).await;
                }
                Some(_) => continue, // another person holds this key: next attempt
                None => {
                    let now = self.now();
                    let mut tx = self.pool().begin().await?;
                    // Reserve the key for this identity, as an ingest would register it.
                    sqlx::query(
                        "INSERT INTO person_keys (person_key, check_value, first_release) \
                         VALUES ($1, $2, $3) ON CONFLICT (person_key) DO NOTHING",
                    )
                    .bind(digest.key)
                    .bind(digest.check)
                    .bind(OPT_OUT_RESERVATION)
                    .execute(&mut *tx)
                    .await?;
                    let check: i64 = sqlx::query_scalar(
                        "SELECT check_value FROM person_keys WHERE person_key = $1",
                    )
                    .bind(digest.key)
                    .fetch_one(&mut *tx)
                    .await?;
                    if check != digest.check {
                        // A concurrent ingest registered another person under this key.
                        drop(tx);
                        continue;
                    }
                    let created = insert_opt_out(&mut tx, digest.key, channel, actor, now).await?;
                    let receipt = in_force(&mut tx, digest.key).await?;
                    tx.commit().await?;
                    if created {
                        tracing::info!(channel = channel.as_str(), by = %actor, "opt-out recorded");
                    }
                    return Ok(RecordedOptOut { receipt, created });
                }
            }
        }
        Err(Error::Conflict(
            "could not derive a free person key: contact the hub operator".into(),
        ))
    }

    /// The receipt `receipt_id` (the receipt id is the citizen's capability).
    pub async fn opt_out_receipt(&self, receipt_id: &str) -> Result<OptOutReceipt> {
        if !check_receipt_id(receipt_id) {
            return Err(Error::NotFound("opt-out receipt"));
        }
        let row: Option<ReceiptRow> = sqlx::query_as(
            "SELECT receipt_id, channel, opted_out_at, withdrawn_at FROM optouts \
             WHERE receipt_id = $1",
        )
        .bind(receipt_id)
        .fetch_optional(self.pool())
        .await?;
        row.map(receipt_from_row)
            .transpose()?
            .ok_or(Error::NotFound("opt-out receipt"))
    }

    /// Withdraws an opt-out. Idempotent: withdrawing again returns the withdrawn receipt
    /// with the first withdrawal time. The record is kept.
    pub async fn withdraw_opt_out(&self, receipt_id: &str, actor: &str) -> Result<OptOutReceipt> {
        if !check_receipt_id(receipt_id) {
            return Err(Error::NotFound("opt-out receipt"));
        }
        let now = self.now();
        let mut tx = self.pool().begin().await?;
        let done = sqlx::query(
            "UPDATE optouts SET withdrawn_at = $1, withdrawn_by = $2 \
             WHERE receipt_id = $3 AND withdrawn_at IS NULL",
        )
        .bind(format_ts(now))
        .bind(actor)
        .bind(receipt_id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() > 0 {
            let entry = NewAuditEntry::governance("optout.withdrawn", actor);
            crate::audit::append(&mut tx, now, vec![entry]).await?;
        }
        tx.commit().await?;
        if done.rows_affected() > 0 {
            tracing::info!(by = %actor, "opt-out withdrawn");
        }
        self.opt_out_receipt(receipt_id).await
    }

    /// Every hub person key with an opt-out in force, ascending: the set the query layer
    /// anti-joins on `person_id`.
    pub async fn opted_out_keys(&self) -> Result<Vec<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT person_key FROM optouts WHERE withdrawn_at IS NULL ORDER BY person_key",
        )
        .fetch_all(self.pool())
        .await?)
    }

    /// A page of [`MetaStore::opted_out_keys`]: keys greater than `after` (or from the
    /// start), ascending, at most `limit`. Walk it until a page is shorter than `limit`.
    pub async fn opted_out_keys_page(&self, after: Option<i64>, limit: u32) -> Result<Vec<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT person_key FROM optouts WHERE withdrawn_at IS NULL AND person_key > $1 \
             ORDER BY person_key LIMIT $2",
        )
        .bind(after.unwrap_or(0))
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?)
    }

    /// How many opt-outs are in force (for dashboards; no key is revealed).
    pub async fn opted_out_count(&self) -> Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM optouts WHERE withdrawn_at IS NULL")
                .fetch_one(self.pool())
                .await?,
        )
    }
}

/// Inserts an opt-out unless one is in force for the key (the partial unique index decides).
async fn insert_opt_out(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    person_key: i64,
    channel: OptOutChannel,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<bool> {
    let done = sqlx::query(
        "INSERT INTO optouts (receipt_id, person_key, channel, recorded_by, opted_out_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
    )
    .bind(random_id("optout_"))
    .bind(person_key)
    .bind(channel.as_str())
    .bind(actor)
    .bind(format_ts(now))
    .execute(&mut **tx)
    .await?;
    let created = done.rows_affected() > 0;
    if created {
        // Neither the person key nor the receipt id: the log names no citizen.
        let entry =
            NewAuditEntry::governance("optout.registered", actor).with("channel", channel.as_str());
        crate::audit::append(tx, now, vec![entry]).await?;
    }
    Ok(created)
}

async fn in_force(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    person_key: i64,
) -> Result<OptOutReceipt> {
    let row: ReceiptRow = sqlx::query_as(
        "SELECT receipt_id, channel, opted_out_at, withdrawn_at FROM optouts \
         WHERE person_key = $1 AND withdrawn_at IS NULL",
    )
    .bind(person_key)
    .fetch_one(&mut **tx)
    .await?;
    receipt_from_row(row)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receipt_ids_are_checked_before_any_query() {
        assert!(check_receipt_id("optout_0123abcd"));
        assert!(!check_receipt_id("x' OR 1=1"));
        assert!(!check_receipt_id(&"a".repeat(65)));
    }
}
