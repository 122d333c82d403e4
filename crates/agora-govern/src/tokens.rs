use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::{MetaStore, Result, now_utc};

/// Roles a principal may hold (a user may hold several). Only `Operator` is used before the
/// governance work lands; the others are named so tokens issued now stay valid then.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Operator,
    Producer,
    Reviewer,
    Researcher,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::Operator => "operator",
            Role::Producer => "producer",
            Role::Reviewer => "reviewer",
            Role::Researcher => "researcher",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "operator" => Role::Operator,
            "producer" => Role::Producer,
            "reviewer" => Role::Reviewer,
            "researcher" => Role::Researcher,
            _ => return None,
        })
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Principal {
    pub name: String,
    pub roles: Vec<Role>,
}

impl Principal {
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

const TOKEN_PREFIX: &str = "agora_";

/// Tokens carry 256 random bits, so a plain SHA-256 is a sound stored form (no brute force
/// to slow down, unlike passwords, which will get argon2id).
fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl MetaStore {
    /// Issues a new API token; only its hash is stored. The token is returned once.
    pub async fn create_token(&self, principal: &str, roles: &[Role]) -> Result<String> {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let token = format!("{TOKEN_PREFIX}{}", hex::encode(bytes));
        let roles = roles
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(",");
        sqlx::query(
            "INSERT INTO api_tokens (token_hash, principal, roles, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(token_hash(&token))
        .bind(principal)
        .bind(roles)
        .bind(now_utc())
        .execute(self.pool())
        .await?;
        Ok(token)
    }

    /// The principal a token belongs to, if the token is known and not revoked.
    pub async fn authenticate(&self, token: &str) -> Result<Option<Principal>> {
        if !token.starts_with(TOKEN_PREFIX) {
            return Ok(None);
        }
        let row: Option<(String, String)> = sqlx::query_as(
            "SELECT principal, roles FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL",
        )
        .bind(token_hash(token))
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|(name, roles)| Principal {
            name,
            roles: roles.split(',').filter_map(Role::parse).collect(),
        }))
    }

    /// Revokes every token of `principal`; takes effect for the next request.
    pub async fn revoke_tokens(&self, principal: &str) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE api_tokens SET revoked_at = $1 WHERE principal = $2 AND revoked_at IS NULL",
        )
        .bind(now_utc())
        .bind(principal)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected())
    }
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
}
