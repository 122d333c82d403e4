//! Roles, principals and API tokens.
//!
//! An API token belongs to a user and carries a set of roles; it authenticates as the user
//! with the roles the token carries *and* the user still holds, and only while the user is
//! active (deactivating a user revokes its tokens for good). Tokens carry 256 random bits:
//! only their SHA-256 is stored.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::audit::NewAuditEntry;
use crate::clock::{format_ts, parse_ts, parse_ts_opt};
use crate::error::denied;
use crate::{Error, MetaStore, Result, random_token, sha256_hex};

/// Roles a principal may hold (a user may hold several).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Runs the hub: users, datasets, catalogue, opt-outs; sees every application.
    Operator,
    /// Supplies data extracts to the hub. Grants no governance right in this crate yet.
    Producer,
    /// Reviews project applications and decides on them and their data permits (never on an
    /// application they are an applicant of).
    Reviewer,
    /// Applies for projects and queries data under the permits they are named in.
    Researcher,
    /// Reads and verifies the whole audit log (an inspectorate, a data protection officer);
    /// no other right.
    Auditor,
}

impl Role {
    /// Every role, in declaration (and sort) order.
    pub const ALL: [Role; 5] = [
        Role::Operator,
        Role::Producer,
        Role::Reviewer,
        Role::Researcher,
        Role::Auditor,
    ];

    /// The stored and serialized form, lowercase (`operator`...); [`FromStr`](std::str::FromStr)
    /// parses it back.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Operator => "operator",
            Role::Producer => "producer",
            Role::Reviewer => "reviewer",
            Role::Researcher => "researcher",
            Role::Auditor => "auditor",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "operator" => Role::Operator,
            "producer" => Role::Producer,
            "reviewer" => Role::Reviewer,
            "researcher" => Role::Researcher,
            "auditor" => Role::Auditor,
            _ => {
                return Err(Error::InvalidInput(
                    "unknown role: use operator, producer, reviewer, researcher or auditor".into(),
                ));
            }
        })
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An authenticated caller: `name` is the user id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    /// The user id, as recorded in audit entries and permits.
    pub name: String,
    /// The roles in effect for this call (for an API token: those it carries that the user
    /// still holds).
    pub roles: Vec<Role>,
}

impl Principal {
    /// Whether the caller holds `role` for this call.
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

const TOKEN_PREFIX: &str = "agora_";
/// Prefix of token ids (see [`token_id`]).
const TOKEN_ID_PREFIX: &str = "tok_";
/// Hex digits of the token's SHA-256 that make its id.
const TOKEN_ID_HEX: usize = 16;

/// The public id of an API token: `tok_` and the first 64 bits of the token's SHA-256 (what
/// the store keeps). It names the token in listings and revocations without revealing it.
pub fn token_id(token: &str) -> String {
    format!(
        "{TOKEN_ID_PREFIX}{}",
        &sha256_hex(token.as_bytes())[..TOKEN_ID_HEX]
    )
}

/// An API token as listed to its user or an operator (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiTokenInfo {
    /// The token's public id ([`token_id`]), used to list and revoke it.
    pub id: String,
    /// The user the token authenticates as.
    pub user_id: String,
    /// The roles it carries; only those the user still holds take effect.
    pub roles: Vec<Role>,
    /// When it was issued.
    pub created_at: DateTime<Utc>,
    /// When it was revoked; `None` while valid.
    pub revoked_at: Option<DateTime<Utc>>,
}

fn parse_roles(roles: &str) -> Vec<Role> {
    let mut roles: Vec<Role> = roles.split(',').filter_map(|r| r.parse().ok()).collect();
    roles.sort();
    roles.dedup();
    roles
}

/// The hex part of a token id, if `id` is well formed.
fn token_id_hex(id: &str) -> Option<&str> {
    id.strip_prefix(TOKEN_ID_PREFIX).filter(|h| {
        h.len() == TOKEN_ID_HEX
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

fn encode_roles(roles: &[Role]) -> String {
    roles
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

impl MetaStore {
    /// Issues a new API token for `principal` (a user id) carrying `roles`; only its hash is
    /// stored and the token is returned once.
    ///
    /// Administrative bootstrap (`agora init`, local CLI): the user is created if missing and
    /// granted `roles`. Over an API, use [`MetaStore::issue_token`], which checks the caller.
    pub async fn create_token(&self, principal: &str, roles: &[Role]) -> Result<String> {
        crate::accounts::validate_user_id(principal)?;
        let token = random_token(TOKEN_PREFIX);
        let now = format_ts(self.now());
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "INSERT INTO users (id, display_name, email, active, created_at, updated_at) \
             VALUES ($1, $2, NULL, 1, $3, $4) ON CONFLICT (id) DO NOTHING",
        )
        .bind(principal)
        .bind(principal)
        .bind(&now)
        .bind(&now)
        .execute(&mut *tx)
        .await?;
        for role in roles {
            crate::accounts::grant_role(&mut tx, principal, *role, &now, "bootstrap").await?;
        }
        insert_token(&mut tx, &token, principal, roles, &now, "system").await?;
        tx.commit().await?;
        Ok(token)
    }

    /// Issues an API token for `user_id` (the user itself or an operator) carrying `roles`,
    /// or all the user's current roles when `None`. A token never carries a role its user
    /// does not hold.
    pub async fn issue_token(
        &self,
        actor: &crate::Principal,
        user_id: &str,
        roles: Option<&[Role]>,
    ) -> Result<String> {
        if !actor.has(Role::Operator) && actor.name != user_id {
            return Err(Error::NotFound("user"));
        }
        if !self.user_is_active(user_id).await? {
            return Err(Error::NotFound("user"));
        }
        let held = self.user_roles(user_id).await?;
        let roles = match roles {
            Some(r) => {
                if r.iter().any(|role| !held.contains(role)) {
                    return Err(denied("a token cannot carry a role its user does not hold"));
                }
                r.to_vec()
            }
            None => held,
        };
        let token = random_token(TOKEN_PREFIX);
        let now = format_ts(self.now());
        let mut tx = self.pool().begin().await?;
        insert_token(&mut tx, &token, user_id, &roles, &now, &actor.name).await?;
        tx.commit().await?;
        tracing::info!(user = %user_id, by = %actor.name, "API token issued");
        Ok(token)
    }

    /// The principal a token belongs to, if the token is known and not revoked and its user
    /// is active. Its roles are those the token carries that the user still holds.
    pub async fn authenticate(&self, token: &str) -> Result<Option<Principal>> {
        if !token.starts_with(TOKEN_PREFIX) {
            return Ok(None);
        }
        let row: Option<(String, String)> = sqlx::query_as(
            "SELECT t.principal, t.roles FROM api_tokens t JOIN users u ON u.id = t.principal \
             WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND u.active = 1",
        )
        .bind(sha256_hex(token.as_bytes()))
        .fetch_optional(self.pool())
        .await?;
        let Some((name, roles)) = row else {
            return Ok(None);
        };
        let held = self.user_roles(&name).await?;
        let mut roles = parse_roles(&roles);
        roles.retain(|r| held.contains(r));
        Ok(Some(Principal { name, roles }))
    }

    /// Revokes every token of `principal`; takes effect for the next request.
    pub async fn revoke_tokens(&self, principal: &str) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE api_tokens SET revoked_at = $1 WHERE principal = $2 AND revoked_at IS NULL",
        )
        .bind(format_ts(self.now()))
        .bind(principal)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected())
    }

    /// The API tokens of `user_id`, oldest first (the user itself or an operator; anyone
    /// else gets `NotFound`).
    pub async fn list_tokens(
        &self,
        actor: &crate::Principal,
        user_id: &str,
    ) -> Result<Vec<ApiTokenInfo>> {
        if !actor.has(Role::Operator) && actor.name != user_id {
            return Err(Error::NotFound("user"));
        }
        if self.load_user(user_id).await?.is_none() {
            return Err(Error::NotFound("user"));
        }
        let rows: Vec<(String, String, String, Option<String>)> = sqlx::query_as(
            "SELECT token_hash, roles, created_at, revoked_at FROM api_tokens \
             WHERE principal = $1 ORDER BY created_at, token_hash",
        )
        .bind(user_id)
        .fetch_all(self.pool())
        .await?;
        rows.into_iter()
            .map(|(hash, roles, created_at, revoked_at)| {
                Ok(ApiTokenInfo {
                    id: format!("{TOKEN_ID_PREFIX}{}", &hash[..TOKEN_ID_HEX.min(hash.len())]),
                    user_id: user_id.to_owned(),
                    roles: parse_roles(&roles),
                    created_at: parse_ts(&created_at)?,
                    revoked_at: parse_ts_opt(revoked_at)?,
                })
            })
            .collect()
    }

    /// Revokes the API token `token_id` of `user_id` (the user itself or an operator);
    /// takes effect for the next request. Idempotent: revoking a revoked token returns it
    /// unchanged. `NotFound` for an unknown token, or a caller who may not see it.
    pub async fn revoke_token_by_id(
        &self,
        actor: &crate::Principal,
        user_id: &str,
        token_id: &str,
    ) -> Result<ApiTokenInfo> {
        if !actor.has(Role::Operator) && actor.name != user_id {
            return Err(Error::NotFound("API token"));
        }
        let hex = token_id_hex(token_id).ok_or(Error::NotFound("API token"))?;
        let now = self.now();
        let mut tx = self.pool().begin().await?;
        let done = sqlx::query(
            "UPDATE api_tokens SET revoked_at = $1 WHERE principal = $2 \
             AND substr(token_hash, 1, 16) = $3 AND revoked_at IS NULL",
        )
        .bind(format_ts(now))
        .bind(user_id)
        .bind(hex)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() > 0 {
            let entry = NewAuditEntry::governance("token.revoked", &actor.name)
                .with("user", user_id)
                .with("token_id", token_id);
            crate::audit::append(&mut tx, now, vec![entry]).await?;
        }
        tx.commit().await?;
        if done.rows_affected() > 0 {
            tracing::info!(user = %user_id, by = %actor.name, "API token revoked");
        }
        self.list_tokens(actor, user_id)
            .await
            .map_err(|_| Error::NotFound("API token"))?
            .into_iter()
            .find(|t| t.id == token_id)
            .ok_or(Error::NotFound("API token"))
    }

    /// Revokes one token (e.g. its holder logging out a script). `false` if it was unknown
    /// or already revoked.
    pub async fn revoke_token(&self, token: &str) -> Result<bool> {
        let now = self.now();
        let mut tx = self.pool().begin().await?;
        let user: Option<String> = sqlx::query_scalar(
            "UPDATE api_tokens SET revoked_at = $1 WHERE token_hash = $2 AND revoked_at IS NULL \
             RETURNING principal",
        )
        .bind(format_ts(now))
        .bind(sha256_hex(token.as_bytes()))
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(user) = &user {
            // Its holder revoked it: the actor is the token's own user.
            let entry = NewAuditEntry::governance("token.revoked", user)
                .with("user", user.as_str())
                .with("token_id", token_id(token));
            crate::audit::append(&mut tx, now, vec![entry]).await?;
        }
        tx.commit().await?;
        Ok(user.is_some())
    }
}

async fn insert_token(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    token: &str,
    user: &str,
    roles: &[Role],
    now: &str,
    actor: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO api_tokens (token_hash, principal, roles, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(sha256_hex(token.as_bytes()))
    .bind(user)
    .bind(encode_roles(roles))
    .bind(now)
    .execute(&mut **tx)
    .await?;
    let entry = NewAuditEntry::governance("token.issued", actor)
        .with("user", user)
        .with("token_id", token_id(token))
        .with("roles", encode_roles(roles));
    crate::audit::append(tx, parse_ts(now)?, vec![entry]).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tokens_authenticate_until_revoked_and_are_stored_hashed() {
        let dir = tempfile::tempdir().unwrap();
        let store = MetaStore::open_sqlite(&dir.path().join("m.db"))
            .await
            .unwrap();
        let token = store.create_token("op", &[Role::Operator]).await.unwrap();
        let p = store.authenticate(&token).await.unwrap().unwrap();
        assert_eq!(p.name, "op");
        assert!(p.has(Role::Operator) && !p.has(Role::Researcher));
        assert!(store.authenticate("agora_nope").await.unwrap().is_none());
        let stored: Vec<String> = sqlx::query_scalar("SELECT token_hash FROM api_tokens")
            .fetch_all(store.pool())
            .await
            .unwrap();
        assert!(!stored.contains(&token));
        assert_eq!(store.revoke_tokens("op").await.unwrap(), 1);
        assert!(store.authenticate(&token).await.unwrap().is_none());
    }

    #[test]
    fn roles_round_trip() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
        }
        assert!("root".parse::<Role>().is_err());
    }
}
